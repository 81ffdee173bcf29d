"""The transport core every runtime shares (DESIGN §5): making an agent from its view and
generator, checking what it sends, sizing and counting messages, the wire's faults, and
collecting plans and measurements at the end. A runtime is a schedule around these: rounds in
one process and a discrete-event queue (harness/runtime_local.py), Ray actors calling each
other (actors/), the online execution loop (harness/execution.py).

Messages are counted at the transport, once per delivery, with their pickled size.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
from collections import Counter, deque
from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import is_, itemgetter
from typing import Any, ClassVar, Protocol

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


@dataclass(frozen=True)
class RunRequest:
    """One trial as a runtime takes it: the instance, the allocator class and its resolved
    parameters, the trial seed, the round limit, the ``time.monotonic()`` deadline (None: no
    limit) and the faults to inject on the wire."""

    inst: Instance
    cls: type[Allocator]
    params: dict[str, Any]
    seed: int
    max_rounds: int = 10_000
    deadline: float | None = None
    faults: Faults = NO_FAULTS


class Runtime(Protocol):
    """A schedule around the transport core, chosen by name (``"local"``, ``"ray"``): every
    runtime runs a trial with this one signature and gives the same plans and counts for a
    synchronous allocator (the runtime-equivalence tests hold this)."""

    name: str

    def run(self, req: RunRequest) -> RunResult: ...


def make_agents(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    ids: Sequence[int] | None = None,
) -> list[Allocator]:
    """The agents ``ids`` (all by default), each from its local view and its own generator
    derived from the trial seed: the same agent on every runtime."""
    views = local_views(inst) if ids is None else local_views(inst, list(ids))
    return [cls(v, params, agent_rng(seed, v.agent_id)) for v in views]


def make_wire(faults: Faults, seed: int, n_agents: int) -> Wire | None:
    """The wire that injects ``faults`` (None without faults: every message is delivered)."""
    return Wire(faults, seed, n_agents) if faults.active else None


def transmit(
    wire: Wire | None,
    src: int,
    rnd: int,
    out: list[Outgoing],
    counts: dict[str, int],
    rounds: bool = True,
) -> list[tuple[int, int, int, Message]]:
    """What becomes of the messages ``src`` sends in its round (or activation) ``rnd``: one
    ``(receiver, due round, position in out, message)`` per copy that travels (none for a
    lost message, two for a duplicated one), the fates counted into ``counts`` (faults.COUNTERS).
    Without a wire every message travels once and is due next round. ``rounds`` false:
    asynchronous delivery (the receiver handles crashes)."""
    if wire is None:
        counts["sent"] += len(out)
        return [(dst, rnd + 1, i, msg) for i, (dst, msg) in enumerate(out)]
    copies = []
    for i, (dst, msg) in enumerate(out):
        n, due = wire.fate(src, dst, rnd, i, counts, rounds)
        copies += [(dst, due, i, msg)] * n
    return copies


def outcome(
    agents: Sequence[Allocator], crashed: Sequence[int] | set[int]
) -> tuple[list[Plan], dict[str, float]]:
    """Plans (empty for crashed agents) and the live agents' measurements, merged."""
    gone = set(crashed)
    plans = [Plan(a.id) if a.id in gone else a.plan() for a in agents]
    return plans, merge_measures([a.measurements() for a in agents if a.id not in gone])


#: the cyclic collector's first threshold while a trial runs: delivery makes millions of short-
#: lived tuples, and Python's default (700) would scan the young ones every few hundred
LEAN_GC_THRESHOLD = 100_000
_lean_depth = [0]


@contextlib.contextmanager
def lean_gc() -> Iterator[None]:
    """While a trial delivers messages: what lived before it (the instance, the modules) is
    frozen out of the cyclic collector's scans, and young objects are collected less often.
    Collection still runs, so a cycle an allocator makes is freed; nothing a trial computes
    depends on it. Nested uses (an executed mission's re-plans) act once."""
    outer = _lean_depth[0] == 0
    _lean_depth[0] += 1
    before = gc.get_threshold()
    if outer:
        gc.freeze()
        gc.set_threshold(max(before[0], LEAN_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        _lean_depth[0] -= 1
        if outer:
            gc.set_threshold(*before)
            gc.unfreeze()


def shared_message(out: list[Outgoing]) -> Message | None:
    """The one message object every ``(receiver, message)`` of ``out`` carries (a broadcast),
    found in one C-level identity pass; None if there are several, or none."""
    if not out:
        return None
    first = out[0][1]
    return first if all(map(is_, map(itemgetter(1), out), repeat(first))) else None


def broadcast_of(out: list[Outgoing], peers: Set[int]) -> Message | None:
    """The one message object ``out`` sends once to each of ``peers`` and to nobody else (a
    broadcast a runtime may carry as one item), or None."""
    shared = shared_message(out)
    if shared is not None and len(out) == len(peers) and set(map(itemgetter(0), out)) == peers:
        return shared
    return None


def bulk_counts(out: list[Outgoing], cache: SizeCache) -> tuple[dict[str, list[int]], list[int]]:
    """What ``MessageStats.record`` would count for each ``(receiver, message)`` of ``out``:
    per type [count, bytes, largest], and the receivers in order (one pair count each). One
    sizing and one type entry per distinct object; a broadcast is one."""
    receivers = list(map(itemgetter(0), out))
    shared = shared_message(out)
    if shared is not None:
        size = sized(shared, cache)
        return {type(shared).__name__: [len(out), len(out) * size, size]}, receivers
    msgs = list(map(itemgetter(1), out))
    objects = dict(zip(map(id, msgs), msgs, strict=True))
    by_type: dict[str, list[int]] = {}
    for key, count in Counter(map(id, msgs)).items():
        msg = objects[key]
        size = sized(msg, cache)
        entry = by_type.setdefault(type(msg).__name__, [0, 0, 0])
        entry[0] += count
        entry[1] += count * size
        entry[2] = max(entry[2], size)
    return by_type, receivers


def deliver_sent(boxes: list[list[Outgoing]], src: int, out: list[Outgoing]) -> None:
    """Put each ``(receiver, message)`` of ``out`` from ``src`` in its receiver's inbox as
    ``(src, message)``. A broadcast (one object to every receiver) shares one such tuple among
    the inboxes and is delivered in one C-level pass; tuples are immutable, so no agent can
    tell."""
    shared = shared_message(out)
    if shared is not None:
        item = (src, shared)
        deque(map(list.append, map(boxes.__getitem__, map(itemgetter(0), out)), repeat(item)), 0)
        return
    for dst, msg in out:
        boxes[dst].append((src, msg))


class TrialTimeout(Exception):
    """The trial went past its time limit."""


@dataclass
class MessageStats:
    """Counts at the transport: per type (count, bytes, largest) and per (sender, receiver).
    Pairs are kept as they come: counted one by one (``record``, ``add``), or in bulk as each
    send's receiver list (``record_sent``, ``add_sent``), counted with NumPy when asked for
    (``summary``, ``pairs``); no tuple is made per message."""

    by_type: dict[str, list[int]] = field(default_factory=dict)  # plain: a stats object pickles
    counted: Counter = field(default_factory=Counter)
    per_round: list[int] = field(default_factory=list)
    #: sender -> the receiver lists of its sends counted in bulk, not yet folded
    receivers: dict[int, list[list[int]]] = field(default_factory=dict)
    #: sender -> (receivers, messages to each) of the lists folded so far (``_fold``)
    folded: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    _held: int = 0  # receiver entries in ``receivers``
    #: fold the held receiver lists into counts past this many entries
    fold_at: ClassVar[int] = 4_000_000

    def record(self, src: int, dst: int, kind: str, size: int) -> None:
        """One delivered message of type ``kind`` and ``size`` pickled bytes."""
        entry = self.by_type.get(kind) or self.by_type.setdefault(kind, [0, 0, 0])
        entry[0] += 1
        entry[1] += size
        entry[2] = max(entry[2], size)
        self.counted[(src, dst)] += 1

    def record_sent(self, src: int, out: list[Outgoing], cache: SizeCache) -> None:
        """Every ``(receiver, message)`` of ``out``, sent by ``src``, delivered: the counts of
        ``record`` on each, taken in bulk (``bulk_counts``)."""
        self.add_sent(src, *bulk_counts(out, cache))

    def add_sent(self, src: int, by_type: dict[str, list[int]], receivers: list[int]) -> None:
        """Counts taken in bulk elsewhere (a host actor's round): ``src``'s messages per type
        [count, bytes, largest] and their receivers, one entry per message."""
        self._add_types(by_type)
        if receivers:
            self.receivers.setdefault(src, []).append(receivers)
            self._held += len(receivers)
            if self._held > self.fold_at:
                self._fold()

    def merge(self, other: MessageStats) -> None:
        """Add another run's counts to these (the re-plans of an executed mission)."""
        self.add(other.by_type, other.counted)
        other._fold()
        for src, (dsts, counts) in other.folded.items():
            self._combine(src, dsts, counts)
        self.per_round.extend(other.per_round)

    def add(self, by_type: dict[str, list[int]], pairs: dict[tuple[int, int], int]) -> None:
        """Add counts taken elsewhere: per type [count, bytes, largest], per (sender,
        receiver) a count."""
        self._add_types(by_type)
        self.counted.update(pairs)

    def _add_types(self, by_type: dict[str, list[int]]) -> None:
        for kind, (count, size, biggest) in by_type.items():
            entry = self.by_type.get(kind) or self.by_type.setdefault(kind, [0, 0, 0])
            entry[0] += count
            entry[1] += size
            entry[2] = max(entry[2], biggest)

    def _fold(self) -> None:
        """Count the receiver lists held so far into per-sender (receivers, counts) arrays, so
        a long trial holds one entry per pair used, not one per message."""
        import numpy as np

        for src, lists in self.receivers.items():
            total = sum(map(len, lists))
            dsts = np.fromiter(chain.from_iterable(lists), np.int64, total)
            self._combine(src, dsts, np.ones(total, np.int64))
        self.receivers.clear()
        self._held = 0

    def _combine(self, src: int, dsts: Any, counts: Any) -> None:
        """Add ``counts[k]`` messages from ``src`` to ``dsts[k]`` into ``folded``."""
        import numpy as np

        if src in self.folded:
            dsts = np.concatenate([self.folded[src][0], dsts])
            counts = np.concatenate([self.folded[src][1], counts])
        keys, where = np.unique(dsts, return_inverse=True)
        total = np.zeros(len(keys), np.int64)
        np.add.at(total, where, counts)
        self.folded[src] = (keys, total)

    @property
    def pairs(self) -> Counter:
        """Messages per (sender, receiver), every way they were counted."""
        pairs = Counter(self.counted)
        self._fold()
        for src, (dsts, counts) in self.folded.items():
            for dst, count in zip(dsts.tolist(), counts.tolist(), strict=True):
                pairs[(src, dst)] += count
        return pairs

    def pair_figures(self) -> tuple[int, int]:
        """(pairs that carried a message, the most messages one pair carried)."""
        if not self.receivers and not self.folded:
            return len(self.counted), max(self.counted.values(), default=0)
        if self.counted:  # both ways at once (rare): count them together
            pairs = self.pairs
            return len(pairs), max(pairs.values(), default=0)
        used = top = 0
        self._fold()
        for dsts, counts in self.folded.values():
            used += len(dsts)
            top = max(top, int(counts.max()))
        return used, top

    @property
    def messages(self) -> int:
        return sum(v[0] for v in self.by_type.values())

    @property
    def bytes(self) -> int:
        return sum(v[1] for v in self.by_type.values())

    def summary(self) -> dict[str, Any]:
        used, top = self.pair_figures()
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "by_type": {
                k: {"count": v[0], "bytes": v[1], "max_bytes": v[2]}
                for k, v in sorted(self.by_type.items())
            },
            "pairs_used": used,
            "max_pair": top,
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


#: a size cache is emptied when it holds this many messages, so one kept for a whole trial
#: (asynchronous delivery sizes each message as it is handled) stays small
SIZE_CACHE_MAX = 65_536


def sized(msg: Message, cache: SizeCache) -> int:
    """Pickled size of a message; a broadcast object is pickled once while ``cache`` holds it."""
    hit = cache.get(id(msg))
    if hit is None:
        if len(cache) >= SIZE_CACHE_MAX:
            cache.clear()
        hit = cache[id(msg)] = (msg, len(pickle.dumps(msg, protocol=5)))
    return hit[1]


def check_outgoing(agent: Allocator, out: Any, n_agents: int) -> list[Outgoing]:
    """``out`` as a list of ``(receiver, Message)``, each receiver another agent (a neighbour,
    unless the allocator is centralised); else a ProtocolError naming the first bad item.
    The common case is checked in bulk; the item-by-item pass only finds what is wrong."""
    if out is None or (type(out) is list and not out):  # nothing sent: the common answer
        return []
    out = list(out)
    if len(out) <= 16:  # a few items: one plain pass costs less than building the sets
        if not _few_ok(agent, out, n_agents):
            _find_bad_item(agent, out, n_agents)
        return out
    try:
        receivers = set(map(itemgetter(0), out))
        ok = (
            set(map(type, out)) <= {tuple}
            and set(map(len, out)) <= {2}
            and all(issubclass(t, Message) for t in set(map(type, map(itemgetter(1), out))))
            # every receiver's type: the set of receivers keeps 1 and drops np.int64(1)
            and set(map(type, map(itemgetter(0), out))) <= {int}
            and agent.id not in receivers
            and (
                receivers <= agent.view.neighbour_set
                if not agent.centralised
                else all(0 <= d < n_agents for d in receivers)
            )
        )
    except (TypeError, IndexError, KeyError):
        ok = False
    if not ok:
        _find_bad_item(agent, out, n_agents)
    return out


def _few_ok(agent: Allocator, out: list[Any], n_agents: int) -> bool:
    """The bulk check of ``check_outgoing``, item by item: exact (int, Message) pairs to other
    agents, neighbours unless the allocator is centralised."""
    me = agent.id
    allowed = None if agent.centralised else agent.view.neighbour_set
    for item in out:
        if type(item) is not tuple or len(item) != 2:
            return False
        dst, msg = item
        if type(dst) is not int or dst == me or not isinstance(msg, Message):
            return False
        if (dst not in allowed) if allowed is not None else not 0 <= dst < n_agents:
            return False
    return True


def _find_bad_item(agent: Allocator, out: list[Any], n_agents: int) -> None:
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
