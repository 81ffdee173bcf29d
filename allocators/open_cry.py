"""Open-cry auctions of single tasks, held in parallel by the tasks' holders (forward
market: agents buy the right to serve tasks; one task per agent).

English (ascending): each holder announces the ask of each of its tasks to every agent; an
agent that holds no standing bid bids the ask on the task where its valuation exceeds the
ask by most; a task of team size k keeps its k highest bids standing, and the ask is the
lowest standing bid plus ``increment`` once all k places are taken (the reserve before).
An outbid agent is told and bids again. The auction ends when nobody bids; standing
bidders win and pay their bids. With unit demand this is the simultaneous ascending
auction (Bertsekas' auction with the increment as epsilon): within ``k * increment`` of the
welfare optimum per agent.

Dutch (descending): each holder starts every task at ``start`` and lowers the price by
``decrement * start`` each round, announcing it to every agent; an agent takes the task
with the largest surplus once the price falls to ``shade`` times its valuation (``shade``
= 1: truthful; below 1 it waits, as a first-price bidder shades). Takers in the same round
are served in id order while places remain; a task whose price reaches the reserve
closes unsold. Strategically the Dutch auction is a first-price auction.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from allocators._market import MISREPORT, TwoRoles, Valuer, holder_of
from allocators._routes import NEG
from harness.api import Message, Outgoing, Param, Plan
from harness.numerics import best_index, ranked


@dataclass(frozen=True)
class Asks(Message):
    """A holder's current prices for some of its tasks (NaN: closed)."""

    tasks: tuple[int, ...]
    prices: tuple[float, ...]


@dataclass(frozen=True)
class Offer(Message):
    task: int
    amount: float
    seq: int


@dataclass(frozen=True)
class Standing(Message):
    task: int
    amount: float
    seq: int  # the offer this answers
    accepted: bool  # False: rejected, or outbid after standing


class _OpenCry(TwoRoles):
    market = "forward"
    centralised = True
    families = ("assignment", "heterogeneous")

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.value = Valuer(view, factor).profit()  # one task per agent: standalone values
        n = view.tasks.n
        self.ask = np.full(n, self.opening())
        self.mine = [j for j in range(n) if holder_of(j, view.n_agents) == self.id]
        team = view.tasks["team"] if "team" in view.tasks.columns else np.ones(n)
        self.places = {j: int(team[j]) for j in self.mine}
        self.seq = 0
        self.pending: int | None = None
        self.holding: tuple[int, float] | None = None  # (task, amount) standing or won
        self.offers_made = 0

    @abstractmethod
    def opening(self) -> float:
        """The price every task's auction opens at (public)."""

    def _announce(self, tasks: list[int]) -> list[Outgoing]:
        if not tasks:
            return []
        msg = Asks(tuple(tasks), tuple(float(self.ask[j]) for j in tasks))
        return self.keep_local([(k, msg) for k in range(self.view.n_agents)])

    def _choose(self) -> int | None:
        surplus = np.where(np.isfinite(self.ask), self.value - self.ask, NEG)
        surplus = np.where(np.isfinite(self.value), surplus, NEG)
        j = best_index(surplus)
        return j if self.wants(j, surplus[j]) else None

    @abstractmethod
    def wants(self, task: int, surplus: float) -> bool:
        """Whether to bid now on ``task``, the one of largest surplus at current prices."""

    def _offer(self) -> list[Outgoing]:
        if self.holding is not None or self.pending is not None:
            return []
        j = self._choose()
        if j is None:
            return []
        self.seq += 1
        self.offers_made += 1
        self.pending = j
        return self.keep_local(
            [(holder_of(j, self.view.n_agents), Offer(j, float(self.ask[j]), self.seq))]
        )

    def plan(self) -> Plan:
        if self.holding is None:
            return Plan(self.id, extra={"auction_rounds": float(self.offers_made)})
        j, amount = self.holding
        return Plan(
            self.id, [j], None, [amount], [amount], {"auction_rounds": float(self.offers_made)}
        )


class English(_OpenCry):
    name = "english"
    summary = "English (ascending open-cry) auctions of single tasks, in parallel"
    paper = "Krishna, Auction Theory (2010) ch. 2; Bertsekas, The auction algorithm (1988)"
    params = (
        Param("increment", 0.5, "bid increment once a task's places are taken", low=1e-9),
        Param("reserve", 0.0, "opening ask", low=0.0),
        *MISREPORT,
    )

    def opening(self) -> float:
        return float(self.p["reserve"])

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.standing: dict[int, list[tuple[float, int, int]]] = {j: [] for j in self.mine}
        self.answered: dict[tuple[int, int], Standing] = {}

    def wants(self, task: int, surplus: float) -> bool:
        return surplus > 0.0

    def start(self) -> list[Outgoing]:
        return self._offer()

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        inbox = self.with_own(inbox)
        out: list[Outgoing] = []
        offers: list[tuple[int, Offer]] = []
        for sender, msg in inbox:
            if isinstance(msg, Asks):
                for j, p in zip(msg.tasks, msg.prices, strict=True):
                    self.ask[j] = max(self.ask[j], p)  # asks only rise: stale ones lose
            elif isinstance(msg, Offer):
                offers.append((sender, msg))
            elif isinstance(msg, Standing):
                self._standing(msg)
        changed: set[int] = set()
        pos = ranked([o.amount for _, o in offers], [s for s, _ in offers])
        for sender, offer in (offers[p] for p in pos):
            key = (sender, offer.seq)
            if key in self.answered:  # a duplicate: repeat the answer
                out.append((sender, self.answered[key]))
                continue
            j = offer.task
            places = self.standing[j]
            ok = offer.amount >= self.ask[j] - 1e-12
            answer = Standing(j, offer.amount, offer.seq, ok)
            self.answered[key] = answer
            out.append((sender, answer))
            if not ok:
                continue
            places.append((offer.amount, -sender, offer.seq))
            places.sort(reverse=True)
            if len(places) > self.places[j]:
                amount, neg, seq = places.pop()
                out.append((-neg, Standing(j, amount, seq, False)))
            if len(places) == self.places[j]:
                self.ask[j] = places[-1][0] + self.p["increment"]
            changed.add(j)
        out += self._announce(sorted(changed))
        out = self.keep_local(out)
        return out + self._offer()

    def _standing(self, msg: Standing) -> None:
        if msg.accepted:
            if self.pending == msg.task and msg.seq == self.seq:
                self.pending = None
                self.holding = (msg.task, msg.amount)
        elif self.pending == msg.task and msg.seq == self.seq:
            self.pending = None  # rejected: the ask had risen; bid again
        elif self.holding is not None and self.holding[0] == msg.task and msg.seq == self.seq:
            self.holding = None  # outbid

    @property
    def converged(self) -> bool:
        return (
            not self.self_box
            and self.pending is None
            and (self.holding is not None or self._choose() is None)
        )


class Dutch(_OpenCry):
    name = "dutch"
    summary = "Dutch (descending clock) auctions of single tasks, in parallel"
    paper = "Krishna, Auction Theory (2010) ch. 2 (strategic equivalence with first price)"
    params = (
        Param(
            "start", 0.0, "opening price; 0 = the largest valuation possible on the family", low=0.0
        ),
        Param(
            "decrement",
            0.02,
            "price step per round, as a fraction of the start",
            low=1e-6,
            high=1.0,
        ),
        Param(
            "shade",
            1.0,
            "take a task once the price is this fraction of one's valuation",
            low=0.0,
            high=1.0,
        ),
        Param("reserve", 0.0, "price at which a task closes unsold", low=0.0),
        *MISREPORT,
    )

    def opening(self) -> float:
        if self.p["start"] > 0:
            return float(self.p["start"])
        t = self.view.tasks
        top = float(np.max(t["value"]))
        return top * 100.0 if self.view.objective == "max_payoff" else top

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.step_size = self.opening() * params["decrement"]
        self.open_mine = set(self.mine)
        self.taken: dict[tuple[int, int], Standing] = {}

    def wants(self, task: int, surplus: float) -> bool:
        return self.ask[task] <= self.p["shade"] * self.value[task] + 1e-12

    def start(self) -> list[Outgoing]:
        return self._announce(sorted(self.open_mine))

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        inbox = self.with_own(inbox)
        out: list[Outgoing] = []
        takes: list[tuple[int, Offer]] = []
        for sender, msg in inbox:
            if isinstance(msg, Asks):
                for j, p in zip(msg.tasks, msg.prices, strict=True):
                    self.ask[j] = min(self.ask[j], p) if np.isfinite(p) else np.inf
            elif isinstance(msg, Offer):
                takes.append((sender, msg))
            elif isinstance(msg, Standing) and self.pending == msg.task and msg.seq == self.seq:
                self.pending = None
                if msg.accepted:
                    self.holding = (msg.task, msg.amount)
        closed: list[int] = []
        for sender, take in sorted(takes, key=lambda so: so[0]):
            key = (sender, take.seq)
            if key in self.taken:
                out.append((sender, self.taken[key]))
                continue
            j = take.task
            ok = j in self.open_mine and self.places[j] > 0
            answer = Standing(j, take.amount, take.seq, ok)
            self.taken[key] = answer
            out.append((sender, answer))
            if ok:
                self.places[j] -= 1
                if self.places[j] == 0:
                    self.open_mine.discard(j)
                    closed.append(j)
        for j in sorted(self.open_mine):  # the clock
            self.ask[j] -= self.step_size
            if self.ask[j] < self.p["reserve"] - 1e-12:
                self.open_mine.discard(j)
                closed.append(j)
        for j in closed:
            self.ask[j] = np.inf
        out += self._announce(sorted(set(self.open_mine) | set(closed)))
        out = self.keep_local(out)
        return out + self._offer()

    @property
    def converged(self) -> bool:
        return not self.open_mine and not self.self_box and self.pending is None
