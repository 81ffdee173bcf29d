"""FMMRA: the fitness-based multi-round auction maximising task cost-effectiveness (the
seed paper ``fmmra-cost-effectiveness-auction``, §2-4), with the paper's four comparisons.

Agents are buyers, task holders sellers (a forward market). An agent bids only on tasks
whose required levels it meets (screening). Its expected profit on task j is
``E = B_j - C_ij`` (benefit minus a fixed cost V_i and travel cost); its first bid is ``E/2``
and it bids on the task of highest expected final profit ``E - bid``. After a lost round a
dynamic bidder raises that task's bid by ``markup * E`` (at most E). Each holder ranks the
round's bids for its task by cost-effectiveness ``alpha * bid + beta * F_ij`` (F: the AHP
task fitness, which the bidder reports with its bid) and charges the highest other bid not
above the winner's (second price). A task of team size k takes one winner per round.

Variants (the paper's §5): ``fmmra_fitness`` ranks by fitness alone; ``mssca`` raises bids
dynamically but ranks by bid and charges the bid (MSSCA, no fitness); ``fmmra_fp`` and
``fmmra_sp`` rank by bid without dynamic bidding and charge first / second price.
"""

from __future__ import annotations

import numpy as np

from allocators._market import MISREPORT, RoundAuction
from allocators._routes import NEG
from harness.api import Param
from harness.numerics import best_index


class FMMRA(RoundAuction):
    name = "fmmra"
    summary = "fitness-based multi-round auction, cost-effectiveness matching, second price"
    paper = "FMMRA seed paper (task fitness + cost-effectiveness multi-round auction), §4"
    families = ("heterogeneous",)
    params = (
        Param("markup", 0.1, "bid raise after a lost round, as a fraction of E", low=0.0),
        Param("reserve", 0.0, "holder's reserve price", low=0.0),
        *MISREPORT,
    )
    dynamic = True
    ranking = "cost_effectiveness"  # or "fitness", "bid"
    price_rule = "second"
    second_fallback = "own"

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.E = self.valuer.profit()
        self.bid = np.where(np.isfinite(self.E), self.E / 2.0, np.nan)
        pub = view.public
        self.alpha, self.beta = float(pub.get("alpha", 0.0)), float(pub.get("beta", 0.0))
        self.F = self._fitness(view)

    @staticmethod
    def _fitness(view) -> np.ndarray:  # noqa: ANN001 - LocalView
        """This agent's AHP task fitness for every task (its own levels, the public
        requirements and weights)."""
        pub = view.public
        if "ahp_weights" not in pub or view.agent_caps is None:
            return np.zeros(view.tasks.n)
        lo, hi = pub["fitness_range"]
        top = float(pub["cap_max"])
        req = view.tasks.caps
        surplus = (view.agent_caps[None, :] - req) / np.maximum(top - req, 1e-12)
        levels = lo + (hi - lo) * np.clip(surplus, 0.0, 1.0)
        return (levels * np.asarray(pub["ahp_weights"])).sum(axis=1)

    def choose(self) -> tuple[int, float] | None:
        if self.valuer.full:
            return None
        ok = self.open & np.isfinite(self.E) & (self.E > 0.0)
        final = np.where(ok, self.E - self.bid, NEG)
        j = best_index(final)
        if not ok[j]:
            return None
        return j, float(self.bid[j])

    def lost(self, task: int) -> None:
        if self.dynamic:
            self.bid[task] = min(self.E[task], self.bid[task] + self.p["markup"] * self.E[task])

    def fitness(self, task: int) -> float:
        return float(self.F[task])

    def rank(self, bid) -> float:  # noqa: ANN001 - Bid
        if self.ranking == "cost_effectiveness":
            return self.alpha * bid.amount + self.beta * bid.fitness
        if self.ranking == "fitness":
            return bid.fitness
        return bid.amount


class FMMRAFitness(FMMRA):
    name = "fmmra_fitness"
    summary = "FMMRA with buyer matching by task fitness alone"
    ranking = "fitness"


class MSSCA(FMMRA):
    name = "mssca"
    summary = "multi-round sealed sequential auction with dynamic price rise, no fitness"
    paper = "MSSCA, ref. [31] of the FMMRA seed paper, as that paper describes it"
    ranking = "bid"
    price_rule = "first"


class FMMRAFirstPrice(FMMRA):
    name = "fmmra_fp"
    summary = "first-price comparison of the FMMRA paper: rank by bid, pay the bid, no markup"
    ranking = "bid"
    price_rule = "first"
    dynamic = False


class FMMRASecondPrice(FMMRA):
    name = "fmmra_sp"
    summary = "second-price comparison of the FMMRA paper: rank by bid, second price, no markup"
    ranking = "bid"
    dynamic = False
