"""The coordinator under stress: trial clocks, a locked run, retries, memory, orphans."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bench import bench
from harness.errors import HarnessError
from harness.pool import Pool
from harness.scenarios import get_family
from harness.spec import spec_from_dict
from harness.store import RunStore
from tests.cli import bench_argv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def faulty(monkeypatch):
    monkeypatch.setenv("HARNESS_EXTRA_ALLOCATORS", "tests.faulty_allocators")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    import allocators

    allocators.available.cache_clear()
    yield
    allocators.available.cache_clear()


def _spec(out: Path, alg: str, params: dict | None = None, **bench_settings) -> object:
    return spec_from_dict(
        {
            "bench": {
                "seeds": 2,
                "out": str(out),
                "runtime": "local",
                "workers": 1,
                "optimum": False,
                **bench_settings,
            },
            "allocators": [{"name": alg, "params": params or {}}],
            "families": [{"name": "assignment", "sizes": ["4x4"]}],
        },
        "test",
    )


def _job(alg: str = "greedy_nn") -> dict:
    inst = get_family("assignment").make(4, 4, 1)
    from harness.trials import derive_seed
    from harness.worker import TrialJob

    return TrialJob(
        recipe={"family": "assignment", "size": [4, 4], "seed": 1, "params": {}},
        inst_hash=inst.content_hash(),
        allocator=alg,
        params={},
        seed=derive_seed(1),
        time_limit=30.0,
        max_rounds=1000,
    )


def test_a_trial_clock_starts_when_the_trial_starts():
    """A fresh worker spends about a second on imports; a hard limit of 0.2 s counted from
    submission killed every first trial (stored as timeout). Counted from the start, the 2 ms
    trial is done."""
    from harness.scenarios import make_instance

    job = _job()
    assert make_instance(job.recipe).content_hash() == job.inst_hash
    pool = Pool(1)
    try:
        pool.submit("t", job, 0.2)
        got = []
        while pool.busy():
            got += list(pool.results())
    finally:
        pool.close()
    assert len(got) == 1 and got[0][1] is not None, got
    assert got[0][1]["trial_status"] == "done"


def test_a_second_writer_of_a_run_is_refused(tmp_path):
    spec = _spec(tmp_path, "greedy_nn")
    res = bench(spec, run_id="r1")
    store = RunStore(tmp_path, "r1")
    with store.lock(), pytest.raises(HarnessError, match="another harness process .* writing"):
        bench(spec, run_id="r1", resume=True)
    again = bench(spec, run_id="r1", resume=True)  # once the holder is gone
    assert again.reused == res.total


def test_resume_retries_the_statuses_asked(tmp_path, faulty):
    spec = _spec(tmp_path, "test_endless", {"spin": 200_000}, time_limit=0.3)
    first = bench(spec, run_id="r")
    assert first.counts == {"timeout": 2}
    kept = bench(spec, run_id="r", resume=True)
    assert kept.counts == {} and kept.reused == 2  # timeout is final by default
    redo = bench(spec, run_id="r", resume=True, retry=("timeout",))
    assert redo.counts == {"timeout": 2} and redo.reused == 0


def test_a_trial_past_its_memory_limit_is_an_error_and_the_run_goes_on(tmp_path, faulty):
    spec = _spec(tmp_path, "test_hog", time_limit=60.0, memory_limit_mb=700)
    res = bench(spec, run_id="m")
    rows = RunStore(tmp_path, "m").rows()
    assert res.counts == {"error": 2}, [r["trial_message"] for r in rows]
    assert all(r["trial_message"].startswith("memory limit:") for r in rows)
    assert all("700 MB" in r["trial_message"] for r in rows)


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
    return out


@pytest.mark.slow
def test_workers_die_with_a_killed_coordinator(tmp_path):
    """The coordinator is SIGKILLed mid-trial: its workers die with it (PR_SET_PDEATHSIG).
    The trial announces its process on a Unix socket, and the test waits on pidfds, so
    nothing here polls or sleeps."""
    where = str(tmp_path / "announce.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(where)
    listener.listen(1)
    listener.settimeout(120)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HARNESS_EXTRA_ALLOCATORS": "tests.faulty_allocators",
        "HARNESS_TEST_ANNOUNCE": where,
    }
    coord = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            *bench_argv("test_endless", "assignment", "4x4", 2),
            "--no-optimum",
            "--time-limit",
            "600",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "results"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    fds: list[int] = []
    try:
        conn, _ = listener.accept()  # blocks until the trial runs (bounded by the timeout)
        with conn:
            runner = int(conn.recv(32).decode())
        workers = _children(coord.pid)
        assert runner in workers  # the trial runs in a worker, not in the coordinator
        assert list((tmp_path / "results").glob("*/trials/*.parquet"))  # its placeholder row
        fds = [os.pidfd_open(w) for w in workers]  # pinned: a reused pid cannot fool the test
    finally:
        listener.close()
        coord.send_signal(signal.SIGKILL)
        coord.wait()
    try:
        for fd in fds:  # a pidfd turns readable when its process exits
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, "a worker outlived its killed coordinator"
    finally:
        for fd in fds:
            os.close(fd)


def test_a_full_disk_stops_the_run_cleanly(tmp_path, monkeypatch):
    """Writing a trial row fails with ENOSPC: the run stops with a message naming the file,
    the rows stored before remain, no temporary file is left, and the manifest says
    'interrupted'."""
    import errno
    import json

    import pyarrow.parquet as pq

    import harness.store as store_mod

    real = pq.write_table
    calls = {"n": 0}

    def full(table, where, **kw):
        calls["n"] += 1
        if calls["n"] > 3:
            Path(where).write_bytes(b"")  # what a full disk leaves: an empty temporary file
            raise OSError(errno.ENOSPC, "No space left on device", str(where))
        return real(table, where, **kw)

    monkeypatch.setattr(store_mod.pq, "write_table", full)
    spec = _spec(tmp_path, "greedy_nn")
    with pytest.raises(HarnessError, match="No space left on device.*run stopped.*--resume r"):
        bench(spec, run_id="r", compact=False)
    run = tmp_path / "r"
    assert not list(run.rglob("*.tmp")) and not list(run.rglob(".*.tmp"))
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(store_mod.pq, "write_table", real)
    done = bench(spec, run_id="r", resume=True)
    assert done.counts.get("done", 0) + done.reused == done.total
