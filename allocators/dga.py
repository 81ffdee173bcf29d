"""Decentralised genetic algorithm for the mTSP (Patel, Sun, Lowe et al., ICRA 2020, the
seed paper ``decentralized-ga-mtsp``, §IV), as a planner: every agent evolves a population
of whole solutions and the agents share their best ones.

A solution is one sequence of all tasks cut by breakpoints into one sequence per agent, every
agent at least one task (after the mTSP GA of A. Kirk that the paper builds on). Each
generation shuffles the population into groups of 8; the best of a group survives and
begets 7 children: a reversed segment, a swap, a slide of one task along a segment, and
those three and the best itself with new random breakpoints. The population starts from the
min-max nearest-neighbour construction (append the task that leaves the longest sequence
shortest) and random solutions.

Agents do not know each other's start points at first (the paper's setting): round 0 they
tell everyone theirs. Then each round every agent runs ``generations`` generations, sends
its best solution to everyone if it improved, and puts the solutions it receives into its
population in place of its worst. After ``rounds`` rounds each agent sends its final best;
every agent then adopts the cheapest of all finals (ties: the lexicographically smaller
solution), so all agents hold the same allocation and take their own sequence of it.

Fitness (the paper's three variants): ``ga_ms`` total distance, ``ga_mm`` the longest
agent distance, ``ga_multi`` the longest plus ``w`` (0.01) times the total. With fewer
tasks than agents the GA cannot run; the min-max nearest-neighbour solution is used, as the
paper does during execution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.api import Allocator, Message, Outgoing, Param, Plan
from harness.numerics import best_index, key_less, least_index

FAMILIES = ("mtsp", "tsplib", "mtsp_lkh3")


@dataclass(frozen=True)
class Where(Message):
    x: float
    y: float
    z: float
    end: tuple[float, float, float] | None


@dataclass(frozen=True)
class Solution(Message):
    order: tuple[int, ...]
    breaks: tuple[int, ...]  # sequence k is order[breaks[k-1]:breaks[k]] (0 and n implied)
    cost: float
    final: bool = False


class DecentralisedGA(Allocator):
    name = "ga_ms"
    summary = "decentralised GA (Patel et al. 2020), min-sum fitness"
    paper = "Patel, Sun, Lowe et al. Decentralized Task Allocation in Multi-Agent Systems Using a Decentralized Genetic Algorithm. ICRA 2020"
    families = FAMILIES
    centralised = True  # every agent talks to every other, as in the paper
    params = (
        Param("population", 32, "solutions per agent (a multiple of 8)", low=8),
        Param("generations", 5, "generations per round", low=1),
        Param("rounds", 30, "rounds of evolution and sharing", low=1),
        Param("w", 0.01, "ga_multi: weight of the total distance", low=0.0),
    )
    fitness = "min_sum"
    online = True  # keeps evolving while the agents travel (harness/execution.py)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        if params["population"] % 8:
            from harness.errors import SpecError

            raise SpecError("params", "population", "a multiple of 8", params["population"])
        self.starts: dict[int, np.ndarray] = {self.id: view.position}
        self.ends: dict[int, np.ndarray | None] = {self.id: view.end}
        self.pop: list[tuple[np.ndarray, np.ndarray]] = []
        self.costs: np.ndarray | None = None
        self.sent_cost = np.inf
        self.finals: list[tuple[float, tuple[int, ...], tuple[int, ...]]] = []
        self.chosen: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self.round = 0
        self.done = False
        # online execution: distance each agent has driven, locations still to visit
        self.travelled = np.zeros(view.n_agents)
        self.left = np.ones(view.tasks.n, dtype=bool)
        self.executing = False
        self.sent: tuple | None = None

    # -- costs ----------------------------------------------------------------------------
    def _setup(self) -> None:
        m = self.view.n_agents
        t = self.view.tasks
        self.d0 = np.stack([t.from_point(self.starts[a]) for a in range(m)])
        self.dend = np.stack(
            [np.zeros(t.n) if self.ends[a] is None else t.to_point(self.ends[a]) for a in range(m)]
        )
        self.D = t.between

    def lengths(self, order: np.ndarray, breaks: np.ndarray) -> np.ndarray:
        """Each agent's distance for a solution."""
        m = self.view.n_agents
        bounds = np.concatenate([[0], breaks, [len(order)]])
        out = np.zeros(m)
        legs = self.D[order[:-1], order[1:]]
        csum = np.concatenate([[0.0], np.cumsum(legs)])
        lo, hi = bounds[:-1], bounds[1:]
        busy = np.flatnonzero(hi > lo)  # agents with at least one task
        lo, hi = lo[busy], hi[busy]
        first, last = order[lo], order[hi - 1]
        out[busy] = self.d0[busy, first] + (csum[hi - 1] - csum[lo]) + self.dend[busy, last]
        return out + self.travelled

    def cost(self, order: np.ndarray, breaks: np.ndarray) -> float:
        d = self.lengths(order, breaks)
        if self.fitness == "min_sum":
            return float(d.sum())
        if self.fitness == "min_max":
            return float(d.max())
        return float(d.max() + self.p["w"] * d.sum())

    # -- construction and operators ---------------------------------------------------------
    def nearest_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """Min-max nearest neighbours: repeatedly append the (agent, task) pair that leaves
        that agent's sequence shortest; with at least as many tasks as agents, every agent
        first gets one task."""
        m = self.view.n_agents
        seqs: list[list[int]] = [[] for _ in range(m)]
        length = self.travelled.copy()
        left = set(int(j) for j in np.flatnonzero(self.left))
        n = len(left)
        while left:
            cand = sorted(left)
            best = None
            idle = [a for a in range(m) if not seqs[a]]
            for a in idle if idle and n >= m else range(m):  # agents without a task first
                last = seqs[a][-1] if seqs[a] else None
                step = self.d0[a, cand] if last is None else self.D[last, cand]
                k = least_index(step)
                key = (length[a] + step[k], a, cand[k])
                if best is None or key_less(key, best):
                    best = key
            total, a, j = best
            seqs[a].append(j)
            length[a] = total
            left.discard(j)
        order = np.array([j for s in seqs for j in s], dtype=np.int64)
        breaks = np.cumsum([len(s) for s in seqs])[:-1].astype(np.int64)
        return order, breaks

    def strip(self, order: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A solution without the locations already visited; each agent keeps the rest of its
        sequence (it may become empty until new breakpoints fill it)."""
        keep = self.left[order]
        if keep.all():
            return order, breaks
        kept = np.concatenate([[0], np.cumsum(keep)])
        return order[keep], kept[breaks].astype(np.int64)

    def random_breaks(self, n: int) -> np.ndarray:
        m = self.view.n_agents
        if m == 1:
            return np.zeros(0, dtype=np.int64)
        cuts = np.sort(self.rng.choice(np.arange(1, n), size=m - 1, replace=False))
        return cuts.astype(np.int64)

    def children(self, order: np.ndarray, breaks: np.ndarray) -> list[tuple]:
        n = len(order)
        i, j = np.sort(self.rng.choice(n, size=2, replace=False))
        flip = order.copy()
        flip[i : j + 1] = flip[i : j + 1][::-1]
        swap = order.copy()
        swap[[i, j]] = swap[[j, i]]
        slide = order.copy()
        slide[i : j + 1] = np.roll(slide[i : j + 1], 1)
        out = [(order, breaks), (flip, breaks), (swap, breaks), (slide, breaks)]
        out += [(o, self.random_breaks(n)) for o, _ in out]
        return out

    def evolve(self) -> None:
        for _ in range(self.p["generations"]):
            idx = self.rng.permutation(len(self.pop))
            new = []
            for g in range(0, len(idx), 8):
                group = idx[g : g + 8]
                best = int(group[least_index(self.costs[group])])
                new += self.children(*self.pop[best])
            self.pop = new
            self.costs = np.array([self.cost(o, b) for o, b in self.pop])

    def best(self) -> tuple[float, np.ndarray, np.ndarray]:
        k = least_index(self.costs)
        return float(self.costs[k]), self.pop[k][0], self.pop[k][1]

    def adopt(self, msg: Solution) -> None:
        order, breaks = self.strip(np.array(msg.order), np.array(msg.breaks, dtype=np.int64))
        if any(np.array_equal(o, order) and np.array_equal(b, breaks) for o, b in self.pop):
            return  # already held (a duplicate, or the same best from two agents)
        worst = best_index(self.costs)
        self.pop[worst] = (order, breaks)
        self.costs[worst] = self.cost(order, breaks)

    # -- protocol -----------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        end = None if self.view.end is None else tuple(float(v) for v in self.view.end)
        p = self.view.position
        return self.broadcast_all(Where(float(p[0]), float(p[1]), float(p[2]), end))

    def broadcast_all(self, msg: Message) -> list[Outgoing]:
        return [(k, msg) for k in range(self.view.n_agents) if k != self.id]

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        # a copy of a message in the same round is read once, in sender order
        for sender, msg in sorted(set(inbox), key=lambda sm: (sm[0], repr(sm[1]))):
            if isinstance(msg, Where):
                self.starts[sender] = np.array([msg.x, msg.y, msg.z])
                self.ends[sender] = None if msg.end is None else np.array(msg.end)
            elif isinstance(msg, Solution):
                if msg.final:
                    entry = (msg.cost, msg.order, msg.breaks)
                    if entry not in self.finals:
                        self.finals.append(entry)
                elif self.pop:
                    self.adopt(msg)
        if self.executing:
            return self._online_step()
        if self.done:
            return []
        if self.chosen is None and len(self.finals) and self.round > self.p["rounds"]:
            cost, order, breaks = min(self.finals)
            self.chosen = (order, breaks)
            self.done = True
            return []
        if len(self.starts) < self.view.n_agents:
            return []  # waiting for the start points (duplicates are harmless, loss stalls)
        if not self.pop:
            self._setup()
            self._seed()
        self.round += 1
        if self.round > self.p["rounds"]:
            cost, order, breaks = self.best()
            final = (cost, tuple(int(j) for j in order), tuple(int(b) for b in breaks))
            self.finals.append(final)
            return self.broadcast_all(Solution(final[1], final[2], cost, True))
        if self.view.tasks.n >= self.view.n_agents:
            self.evolve()
        cost, order, breaks = self.best()
        if cost < self.sent_cost - 1e-12:
            self.sent_cost = cost
            msg = Solution(tuple(int(j) for j in order), tuple(int(b) for b in breaks), cost)
            return self.broadcast_all(msg)
        return []

    # -- online execution -----------------------------------------------------------------
    def observe(
        self, now: float, positions: np.ndarray, travelled: np.ndarray, visited: np.ndarray
    ) -> None:
        """The team's status: start points move to where the agents are, visited locations
        leave every solution, and costs count the distance already driven."""
        self.executing = True
        for a in range(self.view.n_agents):
            self.starts[a] = positions[a]
        self.travelled = np.asarray(travelled, dtype=np.float64)
        self.left = ~np.asarray(visited, dtype=bool)
        if not self.pop:
            return  # the first round sets up from these start points
        t = self.view.tasks
        self.d0 = np.stack([t.from_point(self.starts[a]) for a in range(self.view.n_agents)])
        self.pop = [self.strip(o, b) for o, b in self.pop]
        self.costs = np.array([self.cost(o, b) for o, b in self.pop])

    def _online_step(self) -> list[Outgoing]:
        """One period of the GA during execution: evolve, and share the best when it changed."""
        if not self.pop:
            self._setup()
            self._seed()
        if int(self.left.sum()) < max(2, self.view.n_agents):
            return []  # the execution follows nearest neighbours (plan()) from here on
        self.evolve()
        cost, order, breaks = self.best()
        key = (tuple(int(j) for j in order), tuple(int(b) for b in breaks))
        if key == self.sent:
            return []
        self.sent = key
        return self.broadcast_all(Solution(key[0], key[1], cost))

    def progress(self) -> float | None:
        if self.costs is None or not len(self.costs):
            return None
        return float(np.min(self.costs))

    def _seed(self) -> None:
        order, breaks = self.nearest_neighbours()
        self.pop = [(order, breaks)]
        ids = np.flatnonzero(self.left)
        n = len(ids)
        if n >= self.view.n_agents:
            while len(self.pop) < self.p["population"]:
                self.pop.append((self.rng.permutation(ids).astype(np.int64), self.random_breaks(n)))
        self.costs = np.array([self.cost(o, b) for o, b in self.pop])

    @property
    def converged(self) -> bool:
        return self.done

    def plan(self) -> Plan:
        if self.executing:  # the current best, or nearest neighbours near the end
            if int(self.left.sum()) < max(2, self.view.n_agents) or not self.pop:
                order, breaks = self.nearest_neighbours()
            else:
                _, order, breaks = self.best()
            bounds = [0, *breaks, len(order)]
            return Plan(self.id, [int(j) for j in order[bounds[self.id] : bounds[self.id + 1]]])
        if self.chosen is None:
            return Plan(self.id)
        order, breaks = self.chosen
        bounds = [0, *breaks, len(order)]
        return Plan(self.id, list(order[bounds[self.id] : bounds[self.id + 1]]))


class GAMinMax(DecentralisedGA):
    name = "ga_mm"
    summary = "decentralised GA (Patel et al. 2020), min-max fitness"
    fitness = "min_max"


class GAMulti(DecentralisedGA):
    name = "ga_multi"
    summary = "decentralised GA (Patel et al. 2020), min-max + w * min-sum fitness"
    fitness = "multi"
