"""Decentralised greedy nearest neighbour: agents repeatedly claim the nearest task they can
still serve (from the end of their route), and conflicting claims are settled by message.

The protocol runs in phases of D rounds (D: graph diameter). At a phase's first round each
unfinished agent claims its nearest feasible untaken task; claims flood the graph (each agent
forwards the claims that improved its table); after D rounds every agent holds every claim of
the phase, and each claimed task goes to the claim of lowest distance (ties to the lower agent
id). Winners append their task; losers claim again in the next phase. At least one task is
taken per phase, so the protocol ends. It is not the global greedy assignment: in one phase an
uncontested agent keeps its nearest task even if a losing agent would have been nearer to it.
What holds: no agent leaves unassigned a task nearer (from where it claimed) than the one it got.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocators._routes import ROUTING_FAMILIES, Route
from allocators.cbba import pick_best
from harness.api import Allocator, Message, Outgoing, Plan


@dataclass(frozen=True)
class Claims(Message):
    """Claims of one phase: task ids, claimed distances and claiming agents."""

    phase: int
    tasks: tuple[int, ...]
    costs: tuple[float, ...]
    agents: tuple[int, ...]


class GreedyNN(Allocator):
    name = "greedy_nn"
    summary = "decentralised nearest-neighbour claims, conflicts settled by flooding"
    paper = "greedy baseline of Patel, Sun, Lowe et al. (ICRA 2020), here made decentralised"
    families = ("assignment", *ROUTING_FAMILIES)

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.route = Route(view, "nn")
        self.D = max(1, view.diameter)
        self.taken = np.zeros(view.tasks.n, dtype=bool)
        self.phase = 0
        self.claims: dict[int, tuple[float, int]] = {}
        self.pending: tuple[int, int, float] | None = None
        self.done = False

    def _claim(self) -> dict[int, tuple[float, int]]:
        if self.done:
            return {}
        c, pos, start = self.route.candidates()
        c[self.taken] = -np.inf
        valid = np.isfinite(c)
        if not valid.any():
            self.done = True
            return {}
        j = pick_best(c, valid, self.view.tasks["tw_start"])
        self.pending = (j, int(pos[j]), float(start[j]))
        self.claims[j] = (float(-c[j]), self.id)
        return {j: self.claims[j]}

    def _resolve(self) -> None:
        for task, (_cost, agent) in self.claims.items():
            self.taken[task] = True
            if agent == self.id and self.pending is not None and self.pending[0] == task:
                self.route.insert(*self.pending)
        self.claims, self.pending = {}, None

    def _send(self, new: dict[int, tuple[float, int]]) -> list[Outgoing]:
        if not new:
            return []
        tasks = tuple(sorted(new))
        msg = Claims(
            self.phase, tasks, tuple(new[t][0] for t in tasks), tuple(new[t][1] for t in tasks)
        )
        return self.broadcast(msg)

    def start(self) -> list[Outgoing]:
        return self._send(self._claim())

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        new: dict[int, tuple[float, int]] = {}
        for _sender, msg in inbox:
            if msg.phase > self.phase:  # this agent slept through a phase end
                self._resolve()
                self.phase, new = msg.phase, {}
            if msg.phase < self.phase:
                continue
            for task, cost, agent in zip(msg.tasks, msg.costs, msg.agents, strict=True):
                if self.taken[task]:
                    continue
                mine = self.claims.get(task)
                if mine is None or (cost, agent) < mine:
                    self.claims[task] = new[task] = (cost, agent)
        if rnd % self.D == 0:
            self._resolve()
            self.phase = rnd // self.D
            new = self._claim()
        return self._send(new)

    @property
    def converged(self) -> bool:
        return self.done and self.pending is None

    def plan(self) -> Plan:
        return Plan(self.id, list(self.route.tasks), list(self.route.times))
