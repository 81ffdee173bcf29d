"""Shared agent logic of the market mechanisms (docs/markets.md).

Every agent is a bidder, and also the holder (auctioneer) of the tasks ``j`` with
``j % n_agents == id``. A market is a broadcast medium: any agent may message any other
(``centralised = True`` in the runtime's terms), but no agent sees another's private data.

Private valuations: an agent values a task by what serving it adds, on the route it already
has (empty for one-task agents): ``value - fixed_cost - cost_per_distance * added distance``
(the task's value discounted at the insertion's start time where it has a discount), or the
payoff minus the fixed cost on ``max_payoff`` instances. Misreporting, for the harness's
truthfulness check, multiplies the valuation an agent acts on by ``misreport_factor`` when its
id is ``misreport_agent``; its true utility is what the evaluator computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from allocators._routes import NEG, Route
from harness.api import Allocator, LocalView, Message, Outgoing, Param, Plan
from harness.numerics import best_index, ranked

MISREPORT = (
    Param("misreport_agent", -1, "agent that misreports (truthfulness check); -1 none", low=-1),
    Param("misreport_factor", 1.0, "factor on the misreporting agent's valuations", low=0.0),
)


def holder_of(task: int, n_agents: int) -> int:
    return task % n_agents


class Valuer:
    """An agent's private marginal values of tasks on its current route."""

    def __init__(self, view: LocalView, factor: float = 1.0) -> None:
        self.view = view
        self.payoff = view.objective == "max_payoff"
        self.route = Route(view, "payoff" if self.payoff else "min_sum")
        self.fixed = float(view.agent.get("fixed_cost", 0.0))
        self.factor = factor
        self._cand: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._cand is None:
            self._cand = self.route.candidates()
        return self._cand

    def profit(self) -> np.ndarray:
        """Marginal profit of every task (value - cost), NEG where it cannot be served."""
        score, _, start = self._candidates()
        ok = np.isfinite(score) & self.view.capable()
        t = self.view.tasks
        if self.payoff:
            gain = score - self.fixed
        else:
            late = np.maximum(0.0, start - t["tw_start"])
            gain = t["value"] * np.exp(-t["discount"] * late) + score - self.fixed
        return np.where(ok, gain * self.factor, NEG)

    def cost(self) -> np.ndarray:
        """Marginal cost of every task (fixed cost + added travel), inf where infeasible."""
        score, _, _ = self._candidates()
        ok = np.isfinite(score) & self.view.capable()
        return np.where(ok, (self.fixed - score) * self.factor, np.inf)

    def add(self, task: int) -> None:
        _, pos, start = self._candidates()
        self.route.insert(task, int(pos[task]), float(start[task]))
        self._cand = None

    def remove(self, task: int) -> None:
        self.route.remove({task})
        self._cand = None

    def replace(self, route: Route) -> None:
        """Take another route (one built on a copy) as this agent's schedule."""
        self.route = route
        self._cand = None

    @property
    def full(self) -> bool:
        return self.route.full


@dataclass(frozen=True)
class Bid(Message):
    task: int
    amount: float
    seq: int  # the bidder's bid counter: a holder answers each bid once
    fitness: float = 0.0  # the bidder's fitness for the task, when the holder ranks by it


@dataclass(frozen=True)
class Result(Message):
    task: int
    won: bool
    price: float
    closed: bool  # the task takes no more agents
    seq: int  # the bid answered


@dataclass(frozen=True)
class Closed(Message):
    tasks: tuple[int, ...]


class TwoRoles(Allocator):
    """An agent that plays two roles of a market at once (bidder and holder, supplier and
    customer). What it sends to itself never goes on the wire: it is kept and read with the
    next step's inbox, in the round any other receiver would read it, and is not counted as
    traffic."""

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.self_box: list[Outgoing] = []

    def keep_local(self, out: list[Outgoing]) -> list[Outgoing]:
        """The messages for other agents; those for itself go to the next step."""
        keep = []
        for dst, msg in out:
            if dst == self.id:
                self.self_box.append((self.id, msg))
            else:
                keep.append((dst, msg))
        return keep

    def with_own(self, inbox: list[Outgoing]) -> list[Outgoing]:
        """This step's inbox: its own messages of last round first, then the others'."""
        own, self.self_box = self.self_box, []
        return own + list(inbox)


class RoundAuction(TwoRoles):
    """Multi-round sealed-bid auctions of single tasks, held by the tasks' holders in
    parallel. Each auction round: every bidder with room bids on one open task (its choice
    rule), each holder ranks the bids it received for each task, awards one winner per task
    and round (a task of team size k takes k winners over k rounds), tells every bidder the
    result with the price, and tells everyone when a task is full. Losers choose again.

    Subclasses set the side, the choice of task and bid, the markup after a loss, the
    ranking and the price rule.

    Faults: a holder answers each (bidder, bid number) once and repeats that answer to a
    duplicate or a resent bid; a bidder ignores results for bids it is not waiting on, and
    resends a bid that has had no answer for ``RESEND`` rounds, giving up on the task (as if
    closed) after ``GIVE_UP`` sends: so duplicates and reordering leave the outcome as it
    is, and loss or a crashed holder only delay it or leave a task out."""

    RESEND = 4
    GIVE_UP = 3

    market = "forward"
    centralised = True
    params: tuple[Param, ...] = (
        Param("reserve", 0.0, "holder's reserve price", low=0.0),
        *MISREPORT,
    )
    #: "first": the winner pays its bid; "second": the highest other bid not above the
    #: winner's bid in that round, at least the reserve (Vickrey when ranking by amount)
    price_rule = "first"
    #: second price with no other bid at or below the winner's: "reserve" (Vickrey) or
    #: "own" (the winner's bid is the next in the sorted list: the FMMRA paper's rule)
    second_fallback = "reserve"

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.valuer = Valuer(view, factor)
        n = view.tasks.n
        self.team = view.tasks["team"].astype(np.int64) if "team" in view.tasks.columns else None
        self.open = np.ones(n, dtype=bool)
        self.bid = np.full(n, np.nan)  # current bid level per task (strategies that keep one)
        self.pending: int | None = None
        self.sent_at = 0  # round of the last send of the pending bid
        self.sends = 0  # sends of the pending bid
        self.now = 0
        self.won: list[tuple[int, float, float]] = []  # (task, bid, price)
        self.rounds = 0
        # holder side
        self.mine = [j for j in range(n) if holder_of(j, view.n_agents) == self.id]
        self.slots = {j: int(self.team[j]) if self.team is not None else 1 for j in self.mine}
        self.answered: dict[int, Result] = {}  # bidder -> its last answered bid's result

    # -- strategy hooks ----------------------------------------------------------------------
    def choose(self) -> tuple[int, float] | None:
        """(task, bid) to bid next, or None. Default: the open task of largest profit, bid
        at the profit (truthful)."""
        profit = np.where(self.open, self.valuer.profit(), NEG)
        j = best_index(profit)
        if not np.isfinite(profit[j]) or profit[j] <= 0.0:
            return None
        return j, float(profit[j])

    def lost(self, task: int) -> None:
        """After a lost round on ``task`` (default: nothing changes)."""

    def rank(self, bid: Bid) -> float:
        """The holder's score of a bid: higher wins (default: the amount, forward; the
        lower ask, reverse)."""
        return bid.amount if self.market == "forward" else -bid.amount

    def fitness(self, task: int) -> float:
        return 0.0

    def limit(self, task: int) -> float:
        """The holder's public reserve: the least bid it takes (forward) or the most it pays
        (reverse: the task's value, unbounded on cost-minimising instances)."""
        if self.market == "forward":
            return float(self.p.get("reserve", 0.0))
        if self.view.objective in ("min_sum", "min_max"):
            return np.inf
        return float(self.view.tasks["value"][task])

    def acceptable(self, task: int, amount: float) -> bool:
        if self.market == "forward":
            return amount >= self.limit(task)
        return amount <= self.limit(task)

    def price(self, task: int, amount: float, others: list[float]) -> float:
        """The winner's price from its bid and the round's other bids on the task."""
        if self.price_rule != "second":
            return amount
        if self.market == "forward":  # the best other bid not above the winner's
            near = [b for b in others if b <= amount]
            best_other = max(near) if near else None
        else:  # the lowest other ask not below the winner's
            near = [b for b in others if b >= amount]
            best_other = min(near) if near else None
        if best_other is not None:
            return (
                max(best_other, self.limit(task))
                if self.market == "forward"
                else min(best_other, self.limit(task))
            )
        if self.second_fallback == "own":
            return amount
        return self.limit(task) if np.isfinite(self.limit(task)) else amount

    # -- protocol -----------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        return self._bid()

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        self.now = rnd
        inbox = self.with_own(inbox)
        bids: dict[int, dict[int, Bid]] = {}
        late: list[Outgoing] = []
        for sender, msg in inbox:
            if isinstance(msg, Bid):
                done = self.answered.get(sender)
                if done is not None and msg.seq <= done.seq:
                    if msg.seq == done.seq:
                        late.append((sender, done))  # a resent or duplicated bid
                elif self.slots.get(msg.task, 0) > 0:
                    bids.setdefault(msg.task, {})[sender] = msg
                else:
                    late.append((sender, self._answer(sender, msg, False, 0.0, True)))
            elif isinstance(msg, Result):
                if msg.task == self.pending and msg.seq == self.rounds:
                    self._result(msg)
                elif msg.closed:
                    self.open[msg.task] = False
            elif isinstance(msg, Closed):
                self.open[list(msg.tasks)] = False
        out = self.keep_local(late)
        out += self._award({j: sorted(b.items()) for j, b in bids.items()})
        out += self._resend()
        out += self._bid()
        return out

    def _answer(self, sender: int, bid: Bid, won: bool, price: float, closed: bool) -> Result:
        result = Result(bid.task, won, price, closed, bid.seq)
        self.answered[sender] = result
        return result

    def _resend(self) -> list[Outgoing]:
        if self.pending is None or self.now - self.sent_at < self.RESEND:
            return []
        j = self.pending
        if self.sends >= self.GIVE_UP:
            self.pending = None
            self.open[j] = False
            return []
        self.sends += 1
        self.sent_at = self.now
        bid = Bid(j, float(self.bid[j]), self.rounds, self.fitness(j))
        return self.keep_local([(holder_of(j, self.view.n_agents), bid)])

    def _result(self, msg: Result) -> None:
        self.pending = None
        if msg.closed:
            self.open[msg.task] = False
        if msg.won:
            self.won.append((msg.task, float(self.bid[msg.task]), msg.price))
            self.valuer.add(msg.task)
            self.open[msg.task] = False
        else:
            self.lost(msg.task)

    def _award(self, bids: dict[int, list[tuple[int, Bid]]]) -> list[Outgoing]:
        out: list[Outgoing] = []
        closed: list[int] = []
        for j, offers in sorted(bids.items()):
            # the best rank first; ranks tied within the tolerance go to the lower bidder id
            pos = ranked([self.rank(b) for _, b in offers], [s for s, _ in offers])
            order = [offers[p] for p in pos]
            winner, best = order[0]
            others = [b.amount for _, b in order[1:]]
            if not self.acceptable(j, best.amount):
                out += [(s, self._answer(s, b, False, 0.0, False)) for s, b in order]
                continue
            price = self.price(j, best.amount, others)
            self.slots[j] -= 1
            full = self.slots[j] == 0
            out.append((winner, self._answer(winner, best, True, price, full)))
            out += [(s, self._answer(s, b, False, 0.0, full)) for s, b in order[1:]]
            if full:
                closed.append(j)
        if closed:
            self.open[closed] = False
            msg = Closed(tuple(closed))
            out += [(k, msg) for k in range(self.view.n_agents) if k != self.id]
        return self.keep_local(out)

    def _bid(self) -> list[Outgoing]:
        if self.pending is not None or self.valuer.full:
            return []
        choice = self.choose()
        while choice is not None and not self.acceptable(*choice):
            self.open[choice[0]] = False  # beyond the public reserve: not worth bidding
            choice = self.choose()
        if choice is None:
            return []
        j, amount = choice
        self.bid[j] = amount
        self.pending = j
        self.rounds += 1
        self.sent_at, self.sends = self.now, 1
        bid = Bid(j, amount, self.rounds, self.fitness(j))
        return self.keep_local([(holder_of(j, self.view.n_agents), bid)])

    @property
    def converged(self) -> bool:
        return self.pending is None and not self.self_box and self._idle()

    def _idle(self) -> bool:
        if self.valuer.full:
            return True
        return self.choose() is None

    def plan(self) -> Plan:
        """The won tasks in route order, with their bids and prices."""
        won = {j: (b, p) for j, b, p in self.won}
        route = self.valuer.route
        order = [j for j in route.tasks if j in won]
        return Plan(
            self.id,
            order,
            [float(t) for j, t in zip(route.tasks, route.times, strict=True) if j in won],
            [won[j][0] for j in order],
            [won[j][1] for j in order],
            {"auction_rounds": float(self.rounds)},
        )


def param_dict(params: tuple[Param, ...]) -> dict[str, Any]:
    return {p.name: p.default for p in params}
