"""Decentralised Hungarian (DH; Ismail & Sun 2017, as run by Patel et al., ICRA 2020): every
agent learns every agent's cost row and solves the same optimal one-to-one assignment.

Round 0 each agent sends its row (the score of serving each task next: minus the distance,
``min_sum``; minus the distance driven so far plus the distance, ``min_max``; the payoff on
the assignment family). Rows flood the graph: an agent forwards, in one message per round,
the rows it learnt that round (or learnt by a shorter way), while they have come fewer hops
than the graph's diameter (on a complete graph, nobody forwards). Once it holds all of them it solves the assignment (SciPy's
``linear_sum_assignment``, a Hungarian-type exact solver) and keeps its own task. All agents
solve the same matrix with the same solver, so they agree without a further exchange. Each
agent gets at most one task; during execution (harness/execution.py) the team re-plans when
an agent has served it, as in the paper ("assigns only a single task at a time").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocators.cbaa import CBAA, next_task_scores
from harness.api import Allocator, Message, Outgoing, Plan

BIG = 1e12  # the cost of a task an agent cannot serve


@dataclass(frozen=True)
class CostRows(Message):
    """Cost rows the sender learnt since its last message: (agent id, scores), and how many
    hops they have travelled."""

    rows: tuple[tuple[int, tuple[float, ...]], ...]
    hops: int = 1


class DecentralisedHungarian(Allocator):
    name = "dh"
    summary = "decentralised Hungarian: flood cost rows, every agent solves the assignment"
    paper = "Ismail, Sun. Decentralized Hungarian-based approach for fast and scalable task allocation. ICUAS 2017"
    families = CBAA.families
    params = CBAA.params

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        row = tuple(float(v) for v in next_task_scores(view, params))
        self.rows: dict[int, tuple[float, ...]] = {self.id: row}
        self.hops: dict[int, int] = {self.id: 0}  # fewest hops each row has come
        self.task: int | None = None
        self.score = 0.0
        self.solved = False

    def start(self) -> list[Outgoing]:
        self._solve_if_complete()
        return self.broadcast(CostRows(((self.id, self.rows[self.id]),)))

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        nearer: dict[int, int] = {}  # rows that came by a shorter way than before
        for _sender, msg in inbox:
            for agent, row in msg.rows:
                if msg.hops < self.hops.get(agent, self.view.n_agents + 1):
                    self.rows[agent] = row
                    self.hops[agent] = nearer[agent] = msg.hops
        self._solve_if_complete()
        # a row is forwarded while it has come fewer hops than the diameter (a delayed copy
        # may come the long way first: the short way's copy is forwarded again)
        by_hops: dict[int, list[int]] = {}
        for agent, h in nearer.items():
            if h < self.view.diameter:
                by_hops.setdefault(h, []).append(agent)
        out: list[Outgoing] = []
        for h, agents in sorted(by_hops.items()):
            rows = tuple((a, self.rows[a]) for a in sorted(agents))
            out += self.broadcast(CostRows(rows, h + 1))
        return out

    def _solve_if_complete(self) -> None:
        if self.solved or len(self.rows) < self.view.n_agents:
            return
        from scipy.optimize import linear_sum_assignment

        scores = np.array([self.rows[a] for a in range(self.view.n_agents)])
        cost = np.where(np.isfinite(scores), -scores, BIG)
        agents, tasks = linear_sum_assignment(cost)
        for a, j in zip(agents, tasks, strict=True):
            if a == self.id and cost[a, j] < BIG:
                self.task, self.score = int(j), float(scores[a, j])
        self.solved = True

    @property
    def converged(self) -> bool:
        return self.solved

    def plan(self) -> Plan:
        if self.task is None:
            return Plan(self.id)
        return Plan(self.id, [self.task], None, [self.score])
