"""One allocator agent hosted by one Ray actor, talking to its peers directly (DESIGN §5).

Rounds without a central barrier: in every round an agent sends each of its synchronisation
peers (its graph neighbours, or every agent for a centralised allocator) exactly one batch: the
messages of that round for that peer, possibly none. An agent runs round r+1 once it holds the
round-r batch of every peer, so rounds stay in step through the batches alone.

Termination without a coordinator: each batch also carries the sender's *quiet count*:
0 if the sender was not quiet in that round, else one more than the smallest count it had
seen (its own and its peers', from the round before). Quiet means converged and, under the
``quiescence`` rule, no message sent. A count of D+1 (D: the peer graph's diameter) proves
that every agent was quiet in one same round, after which nothing can change; the agent then
stops and floods a stop flag. The driver learns the exact final round from the agents' quiet
histories (the first round in which all were quiet) and cuts plans and counts there, so the
results equal the local runtime's.

The logic is in :class:`AgentHost`, plain Python; :class:`AgentActor` is its Ray shell.
"""

from __future__ import annotations

import traceback
from collections import defaultdict
from typing import Any

import ray

import allocators
from harness.api import Outgoing, agent_rng, local_views
from harness.model import Instance
from harness.runtime_local import check_outgoing, sized

Batch = tuple[int, int, list[Any], int, bool]  # (round, sender, messages, quiet count, stop)
Send = tuple[int, Batch]  # (receiver, batch)


class AgentHost:
    """The round keeping of one agent; returns the batches to send, never sends them."""

    def __init__(
        self,
        inst: Instance,
        name: str,
        params: dict[str, Any],
        seed: int,
        agent_id: int,
        max_rounds: int,
    ) -> None:
        cls = allocators.get(name)
        view = local_views(inst, [agent_id])[0]
        self.agent = cls(view, params, agent_rng(seed, agent_id))
        self.id = agent_id
        self.n = inst.n_agents
        if cls.centralised:
            self.peers = tuple(a for a in range(self.n) if a != agent_id)
            self.diameter = 1
        else:
            self.peers = view.neighbours
            self.diameter = max(1, view.diameter)
        self.quiescence = cls.termination != "stable"
        self.max_rounds = max_rounds
        self.round = -1  # last round run
        self.pending: dict[int, dict[int, tuple[list[Any], int]]] = defaultdict(dict)
        self.count = 0
        self.quiet: list[bool] = []  # per round
        self.plans: list[tuple[int, dict[str, Any]]] = []  # (first round, plan) on every change
        self.log: list[tuple[int, int, str, int]] = []  # (round, receiver, type, bytes) per message
        self.done = False
        self.calls = 0  # batches sent (one remote call each)

    # -- rounds ------------------------------------------------------------------------------
    def start(self) -> list[Send]:
        out = check_outgoing(self.agent, self.agent.start(), self.n)
        return self._finish_round(0, out, []) + self._advance()

    def receive(
        self, rnd: int, sender: int, messages: list[Any], count: int, stop: bool
    ) -> list[Send]:
        if self.done:
            return []
        if stop:  # somebody proved global quiescence: nothing can change any more; pass it on
            self.done = True
            return [(p, (self.round, self.id, [], self.count, True)) for p in self.peers]
        self.pending[rnd][sender] = (messages, count)
        return self._advance()

    def _advance(self) -> list[Send]:
        """Run every round whose inputs are all here."""
        batches: list[Send] = []
        while (
            not self.done
            and self.round >= 0
            and len(self.pending.get(self.round, ())) == len(self.peers)
        ):
            got = self.pending.pop(self.round)
            rnd_next = self.round + 1
            inbox: list[Outgoing] = [(k, m) for k in sorted(got) for m in got[k][0]]
            if inbox or not self.agent.converged:
                out = check_outgoing(self.agent, self.agent.step(rnd_next, inbox), self.n)
            else:
                out = []
            batches += self._finish_round(rnd_next, out, [c for _, c in got.values()])
        return batches

    def _finish_round(self, rnd: int, out: list[Outgoing], peer_counts: list[int]) -> list[Send]:
        self.round = rnd
        quiet = self.agent.converged and (not out or not self.quiescence)
        self.quiet.append(quiet)
        self.count = 1 + min([self.count, *peer_counts]) if quiet else 0
        plan = self.agent.plan().to_dict()
        if not self.plans or self.plans[-1][1] != plan:
            self.plans.append((rnd, plan))
        by_peer: dict[int, list[Any]] = {p: [] for p in self.peers}
        sizes: dict[int, int] = {}
        for dst, msg in out:  # receivers were checked by check_outgoing
            by_peer[dst].append(msg)
            self.log.append((rnd, dst, type(msg).__name__, sized(msg, sizes)))
        stop = self.count >= self.diameter + 1
        self.done = stop or rnd >= self.max_rounds
        return [(p, (rnd, self.id, by_peer[p], self.count, stop)) for p in self.peers]

    def result(self) -> dict[str, Any]:
        return {
            "agent": self.id,
            "quiet": self.quiet,
            "plans": self.plans,
            "log": self.log,
            "round": self.round,
            "calls": self.calls,
        }


@ray.remote(num_cpus=0)
class AgentActor:
    """Ray shell around :class:`AgentHost`. Methods run one at a time (asyncio actor, no
    awaits inside a delivery), so a delivery is never interleaved with another."""

    def __init__(self) -> None:
        self.host: AgentHost | None = None
        self.peers: dict[int, Any] = {}
        self.error: str | None = None
        self.trial = None
        self.finished: Any = None

    async def setup(
        self,
        trial: str,
        inst: Instance,
        name: str,
        params: dict,
        seed: int,
        agent_id: int,
        max_rounds: int,
        handles: dict[int, Any],
    ) -> int:
        import asyncio

        self.trial, self.error = trial, None
        self.finished = asyncio.Event()
        self.host = AgentHost(inst, name, params, seed, agent_id, max_rounds)
        self.peers = {p: handles[p] for p in self.host.peers}
        return agent_id

    async def begin(self) -> None:
        self._run(lambda: self.host.start())

    async def deliver(self, trial: str, batch: Batch) -> None:
        if trial != self.trial or self.host is None:
            return  # a late batch of an earlier trial
        self._run(lambda: self.host.receive(*batch))

    def _run(self, work: Any) -> None:
        if self.error is not None:
            return
        try:
            for dst, batch in work():
                self.peers[dst].deliver.remote(self.trial, batch)  # one call per peer per round
                self.host.calls += 1
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which ends the trial
            self.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
        if self.host.done or self.error is not None:
            self.finished.set()

    async def result(self) -> dict[str, Any]:
        await self.finished.wait()
        if self.error is not None:
            return {"agent": self.host.id if self.host else -1, "error": self.error}
        return {**self.host.result(), "node": ray.get_runtime_context().get_node_id()}
