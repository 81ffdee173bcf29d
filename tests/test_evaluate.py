"""The independent evaluator: feasibility checks and metrics recomputed from plans."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.api import Plan
from harness.evaluate import PlanError, evaluate, gap, jain
from harness.model import Instance


def line_instance(**tasks):
    t = {"x": [10.0, 20.0, 30.0], "y": [0.0, 0.0, 0.0], **tasks}
    return Instance.build(
        name="line",
        family="tdr",
        objective="max_tdr",
        agents={"x": [0.0, 0.0], "y": [0.0, 0.0], "max_tasks": 2},
        tasks=t,
    )


def test_schedule_reward_distance_makespan():
    inst = line_instance(
        value=[10.0, 10.0, 10.0], discount=[0.1, 0.0, 0.0], duration=[1.0, 0.0, 0.0]
    )
    m = evaluate(inst, [Plan(0, [0, 1]), Plan(1, [2])])
    assert m["m_feasible"] and m["m_complete"] and m["m_conflicts"] == 0
    # task 0 at t=10 with lambda 0.1 from window start 0; task 1 at 10 + 1 + 10 = 21
    assert m["m_reward"] == pytest.approx(10 * math.exp(-1.0) + 10 + 10)
    assert m["m_total_distance"] == pytest.approx(20 + 30)
    assert m["m_makespan"] == pytest.approx(30)


def test_conflicts_and_violations_are_flagged_not_repaired():
    inst = line_instance(tw_end=[5.0, 100.0, 100.0])
    m = evaluate(inst, [Plan(0, [0, 1, 2]), Plan(1, [2])])
    assert m["m_conflicts"] == 1 and m["m_violations_bundle"] == 1 and m["m_violations_window"] == 1
    assert not m["m_feasible"] and m["m_gap"] is None


def test_stated_start_before_arrival_is_a_violation():
    inst = line_instance()
    assert evaluate(inst, [Plan(0, [0], [9.0])])["m_violations_window"] == 1
    assert evaluate(inst, [Plan(0, [0], [12.0])])["m_feasible"]


def test_unreadable_plans_raise():
    inst = line_instance()
    with pytest.raises(PlanError):
        evaluate(inst, [Plan(0, [7])])
    with pytest.raises(PlanError):
        evaluate(inst, [Plan(5, [0])])


def test_gap_signs():
    assert gap(90, 100, "max") == pytest.approx(0.1)
    assert gap(110, 100, "min") == pytest.approx(0.1)
    assert gap(100, 100, "min") == 0.0
    assert gap(None, 100, "min") is None


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
@settings(max_examples=200, deadline=None)
def test_jain_bounds(xs):
    j = jain(np.array(xs))
    assert 1.0 / len(xs) - 1e-9 <= j <= 1.0 + 1e-9


@given(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=6),
    st.integers(0, 10_000),
)
@settings(max_examples=60, deadline=None)
def test_any_partition_of_tasks_is_conflict_free_and_covered(n, m, seed):
    rng = np.random.default_rng(seed)
    inst = Instance.build(
        name="p",
        family="mtsp",
        objective="min_sum",
        agents={"x": rng.uniform(0, 100, m), "y": rng.uniform(0, 100, m)},
        tasks={"x": rng.uniform(0, 100, n), "y": rng.uniform(0, 100, n)},
    )
    owner = rng.integers(0, m, n)
    plans = [
        Plan(a, [int(j) for j in rng.permutation(np.flatnonzero(owner == a))]) for a in range(m)
    ]
    metrics = evaluate(inst, plans)
    assert metrics["m_conflicts"] == 0 and metrics["m_complete"] and metrics["m_feasible"]
    # min-sum is the sum of route lengths recomputed by hand
    pts = inst.task_xyz()
    total = 0.0
    for p in plans:
        pos = inst.agent_xyz()[p.agent]
        for j in p.tasks:
            total += float(np.linalg.norm(pts[j] - pos))
            pos = pts[j]
    assert metrics["m_objective"] == pytest.approx(total)
