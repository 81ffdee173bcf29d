"""The independent evaluator (DESIGN §7): recomputes everything from the instance and the plans.

It shares no scoring code with the allocators. Each agent's route is replayed from its start
point at ``avail_start``: arrival by travel time, service starting at the later of arrival,
the window start and the start time the plan states (if it states one). Violations are counted,
never silently repaired; an infeasible plan gets no gap.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.api import Plan
from harness.geometry import capable, distance_matrices, payoff_matrix
from harness.model import Instance

TOL = 1e-6


class PlanError(Exception):
    """A plan that cannot be read at all (unknown agent or task ids)."""


def jain(x: np.ndarray) -> float:
    """Jain's fairness index ``(sum x)^2 / (n * sum x^2)``; 1 when every value is equal."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0 or not np.any(x):
        return 1.0
    x = x / np.abs(x).max()  # scale-free, and safe from underflow of x**2
    return float(x.sum() ** 2 / (len(x) * (x**2).sum()))


def gap(value: float | None, reference: float | None, sense: str) -> float | None:
    """Relative gap to a reference (optimum or best-known), >= 0 when worse than it."""
    if (
        value is None
        or reference is None
        or not math.isfinite(value)
        or not math.isfinite(reference)
    ):
        return None
    denom = abs(reference) if reference != 0 else 1.0
    g = (reference - value) / denom if sense == "max" else (value - reference) / denom
    return 0.0 if abs(g) < 1e-9 else g


def evaluate(
    inst: Instance, plans: list[Plan], optimum: float | None = None, market: str | None = None
) -> dict[str, Any]:
    """Feasibility, coverage, objective and gaps of the plans; with ``market`` ("forward" or
    "reverse", the allocator's side), also the economic metrics of :mod:`harness.economics`."""
    n, m = inst.n_tasks, inst.n_agents
    by_agent: dict[int, Plan] = {}
    for p in plans:
        if not (0 <= p.agent < m) or p.agent in by_agent:
            raise PlanError(f"plan for unknown or repeated agent {p.agent}")
        bad = [t for t in p.tasks if not (isinstance(t, (int, np.integer)) and 0 <= t < n)]
        if bad:
            raise PlanError(f"agent {p.agent} plans unknown task ids {bad[:5]}")
        if p.times is not None and len(p.times) != len(p.tasks):
            raise PlanError(f"agent {p.agent}: {len(p.times)} start times for {len(p.tasks)} tasks")
        by_agent[p.agent] = p
    start_d, between, end_d = distance_matrices(inst)
    a_cols, t = inst.agents, inst.tasks
    can = capable(inst)
    payoff = payoff_matrix(inst) if inst.objective == "max_payoff" else None

    claims = np.zeros(n, dtype=np.int64)
    v_window = v_bundle = v_capability = v_capacity = v_return = v_precedence = 0
    distance = np.zeros(m)
    busy = np.zeros(m)
    completion = np.zeros(m)
    counts = np.zeros(m, dtype=np.int64)
    reward = 0.0
    payoff_sum = 0.0
    gross = np.zeros(m)  # value each agent's served tasks produce (the economy's "value")
    start_time = np.full(n, np.nan)
    for a in range(m):
        p = by_agent.get(a, Plan(a))
        seq = [int(j) for j in p.tasks]
        counts[a] = len(seq)
        for j in seq:
            claims[j] += 1
        limit = int(a_cols["max_tasks"][a])
        if limit and len(seq) > limit:
            v_bundle += 1
        if seq and not can[a, seq].all():
            v_capability += int((~can[a, seq]).sum())
        if t["demand"][seq].sum() > a_cols["capacity"][a] + TOL:
            v_capacity += 1
        clock = a_cols["avail_start"][a]
        speed = a_cols["speed"][a]
        prev = None
        for k, j in enumerate(seq):
            d = start_d[a, j] if prev is None else between[prev, j]
            distance[a] += d + t["service_distance"][j]
            arrive = clock + d / speed
            s = max(arrive, t["tw_start"][j])
            if p.times is not None:
                stated = float(p.times[k])
                if stated + TOL < s:
                    v_window += 1  # states a start before it could arrive or open
                s = max(s, stated)
            if s > t["tw_end"][j] + TOL:
                v_window += 1
            else:
                r = t["value"][j] * math.exp(-t["discount"][j] * (s - t["tw_start"][j]))
                reward += r
                if payoff is None:
                    gross[a] += r
            if payoff is not None:
                payoff_sum += payoff[a, j]
                gross[a] += payoff[a, j]
            if claims[j] == 1:
                start_time[j] = s
            busy[a] += d / speed + t["duration"][j]
            clock = s + t["duration"][j]
            prev = j
        if prev is not None and not math.isnan(end_d[a, prev]):
            distance[a] += end_d[a, prev]
            busy[a] += end_d[a, prev] / speed
            clock += end_d[a, prev] / speed
        if seq and clock > a_cols["avail_end"][a] + TOL:
            v_return += 1
        completion[a] = clock if seq else a_cols["avail_start"][a]
    if inst.precedence is not None:
        for before, after in inst.precedence.tolist():
            if (
                not (np.isnan(start_time[before]) or np.isnan(start_time[after]))
                and start_time[before] > start_time[after]
            ):
                v_precedence += 1

    conflicts = int((claims > t["team"]).sum())
    covered = int((claims > 0).sum())
    violations = v_window + v_bundle + v_capability + v_capacity + v_return + v_precedence
    feasible = conflicts == 0 and violations == 0
    cost = float((distance * a_cols["cost_per_distance"]).sum())
    # the cost side of the economy: a fixed cost per served task, plus travel at the agent's
    # cost per distance unless the objective's value already nets the distance (max_payoff)
    econ_cost = a_cols["fixed_cost"] * counts
    if payoff is None:
        econ_cost = econ_cost + distance * a_cols["cost_per_distance"]
    makespan = float(completion.max() - a_cols["avail_start"].min()) if counts.any() else 0.0
    value = {
        "max_payoff": payoff_sum,
        "max_tdr": reward,
        "min_sum": cost,
        "min_max": makespan,
        "max_welfare": float(gross.sum() - econ_cost.sum()),
    }[inst.objective]
    complete = covered == n
    comparable = feasible and (inst.sense == "max" or complete)
    bk = inst.best_known()
    out = {
        "m_objective": float(value),
        "m_feasible": feasible,
        "m_complete": complete,
        "m_coverage": covered / n,
        "m_tasks_assigned": covered,
        "m_conflicts": conflicts,
        "m_violations": violations,
        "m_violations_window": v_window,
        "m_violations_bundle": v_bundle,
        "m_violations_capability": v_capability,
        "m_violations_capacity": v_capacity,
        "m_violations_return": v_return,
        "m_violations_precedence": v_precedence,
        "m_total_distance": float(distance.sum()),
        "m_makespan": makespan,
        "m_reward": float(reward),
        "m_agents_used": int((counts > 0).sum()),
        "m_fairness": jain(busy),
        "m_fairness_tasks": jain(counts),
        "m_opt_value": optimum,
        "m_gap": gap(value, optimum, inst.sense) if comparable else None,
        "m_best_known": bk,
        "m_gap_best_known": gap(value, bk, inst.sense) if comparable else None,
    }
    if market is not None:
        from harness.economics import market_metrics

        every = [by_agent.get(a, Plan(a)) for a in range(m)]
        out.update(market_metrics(inst, every, gross, econ_cost, market))
    return out
