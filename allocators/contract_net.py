"""The Contract Net Protocol (Smith, IEEE Trans. Computers 1980), for routing tasks, with
marginal-cost bids as in Sandholm's TRACONET (AAAI 1993).

Tasks start owned by agents: task j belongs to agent ``floor(u(initial_seed, j) * m)``, a
seeded, public distribution. Each agent builds its route from its own tasks by cheapest
insertion. Then every agent acts as a manager, several at once: it announces to all
others the task whose removal saves it most (``announce``), collects bids until its deadline
(``deadline`` rounds later), and awards the task to the lowest bid if that bid is below its
saving (an improvement for the pair); losing bidders are told (``reject``). A contractor bids
the marginal cost of inserting the task into its current route (windows and limits
respected) and, when awarded, checks that cost again: its route may have changed under
other managers' awards meanwhile. If the insertion still costs no more than its bid it
accepts and the manager pays it its bid; otherwise it refuses (the awardee fails) and the
manager may announce the task again. A task with no improving bid rests until the
manager's route changes; each task is announced at most ``max_announcements`` times. A task
an agent cannot fit at the start is announced first and goes to any bidder. A manager
checks its saving again when it awards, and refuses awards itself while its own award is
unanswered, so that every accepted transfer gains both sides what they computed.

Reverse market: contractors are paid their bids. An agent's money
(``Plan.extra["transfer"]``) is the cost of its initial route, paid by the customer who
handed out the tasks, plus what it received as a contractor minus what it paid as a
manager (the customer pays directly for a task its first owner could not fit); so its
utility is what its trades gained it, and individual rationality says that no agent ended
worse off than it started. A manager that hears no reply to an award within a few rounds
takes it as a refusal (under message loss a task can then end up served twice: a measured
conflict).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocators._market import MISREPORT, Valuer
from allocators._routes import COST_ROUTING_FAMILIES
from harness.api import Allocator, Message, Outgoing, Param, Plan
from harness.faults import uniform
from harness.numerics import beats, best_index, ranked


@dataclass(frozen=True)
class Announce(Message):
    task: int
    seq: int


@dataclass(frozen=True)
class CnpBid(Message):
    task: int
    seq: int
    cost: float


@dataclass(frozen=True)
class Award(Message):
    task: int
    seq: int
    price: float


@dataclass(frozen=True)
class Reject(Message):
    task: int
    seq: int


@dataclass(frozen=True)
class Reply(Message):
    """The awardee's answer: accepted (the task is now its) or refused."""

    task: int
    seq: int
    accepted: bool


_RANK = {Reply: 0, Award: 1, Announce: 2, CnpBid: 3, Reject: 4}


def initial_owner(task: int, n_agents: int, seed: int) -> int:
    return min(n_agents - 1, int(uniform(seed, task) * n_agents))


class ContractNet(Allocator):
    name = "contract_net"
    summary = "Contract Net: concurrent managers announce tasks, marginal-cost bids, award"
    paper = "Smith. The Contract Net Protocol. IEEE Trans. Computers C-29(12), 1980; Sandholm, AAAI 1993"
    families = COST_ROUTING_FAMILIES
    market = "reverse"
    centralised = True
    params = (
        Param("initial_seed", 0, "seed of the initial distribution of tasks to agents"),
        Param("deadline", 1, "rounds a manager waits for bids after the bids are due", low=0),
        Param("max_announcements", 3, "announcements of one task at most", low=1),
        Param("min_gain", 1e-6, "least saving minus bid that makes a transfer worth it", low=0.0),
        *MISREPORT,
    )

    REPLY_WAIT = 6  # rounds a manager waits for the awardee's reply

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.factor = params["misreport_factor"] if params["misreport_agent"] == self.id else 1.0
        self.valuer = Valuer(view)  # true costs; bids scale them by ``factor``
        n, m = view.tasks.n, view.n_agents
        owned = [j for j in range(n) if initial_owner(j, m, params["initial_seed"]) == self.id]
        self.unplaced: list[int] = []
        for j in owned:
            if np.isfinite(self.valuer.cost()[j]):
                self.valuer.add(j)
            else:
                self.unplaced.append(j)
        r = self.valuer.route
        self.initial_cost = self.valuer.fixed * len(r.tasks) + r.cpd * r.distance()
        self.received: dict[int, float] = {}  # task -> price received as contractor
        self.income = 0.0
        self.paid = 0.0
        self.award_due = 0
        self.announced = np.zeros(n, dtype=np.int64)
        self.resting: set[int] = set()  # tasks with no improving bid since the route changed
        self.seq = 0
        self.open: tuple[int, int, int, float] | None = None  # (task, seq, due round, saving)
        self.bids: list[tuple[float, int]] = []
        self.awarded: tuple[int, int] | None = None  # (agent, seq) waiting for its reply
        self.bid_on: set[tuple[int, int, int]] = set()  # (manager, task, seq): bid once
        self.replies: dict[tuple[int, int, int], Reply] = {}  # (manager, task, seq) -> reply
        self.now = 0
        self.negotiations = 0

    # -- costs ----------------------------------------------------------------------------
    def saving(self, task: int) -> float:
        """What dropping ``task`` from the route saves (fixed cost and the detour); inf for a
        task the agent could not fit at all."""
        if task in self.unplaced:
            return np.inf
        r = self.valuer.route
        k = r.tasks.index(task)
        prev = r.d0 if k == 0 else r.D[r.tasks[k - 1]]
        if k + 1 < len(r.tasks):
            nxt = r.D[task, r.tasks[k + 1]]
            skip = r.d0[r.tasks[k + 1]] if k == 0 else r.D[r.tasks[k - 1], r.tasks[k + 1]]
        elif r.dend is not None:
            nxt = r.dend[task]
            skip = r.d0_end if k == 0 else r.dend[r.tasks[k - 1]]
        else:
            nxt, skip = 0.0, 0.0
        return float(self.valuer.fixed + r.cpd * (prev[task] + nxt - skip + r.inside[task]))

    def _drop(self, task: int) -> None:
        if task in self.unplaced:
            self.unplaced.remove(task)
        else:
            self.valuer.remove(task)
        self.resting.clear()

    def _take(self, task: int) -> None:
        self.valuer.add(task)
        self.resting.clear()

    # -- manager ----------------------------------------------------------------------------
    def _next_announcement(self) -> list[Outgoing]:
        if self.open is not None or self.awarded is not None:
            return []
        own = self.unplaced + list(self.valuer.route.tasks)
        cand = [
            j
            for j in own
            if j not in self.resting and self.announced[j] < self.p["max_announcements"]
        ]
        if not cand:
            return []
        task = cand[best_index([self.saving(j) for j in cand], cand)]  # ties: lowest id
        self.seq += 1
        self.announced[task] += 1
        self.negotiations += 1
        due = self.now + 2 + self.p["deadline"]
        self.open = (task, self.seq, due, self.saving(task))
        self.bids = []
        msg = Announce(task, self.seq)
        return [(k, msg) for k in range(self.view.n_agents) if k != self.id]

    def _close(self) -> list[Outgoing]:
        task, seq, _, _ = self.open
        self.open = None
        saving = self.saving(task)  # now: the route may have changed since the announcement
        order = ranked([c for c, _ in self.bids], [k for _, k in self.bids], descending=False)
        ranked_bids = [self.bids[p] for p in order]
        out: list[Outgoing] = []
        if ranked_bids and beats(saving - self.p["min_gain"], ranked_bids[0][0]):
            price, winner = ranked_bids[0]
            self.awarded = (winner, seq)
            self.award_task = (task, price)
            self.award_due = self.now + self.REPLY_WAIT
            out.append((winner, Award(task, seq, price)))
            losers = ranked_bids[1:]
        else:
            self.resting.add(task)
            losers = ranked_bids
        out += [(k, Reject(task, seq)) for _, k in losers]
        return out

    # -- protocol ---------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        return self._next_announcement()

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        self.now = rnd
        out: list[Outgoing] = []
        # one canonical order, whatever the delivery order: replies, awards, announcements,
        # bids, each by sender; a copy of a message in the same round is read once
        unique = {(sender, msg) for sender, msg in inbox}
        for sender, msg in sorted(unique, key=lambda sm: (_RANK[type(sm[1])], sm[0], repr(sm[1]))):
            if isinstance(msg, Announce):
                key = (sender, msg.task, msg.seq)
                if key not in self.bid_on:
                    self.bid_on.add(key)
                    cost = self.valuer.cost()[msg.task] * self.factor
                    if np.isfinite(cost) and msg.task not in self.valuer.route.tasks:
                        out.append((sender, CnpBid(msg.task, msg.seq, float(cost))))
            elif isinstance(msg, CnpBid):
                current = self.open is not None and (msg.task, msg.seq) == self.open[:2]
                if current and all(k != sender for _, k in self.bids):
                    self.bids.append((msg.cost, sender))
            elif isinstance(msg, Award):
                key = (sender, msg.task, msg.seq)
                if key in self.replies:  # a duplicate award: the same answer
                    out.append((sender, self.replies[key]))
                    continue
                cost = self.valuer.cost()[msg.task] * self.factor
                ok = (
                    self.awarded is None  # its own route is locked while it awards a task
                    and msg.task not in self.valuer.route.tasks
                    and np.isfinite(cost)
                    and cost <= msg.price + 1e-9
                )
                if ok:
                    self._take(msg.task)
                    self.received[msg.task] = msg.price
                    self.income += msg.price
                reply = Reply(msg.task, msg.seq, bool(ok))
                self.replies[key] = reply
                out.append((sender, reply))
            elif isinstance(msg, Reply) and self.awarded == (sender, msg.seq):
                task, price = self.award_task
                self.awarded = None
                if msg.accepted:
                    if task not in self.unplaced:  # the customer pays for those itself
                        self.paid += price
                    self._drop(task)
        if self.awarded is not None and self.now >= self.award_due:
            self.awarded = None  # no reply (lost): taken as a refusal
        if self.open is not None and self.now >= self.open[2]:
            out += self._close()
        out += self._next_announcement()
        return out

    @property
    def converged(self) -> bool:
        return self.open is None and self.awarded is None and not self._has_work()

    def _has_work(self) -> bool:
        own = set(self.valuer.route.tasks) | set(self.unplaced)
        return any(
            j not in self.resting and self.announced[j] < self.p["max_announcements"] for j in own
        )

    def plan(self) -> Plan:
        r = self.valuer.route
        return Plan(
            self.id,
            list(r.tasks),
            [float(t) for t in r.times],
            [self.received.get(j, 0.0) for j in r.tasks],
            [self.received.get(j, 0.0) for j in r.tasks],
            {
                "auction_rounds": float(self.negotiations),
                "paid": self.paid,
                "transfer": self.initial_cost + self.income - self.paid,
            },
        )
