"""The problem model (DESIGN §3): an instance is plain column data plus a little metadata.

Agents and tasks are column tables (``dict[str, numpy.ndarray]``) with a fixed schema, so the
same instance is a NumPy structure in memory, an Arrow/Parquet table on disk and a JSON
document for small cases. Ids are positions: agent ``i`` is row ``i``, task ``j`` is row ``j``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import InstanceError

FORMAT_VERSION = 1

#: Objectives the evaluator knows, and whether larger is better.
OBJECTIVES: dict[str, str] = {
    "max_payoff": "max",  # sum of agent-task payoffs (single assignment)
    "max_tdr": "max",  # total time-discounted reward (CBBA paper)
    "min_sum": "min",  # total travel distance
    "min_max": "min",  # makespan: latest route completion time
    "max_welfare": "max",  # market welfare: value of served tasks minus the agents' costs
}

INF = math.inf
NAN = math.nan

#: column -> (dtype, default). A default of None means the column is required.
AGENT_COLUMNS: dict[str, tuple[type, Any]] = {
    "x": (float, None),
    "y": (float, None),
    "z": (float, 0.0),
    "end_x": (float, NAN),  # NaN: the route ends at its last task (open path)
    "end_y": (float, NAN),
    "end_z": (float, NAN),
    "speed": (float, 1.0),
    "capacity": (float, INF),
    "max_tasks": (int, 0),  # bundle limit L; 0 = no limit
    "avail_start": (float, 0.0),
    "avail_end": (float, INF),
    "cost_per_distance": (float, 1.0),
    "fixed_cost": (float, 0.0),  # market economics: cost of serving any one task
}
TASK_COLUMNS: dict[str, tuple[type, Any]] = {
    "x": (float, None),
    "y": (float, None),
    "z": (float, 0.0),
    "tw_start": (float, 0.0),  # service may start from ...
    "tw_end": (float, INF),  # ... until (latest start)
    "duration": (float, 0.0),
    "value": (float, 1.0),
    "discount": (float, 0.0),  # lambda of value * exp(-lambda * (start - tw_start))
    "demand": (float, 0.0),
    "team": (int, 1),  # how many agents the task takes (markets with team tasks); 1 = one
    # a task that leaves from elsewhere than where it starts (a transport: pickup ... return)
    "exit_x": (float, NAN),  # NaN: the task ends where it starts
    "exit_y": (float, NAN),
    "exit_z": (float, NAN),
    "service_distance": (float, 0.0),  # distance driven inside the task (counted as travel)
}
#: columns added after format version 1, hashed only when not all at their default, so that
#: earlier instances keep their hashes
_HASH_IF_SET = {
    "fixed_cost": 0.0,
    "team": 1,
    "exit_x": NAN,
    "exit_y": NAN,
    "exit_z": NAN,
    "service_distance": 0.0,
}
#: columns allowed to hold +inf (everything else must be finite, or NaN where the default is NaN)
_MAY_BE_INF = {"capacity", "avail_end", "tw_end"}

COMM_KINDS = ("full", "ring", "line", "star", "grid", "rgg", "edges")
DISTANCES = ("euclidean", "euc_2d")  # euc_2d: TSPLIB's nearest-integer rounding


@dataclass
class CommGraph:
    """Undirected communication graph between agents: ``kind``, its parameters and edges."""

    kind: str
    edges: np.ndarray  # shape (E, 2), int, i < j
    params: dict[str, Any] = field(default_factory=dict)

    def neighbours(self, n_agents: int) -> list[tuple[int, ...]]:
        if self.kind == "full":
            return [tuple(j for j in range(n_agents) if j != i) for i in range(n_agents)]
        adj = self._matrix(n_agents).tolil().rows
        return [tuple(int(j) for j in row) for row in adj]

    def _matrix(self, n_agents: int):  # noqa: ANN202 - scipy sparse matrix
        from scipy.sparse import coo_matrix

        e = self.edges
        data = np.ones(2 * len(e))
        rows = np.concatenate([e[:, 0], e[:, 1]])
        cols = np.concatenate([e[:, 1], e[:, 0]])
        return coo_matrix((data, (rows, cols)), shape=(n_agents, n_agents)).tocsr()

    def connected(self, n_agents: int) -> bool:
        from scipy.sparse.csgraph import connected_components

        return n_agents <= 1 or connected_components(self._matrix(n_agents), directed=False)[0] == 1

    def diameter(self, n_agents: int) -> int:
        """Longest shortest path in hops; -1 when the graph is disconnected. Kept on the graph
        once computed (all pairs: seconds at 5,000 agents), so a graph pickled to Ray hosts
        carries it."""
        memo = self.__dict__.setdefault("_diameters", {})
        if n_agents not in memo:
            memo[n_agents] = self._diameter(n_agents)
        return memo[n_agents]

    def _diameter(self, n_agents: int) -> int:
        closed = {"full": 1, "star": 2, "line": n_agents - 1, "ring": n_agents // 2}
        if n_agents <= 1:
            return 0
        if self.kind in closed and len(self.edges) == _closed_edges(self.kind, n_agents):
            return closed[self.kind]
        from scipy.sparse.csgraph import shortest_path

        d = shortest_path(self._matrix(n_agents), directed=False, unweighted=True)
        return -1 if np.isinf(d).any() else int(d.max())


def _closed_edges(kind: str, n: int) -> int:
    return {"full": n * (n - 1) // 2, "star": n - 1, "line": n - 1, "ring": n if n > 2 else n - 1}[
        kind
    ]


def make_comm_graph(
    kind: str, n_agents: int, positions: np.ndarray | None = None, **params: Any
) -> CommGraph:
    """Build a communication graph over ``n_agents`` agents.

    ``rgg`` (random geometric) links agents whose start points are within ``radius``; if that
    leaves the graph disconnected, the closest pair of points across components is linked until
    it is connected, and the number of such bridges is kept in ``params['bridges']``.
    """
    n = n_agents
    pairs: set[tuple[int, int]] = set()
    if kind == "full":
        return CommGraph(
            kind, np.stack(np.triu_indices(n, k=1), axis=1).astype(np.int64), dict(params)
        )
    if kind in ("ring", "line"):
        pairs = {(i, i + 1) for i in range(n - 1)}
        if kind == "ring" and n > 2:
            pairs.add((0, n - 1))
    elif kind == "star":
        pairs = {(0, j) for j in range(1, n)}
    elif kind == "grid":
        cols = int(params.get("cols") or math.ceil(math.sqrt(n)))
        for i in range(n):
            r, c = divmod(i, cols)
            if c + 1 < cols and i + 1 < n:
                pairs.add((i, i + 1))
            if i + cols < n:
                pairs.add((i, i + cols))
        params = {**params, "cols": cols}
    elif kind == "rgg":
        if positions is None:
            raise InstanceError("comm graph", "positions", "agent positions for 'rgg'")
        radius = params.get("radius", 40.0)
        if (
            isinstance(radius, bool)
            or not isinstance(radius, int | float)
            or not 0 < radius < math.inf
        ):
            raise InstanceError("comm graph", "radius", "a finite radius > 0", radius)
        radius = float(radius)
        d = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
        near_i, near_j = np.nonzero(np.triu(d <= radius, k=1))  # i < j within the radius
        pairs = set(zip(near_i.tolist(), near_j.tolist(), strict=True))
        bridges = 0
        while True:
            comp = _components(n, pairs)
            if comp.max(initial=0) == 0:
                break
            inside = comp == 0
            sub = d[np.ix_(inside, ~inside)]
            a, b = np.unravel_index(np.argmin(sub), sub.shape)
            i, j = int(np.flatnonzero(inside)[a]), int(np.flatnonzero(~inside)[b])
            pairs.add((min(i, j), max(i, j)))
            bridges += 1
        params = {**params, "radius": radius, "bridges": bridges}
    elif kind == "edges":
        for k, e in enumerate(params.get("edges", [])):
            if len(e) != 2:
                raise InstanceError("comm graph", f"edges[{k}]", "a pair [i, j]", e)
            i, j = int(e[0]), int(e[1])
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise InstanceError(
                    "comm graph", f"edges[{k}]", f"two distinct ids in 0..{n - 1}", e
                )
            pairs.add((min(i, j), max(i, j)))
        params = {}
    else:
        raise InstanceError("comm graph", "kind", f"one of {', '.join(COMM_KINDS)}", kind)
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return CommGraph(kind=kind, edges=edges, params=params)


def comm_from_params(params: dict[str, Any], n_agents: int, positions: np.ndarray) -> CommGraph:
    """The graph a family's parameters ask for: ``comm`` (default ``full``) and, for ``rgg``,
    ``radius`` (default 40) over the agents' (x, y) start points."""
    kind = params.get("comm", "full")
    if kind != "rgg":
        return make_comm_graph(kind, n_agents)
    return make_comm_graph(
        kind, n_agents, np.asarray(positions)[:, :2], radius=float(params.get("radius", 40.0))
    )


def _components(n: int, pairs: set[tuple[int, int]]) -> np.ndarray:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in pairs:
        parent[find(i)] = find(j)
    roots: dict[int, int] = {}
    return np.array([roots.setdefault(find(i), len(roots)) for i in range(n)], dtype=np.int64)


@dataclass
class Instance:
    """A task-allocation problem: agents, tasks, graph, objective and provenance."""

    name: str
    family: str
    objective: str
    agents: dict[str, np.ndarray]
    tasks: dict[str, np.ndarray]
    comm: CommGraph
    agent_caps: np.ndarray | None = None  # (n_agents, k) capability levels
    task_caps: np.ndarray | None = None  # (n_tasks, k) required levels
    precedence: np.ndarray | None = None  # (P, 2): task a must start before task b
    meta: dict[str, Any] = field(default_factory=dict)
    #: what the agents believe (harness/uncertainty.py ``Belief``): set on the copy a runtime
    #: builds agents from, never part of the problem (its hash, its files, the evaluator)
    belief: Any = field(default=None, compare=False, repr=False)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        *,
        name: str,
        family: str,
        objective: str,
        agents: dict[str, Any],
        tasks: dict[str, Any],
        comm: CommGraph | None = None,
        agent_caps: Any = None,
        task_caps: Any = None,
        precedence: Any = None,
        meta: dict[str, Any] | None = None,
        source: str = "instance",
    ) -> Instance:
        """Fill defaults, coerce dtypes and validate; raise :class:`InstanceError` on bad data."""
        a = _columns(agents, AGENT_COLUMNS, source, "agents")
        # a 2-D end point (end_x, end_y given) lies in the plane z = 0
        a["end_z"] = np.where(np.isnan(a["end_z"]) & ~np.isnan(a["end_x"]), 0.0, a["end_z"])
        t = _columns(tasks, TASK_COLUMNS, source, "tasks")
        t["exit_z"] = np.where(np.isnan(t["exit_z"]) & ~np.isnan(t["exit_x"]), 0.0, t["exit_z"])
        n_agents = len(a["x"])
        if comm is None:
            comm = make_comm_graph("full", n_agents)
        k = 0
        caps = []
        for label, arr, rows in (
            ("agent_caps", agent_caps, n_agents),
            ("task_caps", task_caps, len(t["x"])),
        ):
            if arr is None:
                caps.append(None)
                continue
            try:
                arr = np.asarray(arr, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InstanceError(source, label, "a numeric matrix", str(exc)) from None
            if arr.ndim != 2 or arr.shape[0] != rows:
                raise InstanceError(source, label, f"a matrix with {rows} rows", arr.shape)
            k = arr.shape[1]
            caps.append(arr)
        agent_caps_arr, task_caps_arr = caps
        if (agent_caps_arr is None) != (task_caps_arr is None) or (
            agent_caps_arr is not None and agent_caps_arr.shape[1] != task_caps_arr.shape[1]
        ):
            raise InstanceError(
                source, "agent_caps/task_caps", f"both given with the same number of columns ({k})"
            )
        prec = None
        if precedence is not None and len(precedence):
            prec = np.asarray(precedence, dtype=np.int64).reshape(-1, 2)
        inst = cls(
            name=name,
            family=family,
            objective=objective,
            agents=a,
            tasks=t,
            comm=comm,
            agent_caps=agent_caps_arr,
            task_caps=task_caps_arr,
            precedence=prec,
            meta=dict(meta or {}),
        )
        inst.validate(source)
        return inst

    # -- basic facts --------------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        return len(self.agents["x"])

    @property
    def n_tasks(self) -> int:
        return len(self.tasks["x"])

    @property
    def sense(self) -> str:
        return OBJECTIVES[self.objective]

    @property
    def distance_kind(self) -> str:
        return self.meta.get("distance", "euclidean")

    def agent_xyz(self) -> np.ndarray:
        return np.stack([self.agents["x"], self.agents["y"], self.agents["z"]], axis=1)

    def agent_end_xyz(self) -> np.ndarray:
        return np.stack([self.agents["end_x"], self.agents["end_y"], self.agents["end_z"]], axis=1)

    def task_xyz(self) -> np.ndarray:
        return np.stack([self.tasks["x"], self.tasks["y"], self.tasks["z"]], axis=1)

    def task_exit_xyz(self) -> np.ndarray:
        """Where each task is left from: its exit point, or its location if it has none."""
        t = self.tasks
        ex = np.stack([t["exit_x"], t["exit_y"], t["exit_z"]], axis=1)
        return np.where(np.isnan(ex), self.task_xyz(), ex)

    def best_known(self) -> float | None:
        bk = self.meta.get("best_known", {})
        value = bk.get(self.objective) if isinstance(bk, dict) else None
        return None if value is None else float(value)

    # -- validation ---------------------------------------------------------------------
    def validate(self, source: str = "instance") -> None:
        if self.objective not in OBJECTIVES:
            raise InstanceError(
                source, "objective", f"one of {', '.join(OBJECTIVES)}", self.objective
            )
        if not self.family or not isinstance(self.family, str):
            raise InstanceError(source, "family", "a non-empty family name", self.family)
        if self.n_agents < 1:
            raise InstanceError(source, "agents", "at least one agent", self.n_agents)
        if self.n_tasks < 1:
            raise InstanceError(source, "tasks", "at least one task", self.n_tasks)
        if self.distance_kind not in DISTANCES:
            raise InstanceError(
                source, "meta.distance", f"one of {', '.join(DISTANCES)}", self.distance_kind
            )
        for table, cols in (("agents", self.agents), ("tasks", self.tasks)):
            for name, arr in cols.items():
                if name in _MAY_BE_INF:
                    bad = np.isnan(arr)
                elif name.startswith(("end_", "exit_")):
                    bad = np.isinf(arr)
                else:
                    bad = ~np.isfinite(arr)
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise InstanceError(
                        source, f"{table}[{row}].{name}", "a finite number", arr[row].item()
                    )
        a, t = self.agents, self.tasks
        _check(source, "agents", "speed", a["speed"] > 0, "a speed > 0", a["speed"])
        _check(
            source,
            "agents",
            "max_tasks",
            a["max_tasks"] >= 0,
            "an integer >= 0 (0 = no limit)",
            a["max_tasks"],
        )
        _check(source, "agents", "capacity", a["capacity"] >= 0, "a capacity >= 0", a["capacity"])
        _check(source, "tasks", "team", t["team"] >= 1, "an integer >= 1 (agents)", t["team"])
        _check(
            source,
            "agents",
            "avail_end",
            a["avail_end"] >= a["avail_start"],
            "avail_end >= avail_start",
            a["avail_end"],
        )
        exits = np.isnan(t["exit_x"]) == np.isnan(t["exit_y"])
        _check(
            source,
            "tasks",
            "exit_y",
            exits,
            "exit_x and exit_y both set or both empty",
            t["exit_y"],
        )
        _check(
            source,
            "tasks",
            "service_distance",
            t["service_distance"] >= 0,
            "a distance >= 0",
            t["service_distance"],
        )
        ends = np.isnan(a["end_x"]) == np.isnan(a["end_y"])
        _check(
            source, "agents", "end_y", ends, "end_x and end_y both set or both empty", a["end_y"]
        )
        _check(
            source,
            "tasks",
            "tw_end",
            t["tw_end"] >= t["tw_start"],
            "tw_end >= tw_start",
            t["tw_end"],
        )
        _check(source, "tasks", "duration", t["duration"] >= 0, "a duration >= 0", t["duration"])
        _check(
            source, "tasks", "discount", t["discount"] >= 0, "a discount lambda >= 0", t["discount"]
        )
        _check(source, "tasks", "demand", t["demand"] >= 0, "a demand >= 0", t["demand"])
        e = self.comm.edges
        if e.size and (e.min() < 0 or e.max() >= self.n_agents or (e[:, 0] == e[:, 1]).any()):
            raise InstanceError(
                source, "comm.edges", f"pairs of distinct agent ids in 0..{self.n_agents - 1}"
            )
        if not self.comm.connected(self.n_agents):
            raise InstanceError(source, "comm", "a connected communication graph", self.comm.kind)
        if self.precedence is not None:
            p = self.precedence
            if p.min() < 0 or p.max() >= self.n_tasks:
                raise InstanceError(
                    source, "precedence", f"pairs of task ids in 0..{self.n_tasks - 1}"
                )

    # -- identity -----------------------------------------------------------------------
    def content_hash(self) -> str:
        """SHA-256 (hex, 16 chars) of everything that defines the problem, not of its name."""
        h = hashlib.sha256()
        h.update(f"v{FORMAT_VERSION}|{self.family}|{self.objective}|{self.distance_kind}|".encode())
        for table in (self.agents, self.tasks):
            for name in sorted(table):
                if name in _HASH_IF_SET and _at_default(table[name], _HASH_IF_SET[name]):
                    continue  # a later column at its default keeps earlier hashes valid
                h.update(name.encode())
                h.update(np.ascontiguousarray(table[name], dtype=np.float64).tobytes())
        for arr in (self.agent_caps, self.task_caps, self.comm.edges, self.precedence):
            h.update(b"|" if arr is None else np.ascontiguousarray(arr).tobytes())
        if self.meta.get("public"):
            h.update(json.dumps(self.meta["public"], sort_keys=True).encode())
        return h.hexdigest()[:16]

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def col(arr: np.ndarray) -> list[Any]:
            return [
                None if (isinstance(v, float) and not math.isfinite(v)) else v for v in arr.tolist()
            ]

        return {
            "format": "dta-harness-instance",
            "version": FORMAT_VERSION,
            "name": self.name,
            "family": self.family,
            "objective": self.objective,
            "agents": {k: col(v) for k, v in self.agents.items()},
            "tasks": {k: col(v) for k, v in self.tasks.items()},
            "agent_caps": None if self.agent_caps is None else self.agent_caps.tolist(),
            "task_caps": None if self.task_caps is None else self.task_caps.tolist(),
            "precedence": None if self.precedence is None else self.precedence.tolist(),
            "comm": {
                "kind": self.comm.kind,
                "params": self.comm.params,
                "edges": self.comm.edges.tolist(),
            },
            "meta": self.meta,
            "hash": self.content_hash(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "instance") -> Instance:
        if not isinstance(d, dict):
            raise InstanceError(source, "(top level)", "a JSON object", type(d).__name__)
        for key in ("name", "family", "objective", "agents", "tasks"):
            if key not in d:
                raise InstanceError(source, key, "a value (required field)")
        comm_d = d.get("comm") or {"kind": "full"}
        edges = np.asarray(comm_d.get("edges", []), dtype=np.int64).reshape(-1, 2)
        n_agents = len(next(iter(d["agents"].values()), []))
        if comm_d.get("kind", "full") == "full" and "edges" not in comm_d:
            comm = make_comm_graph("full", n_agents)
        else:
            comm = CommGraph(
                kind=comm_d.get("kind", "edges"), edges=edges, params=comm_d.get("params", {})
            )
        inst = cls.build(
            name=d["name"],
            family=d["family"],
            objective=d["objective"],
            agents=_decode_nulls(d["agents"], AGENT_COLUMNS, source, "agents"),
            tasks=_decode_nulls(d["tasks"], TASK_COLUMNS, source, "tasks"),
            comm=comm,
            agent_caps=d.get("agent_caps"),
            task_caps=d.get("task_caps"),
            precedence=d.get("precedence"),
            meta=d.get("meta") or {},
            source=source,
        )
        stated = d.get("hash")
        if stated and stated != inst.content_hash():
            raise InstanceError(
                source, "hash", f"the content hash {inst.content_hash()} (file edited?)", stated
            )
        return inst


def _columns(
    data: dict[str, Any], schema: dict[str, tuple[type, Any]], source: str, table: str
) -> dict[str, np.ndarray]:
    if not isinstance(data, dict):
        raise InstanceError(
            source, table, "a mapping of column name to values", type(data).__name__
        )
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise InstanceError(
            source, f"{table}.{unknown[0]}", f"one of the columns {', '.join(schema)}"
        )
    n = None
    for name in schema:
        if name in data and data[name] is not None and not np.isscalar(data[name]):
            n = len(data[name])
            break
    if n is None:
        raise InstanceError(source, f"{table}.x", "a list of coordinates")
    out: dict[str, np.ndarray] = {}
    for name, (dtype, default) in schema.items():
        value = data.get(name)
        if value is None:
            if default is None:
                raise InstanceError(source, f"{table}.{name}", f"a column of {n} values (required)")
            value = default
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InstanceError(source, f"{table}.{name}", "numbers", value) from None
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        if arr.shape != (n,):
            raise InstanceError(source, f"{table}.{name}", f"{n} values (one per row)", arr.shape)
        if dtype is int:
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise InstanceError(source, f"{table}.{name}", "whole numbers", value)
            arr = arr.astype(np.int64)
        out[name] = arr
    return out


def _decode_nulls(
    cols: dict[str, Any], schema: dict[str, tuple[type, Any]], source: str, table: str
) -> dict[str, Any]:
    """JSON has no inf/NaN: a null inside a column means that column's non-finite default."""
    if not isinstance(cols, dict):
        raise InstanceError(
            source, table, "a mapping of column name to values", type(cols).__name__
        )
    out: dict[str, Any] = {}
    for name, values in cols.items():
        default = schema.get(name, (float, None))[1]
        if isinstance(values, list):
            fill = default if isinstance(default, float) and not math.isfinite(default) else None
            if fill is None and any(v is None for v in values):
                raise InstanceError(
                    source, f"{table}.{name}", "numbers (null only where the column may be empty)"
                )
            out[name] = [fill if v is None else v for v in values]
        else:
            out[name] = values
    return out


def _check(
    source: str, table: str, name: str, ok: np.ndarray, expected: str, values: np.ndarray
) -> None:
    ok = np.asarray(ok)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise InstanceError(source, f"{table}[{row}].{name}", expected, values[row].item())


def _at_default(arr: np.ndarray, default: float) -> bool:
    if isinstance(default, float) and math.isnan(default):
        return bool(np.isnan(arr).all())
    return bool(np.all(arr == default))
