"""CAGA: consensus-based adaptive genetic-optimised auction (Ozturk, Yavas, Bingul, SIMULTECH
2025; ../shared/seeds/caga-market-uncertainty.txt; docs/uncertainty.md, "CAGA").

Single assignment on ``max_payoff`` instances (payoff ``100 / distance``). Two layers:

*The auction* (the paper's Algorithm 2 with its price rule, Eqs. 5-7): an unassigned agent
values each task at its payoff minus the task's current price (the highest bid so far),
``θ = max_j (c_ij − p_j)`` (Eq. 5), takes the second best ``g_ij1`` (Eq. 6) and bids
``p_j + θ − g_ij1 + ε_i`` (Eq. 7) on its best task; bids are max-consensus over neighbours,
as in CBAA, and an outbid agent bids again. An agent whose best value is not positive stays
out. This is Bertsekas's auction run as a CBAA: ``ε_i`` sets how far each bid overshoots.

*The genetic algorithm* (Algorithm 1): a population of ε combinations (one ``ε_i`` per
agent, drawn in [``eps_min``, ``eps_max``], the paper's [5e-6, 5e-4]) runs its auctions side
by side, one per member, in the same messages. When they have all settled, each agent shares
its surplus in every member (its payoff minus its price, the paper's Eq. 11 with the agent's
payoff estimate for ``1/Φ⁻¹``), so every agent knows each member's team surplus (its
fitness). Then every agent applies the same GA step, from a seed the agents agreed on at the
start: the ``elite`` best members are kept, the rest are arithmetic crossovers of two parents
(each the better of two drawn at random), mutated by a log-normal factor with probability
``mutation``. After ``generations`` steps each agent takes its task in the best member seen.

*Monte Carlo* (the paper's §4.2): when the trial has an uncertainty model (docs/uncertainty.md)
the agents know it, as the paper's agents are told LOGN(3.6, 0.6), and value a task at its
mean payoff over ``mc_samples`` positions drawn around where they measured it (0: the
measurement as is). ``mc_samples = 0`` and ``generations = 0`` leave the ε auction alone:
the report compares the three, to show where a gain comes from.

The paper assumes a fully connected graph (its §3.3): the settling test (a round in which no
agent changed anything) and the fitness exchange rely on every agent hearing every other each
round, so other graphs are a stated skip.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from allocators._cbba_rules import NONE
from allocators._routes import NEG
from allocators.cbaa import next_task_scores
from allocators.cbba import outbids
from harness.api import Allocator, Message, Outgoing, Param, Plan
from harness.geometry import payoff
from harness.numerics import TIE_RTOL, beats


@dataclass(frozen=True)
class Seed(Message):
    """An agent's share of the team's GA seed."""

    value: int


@dataclass(frozen=True)
class Prices(Message):
    """Generation ``gen``: highest bids and their bidders, one row per population member."""

    gen: int
    y: np.ndarray  # (members, tasks)
    z: np.ndarray
    moved: np.ndarray  # (members,): where the sender bid this round


@dataclass(frozen=True)
class Surplus(Message):
    """Generation ``gen``: the sender's surplus in each member's settled auction."""

    gen: int
    s: np.ndarray


class CAGA(Allocator):
    name = "caga"
    summary = "CBAA with Bertsekas prices whose increments ε a GA tunes over Monte Carlo payoffs"
    paper = (
        "Ozturk, Yavas, Bingul. Adaptive Market-Based Dynamic Task Allocation Under "
        "Environmental Uncertainty. SIMULTECH 2025"
    )
    families = ("assignment",)
    params = (
        Param("population", 8, "ε combinations per generation", low=1, high=256),
        Param("generations", 5, "GA steps (0: one auction per member, no GA)", low=0, high=1000),
        Param("elite", 2, "best members kept unchanged each generation", low=0, high=256),
        Param("mutation", 0.2, "probability that a gene mutates", low=0.0, high=1.0),
        Param("mutation_scale", 0.5, "deviation of ln(factor) of a mutation", low=0.0, high=10.0),
        Param("eps_min", 5e-6, "smallest price increment ε", above=0.0, high=1e6),
        Param("eps_max", 5e-4, "largest price increment ε", above=0.0, high=1e6),
        Param(
            "mc_samples",
            20,
            "positions drawn per task around the measured one to value it under the trial's "
            "uncertainty model (0: the measurement as is)",
            low=0,
            high=10_000,
        ),
        Param(
            "auction_rounds",
            1000,
            "rounds a generation's auctions may take (the paper's 'max iteration'); a member "
            "still bidding then is left out of the selection",
            low=2,
            high=1_000_000,
        ),
        Param(
            "fitness",
            "surplus",
            "a member's fitness: the team's payoff minus prices (the paper's Eq. 11) or payoff",
            ("surplus", "value"),
        ),
    )

    @classmethod
    def skip_reason(cls, inst: Any, params: dict[str, Any]) -> str | None:
        m = inst.n_agents
        if inst.comm.kind != "full" and len(inst.comm.edges) < m * (m - 1) // 2:
            return "CAGA assumes a fully connected graph (the paper's §3.3)"
        if params["eps_min"] > params["eps_max"]:
            return f"eps_min {params['eps_min']} above eps_max {params['eps_max']}"
        return None

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.c = self._payoffs()
        self.n, self.m = view.tasks.n, view.n_agents
        self.P = params["population"]
        self.phase = "seed"
        self.gen = 0
        self.seeds: dict[int, int] = {self.id: int(rng.integers(0, 2**62))}
        self.pop = np.zeros((self.P, self.m))
        self.moved = np.zeros(self.P, dtype=bool)
        self.unsettled = np.zeros(self.P, dtype=bool)
        self.best: tuple[float, int, float] | None = None  # (fitness, own task, own bid)
        self.surplus: dict[int, np.ndarray] = {}
        self.sent_last = False
        self.final = NONE
        self.final_bid = 0.0

    # -- payoffs ---------------------------------------------------------------------------
    def _payoffs(self) -> np.ndarray:
        """Each task's payoff as this agent estimates it: as measured, or its mean over
        positions drawn around the measurement under the trial's uncertainty model."""
        base = next_task_scores(self.view, {"score": "payoff"})
        model = self.view.public.get("uncertainty")
        k = self.p["mc_samples"]
        if not model or k == 0:
            return base
        from harness.uncertainty import Uncertainty

        u = Uncertainty.from_dict(model, max_draws=1 << 30)
        at = self.view.position
        seen = self.view.tasks.xyz
        value = self.view.tasks["value"]
        total = np.zeros(len(seen))
        for _ in range(k):
            total += payoff(value, np.linalg.norm(u.measure(seen, at, self.rng) - at, axis=1))
        return np.where(np.isfinite(base), total / k, base)

    # -- the protocol ----------------------------------------------------------------------
    @property
    def converged(self) -> bool:
        return self.phase == "done"

    def start(self) -> list[Outgoing]:
        return self.broadcast(Seed(self.seeds[self.id]))

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        if self.phase == "seed":
            self.seeds.update((k, msg.value) for k, msg in inbox if isinstance(msg, Seed))
            self.team = np.random.default_rng(self._team_seed())
            lo, hi = np.log(self.p["eps_min"]), np.log(self.p["eps_max"])
            self.pop = np.exp(self.team.uniform(lo, hi, size=(self.P, self.m)))
            return self._begin_auction()
        if self.phase == "auction":
            return self._auction(inbox)
        if self.phase == "fitness":
            return self._select(inbox)
        return []

    def _team_seed(self) -> int:
        text = json.dumps(sorted(self.seeds.items()))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")

    def _begin_auction(self) -> list[Outgoing]:
        self.phase = "auction"
        self.y = np.full((self.P, self.n), NEG)
        self.z = np.full((self.P, self.n), NONE, dtype=np.int64)
        self.task = np.full(self.P, NONE, dtype=np.int64)
        self.out = np.zeros(self.P, dtype=bool)  # no task worth a positive value any more
        self.rounds = 0
        self.unsettled = np.zeros(self.P, dtype=bool)
        self._bid()
        return self._publish(True)

    def _bid(self) -> bool:
        """Each member in which this agent holds no task: bid on the best task (Eqs. 5-7).
        ``self.moved`` marks the members it bid in."""
        self.moved = np.zeros(self.P, dtype=bool)
        changed = False
        eps = self.pop[:, self.id]
        ok = np.isfinite(self.c)
        for p in np.flatnonzero((self.task == NONE) & ~self.out):
            price = np.where(self.y[p] > NEG, self.y[p], 0.0)
            v = np.where(ok, self.c - price, NEG)
            j = int(np.argmax(v))
            if not v[j] > TIE_RTOL:
                self.out[p] = True
                continue
            v[j] = NEG
            second = max(float(v.max()), 0.0) if len(v) > 1 else 0.0
            bid = price[j] + (self.c[j] - price[j]) - second + eps[p]
            if outbids(
                np.array([bid]), np.array([self.id]), self.y[p, j : j + 1], self.z[p, j : j + 1]
            )[0]:
                self.y[p, j], self.z[p, j], self.task[p] = bid, self.id, j
                self.moved[p] = changed = True
            else:  # cannot beat the price it sees: it is out of this member's auction
                self.out[p] = True
        return changed

    def _auction(self, inbox: list[Outgoing]) -> list[Outgoing]:
        heard = False
        # members someone bid in last round: every agent knows the same set (a full graph)
        moved = self.moved.copy()
        for _k, msg in inbox:
            if isinstance(msg, Prices) and msg.gen == self.gen:
                heard = True
                moved |= msg.moved
                win = outbids(msg.y, msg.z, self.y, self.z)
                self.y[win], self.z[win] = msg.y[win], msg.z[win]
        self.rounds += 1
        if self.rounds >= self.p["auction_rounds"] and moved.any():
            self.unsettled = moved  # still bidding at the cap: left out of the selection
            return self._share()
        lost = (self.task != NONE) & (
            self.z[np.arange(self.P), np.maximum(self.task, 0)] != self.id
        )
        self.task[lost] = NONE
        self.out[lost] = False
        if heard:  # prices moved: an agent out of a member may afford a task again
            self.out[:] = False
        changed = self._bid()
        if not heard and not self.sent_last and not changed:
            return self._share()  # every agent heard nothing new: all members have settled
        return self._publish(changed)  # every agent hears every bidder itself (full graph)

    def _publish(self, changed: bool) -> list[Outgoing]:
        self.sent_last = bool(changed)
        if not changed:
            return []
        y, z, moved = self.y.copy(), self.z.copy(), self.moved.copy()
        for a in (y, z, moved):
            a.setflags(write=False)
        return self.broadcast(Prices(self.gen, y, z, moved))

    def _share(self) -> list[Outgoing]:
        idx = np.arange(self.P)
        held = self.task != NONE
        j = np.maximum(self.task, 0)
        value = np.where(held, self.c[j], 0.0)
        price = np.where(held, self.y[idx, j], 0.0)
        s = value - price if self.p["fitness"] == "surplus" else value
        self.surplus = {self.id: s}
        self.phase = "fitness"
        s_ro = s.copy()
        s_ro.setflags(write=False)
        return self.broadcast(Surplus(self.gen, s_ro))

    def _select(self, inbox: list[Outgoing]) -> list[Outgoing]:
        for k, msg in inbox:
            if isinstance(msg, Surplus) and msg.gen == self.gen:
                self.surplus[k] = msg.s
        fit = np.sum(list(self.surplus.values()), axis=0)  # agents not heard from count 0
        fit[self.unsettled] = -np.inf
        order = self._ranked(fit)
        top = int(order[0])
        if np.isfinite(fit[top]) and (self.best is None or beats(fit[top], self.best[0])):
            t = int(self.task[top])
            self.best = (float(fit[top]), t, float(self.y[top, t]) if t != NONE else 0.0)
        if self.gen >= self.p["generations"]:
            self.phase = "done"
            if self.best is not None:  # else no member ever settled: no task
                _fit, self.final, self.final_bid = self.best
            return []
        self.pop = self._offspring(fit, order)
        self.gen += 1
        return self._begin_auction()

    @staticmethod
    def _ranked(fit: np.ndarray) -> np.ndarray:
        """Members best first; fitnesses tied within the tolerance keep their order."""
        key = np.array([float(f"{v:.9g}") for v in fit])
        return np.lexsort((np.arange(len(fit)), -key))

    def _offspring(self, fit: np.ndarray, order: np.ndarray) -> np.ndarray:
        """The next population (the same on every agent: the team generator drives it)."""
        rank = np.empty(self.P, dtype=np.int64)
        rank[order] = np.arange(self.P)
        keep = min(self.p["elite"], self.P)
        nxt = [self.pop[i].copy() for i in order[:keep]]
        lo, hi = np.log(self.p["eps_min"]), np.log(self.p["eps_max"])
        while len(nxt) < self.P:
            a, b = (self._tournament(rank) for _ in range(2))
            lam = self.team.uniform()
            child = lam * self.pop[a] + (1 - lam) * self.pop[b]
            mutate = self.team.uniform(size=self.m) < self.p["mutation"]
            factor = np.exp(self.team.normal(0.0, self.p["mutation_scale"], size=self.m))
            child = np.where(mutate, child * factor, child)
            nxt.append(np.exp(np.clip(np.log(child), lo, hi)))
        return np.array(nxt)

    def _tournament(self, rank: np.ndarray) -> int:
        i, j = self.team.integers(0, self.P, size=2)
        return int(i if rank[i] <= rank[j] else j)

    def plan(self) -> Plan:
        if self.final == NONE:
            return Plan(self.id)
        return Plan(self.id, [int(self.final)], None, [self.final_bid])

    def measurements(self) -> dict[str, float]:
        # every agent counts the same: the largest is the team's
        return {
            "ga_generations_max": float(self.gen),
            "ga_unsettled_max": float(self.unsettled.sum()),
        }
