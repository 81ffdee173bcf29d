"""Distances and payoffs shared by generators, solvers and the evaluator."""

from __future__ import annotations

import numpy as np

from harness.model import Instance


def pairwise(a: np.ndarray, b: np.ndarray, kind: str = "euclidean") -> np.ndarray:
    """Distance matrix between point sets ``a`` (n, 3) and ``b`` (m, 3).

    ``euc_2d`` is TSPLIB's convention: Euclidean distance rounded to the nearest integer.
    """
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    if kind == "euc_2d":
        d = np.floor(d + 0.5)
    return d


def distance_matrices(inst: Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(agent start -> task, task -> task, task -> agent end) distances; NaN where no end.
    A task is entered at its location and left from its exit point (the same point unless
    the task is a transport), so ``between[i, j]`` runs from i's exit to j's location and
    need not be symmetric."""
    kind = inst.distance_kind
    tasks = inst.task_xyz()
    exits = inst.task_exit_xyz()
    start = pairwise(inst.agent_xyz(), tasks, kind)
    between = pairwise(exits, tasks, kind)
    end = pairwise(exits, np.nan_to_num(inst.agent_end_xyz()), kind)
    end[:, np.isnan(inst.agents["end_x"])] = np.nan
    return start, between, end.T.copy()


def payoff_matrix(inst: Instance) -> np.ndarray:
    """Single-assignment payoff (agents x tasks): ``value * 100 / max(distance, 1)``.

    The CAGA seed paper scores an agent-task pair by 100/distance; the floor at distance 1
    keeps a task on top of an agent from having an unbounded payoff.
    """
    d = pairwise(inst.agent_xyz(), inst.task_xyz(), inst.distance_kind)
    return payoff(inst.tasks["value"][None, :], d)


def payoff(value: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """``value * 100 / max(distance, 1)``, elementwise (see :func:`payoff_matrix`)."""
    return value * 100.0 / np.maximum(distance, 1.0)


def capable(inst: Instance) -> np.ndarray:
    """Boolean (agents x tasks): the agent's capability levels meet the task's requirements."""
    if inst.agent_caps is None:
        return np.ones((inst.n_agents, inst.n_tasks), dtype=bool)
    return (inst.agent_caps[:, None, :] >= inst.task_caps[None, :, :]).all(axis=-1)
