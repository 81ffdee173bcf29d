"""Frozen suites, baselines and `harness check` (harness/frozen.py, harness/regress.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.bench import bench
from harness.errors import InputError, SpecError
from harness.freeze import freeze, verify
from harness.regress import Settings, compare, read_baseline, timing_verdict, write_baseline
from harness.spec import load_spec, spec_from_dict
from harness.store import RunStore
from tests.cli import harness_cli

ROOT = Path(__file__).resolve().parents[1]


def spec_dict(out: Path) -> dict:
    return {
        "bench": {"seeds": 2, "out": str(out), "runtime": "local", "workers": 2},
        "allocators": [{"name": "greedy_nn"}, {"name": "cbba"}],
        "families": [
            {"name": "tdr", "sizes": ["8x3"], "params": {"comm": ["full", "ring"]}},
            {"name": "assignment", "sizes": ["5x5"]},
        ],
    }


def cli(*args: str, cwd: Path, extra: str = "") -> subprocess.CompletedProcess:
    return harness_cli(*args, cwd=cwd, extra_allocators=extra)


def identity(rows: list[dict]) -> dict:
    skip = ("trial_run_id", "trial_finished", "trial_wall_s", "trial_cpu_s", "trial_peak_rss_mb")
    return {
        r["trial_key"]: {
            k: v
            for k, v in r.items()
            if k not in skip and k != "inst_recipe" and k != "inst_source" and "seconds" not in k
        }
        for r in rows
    }


def test_frozen_suite_runs_the_same_trials_as_the_spec_it_froze(tmp_path):
    spec = spec_from_dict(spec_dict(tmp_path / "res"), "test spec")
    suite = freeze(spec, "s", root=tmp_path / "frozen")
    assert (suite / "suite.toml").exists() and (suite / "instances.parquet").exists()
    index = pq.read_table(suite / "instances.parquet").to_pylist()
    assert len(index) == 6  # 2 tdr graphs x 2 seeds + 2 assignment instances
    assert all((suite / r["file"]).exists() for r in index)
    original = bench(spec, run_id="orig")
    frozen = load_spec(suite / "suite.toml")
    frozen.settings["out"] = str(tmp_path / "res")
    frozen.settings["cache"] = False  # computed again from the frozen files, not reused
    again = bench(frozen, run_id="frozen")
    a = identity(RunStore(tmp_path / "res", original.run_id).rows())
    b = identity(RunStore(tmp_path / "res", again.run_id).rows())
    assert a.keys() == b.keys() and len(a) == 12
    assert a == b  # same keys, seeds, plans and metrics
    rec = json.loads(RunStore(tmp_path / "res", "frozen").rows()[0]["inst_recipe"])
    assert rec["frozen"] == str(suite) and rec["hash"]
    # a baseline comes from a finished run only
    manifest = RunStore(tmp_path / "res", "frozen").read_manifest()
    RunStore(tmp_path / "res", "frozen").write_manifest({**manifest, "status": "running"})
    with pytest.raises(InputError, match=r"frozen/manifest\.json: status: expected a finished"):
        write_baseline(tmp_path / "res" / "frozen", tmp_path / "b.parquet")
    assert not (tmp_path / "b.parquet").exists()


def test_verify_and_loading_catch_an_edited_instance_file(tmp_path):
    spec = spec_from_dict(spec_dict(tmp_path / "res"), "test spec")
    suite = freeze(spec, "s", root=tmp_path)
    rows = verify(suite)
    assert all(r["file_ok"] and r["generator_same"] for r in rows)
    first = pq.read_table(suite / "instances.parquet").to_pylist()[0]
    other = pq.read_table(suite / "instances.parquet").to_pylist()[1]
    shutil.copy(suite / other["file"], suite / first["file"])  # a file that is not its hash
    bad = [r for r in verify(suite) if not r["file_ok"]]
    assert [r["file"] for r in bad] == [first["file"]]
    assert first["file"] in bad[0]["problem"] and first["inst_hash"] in bad[0]["problem"]
    frozen = load_spec(suite / "suite.toml")
    frozen.settings["out"] = str(tmp_path / "res")
    with pytest.raises(SpecError, match=first["file"]):
        bench(frozen, run_id="x")


def test_frozen_spec_entries_are_checked(tmp_path):
    (tmp_path / "a.toml").write_text(
        '[[allocators]]\nname = "cbba"\n[[families]]\nname = "tdr"\nfrozen = "nowhere"\n'
    )
    with pytest.raises(SpecError, match=r"a\.toml: families\[0\]\.frozen: expected a folder"):
        load_spec(tmp_path / "a.toml")
    spec = spec_from_dict(spec_dict(tmp_path / "res"), "test spec")
    freeze(spec, "s", root=tmp_path)
    (tmp_path / "s" / "b.toml").write_text(
        '[[allocators]]\nname = "cbba"\n[[families]]\nname = "tdr"\nfrozen = "."\nsizes = ["9x3"]\n'
    )
    with pytest.raises(SpecError, match=r"families\[0\]\.sizes: expected only 'name'"):
        load_spec(tmp_path / "s" / "b.toml")
    with pytest.raises(SpecError, match="--name"):
        freeze(spec, "s", root=tmp_path)  # exists: needs force


def table(rows: list[dict]) -> pa.Table:
    base = {
        "alg_name": "x",
        "inst_family": "tdr",
        "inst_size": "8x3",
        "inst_name": "i",
        "trial_rep": 0,
        "inst_objective": "max_tdr",
        "trial_status": "done",
    }
    return pa.Table.from_pylist([{**base, **r} for r in rows])


def test_compare_lists_what_moved_with_direction_and_tolerance():
    base = table(
        [
            {"trial_key": "a", "m_objective": 10.0, "m_messages": 100, "m_coverage": 1.0},
            {"trial_key": "b", "m_objective": 5.0, "m_messages": 50, "m_coverage": 1.0},
        ]
    )
    cur = table(
        [
            {"trial_key": "a", "m_objective": 10.5, "m_messages": 100, "m_coverage": 1.0},
            {"trial_key": "b", "m_objective": 5.0, "m_messages": 60, "m_coverage": 0.5},
        ]
    )
    rep = compare(base, cur, Settings())
    got = {(m.what.split()[0], m.metric, m.verdict) for m in rep.moved}
    # tdr maximises: a higher objective is better; more messages and lower coverage are worse
    assert {(m.metric, m.verdict) for m in rep.moved} == {
        ("m_objective", "better"),
        ("m_messages", "worse"),
        ("m_coverage", "worse"),
    }, got
    assert len(rep.regressions) == 3  # fail on any difference
    worse_only = compare(base, cur, Settings(fail_on="worse"))
    assert {m.metric for m in worse_only.regressions} == {"m_messages", "m_coverage"}
    tolerant = compare(
        base, cur, Settings(tolerances={"m_objective": 0.1, "m_messages": 0.2, "m_coverage": 0.5})
    )
    assert tolerant.moved == []


def test_missing_trials_and_status_changes_fail():
    base = table([{"trial_key": "a"}, {"trial_key": "b"}])
    cur = table([{"trial_key": "a", "trial_status": "error"}, {"trial_key": "c"}])
    rep = compare(base, cur, Settings())
    assert (rep.missing, rep.new, rep.compared) == (1, 1, 1)
    assert {(m.kind, m.verdict) for m in rep.regressions} == {
        ("missing", "missing"),
        ("status", "worse"),
    }
    assert [m.kind for m in compare(base, cur, Settings(allow_missing=True)).regressions] == [
        "status"
    ]


def test_timing_needs_a_large_and_significant_slowdown():
    s = Settings(time_threshold=2.0, min_reps=6, time_alpha=0.05)
    base = [0.10, 0.11, 0.09, 0.12, 0.10, 0.10, 0.11, 0.10]
    slow = [b * f for b, f in zip(base, (3.1, 2.9, 3.3, 2.8, 3.0, 3.2, 2.7, 3.0), strict=True)]
    assert timing_verdict(base, slow, s)[0] == "slower"
    assert timing_verdict(slow, base, s)[0] == "faster"
    mild = [b * 1.3 for b in base]  # significant but under the threshold
    assert timing_verdict(base, mild, s)[0] == "same"
    one_outlier = [*base[:-1], base[-1] * 50]  # the median ratio stays near 1
    assert timing_verdict(base, one_outlier, s)[0] == "same"
    assert timing_verdict(base[:4], slow[:4], s)[0] == "unjudged"  # too few repetitions
    tiny = [1e-4] * 8
    assert timing_verdict(tiny, [1e-3] * 8, s)[0] == "unjudged"  # under the floor


def test_bad_baseline_files_are_named(tmp_path):
    with pytest.raises(InputError, match="nothing.parquet.*baseline"):
        read_baseline(tmp_path / "nothing.parquet")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="x.parquet"):
        read_baseline(tmp_path / "x.parquet")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "y.parquet")
    with pytest.raises(InputError, match="y.parquet: trial_key"):
        read_baseline(tmp_path / "y.parquet")
    with pytest.raises(InputError, match="run directory"):
        write_baseline(tmp_path, tmp_path / "b.parquet")


@pytest.mark.slow
def test_check_fails_a_worsened_allocator_and_passes_a_rerun(tmp_path):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(
        '[bench]\nseeds = 2\nruntime = "local"\nworkers = 2\n'
        '[[allocators]]\nname = "greedy_nn"\n[[allocators]]\nname = "cbaa"\n'
        '[[families]]\nname = "tdr"\nsizes = ["8x3", "10x4"]\n'
    )
    r = cli("datasets", "freeze", str(spec_path), "--name", "ci", "--dir", "suites", cwd=tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    suite = tmp_path / "suites" / "ci" / "suite.toml"
    for run in ("base", "again"):
        r = cli("bench", str(suite), "--out", "res", "--run-id", run, cwd=tmp_path)
        assert r.returncode == 0, r.stderr + r.stdout
    r = cli(
        "bench",
        str(suite),
        "--out",
        "res",
        "--run-id",
        "worse",
        cwd=tmp_path,
        extra="tests.worsened_allocators",
    )
    assert r.returncode == 0, r.stderr + r.stdout
    r = cli("baseline", "update", "--results", "res/base", "--baseline", "b.parquet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    ok = cli("check", "--baseline", "b.parquet", "--results", "res/again", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "none failing" in ok.stdout
    bad = cli(
        "check",
        "--baseline",
        "b.parquet",
        "--results",
        "res/worse",
        "--output",
        "moved.csv",
        "--markdown",
        "summary.md",
        cwd=tmp_path,
    )
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### harness check: regression") and "**FAIL** worse" in summary
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "regression" in bad.stdout
    moved = (tmp_path / "moved.csv").read_text().splitlines()
    rows = [line.split(",") for line in moved[1:]]
    assert rows and all(r[3] == "greedy_nn" for r in rows)  # only the worsened allocator moved
    assert any(r[7] == "m_coverage" and r[2] == "worse" for r in rows)
    missing = cli("check", "--baseline", "nope.parquet", "--results", "res/again", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.parquet" in missing.stderr


def _plans(*plans: dict) -> str:
    return json.dumps(list(plans))


def test_plans_compare_structurally_within_a_relative_tolerance():
    """A last-ulp difference in a bid (an AVX-512 exp against an AVX2 one) is no change; a bid
    beyond the tolerance, another task order or a lost task is named by agent and task."""
    p = {"agent": 0, "tasks": [3, 1], "times": [1.5, 2.5], "bids": [55.51231259959789, 2.0]}
    ulp = {**p, "bids": [55.512312599597884, 2.0]}
    base = table([{"trial_key": "a", "trial_plans": _plans(p, {"agent": 1, "tasks": [0]})}])
    same = table([{"trial_key": "a", "trial_plans": _plans(ulp, {"agent": 1, "tasks": [0]})}])
    assert compare(base, same, Settings()).moved == []
    exact = compare(base, same, Settings(plan_rtol=0.0))
    assert [m.metric for m in exact.moved] == ["trial_plans agent 0 task 3 bid"]
    assert exact.moved[0].baseline == "55.51231259959789" and "rel" in exact.moved[0].change

    moved = {**p, "tasks": [1, 3]}
    far = {**p, "bids": [55.6, 2.0]}
    lost = {"agent": 1, "tasks": []}
    for plans, metric, change in (
        (_plans(moved, {"agent": 1, "tasks": [0]}), "trial_plans agent 0 tasks", "other order"),
        (_plans(far, {"agent": 1, "tasks": [0]}), "trial_plans agent 0 task 3 bid", "+0.0877"),
        (_plans(p, lost), "trial_plans agent 1 tasks", "lost [0]"),
    ):
        rep = compare(base, table([{"trial_key": "a", "trial_plans": plans}]), Settings())
        assert [m.metric for m in rep.moved] == [metric]
        assert change in rep.moved[0].change and rep.regressions


def test_check_takes_plan_tolerance_from_the_spec_and_the_flag(tmp_path):
    d = spec_dict(tmp_path / "r")
    d["check"] = {"plan_rtol": 0.5, "tolerances": {"m_bytes": 0.05}}
    spec = spec_from_dict(d, "t.toml")
    assert spec.check == {"plan_rtol": 0.5, "tolerances": {"m_bytes": 0.05}}
    from harness.regress import check

    res = bench(spec, run_id="c")
    write_baseline(res.run_dir, tmp_path / "b.parquet")
    s = Settings(tolerances={"m_rounds": 0.1})
    rep = check(tmp_path / "b.parquet", res.run_dir, s)  # the run's [check] table applies
    assert rep.regressions == [] and s.plan_rtol == 0.5
    assert s.tolerances == {"m_bytes": 0.05, "m_rounds": 0.1}
    s2 = Settings()
    check(tmp_path / "b.parquet", res.run_dir, s2, {"plan_rtol": 0.0})  # a flag wins
    assert s2.plan_rtol == 0.0
    for bad, where in (
        ({"plan_rtol": float("nan")}, "check.plan_rtol"),
        ({"plan_rtol": -1.0}, "check.plan_rtol"),
        ({"rtol": "x"}, "check.rtol"),
        ({"tolerances": {"bytes": 0.1}}, "check.tolerances.bytes"),
        ({"speed": 1.0}, "check.speed"),
    ):
        with pytest.raises(SpecError, match=where.replace(".", r"\.")):
            spec_from_dict({**spec_dict(tmp_path), "check": bad}, "t.toml")
