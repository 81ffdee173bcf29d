"""A damaged store: every read names the damaged file and goes on; nothing else is lost;
`harness store verify --repair` sets the damaged files aside (harness/store.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.bench import bench
from harness.spec import spec_from_dict
from tests.cli import harness_cli


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store")
    for run_id, seeds in (("a", 2), ("b", 2)):
        spec = spec_from_dict(
            {
                "bench": {"seeds": seeds, "out": str(out), "runtime": "local", "workers": 1},
                "allocators": [{"name": "greedy_nn"}, {"name": "cbaa"}],
                "families": [{"name": "assignment", "sizes": ["4x4", "5x3"]}],
            },
            "t",
        )
        bench(spec, run_id=run_id, compact=run_id == "a")  # b keeps its one-row files
    return out


def _flip(p: Path) -> None:
    """Flip one bit inside the page data of the first column (covered by its checksum)."""
    import pyarrow.parquet as pq

    col = pq.read_metadata(p).row_group(0).column(0)
    end = col.data_page_offset + col.total_compressed_size
    data = bytearray(p.read_bytes())
    data[end - 2] ^= 0x01
    p.write_bytes(bytes(data))


DAMAGE = {
    "truncated compacted": lambda r: (r / "a/trials/compacted.parquet").write_bytes(
        (r / "a/trials/compacted.parquet").read_bytes()[:200]
    ),
    "empty compacted": lambda r: (r / "a/trials/compacted.parquet").write_bytes(b""),
    "garbage one-row file": lambda r: next((r / "b/trials").glob("*.parquet")).write_bytes(
        b"PAR1 garbage"
    ),
    "truncated manifest": lambda r: (r / "b/manifest.json").write_text('{"run_id": "b", "sta'),
    "truncated optimum": lambda r: next((r / "optima").glob("*.parquet")).write_bytes(b"PAR1"),
    "flipped bit": lambda r: _flip(r / "a/trials/compacted.parquet"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_file_is_named_skipped_and_set_aside(pristine, tmp_path, kind):
    root = tmp_path / "res"
    shutil.copytree(pristine, root)
    DAMAGE[kind](root)
    outputs = []
    for args in (
        ("query", "SELECT count(*) AS n FROM trials", "--results", str(root), "--format", "csv"),
        ("report", "--results", str(root), "--out", str(tmp_path / "rep")),
        ("check", "--baseline", str(tmp_path / "none.parquet"), "--results", str(root / "a")),
    ):
        r = harness_cli(*args, cwd=tmp_path)
        outputs.append(r)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        assert r.returncode in (0, 1, 2), r.stderr
    q = outputs[0]
    if kind != "flipped bit":  # its footer is intact: only a full read (verify) finds it
        assert q.returncode == 0 and "warning" in q.stderr and "damaged" in q.stderr, q.stderr
    v = harness_cli("store", "verify", "--results", str(root), cwd=tmp_path)
    assert v.returncode == 1 and "damaged" in v.stdout, v.stdout + v.stderr
    for run in ("a", "b"):  # resuming re-runs what it cannot read, or says why it cannot
        r = harness_cli("bench", "--resume", run, "--out", str(root), cwd=tmp_path)
        assert "Traceback" not in r.stderr and r.returncode in (0, 2), r.stderr
    fixed = harness_cli("store", "verify", "--results", str(root), "--repair", cwd=tmp_path)
    # resume re-ran (and so rewrote) an unreadable one-row file; other damage is moved aside
    assert fixed.returncode == 0 and ((root / "damaged").is_dir() or kind == "garbage one-row file")
    assert harness_cli("store", "verify", "--results", str(root), cwd=tmp_path).returncode == 0
    after = harness_cli(
        "query",
        "SELECT count(*) AS n FROM trials",
        "--results",
        str(root),
        "--format",
        "csv",
        cwd=tmp_path,
    )
    assert after.returncode == 0 and "warning" not in after.stderr, after.stderr
    n = int(after.stdout.splitlines()[1])
    assert n >= 8  # at most the damaged file's rows are gone: the other run's rows all remain
