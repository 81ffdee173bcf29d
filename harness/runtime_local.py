"""The local runtime (DESIGN §5): every agent in one process, synchronous rounds.

It is the reference semantics: the Ray runtime must give the same plans, rounds and message
counts for synchronous allocators. Messages are counted at the transport, once per delivery,
with their pickled size.
"""

from __future__ import annotations

import pickle
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from harness.api import Allocator, Message, Outgoing, Plan, ProtocolError, agent_rng, local_views
from harness.model import Instance


class TrialTimeout(Exception):
    """The trial went past its time limit."""


@dataclass
class MessageStats:
    """Counts at the transport: per type (count, bytes, largest) and per (sender, receiver)."""

    by_type: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    pairs: Counter = field(default_factory=Counter)
    per_round: list[int] = field(default_factory=list)

    def record(self, src: int, dst: int, kind: str, size: int) -> None:
        """One delivered message of type ``kind`` and ``size`` pickled bytes."""
        entry = self.by_type[kind]
        entry[0] += 1
        entry[1] += size
        entry[2] = max(entry[2], size)
        self.pairs[(src, dst)] += 1

    @property
    def messages(self) -> int:
        return sum(v[0] for v in self.by_type.values())

    @property
    def bytes(self) -> int:
        return sum(v[1] for v in self.by_type.values())

    def summary(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "by_type": {
                k: {"count": v[0], "bytes": v[1], "max_bytes": v[2]}
                for k, v in sorted(self.by_type.items())
            },
            "pairs_used": len(self.pairs),
            "max_pair": max(self.pairs.values(), default=0),
        }


@dataclass
class RunResult:
    plans: list[Plan]
    rounds: int
    converged: bool
    stats: MessageStats
    nodes: list[str] | None = None  # the node of each agent, on the ray runtime
    calls: int | None = None  # remote calls between agents, on the ray runtime


def sized(msg: Message, cache: dict[int, int]) -> int:
    """Pickled size of a message; a broadcast object is pickled once."""
    key = id(msg)
    if key not in cache:
        cache[key] = len(pickle.dumps(msg, protocol=5))
    return cache[key]


def check_outgoing(agent: Allocator, out: Any, n_agents: int) -> list[Outgoing]:
    if out is None:
        return []
    allowed = None if agent.centralised else agent.view.neighbour_set
    for item in out:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Message)):
            raise ProtocolError(
                f"{agent.name} agent {agent.id} returned {item!r}, expected (receiver, Message)"
            )
        dst = item[0]
        if not (isinstance(dst, int) and 0 <= dst < n_agents) or dst == agent.id:
            raise ProtocolError(f"{agent.name} agent {agent.id} sent to invalid receiver {dst!r}")
        if allowed is not None and dst not in allowed:
            raise ProtocolError(f"{agent.name} agent {agent.id} sent to non-neighbour {dst}")
    return list(out)


def run_local(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    max_rounds: int = 10_000,
    deadline: float | None = None,
) -> RunResult:
    """Run one trial of a synchronous allocator; ``deadline`` is a ``time.monotonic()`` value."""
    if not cls.synchronous:
        raise ProtocolError(
            f"{cls.name} is asynchronous; the local runtime runs synchronous rounds only"
        )
    views = local_views(inst)
    agents = [cls(v, params, agent_rng(seed, v.agent_id)) for v in views]
    n = len(agents)
    stats = MessageStats()
    inboxes: list[list[Outgoing]] = [[] for _ in range(n)]

    def deliver(src: int, out: list[Outgoing], cache: dict[int, int]) -> int:
        for dst, msg in out:
            stats.record(src, dst, type(msg).__name__, sized(msg, cache))
            inboxes[dst].append((src, msg))
        return len(out)

    cache: dict[int, int] = {}
    in_flight = sum(deliver(a.id, check_outgoing(a, a.start(), n), cache) for a in agents)
    stats.per_round.append(in_flight)
    rnd = 0
    quiescence = cls.termination != "stable"
    while (in_flight and quiescence) or not all(a.converged for a in agents):
        if rnd >= max_rounds:
            return RunResult([a.plan() for a in agents], rnd, False, stats)
        if deadline is not None and time.monotonic() > deadline:
            raise TrialTimeout(f"time limit reached in round {rnd}")
        rnd += 1
        current, inboxes = inboxes, [[] for _ in range(n)]
        cache = {}
        in_flight = 0
        for a in agents:
            inbox = current[a.id]
            if not inbox and a.converged:
                continue
            in_flight += deliver(a.id, check_outgoing(a, a.step(rnd, inbox), n), cache)
        stats.per_round.append(in_flight)
    return RunResult([a.plan() for a in agents], rnd, True, stats)
