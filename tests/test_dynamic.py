"""Dynamic missions (harness/execution.py, ``Dynamics``): tasks that appear during the mission
and agents that fail, each followed by a re-plan; what changed and when is stored, with the
coverage of late tasks, the time to re-allocate and the messages per change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.bench import bench
from harness.errors import SpecError
from harness.execution import ExecSettings
from harness.spec import spec_from_dict
from reports.views import connect

EXECUTION = {"late_tasks": 0.3, "fail_agents": 1, "speed": 5.0}


def _spec(out: Path, execution: dict, allocs=("sga", "greedy_nn")) -> object:
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
            "families": [{"name": "mtsp", "sizes": ["20x4"]}],
            "execution": execution,
        },
        "dynamic test",
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dyn")
    bench(_spec(out, EXECUTION), run_id="d")
    return out


SQL = (
    "SELECT trial_key, alg_name, m_exec_complete, m_exec_events, m_exec_late_coverage, "
    "m_exec_reallocate_s, m_exec_msgs_per_change, trial_exec_events, trial_plans "
    "FROM trials ORDER BY 1"
)


def test_late_tasks_and_failures_are_stored_with_their_cost(store):
    rows = connect([store]).execute(SQL).fetchall()
    assert len(rows) == 4
    for _key, _alg, complete, changes, late_cov, realloc, per_change, events, plans in rows:
        ev = json.loads(events)
        kinds = [k for _t, kind, ids, _w, _m in ev for k in [kind] * len(ids)]
        assert changes == 7 and kinds.count("task") == 6 and kinds.count("fail") == 1
        assert complete and late_cov == 1.0  # every late task was reached
        assert realloc > 0 and per_change >= 0
        times = [t for t, *_ in ev]
        assert times == sorted(times) and times[0] > 0
        # a task appears before anyone visits it; a failed agent visits nothing afterwards
        visits = {
            j: t for p in json.loads(plans) for j, t in zip(p["tasks"], p["times"], strict=True)
        }
        for t, kind, ids, _w, _m in ev:
            for x in ids:
                if kind == "task":
                    assert visits[x] >= t - 1e-9
                else:
                    failed = next(p for p in json.loads(plans) if p["agent"] == x)
                    assert all(v <= t + 1e-9 for v in failed["times"])


def test_a_dynamic_mission_replays_from_its_seed(store, tmp_path):
    bench(_spec(tmp_path, EXECUTION), run_id="d")
    keep = "SELECT trial_key, trial_exec_events, trial_plans FROM trials ORDER BY 1"

    def replayable(rows: list[tuple]) -> list[tuple]:  # all but the re-plans' wall times
        return [(k, [e[:3] + e[4:] for e in json.loads(ev)], p) for k, ev, p in rows]

    first = replayable(connect([store]).execute(keep).fetchall())
    assert first == replayable(connect([tmp_path]).execute(keep).fetchall())


def test_without_events_the_keys_and_columns_are_as_before():
    d = ExecSettings.from_dict({"speed": 5.0}).to_dict()
    assert not {"late_tasks", "fail_agents", "checkpoints"} & set(d)
    with pytest.raises(SpecError, match="execution.late_tasks"):
        _spec(Path("unused"), {"late_tasks": 1.5})
    with pytest.raises(SpecError, match="execution.fail_agents"):
        _spec(Path("unused"), {"fail_agents": -1})
