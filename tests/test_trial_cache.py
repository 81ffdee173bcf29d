"""The trial cache: a rerun reuses stored rows of the same trial key and code version, and
only those (docs/results.md, "The trial cache")."""

from __future__ import annotations

import duckdb

from harness import bench as bench_module
from harness.bench import bench
from harness.codeversion import code_version
from harness.spec import apply_overrides, default_spec


def _spec(out, **settings):  # noqa: ANN001, ANN202
    return apply_overrides(
        default_spec(),
        allocators_csv="sga,cbba",
        family="tdr",
        sizes_csv="6x2,8x3",
        settings={"runtime": "local", "seeds": 2, "out": str(out), **settings},
    )


def _rows(run_dir):  # noqa: ANN001, ANN202
    rel = duckdb.sql(
        f"SELECT * FROM read_parquet('{run_dir}/trials/*.parquet', union_by_name = true)"
    )
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    cols = ("trial_key", "alg_name", "m_objective", "trial_cached_from")
    return sorted(tuple(r.get(c) for c in cols) for r in rows)


def test_a_rerun_takes_every_trial_from_the_cache_with_the_same_figures(tmp_path):
    first = bench(_spec(tmp_path), run_id="a")
    assert first.cached == 0 and first.counts["done"] == 8
    again = bench(_spec(tmp_path), run_id="b")
    assert again.cached == 8 and not again.counts  # nothing ran
    a, b = _rows(first.run_dir), _rows(again.run_dir)
    assert [r[:3] for r in a] == [r[:3] for r in b]
    assert {r[3] for r in b} == {first.run_id}
    forced = bench(_spec(tmp_path, cache=False), run_id="c")
    assert forced.cached == 0 and forced.counts["done"] == 8


def test_a_changed_allocator_reruns_its_trials_only(tmp_path, monkeypatch):
    bench(_spec(tmp_path), run_id="a")
    real = bench_module.code_version
    monkeypatch.setattr(
        bench_module, "code_version", lambda name: "edited" if name == "cbba" else real(name)
    )
    again = bench(_spec(tmp_path), run_id="b")
    assert again.cached == 4 and again.counts["done"] == 4
    ran = {r[1] for r in _rows(again.run_dir) if r[3] is None}
    assert ran == {"cbba"}


def test_the_same_spec_started_thrice_in_a_second_gets_three_runs(tmp_path, monkeypatch):
    from harness import store
    from harness.store import new_run_id

    monkeypatch.setattr(store.time, "strftime", lambda fmt, t: "20261203-120000")
    names = []
    for _ in range(3):
        names.append(new_run_id("abcdef123456", tmp_path))
        (tmp_path / names[-1]).mkdir()
    assert len(set(names)) == 3 and names[1] == names[0] + "-2"


def test_the_code_version_covers_the_core_and_the_allocators_module():
    assert code_version("cbba") != code_version("sga")  # their own modules differ
    assert len(code_version("cbba")) == 16
