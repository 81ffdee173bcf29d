"""Uncertainty (harness/uncertainty.py): agents plan with measured positions, the evaluator
grades with the true ones; Monte Carlo draws; seeded beliefs; checked settings."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import allocators
from harness.api import local_views
from harness.bench import bench
from harness.errors import SpecError
from harness.runtime_local import run_local
from harness.scenarios import make_instance
from harness.spec import apply_overrides, default_spec, spec_from_dict
from harness.trials import expand
from harness.uncertainty import Belief, Uncertainty
from reports.views import connect

CAGA = {"name": "caga", "model": "lognormal", "draws": 4}


def _spec(out: Path, uncertainty: list[dict], allocs=("cbaa", "hungarian")) -> object:
    return spec_from_dict(
        {
            "bench": {
                "seeds": 2,
                "out": str(out),
                "runtime": "local",
                "workers": 2,
                "cache": False,
            },
            "allocators": [{"name": a} for a in allocs],
            "families": [{"name": "assignment", "sizes": ["7x7"], "params": {"dim": 3}}],
            "uncertainty": uncertainty,
        },
        "uncertainty test",
    )


@pytest.mark.parametrize(
    "profile,field,expected",
    [
        ({"model": "cauchy"}, "uncertainty[0].model", "one of none, lognormal, gaussian"),
        ({"model": "lognormal", "sigma": -1.0}, "uncertainty[0].sigma", "> 0"),
        ({"model": "lognormal", "sigma": 0.0}, "uncertainty[0].sigma", "> 0"),
        ({"model": "lognormal", "e": float("nan")}, "uncertainty[0].e", "a finite number"),
        ({"model": "gaussian", "rel": -0.1}, "uncertainty[0].rel", ">= 0"),
        ({"model": "lognormal", "draws": 0}, "uncertainty[0].draws", "from 1 to 100"),
        ({"model": "lognormal", "draws": 101}, "uncertainty[0].draws", "bench.max_draws"),
        ({"model": "lognormal", "spread": 1}, "uncertainty[0].spread", "one of name, model"),
        ({"draws": 5}, "uncertainty[0].model", "'lognormal' or 'gaussian' for draws"),
    ],
)
def test_bad_settings_name_the_field(tmp_path, profile, field, expected):
    with pytest.raises(SpecError) as err:
        _spec(tmp_path, [profile])
    assert field in str(err.value) and expected in str(err.value)


def test_the_draw_bound_is_a_setting(tmp_path):
    spec = spec_from_dict(
        {
            "bench": {"max_draws": 500},
            "allocators": [{"name": "cbaa"}],
            "families": [{"name": "assignment", "sizes": ["3x3"]}],
            "uncertainty": [{"model": "lognormal", "draws": 300}],
        },
        "t",
    )
    assert spec.uncertainty == [{"model": "lognormal", "draws": 300}]


def test_the_level_curve_is_the_papers_eq_9():
    u = Uncertainty("lognormal")
    assert u.level([math.exp(3.6)])[0] == pytest.approx(0.5)
    levels = u.level(np.array([1.0, 10.0, 36.6, 100.0, 150.0]))
    assert np.all(np.diff(levels) > 0) and levels[0] < 0.01 and levels[-1] > 0.95
    assert u.level([0.0])[0] == 0.0


def test_beliefs_are_seeded_per_agent_and_shrink_near_the_task():
    inst = make_instance({"family": "assignment", "size": [40, 6], "params": {"dim": 3}, "seed": 5})
    belief = Belief(Uncertainty("lognormal"), seed=11)
    views = local_views(replace(inst, belief=belief))
    again = local_views(replace(inst, belief=belief), [3])
    assert np.array_equal(views[3].tasks.xyz, again[0].tasks.xyz)  # built alone: the same
    assert not np.array_equal(views[3].tasks.xyz, views[4].tasks.xyz)  # each its own sensor
    other_draw = local_views(replace(inst, belief=Belief(belief.model, 11, draw=1)), [3])
    assert not np.array_equal(views[3].tasks.xyz, other_draw[0].tasks.xyz)
    true = np.stack([inst.tasks[k] for k in "xyz"], axis=1)
    errs, dists = [], []
    for v in views:
        errs += list(np.linalg.norm(v.tasks.xyz - true, axis=1))
        dists += list(np.linalg.norm(true - v.position, axis=1))
    errs_a, dists_a = np.array(errs), np.array(dists)
    near, far = dists_a < 25, dists_a > 60
    assert errs_a[near].mean() < errs_a[far].mean()  # the error grows with distance
    plain = local_views(inst)
    assert plain[0].tasks is plain[1].tasks  # without a belief: one shared table, as before


def test_a_planar_instance_stays_planar():
    inst = make_instance({"family": "assignment", "size": [10, 3], "params": {}, "seed": 1})
    views = local_views(replace(inst, belief=Belief(Uncertainty("lognormal"), 3)))
    assert all(np.all(v.tasks["z"] == 0) for v in views)


def test_agents_plan_on_beliefs_and_are_graded_on_truth():
    """The optimal solver is optimal for what its leader measured, not for the truth."""
    inst = make_instance({"family": "assignment", "size": [8, 8], "params": {"dim": 3}, "seed": 2})
    cls = allocators.get("hungarian")
    p = cls.resolve_params({})
    true_plans = run_local(inst, cls, p, seed=1).plans
    seen = [
        run_local(replace(inst, belief=Belief(Uncertainty("lognormal"), 1, k)), cls, p, 1).plans
        for k in range(4)
    ]
    owners = [tuple(tuple(pl.tasks) for pl in plans) for plans in seen]
    assert any(o != tuple(tuple(pl.tasks) for pl in true_plans) for o in owners)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("res")
    bench(_spec(out, [{"model": "none"}, CAGA]), run_id="u1")
    return out


def test_monte_carlo_rows_keep_means_spread_and_every_draw(store):
    con = connect([store])
    rows = con.execute(
        "SELECT trial_key, alg_name, m_mc_draws, m_objective, m_objective_sd, m_gap, trial_draws "
        "FROM trials WHERE trial_uncertainty_name = 'caga'"
    ).fetchall()
    assert len(rows) == 4  # 2 allocators x 2 instances
    for key, _alg, n, obj, sd, gap, draws in rows:
        assert n == 4 and sd is not None and sd >= 0
        objs = [d[1] for d in json.loads(draws)]
        assert obj == pytest.approx(sum(objs) / len(objs))
        got = con.execute(
            "SELECT count(*), avg(objective) FROM draws WHERE trial_key = ?", [key]
        ).fetchone()
        assert got[0] == 4 and got[1] == pytest.approx(obj)
        assert gap >= 0
    # noise costs the optimal solver something somewhere; with the truth it is exact
    lost = con.execute(
        "SELECT max(gap) FROM draws WHERE alg_name = 'hungarian' AND uncertainty = 'caga'"
    ).fetchone()[0]
    assert lost > 0
    exact = con.execute(
        "SELECT max(m_gap) FROM trials WHERE alg_name = 'hungarian' "
        "AND trial_uncertainty_name = 'none'"
    ).fetchone()[0]
    assert exact == 0


def test_a_trial_replays_from_its_seed(store, tmp_path):
    bench(_spec(tmp_path, [CAGA]), run_id="again")
    first = connect([store]).execute(
        "SELECT trial_key, trial_draws FROM trials WHERE trial_uncertainty_name = 'caga' ORDER BY 1"
    )
    second = connect([tmp_path]).execute("SELECT trial_key, trial_draws FROM trials ORDER BY 1")
    assert first.fetchall() == second.fetchall()


def test_model_none_keeps_the_keys_trials_had_before():
    base = default_spec()
    with_none = apply_overrides(base, uncertainty=['{model = "none"}'])
    keys = [t.key for t in expand(base)[0]]
    assert keys == [t.key for t in expand(with_none)[0]]
    noisy = apply_overrides(base, uncertainty=['{model = "gaussian", rel = 0.1}'])
    assert not set(keys) & {t.key for t in expand(noisy)[0]}


def test_the_command_line_names_a_bad_table():
    with pytest.raises(SpecError, match=r"--uncertainty\[0\]"):
        apply_overrides(default_spec(), uncertainty=["model = lognormal"])


def _executed_spec(out: Path, execution: dict, uncertainty: list[dict]) -> object:
    return spec_from_dict(
        {
            "bench": {
                "seeds": 3,
                "out": str(out),
                "runtime": "local",
                "workers": 2,
                "cache": False,
            },
            "allocators": [{"name": "cbaa"}],
            "families": [{"name": "assignment", "sizes": ["8x8"], "params": {"dim": 3}}],
            "execution": execution,
            "uncertainty": uncertainty,
        },
        "checkpoint test",
    )


def test_checkpoints_re_plan_on_fresh_measurements_and_replay(tmp_path):
    """CBAA with re-allocation at checkpoints is a row like any other: agents travel, measure
    again from where they are at each checkpoint, re-allocate; the mission replays."""
    spec = _executed_spec(tmp_path / "a", {"checkpoints": 3}, [CAGA])
    bench(spec, run_id="c")
    bench(_executed_spec(tmp_path / "b", {"checkpoints": 3}, [CAGA]), run_id="c")
    sql = (
        "SELECT trial_key, m_exec_checkpoints, m_exec_replans, m_feasible, m_objective, "
        "trial_draws FROM trials ORDER BY 1"
    )
    first = connect([tmp_path / "a"]).execute(sql).fetchall()
    assert first == connect([tmp_path / "b"]).execute(sql).fetchall()
    for _key, reached, replans, feasible, _obj, draws in first:
        assert 1 <= reached <= 3 and replans >= 1 + reached
        assert feasible  # one task per agent over the whole mission
        assert len(json.loads(draws)) == 4


def test_an_agent_that_served_its_limit_takes_no_more(tmp_path):
    """Executed single assignment: an agent that reached its task is done; the re-plans
    give the tasks left to the others (before, agents collected several)."""
    bench(_executed_spec(tmp_path, {}, [{"model": "none"}]), run_id="e")
    rows = (
        connect([tmp_path])
        .execute("SELECT m_feasible, m_violations_bundle, m_coverage FROM trials")
        .fetchall()
    )
    assert rows and all(f and v == 0 and c == 1 for f, v, c in rows)


def test_no_checkpoints_keep_the_execution_keys():
    from harness.execution import ExecSettings

    assert "checkpoints" not in ExecSettings.from_dict({"speed": 5.0}).to_dict()
    assert ExecSettings.from_dict({"checkpoints": 2}).to_dict()["checkpoints"] == 2
