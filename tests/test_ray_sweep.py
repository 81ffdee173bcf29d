"""A sweep spread over a 3-node Ray cluster on this machine (ray.cluster_utils.Cluster):
trials of the local runtime run as Ray work on every node, a hung trial on any node is killed
and stored as ``timeout``, a node that dies loses no row, and ``--resume`` finishes a run
whose driver was SIGKILLed. Trials held in flight wait on a Unix socket the test answers
(tests/faulty_allocators.py ``test_wait``): nothing here sleeps or polls."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from harness.bench import bench  # noqa: E402
from harness.spec import spec_from_dict  # noqa: E402
from harness.store import RunStore  # noqa: E402
from tests.cli import bench_argv, faulty_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    with faulty_env():
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        workers = [c.add_node(num_cpus=1) for _ in range(2)]
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False)
        c.extra = workers  # the nodes a test may remove
        yield c
        ray.shutdown()
        c.shutdown()


def _alive() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def _spec(out: Path, allocs: list[dict], seeds: int, **settings) -> object:
    return spec_from_dict(
        {
            "bench": {
                "seeds": seeds,
                "out": str(out),
                "runtime": "local",
                "dispatch": "ray",
                "optimum": False,
                **settings,
            },
            "allocators": allocs,
            "families": [{"name": "assignment", "sizes": ["4x4"]}],
        },
        "test",
    )


def _rows(out: Path, run_id: str) -> list[dict]:
    return RunStore(out, run_id).rows()


@pytest.fixture
def announce(tmp_path, monkeypatch):
    """A Unix socket the ``test_wait`` trials report to; yields (listener, accept)."""
    where = str(tmp_path / "announce.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(where)
    listener.listen(8)
    listener.settimeout(180)
    monkeypatch.setenv("HARNESS_TEST_ANNOUNCE", where)

    def accept() -> tuple[socket.socket, int, str]:
        conn, _ = listener.accept()
        pid, node = conn.recv(256).decode().split()
        return conn, int(pid), node

    yield accept
    listener.close()


def test_every_node_runs_trials_and_a_hung_one_is_killed(cluster, tmp_path):
    """Three hung trials go first, one to each node's worker (a CPU each); each is killed past
    its hard limit and stored as ``timeout`` with its node; fresh workers run the rest."""
    nodes = _alive()
    assert len(nodes) == 3
    spec = _spec(
        tmp_path,
        [
            {"name": "test_endless", "params": {"spin": 10**13}},  # one round never ends
            {"name": "greedy_nn"},
        ],
        seeds=3,
        time_limit=1.0,
    )
    res = bench(spec, run_id="hung")
    rows = _rows(tmp_path, "hung")
    assert len(rows) == 6 and res.counts == {"timeout": 3, "done": 3}
    hung = [r for r in rows if r["alg_name"] == "test_endless"]
    assert {r["trial_status"] for r in hung} == {"timeout"}
    assert all("killed past its time limit" in r["trial_message"] for r in hung)
    assert {r["trial_node"] for r in hung} == nodes  # one on each node, the head's and two more
    assert {r["trial_node"] for r in rows} == nodes
    manifest = RunStore(tmp_path, "hung").read_manifest()
    assert manifest["dispatch"] == "ray" and manifest["workers"] == 3


def test_a_node_that_dies_loses_no_row(cluster, tmp_path, announce):
    """Three trials held in flight, one per node, a fourth waiting for a worker; a non-head
    node is removed under its trial. That trial runs again on a live node, the fourth runs
    too, and every trial ends with a final row."""
    head = cluster.head_node.node_id
    spec = _spec(tmp_path, [{"name": "test_wait"}], seeds=4, time_limit=120.0)
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(res=bench(spec, run_id="lost")))
    runner.start()
    held = [announce() for _ in range(3)]  # all three trials are running now
    assert {node for _, _, node in held} == _alive()
    victim = next(n for n in cluster.extra if n.node_id != head)
    cluster.remove_node(victim, allow_graceful=False)  # its raylet and object store
    for conn, pid, node in held:
        if node == victim.node_id:
            os.kill(pid, signal.SIGKILL)  # a dead machine takes its worker processes too
        else:
            conn.sendall(b"1")
        conn.close()
    for _ in range(2):  # the lost trial run again and the fourth, on the nodes still alive
        conn, _, node = announce()
        assert node != victim.node_id
        conn.sendall(b"1")
        conn.close()
    runner.join(timeout=300)
    assert not runner.is_alive()
    rows = _rows(tmp_path, "lost")
    assert len(rows) == 4 and {r["trial_status"] for r in rows} == {"done"}
    assert victim.node_id not in {r["trial_node"] for r in rows}
    assert any("again on another node" in n for n in out["res"].notes)
    cluster.add_node(num_cpus=1)  # the next test gets three nodes again
    cluster.wait_for_nodes()
    cluster.extra = [n for n in cluster.extra if n is not victim] + [cluster.list_all_nodes()[-1]]


def test_resume_after_the_driver_is_killed(cluster, tmp_path, announce):
    """The driver (``harness bench --address``) is SIGKILLed while its trials run; its
    actors die with it, and ``--resume`` runs what was in flight and keeps what was done."""
    argv = [
        *bench_argv("greedy_nn,test_wait", "assignment", "4x4", 2),
        "--no-optimum",
        "--address",
        cluster.address,
        "--run-id",
        "killed",
        "--out",
        str(tmp_path),
    ]
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *argv],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        held = [announce(), announce()]  # both test_wait trials are in flight
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    for conn, _, _ in held:
        conn.close()
    before = {r["trial_key"]: r for r in _rows(tmp_path, "killed")}
    waiting = [k for k, r in before.items() if r["alg_name"] == "test_wait"]
    assert {before[k]["trial_status"] for k in waiting} == {"interrupted"}
    resumed = subprocess.Popen(  # the run's own spec, from its manifest
        [
            sys.executable,
            "-m",
            "harness.cli",
            "bench",
            "--resume",
            "killed",
            "--address",
            cluster.address,
            "--out",
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for _ in range(2):  # the interrupted trials run again
        conn, _, _ = announce()
        conn.sendall(b"1")
        conn.close()
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    after = {r["trial_key"]: r for r in _rows(tmp_path, "killed")}
    assert set(after) == set(before) and len(after) == 4
    assert {r["trial_status"] for r in after.values()} == {"done"}
    for k, r in before.items():  # what was done before the kill is kept, not run again
        if r["trial_status"] == "done":
            assert after[k]["trial_finished"] == r["trial_finished"]
