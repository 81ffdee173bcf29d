"""Sequential and parallel single-item auctions for multi-robot routing (reverse auctions:
agents are paid to serve tasks), after Koenig, Tovey, Lagoudakis et al. ("The power of
sequential single-item auctions for agent coordination", AAAI 2006; Lagoudakis et al.,
"Auction-based multi-robot routing", RSS 2005).

SSI: the tasks are auctioned one after another in id order (a task nobody can serve is
skipped); each agent asks its marginal cost of inserting the task into the route it has
won so far (fixed cost plus added travel at its cost per distance, windows respected); the
lowest ask wins; the route grows by cheapest insertion. PSI: every task is auctioned at
once, each agent asking its cost of the task alone, on its ``bundle limit`` cheapest tasks;
each task goes to the lowest ask, and each agent builds its route by cheapest insertion of
what it won (in the order of its asks). The price is the ask (``payment = "first"``) or the
next-lowest ask on the task (``"second"``).
"""

from __future__ import annotations

import numpy as np

from allocators._market import MISREPORT, Bid, Result, RoundAuction, Valuer, holder_of
from allocators._routes import ROUTING_FAMILIES
from harness.api import Allocator, Outgoing, Param, Plan
from harness.numerics import ranked


class SSI(RoundAuction):
    name = "ssi"
    summary = "sequential single-item reverse auctions: one task at a time, marginal-cost asks"
    paper = (
        "Koenig, Tovey, Lagoudakis et al. The power of sequential single-item auctions. AAAI 2006"
    )
    families = ROUTING_FAMILIES
    market = "reverse"
    params = (Param("payment", "first", "price rule", ("first", "second")), *MISREPORT)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.price_rule = params["payment"]

    def choose(self) -> tuple[int, float] | None:
        cost = np.where(self.open, self.valuer.cost(), np.inf)
        feasible = np.flatnonzero(np.isfinite(cost))
        if not len(feasible):
            return None
        j = int(feasible[0])  # the next task in the sequence this agent can serve
        return j, float(cost[j])


class PSI(Allocator):
    name = "psi"
    summary = "parallel single-item reverse auctions: every task at once, standalone asks"
    paper = "Koenig, Tovey, Lagoudakis et al. The power of sequential single-item auctions. AAAI 2006 (PSI)"
    families = ROUTING_FAMILIES
    market = "reverse"
    centralised = True
    params = (Param("payment", "first", "price rule", ("first", "second")), *MISREPORT)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.valuer = Valuer(view, factor)
        self.asks = self.valuer.cost()
        self.results: dict[int, Result] = {}
        self.awarded: dict[int, dict[int, Result]] = {}  # task -> bidder -> answer
        self.route: list[tuple[int, float, float]] = []
        self.answered = False

    def start(self) -> list[Outgoing]:
        ok = np.flatnonzero(np.isfinite(self.asks))
        ok = ok[np.argsort(self.asks[ok], kind="stable")][: self.view.bundle_limit]
        out = [
            (holder_of(int(j), self.view.n_agents), Bid(int(j), float(self.asks[j]), 1))
            for j in sorted(ok)
        ]
        mine = [(dst, m) for dst, m in out if dst == self.id]
        self.own = [(self.id, m) for _, m in mine]
        self.own_pending = bool(mine)
        return [(dst, m) for dst, m in out if dst != self.id]

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        inbox = list(inbox)
        if self.own_pending:
            inbox += self.own
            self.own_pending = False
        bids: dict[int, dict[int, Bid]] = {}
        for sender, msg in inbox:
            if isinstance(msg, Bid):
                bids.setdefault(msg.task, {})[sender] = msg
            elif isinstance(msg, Result):
                self.results[msg.task] = msg
        out: list[Outgoing] = []
        for j, offers in sorted(bids.items()):
            if j in self.awarded:  # a duplicated or late bid: repeat the answer
                out += [(s, self.awarded[j][s]) for s in offers if s in self.awarded[j]]
                continue
            items = sorted(offers.items())
            pos = ranked([b.amount for _, b in items], [s for s, _ in items], descending=False)
            order = [items[p] for p in pos]
            winner, best = order[0]
            second = order[1][1].amount if len(order) > 1 else best.amount
            price = second if self.p["payment"] == "second" else best.amount
            self.awarded[j] = {
                s: Result(j, s == winner, price if s == winner else 0.0, True, 1) for s, _ in order
            }
            out += list(self.awarded[j].items())
        keep = []
        for dst, msg in out:
            if dst == self.id:
                self.results[msg.task] = msg
            else:
                keep.append((dst, msg))
        return keep

    @property
    def converged(self) -> bool:
        return not self.own_pending

    def plan(self) -> Plan:
        won = sorted((j for j, r in self.results.items() if r.won), key=lambda j: self.asks[j])
        valuer = Valuer(self.view)
        tasks, bids, prices = [], [], []
        for j in won:
            if not np.isfinite(valuer.cost()[j]):
                continue  # no longer fits the route (windows, limit): left unserved
            valuer.add(j)
            tasks.append(j)
            bids.append(float(self.asks[j]))
            prices.append(self.results[j].price)
        order = valuer.route.tasks
        index = {j: k for k, j in enumerate(tasks)}
        return Plan(
            self.id,
            list(order),
            [float(t) for t in valuer.route.times],
            [bids[index[j]] for j in order],
            [prices[index[j]] for j in order],
            {"auction_rounds": 1.0},
        )
