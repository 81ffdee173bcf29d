"""The local runtime (DESIGN §5): every agent in one process, synchronous rounds.

It is the reference semantics: the Ray runtime must give the same plans, rounds and message
counts for synchronous allocators. Messages are counted at the transport, once per delivery,
with their pickled size.
"""

from __future__ import annotations

import heapq
import pickle
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.api import (
    Allocator,
    Message,
    Outgoing,
    Plan,
    ProtocolError,
    agent_rng,
    local_views,
    merge_measures,
)
from harness.faults import NO_FAULTS, Faults, Wire, new_counts
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

    def merge(self, other: MessageStats) -> None:
        """Add another run's counts to these (the re-plans of an executed mission)."""
        for kind, (count, size, biggest) in other.by_type.items():
            entry = self.by_type[kind]
            entry[0] += count
            entry[1] += size
            entry[2] = max(entry[2], biggest)
        self.pairs.update(other.pairs)
        self.per_round.extend(other.per_round)

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
    actors: int | None = None  # actors hosting the agents, on the ray runtime
    setup_s: float | None = None  # driver time to hand the trial to the actors (ray runtime)
    wire: dict[str, int] = field(default_factory=new_counts)  # faults.COUNTERS
    crashed: list[int] = field(default_factory=list)  # agents crashed by injection
    measures: dict[str, float] = field(default_factory=dict)  # Allocator.measurements, merged
    #: ray runtime, synchronous: each agent's plans with the first round it held each, to
    #: trace convergence after the run (``trace_rounds``)
    plan_history: dict[int, list[tuple[int, dict[str, Any]]]] | None = None

    def columns(self) -> dict[str, Any]:
        """The result columns of the run itself (docs/results.md): rounds, convergence,
        message counts and sizes, wire fates, crashes, placement on Ray, the plans, and the
        allocator's own measurements as ``trial_*``."""
        import json

        stats = self.stats.summary()
        return {
            "m_rounds": self.rounds,
            "m_converged": self.converged,
            "m_messages": stats["messages"],
            "m_bytes": stats["bytes"],
            "m_msg_types": json.dumps(stats["by_type"], sort_keys=True),
            "m_msgs_max_pair": stats["max_pair"],
            "m_pairs_used": stats["pairs_used"],
            "m_msgs_per_round": stats["messages"] / max(1, self.rounds),
            "trial_plans": json.dumps([p.to_dict() for p in self.plans]),
            "trial_agent_nodes": json.dumps(self.nodes) if self.nodes else None,
            "m_nodes": len(set(self.nodes)) if self.nodes else 1,
            "m_calls": self.calls,
            "m_actors": self.actors,
            "trial_setup_s": self.setup_s,
            **{f"m_msgs_{k}": v for k, v in self.wire.items()},
            "m_crashed": len(self.crashed),
            **{f"trial_{k}": v for k, v in self.measures.items()},
            "trial_crashed_agents": json.dumps(self.crashed),
        }

    def plans_by_round(self) -> Iterator[list[Plan]]:
        """The team's plans as they stood after each round 1, 2, ... (from ``plan_history``)."""
        assert self.plan_history is not None
        agents = sorted(self.plan_history)
        history = [self.plan_history[a] for a in agents]
        seen = [0] * len(agents)
        current = [Plan(a) for a in agents]
        for rnd in range(1, self.rounds + 1):
            for k, held in enumerate(history):
                while seen[k] < len(held) and held[seen[k]][0] <= rnd:
                    current[k] = Plan.from_dict(held[seen[k]][1])
                    seen[k] += 1
            yield list(current)


#: message id -> (the message, its pickled size); holding the message keeps its id from being
#: reused by another object while the cache lives
SizeCache = dict[int, tuple[Message, int]]


def sized(msg: Message, cache: SizeCache) -> int:
    """Pickled size of a message; a broadcast object is pickled once."""
    hit = cache.get(id(msg))
    if hit is None:
        hit = cache[id(msg)] = (msg, len(pickle.dumps(msg, protocol=5)))
    return hit[1]


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
    faults: Faults = NO_FAULTS,
    on_round: Callable[[int, int, list[Allocator]], None] | None = None,
) -> RunResult:
    """Run one trial of a synchronous allocator; ``deadline`` is a ``time.monotonic()`` value.
    ``faults`` are injected on the wire (see :mod:`harness.faults`). ``on_round(round,
    messages delivered, the agents)`` is called after each round (convergence traces)."""
    if not cls.synchronous:
        return run_local_async(inst, cls, params, seed, max_rounds, deadline, faults)
    views = local_views(inst)
    agents = [cls(v, params, agent_rng(seed, v.agent_id)) for v in views]
    n = len(agents)
    stats = MessageStats()
    wire = Wire(faults, seed, n) if faults.active else None
    counts = new_counts()
    # copies on the wire: due round -> [(receiver, sender, round sent, position, message)]
    pending: dict[int, list[tuple[int, int, int, int, Message]]] = defaultdict(list)
    inboxes: list[list[Outgoing]] = [[] for _ in range(n)]
    in_flight = 0

    def send(src: int, rnd: int, out: list[Outgoing]) -> None:
        nonlocal in_flight
        if wire is None:
            counts["sent"] += len(out)
            pending[rnd + 1].extend((dst, src, rnd, i, msg) for i, (dst, msg) in enumerate(out))
            in_flight += len(out)
            return
        for i, (dst, msg) in enumerate(out):
            copies, due = wire.fate(src, dst, rnd, i, counts)
            pending[due].extend([(dst, src, rnd, i, msg)] * copies)
            in_flight += copies

    def flush(rnd: int) -> list[list[Outgoing]]:
        """Hand the copies due in round rnd + 1 to their receivers; they count as delivered."""
        due = pending.pop(rnd + 1, [])
        if wire is not None:
            due.sort(key=lambda c: (c[1], c[2], c[3]))
        cache: SizeCache = {}
        boxes: list[list[Outgoing]] = [[] for _ in range(n)]
        for dst, src, _sent, _i, msg in due:
            stats.record(src, dst, type(msg).__name__, sized(msg, cache))
            boxes[dst].append((src, msg))
        stats.per_round.append(len(due))
        if wire is not None:
            boxes = [wire.order(d, rnd + 1, box) for d, box in enumerate(boxes)]
        return boxes

    for a in agents:
        send(a.id, 0, check_outgoing(a, a.start(), n))
    inboxes = flush(0)
    rnd = 0
    quiescence = cls.termination != "stable"
    live = agents

    def result(converged: bool) -> RunResult:
        crashed = (
            []
            if wire is None
            else [a.id for a in agents if not wire.alive(a.id, rnd) or a.id in wire.dead]
        )
        plans = [Plan(a.id) if a.id in crashed else a.plan() for a in agents]
        measures = merge_measures([a.measurements() for a in agents if a.id not in crashed])
        return RunResult(
            plans, rnd, converged, stats, wire=counts, crashed=crashed, measures=measures
        )

    while (in_flight and quiescence) or not all(a.converged for a in live):
        if rnd >= max_rounds:
            return result(False)
        if deadline is not None and time.monotonic() > deadline:
            raise TrialTimeout(f"time limit reached in round {rnd}")
        rnd += 1
        if wire is not None:
            live = [a for a in agents if wire.alive(a.id, rnd)]
        current = inboxes
        in_flight -= sum(len(box) for box in current)  # handled in this round
        for a in live:
            inbox = current[a.id]
            if not inbox and a.converged:
                continue
            send(a.id, rnd, check_outgoing(a, a.step(rnd, inbox), n))
        inboxes = flush(rnd)
        if on_round is not None:
            on_round(rnd, stats.per_round[-1], agents)
    return result(True)


def run_local_async(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    max_rounds: int = 10_000,
    deadline: float | None = None,
    faults: Faults = NO_FAULTS,
    mean_latency: float = 1.0,
) -> RunResult:
    """A discrete-event simulation of asynchronous delivery: each message is handled on arrival,
    after an exponential latency (seeded by the trial seed) plus any injected delay. Agents
    handle at most ``max_rounds`` messages per neighbour. ``rounds`` is the largest number of
    messages any agent handled."""
    views = local_views(inst)
    agents = [cls(v, params, agent_rng(seed, v.agent_id)) for v in views]
    n = len(agents)
    stats = MessageStats()
    wire = Wire(faults, seed, n) if faults.active else None
    counts = new_counts()
    latency = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(1 << 31,)))
    events: list[tuple[float, int, int, int, Message]] = []  # (time, seq, receiver, sender, msg)
    acts = [0] * n
    limits = [max_rounds * max(1, len(v.neighbours)) for v in views]
    crashed: set[int] = set()
    limited = False
    seq = 0

    def send(src: int, now: float, out: list[Outgoing]) -> None:
        nonlocal seq
        for i, (dst, msg) in enumerate(out):
            if wire is None:
                counts["sent"] += 1
                copies, extra = 1, 0
            else:
                copies, due = wire.fate(src, dst, acts[src], i, counts, rounds=False)
                extra = due - acts[src] - 1
            for _ in range(copies):
                t = now + float(latency.exponential(mean_latency)) + extra * mean_latency
                heapq.heappush(events, (t, seq, dst, src, msg))
                seq += 1

    for a in agents:
        send(a.id, 0.0, check_outgoing(a, a.start(), n))
    handled = 0
    while events:
        if deadline is not None and handled % 256 == 0 and time.monotonic() > deadline:
            raise TrialTimeout(f"time limit reached after {handled} deliveries")
        now, _, dst, src, msg = heapq.heappop(events)
        if dst in crashed:
            counts["lost_crash"] += 1
            continue
        if acts[dst] >= limits[dst]:
            limited = True
            continue
        handled += 1
        stats.record(src, dst, type(msg).__name__, sized(msg, {}))
        acts[dst] += 1
        a = agents[dst]
        send(dst, now, check_outgoing(a, a.receive(src, msg), n))
        if wire is not None and not wire.alive(dst, acts[dst]):
            crashed.add(dst)
    plans = [Plan(a.id) if a.id in crashed else a.plan() for a in agents]
    converged = not limited and all(a.converged for a in agents if a.id not in crashed)
    measures = merge_measures([a.measurements() for a in agents if a.id not in crashed])
    return RunResult(
        plans, max(acts), converged, stats, wire=counts, crashed=sorted(crashed), measures=measures
    )
