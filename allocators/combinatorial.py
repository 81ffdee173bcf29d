"""Combinatorial reverse auction with exact (PuLP) or greedy winner determination, and
pay-as-bid or VCG payments.

One agent, the auctioneer (``auctioneer``, agent 0 by default; any agent can be), buys the
service of the tasks. It sends every agent a request for quotes. Each agent prices bundles
of tasks at its cost (``fixed_cost`` per task plus travel at ``cost_per_distance`` on the
cheapest route through the bundle, by Held-Karp over the subsets of its ``pool`` cheapest
tasks, of at most ``bundle_size`` tasks), times ``1 + margin``, and sends its bids in one
message (XOR bids: it can win at most one bundle). The auctioneer chooses the bids that
maximise reported welfare, the value of the covered tasks minus the bid prices, each task
served by at most its team size of agents, each agent winning at most one bundle:

``exact``   a set-packing MILP (PuLP + CBC);
``greedy``  bids by increasing price per task, kept when they still fit (Lehmann et al.).

A task's value is its ``value`` column; on cost-minimising instances (``min_sum``,
``min_max``) the holder must have every task served and its value is a "must" value larger
than every bid together, so the auction covers as much as it can at least cost.

Payments (``payment``): ``bid``, each winner is paid its bid; ``vcg``, each winner is paid
its bid plus its marginal contribution ``W* - W*_{-i}`` (the Clarke pivot rule, reverse
form). With exact winner determination VCG makes bidding one's true cost a dominant
strategy; with the greedy one it does not (the truthfulness check shows it).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from allocators._market import MISREPORT
from harness.api import Allocator, LocalView, Message, Outgoing, Param, Plan

MAX_POOL = 12


@dataclass(frozen=True)
class RequestForQuotes(Message):
    tasks: tuple[int, ...]


@dataclass(frozen=True)
class BundleBids(Message):
    bundles: tuple[tuple[tuple[int, ...], float], ...]  # (tasks in route order, price)


@dataclass(frozen=True)
class Award(Message):
    tasks: tuple[int, ...]  # empty: lost
    payment: float


def bundle_costs(view: LocalView, pool: int, size: int) -> dict[tuple[int, ...], float]:
    """Cost of the cheapest open (or closed, with an end point) path through every subset
    of the agent's ``pool`` cheapest capable tasks with at most ``size`` tasks, keyed by the
    tasks in route order. Held-Karp over subsets; time windows are not modelled."""
    t = view.tasks
    d0 = t.from_point(view.position)
    end = view.end
    dend = None if end is None else t.to_point(end)
    limit = min(view.bundle_limit, size or t.n)
    ok = np.flatnonzero(view.capable())
    cand = [int(j) for j in ok[np.argsort(d0[ok], kind="stable")][:pool]]
    k = len(cand)
    D = t.between
    cpd = float(view.agent["cost_per_distance"])
    fixed = float(view.agent.get("fixed_cost", 0.0))
    best: dict[tuple[int, int], tuple[float, int]] = {}  # (mask, last) -> (dist, prev)
    for a in range(k):
        best[(1 << a, a)] = (float(d0[cand[a]]), -1)
    out: dict[tuple[int, ...], float] = {}
    for n_in in range(1, limit + 1):
        for combo in itertools.combinations(range(k), n_in):
            mask = sum(1 << a for a in combo)
            if n_in > 1:
                for last in combo:
                    prev_mask = mask ^ (1 << last)
                    best[(mask, last)] = min(
                        (best[(prev_mask, p)][0] + float(D[cand[p], cand[last]]), p)
                        for p in combo
                        if p != last
                    )
            total, last = min(
                (best[(mask, a)][0] + (0.0 if dend is None else float(dend[cand[a]])), a)
                for a in combo
            )
            order = []
            m, a = mask, last
            while a != -1:
                order.append(cand[a])
                m, a = m ^ (1 << a), best[(m, a)][1]
            inside = float(sum(t["service_distance"][cand[a]] for a in combo))
            out[tuple(reversed(order))] = fixed * n_in + cpd * (total + inside)
    return out


def determine_winners(
    bids: list[tuple[int, tuple[int, ...], float]],
    value: np.ndarray,
    team: np.ndarray,
    method: str,
    exclude: int | None = None,
) -> tuple[float, list[int]]:
    """Reported welfare and the indices of the chosen bids ``(agent, tasks, price)``."""
    idx = [
        b
        for b, (agent, tasks, price) in enumerate(bids)
        if agent != exclude and value[list(tasks)].sum() - price > 0.0
    ]
    gain = {b: float(value[list(bids[b][1])].sum() - bids[b][2]) for b in idx}
    if method == "greedy":
        left = team.astype(np.int64).copy()
        used: set[int] = set()
        chosen = []
        for b in sorted(idx, key=lambda b: (bids[b][2] / len(bids[b][1]), bids[b][0], b)):
            agent, tasks, _ = bids[b]
            if agent in used or any(left[j] <= 0 for j in tasks):
                continue
            chosen.append(b)
            used.add(agent)
            for j in tasks:
                left[j] -= 1
        return sum(gain[b] for b in chosen), sorted(chosen)
    if not idx:
        return 0.0, []
    import pulp

    from harness.exact import solve_to_optimality

    prob = pulp.LpProblem("winners", pulp.LpMaximize)
    x = {b: prob.add_variable(f"x_{b}", cat="Binary") for b in idx}
    prob += pulp.lpSum(gain[b] * x[b] for b in idx)
    for agent in {bids[b][0] for b in idx}:
        prob += pulp.lpSum(x[b] for b in idx if bids[b][0] == agent) <= 1
    for j in {j for b in idx for j in bids[b][1]}:
        prob += pulp.lpSum(x[b] for b in idx if j in bids[b][1]) <= int(team[j])
    solve_to_optimality(prob, 60.0, "winner determination")
    chosen = sorted(b for b in idx if (x[b].value() or 0.0) > 0.5)
    return sum(gain[b] for b in chosen), chosen


class CombinatorialReverse(Allocator):
    name = "combinatorial"
    summary = "combinatorial reverse auction: bundle bids, exact or greedy winners, VCG"
    paper = "Cramton, Shoham, Steinberg (eds.), Combinatorial Auctions, MIT Press 2006, ch. 1, 12"
    families = ("mtsp", "mtsp_lkh3", "tsplib", "heterogeneous")
    market = "reverse"
    centralised = True
    params = (
        Param("winners", "exact", "winner determination", ("exact", "greedy")),
        Param("payment", "vcg", "payment rule", ("vcg", "bid")),
        Param("bundle_size", 3, "largest bundle an agent bids on (0 = no limit)", low=0),
        Param(
            "pool", 8, "an agent bids on subsets of its nearest capable tasks", low=1, high=MAX_POOL
        ),
        Param("margin", 0.0, "bid = cost * (1 + margin)", low=0.0),
        Param("auctioneer", 0, "the agent that buys the service of the tasks", low=0),
        *MISREPORT,
    )

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.boss = params["auctioneer"] % view.n_agents
        self.bids: dict[int, BundleBids] = {}
        self.award: Award | None = None
        self.my_bids: dict[tuple[int, ...], float] = {}

    def _quote(self) -> BundleBids:
        costs = bundle_costs(self.view, self.p["pool"], self.p["bundle_size"])
        scale = self.factor * (1.0 + self.p["margin"])
        self.my_bids = {tasks: c * scale for tasks, c in costs.items()}
        return BundleBids(tuple(sorted(self.my_bids.items())))

    def start(self) -> list[Outgoing]:
        if self.id != self.boss:
            return []
        self.bids[self.id] = self._quote()
        rfq = RequestForQuotes(tuple(range(self.view.tasks.n)))
        return [(k, rfq) for k in range(self.view.n_agents) if k != self.id]

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sender, msg in inbox:
            if isinstance(msg, RequestForQuotes):
                out.append((sender, self._quote()))
            elif isinstance(msg, BundleBids):
                self.bids[sender] = msg
            elif isinstance(msg, Award):
                self.award = msg
        if self.id == self.boss and len(self.bids) == self.view.n_agents:
            out += self._clear()
        return out

    def _values(self, bids: list[tuple[int, tuple[int, ...], float]]) -> np.ndarray:
        t = self.view.tasks
        if self.view.objective in ("min_sum", "min_max"):
            must = 1.0 + sum(p for _, _, p in bids)
            return np.full(t.n, must)
        return np.asarray(t["value"], dtype=np.float64)

    def _clear(self) -> list[Outgoing]:
        bids = [
            (agent, tasks, price)
            for agent in sorted(self.bids)
            for tasks, price in self.bids[agent].bundles
        ]
        self.bids = {}
        value = self._values(bids)
        t = self.view.tasks
        team = t["team"] if "team" in t.columns else np.ones(t.n)
        method = self.p["winners"]
        welfare, chosen = determine_winners(bids, value, team, method)
        awards: dict[int, Award] = {}
        for b in chosen:
            agent, tasks, price = bids[b]
            pay = price
            if self.p["payment"] == "vcg":
                without, _ = determine_winners(bids, value, team, method, exclude=agent)
                pay = price + (welfare - without)
            awards[agent] = Award(tasks, pay)
        out: list[Outgoing] = []
        for agent in range(self.view.n_agents):
            award = awards.get(agent, Award((), 0.0))
            if agent == self.id:
                self.award = award
            else:
                out.append((agent, award))
        return out

    def plan(self) -> Plan:
        if self.award is None or not self.award.tasks:
            return Plan(self.id, extra={"auction_rounds": 1.0})
        tasks = list(self.award.tasks)
        n = len(tasks)
        bid = self.my_bids.get(tuple(tasks), math.nan)
        return Plan(
            self.id,
            tasks,
            None,
            [bid / n] * n,
            [self.award.payment / n] * n,
            {"auction_rounds": 1.0},
        )
