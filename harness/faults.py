"""Faults on the wire (DESIGN §5), the same in both runtimes.

A fault profile is part of a trial's key. Every decision about a message (partitioned, dropped,
duplicated, delayed by how many rounds) is a pure function of the trial seed and the message's
coordinates (sender, receiver, round sent, position among the sender's messages of that round),
and every reordering of an inbox is a pure function of the seed, the receiver and the round. So
the ``local`` and ``ray`` runtimes inject exactly the same faults, and a stored trial replays
them from its seed.

Semantics, in synchronous rounds (a message sent in round r is normally handled in round r+1):

- ``partition``: between two groups of agents for the sent rounds ``[from, to)``; a message
  across is lost. The round clock itself (the synchroniser's batches) keeps going: a partition
  is modelled as loss of every message across, not as a stall.
- ``drop``: each remaining message is lost with this probability.
- ``duplicate``: each delivered message arrives twice with this probability.
- ``delay``: with probability ``p`` a message is handled ``d`` rounds late, ``d`` drawn from
  ``uniform`` on ``[min, max]`` or ``geometric`` with a ``mean`` (>= 1); both copies of a
  duplicate share the delay.
- ``reorder``: each inbox is shuffled (otherwise it is ordered by sender, then round sent, then
  position).
- ``crash``: agent ``a`` crashes at round ``r`` >= 1: it runs rounds up to r-1 and sends their
  messages, then nothing. Messages due to it from round r on, and its own delayed messages due
  after it died, are lost. On the ray runtime its actor is killed. Its plan is empty (it
  executes nothing); the others are not told (the harness's synchroniser stops waiting for it:
  a perfect failure detector at the wire, invisible to the allocator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.errors import SpecError
from harness.params import Param, resolve

_MASK = (1 << 64) - 1
DELAY_DISTS = ("uniform", "geometric")
SALT_PARTITION, SALT_DROP, SALT_DUP, SALT_DELAY, SALT_DELAY_LEN, SALT_REORDER = range(1, 7)

#: the wire counters every trial stores (all zero but ``sent`` when no fault is injected)
COUNTERS = ("sent", "partitioned", "dropped", "duplicated", "delayed", "lost_crash")


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform(*coords: int) -> float:
    """A number in [0, 1) that depends only on the integer coordinates."""
    h = 0
    for c in coords:
        h = _splitmix(h ^ (c & _MASK))
    return (h >> 11) / float(1 << 53)


@dataclass(frozen=True)
class Faults:
    """One fault profile; the empty profile injects nothing."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay_p: float = 0.0
    delay_dist: str = "uniform"
    delay_min: int = 1
    delay_max: int = 1
    delay_mean: float = 1.0
    reorder: bool = False
    partition: tuple[frozenset[int], frozenset[int]] | str | None = None
    partition_from: int = 0
    partition_to: int = 0
    crash: tuple[tuple[int, int], ...] = ()  # (agent, round)
    spec: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def active(self) -> bool:
        return bool(self.spec)

    def to_dict(self) -> dict[str, Any]:
        """The canonical profile, as stored and hashed into the trial key."""
        return dict(self.spec)

    # -- per trial --------------------------------------------------------------------------
    def crash_rounds(self, n_agents: int) -> dict[int, int]:
        out: dict[int, int] = {}
        for agent, rnd in self.crash:
            if agent >= n_agents:
                raise SpecError(
                    "faults", "crash.agent", f"an agent id below {n_agents} for this instance"
                )
            out[agent] = min(rnd, out.get(agent, rnd))
        return out

    def groups(self, n_agents: int) -> tuple[frozenset[int], frozenset[int]] | None:
        if self.partition is None:
            return None
        if self.partition == "halves":
            half = n_agents // 2
            return frozenset(range(half)), frozenset(range(half, n_agents))
        assert not isinstance(self.partition, str)
        return self.partition


class Wire:
    """The fault injector of one trial: decides the fate of each message and counts it."""

    def __init__(self, faults: Faults, seed: int, n_agents: int) -> None:
        self.f = faults
        self.seed = seed & _MASK
        self.crash = faults.crash_rounds(n_agents)
        #: agents a message was lost to because they had crashed by its round (a crash the
        #: trial met even when it ended before the crash round: they count as crashed)
        self.dead: set[int] = set()
        g = faults.groups(n_agents)
        self.side: dict[int, int] = {}
        if g is not None:
            self.side = {a: 0 for a in g[0]} | {a: 1 for a in g[1]}

    def alive(self, agent: int, rnd: int) -> bool:
        """Does ``agent`` run round ``rnd``?"""
        return rnd < self.crash.get(agent, 1 << 62)

    def fate(
        self,
        src: int,
        dst: int,
        rnd: int,
        idx: int,
        counts: dict[str, int],
        rounds: bool = True,
    ) -> tuple[int, int]:
        """(copies, delivery round) of the ``idx``-th message ``src`` sends ``dst`` in round
        ``rnd``; copies 0 when it is lost. Counts the outcome into ``counts``. With ``rounds``
        false (asynchronous delivery) crashes are left to the receiver."""
        f, s = self.f, self.seed
        counts["sent"] += 1
        if (
            self.side
            and f.partition_from <= rnd < f.partition_to
            and src in self.side
            and dst in self.side
            and self.side[src] != self.side[dst]
        ):
            counts["partitioned"] += 1
            return 0, 0
        if f.drop and uniform(s, SALT_DROP, src, dst, rnd, idx) < f.drop:
            counts["dropped"] += 1
            return 0, 0
        copies = 2 if f.duplicate and uniform(s, SALT_DUP, src, dst, rnd, idx) < f.duplicate else 1
        delay = 0
        if f.delay_p and uniform(s, SALT_DELAY, src, dst, rnd, idx) < f.delay_p:
            u = uniform(s, SALT_DELAY_LEN, src, dst, rnd, idx)
            if f.delay_dist == "uniform":
                delay = f.delay_min + int(u * (f.delay_max - f.delay_min + 1))
            elif f.delay_mean <= 1.0:
                delay = 1
            else:  # geometric on {1, 2, ...} with the given mean
                delay = max(1, math.ceil(math.log1p(-u) / math.log1p(-1.0 / f.delay_mean)))
            counts["delayed"] += 1
        due = rnd + 1 + delay
        if rounds and (not self.alive(src, due - 1) or not self.alive(dst, due)):
            counts["lost_crash"] += copies
            self.dead.update(a for a, r in ((src, due - 1), (dst, due)) if not self.alive(a, r))
            return 0, 0
        counts["duplicated"] += copies - 1
        return copies, due

    def order(self, dst: int, rnd: int, inbox: list[Any]) -> list[Any]:
        """The inbox of ``dst`` for round ``rnd``, shuffled when reordering is on; ``inbox`` is
        in canonical order (sender, round sent, position)."""
        if not self.f.reorder or len(inbox) < 2:
            return inbox
        keys = [uniform(self.seed, SALT_REORDER, dst, rnd, i) for i in range(len(inbox))]
        return [inbox[i] for i in sorted(range(len(inbox)), key=keys.__getitem__)]


def new_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


NO_FAULTS = Faults()


def _groups(value: Any, source: str, where: str) -> Any:
    """``"halves"``, or two disjoint non-empty lists of agent ids (as frozensets)."""
    if value == "halves":
        return value
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(g, list) and g for g in value)
        and all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for g in value for a in g)
        and not set(value[0]) & set(value[1])
    )
    if not ok:
        raise ValueError(value)
    return (frozenset(value[0]), frozenset(value[1]))


DELAY_PARAMS = (
    Param("p", 1.0, "probability a message is delayed", low=0.0, high=1.0),
    Param("dist", "uniform", "the delay's distribution", choices=DELAY_DISTS),
    Param("min", 1, "least delay, rounds (uniform)", low=1),
    Param("max", 1, "most delay, rounds (uniform; default min)", low=1),
    Param("mean", 1.0, "mean delay, rounds (geometric; required)", low=1.0),
)
PARTITION_PARAMS = (
    Param(
        "groups",
        "halves",
        "the two sides",
        parse=_groups,
        expected="'halves' or two disjoint non-empty lists of agent ids",
        required=True,
    ),
    Param("from", 0, "first round of the partition", low=0),
    Param("to", 1 << 30, "first round after it", low=1),
)
#: a fault profile: one ``[[faults]]`` table of a spec, or ``harness bench --faults``
FAULT_PARAMS = (
    Param("name", "", "a label for the profile"),
    Param("drop", 0.0, "probability a message is lost", low=0.0, high=1.0),
    Param("duplicate", 0.0, "probability a message arrives twice", low=0.0, high=1.0),
    Param("delay", {}, "delays", table=DELAY_PARAMS),
    Param("reorder", False, "shuffle each inbox"),
    Param("partition", {}, "a partition of the graph for some rounds", table=PARTITION_PARAMS),
    Param(
        "crash",
        [],
        "agents that stop",
        each=(
            Param("agent", 0, "the agent that crashes", low=0, required=True),
            Param("round", 1, "the round it crashes in", low=1, required=True),
        ),
    ),
)


def parse_faults(d: Any, source: str = "spec", where: str = "faults") -> Faults:
    """A fault profile from its TOML table (``FAULT_PARAMS``); errors name the field and the
    expected form. ``spec`` keeps the active settings only, in canonical form."""
    if d is None:
        return NO_FAULTS
    given = resolve(FAULT_PARAMS, d, source, where, "fault settings", fill=False)
    kw: dict[str, Any] = {}
    spec: dict[str, Any] = {}
    for key in ("drop", "duplicate"):
        if given.get(key, 0.0) > 0:
            kw[key] = spec[key] = given[key]
    if "delay" in given:
        dl = given["delay"]
        p, dist = dl["p"], dl["dist"]
        if p > 0:
            kw["delay_p"], kw["delay_dist"] = p, dist
            if dist == "uniform":
                lo = dl["min"]
                hi = dl["max"] if "max" in d["delay"] else lo
                if hi < lo:
                    raise SpecError(source, f"{where}.delay.max", f"an integer >= min ({lo})", hi)
                kw["delay_min"], kw["delay_max"] = lo, hi
                spec["delay"] = {"p": p, "dist": dist, "min": lo, "max": hi}
            else:
                if "mean" not in d["delay"]:
                    raise SpecError(source, f"{where}.delay.mean", "a mean delay >= 1 round")
                kw["delay_mean"] = dl["mean"]
                spec["delay"] = {"p": p, "dist": dist, "mean": dl["mean"]}
    if given.get("reorder"):
        kw["reorder"] = spec["reorder"] = True
    if "partition" in given:
        pt = given["partition"]
        lo, hi = pt["from"], pt["to"]
        if hi < lo + 1:
            raise SpecError(
                source, f"{where}.partition.to", f"an integer >= from + 1 ({lo + 1})", hi
            )
        groups = pt["groups"]
        kw["partition"] = groups
        shown = groups if groups == "halves" else [sorted(groups[0]), sorted(groups[1])]
        kw["partition_from"], kw["partition_to"] = lo, hi
        spec["partition"] = {"groups": shown, "from": lo, "to": hi}
    if given.get("crash"):
        kw["crash"] = tuple(sorted((c["agent"], c["round"]) for c in given["crash"]))
        spec["crash"] = [{"agent": a, "round": r} for a, r in kw["crash"]]
    return Faults(**kw, spec=spec)


def fault_name(d: dict[str, Any]) -> str:
    """A short label for a profile: its ``name``, else its settings (``none`` when empty)."""
    if "name" in d:
        return str(d["name"])
    spec = parse_faults(d).spec
    if not spec:
        return "none"
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else k for k, v in sorted(spec.items()))
