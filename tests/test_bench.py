"""The coordinator and store end to end: real worker processes, real Parquet, real DuckDB."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.bench import Observer, bench
from harness.errors import SpecError
from harness.spec import load_spec, spec_from_dict
from harness.store import COMPACTED, RunStore
from reports.views import connect
from tests.cli import bench_argv, harness_cli

TIMING = {
    "trial_run_id",
    "trial_wall_s",
    "trial_cpu_s",
    "trial_peak_rss_mb",
    "trial_finished",
    "m_opt_seconds",
}


@pytest.fixture(autouse=True)
def faulty_allocators(monkeypatch):
    monkeypatch.setenv("HARNESS_EXTRA_ALLOCATORS", "tests.faulty_allocators")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    import allocators

    allocators.available.cache_clear()
    yield
    allocators.available.cache_clear()


def small_spec(out, **bench_settings):
    return spec_from_dict(
        {
            "bench": {
                "seeds": 2,
                "out": str(out),
                "runtime": "local",
                "workers": 2,
                "time_limit": 30.0,
                **bench_settings,
            },
            "allocators": [
                {"name": "cbaa"},
                {"name": "cbba"},
                {"name": "sga"},
                {"name": "hungarian"},
            ],
            "families": [
                {
                    "name": "assignment",
                    "sizes": ["5x4", "8x8"],
                    "params": {"comm": ["full", "ring"]},
                },
                {"name": "tdr", "sizes": ["6x3"]},
            ],
        }
    )


def comparable(rows):
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING} for r in rows),
        key=lambda r: r["trial_key"],
    )


def test_bench_stores_one_row_per_trial_with_gaps(tmp_path):
    result = bench(small_spec(tmp_path))
    # assignment: 2 sizes x 2 graphs x 2 seeds x 4 allocators; tdr: 1 x 2 seeds x (cbba, sga)
    assert result.total == 32 + 4 and result.counts == {"done": 36}
    rows = RunStore(tmp_path, result.run_id).rows()
    assert len(rows) == 36 and len({r["trial_key"] for r in rows}) == 36
    hungarian = [r for r in rows if r["alg_name"] == "hungarian"]
    assert all(r["m_gap"] == 0.0 and r["m_opt_status"] == "optimal" for r in hungarian)
    assert all(r["m_feasible"] and r["m_conflicts"] == 0 for r in rows)
    assert all(
        r["m_messages"] > 0 and r["m_bytes"] > 0
        for r in rows
        if r["alg_name"] != "hungarian" or r["inst_n_agents"] > 1
    )
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert (
        manifest["status"] == "done"
        and manifest["counts"] == {"done": 36}
        and manifest["spec_hash"]
    )
    assert manifest["versions"]["pulp"] and manifest["machine"]["cpus"]
    con = connect([tmp_path])
    by_alg = dict(con.execute("SELECT alg_name, count(*) FROM trials GROUP BY 1").fetchall())
    assert by_alg == {"cbaa": 8, "cbba": 10, "sga": 10, "hungarian": 8}
    assert (
        con.execute("SELECT count(*) FROM optima WHERE opt_status = 'optimal'").fetchall()[0][0]
        == 10
    )
    assert con.execute("SELECT status FROM runs").fetchall() == [("done",)]


@pytest.mark.slow
def test_same_spec_and_seeds_give_identical_rows(tmp_path):
    a = bench(small_spec(tmp_path / "a"))
    b = bench(small_spec(tmp_path / "b", workers=1))
    rows_a = comparable(RunStore(tmp_path / "a", a.run_id).rows())
    rows_b = comparable(RunStore(tmp_path / "b", b.run_id).rows())
    assert rows_a == rows_b
    assert all(r["trial_plans"] for r in rows_a)


class StopAfter(Observer):
    def __init__(self, n):
        self.n, self.seen = n, 0

    def trial(self, row):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_interrupted_run_resumes_and_stores_every_trial_once(tmp_path):
    spec = small_spec(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        bench(spec, run_id="r1", observer=StopAfter(5))
    store = RunStore(tmp_path, "r1")
    assert store.read_manifest()["status"] == "interrupted"
    statuses = store.statuses()
    assert 5 <= sum(s == "done" for s in statuses.values()) < 36
    assert store.single_files() == []  # the interrupted run's rows are compacted too
    done_before = {r["trial_key"]: r for r in store.rows() if r["trial_status"] == "done"}
    assert set(done_before) == {k for k, s in statuses.items() if s == "done"}
    resumed = bench(spec, run_id="r1", resume=True)
    assert store.single_files() == [] and (store.trials_dir / COMPACTED).exists()
    assert resumed.reused == len(done_before)
    assert sum(resumed.counts.values()) == 36 - len(done_before)
    rows = store.rows()
    assert len(rows) == 36 and {r["trial_status"] for r in rows} == {"done"}
    for r in rows:  # trials stored before the interruption were not run again
        if r["trial_key"] in done_before:
            before = done_before[r["trial_key"]]
            assert {k: v for k, v in r.items() if k in before} == before
    fresh = bench(small_spec(tmp_path / "fresh"))
    assert comparable(rows) == comparable(RunStore(tmp_path / "fresh", fresh.run_id).rows())
    assert store.read_manifest()["status"] == "done"


@pytest.mark.slow
def test_errors_and_timeouts_are_rows_and_the_run_goes_on(tmp_path):
    spec = spec_from_dict(
        {
            "bench": {
                "seeds": 1,
                "out": str(tmp_path),
                "runtime": "local",
                "workers": 2,
                "time_limit": 1.0,
                "optimum": False,
                "max_rounds": 10**7,
            },
            "allocators": [
                {"name": "test_crash", "params": {"round": 2}},
                {
                    "name": "test_endless",
                    "params": {"spin": 20_000},
                },  # never converges: stopped at the deadline
                {"name": "test_endless", "params": {"spin": 10**12}},  # stuck in one round: killed
                {"name": "cbaa"},
            ],
            "families": [{"name": "assignment", "sizes": ["6x6"]}],
        }
    )
    result = bench(spec)
    rows = {
        (r["alg_name"], r.get("alg_p_spin", None)): r
        for r in RunStore(tmp_path, result.run_id).rows()
    }
    crash = rows[("test_crash", None)]
    assert (
        crash["trial_status"] == "error"
        and "deliberate failure in round 2" in crash["trial_message"]
    )
    assert rows[("test_endless", 20_000)]["trial_status"] == "timeout"
    assert "time limit" in rows[("test_endless", 20_000)]["trial_message"]
    killed = rows[("test_endless", 10**12)]
    assert killed["trial_status"] == "timeout" and "killed" in killed["trial_message"]
    assert rows[("cbaa", None)]["trial_status"] == "done"
    assert result.counts == {"error": 1, "timeout": 2, "done": 1}


def test_round_limit_is_a_stored_outcome(tmp_path):
    spec = spec_from_dict(
        {
            "bench": {
                "seeds": 1,
                "out": str(tmp_path),
                "runtime": "local",
                "max_rounds": 2,
                "optimum": False,
            },
            "allocators": [{"name": "cbba"}],
            "families": [{"name": "tdr", "sizes": ["20x5"], "params": {"comm": "line"}}],
        }
    )
    result = bench(spec)
    (row,) = RunStore(tmp_path, result.run_id).rows()
    assert row["trial_status"] == "done" and row["m_converged"] is False and row["m_rounds"] == 2
    assert "round limit" in row["trial_message"]


@pytest.mark.parametrize(
    "text,field",
    [
        (
            '[[allocators]]\nname = "cbbx"\n[[families]]\nname = "tdr"\nsizes = ["5x2"]\n',
            "allocators[0].name",
        ),
        (
            '[[allocators]]\nname = "cbba"\n[[families]]\nname = "tdr"\nsizes = ["5by2"]\n',
            "families[0].sizes[0]",
        ),
        (
            '[[allocators]]\nname = "cbba"\nparams = { score = "best" }\n[[families]]\nname = "tdr"\nsizes = ["5x2"]\n',
            "allocators[0].params.score",
        ),
        (
            '[bench]\nseeds = "three"\n[[allocators]]\nname = "cbba"\n[[families]]\nname = "tdr"\nsizes = ["5x2"]\n',
            "bench.seeds",
        ),
        ("[bench]\ncolour = 1\n", "bench.colour"),
        (
            '[[allocators]]\nname = "cbba"\n[[families]]\nname = "tdr"\nsizes = ["5x2"]\nparams = { comm = "mesh" }\n',
            "families[0].params.comm",
        ),
        (
            '[[allocators]]\nname = "cbba"\n[[families]]\nname = "tsplib"\ninstances = ["eil52"]\n',
            "families[0]",
        ),
        ('[[allocators]\nname = "cbba"\n', "(syntax)"),
    ],
)
def test_malformed_specs_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        from harness.trials import expand

        expand(load_spec(path))
    assert str(path) in str(err.value) and field in str(err.value) and "expected" in str(err.value)


def test_a_bad_spec_loses_nothing_already_stored(tmp_path):
    done = bench(small_spec(tmp_path))
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    bad = small_spec(tmp_path).to_dict()
    bad["families"][0]["sizes"] = ["0x3"]
    with pytest.raises(SpecError):
        spec_from_dict(bad)
    with pytest.raises(SpecError, match="resume"):
        bench(small_spec(tmp_path, seeds=3), run_id=done.run_id, resume=True)  # another spec
    after = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert before == after


@pytest.mark.slow
def test_cli_bench_query_and_list(tmp_path):
    out = tmp_path / "res"
    r = harness_cli(
        *bench_argv("cbaa,greedy_nn,hungarian", "assignment", "5x5,6x4", 2),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (
        "cbaa" in r.stdout and "greedy_nn" in r.stdout and "5x5" in r.stdout and "2/2" in r.stdout
    )
    # not a terminal (a log, a pipe): progress lines instead of a bar, the last one at 100%
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("trials ") and "elapsed" in ln]
    assert lines and lines[-1].startswith("trials 12/12 (100%): done 12;"), r.stdout

    def query(sql, *more):
        return harness_cli("query", sql, "--results", str(out), *more, cwd=tmp_path)

    counts = "SELECT alg_name, count(*) AS n FROM trials GROUP BY 1 ORDER BY 1"
    q = query(counts, "--format", "csv")
    assert q.returncode == 0, q.stderr
    assert q.stdout.splitlines() == ["alg_name,n", "cbaa,4", "greedy_nn,4", "hungarian,4"]
    j = query("SELECT count(*) AS n FROM runs", "--format", "json")
    assert json.loads(j.stdout) == [{"n": 1}]
    pq_path = tmp_path / "counts.parquet"
    p = query(counts, "--format", "parquet", "--output", str(pq_path))
    assert p.returncode == 0, p.stderr
    assert pq.read_table(pq_path).to_pylist() == [
        {"alg_name": "cbaa", "n": 4},
        {"alg_name": "greedy_nn", "n": 4},
        {"alg_name": "hungarian", "n": 4},
    ]
    two = harness_cli(  # several --results are read together (here the same store twice)
        "query", counts, "--results", str(out), "--results", str(out), "--format", "csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert two.returncode == 0 and two.stdout.splitlines()[1] == "cbaa,8"
    rep = harness_cli("report", "--results", str(out), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    page = (out / "report" / "report.html").read_text()
    assert all(a in page for a in ("cbaa", "greedy_nn", "hungarian")) and "<svg" in page
    assert (out / "report" / "report.md").exists()
    nofile = harness_cli("query", "SELECT 1", "--format", "parquet", cwd=tmp_path)
    assert nofile.returncode == 2 and "--output" in nofile.stderr
    bad_sql = harness_cli("query", "SELECT * FROM nowhere", "--results", str(out), cwd=tmp_path)
    assert bad_sql.returncode == 2 and "nowhere" in bad_sql.stderr
    ls = harness_cli("list", "allocators", cwd=tmp_path)
    assert ls.returncode == 0 and "cbba" in ls.stdout and "milp" in ls.stdout
    fams = harness_cli("list", "families", cwd=tmp_path)
    assert "tsplib" in fams.stdout and "solomon" in fams.stdout


def test_cli_rejects_bad_input_with_exit_2(tmp_path):
    r = harness_cli(
        "bench", "--family", "assignment", "--size", "5by5", "--out", str(tmp_path), cwd=tmp_path
    )
    assert r.returncode == 2 and "size" in r.stderr and "TASKSxAGENTS" in r.stderr
    r = harness_cli("bench", "--allocators", "nope", "--out", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "nope" in r.stderr
    assert not list(tmp_path.glob("*/trials"))
    r = harness_cli("query", "SELECT * FROM nowhere", "--results", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "no stored trials" in r.stderr  # an empty root is no store


def test_example_spec_in_the_docs_is_valid():
    from harness.trials import expand

    trials, instances, notes = expand(
        load_spec(Path(__file__).resolve().parents[1] / "docs/specs/example.toml")
    )
    assert len(trials) > 100 and any(t.allocator == "milp" for t in trials)


@pytest.mark.slow
def test_optima_are_cached_across_runs_and_failed_ones_retried(tmp_path):
    class Count(Observer):
        def started(self, run_id, total, reused, optima):
            self.optima = optima

    first_obs, second_obs = Count(), Count()
    first = bench(small_spec(tmp_path), observer=first_obs)
    second = bench(small_spec(tmp_path), observer=second_obs)
    assert first_obs.optima == 10 and second_obs.optima == 0  # computed once, then cached
    store = RunStore(tmp_path, second.run_id)
    assert json.loads((first.run_dir / "manifest.json").read_text())["status"] == "done"
    hashes = {r["inst_hash"] for r in store.rows()}
    assert len(list((tmp_path / "optima").glob("*.parquet"))) == len(hashes)
    # a failed optimum is computed again by the next run
    victim = sorted(hashes)[0]
    row = store.read_optimum(victim)
    store.write_optimum({**row, "opt_status": "error", "opt_value": None, "opt_note": "test"})
    bench(small_spec(tmp_path, cache=False))  # the trials run again, so their optima are needed
    assert store.read_optimum(victim)["opt_status"] == "optimal"
