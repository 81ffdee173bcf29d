"""OMB: optimal market-based assignment by strategic pricing (Liu and Shell, RSS 2013; the
CAGA paper's "OMB" baseline). docs/uncertainty.md, "OMB", says what was taken from where.

Robots are customers, tasks are goods, and a merchant (agent 0) prices the goods. Each round
trip of the protocol:

1. The merchant announces the prices (all 0 at first).
2. Each customer answers with its *demand*: the goods of largest net value ``c_ij − p_j`` for
   it (ties within the tolerance), and whether buying nothing (value 0) is among them. Its
   payoffs stay private.
3. The merchant matches customers to demanded goods (a maximum matching of the preference
   graph). If every customer is matched, the market clears: the merchant announces who buys
   what and the prices are Walrasian, so the assignment is optimal.
4. Otherwise some goods are over-demanded: the customers reachable from an unmatched one by
   alternating paths, ``S``, demand only the goods ``N(S)``, fewer than themselves (Hall). The
   merchant names ``N(S)`` to the customers of ``S``; each answers with its slack, how much
   ``N(S)`` may rise before another good (or nothing) is as good for it; the merchant raises
   ``N(S)`` by the smallest slack. Back to 1.

This is the Hungarian method read as a market (the paper's point: a merchant's pricing
policy, O(n³ lg n), optimal); the messages are real and counted, and the merchant never sees a
payoff, only demands and slacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocators._cbba_rules import NONE
from allocators.cbaa import next_task_scores
from harness.api import Allocator, Message, Outgoing, Plan
from harness.numerics import TIE_RTOL, tied

MERCHANT = 0


@dataclass(frozen=True)
class Prices(Message):
    p: np.ndarray


@dataclass(frozen=True)
class Demand(Message):
    goods: tuple[int, ...]
    nothing: bool  # buying nothing is as good as the best good


@dataclass(frozen=True)
class Constricted(Message):
    goods: tuple[int, ...]


@dataclass(frozen=True)
class Slack(Message):
    delta: float


@dataclass(frozen=True)
class Cleared(Message):
    owner: tuple[int, ...]  # per customer: its good, or -1
    p: np.ndarray


class OMB(Allocator):
    name = "omb"
    summary = "market with a merchant raising the prices of over-demanded goods (optimal)"
    paper = (
        "Liu, Shell. Optimal Market-based Multi-Robot Task Allocation via Strategic Pricing. "
        "RSS 2013"
    )
    families = ("assignment",)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.c = next_task_scores(view, {"score": "payoff"})  # values >= 0: nothing is 0
        self.n, self.m = view.tasks.n, view.n_agents
        self.task = NONE
        self.price = 0.0
        self.p = np.zeros(self.n)
        # the merchant's state
        self.demands: dict[int, Demand] = {}
        self.slacks: dict[int, float] = {}
        self.waiting: set[int] = set()
        self.raises = 0

    # -- customer ----------------------------------------------------------------------------
    def _demand(self) -> Demand:
        v = np.where(np.isfinite(self.c), self.c - self.p, -np.inf)
        best = float(v.max()) if len(v) else -np.inf
        top = max(best, 0.0)
        goods = tuple(int(j) for j in np.flatnonzero(np.isfinite(v) & tied(v, top)))
        return Demand(goods if best >= -TIE_RTOL else (), bool(tied(top, 0.0)))

    def _slack(self, goods: tuple[int, ...]) -> float:
        v = np.where(np.isfinite(self.c), self.c - self.p, -np.inf)
        inside = np.zeros(self.n, dtype=bool)
        inside[list(goods)] = True
        best = max(float(v[inside].max()) if inside.any() else -np.inf, 0.0)
        outside = max(float(v[~inside].max()) if (~inside).any() else -np.inf, 0.0)
        return best - outside

    # -- the protocol ------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        if self.id != MERCHANT:
            return []
        out = self._announce()
        while not self.waiting and self.stage != "done":  # a merchant with no customers
            out += self._merchant()
        return out

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sender, msg in inbox:
            if isinstance(msg, Prices):
                self.p = np.asarray(msg.p, dtype=float)
                out.append((MERCHANT, self._demand()))
            elif isinstance(msg, Constricted):
                out.append((MERCHANT, Slack(self._slack(msg.goods))))
            elif isinstance(msg, Cleared):
                self._take(msg)
            elif isinstance(msg, Demand):
                self.demands[sender] = msg
                self.waiting.discard(sender)
            elif isinstance(msg, Slack):
                self.slacks[sender] = msg.delta
                self.waiting.discard(sender)
        if self.id == MERCHANT and not self.waiting:
            out += self._merchant()
        return out

    def _announce(self) -> list[Outgoing]:
        """Prices to every customer; the merchant's own demand is taken at once."""
        prices = self.p.copy()
        prices.setflags(write=False)
        self.demands = {MERCHANT: self._demand()}
        self.waiting = set(self.view.neighbours)
        self.stage = "demand"
        return self.broadcast(Prices(prices))

    def _merchant(self) -> list[Outgoing]:
        if self.stage == "demand":
            match, constricted_customers = self._match()
            if not constricted_customers:
                return self._clear(match)
            goods = tuple(sorted({j for i in constricted_customers for j in self.demands[i].goods}))
            self.stage = "slack"
            self.slacks = {}
            out = []
            for i in sorted(constricted_customers):
                if i == MERCHANT:
                    self.slacks[i] = self._slack(goods)
                else:
                    out.append((i, Constricted(goods)))
                    self.waiting.add(i)
            self.goods = goods
            if not self.waiting:
                return self._merchant()
            return out
        if self.stage == "slack":
            delta = min(self.slacks.values())
            self.p[list(self.goods)] += max(delta, 0.0)
            self.raises += 1
            return self._announce()
        return []

    def _match(self) -> tuple[dict[int, int], set[int]]:
        """A maximum matching of customers to demanded goods (augmenting paths, customers in id
        order, goods in index order), and the customers reachable from an unmatched one by
        alternating paths (empty when every customer is matched)."""
        owner: dict[int, int] = {}  # good -> customer; good n + i: customer i buys nothing
        match: dict[int, int] = {}  # customer -> good (-1: nothing)

        def options(i: int) -> tuple[int, ...]:
            d = self.demands[i]
            return d.goods + ((self.n + i,) if d.nothing else ())

        def augment(i: int, seen: set[int]) -> bool:
            for j in options(i):
                if j in seen:
                    continue
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j], match[i] = i, (j if j < self.n else -1)
                    return True
            return False

        customers = sorted(self.demands)
        for i in customers:
            augment(i, set())
        free = [i for i in customers if i not in match]
        if not free:
            return match, set()
        reach, stack, goods = set(free), list(free), set()
        while stack:
            i = stack.pop()
            for j in self.demands[i].goods:
                if j in goods:
                    continue
                goods.add(j)
                k = owner.get(j)
                if k is not None and k not in reach:
                    reach.add(k)
                    stack.append(k)
        return match, reach

    def _clear(self, match: dict[int, int]) -> list[Outgoing]:
        self.stage = "done"
        owner = tuple(match.get(i, -1) for i in range(self.m))
        prices = self.p.copy()
        prices.setflags(write=False)
        msg = Cleared(owner, prices)
        self._take(msg)
        return self.broadcast(msg)

    def _take(self, msg: Cleared) -> None:
        j = msg.owner[self.id]
        self.task = NONE if j < 0 else j
        self.price = 0.0 if j < 0 else float(msg.p[j])

    def plan(self) -> Plan:
        if self.task == NONE:
            return Plan(self.id)
        return Plan(self.id, [int(self.task)], None, [float(self.c[self.task])])

    def measurements(self) -> dict[str, float]:
        return {"price_raises": float(self.raises)}  # the merchant's; 0 for customers
