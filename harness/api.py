"""The allocator API (DESIGN §4): what an algorithm author writes against.

An allocator is a class instantiated once per agent. It sees only its :class:`LocalView` (its
own row, the public task table, its neighbours' ids) and learns everything else from messages.
It never imports Ray and never reads the clock: the same code runs on every runtime.

Synchronous allocators implement :meth:`Allocator.step`; the runtime calls ``start()`` once
(round 0), then ``step(r, inbox)`` for rounds 1, 2, ... with the messages sent to the agent in
round r-1, sorted by sender id (then send order). An agent that is ``converged`` and has an empty
inbox is not stepped. The trial ends when every agent is converged and, unless the allocator's
``termination`` is ``"stable"``, no message is in flight.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from operator import itemgetter
from typing import Any, ClassVar

import numpy as np

from harness.params import Param, resolve


@dataclass(frozen=True)
class Message:
    """Base class of messages. Subclasses are small frozen dataclasses; the runtime counts each
    delivered message and its pickled size, by type and by (sender, receiver) pair."""


Outgoing = tuple[int, Message]  # (receiver id, message)


class Inbox(list):
    """One agent's ``(sender, message)`` items of a round, as a runtime delivers them: a list,
    which may carry the :class:`RoundBatch` of every agent served in the same process that round.
    Allocators read it as a list; :func:`columns` uses the batch."""

    __slots__ = ("batch",)

    def __init__(self, items: Any = (), batch: RoundBatch | None = None) -> None:
        super().__init__(items)
        self.batch = batch


class RoundBatch:
    """The messages a runtime delivers in one round to the agents it serves in one process, as
    columns: a field of a message type is stacked once for all of them (one row per distinct
    message object), not once per receiver. A broadcast to a hundred agents is then one row,
    read by each receiver through its row indices. Messages join as receivers ask for them
    (agents of one host may step at different moments); matrices only grow, so rows handed out
    stay valid. Read-only for agents."""

    def __init__(self) -> None:
        self._index: dict[type, dict[int, int]] = {}
        self._objects: dict[type, list[Message]] = {}  # kept alive, so ids stay unique
        self._stacked: dict[tuple[type, str], np.ndarray] = {}
        self._mixed: dict[tuple[type, tuple[str, ...]], tuple[int, np.ndarray, list]] = {}

    def rows(self, kind: type, items: list[Outgoing]) -> np.ndarray:
        """The row of each item's message among this round's messages of type ``kind``."""
        index = self._index.setdefault(kind, {})
        ids = list(map(id, map(itemgetter(1), items)))
        try:  # every message already seen: one C-level pass
            return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))
        except KeyError:
            pass
        objects = self._objects.setdefault(kind, [])
        for key, (_, msg) in zip(ids, items, strict=True):
            if key not in index:
                index[key] = len(objects)
                objects.append(msg)
        return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))

    def column(self, kind: type, name: str) -> np.ndarray:
        """Field ``name`` of the messages of type ``kind`` seen so far, one row each."""
        objects = self._objects.get(kind, [])
        if not objects:
            return np.empty(0)
        key = (kind, name)
        have = self._stacked.get(key)
        done = 0 if have is None else len(have)
        if done < len(objects):
            fresh = np.stack([getattr(m, name) for m in objects[done:]])
            have = fresh if have is None else np.concatenate([have, fresh])
            self._stacked[key] = _readonly(have)
        return self._stacked[key]

    def mixed(self, kind: type, *names: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """The columns on which the messages of type ``kind`` seen so far do not all hold the
        same bits in every field ``names``, and those columns of each field as a contiguous
        matrix (one row per message, as in :meth:`column`). On the other columns any one row
        stands for all. Recomputed when messages join."""
        rows = len(self._objects.get(kind, ()))
        key = (kind, names)
        have = self._mixed.get(key)
        if have is None or have[0] != rows:
            mats = [self.column(kind, name) for name in names]
            same = np.ones(mats[0].shape[1] if rows else 0, dtype=bool)
            for m in mats:
                bits = m.view(np.int64) if m.dtype.itemsize == 8 else m
                same &= (bits == bits[0]).all(axis=0)
            cols = np.flatnonzero(~same)
            subs = [_readonly(np.ascontiguousarray(m[:, cols])) for m in mats]
            have = self._mixed[key] = (rows, _readonly(cols), subs)
        return have[1], have[2]


def round_batch(inbox: list[Outgoing]) -> RoundBatch:
    """The :class:`RoundBatch` of ``inbox``'s round: the one the runtime shares among the
    agents it serves in one process, or, for an inbox given without one (a test that calls
    ``step`` itself), a batch of this inbox alone. Either way ``rows``, ``column`` and
    ``mixed`` read the same messages; only the sharing differs."""
    batch = getattr(inbox, "batch", None)
    return batch if batch is not None else RoundBatch()


class PublicTasks:
    """The public task table every agent may read, with distances computed once and shared by
    all agents of one process (read-only arrays)."""

    def __init__(
        self, columns: dict[str, np.ndarray], caps: np.ndarray | None, distance: str
    ) -> None:
        self.columns = {k: _readonly(v) for k, v in columns.items()}
        self.caps = None if caps is None else _readonly(caps)
        self.distance = distance
        self.n = len(columns["x"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @cached_property
    def xyz(self) -> np.ndarray:
        return _readonly(np.stack([self["x"], self["y"], self["z"]], axis=1))

    @cached_property
    def exit_xyz(self) -> np.ndarray:
        """Where each task is left from (its exit point, else its location)."""
        ex = np.stack([self["exit_x"], self["exit_y"], self["exit_z"]], axis=1)
        return _readonly(np.where(np.isnan(ex), self.xyz, ex))

    @cached_property
    def between(self) -> np.ndarray:
        """Task-to-task distances, from the exit of the row task to the column task."""
        from harness.geometry import pairwise

        return _readonly(pairwise(self.exit_xyz, self.xyz, self.distance))

    @cached_property
    def into(self) -> np.ndarray:
        """``between`` transposed, C-contiguous: row ``b`` holds the distance from every task
        to task ``b``, for code that reads a column of ``between`` many times. The same array
        when ``between`` is symmetric (no service exits)."""
        d = self.between
        return d if np.array_equal(d, d.T) else _readonly(np.ascontiguousarray(d.T))

    def from_point(self, point: np.ndarray) -> np.ndarray:
        """Distance from a point to every task."""
        from harness.geometry import pairwise

        p = np.asarray(point, dtype=np.float64).reshape(1, 3)
        return pairwise(p, self.xyz, self.distance)[0]

    def to_point(self, point: np.ndarray) -> np.ndarray:
        """Distance from every task's exit to a point."""
        from harness.geometry import pairwise

        p = np.asarray(point, dtype=np.float64).reshape(1, 3)
        return pairwise(self.exit_xyz, p, self.distance)[:, 0]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class LocalView:
    """What one agent knows at the start: itself, the public tasks, who its neighbours are."""

    agent_id: int
    n_agents: int
    neighbours: tuple[int, ...]
    diameter: int  # hops; agents may assume they know it (as in the CBAA/CBBA analyses)
    family: str
    objective: str
    agent: dict[str, float]  # own row of the agents table
    agent_caps: np.ndarray | None
    tasks: PublicTasks
    #: public facts of the instance every agent knows (``inst.meta["public"]``), such as
    #: the task-attribute weights of the heterogeneous family
    public: dict[str, Any] = field(default_factory=dict)
    #: precedence pairs (task a starts before task b), public like the task table
    precedence: np.ndarray | None = None

    @cached_property
    def neighbour_set(self) -> frozenset[int]:
        return frozenset(self.neighbours)

    @property
    def position(self) -> np.ndarray:
        return np.array([self.agent["x"], self.agent["y"], self.agent["z"]])

    @property
    def end(self) -> np.ndarray | None:
        if math.isnan(self.agent["end_x"]):
            return None
        return np.array([self.agent["end_x"], self.agent["end_y"], self.agent["end_z"]])

    @property
    def bundle_limit(self) -> int:
        limit = int(self.agent["max_tasks"])
        return limit if limit > 0 else self.tasks.n

    def capable(self) -> np.ndarray:
        """Boolean mask of tasks this agent's capabilities allow."""
        if self.agent_caps is None or self.tasks.caps is None:
            return np.ones(self.tasks.n, dtype=bool)
        return (self.agent_caps[None, :] >= self.tasks.caps).all(axis=1)


@dataclass
class Plan:
    """An agent's result: its tasks in execution order, with start times and bids if any."""

    agent: int
    tasks: list[int] = field(default_factory=list)
    times: list[float] | None = None
    bids: list[float] | None = None
    #: market mechanisms: the transaction price of each task (who pays whom is the
    #: allocator's ``market`` side, see docs/markets.md)
    prices: list[float] | None = None
    #: protocol facts an allocator reports about itself (e.g. ``auction_rounds``); numbers only
    extra: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "agent": self.agent,
            "tasks": self.tasks,
            "times": self.times,
            "bids": self.bids,
        }
        if self.prices is not None:
            d["prices"] = self.prices
        if self.extra is not None:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        return cls(
            d["agent"], d["tasks"], d.get("times"), d.get("bids"), d.get("prices"), d.get("extra")
        )


class ProtocolError(Exception):
    """An allocator broke the runtime contract (wrong delivery mode, bad receiver or message)."""


class Allocator(ABC):
    """Per-agent logic of an allocation algorithm. Subclass it in a module of ``allocators/``.

    Class attributes are the algorithm's metadata; the registry reads them.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    families: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[tuple[Param, ...]] = ()
    synchronous: ClassVar[bool] = True
    #: centralised baselines may message any agent (a star through a leader), not just neighbours
    centralised: ClassVar[bool] = False
    #: "quiescence": the trial ends when every agent is converged and no message is in flight;
    #: "stable": when every agent is converged, even if agents still exchange messages (for
    #: algorithms that, like synchronous CBBA, talk every round and judge convergence locally)
    termination: ClassVar[str] = "quiescence"
    #: market mechanisms: "forward" (agents buy the right to do tasks: an agent pays the price
    #: of each task it wins) or "reverse" (task holders buy service: an agent is paid the
    #: price); None for allocators without payments. The evaluator's economic metrics read it.
    market: ClassVar[str | None] = None
    #: runs while agents travel (harness/execution.py, online mode): the runtime calls
    #: ``observe`` before each round and follows ``plan()`` between rounds
    online: ClassVar[bool] = False

    def __init__(self, view: LocalView, params: dict[str, Any], rng: np.random.Generator) -> None:
        self.view = view
        self.id = view.agent_id
        self.p = params
        self.rng = rng

    # -- the protocol ----------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        """Round 0: the first messages."""
        return []

    def step(self, rnd: int, inbox: list[Outgoing]) -> list[Outgoing]:
        """Synchronous round ``rnd``: handle ``inbox`` (sender, message) and answer."""
        raise ProtocolError(
            f"{type(self).__name__} is asynchronous: the runtime must call receive(), not step()"
        )

    def receive(self, sender: int, message: Message) -> list[Outgoing]:
        """Asynchronous delivery of one message (for allocators with ``synchronous = False``)."""
        raise ProtocolError(
            f"{type(self).__name__} is synchronous: the runtime must call step(), not receive()"
        )

    @property
    def converged(self) -> bool:
        """True when the agent will do nothing more unless a message arrives."""
        return True

    @abstractmethod
    def plan(self) -> Plan:
        """This agent's tasks in execution order, with start times and bids if any."""

    def measurements(self) -> dict[str, float]:
        """Wall-clock figures the agent took of its own work (e.g. winner-determination time).
        They never steer the algorithm and are not part of the plan; the runtime sums them
        over agents (keys ending in ``_max``: the largest) into ``trial_<key>`` columns."""
        return {}

    def observe(
        self, now: float, positions: np.ndarray, travelled: np.ndarray, visited: np.ndarray
    ) -> None:
        """Online execution: the team's status this period (every agent's position and distance
        driven, the locations visited so far), as the agents' status broadcasts tell it."""
        return None  # allocators that do not run online ignore it

    def progress(self) -> float | None:
        """Online execution: the agent's current estimate of the whole mission's cost (for
        convergence traces), or None."""
        return None

    # -- helpers ---------------------------------------------------------------------------
    def broadcast(self, message: Message) -> list[Outgoing]:
        return list(zip(self.view.neighbours, repeat(message)))

    @classmethod
    def skip_reason(cls, inst: Any, params: dict[str, Any]) -> str | None:
        """Why this allocator does not run ``inst`` (a stated limit), or None. The harness asks
        before the trial and stores a ``skip`` row with the reason."""
        return None

    @classmethod
    def resolve_params(
        cls, given: dict[str, Any], source: str = "command line", where: str = "params"
    ) -> dict[str, Any]:
        """Fill defaults, validate values, reject unknown names."""
        return resolve(cls.params, given, source, where, f"parameters of {cls.name}")


def agent_rng(seed: int, agent_id: int) -> np.random.Generator:
    """Each agent's generator, derived from the trial seed and its id only."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(agent_id,)))


def local_views(inst: Any, only: list[int] | None = None) -> list[LocalView]:
    """The local view of every agent of an instance (or of the agents in ``only``), sharing
    one public task table; where the instance carries a ``belief`` (harness/uncertainty.py),
    each agent gets a table of its own, with the task positions it measured."""
    tasks = PublicTasks(inst.tasks, inst.task_caps, inst.distance_kind)
    belief = getattr(inst, "belief", None)
    public = inst.meta.get("public", {})
    if belief is not None:  # the noise model is public, as the CAGA paper's agents are told it
        public = {**public, "uncertainty": belief.model.to_dict()}
    neigh = inst.comm.neighbours(inst.n_agents)
    diameter = max(1, inst.comm.diameter(inst.n_agents))
    views = []
    for i in range(inst.n_agents) if only is None else only:
        row = {k: (float(v[i]) if k != "max_tasks" else int(v[i])) for k, v in inst.agents.items()}
        caps = None if inst.agent_caps is None else _readonly(inst.agent_caps[i].copy())
        own = tasks if belief is None else believed_tasks(inst, belief, i, row)
        views.append(
            LocalView(
                i,
                inst.n_agents,
                neigh[i],
                diameter,
                inst.family,
                inst.objective,
                row,
                caps,
                own,
                public,
                inst.precedence,
            )
        )
    return views


def believed_tasks(inst: Any, belief: Any, agent: int, row: dict[str, float]) -> PublicTasks:
    """The public task table as agent ``agent`` measured it from where it stands: positions
    (and service exits, moved with their task) as ``belief`` draws them."""
    true_xyz = np.stack([inst.tasks["x"], inst.tasks["y"], inst.tasks["z"]], axis=1)
    at = np.array([row["x"], row["y"], row["z"]])
    seen = belief.believed_xyz(true_xyz, agent, at)
    cols = dict(inst.tasks)
    for k, axis in enumerate("xyz"):
        cols[axis] = seen[:, k]
        cols[f"exit_{axis}"] = inst.tasks[f"exit_{axis}"] + (seen[:, k] - true_xyz[:, k])
    return PublicTasks(cols, inst.task_caps, inst.distance_kind)


def merge_measures(parts: list[dict[str, float]]) -> dict[str, float]:
    """Agents' measurements, summed (``*_max`` keys: the largest)."""
    out: dict[str, float] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = max(out.get(k, v), v) if k.endswith("_max") else out.get(k, 0.0) + v
    return out
