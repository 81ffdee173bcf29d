"""MAGNET for logistics: first-price reverse combinatorial auctions with time windows and
precedence (the seed paper ``magnet-logistics-auctions``, §2-3: customer agents issue
requests for quotes, supplier agents bid on bundles from their schedules, the customer
determines the winners).

Customers: agents ``0 .. customers-1``; task j belongs to customer ``j % customers``, and
several customers auction at once. Every agent is also a supplier (a truck) with a schedule.

A cycle: the customer sends its open tasks in a request for quotes (RFQ) to every agent.
A supplier walks the tasks sorted by earliest start (the paper's Figure 2): a task that
fits into its schedule (the committed one plus the tasks already put in this bid; windows,
slot and return to headquarters respected) is a potential include; with ``Closeby`` it is
included when the bid is still empty and the schedule is empty, or when its pickup lies
within ``closeby`` of the return point of a task in the schedule, or its return point
within ``closeby`` of one's pickup; with ``Random`` it is included with probability
``p_include``. An included task is inserted where it adds least driving, and its price is
that extra driving. The bid: the included tasks, their scheduled start times, the summed
price. The customer adds a dummy bid per task at ``dummy_price``, chooses the bids that
cover every task once at least total price, consistent with precedence between tasks of
different bids (winner determination by ``ida_star`` or an exact ``milp``), awards them
(first price: a winner is paid its bid) and rejects the others. A supplier checks an award
against its schedule again (another customer may have filled it) and accepts or refuses.
Tasks left to dummies or refused go into the next cycle's RFQ (``max_cycles`` caps the
cycles if set). Under
``Closeby`` a cycle that awards nothing would bring the same bids again, so the next RFQ
is marked ``relax`` and Closeby suppliers then bid on any task that fits (our reading: the
paper's Closeby covers every day); a relaxed cycle that awards nothing ends the
customer's auctions. Under ``Random``, ``max_idle`` cycles in a row that award nothing end
them.

Each plan's ``extra`` carries the customer's cycle count and, for the report's Table 5,
the bids received, tasks in bids and winner-determination search nodes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from allocators._market import MISREPORT, TwoRoles, Valuer
from allocators._routes import COST_ROUTING_FAMILIES, Route
from harness.api import LocalView, Message, Outgoing, Param, Plan


@dataclass(frozen=True)
class RFQ(Message):
    cycle: int
    tasks: tuple[int, ...]
    relax: bool = False  # the last cycle awarded nothing: Closeby drops its closeness test


@dataclass(frozen=True)
class Quote(Message):
    cycle: int
    tasks: tuple[int, ...]  # in schedule order
    times: tuple[float, ...]  # scheduled start of each
    prices: tuple[float, ...]  # extra driving of each, as inserted


@dataclass(frozen=True)
class Award(Message):
    cycle: int
    tasks: tuple[int, ...]  # empty: rejected


@dataclass(frozen=True)
class Answer(Message):
    cycle: int
    accepted: bool


def clone(route: Route) -> Route:
    """A copy of a route to try insertions on."""
    other = Route(route.view, route.mode)
    for k, (j, s) in enumerate(zip(route.tasks, route.times, strict=True)):
        other.insert(j, k, s)
    return other


class SearchBudget(Exception):
    """IDA* expanded more nodes than it was allowed."""


def winners_ida(
    bids: list[tuple[int, tuple[int, ...], tuple[float, ...], float]],
    tasks: list[int],
    dummy: float,
    precedence: np.ndarray | None,
    max_nodes: int = 0,
) -> tuple[list[int], float, int]:
    """IDA* over the tasks in order: the first uncovered task is covered by a bid that holds
    it and overlaps no chosen bid, or by its dummy. ``h`` = the sum over uncovered tasks of
    the least price share (bid price / bid size, or the dummy price) of any bid holding it:
    it never overestimates, so the first solution within the threshold is optimal.
    Returns the chosen bid indices, the total price and the nodes expanded; raises
    :class:`SearchBudget` past ``max_nodes`` expansions (0: no limit)."""
    order = sorted(tasks)
    share = {j: dummy for j in order}
    holding: dict[int, list[int]] = {j: [] for j in order}
    for b, (_, ts, _, price) in enumerate(bids):
        for j in ts:
            holding[j].append(b)
            share[j] = min(share[j], price / len(ts))
    times = {}
    for b, (_, ts, tm, _) in enumerate(bids):
        for j, s in zip(ts, tm, strict=True):
            times[(b, j)] = s
    prec = [] if precedence is None else [(int(x), int(y)) for x, y in precedence]
    nodes = 0

    def consistent(chosen: list[int]) -> bool:
        start: dict[int, float] = {}
        for b in chosen:
            for j in bids[b][1]:
                start[j] = times[(b, j)]
        return all(not (x in start and y in start) or start[x] < start[y] for x, y in prec)

    def search(covered: frozenset, chosen: list[int], g: float, limit: float):
        nonlocal nodes
        nodes += 1
        if max_nodes and nodes > max_nodes:
            raise SearchBudget(nodes)
        open_tasks = [j for j in order if j not in covered]
        h = sum(share[j] for j in open_tasks)
        f = g + h
        if f > limit + 1e-9:
            return None, f
        if not open_tasks:
            return (list(chosen), g), f
        j = open_tasks[0]
        nxt = np.inf
        options = sorted(
            (b for b in holding[j] if not covered.intersection(bids[b][1])),
            key=lambda b: (bids[b][3] / len(bids[b][1]), b),
        )
        for b in options:
            chosen.append(b)
            if consistent(chosen):
                found, f2 = search(covered | set(bids[b][1]), chosen, g + bids[b][3], limit)
                if found is not None:
                    return found, f2
                nxt = min(nxt, f2)
            chosen.pop()
        found, f2 = search(covered | {j}, chosen, g + dummy, limit)  # the dummy bid
        if found is not None:
            return found, f2
        return None, min(nxt, f2)

    limit = sum(share[j] for j in order)
    while True:
        found, f = search(frozenset(), [], 0.0, limit)
        if found is not None:
            return found[0], found[1], nodes
        limit = f


def winners_milp(
    bids: list[tuple[int, tuple[int, ...], tuple[float, ...], float]],
    tasks: list[int],
    dummy: float,
    precedence: np.ndarray | None,
) -> tuple[list[int], float, int]:
    """The same winner determination as a set-partitioning MILP (PuLP + CBC)."""
    import pulp

    from harness.exact import solve_to_optimality

    prob = pulp.LpProblem("magnet_winners", pulp.LpMinimize)
    x = [prob.add_variable(f"x_{b}", cat="Binary") for b in range(len(bids))]
    d = {j: prob.add_variable(f"d_{j}", cat="Binary") for j in tasks}
    prob += pulp.lpSum(b[3] * v for b, v in zip(bids, x, strict=True)) + dummy * pulp.lpSum(
        d.values()
    )
    for j in tasks:
        prob += pulp.lpSum(x[b] for b in range(len(bids)) if j in bids[b][1]) + d[j] == 1
    for a, c in [] if precedence is None else precedence.tolist():
        for p, bp in enumerate(bids):
            for q, bq in enumerate(bids):
                if a in bp[1] and c in bq[1]:
                    sa = bp[2][bp[1].index(a)]
                    sc = bq[2][bq[1].index(c)]
                    if sa >= sc:  # together (or alone, p == q) they break the precedence
                        prob += x[p] + x[q] <= 1 if p != q else x[p] == 0
    solve_to_optimality(prob, 60.0, "MAGNET winner determination")
    chosen = [b for b, v in enumerate(x) if (v.value() or 0.0) > 0.5]
    total = sum(bids[b][3] for b in chosen) + dummy * sum(
        1 for v in d.values() if (v.value() or 0.0) > 0.5
    )
    return chosen, float(total), 1


class Magnet(TwoRoles):
    name = "magnet"
    summary = "MAGNET: first-price reverse combinatorial auctions with windows, RFQ cycles"
    paper = "MAGNET for logistics (seed paper), after Collins et al., MAGNET (2002)"
    families = COST_ROUTING_FAMILIES
    market = "reverse"
    centralised = True
    params = (
        Param("strategy", "closeby", "supplier bidding", ("closeby", "random")),
        Param("closeby", 10.0, "distance under which a task is close (Closeby)", low=0.0),
        Param(
            "p_include", 0.5, "probability of including a fitting task (Random)", low=0.0, high=1.0
        ),
        Param("winners", "ida_star", "winner determination", ("ida_star", "milp")),
        Param("ida_nodes", 200_000, "IDA* node budget before the MILP takes over (0: none)", low=0),
        Param("customers", 1, "agents 0..k-1 hold the tasks and auction them", low=1),
        Param("dummy_price", 1e6, "price of the dummy bid per task", low=0.0),
        Param("max_cycles", 0, "RFQ cycles per customer at most (0 = no limit)", low=0),
        Param(
            "max_idle", 3, "Random: consecutive cycles that award nothing before it stops", low=1
        ),
        *MISREPORT,
    )

    def __init__(self, view: LocalView, params: dict[str, Any], rng: np.random.Generator) -> None:
        super().__init__(view, params, rng)
        self.factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.valuer = Valuer(view)
        self.won: dict[int, tuple[float, float]] = {}  # task -> (bid share, price share)
        self.quoted: dict[tuple[int, int], Quote] = {}  # (customer, cycle) -> my quote
        self.decided: set[tuple[int, int]] = set()  # (customer, cycle) awards answered
        k = min(params["customers"], view.n_agents)
        n = view.tasks.n
        self.mine = [j for j in range(n) if j % k == self.id] if self.id < k else []
        self.open = list(self.mine)
        self.cycle = 0
        self.phase = "idle"  # customer: "bidding" -> "awarding" -> next cycle or "done"
        self.relaxed = False
        self.idle = 0  # cycles in a row that awarded nothing
        self.quotes: dict[int, Quote] = {}
        self.waiting: dict[int, tuple[int, ...]] = {}  # supplier -> awarded tasks
        self.due = 0
        self.stats = {
            "cycles": 0.0,
            "bids": 0.0,
            "bid_tasks": 0.0,
            "wd_nodes": 0.0,
            "wd_nodes_max": 0.0,
            "wd_calls": 0.0,
            "wd_fallbacks": 0.0,
        }
        self.now = 0
        self.wd_seconds: list[float] = []
        self.precedence = view.precedence

    # -- supplier -----------------------------------------------------------------------------
    def quote(self, cycle: int, tasks: tuple[int, ...], relax: bool = False) -> Quote:
        t = self.view.tasks
        trial = clone(self.valuer.route)
        prices: dict[int, float] = {}
        pick, exit_ = t.xyz, t.exit_xyz
        capable = self.view.capable()
        score, pos, start = trial.candidates()  # again only after an insertion
        for j in sorted(tasks, key=lambda j: (t["tw_start"][j], j)):
            if not (np.isfinite(score[j]) and capable[j]):
                continue  # does not fit the schedule
            if self.p["strategy"] == "random":
                include = self.rng.random() < self.p["p_include"]
            elif not trial.tasks or relax:
                include = True  # an empty schedule takes the first task that fits
            else:
                here = np.array(trial.tasks)
                near_in = np.linalg.norm(exit_[here] - pick[j], axis=1).min()
                near_out = np.linalg.norm(pick[here] - exit_[j], axis=1).min()
                include = min(near_in, near_out) <= self.p["closeby"]
            if include:
                prices[j] = -float(score[j]) * self.factor
                trial.insert(j, int(pos[j]), float(start[j]))
                score, pos, start = trial.candidates()
        order = [j for j in trial.tasks if j in prices]
        times = {j: s for j, s in zip(trial.tasks, trial.times, strict=True)}
        return Quote(
            cycle, tuple(order), tuple(times[j] for j in order), tuple(prices[j] for j in order)
        )

    def accept(self, award: Award, quote: Quote) -> bool:
        """Commit the awarded tasks if they still fit the schedule; all or nothing."""
        trial = clone(self.valuer.route)
        t = self.view.tasks
        for j in sorted(award.tasks, key=lambda j: (t["tw_start"][j], j)):  # as quoted
            score, pos, start = trial.candidates()
            if not np.isfinite(score[j]):
                return False
            trial.insert(j, int(pos[j]), float(start[j]))
        self.valuer.replace(trial)
        for j, p in zip(quote.tasks, quote.prices, strict=True):
            self.won[j] = (p, p)  # first price: paid what it asked for each task
        return True

    # -- customer -----------------------------------------------------------------------------
    def _rfq(self, relax: bool = False) -> list[Outgoing]:
        limit = self.p["max_cycles"]
        if not self.open or (limit and self.cycle >= limit):
            self.phase = "done"
            return []
        self.relaxed = relax
        self.cycle += 1
        self.stats["cycles"] += 1
        self.phase = "bidding"
        self.quotes = {}
        self.due = self.now + 2
        msg = RFQ(self.cycle, tuple(self.open), relax)
        return self.keep_local([(k, msg) for k in range(self.view.n_agents)])

    def _determine(self) -> list[Outgoing]:
        bids = [
            (k, q.tasks, q.times, float(sum(q.prices)))
            for k, q in sorted(self.quotes.items())
            if q.tasks
        ]
        self.stats["bids"] += len(bids)
        self.stats["bid_tasks"] += sum(len(b[1]) for b in bids)
        t0 = time.perf_counter()  # measured for the report, never used to decide
        args = (bids, list(self.open), self.p["dummy_price"], self.precedence)
        if self.p["winners"] == "ida_star":
            try:
                chosen, _, nodes = winners_ida(*args, max_nodes=self.p["ida_nodes"])
            except SearchBudget as over:  # as exact, and bounded: the MILP takes over
                chosen, _, _ = winners_milp(*args)
                nodes = over.args[0]
                self.stats["wd_fallbacks"] += 1
        else:
            chosen, _, nodes = winners_milp(*args)
        self.wd_seconds.append(time.perf_counter() - t0)
        self.stats["wd_nodes"] += nodes
        self.stats["wd_calls"] += 1
        self.stats["wd_nodes_max"] = max(self.stats["wd_nodes_max"], nodes)
        winners = {bids[b][0]: bids[b][1] for b in chosen}
        self.waiting = dict(winners)
        self.phase = "awarding"
        self.due = self.now + 2
        self.awarded_any = bool(winners)
        out = [(k, Award(self.cycle, winners.get(k, ()))) for k in sorted(self.quotes)]
        return self.keep_local(out)

    def _answered(self, supplier: int, ans: Answer) -> None:
        tasks = self.waiting.pop(supplier, ())
        if ans.accepted:
            self.open = [j for j in self.open if j not in tasks]

    # -- protocol ---------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        return self._rfq() if self.mine else []

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        self.now = rnd
        inbox = self.with_own(inbox)
        out: list[Outgoing] = []
        for sender, msg in sorted(inbox, key=lambda sm: (_RANK[type(sm[1])], sm[0])):
            if isinstance(msg, RFQ):
                key = (sender, msg.cycle)
                if key not in self.quoted:
                    self.quoted[key] = self.quote(msg.cycle, msg.tasks, msg.relax)
                    out += self.keep_local([(sender, self.quoted[key])])
            elif isinstance(msg, Quote):
                if self.phase == "bidding" and msg.cycle == self.cycle:
                    self.quotes[sender] = msg
            elif isinstance(msg, Award):
                key = (sender, msg.cycle)
                quote = self.quoted.get(key)
                if msg.tasks and quote is not None and key not in self.decided:
                    ok = self.accept(msg, quote)
                    self.decided.add(key)
                    out += self.keep_local([(sender, Answer(msg.cycle, ok))])
            elif isinstance(msg, Answer) and self.phase == "awarding" and msg.cycle == self.cycle:
                self._answered(sender, msg)
        if self.phase == "bidding" and self.now >= self.due:
            out += self._determine()
        if self.phase == "awarding" and (not self.waiting or self.now >= self.due + 2):
            self.waiting = {}
            self.idle = 0 if self.awarded_any else self.idle + 1
            stalled = not self.awarded_any and self.p["strategy"] == "closeby"
            if stalled and self.relaxed:
                self.phase = "done"  # even without the closeness test nobody can take them
            elif self.p["strategy"] == "random" and self.idle >= self.p["max_idle"]:
                self.phase = "done"
            else:
                out += self._rfq(relax=stalled)
        return out

    @property
    def converged(self) -> bool:
        return not self.self_box and self.phase in ("idle", "done")

    def measurements(self) -> dict[str, float]:
        """Winner-determination wall time (for the report's Table 5)."""
        if not self.wd_seconds:
            return {}
        w = self.wd_seconds
        return {
            "wd_s": float(sum(w)),
            "wd_s_sq": float(sum(x * x for x in w)),
            "wd_s_max": float(max(w)),
            "wd_calls": float(len(w)),
        }

    def plan(self) -> Plan:
        r = self.valuer.route
        extra = {"auction_rounds": self.stats["cycles"], **self.stats} if self.mine else None
        return Plan(
            self.id,
            list(r.tasks),
            [float(s) for s in r.times],
            [self.won[j][0] for j in r.tasks],
            [self.won[j][1] for j in r.tasks],
            extra,
        )


_RANK = {Answer: 0, Award: 1, Quote: 2, RFQ: 3}
