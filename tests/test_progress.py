"""Progress as a user reads it: plain lines in a log every tenth of the work or 30 s, exact
optima counted on their own, and a time left weighted by trial size."""

from __future__ import annotations

import re

from harness.cli import Eta, Ticker
from tests.cli import bench_argv, harness_cli


def test_a_log_line_every_tenth_or_every_30_seconds():
    t = Ticker(100, every=30.0, start=0.0)
    marks = [k for k in range(1, 101) if t.tick(now=0.0)]
    assert marks == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    slow = Ticker(1000, every=30.0, start=0.0)
    assert [slow.tick(now=31.0 * k) for k in (1, 2)] == [True, True]  # 30 s passed each time
    assert not slow.tick(now=62.5)


def test_time_left_is_weighted_by_trial_size():
    eta = Eta()
    eta.plan([("cbba", "10x2", 20)] * 5 + [("cbba", "100x10", 1000)] * 5)
    eta.t0 = 0.0
    for _ in range(5):
        eta.done("cbba", "10x2", 1.0)
    # one size done: the plain mean, 1 s per trial, at the run's rate (5 s of work in 5 s)
    assert eta.seconds(now=5.0) == 5.0
    eta.done("cbba", "100x10", 10.0)
    # the big size is now known: 4 more of 10 s each, at the rate 15 s of work in 15 s
    assert eta.seconds(now=15.0) == 40.0
    assert eta.text() != "-:--:--"


def test_unknown_sizes_follow_the_line_through_the_done_ones():
    eta = Eta()
    eta.plan([("a", "1x1", 10), ("a", "2x2", 20), ("a", "3x3", 30)])
    eta.t0 = 0.0
    eta.done("a", "1x1", 1.0)
    eta.done("a", "2x2", 2.0)
    assert eta.seconds(now=3.0) == 3.0  # 30 units on the line 0.1 s per unit


def test_a_log_shows_optima_and_trials_at_most_every_tenth(tmp_path):
    argv = bench_argv("sga,cbba", "tdr", "6x2,8x3", 10)
    r = harness_cli(*argv, "--out", str(tmp_path / "res"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trials = re.findall(r"^trials (\d+)/40 \((\d+)%\)", r.stdout, flags=re.M)
    optima = re.findall(r"^exact optima (\d+)/20", r.stdout, flags=re.M)
    assert 1 <= len(trials) <= 11 and trials[-1][0] == "40"
    assert 1 <= len(optima) <= 11 and optima[-1] == "20"
    assert "left" in r.stdout
