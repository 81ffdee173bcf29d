"""Online missions on Ray (harness/execution.py, online mode): :class:`RayTeam` puts the
agents in host actors (each an :class:`harness.execution.OnlineHosts`, the mechanism the local
team runs too) and paces them one call a period.
The driver owns the simulated world (the fleet: where the agents are, what they visited) and
hands every host its status each period; the agents' own messages go from host to host
directly. Plans, counts and traces equal the local team's (tests/test_ray_runtime.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray

from actors.runtime import AgentError, _replace, hosts_needed
from harness.api import Allocator
from harness.execution import Fleet
from harness.model import Instance
from harness.transport import MessageStats, TrialTimeout


class RayTeam:
    """An online mission's agents in the host actors ``pool`` (``agents_per_actor`` to a
    host, contiguous blocks), within ``deadline`` (``time.monotonic()``; None: no limit). A
    failure or the deadline kills the hosts used and puts fresh ones in the pool. ``wall`` is
    the driver's time in the agents' calls (their compute and their messages), ``cpu`` the
    hosts' CPU time in the agents' code."""

    def __init__(
        self,
        inst: Instance,
        cls: type[Allocator],
        params: dict[str, Any],
        seed: int,
        pool: list[Any],
        agents_per_actor: int,
        deadline: float | None = None,
    ) -> None:
        n = inst.n_agents
        self.k = k = hosts_needed(n, agents_per_actor)
        if len(pool) < k:
            raise ValueError(f"{len(pool)} actors for {n} agents at {agents_per_actor} per actor")
        self.pool, self.used, self.n, self.deadline = pool, pool[:k], n, deadline
        per = -(-n // k)
        directory = [a // per for a in range(n)]
        self.blocks = [[a for a in range(n) if directory[a] == h] for h in range(k)]
        trial = uuid.uuid4().hex
        inst_ref = ray.put(inst)
        self.wall = self.cpu = 0.0
        self.nodes: list[str] | None = None
        self.calls: int | None = None
        self._get(
            [
                a.online_setup.remote(
                    trial, inst_ref, cls.name, params, seed, self.blocks[h], directory, self.used, h
                )
                for h, a in enumerate(self.used)
            ]
        )

    def _get(self, refs: list[Any]) -> list[Any]:
        """The calls' results; past the deadline a TrialTimeout, an agent's exception or a
        dead actor an AgentError, and then the hosts used are replaced."""
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.RayError as exc:
            _replace(self.pool, list(range(self.k)))
            if isinstance(exc, ray.exceptions.GetTimeoutError):
                raise TrialTimeout(
                    "time limit reached on the ray runtime (its actors were killed)"
                ) from None
            cause = getattr(exc, "cause", None) or exc  # an agent's own exception, if Ray has it
            raise AgentError(f"online agents failed: {type(cause).__name__}: {cause}") from None

    def start(self) -> None:
        w0 = time.perf_counter()
        self._get([a.online_start.remote() for a in self.used])
        self.wall += time.perf_counter() - w0

    def step(
        self, rnd: int, fleet: Fleet, sample: bool
    ) -> tuple[list[list[int]], int, list[float | None]]:
        w0 = time.perf_counter()
        status = [ray.put(x) for x in (fleet.pos, fleet.travelled, fleet.visited)]
        out = self._get([a.online_step.remote(rnd, fleet.now, *status, sample) for a in self.used])
        self.wall += time.perf_counter() - w0
        seqs: list[list[int]] = [[] for _ in range(self.n)]
        progress: list[float | None] = []
        for r in out:
            for a, seq in r["seqs"].items():
                seqs[a] = seq
            progress += r["progress"].values()
        return seqs, sum(r["delivered"] for r in out), progress

    def finish(self, stats: MessageStats) -> list[dict[str, float]]:
        done = self._get([a.online_finish.remote() for a in self.used])
        measures: dict[int, dict[str, float]] = {}
        nodes: list[str] = [""] * self.n
        self.calls = 0
        for h, r in enumerate(done):
            stats.merge(r["stats"])
            measures.update(r["measures"])
            self.cpu += r["cpu"]
            self.calls += r["calls"]
            for a in self.blocks[h]:
                nodes[a] = r["node"]
        self.nodes = nodes
        return [measures[a] for a in range(self.n)]
