"""A continuous double auction for tasks, on asynchronous delivery: agents offer their
capacity (asks), task holders demand service (bids), and orders trade the moment they cross
(after Friedman's continuous double auction, with Gode and Sunder's conceding traders).

Every agent is a seller of its one unit of capacity and the holder of the tasks
``j % n_agents == id``. A seller asks, on the open task whose value most exceeds its cost,
``cost * (1 + spread)`` at first; a holder stands ready to pay ``value * (1 - spread)`` at
first. When an ask reaches a holder it trades at once if the holder's standing bid covers
it (price: the standing bid, the order that was there first); otherwise the holder raises
its bid by ``concession * value`` (at most the value) and quotes it back, and the seller
lowers its ask by ``concession * cost`` (at least the cost) and asks again, where its
surplus at the quoted prices is now largest. A task takes ``team`` agents; a seller only asks
for tasks worth more than its cost. Messages are handled as they arrive, so who trades
depends on the delivery order, as in a real continuous market; the harness's seeded
latencies make it reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocators._market import MISREPORT, Valuer, holder_of
from harness.api import Allocator, Message, Outgoing, Param, Plan
from harness.numerics import best_index


@dataclass(frozen=True)
class Ask(Message):
    task: int
    price: float
    seq: int


@dataclass(frozen=True)
class Fill(Message):
    """The holder's answer to an ask: a trade at ``price``, or its standing bid (no trade);
    ``full``: the task takes nobody more."""

    task: int
    seq: int
    traded: bool
    price: float
    full: bool


class DoubleAuction(Allocator):
    name = "double_auction"
    summary = "continuous double auction: conceding asks and bids trade when they cross (async)"
    paper = "Friedman, The double auction market institution (1991); Gode & Sunder, JPE 1993"
    families = ("heterogeneous",)
    market = "reverse"
    centralised = True
    synchronous = False
    params = (
        Param(
            "spread",
            0.5,
            "first ask = cost*(1+spread); first bid = value*(1-spread)",
            low=0.0,
            high=1.0,
        ),
        Param(
            "concession",
            0.1,
            "step of a conceding order, as a fraction of cost or value",
            low=1e-3,
            high=1.0,
        ),
        *MISREPORT,
    )

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.cost = Valuer(view, factor).cost()
        t = view.tasks
        self.value = np.asarray(t["value"], dtype=np.float64)
        n = t.n
        self.ask = self.cost * (1.0 + params["spread"])
        self.quote = self.value * (1.0 - params["spread"])  # what the seller believes
        self.open = np.isfinite(self.cost) & (self.cost < self.value)
        self.seq = 0
        self.pending: int | None = None
        self.sold: tuple[int, float, float] | None = None  # (task, ask, price)
        self.asks_sent = 0
        # holder side
        team = t["team"] if "team" in t.columns else np.ones(n)
        self.mine = {j: int(team[j]) for j in range(n) if holder_of(j, view.n_agents) == self.id}
        self.bid = {j: self.value[j] * (1.0 - params["spread"]) for j in self.mine}
        self.answered: dict[tuple[int, int], Fill] = {}

    # -- seller ---------------------------------------------------------------------------
    def _next_ask(self) -> list[Outgoing]:
        if self.sold is not None or self.pending is not None or not self.open.any():
            return []
        surplus = np.where(self.open, self.quote - self.ask, -np.inf)
        j = best_index(surplus)
        self.seq += 1
        self.asks_sent += 1
        self.pending = j
        return self._send(holder_of(j, self.view.n_agents), Ask(j, float(self.ask[j]), self.seq))

    def _filled(self, msg: Fill) -> list[Outgoing]:
        if msg.task != self.pending or msg.seq != self.seq:
            return []  # a stale or repeated answer
        self.pending = None
        j = msg.task
        if msg.traded:
            self.sold = (j, float(self.ask[j]), msg.price)
            return []
        self.quote[j] = max(self.quote[j], msg.price)
        if msg.full:
            self.open[j] = False
        else:  # (tasks worth less than the cost are never asked: the holder's bid rises to
            # the value, so asking again ends in a trade or a full task)
            step = self.p["concession"] * self.cost[j]
            self.ask[j] = max(self.cost[j], self.ask[j] - step)
        return self._next_ask()

    # -- holder ---------------------------------------------------------------------------
    def _answer(self, sender: int, ask: Ask) -> Fill:
        key = (sender, ask.seq)
        if key in self.answered:
            return self.answered[key]
        j = ask.task
        if self.mine[j] <= 0:
            fill = Fill(j, ask.seq, False, float(self.bid[j]), True)
        elif ask.price <= self.bid[j] + 1e-12:
            self.mine[j] -= 1
            fill = Fill(j, ask.seq, True, float(self.bid[j]), self.mine[j] == 0)
        else:
            self.bid[j] = min(self.value[j], self.bid[j] + self.p["concession"] * self.value[j])
            fill = Fill(j, ask.seq, False, float(self.bid[j]), False)
        self.answered[key] = fill
        return fill

    # -- delivery -------------------------------------------------------------------------
    def _send(self, dst: int, msg: Message) -> list[Outgoing]:
        """An agent's own holder role answers its seller role at once (no wire)."""
        if dst != self.id:
            return [(dst, msg)]
        return self._filled(self._answer(self.id, msg))

    def start(self) -> list[Outgoing]:
        return self._next_ask()

    def receive(self, sender: int, message: Message) -> list[Outgoing]:
        if isinstance(message, Ask):
            return [(sender, self._answer(sender, message))]
        if isinstance(message, Fill):
            return self._filled(message)
        return []

    @property
    def converged(self) -> bool:
        return self.pending is None

    def plan(self) -> Plan:
        extra = {"auction_rounds": float(self.asks_sent)}
        if self.sold is None:
            return Plan(self.id, extra=extra)
        j, ask, price = self.sold
        return Plan(self.id, [j], None, [ask], [price], extra)
