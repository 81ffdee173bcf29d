"""Asynchronous bundle consensus: ACBBA (Johnson, Ponda, Choi, How 2010), and the two
allocators Patel et al. (ICRA 2020) run on its consensus rules: PIA (performance impact,
Zhao, Wang, Wang 2016) and HIPC (hybrid information and plan consensus, Johnson et al.).

Every message is handled the moment it arrives (``synchronous = False``). What an agent
knows of a task is the latest *statement* of each author about it: a claim (a bid) or a
release, stamped with the author's own counter, which grows with each statement it makes.
The winner is the best live claim (higher bid, ties to the lower id). Statements flood the
graph: an agent forwards a statement that is fresh to it (a larger stamp than it holds from
that author for that task), or that came a shorter way than before, to its other
neighbours while it has come fewer hops than the graph's diameter, and ignores the rest. The table is a
last-writer-wins map per author, so every delivery order, duplicates included, ends in the
same table once the same statements have arrived; stamps are compared only within one
author, so no shared clock is needed.

This is the information ACBBA's decision table (update / leave / reset, with rebroadcast)
works to approximate while keeping a single entry per task; keeping one entry per author
costs tasks x agents numbers per agent and removes a failure we met with single entries: an
agent that set a claim aside because a better one was known forgets it, and when the better
claim is released later it sees the task as free although the claim it forgot is live.

An agent outbid on a task of its bundle releases it and the tasks it added after it (their
bids assumed the lost one, as in CBBA) and bids again. Bids on non-diminishing scores are
warped (capped at the previous bid of the bundle), as in CBBA.

``bundle`` caps an agent's bundle and ``max_iterations`` the bundle (re)constructions that
add tasks (the paper ran ACBBA and PIA with five of each during execution); 0: no limit.
Past the limit an agent still takes tasks nobody claims, for at most ten times the limit.

PIA replaces the bid by the *removal performance impact*: how much an agent's route cost
falls without the task. An agent takes a task when its *inclusion* impact (the marginal cost
of inserting it) is below the holder's removal impact: unclaimed tasks first (cheapest
inclusion), then the task of largest improvement (removal minus inclusion impact); after
every change it restates the impacts of all its tasks. Impacts of kept tasks can fall and rise again, so PIA runs
under an iteration limit.

HIPC: agents first share where they are (information consensus); each then plans the whole
team with min-max nearest neighbours over the tasks nobody else holds, keeps its own
sequence as its bundle, and bids minus the distance at which it reaches each task (the
distance already driven included); conflicts are settled by the rules above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocators._routes import NEG, Route, default_mode
from allocators.cbba import NONE, outbids, pick_best
from harness.api import Allocator, Message, Outgoing, Param, Plan
from harness.numerics import best_index, key_less, least_index

FAMILIES = ("mtsp", "tsplib", "mtsp_lkh3")


@dataclass(frozen=True)
class Statements(Message):
    """Fresh statements: (task, bid or -inf for a release, author, author's stamp)."""

    items: tuple[tuple[int, float, int, int], ...]
    hops: int = 1  # how far these statements have come


@dataclass(frozen=True)
class Position(Message):
    """HIPC's information consensus: an agent's position and the distance it drove."""

    agent: int
    x: float
    y: float
    z: float
    travelled: float
    hops: int = 1


def outbid(y_new: float, z_new: int, y_old: float, z_old: int) -> bool:
    """(y_new, z_new) beats (y_old, z_old): a higher bid, or an equal one from a lower id."""
    return z_old == NONE or y_new > y_old or (y_new == y_old and z_new < z_old)


class ACBBA(Allocator):
    name = "acbba"
    summary = "asynchronous CBBA: bundle construction, per-author stamped statements, flooding"
    paper = "Johnson, Ponda, Choi, How. Asynchronous Decentralized Task Allocation for Dynamic Environments. Infotech@Aerospace 2011"
    families = FAMILIES
    synchronous = False
    params = (
        Param(
            "score",
            "auto",
            "min_sum: minus the added distance (ACBBA-ms); min_max: minus the distance at "
            "which the task is reached, distance driven included (ACBBA-mm); auto follows "
            "the objective",
            ("auto", "min_sum", "min_max"),
        ),
        Param("bundle", 0, "most tasks in an agent's bundle (0: no limit)", low=0),
        Param("max_iterations", 0, "bundle constructions that add tasks (0: no limit)", low=0),
        Param("bid_warping", True, "cap each bid at the previous bid of the bundle"),
    )

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.mode = default_mode(view.objective, params.get("score", "auto"))
        self.route = Route(view, self.mode)
        limit = params.get("bundle", 0)
        if limit:
            self.route.limit = min(self.route.limit, limit)
        n, m = view.tasks.n, view.n_agents
        self.y = np.full(n, NEG)
        self.z = np.full(n, NONE, dtype=np.int64)
        self.bids = np.full((n, m), NEG)  # latest statement of each author per task
        self.last = np.zeros((n, m), dtype=np.int64)  # its stamp (0: none yet)
        self.hops = np.zeros((n, m), dtype=np.int64)  # fewest hops that statement came
        self.clock = 0
        self.bundle: list[int] = []
        self.builds = 0
        self.warp = params.get("bid_warping", True)

    # -- statements -------------------------------------------------------------------------
    def state(self, task: int, bid: float) -> tuple[int, float, int, int]:
        """A new statement of this agent: a claim (finite bid) or a release (bid = -inf)."""
        self.clock += 1
        self.last[task, self.id] = self.clock
        self.bids[task, self.id] = bid
        self.settle(task)
        return (task, float(bid), self.id, self.clock)

    def merge(self, item: tuple[int, float, int, int], hops: int) -> bool:
        """Read one statement that came ``hops`` hops; True if it is to be forwarded: it is
        fresh, or came a shorter way than before (a delayed copy may come the long way
        first), and has come fewer hops than the graph's diameter (farther, everybody has
        it: on a complete graph nobody forwards)."""
        task, bid, author, stamp = item
        if stamp < self.last[task, author]:
            return False
        if stamp == self.last[task, author]:
            if hops >= self.hops[task, author]:
                return False
            self.hops[task, author] = hops
            return hops < self.view.diameter
        self.last[task, author] = stamp
        self.hops[task, author] = hops
        self.bids[task, author] = bid
        self.settle(task)
        return hops < self.view.diameter

    def settle(self, task: int) -> None:
        """The winner of ``task``: the best live claim (ties within the tie tolerance: the
        lowest id)."""
        row = self.bids[task]
        k = best_index(row)
        if np.isfinite(row[k]):
            self.y[task], self.z[task] = row[k], k
        else:
            self.y[task], self.z[task] = NEG, NONE

    # -- bundle ------------------------------------------------------------------------------
    def release_lost(self) -> list[tuple]:
        lost = next((k for k, j in enumerate(self.bundle) if self.z[j] != self.id), None)
        if lost is None:
            return []
        out = [self.state(j, NEG) for j in self.bundle[lost:]]
        self.route.remove(set(self.bundle[lost:]))
        self.bundle = self.bundle[:lost]
        return out

    def biddable(self) -> np.ndarray | None:
        """Tasks this agent may still bid on: all of them within the iteration limit; past
        it, only tasks nobody claims (crossing releases can free a task after every agent
        has used its iterations, and nobody would take it again), up to ten times the limit
        so that the protocol ends. None: no more bids."""
        limit = self.p.get("max_iterations", 0)
        if not limit or self.builds < limit:
            return np.ones(self.view.tasks.n, dtype=bool)
        if self.builds < 10 * limit:
            return self.z == NONE
        return None

    def build(self) -> list[tuple]:
        """Bundle construction: add the best biddable task while one beats its winning bid;
        the new claims (or ``finish``'s restatements) are returned."""
        allowed = self.biddable()
        if allowed is None:
            return []
        added = []
        tw_start = self.view.tasks["tw_start"]
        while not self.route.full:
            c, pos, start = self.route.candidates()
            if self.warp and self.bundle:
                c = np.minimum(c, self.y[self.bundle[-1]])
            valid = np.isfinite(c) & outbids(c, np.full_like(self.z, self.id), self.y, self.z)
            valid = (valid | (np.isfinite(c) & (self.z == NONE))) & allowed
            if not valid.any():
                break
            j = self.choose(c, valid, tw_start)
            self.route.insert(j, int(pos[j]), float(start[j]))
            self.bundle.append(j)
            added.append(self.state(j, float(c[j])))
        if not added:
            return []
        self.builds += 1
        return self.finish(added)

    def choose(self, c: np.ndarray, valid: np.ndarray, tw_start: np.ndarray) -> int:
        """The task to add: the best score (ties: earliest window, lowest id)."""
        return pick_best(c, valid, tw_start)

    def finish(self, added: list[tuple]) -> list[tuple]:
        """The statements a bundle construction sends."""
        return added

    # -- protocol ----------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        return self.send(self.build(), None)

    def receive(self, sender: int, message: Message) -> list[Outgoing]:
        fresh = [item for item in message.items if self.merge(item, message.hops)]
        return self.send(fresh, sender, message.hops + 1) + self.send(self.settle_bundle(), None)

    def settle_bundle(self) -> list[tuple]:
        """Release what was lost and bid again, until the bundle holds only tasks this agent
        wins (PIA's restated impacts can lose a task the moment they are stated); at most 8
        passes, ending on a release, so the bundle agrees with the table."""
        own = self.release_lost()
        for _ in range(8):
            new = self.build()
            lost = self.release_lost()
            own += new + lost
            if not lost:
                break
        return own

    def send(self, items: list[tuple], skip: int | None, hops: int = 1) -> list[Outgoing]:
        if not items:
            return []
        msg = Statements(tuple(items), hops)
        return [(k, msg) for k in self.view.neighbours if k != skip]

    def plan(self) -> Plan:
        r = self.route
        return Plan(self.id, list(r.tasks), list(r.times), [float(self.y[j]) for j in r.tasks])


class PIA(ACBBA):
    name = "pia"
    summary = "performance impact: removal/inclusion impacts as bids, on ACBBA's consensus"
    paper = "Zhao, Wang, Wang. A Heuristic Distributed Task Allocation Method for Multivehicle Multitask Problems and Its Application to Search and Rescue Scenario. IEEE T-Cyb 46(4), 2016"
    params = (
        Param("bundle", 0, "most tasks in an agent's bundle (0: no limit)", low=0),
        Param("max_iterations", 20, "bundle constructions that add tasks (0: no limit)", low=0),
    )

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, {**params, "score": "min_sum", "bid_warping": False}, rng)

    def route_cost(self, tasks: list[int]) -> float:
        r = self.route
        if not tasks:
            return 0.0
        d = r.d0[tasks[0]] + sum(r.D[a, b] for a, b in zip(tasks, tasks[1:], strict=False))
        return float(d + (r.dend[tasks[-1]] if r.dend is not None else 0.0))

    def impacts(self) -> list[tuple]:
        """Restate the removal impact of every task of the bundle that changed."""
        tasks = list(self.route.tasks)
        full = self.route_cost(tasks)
        out = []
        for k, j in enumerate(tasks):
            bid = -(full - self.route_cost(tasks[:k] + tasks[k + 1 :]))
            if self.z[j] == self.id and bid != self.y[j]:
                out.append(self.state(j, bid))
        return out

    def release_lost(self) -> list[tuple]:
        lost = {j for j in self.bundle if self.z[j] != self.id}
        if not lost:
            return []
        self.route.remove(lost)
        self.bundle = [j for j in self.bundle if j not in lost]
        return [self.state(j, NEG) for j in sorted(lost)] + self.impacts()

    def choose(self, c: np.ndarray, valid: np.ndarray, tw_start: np.ndarray) -> int:
        free = valid & (self.z == NONE)
        if free.any():  # an unclaimed task has infinite significance: taken first
            return pick_best(c, free, tw_start)
        # else the largest improvement: the holder's removal minus the own inclusion impact
        return pick_best(np.where(valid, c - self.y, NEG), valid, tw_start)

    def finish(self, added: list[tuple]) -> list[tuple]:
        latest = {item[0]: item for item in added + self.impacts()}  # restated: the newer
        return list(latest.values())


class HIPC(ACBBA):
    name = "hipc"
    summary = "hybrid information and plan consensus: team-wide min-max nearest neighbours"
    paper = "Johnson, Choi, How. Hybrid Information and Plan Consensus in Distributed Task Allocation. AIAA GNC 2013"
    params = (Param("bundle", 0, "most tasks in an agent's bundle (0: no limit)", low=0),)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, {**params, "score": "min_max", "bid_warping": False}, rng)
        self.where: dict[int, tuple[np.ndarray, float]] = {
            self.id: (view.position, view.agent["avail_start"] * view.agent["speed"])
        }
        self.where_hops: dict[int, int] = {self.id: 0}

    def start(self) -> list[Outgoing]:
        p = self.view.position
        here = Position(self.id, float(p[0]), float(p[1]), float(p[2]), self.where[self.id][1])
        return self.broadcast(here) + self.send(self.build(), None)

    def receive(self, sender: int, message: Message) -> list[Outgoing]:
        if isinstance(message, Position):
            known = self.where_hops.get(message.agent)
            if known is not None and message.hops >= known:
                return []  # known, and this copy came no shorter way
            self.where_hops[message.agent] = message.hops
            self.where[message.agent] = (
                np.array([message.x, message.y, message.z]),
                message.travelled,
            )
            forward = []
            if message.hops < self.view.diameter:
                relay = Position(
                    message.agent,
                    message.x,
                    message.y,
                    message.z,
                    message.travelled,
                    message.hops + 1,
                )
                forward = [(k, relay) for k in self.view.neighbours if k != sender]
            return forward + self.send(self.settle_bundle(), None)
        return super().receive(sender, message)

    def team_plan(self) -> list[tuple[int, float]]:
        """Min-max nearest neighbours for the whole team over the tasks nobody holds, each
        agent continuing after the tasks it holds; this agent's part, with reach distances."""
        m = self.view.n_agents
        t = self.view.tasks
        free = [j for j in range(t.n) if self.z[j] in (NONE, self.id) and j not in self.bundle]
        if not free:
            return []
        last: list[int | None] = [None] * m
        length = np.zeros(m)
        d0 = {}
        for a, (pos, drove) in self.where.items():
            d0[a] = t.from_point(pos)
            length[a] = drove
        # every agent's sequence so far, as the table tells it: its claimed tasks, the last
        # one being the farthest reached (bids are minus the reach distance), so that all
        # agents plan the rest from the same state once their tables agree
        for a in self.where:
            held = np.flatnonzero(self.z == a)
            if len(held):
                k = int(held[least_index(self.y[held])])
                last[a], length[a] = k, -float(self.y[k])
        own = self.route.tasks
        mine: list[tuple[int, float]] = []
        room = self.route.limit - len(own)  # the plan stops once this agent's bundle is full
        left = set(free)
        agents = sorted(self.where)
        while left and len(mine) < room:
            cand = sorted(left)
            best = None
            for a in agents:
                step = d0[a][cand] if last[a] is None else t.between[last[a], cand]
                k = least_index(step)
                key = (length[a] + step[k], a, cand[k])
                if best is None or key_less(key, best):
                    best = key
            total, a, j = best
            last[a], length[a] = j, total
            left.discard(j)
            if a == self.id:
                mine.append((j, total))
        return mine

    def build(self) -> list[tuple]:
        if len(self.where) < self.view.n_agents or self.route.full:
            return []
        out = []
        for j, reach in self.team_plan():
            if self.route.full:
                break
            bid = -float(reach)
            if not outbid(bid, self.id, self.y[j], self.z[j]):
                break  # someone reaches it sooner: plan again when that changes
            self.route.insert(j, len(self.route.tasks), 0.0)
            self.bundle.append(j)
            out.append(self.state(j, bid))
        return out
