"""The command line as a new user meets it: lists wherever a flag takes names, errors that
name the flag typed and the nearest valid name, a run with nothing to do, Ctrl-C, and query
output that stays readable."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from harness.errors import SpecError
from harness.spec import apply_overrides, default_spec
from tests.cli import ROOT, harness_cli


def test_families_sizes_and_comms_take_lists():
    spec = apply_overrides(
        default_spec(),
        family="assignment,tdr,solomon",
        sizes_csv="5x2,8x3",
        instances_csv="C101",
        family_params={"comm": ["full", "ring"]},
    )
    by = {f.name: f for f in spec.families}
    assert list(by) == ["assignment", "tdr", "solomon"]
    assert [tuple(s) for s in by["tdr"].sizes] == [(5, 2), (8, 3)]
    assert by["solomon"].instances == ["C101"]
    assert by["assignment"].grid["comm"] == ["full", "ring"]


@pytest.mark.parametrize(
    ("kwargs", "flag", "hint"),
    [
        ({"allocators_csv": "cbba,cbbb"}, "--allocators", "did you mean cbba?"),
        ({"family": "tdrr"}, "--family", "did you mean tdr?"),
        ({"family": "tdr", "sizes_csv": "10x4,10y4"}, "--size", "like '10x5'"),
    ],
)
def test_errors_name_the_flag_typed_and_the_nearest_name(kwargs, flag, hint):
    with pytest.raises(SpecError) as err:
        apply_overrides(default_spec(), **kwargs)
    assert err.value.source == "command line" and err.value.field == flag
    assert hint in str(err.value)


def test_a_run_with_nothing_to_do_says_so_and_leaves_no_directory(tmp_path):
    out = tmp_path / "res"
    r = harness_cli(
        "bench", "--allocators", "hungarian", "--family", "tdr", "--runtime", "local",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2
    assert "nothing to run" in r.stderr and "hungarian" in r.stderr
    assert not out.exists()


def test_query_help_names_every_view_and_wide_results_print_as_records(tmp_path):
    from reports.views import VIEWS

    text = " ".join(harness_cli("query", "--help", cwd=tmp_path).stdout.split())
    for view in VIEWS:
        assert f"{view}:" in text
    out = tmp_path / "res"
    bench = ["bench", "--allocators", "sga", "--family", "tdr", "--size", "5x2", "--seeds", "1"]
    assert (
        harness_cli(*bench, "--runtime", "local", "--out", str(out), cwd=tmp_path).returncode == 0
    )
    r = harness_cli("query", "SELECT * FROM runs", "--results", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "-- row 1 --" in r.stdout and "spec_hash" in r.stdout


def test_version_flag():
    from harness.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0


def _as_from_a_terminal() -> None:
    """SIGINT as a shell's foreground job gets it: a test runner started in the background
    ignores it, and pytest blocks it; a child would inherit both."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_a_resume_command_that_keeps_out(tmp_path):
    """Ctrl-C reaches the whole process group: the coordinator and its pool workers. Sent once
    the first trial is stored (the plain progress line says so), not after a sleep."""
    out = tmp_path / "res"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    argv = ["bench", "--allocators", "cbba", "--family", "tdr", "--size", "300x30",
            "--seeds", "60", "--runtime", "local", "--no-optimum", "--out", str(out)]  # fmt: skip
    p = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *argv], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_as_from_a_terminal,
    )  # fmt: skip
    for line in p.stdout:
        if line.startswith("trials "):  # a progress line: some trials are stored
            break
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130
    assert "Traceback" not in err
    lines = [ln for ln in " ".join(err.split()).split("interrupted:") if ln.strip()]
    assert len(lines) == 1
    (run,) = [d.name for d in out.iterdir() if d.is_dir() and d.name != "optima"]
    assert f"harness bench --resume {run} --out {out}" in " ".join(err.split())


def test_ctrl_c_is_not_lost_when_a_library_swallows_keyboardinterrupt():
    """pyarrow swallows a KeyboardInterrupt raised while ``pa.array`` looks for pandas; the
    run loop still stops, at its next check, because the handler also sets a flag."""
    import threading

    from harness.bench import CtrlC

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        with contextlib.suppress(KeyboardInterrupt):  # what the library does
            signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()
    assert signal.getsignal(signal.SIGINT) is before
