"""Brute-force optima for tiny instances: the ground truth the exact solvers are tested against.
Written from the problem definitions only, sharing nothing with harness.exact."""

from __future__ import annotations

import itertools
import math

import numpy as np

from harness.model import Instance


def _dist(p: np.ndarray, q: np.ndarray, kind: str) -> float:
    d = float(np.sqrt(((p - q) ** 2).sum()))
    return math.floor(d + 0.5) if kind == "euc_2d" else d


def route_value(inst: Instance, a: int, seq: tuple[int, ...]) -> tuple[bool, float, float, float]:
    """(feasible, reward, distance, completion) of agent ``a`` serving ``seq`` at earliest starts."""
    ag, t = inst.agents, inst.tasks
    pos = inst.agent_xyz()[a]
    clock, reward, dist = ag["avail_start"][a], 0.0, 0.0
    xyz = inst.task_xyz()
    for j in seq:
        d = _dist(pos, xyz[j], inst.distance_kind)
        dist += d
        s = max(clock + d / ag["speed"][a], t["tw_start"][j])
        if s > t["tw_end"][j] + 1e-9:
            return False, 0.0, 0.0, 0.0
        reward += t["value"][j] * math.exp(-t["discount"][j] * (s - t["tw_start"][j]))
        clock = s + t["duration"][j]
        pos = xyz[j]
    if not math.isnan(ag["end_x"][a]) and seq:
        d = _dist(pos, inst.agent_end_xyz()[a], inst.distance_kind)
        dist += d
        clock += d / ag["speed"][a]
    limit = int(ag["max_tasks"][a])
    ok = (not limit or len(seq) <= limit) and clock <= ag["avail_end"][a] + 1e-9
    return ok, reward, dist, clock


def brute_force(inst: Instance) -> float:
    n, m = inst.n_tasks, inst.n_agents
    if inst.objective == "max_payoff":
        from harness.geometry import payoff_matrix

        P = payoff_matrix(inst)
        best = 0.0
        for k in range(0, min(n, m) + 1):
            for agents in itertools.combinations(range(m), k):
                for tasks in itertools.permutations(range(n), k):
                    best = max(best, sum(P[a, j] for a, j in zip(agents, tasks, strict=True)))
        return best
    options = range(m + 1) if inst.objective == "max_tdr" else range(m)  # m = unassigned
    best = -math.inf if inst.sense == "max" else math.inf
    for owner in itertools.product(options, repeat=n):
        total, worst, feasible = 0.0, 0.0, True
        for a in range(m):
            mine = [j for j in range(n) if owner[j] == a]
            results = [route_value(inst, a, seq) for seq in itertools.permutations(mine)]
            results = [r for r in results if r[0]]
            if not results:
                feasible = False
                break
            if inst.objective == "max_tdr":
                total += max(r[1] for r in results)
            elif inst.objective == "min_sum":
                total += min(r[2] for r in results)
            else:
                worst = max(worst, min(r[3] - inst.agents["avail_start"][a] for r in results))
        if not feasible:
            continue
        value = worst if inst.objective == "min_max" else total
        best = max(best, value) if inst.sense == "max" else min(best, value)
    return best
