"""Execution: agents travel their task sequences while the allocator keeps re-planning
(issue 6; the experiment of Patel et al., ICRA 2020, the seed ``decentralized-ga-mtsp``).

Simulated time is deterministic. Agents move in straight lines at a constant ``speed`` toward
the first task of their current sequence; a location is visited the moment an agent reaches
it, and from then on it is done for everyone (the other agents drop it from their sequences,
as the paper's execution thread does with the completed tasks it hears of). A trial ends when
every location is visited; the stored figures are the executed makespan (the time the last
location was visited), the executed distance (everything the agents drove, detours
included), the re-plans, and the allocator's messages, bytes and compute time summed over
the mission.

Two ways to re-plan:

``restart`` (any allocator): the allocator runs to convergence on the remaining problem,
    agents at their current positions. An agent's distance so far enters as its available
    time (``avail_start = travelled / speed``), so a min-max score is "distance travelled
    plus distance to the task", the paper's "-mm" variants. The team re-plans whenever an
    agent that had a sequence runs out of tasks while locations remain (the paper's "Phase 1
    when no sequence exists"); allocation is instantaneous in simulated time, and its wall
    and CPU time are measured instead.
``online`` (allocators with ``online = True``, the decentralised GA): the allocator keeps
    running. Every ``period`` seconds of simulated time each agent hears the team's status
    (every agent broadcasts its position and the locations it visited: counted as ``Status``
    messages), the allocator runs one round of its protocol, and each agent follows its
    current sequence for the next period.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.api import (
    Allocator,
    Message,
    Outgoing,
    Plan,
    merge_measures,
)
from harness.errors import SpecError
from harness.model import Instance
from harness.numerics import length
from harness.params import Param, resolve
from harness.transport import (
    MessageStats,
    RunResult,
    SizeCache,
    TrialTimeout,
    check_outgoing,
    make_agents,
    sized,
)

EPS = 1e-9
MODES = ("auto", "restart", "online")


@dataclass(frozen=True)
class Status(Message):
    """What an agent's execution thread tells the others each period (online mode)."""

    x: float
    y: float
    z: float
    travelled: float
    visited: tuple[int, ...]


#: the ``[execution]`` table (``harness bench --execute``)
EXEC_PARAMS = {
    p.name: p
    for p in (
        Param("speed", 5.0, "agent speed, workspace units a second", above=0.0),
        Param("period", 0.01, "seconds between re-plans (online mode)", above=0.0),
        Param("mode", "auto", "how the allocator re-plans", choices=MODES),
        Param("trace_every", 1.0, "seconds between samples of the allocator's cost", above=0.0),
        Param(
            "checkpoints",
            0,
            "restart mode: re-plans at evenly spaced moments of the mission (the first plan's "
            "time to finish split in checkpoints + 1), where agents measure again from where "
            "they are (docs/uncertainty.md)",
            low=0,
            high=1000,
        ),
        Param(
            "late_tasks",
            0.0,
            "restart mode: the fraction of tasks unknown at the start, each appearing at a "
            "seeded moment of the mission (dynamic missions)",
            low=0.0,
            high=1.0,
        ),
        Param(
            "fail_agents",
            0,
            "restart mode: agents that fail at seeded moments of the mission; the team "
            "re-allocates their tasks (at most all agents but one)",
            low=0,
            high=100_000,
        ),
    )
}


@dataclass(frozen=True)
class ExecSettings:
    """How a trial is executed: agent speed, re-plan period (online), and the mode."""

    speed: float = EXEC_PARAMS["speed"].default
    period: float = EXEC_PARAMS["period"].default
    mode: str = EXEC_PARAMS["mode"].default
    trace_every: float = EXEC_PARAMS["trace_every"].default
    checkpoints: int = EXEC_PARAMS["checkpoints"].default
    late_tasks: float = EXEC_PARAMS["late_tasks"].default
    fail_agents: int = EXEC_PARAMS["fail_agents"].default

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], source: str = "spec", where: str = "execution"
    ) -> ExecSettings:
        return cls(**resolve(EXEC_PARAMS.values(), d, source, where, "execution settings"))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("checkpoints", "late_tasks", "fail_agents"):
            if not d[k]:  # trials without them keep the keys they had
                del d[k]
        return d


@dataclass
class ExecResult:
    """The executed mission, and the allocator's effort over all of it."""

    plans: list[Plan]  # each agent's visits in order, with visit times
    makespan: float
    distance: float
    per_agent: list[float]
    replans: int
    complete: bool
    rounds: int
    stats: MessageStats
    alloc_wall_s: float
    alloc_cpu_s: float
    measures: dict[str, float] = field(default_factory=dict)
    trace: list[tuple[float, float]] = field(default_factory=list)
    message: str = ""
    nodes: list[str] | None = None  # the node of each agent (Ray runtime), last re-plan
    calls: int | None = None  # remote calls between agents over the mission (Ray runtime)
    checkpoints: int | None = None  # checkpoints reached (None: the mission had none)
    #: dynamic missions: (time, "task" or "fail", ids, re-plan wall seconds, its messages)
    events: list[tuple[float, str, list[int], float, int]] | None = None
    late_covered: float | None = None  # fraction of the late tasks visited

    def as_run(self) -> RunResult:
        return RunResult(
            self.plans,
            self.rounds,
            self.complete,
            self.stats,
            nodes=self.nodes,
            calls=self.calls,
            measures=self.measures,
        )

    def columns(self, inst: Instance, optimum: float | None) -> dict[str, Any]:
        """The ``m_exec_*`` result columns. The executed objective is the distance driven
        (``min_sum``) or the longest distance one agent drove (``min_max``), return legs
        included, so it compares with the exact optimum and the best-known cost."""
        import json

        from harness.evaluate import gap

        value = self.distance if inst.objective == "min_sum" else max(self.per_agent, default=0.0)
        ok = self.complete and inst.objective in ("min_sum", "min_max")
        return {
            "m_exec_objective": value if ok else None,
            "m_exec_gap": gap(value, optimum, inst.sense) if ok else None,
            "m_exec_gap_best_known": gap(value, inst.best_known(), inst.sense) if ok else None,
            "m_exec_makespan": self.makespan,
            "m_exec_distance": self.distance,
            "m_exec_max_distance": max(self.per_agent, default=0.0),
            "m_exec_replans": self.replans,
            "m_exec_complete": self.complete,
            "m_exec_alloc_wall_s": self.alloc_wall_s,
            "m_exec_alloc_cpu_s": self.alloc_cpu_s,
            "trial_exec_trace": json.dumps([[round(t, 6), c] for t, c in self.trace]),
            **({} if self.checkpoints is None else {"m_exec_checkpoints": self.checkpoints}),
            **({} if self.events is None else self._event_columns()),
        }

    def _event_columns(self) -> dict[str, Any]:
        import json

        ev = self.events or []
        n = len(ev)  # re-plans an event caused (events at one moment share one)
        changes = sum(len(e[2]) for e in ev)
        return {
            "m_exec_events": changes,
            "m_exec_late_coverage": self.late_covered,
            "m_exec_reallocate_s": sum(e[3] for e in ev) / n if n else None,
            "m_exec_msgs_per_change": sum(e[4] for e in ev) / changes if changes else None,
            "trial_exec_events": json.dumps(
                [[round(t, 6), kind, ids, round(w, 6), msgs] for t, kind, ids, w, msgs in ev]
            ),
        }


class Fleet:
    """Where the agents are, what they drove, and which locations are done."""

    def __init__(self, inst: Instance, speed: float) -> None:
        self.pos = inst.agent_xyz().astype(np.float64)
        self.travelled = np.zeros(inst.n_agents)
        self.xyz = inst.task_xyz()
        self.visited = np.zeros(inst.n_tasks, dtype=bool)
        self.visits: list[list[tuple[int, float]]] = [[] for _ in range(inst.n_agents)]
        self.speed = speed
        self.now = 0.0
        self.news: list[list[int]] = [[] for _ in range(inst.n_agents)]
        self.released = np.ones(inst.n_tasks, dtype=bool)  # dynamic missions hide late tasks
        self.failed = np.zeros(inst.n_agents, dtype=bool)
        ends = inst.agent_end_xyz().astype(np.float64)
        self.ends = None if np.isnan(ends[:, 0]).all() else ends

    @property
    def done(self) -> bool:
        return bool(self.visited.all())

    def dist(self, a: int, task: int) -> float:
        return length(self.xyz[task] - self.pos[a])

    def prune(self, seqs: list[list[int]]) -> None:
        """Drop visited locations from every sequence (and repeats within one); a failed agent
        keeps none."""
        for k, s in enumerate(seqs):
            seen: set[int] = set()
            seqs[k] = [
                j
                for j in s
                if not self.failed[k] and not self.visited[j] and not (j in seen or seen.add(j))
            ]

    def advance(self, seqs: list[list[int]], horizon: float) -> None:
        """Move every agent along its sequence for ``horizon`` seconds (an infinite horizon:
        until the next arrival), visiting what it reaches. Agents move together, so the time
        left is the same for all."""
        start = self.now
        while True:
            self.prune(seqs)
            left = horizon - (self.now - start)
            moving = [a for a, s in enumerate(seqs) if s]
            if not moving or left <= EPS:
                break
            eta = {a: self.dist(a, seqs[a][0]) / self.speed for a in moving}
            step = min(min(eta.values()), left)
            for a in moving:
                target = seqs[a][0]
                if eta[a] <= step + EPS:
                    self.travelled[a] += eta[a] * self.speed
                    self.pos[a] = self.xyz[target]
                else:
                    self.travelled[a] += step * self.speed
                    self.pos[a] = self.pos[a] + (step / eta[a]) * (self.xyz[target] - self.pos[a])
            self.now += step
            for a in moving:  # in agent order: the lower id visits a location reached together
                target = seqs[a][0]
                if eta[a] <= step + EPS and not self.visited[target]:
                    self.visited[target] = True
                    self.visits[a].append((target, self.now))
                    self.news[a].append(target)
            if math.isinf(horizon):
                self.prune(seqs)
                return
        if not math.isinf(horizon):
            self.now = start + horizon

    def plans(self) -> list[Plan]:
        return [Plan(a, [j for j, _ in v], [t for _, t in v]) for a, v in enumerate(self.visits)]


def remaining_instance(inst: Instance, fleet: Fleet) -> Instance:
    """The problem left: unvisited tasks that have appeared, agents where they are now, the
    distance each has driven as its available time, and the execution speed. Agents that
    failed, or that served their task limit, are kept (ids stay) but can take no task."""
    remaining = ~fleet.visited & fleet.released
    keep = np.flatnonzero(remaining)
    index = -np.ones(inst.n_tasks, dtype=np.int64)
    index[keep] = np.arange(len(keep))
    agents = dict(inst.agents)
    agents.update(
        {
            "x": fleet.pos[:, 0].copy(),
            "y": fleet.pos[:, 1].copy(),
            "z": fleet.pos[:, 2].copy(),
            "speed": np.full(inst.n_agents, fleet.speed),
            "avail_start": fleet.travelled / fleet.speed,
            "avail_end": np.full(inst.n_agents, np.inf),
        }
    )
    prec = None
    if inst.precedence is not None:
        ok = remaining[inst.precedence].all(axis=1)
        prec = index[inst.precedence[ok]] if ok.any() else None
    agent_caps, task_caps = (
        inst.agent_caps,
        None if inst.task_caps is None else inst.task_caps[keep],
    )
    # an agent with a task limit counts what it served; one that has served its limit can
    # take no more: a capability it lacks and every task needs keeps it out
    limit = inst.agents["max_tasks"]
    served = np.array([len(v) for v in fleet.visits])
    bounded = limit > 0
    if bounded.any():
        spent = bounded & (served >= limit)
        agents["max_tasks"] = np.where(bounded, np.maximum(limit - served, 1), limit)
    else:
        spent = np.zeros(inst.n_agents, dtype=bool)
    spent = spent | fleet.failed  # a failed agent takes no task either
    if spent.any():
        n = len(keep)
        has = (~spent).astype(float)[:, None]
        agent_caps = has if agent_caps is None else np.hstack([agent_caps, has])
        task_caps = (
            np.ones((n, 1)) if task_caps is None else np.hstack([task_caps, np.ones((n, 1))])
        )
    return dataclasses.replace(
        inst,
        name=f"{inst.name}@{fleet.now:.3f}s",
        agents=agents,
        tasks={k: v[keep] for k, v in inst.tasks.items()},
        agent_caps=agent_caps,
        task_caps=task_caps,
        precedence=prec,
    )


def at_speed(inst: Instance, speed: float) -> Instance:
    """The instance with every agent moving at the execution's ``speed``: the physics an
    executed mission ran in, so its plans (visit times included) are judged in it."""
    agents = {**inst.agents, "speed": np.full(inst.n_agents, float(speed))}
    return dataclasses.replace(inst, agents=agents)


#: objectives whose value does not depend on how fast agents move (distance, payoff)
SPEED_NEUTRAL = ("min_sum", "max_payoff")


def evaluate_executed(
    inst: Instance,
    plans: list[Plan],
    settings: ExecSettings,
    optimum: float | None,
    market: str | None = None,
) -> dict[str, Any]:
    """Evaluate an executed mission's plans at the execution speed. The optimum was solved at
    the instance's own speeds, so the gap is given only where the objective does not depend
    on speed, or the speeds are the same; ``m_exec_gap`` (on distances) is always given."""
    from harness.evaluate import evaluate

    same = bool(np.all(inst.agents["speed"] == settings.speed))
    judged = inst if same else at_speed(inst, settings.speed)
    comparable = same or inst.objective in SPEED_NEUTRAL
    return evaluate(judged, plans, optimum if comparable else None, market)


Episode = Callable[[Instance, int], RunResult]


def execute(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    settings: ExecSettings,
    episode: Episode,
    deadline: float | None = None,
    team_factory: Callable[[], OnlineTeam] | None = None,
) -> ExecResult:
    """Run one executed mission. ``episode(instance, seed)`` runs the allocator to
    convergence on a problem (the local or the Ray runtime); it serves the restart mode.
    ``team_factory()`` makes the agents of an online mission (by default a
    :class:`LocalTeam`: in this process)."""
    mode = settings.mode
    if mode == "auto":
        mode = "online" if cls.online else "restart"
    if mode == "online" and not cls.online:
        raise SpecError("spec", "execution.mode", f"restart ({cls.name} does not run online)", mode)
    if mode == "online":
        return _execute_online(inst, cls, params, seed, settings, deadline, team_factory)
    return _execute_restart(inst, seed, settings, episode, deadline)


def _execute_restart(
    inst: Instance, seed: int, settings: ExecSettings, episode: Episode, deadline: float | None
) -> ExecResult:
    fleet = Fleet(inst, settings.speed)
    stats = MessageStats()
    measures: list[dict[str, float]] = []
    rounds = replans = 0
    wall = cpu = 0.0
    message = ""
    nodes: list[str] | None = None
    calls: int | None = None
    checkpoints, reached = settings.checkpoints, 0
    interval = next_cp = math.inf
    dynamic = Dynamics(inst, settings, seed)
    dynamic.hide(fleet)
    while not fleet.done:
        if deadline is not None and time.monotonic() > deadline:
            raise TrialTimeout(f"time limit reached at {fleet.now:.2f} s of the mission")
        remaining = ~fleet.visited & fleet.released
        if not remaining.any():  # everything known is done: wait for what comes next
            if not dynamic.pending:
                break
            fleet.now = max(fleet.now, dynamic.pending[0][0])
            dynamic.apply_due(fleet)
            continue
        sub = remaining_instance(inst, fleet)
        w0, c0 = time.perf_counter(), time.process_time()
        res = episode(sub, _episode_seed(seed, replans))
        w = time.perf_counter() - w0
        wall += w
        cpu += time.process_time() - c0
        replans += 1
        rounds += res.rounds
        stats.merge(res.stats)
        measures.append(res.measures)
        nodes = res.nodes or nodes
        if res.calls is not None:
            calls = (calls or 0) + res.calls
        dynamic.replanned(w, res.stats.summary()["messages"])
        ids = np.flatnonzero(remaining)
        seqs = [[int(ids[j]) for j in p.tasks] for p in sorted(res.plans, key=lambda p: p.agent)]
        fleet.prune(seqs)
        if not any(seqs):
            message = f"the allocator assigned none of the {int(remaining.sum())} locations left"
            break
        had = [bool(s) for s in seqs]
        if replans == 1:  # the first plan's time to finish sets checkpoints and events
            horizon = _time_to_finish(fleet, seqs)
            if checkpoints:
                interval = horizon / (checkpoints + 1)
                next_cp = fleet.now + interval
            dynamic.schedule(fleet.now, horizon)
        # travel until an agent that had a sequence has none left (or the mission is over),
        # or until the next checkpoint (the team measures again) or event (a task appears,
        # an agent fails), where the team re-plans
        while not fleet.done and not any(h and not s for h, s in zip(had, seqs, strict=True)):
            stop = min(next_cp if reached < checkpoints else math.inf, dynamic.next_time())
            if fleet.now + EPS < stop < math.inf:
                fleet.advance(seqs, stop - fleet.now)
                if fleet.now + EPS >= stop:
                    if reached < checkpoints and fleet.now + EPS >= next_cp:
                        reached += 1
                        next_cp += interval
                    dynamic.apply_due(fleet)
                    break
            else:
                fleet.advance(seqs, math.inf)
    out = _result(fleet, replans, rounds, stats, wall, cpu, measures, [], message, nodes, calls)
    if checkpoints:
        out.checkpoints = reached
    if dynamic.active:
        out.events = dynamic.log
        out.late_covered = dynamic.late_coverage(fleet)
    return out


class Dynamics:
    """A dynamic mission (restart mode): ``late_tasks`` of the tasks are hidden until a
    moment of the mission, and ``fail_agents`` agents fail at one; each is an event after
    which the team re-plans. Which tasks and agents, and when (uniformly within the middle
    80% of the first plan's time to finish), comes from the trial seed. The log keeps each
    event with the wall time and the messages of the re-plan it caused."""

    def __init__(self, inst: Instance, settings: ExecSettings, seed: int) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0x6476,)))
        n, m = inst.n_tasks, inst.n_agents
        # one task at least is known at the start, one agent at least never fails
        k = min(max(round(settings.late_tasks * n), 1), n - 1) if settings.late_tasks > 0 else 0
        f = min(settings.fail_agents, m - 1)
        self.late = np.sort(self.rng.choice(n, size=k, replace=False)) if k else np.zeros(0, int)
        self.failing = np.sort(self.rng.choice(m, size=f, replace=False)) if f else np.zeros(0, int)
        self.active = len(self.late) > 0 or len(self.failing) > 0
        self.pending: list[tuple[float, str, int]] = []
        self.log: list[tuple[float, str, list[int], float, int]] = []
        self.trigger: tuple[float, str, list[int]] | None = None

    def hide(self, fleet: Fleet) -> None:
        if len(self.late):
            fleet.released[self.late] = False

    def schedule(self, now: float, horizon: float) -> None:
        span = max(horizon, EPS)
        times = now + span * self.rng.uniform(0.1, 0.9, size=len(self.late) + len(self.failing))
        events = [(float(t), "task", int(j)) for t, j in zip(times, self.late, strict=False)]
        events += [
            (float(t), "fail", int(a))
            for t, a in zip(times[len(self.late) :], self.failing, strict=True)
        ]
        self.pending = sorted(events)

    def next_time(self) -> float:
        return self.pending[0][0] if self.pending else math.inf

    def apply_due(self, fleet: Fleet) -> None:
        """Apply every event due by now (tasks appear, agents fail); the next re-plan is
        logged against them."""
        due = [e for e in self.pending if e[0] <= fleet.now + EPS]
        if not due:
            return
        self.pending = self.pending[len(due) :]
        for _t, kind, x in due:
            if kind == "task":
                fleet.released[x] = True
            else:
                fleet.failed[x] = True
        kinds = sorted({k for _t, k, _x in due})
        self.trigger = (fleet.now, "+".join(kinds), [x for _t, _k, x in due])

    def replanned(self, wall: float, messages: int) -> None:
        if self.trigger is not None:
            self.log.append((*self.trigger, wall, messages))
            self.trigger = None

    def late_coverage(self, fleet: Fleet) -> float | None:
        return float(fleet.visited[self.late].mean()) if len(self.late) else None


def _time_to_finish(fleet: Fleet, seqs: list[list[int]]) -> float:
    """Seconds until the last agent would finish its sequence, at the fleet's speed."""
    longest = 0.0
    for a, seq in enumerate(seqs):
        at, d = fleet.pos[a], 0.0
        for j in seq:
            d += length(fleet.xyz[j] - at)
            at = fleet.xyz[j]
        longest = max(longest, d)
    return longest / fleet.speed


class OnlineHosts:
    """The agents of one host in an online mission, and the one mechanism that runs them:
    each period the host hands its agents the messages delivered for them (counted here, as
    they are delivered), lets each observe the team's status and run its round, and routes
    what they send, to its own agents for the next round or, one packet per host, to the other
    hosts (``directory``: agent -> host index; this host is ``index``). :class:`LocalTeam` is
    one host holding every agent; on Ray each host actor holds one (``actors.online``). An
    agent's inbox is ordered by sender, then in sending order. ``put`` may run in another
    thread than ``step`` (a Ray host receives while it sends)."""

    def __init__(
        self, agents: list[Allocator], n_agents: int, directory: list[int], index: int
    ) -> None:
        import threading

        self.agents = sorted(agents, key=lambda a: a.id)
        self.n, self.directory, self.index = n_agents, directory, index
        self.inbox: dict[int, dict[int, list[Outgoing]]] = {}  # round -> agent -> (sender, msg)
        self.lock = threading.Lock()
        self.stats = MessageStats()
        self.wall = self.cpu = 0.0  # the agents' own computing

    def put(self, rnd: int, packet: list[tuple[int, int, Message]]) -> None:
        """Messages ``(receiver, sender, message)`` to deliver in round ``rnd``."""
        with self.lock:
            box = self.inbox.setdefault(rnd, {})
            for dst, src, msg in packet:
                box.setdefault(dst, []).append((src, msg))

    def start(self) -> dict[int, list[tuple[int, int, Message]]]:
        """Round 0: the agents' first messages; returns the packets for other hosts."""
        w0, c0 = time.perf_counter(), time.process_time()
        outs = [(a.id, check_outgoing(a, a.start(), self.n)) for a in self.agents]
        self.wall += time.perf_counter() - w0
        self.cpu += time.process_time() - c0
        return self._route(1, outs)

    def step(
        self, rnd: int, now: float, pos: Any, travelled: Any, visited: Any, sample: bool
    ) -> tuple[dict[int, list[tuple[int, int, Message]]], dict[str, Any]]:
        """Deliver round ``rnd``'s messages, let every agent observe the status and run round
        ``rnd``; the packets for other hosts, and each agent's sequence, the messages delivered
        and, if ``sample``, each agent's progress estimate."""
        with self.lock:
            box = self.inbox.pop(rnd, {})
        cache: SizeCache = {}
        inboxes = {}
        for a in self.agents:
            items = sorted(box.get(a.id, ()), key=lambda item: item[0])  # stable
            for src, msg in items:
                self.stats.record(src, a.id, type(msg).__name__, sized(msg, cache))
            inboxes[a.id] = items
        w0, c0 = time.perf_counter(), time.process_time()
        for a in self.agents:
            a.observe(now, pos.copy(), travelled.copy(), visited.copy())
        outs = [(a.id, check_outgoing(a, a.step(rnd, inboxes[a.id]), self.n)) for a in self.agents]
        seqs = {a.id: list(a.plan().tasks) for a in self.agents}
        self.wall += time.perf_counter() - w0
        self.cpu += time.process_time() - c0
        progress = {a.id: a.progress() for a in self.agents} if sample else {}
        delivered = sum(map(len, inboxes.values()))
        return self._route(rnd + 1, outs), {
            "seqs": seqs,
            "progress": progress,
            "delivered": delivered,
        }

    def _route(
        self, rnd: int, outs: list[tuple[int, list[Outgoing]]]
    ) -> dict[int, list[tuple[int, int, Message]]]:
        local: list[tuple[int, int, Message]] = []
        remote: dict[int, list[tuple[int, int, Message]]] = {}
        directory, index = self.directory, self.index
        for src, out in outs:
            for dst, msg in out:
                where = directory[dst]
                (local if where == index else remote.setdefault(where, [])).append((dst, src, msg))
        self.put(rnd, local)
        return remote


class OnlineTeam(Protocol):
    """The agents of an online mission, wherever they run (:class:`LocalTeam` in this process,
    ``actors.online.RayTeam`` in Ray host actors), each host an :class:`OnlineHosts`. A message
    sent in round r is delivered in round r + 1 (``start`` is round 0), counted when it is
    delivered."""

    wall: float
    cpu: float

    def start(self) -> None: ...

    def step(
        self, rnd: int, fleet: Fleet, sample: bool
    ) -> tuple[list[list[int]], int, list[float | None]]:
        """Deliver round ``rnd``'s messages, let every agent observe the team's status and
        run round ``rnd``; each agent's current sequence, the number of messages delivered and,
        if ``sample``, the agents' progress estimates (else none)."""
        ...

    def finish(self, stats: MessageStats) -> list[dict[str, float]]:
        """The mission is over: the agents' measurements; the counts the hosts kept are added
        to ``stats``."""
        ...


class LocalTeam:
    """An online mission's agents in this process: one :class:`OnlineHosts` holding them all;
    ``wall`` and ``cpu`` are the agents' own computing."""

    def __init__(
        self, inst: Instance, cls: type[Allocator], params: dict[str, Any], seed: int
    ) -> None:
        n = inst.n_agents
        self.host = OnlineHosts(make_agents(inst, cls, params, seed), n, [0] * n, 0)
        self.nodes: list[str] | None = None
        self.calls: int | None = None

    @property
    def wall(self) -> float:
        return self.host.wall

    @property
    def cpu(self) -> float:
        return self.host.cpu

    def start(self) -> None:
        self.host.start()

    def step(
        self, rnd: int, fleet: Fleet, sample: bool
    ) -> tuple[list[list[int]], int, list[float | None]]:
        _, out = self.host.step(rnd, fleet.now, fleet.pos, fleet.travelled, fleet.visited, sample)
        seqs, progress = out["seqs"], out["progress"]
        return [seqs[a] for a in sorted(seqs)], out["delivered"], list(progress.values())

    def finish(self, stats: MessageStats) -> list[dict[str, float]]:
        stats.merge(self.host.stats)
        return [a.measurements() for a in self.host.agents]


def count_status(fleet: Fleet, stats: MessageStats) -> None:
    """The execution threads' status broadcast of one period, every agent to every other,
    counted as ``Status`` messages (the runtime hands the status to the agents itself)."""
    m = len(fleet.pos)
    cache: SizeCache = {}
    for src in range(m):
        p = fleet.pos[src]
        status = Status(
            float(p[0]),
            float(p[1]),
            float(p[2]),
            float(fleet.travelled[src]),
            tuple(fleet.news[src]),
        )
        fleet.news[src] = []
        size = sized(status, cache)
        for dst in range(m):
            if dst != src:
                stats.record(src, dst, "Status", size)


def _execute_online(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    settings: ExecSettings,
    deadline: float | None,
    team_factory: Callable[[], OnlineTeam] | None = None,
) -> ExecResult:
    fleet = Fleet(inst, settings.speed)
    team = LocalTeam(inst, cls, params, seed) if team_factory is None else team_factory()
    stats = MessageStats()
    trace: list[tuple[float, float]] = []
    next_sample = 0.0
    team.start()
    rnd = 0
    message = ""
    while not fleet.done:
        if deadline is not None and time.monotonic() > deadline:
            raise TrialTimeout(f"time limit reached at {fleet.now:.2f} s of the mission")
        rnd += 1
        sample = fleet.now + EPS >= next_sample
        seqs, delivered, progress = team.step(rnd, fleet, sample)
        stats.per_round.append(delivered)
        count_status(fleet, stats)
        if sample:
            estimates = [e for e in progress if e is not None]
            if estimates:
                trace.append((fleet.now, float(min(estimates))))
            next_sample += settings.trace_every
        fleet.prune(seqs)
        if not any(seqs):
            message = f"no agent has a location to visit at {fleet.now:.2f} s"
            break
        fleet.advance(seqs, settings.period)
    measures = team.finish(stats)  # first: a team on Ray adds its hosts' counts and CPU time
    return _result(
        fleet,
        rnd,
        rnd,
        stats,
        team.wall,
        team.cpu,
        measures,
        trace,
        message,
        getattr(team, "nodes", None),
        getattr(team, "calls", None),
    )


def _episode_seed(seed: int, k: int) -> int:
    """The seed of re-plan ``k`` of a trial: derived from the trial seed only."""
    ss = np.random.SeedSequence(entropy=seed, spawn_key=(0x6578, k))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _result(
    fleet: Fleet,
    replans: int,
    rounds: int,
    stats: MessageStats,
    wall: float,
    cpu: float,
    measures: list[dict[str, float]],
    trace: list[tuple[float, float]],
    message: str,
    nodes: list[str] | None = None,
    calls: int | None = None,
) -> ExecResult:
    last = [v[-1][1] for v in fleet.visits if v]
    if fleet.done and fleet.ends is not None:  # agents with an end point drive back to it
        back = np.where(
            np.isnan(fleet.ends[:, 0]), 0.0, np.linalg.norm(fleet.ends - fleet.pos, axis=1)
        )
        fleet.travelled += np.nan_to_num(back)
        fleet.pos = np.where(np.isnan(fleet.ends), fleet.pos, fleet.ends)
    return ExecResult(
        plans=fleet.plans(),
        makespan=max(last, default=0.0),
        distance=float(fleet.travelled.sum()),
        per_agent=[float(d) for d in fleet.travelled],
        replans=replans,
        complete=fleet.done,
        rounds=rounds,
        stats=stats,
        alloc_wall_s=wall,
        alloc_cpu_s=cpu,
        measures=merge_measures(measures),
        trace=trace,
        message=message,
        nodes=nodes,
        calls=calls,
    )
