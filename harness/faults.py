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

_KEYS = ("name", "drop", "duplicate", "delay", "reorder", "partition", "crash")


def parse_faults(d: Any, source: str = "spec", where: str = "faults") -> Faults:
    """A fault profile from its TOML table; errors name the field and the expected form."""
    if d is None:
        return NO_FAULTS
    if not isinstance(d, dict):
        raise SpecError(source, where, "a table of fault settings", d)
    for k in d:
        if k not in _KEYS:
            raise SpecError(source, f"{where}.{k}", f"one of {', '.join(_KEYS)}")
    if "name" in d and not isinstance(d["name"], str):
        raise SpecError(source, f"{where}.name", "a string", d["name"])
    kw: dict[str, Any] = {}
    spec: dict[str, Any] = {}

    def prob(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise SpecError(source, f"{where}.{key}", "a probability in [0, 1]", value)
        return float(value)

    def rounds(key: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SpecError(source, f"{where}.{key}", f"a whole number of rounds >= {low}", value)
        return value

    for key in ("drop", "duplicate"):
        if key in d and prob(key, d[key]) > 0:
            kw[key] = spec[key] = prob(key, d[key])
    if "delay" in d:
        dl = d["delay"]
        if not isinstance(dl, dict):
            raise SpecError(
                source,
                f"{where}.delay",
                "a table {p = ..., dist = 'uniform', min = 1, max = 3} or {p, dist = "
                "'geometric', mean}",
                dl,
            )
        extra = sorted(set(dl) - {"p", "dist", "min", "max", "mean"})
        if extra:
            raise SpecError(source, f"{where}.delay.{extra[0]}", "one of p, dist, min, max, mean")
        p = prob("delay.p", dl.get("p", 1.0))
        dist = dl.get("dist", "uniform")
        if dist not in DELAY_DISTS:
            raise SpecError(source, f"{where}.delay.dist", f"one of {', '.join(DELAY_DISTS)}", dist)
        if p > 0:
            kw["delay_p"], kw["delay_dist"] = p, dist
            if dist == "uniform":
                lo = rounds("delay.min", dl.get("min", 1), 1)
                hi = rounds("delay.max", dl.get("max", lo), lo)
                kw["delay_min"], kw["delay_max"] = lo, hi
                spec["delay"] = {"p": p, "dist": dist, "min": lo, "max": hi}
            else:
                mean = dl.get("mean")
                if isinstance(mean, bool) or not isinstance(mean, int | float) or mean < 1:
                    raise SpecError(source, f"{where}.delay.mean", "a mean delay >= 1 round", mean)
                kw["delay_mean"] = float(mean)
                spec["delay"] = {"p": p, "dist": dist, "mean": float(mean)}
    if "reorder" in d:
        if not isinstance(d["reorder"], bool):
            raise SpecError(source, f"{where}.reorder", "true or false", d["reorder"])
        if d["reorder"]:
            kw["reorder"] = spec["reorder"] = True
    if "partition" in d:
        pt = d["partition"]
        if not isinstance(pt, dict) or "groups" not in pt:
            raise SpecError(
                source,
                f"{where}.partition",
                "a table {groups = 'halves' or [[ids], [ids]], from = round, to = round}",
                pt,
            )
        extra = sorted(set(pt) - {"groups", "from", "to"})
        if extra:
            raise SpecError(source, f"{where}.partition.{extra[0]}", "one of groups, from, to")
        groups = pt["groups"]
        if groups == "halves":
            kw["partition"] = "halves"
            shown: Any = "halves"
        else:
            ok = (
                isinstance(groups, list)
                and len(groups) == 2
                and all(isinstance(g, list) and g for g in groups)
                and all(
                    isinstance(a, int) and not isinstance(a, bool) and a >= 0
                    for g in groups
                    for a in g
                )
                and not set(groups[0]) & set(groups[1])
            )
            if not ok:
                raise SpecError(
                    source,
                    f"{where}.partition.groups",
                    "'halves' or two disjoint non-empty lists of agent ids",
                    groups,
                )
            kw["partition"] = (frozenset(groups[0]), frozenset(groups[1]))
            shown = [sorted(set(groups[0])), sorted(set(groups[1]))]
        lo = rounds("partition.from", pt.get("from", 0), 0)
        hi = rounds("partition.to", pt.get("to", 1 << 30), lo + 1)
        kw["partition_from"], kw["partition_to"] = lo, hi
        spec["partition"] = {"groups": shown, "from": lo, "to": hi}
    if "crash" in d:
        items = d["crash"] if isinstance(d["crash"], list) else [d["crash"]]
        crashes = []
        for i, c in enumerate(items):
            w = f"{where}.crash[{i}]"
            if not isinstance(c, dict) or set(c) != {"agent", "round"}:
                raise SpecError(source, w, "a table {agent = id, round = r >= 1}", c)
            agent = c["agent"]
            if isinstance(agent, bool) or not isinstance(agent, int) or agent < 0:
                raise SpecError(source, f"{w}.agent", "an agent id >= 0", agent)
            crashes.append((agent, rounds("crash.round", c["round"], 1)))
        if crashes:
            kw["crash"] = tuple(sorted(crashes))
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
