"""CBAA: the consensus-based auction algorithm for single assignment (Choi, Brunet, How,
IEEE T-RO 2009, §III, Algorithms 1 and 2).

Phase 1 (auction): an unassigned agent selects the task of largest score ``c_ij`` among those
whose score beats the current winning bid, and bids it. Phase 2 (consensus): winning bids are
max-consensus over neighbours; an agent outbid on its task becomes unassigned. Bids for a task
only rise, so no time stamps are needed. Ties go to the lower agent id. The result equals the
centralised greedy assignment and is within half of the optimum (the paper's Theorem 1 setting).

On routing families the score is that of serving the task next: minus the distance
(``min_sum``: CBAA-ms of Patel et al., ICRA 2020), or minus the distance driven so far plus
the distance (``min_max``: CBAA-mm), the agent's available time standing for what it drove
when it re-plans during execution (harness/execution.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from allocators._routes import NEG, Route, default_mode
from allocators.cbba import NONE, outbids, pick_best
from harness.api import Allocator, LocalView, Message, Outgoing, Param, Plan


@dataclass(frozen=True)
class Bids(Message):
    """Winning bids ``y`` and winners ``z`` as the sender knows them."""

    y: np.ndarray
    z: np.ndarray


def next_task_scores(view: LocalView, params: dict[str, Any]) -> np.ndarray:
    """Every task's score as this agent's next (and only) task, -inf where it cannot serve
    it, in the ``score`` mode asked (subclasses may declare other parameters: auto then)."""
    return Route(view, default_mode(view.objective, params.get("score", "auto"))).candidates()[0]


class CBAA(Allocator):
    name = "cbaa"
    summary = "consensus-based auction: one task per agent, max-consensus on winning bids"
    paper = "Choi, Brunet, How. Consensus-Based Decentralized Auctions for Robust Task Allocation. IEEE T-RO 25(4), 2009"
    families = ("assignment", "mtsp", "tsplib", "mtsp_lkh3")
    params = (
        Param(
            "score",
            "auto",
            "payoff (100 / distance), min_sum (minus the distance to the task) or min_max "
            "(minus distance driven so far plus distance to the task: the agent's available "
            "time counts); auto follows the objective",
            ("auto", "payoff", "min_sum", "min_max"),
        ),
    )

    def __init__(self, view, params, rng) -> None:  # noqa: ANN001 - see Allocator
        super().__init__(view, params, rng)
        self.c = next_task_scores(view, params)
        n = view.tasks.n
        self.y = np.full(n, NEG)
        self.z = np.full(n, NONE, dtype=np.int64)
        self.task = NONE
        self._sent: tuple[np.ndarray, np.ndarray] | None = None

    def select_task(self) -> None:
        """Algorithm 1: bid on the best task whose score beats its winning bid."""
        if self.task != NONE:
            return
        valid = np.isfinite(self.c) & outbids(self.c, np.full_like(self.z, self.id), self.y, self.z)
        if valid.any():
            j = pick_best(self.c, valid, self.view.tasks["tw_start"])
            self.task, self.y[j], self.z[j] = j, self.c[j], self.id

    def start(self) -> list[Outgoing]:
        self.select_task()
        return self._publish()

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        for _k, msg in inbox:  # Algorithm 2: max-consensus on (bid, -agent id)
            win = outbids(msg.y, msg.z, self.y, self.z)
            self.y[win], self.z[win] = msg.y[win], msg.z[win]
        if self.task != NONE and self.z[self.task] != self.id:
            self.task = NONE
        self.select_task()
        return self._publish()

    def _publish(self) -> list[Outgoing]:
        if (
            self._sent is not None
            and np.array_equal(self._sent[0], self.y)
            and np.array_equal(self._sent[1], self.z)
        ):
            return []
        if self._sent is None and self.task == NONE:
            return []
        y, z = self.y.copy(), self.z.copy()
        y.setflags(write=False)
        z.setflags(write=False)
        self._sent = (y, z)
        return self.broadcast(Bids(y, z))

    def plan(self) -> Plan:
        if self.task == NONE:
            return Plan(self.id)
        return Plan(self.id, [int(self.task)], None, [float(self.y[self.task])])


class AsyncCBAA(CBAA):
    """CBAA on asynchronous delivery: each message is merged the moment it arrives, and the
    agent rebids and rebroadcasts only when its view changed. Max-consensus on (bid, -id) is
    order-independent and bids only rise, so every delivery order, duplicates included, ends
    in the same assignment as the synchronous CBAA (the global greedy one)."""

    name = "cbaa_async"
    summary = "CBAA with messages handled as they arrive (asynchronous delivery)"
    synchronous = False

    def receive(self, sender: int, message: Message) -> list[Outgoing]:
        return self.step(0, [(sender, message)])
