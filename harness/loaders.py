"""Loaders for the public instance files shipped with the harness (``datasets/`` in the
repository, the ``dta_harness_data`` package when installed; harness/resources.py; sources in
datasets/SOURCES.md).

Every parse error names the file, the line or field, and what was expected.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import InstanceError, read_text, suggest
from harness.model import Instance, comm_from_params
from harness.resources import datasets_dir, datasets_hint  # noqa: F401 - datasets_dir: here


def _missing(family: str, folders: str, example: str, instance: str) -> InstanceError:
    """The error for an instance name no shipped file has: where the files were looked for
    (naming ``$HARNESS_DATASETS``) and the nearest name there is."""
    names = list_instances(family)
    return InstanceError(
        family,
        "instance",
        f"a file name from {folders} in {datasets_hint()}, like {example!r}"
        + (suggest(instance, names) if names else " (no instance files there)"),
        instance,
    )


# -- file formats ------------------------------------------------------------------------------
def read_tsplib(path: Path) -> tuple[dict[str, str], np.ndarray]:
    """TSPLIB header fields and the (n, 2) node coordinates, in node order 1..n."""
    header: dict[str, str] = {}
    coords: list[tuple[float, float]] = []
    in_coords = False
    for lineno, raw in enumerate(read_text(path, InstanceError).splitlines(), 1):
        line = raw.strip()
        if not line or line == "EOF":
            continue
        if in_coords:
            parts = line.split()
            if len(parts) < 3:
                raise InstanceError(
                    str(path), f"line {lineno}", "'id x y' in NODE_COORD_SECTION", line
                )
            try:
                node, x, y = int(parts[0]), float(parts[1]), float(parts[2])
            except ValueError:
                raise InstanceError(
                    str(path), f"line {lineno}", "'id x y' with numbers", line
                ) from None
            if not (np.isfinite(x) and np.isfinite(y)):
                raise InstanceError(str(path), f"line {lineno}", "finite coordinates", line)
            if node != len(coords) + 1:
                raise InstanceError(str(path), f"line {lineno}", f"node id {len(coords) + 1}", node)
            coords.append((x, y))
        elif line.startswith("NODE_COORD_SECTION"):
            in_coords = True
        elif ":" in line:
            key, value = line.split(":", 1)
            header[key.strip().upper()] = value.strip()
    kind = header.get("EDGE_WEIGHT_TYPE")
    if kind != "EUC_2D":
        raise InstanceError(str(path), "EDGE_WEIGHT_TYPE", "EUC_2D (the only type supported)", kind)
    try:
        dim = int(header.get("DIMENSION", len(coords)))
    except ValueError:
        raise InstanceError(
            str(path), "DIMENSION", "a whole number of nodes", header["DIMENSION"]
        ) from None
    if dim != len(coords) or dim < 2:
        raise InstanceError(
            str(path), "DIMENSION", f"the number of coordinates ({len(coords)})", dim
        )
    return header, np.asarray(coords, dtype=np.float64)


def read_solomon(path: Path) -> tuple[str, int, float, np.ndarray]:
    """Name, vehicle count, capacity and the rows ``id x y demand ready due service``."""
    lines = [ln.strip() for ln in read_text(path, InstanceError).splitlines()]
    name = lines[0] if lines else ""
    try:
        v = next(i for i, ln in enumerate(lines) if ln.upper().startswith("VEHICLE"))
        number, capacity = lines[v + 2].split()[:2]
        n_vehicles, cap = int(number), float(capacity)
    except (StopIteration, ValueError, IndexError):
        raise InstanceError(
            str(path), "VEHICLE", "a 'VEHICLE' block with 'NUMBER CAPACITY' values"
        ) from None
    rows: list[list[float]] = []
    try:
        c = next(i for i, ln in enumerate(lines) if ln.upper().startswith("CUSTOMER"))
    except StopIteration:
        raise InstanceError(str(path), "CUSTOMER", "a 'CUSTOMER' table") from None
    for lineno in range(c + 2, len(lines)):
        parts = lines[lineno].split()
        if not parts:
            continue
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InstanceError(
                str(path),
                f"line {lineno + 1}",
                "7 numbers: id x y demand ready due service",
                lines[lineno],
            ) from None
        if len(values) != 7 or not all(np.isfinite(values)):
            raise InstanceError(
                str(path),
                f"line {lineno + 1}",
                "7 numbers: id x y demand ready due service",
                lines[lineno],
            )
        rows.append(values)
    if len(rows) < 2 or rows[0][0] != 0:
        raise InstanceError(str(path), "CUSTOMER", "the depot (id 0) then at least one customer")
    return name, n_vehicles, cap, np.asarray(rows)


@cache
def best_known_table() -> dict[tuple[str, str], float]:
    """(set, instance) -> best-known cost, from datasets/best_known.csv."""
    out: dict[tuple[str, str], float] = {}
    path = datasets_dir() / "best_known.csv"
    with open(path) as fh:
        for row in csv.DictReader(fh):
            out[(row["set"], row["instance"].lower())] = float(row["best_known_cost"])
    return out


@cache
def mtsp_best_known() -> dict[tuple[str, int, str], float]:
    out: dict[tuple[str, int, str], float] = {}
    with open(datasets_dir() / "mtsp_lkh3" / "best_known.csv") as fh:
        for row in csv.DictReader(fh):
            objective = {"minsum": "min_sum", "minmax": "min_max"}[row["objective"]]
            out[(row["instance"], int(row["salesmen"]), objective)] = float(row["best_known_cost"])
    return out


# -- instances ---------------------------------------------------------------------------------
def _depot_instance(
    *, name: str, family: str, objective: str, path: Path, n_agents: int, params: dict, meta: dict
) -> Instance:
    """All agents start and end at node 1 of a TSPLIB file; the other nodes are tasks."""
    _, coords = read_tsplib(path)
    depot = coords[0]
    agents = {
        "x": np.full(n_agents, depot[0]),
        "y": np.full(n_agents, depot[1]),
        "end_x": np.full(n_agents, depot[0]),
        "end_y": np.full(n_agents, depot[1]),
    }
    source = str(path.relative_to(datasets_dir().parent))
    return Instance.build(
        name=name,
        family=family,
        objective=objective,
        agents=agents,
        tasks={"x": coords[1:, 0], "y": coords[1:, 1]},
        comm=comm_from_params(params, n_agents, np.tile(depot, (n_agents, 1))),
        meta={"distance": "euc_2d", "source": source, "params": params, **meta},
        source=str(path),
    )


def load_tsplib(
    instance: str, objective: str = "min_sum", agents: int = 1, **params: Any
) -> Instance:
    """TSPLIB EUC_2D: node 1 is the depot where ``agents`` salesmen start and end; the other
    nodes are tasks. Best-known: the TSPLIB optimum for one agent, min-sum."""
    instance = _name("tsplib", instance)
    path = datasets_dir() / "tsplib" / f"{instance}.tsp"
    if not path.exists():
        raise _missing("tsplib", "tsplib/", "eil51", instance)
    if agents < 1:
        raise InstanceError(str(path), "agents", "at least 1 salesman", agents)
    bk = best_known_table().get(("tsplib", instance.lower())) if agents == 1 else None
    return _depot_instance(
        name=f"tsplib-{instance}" + (f"-m{agents}" if agents > 1 else ""),
        family="tsplib",
        objective=objective,
        path=path,
        n_agents=agents,
        params=params,
        meta={"best_known": {"min_sum": bk} if bk is not None else {}},
    )


def load_mtsp_lkh3(instance: str, objective: str = "min_sum", **params: Any) -> Instance:
    """The LKH-3 mTSP set: ``NAME-mK`` is TSPLIB file NAME with K salesmen who all start and
    end at node 1. LKH-3 requires every salesman to visit at least one node, so a plan that
    leaves agents idle can be shorter than the min-sum best-known (``meta.min_route_size``)."""
    instance = _name("mtsp_lkh3", instance)
    base, _, m = instance.rpartition("-m")
    if not base or not m.isdigit():
        raise InstanceError("mtsp_lkh3", "instance", "NAME-mK, like 'eil51-m5'", instance)
    path = datasets_dir() / "mtsp_lkh3" / f"{base}.tsp"
    if not path.exists():
        raise _missing("mtsp_lkh3", "mtsp_lkh3/", "eil51-m5", instance)
    k = int(m)
    bk = {obj: mtsp_best_known().get((base, k, obj)) for obj in ("min_sum", "min_max")}
    return _depot_instance(
        name=f"mtsp_lkh3-{instance}",
        family="mtsp_lkh3",
        objective=objective,
        path=path,
        n_agents=k,
        params=params,
        meta={"min_route_size": 1, "best_known": {o: v for o, v in bk.items() if v is not None}},
    )


def _depot_fleet(
    xy: np.ndarray, m: int, start: float, end: float, **columns: float
) -> dict[str, Any]:
    """``m`` vehicles that leave the depot ``xy`` and return to it within [start, end]."""
    return {
        "x": np.full(m, xy[0]),
        "y": np.full(m, xy[1]),
        "end_x": np.full(m, xy[0]),
        "end_y": np.full(m, xy[1]),
        "avail_start": start,
        "avail_end": end,
        **columns,
    }


def load_solomon(
    instance: str, objective: str = "min_sum", vehicles: int = 0, **params: Any
) -> Instance:
    """Solomon / Gehring-Homberger VRPTW: vehicles start and end at the depot (row 0) within its
    window, carry ``CAPACITY``; customers have demand, a window on service start and a service
    time. Best-known: total distance (literature objective: fewest vehicles first)."""
    instance = _name("solomon", instance)
    candidates = [
        datasets_dir() / folder / f"{instance}.txt" for folder in ("solomon", "homberger_1000")
    ]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise _missing("solomon", "solomon/ or homberger_1000/", "C101", instance)
    _, n_vehicles, cap, rows = read_solomon(path)
    m = vehicles or n_vehicles
    depot, cust = rows[0], rows[1:]
    set_name = path.parent.name
    bk = best_known_table().get((set_name, instance.lower()))
    return Instance.build(
        name=f"{set_name}-{instance}" + (f"-v{m}" if vehicles else ""),
        family="solomon",
        objective=objective,
        agents=_depot_fleet(depot[1:3], m, depot[4], depot[5], capacity=cap),
        tasks={
            "x": cust[:, 1],
            "y": cust[:, 2],
            "demand": cust[:, 3],
            "tw_start": cust[:, 4],
            "tw_end": cust[:, 5],
            "duration": cust[:, 6],
        },
        comm=comm_from_params(params, m, np.tile(depot[1:3], (m, 1))),
        meta={
            "source": str(path.relative_to(datasets_dir().parent)),
            "params": params,
            "best_known": {"min_sum": bk} if bk is not None and objective == "min_sum" else {},
        },
        source=str(path),
    )


def _read_rows(
    path: Path, widths: tuple[int, ...], header_fields: int
) -> tuple[list[float], np.ndarray]:
    """A whitespace table whose first line has ``header_fields`` numbers and whose other
    lines have one of ``widths`` numbers each; errors name the file and line."""
    lines = [ln for ln in read_text(path, InstanceError).splitlines() if ln.strip()]
    if not lines:
        raise InstanceError(
            str(path), "line 1", f"a header of {header_fields} numbers", "empty file"
        )
    try:
        head = [float(v) for v in lines[0].split()]
    except ValueError:
        raise InstanceError(str(path), "line 1", f"{header_fields} numbers", lines[0]) from None
    if len(head) < header_fields:
        raise InstanceError(str(path), "line 1", f"{header_fields} numbers", lines[0])
    if not all(np.isfinite(head)):
        raise InstanceError(str(path), "line 1", "finite numbers", lines[0])
    rows = []
    for k, ln in enumerate(lines[1:], start=2):
        parts = ln.split()
        if len(parts) not in widths:
            raise InstanceError(
                str(path), f"line {k}", f"{' or '.join(map(str, widths))} numbers", ln
            )
        try:
            rows.append([float(v) for v in parts[: min(widths)]])
        except ValueError:
            raise InstanceError(str(path), f"line {k}", "numbers", ln) from None
        if not all(np.isfinite(rows[-1])):
            raise InstanceError(str(path), f"line {k}", "finite numbers", ln)
    if len(rows) < 2:
        raise InstanceError(
            str(path), "rows", "a depot row and at least one request after the header", len(rows)
        )
    return head, np.array(rows)


def _count(path: Path, value: float, what: str) -> int:
    """A header count: a whole number >= 1."""
    if not float(value).is_integer() or value < 1:
        raise InstanceError(str(path), "line 1", f"a whole number of {what} >= 1", value)
    return int(value)


#: an instance name is a file name inside its dataset folder, never a path
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _name(family: str, instance: Any) -> str:
    if not isinstance(instance, str) or not NAME_RE.fullmatch(instance) or ".." in instance:
        raise InstanceError(
            family,
            "instance",
            "an instance name (letters, digits, '.', '_', '-'; no path)",
            instance,
        )
    return instance


def _transports(
    xy: np.ndarray,
    pairs: list[tuple[int, int]],
    early: np.ndarray,
    late: np.ndarray,
    service: np.ndarray,
    speed: float,
) -> dict[str, np.ndarray]:
    """Requests (pickup node, delivery node) as atomic transport tasks: entered at the
    pickup, left from the delivery, driving between them inside the task. The task's start
    window is the pickup's, narrowed so that the delivery's window can be met without
    waiting there (waiting at the pickup instead is the same for the schedule); where the
    delivery opens too late even for the latest pickup, the wait is added to the duration."""
    p = np.array([a for a, _ in pairs])
    d = np.array([b for _, b in pairs])
    ride = np.hypot(*(xy[d] - xy[p]).T)
    travel = ride / speed
    lead = service[p] + travel  # from the start at the pickup to the arrival at the delivery
    start = np.maximum(early[p], np.minimum(late[p], early[d] - lead))
    wait = np.maximum(0.0, early[d] - (start + lead))
    return {
        "x": xy[p, 0],
        "y": xy[p, 1],
        "exit_x": xy[d, 0],
        "exit_y": xy[d, 1],
        "service_distance": ride,
        "duration": lead + wait + service[d],
        "tw_start": start,
        "tw_end": np.minimum(late[p], late[d] - lead),
    }


def load_li_lim(
    instance: str, objective: str = "min_sum", vehicles: int = 0, **params: Any
) -> Instance:
    """Li & Lim PDPTW as atomic transports: each request (a pickup row and its delivery row)
    is one task served pickup-then-delivery with nothing else on board (a restriction of
    the PDPTW, whose vehicles may carry several loads: costs are comparable to the
    best-known ones but cannot beat them). Vehicles start and end at the depot (row 0)
    within its window. Best-known: total distance of the real PDPTW."""
    instance = _name("li_lim", instance)
    candidates = [
        datasets_dir() / folder / f"{instance}.txt" for folder in ("li_lim_100", "li_lim_1000")
    ]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        raise _missing("li_lim", "li_lim_100/ or li_lim_1000/", "lc101", instance)
    head, rows = _read_rows(path, (9,), 3)
    n_vehicles, speed = _count(path, head[0], "vehicles"), float(head[2]) or 1.0
    ids = rows[:, 0].astype(int)
    if not np.array_equal(ids, np.arange(len(rows))):
        raise InstanceError(str(path), "id column", "rows numbered 0, 1, 2, ... in order", ids[:5])
    pairs = [(int(i), int(rows[i, 8])) for i in range(1, len(rows)) if rows[i, 8] > 0]
    for a, b in pairs:
        if not (0 < b < len(rows)) or int(rows[b, 7]) != a:
            raise InstanceError(
                str(path), f"line {a + 2}", "a delivery row that names this pickup", b
            )
    m = vehicles or n_vehicles
    depot = rows[0]
    set_name = path.parent.name
    bk = best_known_table().get((set_name, instance.lower())) or best_known_table().get(
        (set_name, instance)
    )
    return Instance.build(
        name=f"{set_name}-{instance}" + (f"-v{m}" if vehicles else ""),
        family="li_lim",
        objective=objective,
        agents=_depot_fleet(depot[1:3], m, depot[4], depot[5], speed=speed),
        tasks=_transports(rows[:, 1:3], pairs, rows[:, 4], rows[:, 5], rows[:, 6], speed),
        comm=comm_from_params(params, m, np.tile(depot[1:3], (m, 1))),
        meta={
            "source": str(path.relative_to(datasets_dir().parent)),
            "params": params,
            "requests": pairs,
            "model": "atomic transports: one request on board at a time",
            "best_known": {"min_sum": bk} if bk is not None and objective == "min_sum" else {},
        },
        source=str(path),
    )


def load_cordeau_darp(
    instance: str, objective: str = "min_sum", vehicles: int = 0, **params: Any
) -> Instance:
    """Cordeau & Laporte dial-a-ride as atomic transports (one request on board at a time:
    within the vehicle capacity, a restriction of the DARP). Vehicles start and end at the
    depot within its window. The maximum ride time holds by construction (a direct ride);
    the maximum route duration is not modelled (stated in ``meta``). No best-known costs
    are shipped."""
    instance = _name("cordeau_darp", instance)
    path = datasets_dir() / "cordeau_darp" / f"{instance}.txt"
    if not path.exists():
        raise _missing("cordeau_darp", "cordeau_darp/", "a2-16", instance)
    head, rows = _read_rows(path, (7,), 5)
    n_vehicles, nodes = _count(path, head[0], "vehicles"), _count(path, head[1], "nodes")
    n = nodes // 2
    if len(rows) < 2 * n + 1:
        raise InstanceError(str(path), "rows", f"a depot and {2 * n} request nodes", len(rows))
    m = vehicles or n_vehicles
    depot = rows[0]
    pairs = [(i, i + n) for i in range(1, n + 1)]
    tasks = _transports(rows[:, 1:3], pairs, rows[:, 5], rows[:, 6], rows[:, 3], 1.0)
    return Instance.build(
        name=f"cordeau-{instance}" + (f"-v{m}" if vehicles else ""),
        family="cordeau_darp",
        objective=objective,
        agents=_depot_fleet(depot[1:3], m, depot[5], depot[6]),
        tasks=tasks,
        comm=comm_from_params(params, m, np.tile(depot[1:3], (m, 1))),
        meta={
            "source": str(path.relative_to(datasets_dir().parent)),
            "params": params,
            "model": "atomic transports: one request on board at a time",
            "max_route_duration": float(head[2]),
            "max_ride_time": float(head[4]),
            "not_modelled": ["max_route_duration"],
        },
        source=str(path),
    )


LOADERS = {
    "tsplib": load_tsplib,
    "mtsp_lkh3": load_mtsp_lkh3,
    "solomon": load_solomon,
    "li_lim": load_li_lim,
    "cordeau_darp": load_cordeau_darp,
}


def load(family: str, instance: str, **params: Any) -> Instance:
    return LOADERS[family](instance, **params)


def list_instances(family: str) -> list[str]:
    root = datasets_dir()
    if family == "tsplib":
        return sorted(p.stem for p in (root / "tsplib").glob("*.tsp"))
    if family == "mtsp_lkh3":
        return sorted(f"{i}-m{k}" for (i, k, _o) in mtsp_best_known())
    if family == "solomon":
        return sorted(
            p.stem for d in ("solomon", "homberger_1000") for p in (root / d).glob("*.txt")
        )
    if family == "li_lim":
        return sorted(
            p.stem for d in ("li_lim_100", "li_lim_1000") for p in (root / d).glob("*.txt")
        )
    if family == "cordeau_darp":
        return sorted(p.stem for p in (root / "cordeau_darp").glob("*.txt"))
    return []
