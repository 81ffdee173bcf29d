"""The local runtime (DESIGN §5): every agent in one process, in synchronous rounds or as a
discrete-event simulation of asynchronous delivery. Agents, checks, sizes, counts and faults
come from the transport core (harness/transport.py); this module is the schedule.

It is the reference semantics: the Ray runtime must give the same plans, rounds and message
counts for synchronous allocators.
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.api import Allocator, Inbox, Message, Outgoing, RoundBatch
from harness.faults import NO_FAULTS, Faults, new_counts
from harness.model import Instance
from harness.transport import (  # noqa: F401 - RunResult, TrialTimeout: where runtimes look
    MessageStats,
    RunRequest,
    RunResult,
    SizeCache,
    TrialTimeout,
    check_outgoing,
    deliver_sent,
    lean_gc,
    make_agents,
    make_wire,
    outcome,
    sized,
    transmit,
)


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
    """Run one trial in this process (``LocalRuntime``); ``deadline`` is a ``time.monotonic()``
    value. ``faults`` are injected on the wire (see :mod:`harness.faults`). ``on_round(round,
    messages delivered, the agents)`` is called after each round (convergence traces)."""
    req = RunRequest(inst, cls, params, seed, max_rounds, deadline, faults)
    return LocalRuntime(on_round).run(req)


def _rounds(
    req: RunRequest, on_round: Callable[[int, int, list[Allocator]], None] | None
) -> RunResult:
    """Synchronous rounds: every agent steps on the messages of the round before."""
    inst, cls, params, seed = req.inst, req.cls, req.params, req.seed
    max_rounds, deadline, faults = req.max_rounds, req.deadline, req.faults
    agents = make_agents(inst, cls, params, seed)
    n = len(agents)
    stats = MessageStats()
    wire = make_wire(faults, seed, n)
    counts = new_counts()
    # copies on the wire: due round -> [(receiver, sender, round sent, position, message)]
    pending: dict[int, list[tuple[int, int, int, int, Message]]] = defaultdict(list)
    # without a wire every message is due next round: whole sends, (sender, messages)
    sent: dict[int, list[tuple[int, list[Outgoing]]]] = defaultdict(list)
    inboxes: list[list[Outgoing]] = [[] for _ in range(n)]
    in_flight = 0

    def send(src: int, rnd: int, out: list[Outgoing]) -> None:
        nonlocal in_flight
        if wire is None:  # what transmit() would give, kept as one block
            counts["sent"] += len(out)
            in_flight += len(out)
            if out:
                sent[rnd + 1].append((src, out))
            return
        for dst, due, i, msg in transmit(wire, src, rnd, out, counts):
            pending[due].append((dst, src, rnd, i, msg))
            in_flight += 1

    def flush(rnd: int) -> list[list[Outgoing]]:
        """Hand the copies due in round rnd + 1 to their receivers; they count as delivered."""
        cache: SizeCache = {}
        batch = RoundBatch()  # shared by the round's inboxes (harness.api.round_batch)
        boxes: list[list[Outgoing]] = [Inbox(batch=batch) for _ in range(n)]
        if wire is None:
            delivered = 0
            for src, out in sent.pop(rnd + 1, []):
                deliver_sent(boxes, src, out)
                stats.record_sent(src, out, cache)
                delivered += len(out)
            stats.per_round.append(delivered)
            return boxes
        due = pending.pop(rnd + 1, [])
        due.sort(key=lambda c: (c[1], c[2], c[3]))
        for dst, src, _sent, _i, msg in due:
            stats.record(src, dst, type(msg).__name__, sized(msg, cache))
            boxes[dst].append((src, msg))
        stats.per_round.append(len(due))
        return [Inbox(wire.order(d, rnd + 1, box), batch) for d, box in enumerate(boxes)]

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
        plans, measures = outcome(agents, crashed)
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


def _events(req: RunRequest, mean_latency: float = 1.0) -> RunResult:
    """A discrete-event simulation of asynchronous delivery: each message is handled on arrival,
    after an exponential latency (seeded by the trial seed) plus any injected delay. Agents
    handle at most ``max_rounds`` messages per neighbour. ``rounds`` is the largest number of
    messages any agent handled."""
    inst, cls, params, seed = req.inst, req.cls, req.params, req.seed
    max_rounds, deadline, faults = req.max_rounds, req.deadline, req.faults
    agents = make_agents(inst, cls, params, seed)
    n = len(agents)
    stats = MessageStats()
    wire = make_wire(faults, seed, n)
    counts = new_counts()
    latency = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(1 << 31,)))
    events: list[tuple[float, int, int, int, Message]] = []  # (time, seq, receiver, sender, msg)
    acts = [0] * n
    limits = [max_rounds * max(1, len(a.view.neighbours)) for a in agents]
    crashed: set[int] = set()
    limited = False
    seq = 0
    cache: SizeCache = {}  # a broadcast is pickled once, not once per delivery

    def send(src: int, now: float, out: list[Outgoing]) -> None:
        nonlocal seq
        for dst, due, _i, msg in transmit(wire, src, acts[src], out, counts, rounds=False):
            extra = due - acts[src] - 1  # an injected delay, in mean latencies
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
        stats.record(src, dst, type(msg).__name__, sized(msg, cache))
        acts[dst] += 1
        a = agents[dst]
        send(dst, now, check_outgoing(a, a.receive(src, msg), n))
        if wire is not None and not wire.alive(dst, acts[dst]):
            crashed.add(dst)
    plans, measures = outcome(agents, crashed)
    converged = not limited and all(a.converged for a in agents if a.id not in crashed)
    return RunResult(
        plans, max(acts), converged, stats, wire=counts, crashed=sorted(crashed), measures=measures
    )


@dataclass
class LocalRuntime:
    """The local runtime behind the ``Runtime`` interface: synchronous rounds, or the event
    simulation for asynchronous allocators; ``on_round`` as for ``run_local``."""

    on_round: Callable[[int, int, list[Allocator]], None] | None = None
    name: str = "local"

    def run(self, req: RunRequest) -> RunResult:
        with lean_gc():
            return _rounds(req, self.on_round) if req.cls.synchronous else _events(req)
