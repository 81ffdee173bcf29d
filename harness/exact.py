"""Exact optima with PuLP and its bundled CBC (DESIGN §6, §7).

* ``max_payoff`` (single assignment): a 0-1 assignment model in PuLP up to ``PULP_ASSIGN_MAX``
  variables; above that SciPy's ``linear_sum_assignment`` (exact as well, and much faster).
* ``max_tdr``: column enumeration. For a fixed task order the earliest-start schedule is optimal
  (rewards only fall with time and starting earlier never hurts a later task), so every feasible
  ordered route of at most L tasks is enumerated per agent, the best order of each task set is
  kept, and a set-packing MILP chooses at most one route per agent and each task at most once.
* ``min_sum`` / ``min_max`` (mTSP, no time windows): a three-index arc model per agent with
  Miller-Tucker-Zemlin subtour elimination; open paths end at a free sink.

Each result says ``optimal``, ``feasible`` (time-limited, with CBC's bound when it prints one),
``infeasible``, ``skipped`` (too large or unsupported, with the reason) or ``error``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pulp

from harness.api import Plan
from harness.geometry import capable, distance_matrices, payoff_matrix
from harness.model import Instance

PULP_ASSIGN_MAX = 20_000  # variables
MAX_EXACT_TASKS = 12
MAX_ROUTES = 300_000
MAX_WINDOWED_TASKS = 10  # the MAGNET paper's brute force stopped there too


@dataclass
class Optimum:
    value: float | None
    status: str
    solver: str
    seconds: float
    bound: float | None = None
    note: str = ""
    plans: list[Plan] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "opt_value": self.value,
            "opt_status": self.status,
            "opt_solver": self.solver,
            "opt_seconds": self.seconds,
            "opt_bound": self.bound,
            "opt_note": self.note,
        }


def solve_exact(inst: Instance, time_limit: float = 30.0) -> Optimum:
    t0 = time.perf_counter()
    try:
        if inst.objective == "max_payoff":
            out = _assignment(inst, time_limit)
        elif inst.objective == "max_tdr":
            out = _tdr(inst, time_limit)
        elif inst.objective in ("min_sum", "min_max"):
            out = _routing(inst, time_limit)
        elif inst.objective == "max_welfare":
            out = _welfare(inst, time_limit)
        else:  # pragma: no cover - objectives are validated
            out = Optimum(None, "skipped", "", 0.0, note=f"no exact model for {inst.objective}")
    except MemoryError:
        out = Optimum(None, "skipped", "", 0.0, note="out of memory")
    out.seconds = time.perf_counter() - t0
    return out


def cbc_solver(time_limit: float, log: str) -> pulp.LpSolver:
    """CBC from the ``cbcbox`` wheel (``pulp[cbc]``), else the binary PuLP bundles."""
    opts = {"msg": False, "timeLimit": max(1, math.ceil(time_limit)), "logPath": log, "threads": 1}
    try:
        import cbcbox

        return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), **opts)
    except ImportError:  # pragma: no cover - older installs
        return pulp.PULP_CBC_CMD(**opts)


def run_cbc(prob: pulp.LpProblem, time_limit: float) -> tuple[str, float | None]:
    """Solve with CBC; ``("optimal" | "feasible" | "infeasible" | "no_solution", bound)``."""
    fd, log = tempfile.mkstemp(suffix=".cbc.log")
    os.close(fd)
    try:
        prob.solve(cbc_solver(time_limit, log))
        text = Path(log).read_text()
    finally:
        os.unlink(log)
    stopped = "Stopped on time" in text or "Stopped on iterations" in text
    if prob.sol_status == pulp.LpSolutionOptimal and not stopped:
        return "optimal", None
    if prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        m = re.search(r"Lower bound:\s*(-?[\d.eE+-]+)", text)
        bound = float(m.group(1)) if m else None
        if bound is not None and prob.sense == pulp.LpMaximize:
            bound = abs(bound)  # CBC minimises the negated objective
        return "feasible", bound
    if prob.status == pulp.LpStatusInfeasible:
        return "infeasible", None
    return "no_solution", None


def solve_to_optimality(prob: pulp.LpProblem, time_limit: float, what: str) -> None:
    """Solve a model that must be solved exactly (winner determination inside an allocator);
    anything short of a proven optimum is an error naming ``what``."""
    status, _ = run_cbc(prob, time_limit)
    if status != "optimal":
        raise RuntimeError(f"{what}: CBC ended {status}")


def optimal_assignment(inst: Instance) -> list[Plan]:
    """The assignment of largest total payoff, one task per agent (scipy's
    ``linear_sum_assignment``, Jonker-Volgenant); the ``hungarian`` allocator's solver too."""
    return best_assignment(np.where(capable(inst), payoff_matrix(inst), -1e18))


def best_assignment(payoff: np.ndarray) -> list[Plan]:
    """The plans of the assignment of largest total ``payoff`` (agents x tasks), one task per
    agent; an entry below -1e17 marks a pair that may not be assigned."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(payoff, maximize=True)
    plans = [Plan(a) for a in range(payoff.shape[0])]
    for a, j in zip(rows.tolist(), cols.tolist(), strict=True):
        if payoff[a, j] > -1e17:
            plans[a].tasks.append(j)
    return plans


def _assignment(inst: Instance, time_limit: float) -> Optimum:
    payoff = payoff_matrix(inst)
    ok = capable(inst)
    if ok.sum() > PULP_ASSIGN_MAX:
        plans = optimal_assignment(inst)
        value = sum(payoff[p.agent, t] for p in plans for t in p.tasks)
        return Optimum(float(value), "optimal", "scipy.linear_sum_assignment", 0.0, plans=plans)
    prob = pulp.LpProblem("assignment", pulp.LpMaximize)
    pairs = list(zip(*np.nonzero(ok), strict=True))
    x = {(a, j): prob.add_variable(f"x_{a}_{j}", cat="Binary") for a, j in pairs}
    prob += pulp.lpSum(payoff[a, j] * v for (a, j), v in x.items())
    for a in range(inst.n_agents):
        prob += pulp.lpSum(v for (b, _), v in x.items() if b == a) <= max(
            1, int(inst.agents["max_tasks"][a]) or 1
        )
    for j in range(inst.n_tasks):
        prob += pulp.lpSum(v for (_, k), v in x.items() if k == j) <= 1
    status, bound = run_cbc(prob, time_limit)
    plans = [Plan(a) for a in range(inst.n_agents)]
    for (a, j), v in x.items():
        if (v.value() or 0) > 0.5:
            plans[a].tasks.append(int(j))
    value = pulp.value(prob.objective) if status in ("optimal", "feasible") else None
    return Optimum(
        None if value is None else float(value), status, "pulp.cbc", 0.0, bound, plans=plans
    )


def _welfare(inst: Instance, time_limit: float) -> Optimum:
    """Market welfare with one task per agent and team tasks: maximise the sum over chosen
    (agent, task) pairs of ``value - fixed_cost - cost_per_distance * distance``, each agent
    on at most one task it is capable of, each task taking at most ``team`` agents; serving
    nothing is allowed (a pair worth less than zero is never chosen)."""
    a = inst.agents
    if not np.all(a["max_tasks"] == 1):
        return Optimum(None, "skipped", "", 0.0, note="max_welfare exact model: one task per agent")
    start, _, _ = distance_matrices(inst)
    gain = (
        inst.tasks["value"][None, :]
        - a["fixed_cost"][:, None]
        - a["cost_per_distance"][:, None] * start
    )
    ok = capable(inst) & (gain > 0)
    prob = pulp.LpProblem("welfare", pulp.LpMaximize)
    pairs = list(zip(*np.nonzero(ok), strict=True))
    x = {(i, j): prob.add_variable(f"x_{i}_{j}", cat="Binary") for i, j in pairs}
    prob += pulp.lpSum(gain[i, j] * v for (i, j), v in x.items())
    for i in range(inst.n_agents):
        prob += pulp.lpSum(v for (b, _), v in x.items() if b == i) <= 1
    for j in range(inst.n_tasks):
        prob += pulp.lpSum(v for (_, k), v in x.items() if k == j) <= int(inst.tasks["team"][j])
    status, bound = run_cbc(prob, time_limit)
    plans = [Plan(i) for i in range(inst.n_agents)]
    for (i, j), v in x.items():
        if (v.value() or 0) > 0.5:
            plans[i].tasks.append(int(j))
    value = (pulp.value(prob.objective) or 0.0) if status in ("optimal", "feasible") else None
    return Optimum(
        None if value is None else float(value), status, "pulp.cbc", 0.0, bound, plans=plans
    )


def _tdr(inst: Instance, time_limit: float) -> Optimum:
    if inst.n_tasks > MAX_EXACT_TASKS:
        return Optimum(None, "skipped", "", 0.0, note=f"{inst.n_tasks} tasks > {MAX_EXACT_TASKS}")
    start_d, between, _ = distance_matrices(inst)
    t = inst.tasks
    can = capable(inst)
    deadline = time.perf_counter() + time_limit
    columns: list[tuple[int, tuple[int, ...], tuple[float, ...], float]] = []
    for a in range(inst.n_agents):
        limit = int(inst.agents["max_tasks"][a]) or inst.n_tasks
        speed, t0, cap = (
            inst.agents["speed"][a],
            inst.agents["avail_start"][a],
            inst.agents["capacity"][a],
        )
        t_end = inst.agents["avail_end"][a]
        best: dict[frozenset, tuple[float, tuple[int, ...], tuple[float, ...]]] = {}
        stack: list[tuple[tuple[int, ...], tuple[float, ...], float, float, float]] = [
            ((), (), t0, 0.0, 0.0)
        ]
        while stack:
            seq, times, finish, reward, load = stack.pop()
            if seq:
                key = frozenset(seq)
                if key not in best or reward > best[key][0]:
                    best[key] = (reward, seq, times)
            if len(seq) >= limit:
                continue
            if len(best) > MAX_ROUTES or time.perf_counter() > deadline:
                return Optimum(
                    None, "skipped", "", 0.0, note="route enumeration over its size or time budget"
                )
            for j in range(inst.n_tasks):
                if j in seq or not can[a, j] or load + t["demand"][j] > cap:
                    continue
                d = start_d[a, j] if not seq else between[seq[-1], j]
                s = max(finish + d / speed, t["tw_start"][j])
                if s > t["tw_end"][j] + 1e-9 or s + t["duration"][j] > t_end + 1e-9:
                    continue
                r = t["value"][j] * math.exp(-t["discount"][j] * (s - t["tw_start"][j]))
                stack.append(
                    (
                        seq + (j,),
                        times + (s,),
                        s + t["duration"][j],
                        reward + r,
                        load + t["demand"][j],
                    )
                )
        columns += [(a, seq, times, r) for r, seq, times in best.values()]
    prob = pulp.LpProblem("tdr", pulp.LpMaximize)
    x = [prob.add_variable(f"r{c}", cat="Binary") for c in range(len(columns))]
    prob += pulp.lpSum(col[3] * v for col, v in zip(columns, x, strict=True))
    for a in range(inst.n_agents):
        prob += pulp.lpSum(v for col, v in zip(columns, x, strict=True) if col[0] == a) <= 1
    for j in range(inst.n_tasks):
        prob += pulp.lpSum(v for col, v in zip(columns, x, strict=True) if j in col[1]) <= 1
    remaining = max(1.0, deadline - time.perf_counter())
    status, bound = run_cbc(prob, remaining)
    plans = [Plan(a) for a in range(inst.n_agents)]
    for (a, seq, times, _r), v in zip(columns, x, strict=True):
        if (v.value() or 0) > 0.5:
            plans[a] = Plan(a, list(seq), list(times))
    value = pulp.value(prob.objective) if status in ("optimal", "feasible") else None
    note = f"{len(columns)} route columns"
    return Optimum(
        None if value is None else float(value or 0.0), status, "pulp.cbc", 0.0, bound, note, plans
    )


def _windowed_routes(inst: Instance, time_limit: float) -> Optimum:
    """``min_sum`` with time windows and availability slots (the pickup-and-delivery of
    atomic transports, capacity one): per agent, a label-setting enumeration of its feasible
    routes (labels ``(finish time, distance)`` per (task set, last task), dominated ones
    dropped, which keeps every cheapest route), then a set-partitioning MILP choosing at most
    one route per agent and covering every task once; a task no route can serve is left out
    at a penalty, so the answer is the cheapest allocation of as many tasks as possible."""
    start_d, between, end_d = distance_matrices(inst)
    t, a_cols = inst.tasks, inst.agents
    n, m = inst.n_tasks, inst.n_agents
    can = capable(inst)
    deadline = time.perf_counter() + time_limit
    columns: list[tuple[int, int, float, tuple[int, ...], tuple[float, ...]]] = []
    for a in range(m):
        speed, t_end = a_cols["speed"][a], a_cols["avail_end"][a]
        limit = int(a_cols["max_tasks"][a]) or n
        cap, cpd = a_cols["capacity"][a], a_cols["cost_per_distance"][a]
        # label: (finish, distance, load, sequence, start times)
        labels: dict[tuple[int, int], list[tuple]] = {}
        frontier: list[tuple[int, int, tuple]] = []
        for j in range(n):
            if not can[a, j] or t["demand"][j] > cap:
                continue
            s0 = max(a_cols["avail_start"][a] + start_d[a, j] / speed, t["tw_start"][j])
            if s0 > t["tw_end"][j] + 1e-9:
                continue
            lab = (
                s0 + t["duration"][j],
                start_d[a, j] + t["service_distance"][j],
                t["demand"][j],
                (j,),
                (s0,),
            )
            labels[(1 << j, j)] = [lab]
            frontier.append((1 << j, j, lab))
        best: dict[int, tuple[float, tuple[int, ...], tuple[float, ...]]] = {}
        while frontier:
            if time.perf_counter() > deadline or len(columns) + len(best) > MAX_ROUTES:
                return Optimum(None, "skipped", "", 0.0, note="route labels over their budget")
            mask, last, (finish, dist, load, seq, times) = frontier.pop()
            back = 0.0 if np.isnan(end_d[a, last]) else end_d[a, last]
            if finish + back / speed <= t_end + 1e-9:
                cost = cpd * (dist + back)
                if mask not in best or cost < best[mask][0] - 1e-12:
                    best[mask] = (cost, seq, times)
            if len(seq) >= limit:
                continue
            for j in range(n):
                if mask >> j & 1 or not can[a, j] or load + t["demand"][j] > cap:
                    continue
                s_j = max(finish + between[last, j] / speed, t["tw_start"][j])
                if s_j > t["tw_end"][j] + 1e-9:
                    continue
                lab = (
                    s_j + t["duration"][j],
                    dist + between[last, j] + t["service_distance"][j],
                    load + t["demand"][j],
                    (*seq, j),
                    (*times, s_j),
                )
                key = (mask | 1 << j, j)
                kept = labels.setdefault(key, [])
                if any(
                    o[0] <= lab[0] + 1e-12 and o[1] <= lab[1] + 1e-12 and o[2] <= lab[2]
                    for o in kept
                ):
                    continue  # dominated: an earlier, shorter, lighter way to this state exists
                kept[:] = [
                    o for o in kept if not (lab[0] <= o[0] and lab[1] <= o[1] and lab[2] <= o[2])
                ]
                kept.append(lab)
                frontier.append((key[0], j, lab))
        columns += [(a, mask, c, seq, tm) for mask, (c, seq, tm) in best.items()]
    prob = pulp.LpProblem("windowed_routes", pulp.LpMinimize)
    x = [prob.add_variable(f"x_{k}", cat="Binary") for k in range(len(columns))]
    miss = [prob.add_variable(f"miss_{j}", 0, 1) for j in range(n)]
    penalty = 1.0 + sum(c for _, _, c, _, _ in columns)
    # identical trucks give tied optima; a tiny preference for lower agent ids makes the
    # answer one and the same on every run (CBC alone need not pick the same tie twice)
    prob += pulp.lpSum(
        (col[2] + 1e-7 * (col[0] + 1)) * v for col, v in zip(columns, x, strict=True)
    ) + penalty * pulp.lpSum(miss)
    for j in range(n):
        prob += (
            pulp.lpSum(v for col, v in zip(columns, x, strict=True) if col[1] >> j & 1) + miss[j]
            == 1
        )
    for a in range(m):
        prob += pulp.lpSum(v for col, v in zip(columns, x, strict=True) if col[0] == a) <= 1
    status, bound = run_cbc(prob, time_limit)
    if status not in ("optimal", "feasible"):
        return Optimum(None, status, "pulp.cbc", 0.0, bound, f"{len(columns)} route columns")
    plans = [Plan(a) for a in range(m)]
    for (a, _mask, _c, seq, tm), v in zip(columns, x, strict=True):
        if (v.value() or 0) > 0.5:
            plans[a] = Plan(a, list(seq), [float(s) for s in tm])
    missing = [j for j in range(n) if (miss[j].value() or 0) > 0.5]
    value = sum(col[2] for col, v in zip(columns, x, strict=True) if (v.value() or 0) > 0.5)
    note = f"{len(columns)} route columns" + (
        f"; tasks no route serves: {missing}" if missing else ""
    )
    if missing:  # not a complete allocation: no optimum to compare complete plans with
        return Optimum(None, "infeasible", "pulp.cbc", 0.0, None, note, plans)
    return Optimum(float(value), status, "pulp.cbc", 0.0, bound, note, plans)


def _routing(inst: Instance, time_limit: float) -> Optimum:
    if inst.n_tasks > MAX_EXACT_TASKS:
        return Optimum(None, "skipped", "", 0.0, note=f"{inst.n_tasks} tasks > {MAX_EXACT_TASKS}")
    t = inst.tasks
    windows = np.isfinite(t["tw_end"]).any() or (t["tw_start"] > 0).any()
    if inst.precedence is not None:
        return Optimum(None, "skipped", "", 0.0, note="precedence: no exact routing model yet")
    if windows or np.isfinite(inst.agents["avail_end"]).any():
        if inst.objective != "min_sum":
            return Optimum(
                None, "skipped", "", 0.0, note="time windows: exact model for min_sum only"
            )
        if inst.n_tasks > MAX_WINDOWED_TASKS:
            return Optimum(
                None,
                "skipped",
                "",
                0.0,
                note=f"time windows: exact up to {MAX_WINDOWED_TASKS} tasks, instance has {inst.n_tasks}",
            )
        return _windowed_routes(inst, time_limit)
    n, m = inst.n_tasks, inst.n_agents
    start_d, between, end_d = distance_matrices(inst)
    has_end = ~np.isnan(inst.agents["end_x"])
    can = capable(inst)
    cpd, speed = inst.agents["cost_per_distance"], inst.agents["speed"]
    prob = pulp.LpProblem("routing", pulp.LpMinimize)
    s = {
        (a, j): prob.add_variable(f"s_{a}_{j}", cat="Binary")
        for a in range(m)
        for j in range(n)
        if can[a, j]
    }
    e = {
        (a, j): prob.add_variable(f"e_{a}_{j}", cat="Binary")
        for a in range(m)
        for j in range(n)
        if can[a, j]
    }
    x = {
        (a, i, j): prob.add_variable(f"x_{a}_{i}_{j}", cat="Binary")
        for a in range(m)
        for i in range(n)
        for j in range(n)
        if i != j and can[a, i] and can[a, j]
    }
    u = [prob.add_variable(f"u_{j}", 1, n) for j in range(n)]
    into = {j: [] for j in range(n)}
    for (_a, _i, j), v in x.items():
        into[j].append(v)

    def length(a: int) -> Any:
        ends = (
            pulp.lpSum(end_d[a, j] * e[a, j] for j in range(n) if (a, j) in e) if has_end[a] else 0
        )
        return (
            pulp.lpSum(start_d[a, j] * s[a, j] for j in range(n) if (a, j) in s)
            + pulp.lpSum(between[i, j] * v for (b, i, j), v in x.items() if b == a)
            + ends
        )

    if inst.objective == "min_sum":
        prob += pulp.lpSum(cpd[a] * length(a) for a in range(m))
    else:
        T = prob.add_variable("makespan", 0)
        prob += T
        busy = []
        for a in range(m):
            service = pulp.lpSum(
                t["duration"][j]
                * (s[a, j] + pulp.lpSum(v for (b, i, k), v in x.items() if b == a and k == j))
                for j in range(n)
                if (a, j) in s
            )
            busy.append(length(a) * (1.0 / speed[a]) + service)
            prob += busy[-1] <= T
        prob += m * T >= pulp.lpSum(busy)  # valid cut: the makespan is at least the mean busy time
    for j in range(n):
        prob += pulp.lpSum(s[a, j] for a in range(m) if (a, j) in s) + pulp.lpSum(into[j]) == 1
    for a in range(m):
        prob += pulp.lpSum(s[a, j] for j in range(n) if (a, j) in s) <= 1
        prob += pulp.lpSum(e[a, j] for j in range(n) if (a, j) in e) == pulp.lpSum(
            s[a, j] for j in range(n) if (a, j) in s
        )
        limit = int(inst.agents["max_tasks"][a])
        visits = {
            j: s[a, j] + pulp.lpSum(v for (b, i, k), v in x.items() if b == a and k == j)
            for j in range(n)
            if (a, j) in s
        }
        if limit:
            prob += pulp.lpSum(visits.values()) <= limit
        if math.isfinite(inst.agents["capacity"][a]):
            prob += (
                pulp.lpSum(t["demand"][j] * v for j, v in visits.items())
                <= inst.agents["capacity"][a]
            )
        for j, v in visits.items():
            prob += v == e[a, j] + pulp.lpSum(w for (b, i, k), w in x.items() if b == a and i == j)
    for (_a, i, j), v in x.items():
        prob += u[j] >= u[i] + 1 - n * (1 - v)
    status, bound = run_cbc(prob, time_limit)
    plans = [Plan(a) for a in range(m)]
    if status in ("optimal", "feasible"):
        for a in range(m):
            first = [j for j in range(n) if (a, j) in s and (s[a, j].value() or 0) > 0.5]
            if not first:
                continue
            seq, seen = [first[0]], {first[0]}
            while True:
                nxt = [
                    j
                    for j in range(n)
                    if (a, seq[-1], j) in x and (x[a, seq[-1], j].value() or 0) > 0.5
                ]
                if not nxt or nxt[0] in seen:
                    break
                seq.append(nxt[0])
                seen.add(nxt[0])
            plans[a] = Plan(a, seq)
    value = pulp.value(prob.objective) if status in ("optimal", "feasible") else None
    return Optimum(
        None if value is None else float(value), status, "pulp.cbc", 0.0, bound, plans=plans
    )
