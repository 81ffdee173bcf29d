"""The result store keeps every column's type, and reads of it never break on what a run
did not store (harness/store.py, reports/views.py)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import duckdb
import pytest

from harness.bench import bench
from harness.spec import DEFAULT_SPEC, spec_from_dict
from harness.store import RunStore, column_kind, row_table, typed_trials_sql
from reports.views import connect
from tests.cli import bench_argv, harness_cli

ROOT = Path(__file__).resolve().parents[1]
#: the smallest size or first instance of each family entry
SMALL = {
    "logistics": "3x1",
    "heterogeneous": "4x10",
    "mtsp": "6x2",
    "tdr": "8x3",
    "assignment": "5x5",
}


def _paper_and_default_pairs() -> dict:
    """One spec running every (family, allocator) pair of the default and paper specs, on the
    smallest instances, one seed each."""
    allocs: dict[str, dict] = {}
    fams: dict[str, dict] = {}
    specs = [copy.deepcopy(DEFAULT_SPEC)] + [
        tomllib.loads(p.read_text()) for p in sorted((ROOT / "docs" / "specs").glob("*.toml"))
    ]
    for d in specs:
        for a in d.get("allocators", []):
            params = {
                k: (v[0] if isinstance(v, list) else v) for k, v in a.get("params", {}).items()
            }
            allocs.setdefault(a["name"], {"name": a["name"], "params": params})
        for f in d.get("families", []):
            entry = {"name": f["name"]}
            if "sizes" in f:
                entry["sizes"] = [SMALL.get(f["name"], "6x2")]
            else:
                entry["instances"] = f["instances"][:1]
            fams.setdefault(f["name"], entry)
    return {"allocators": list(allocs.values()), "families": list(fams.values())}


@pytest.mark.slow
def test_every_column_keeps_its_type_through_compaction(tmp_path):
    """Trials of every family and allocator the default and paper specs run, one-row files
    first, then compacted: each column has one declared type before and after (a metric that
    is null in one row, like m_satisfaction outside FMMRA, once turned the column to text)."""
    d = _paper_and_default_pairs()
    d["bench"] = {
        "seeds": 1,
        "runtime": "local",
        "out": str(tmp_path),
        "workers": 2,
        "optimum_time_limit": 5.0,
        "time_limit": 60.0,
    }
    spec = spec_from_dict(d, "pairs")
    store = RunStore(tmp_path, "pairs")
    res = bench(spec, run_id="pairs", compact=False)
    assert res.run_id == "pairs" and store.single_files()
    con = duckdb.connect()
    before = dict(
        (n, t)
        for n, t, *_ in con.execute(
            f"DESCRIBE ({typed_trials_sql(con, store.single_files())})"
        ).fetchall()
    )
    assert store.compact() > 0 and not store.single_files()
    after = {n: t for n, t, *_ in connect([tmp_path]).execute("DESCRIBE trials").fetchall()}
    assert before == after
    want = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "text": "VARCHAR"}
    for name, typ in after.items():
        kind = column_kind(name)
        if kind is not None:
            assert typ == want[kind] or (kind == "int" and typ == "DOUBLE"), (name, typ)
    assert after["m_satisfaction"] == "DOUBLE"
    n = connect([tmp_path]).execute("SELECT avg(m_satisfaction), count(*) FROM trials").fetchall()
    assert n[0][1] == len(store.rows())


def test_a_null_metric_is_stored_as_a_number_not_text(tmp_path):
    t = row_table([{"trial_key": "a", "m_satisfaction": None, "m_new_metric": None}])
    assert str(t.schema.field("m_satisfaction").type) == "double"
    assert str(t.schema.field("m_new_metric").type) == "double"
    assert str(row_table([{"m_opt_status": None}]).schema.field("m_opt_status").type) == "string"


@pytest.mark.slow
def test_a_run_with_no_done_trial_still_summarises_and_reports(tmp_path):
    """Every trial errs: no metric column is ever stored. bench must still print its summary
    and exit 0, and report, query and check must work (a BinderException on m_gap once)."""
    out = tmp_path / "res"
    r = harness_cli(
        *bench_argv("test_crash", "assignment", "4x4", 2),
        "--no-optimum",
        "--out",
        str(out),
        cwd=tmp_path,
        extra_allocators="tests.faulty_allocators",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error" in r.stdout
    q = harness_cli(
        "query", "SELECT count(*), avg(m_gap) FROM trials", "--results", str(out), cwd=tmp_path
    )
    assert q.returncode == 0 and "2" in q.stdout, q.stdout + q.stderr
    rep = harness_cli("report", "--results", str(out), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "error" in (tmp_path / "rep" / "report.md").read_text()


def test_query_without_a_store_says_where_it_looked(tmp_path):
    for args, expect in (
        ([], "(the default; give --results DIR)"),
        (["--results", str(tmp_path / "nonexistent")], "no such directory"),
        (["--results", str(tmp_path)], "no stored trials under"),
    ):
        r = harness_cli("query", "SELECT count(*) FROM trials", *args, cwd=tmp_path)
        assert r.returncode == 2, r.stdout
        assert expect in r.stderr.replace("\n", " "), r.stderr
        assert "Traceback" not in r.stderr


def test_the_summary_says_why_a_gap_is_missing(tmp_path):
    r = harness_cli(
        *bench_argv("cbba", "tdr", "5x3,14x3", 1),
        "--out",
        str(tmp_path / "res"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    text = " ".join(r.stdout.split())
    assert "5x3 none 1/1 0.0% optimum" in text
    assert "optimum skipped" in text and "(14 tasks > 12)" in text
    r = harness_cli(
        *bench_argv("cbba", "tdr", "5x3", 1),
        "--no-optimum",
        "--out",
        str(tmp_path / "r2"),
        cwd=tmp_path,
    )
    assert "no reference" in r.stdout, r.stdout
