"""Hostile input: every malformed spec, flag, instance file or name gets exit status 2 and a
message naming the file or flag, the field and what was expected; nothing is stored and no
traceback is shown. One table of inputs and expected messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli import harness_cli

ROOT = Path(__file__).resolve().parents[1]
BINARY = bytes(range(256)) * 4
BENCH = ["bench", "--runtime", "local", "--seeds", "1", "--no-optimum"]
ASSIGN = [*BENCH, "--allocators", "greedy_nn", "--family", "assignment", "--size", "4x4"]


def _datasets(tmp: Path) -> Path:
    """A datasets folder of damaged files, with the real best-known tables."""
    d = tmp / "datasets"
    for sub in ("tsplib", "mtsp_lkh3", "solomon", "li_lim_100", "cordeau_darp"):
        (d / sub).mkdir(parents=True)
    shutil.copy(ROOT / "datasets" / "best_known.csv", d / "best_known.csv")
    shutil.copy(
        ROOT / "datasets" / "mtsp_lkh3" / "best_known.csv", d / "mtsp_lkh3" / "best_known.csv"
    )
    for sub, name in (("tsplib", "bin.tsp"), ("mtsp_lkh3", "bin.tsp"), ("solomon", "bin.txt"),
                      ("li_lim_100", "bin.txt"), ("cordeau_darp", "bin.txt")):  # fmt: skip
        (d / sub / name).write_bytes(BINARY)
    (d / "tsplib" / "fifty.tsp").write_text(
        "NAME : fifty\nTYPE : TSP\nDIMENSION : fifty\nEDGE_WEIGHT_TYPE : EUC_2D\n"
        "NODE_COORD_SECTION\n1 0 0\n2 1 1\nEOF\n"
    )
    (d / "li_lim_100" / "header.txt").write_text("25\t200\t1\n")
    (d / "li_lim_100" / "nanveh.txt").write_text(
        "nan\t200\t1\n0\t40\t50\t0\t0\t1236\t0\t0\t0\n1\t45\t68\t-10\t912\t967\t90\t0\t2\n"
        "2\t45\t70\t10\t825\t870\t90\t1\t0\n"
    )
    (d / "cordeau_darp" / "inf.txt").write_text(
        "inf 32 480 3 30\n0 0 0 0 0 0 1440\n1 -1 -5 3 1 0 1440\n2 1 5 3 1 0 1440\n"
    )
    (d / "mtsp_lkh3" / "eil51.tsp").write_text(
        (ROOT / "datasets" / "mtsp_lkh3" / "eil51.tsp").read_text()
    )
    return d


CASES = [
    # (id, arguments (with {tmp} for the test folder), substrings the error must hold)
    ("nan time limit", [*ASSIGN, "--time-limit", "nan"], ["bench.time_limit", "finite"]),
    ("inf time limit", [*ASSIGN, "--time-limit", "inf"], ["bench.time_limit", "finite"]),
    (
        "nan optimum limit",
        ["bench", "{tmp}/nan.toml"],
        ["nan.toml", "bench.optimum_time_limit", "finite"],
    ),
    (
        "huge seeds",
        [*ASSIGN[:-4], "--seeds", "100000000", "--family", "assignment", "--size", "4x4"],
        ["bench.seeds", "at most 100,000"],
    ),
    (
        "huge size",
        [*BENCH, "--family", "assignment", "--size", "1000000x1000"],
        ["--size", "at most 20,000 tasks", "1000000x1000"],
    ),
    ("binary spec", ["bench", "{tmp}/binary.toml"], ["binary.toml", "a text file", "binary data"]),
    ("spec is a directory", ["bench", "{tmp}"], ["not a directory"]),
    ("out is a file", [*ASSIGN, "--out", "{tmp}/afile"], ["--out", "afile", "writable directory"]),
    ("run id outside out", [*ASSIGN, "--run-id", "../../x"], ["--run-id", "a name of letters"]),
    (
        "tsplib binary",
        [*BENCH, "--family", "tsplib", "--instances", "bin"],
        ["bin.tsp", "a text file"],
    ),
    (
        "mtsp_lkh3 binary",
        [*BENCH, "--family", "mtsp_lkh3", "--instances", "bin-m2"],
        ["bin.tsp", "a text file"],
    ),
    (
        "solomon binary",
        [*BENCH, "--family", "solomon", "--instances", "bin"],
        ["bin.txt", "a text file"],
    ),
    (
        "li_lim binary",
        [*BENCH, "--family", "li_lim", "--instances", "bin"],
        ["bin.txt", "a text file"],
    ),
    (
        "cordeau binary",
        [*BENCH, "--family", "cordeau_darp", "--instances", "bin"],
        ["bin.txt", "a text file"],
    ),
    (
        "tsplib dimension",
        [*BENCH, "--family", "tsplib", "--instances", "fifty"],
        ["fifty.tsp", "DIMENSION", "a whole number"],
    ),
    (
        "li_lim header only",
        [*BENCH, "--family", "li_lim", "--instances", "header"],
        ["header.txt", "rows", "a depot row"],
    ),
    (
        "li_lim nan vehicles",
        [*BENCH, "--family", "li_lim", "--instances", "nanveh"],
        ["nanveh.txt", "line 1", "finite numbers"],
    ),
    (
        "cordeau inf header",
        [*BENCH, "--family", "cordeau_darp", "--instances", "inf"],
        ["inf.txt", "line 1", "finite numbers"],
    ),
    (
        "tsplib path outside",
        [*BENCH, "--family", "tsplib", "--instances", "../mtsp_lkh3/eil51"],
        ["tsplib", "instance", "no path"],
    ),
    (
        "instances of a generated family",
        [*BENCH, "--family", "tdr", "--instances", "eil51"],
        ["--instances", "tdr is generated"],
    ),
    (
        "sizes of a dataset family",
        [*BENCH, "--family", "tsplib", "--size", "5x5"],
        ["--size", "tsplib is a dataset"],
    ),
    (
        "partition of agent 99",
        [*ASSIGN, "--faults", "{partition = {groups = [[0], [99]]}}"],
        ["faults[0].partition.groups", "agent ids below 4"],
    ),
    ("rgg radius", [*ASSIGN, "--comm", "rgg", "--faults", "{}"], None),  # radius via spec below
    ("negative rgg radius", ["bench", "{tmp}/rgg.toml"], ["params.radius", "a finite number > 0"]),
    (
        "trailing toml after faults",
        [*ASSIGN, "--faults", "{}\nextra = 1"],
        ["--faults[0]", "TOML inline table"],
    ),
    ("same faults twice", ["bench", "{tmp}/drop0.toml"], ["faults[1]", "same faults", "drop0"]),
    ("brackets in a message", ["bench", "{tmp}/brackets.toml"], ["[[allocators]]", "[[families]]"]),
]

SPECS = {
    "nan.toml": "[bench]\noptimum_time_limit = nan\n[[allocators]]\nname = 'cbba'\n[[families]]\nname = 'tdr'\nsizes = ['5x3']\n",
    "rgg.toml": "[bench]\nruntime = 'local'\n[[allocators]]\nname = 'cbba'\n[[families]]\nname = 'tdr'\nsizes = ['5x3']\nparams = {comm = 'rgg', radius = -5}\n",
    "drop0.toml": "[bench]\nruntime = 'local'\n[[allocators]]\nname = 'cbba'\n[[families]]\nname = 'tdr'\nsizes = ['5x3']\n[[faults]]\n[[faults]]\nname = 'drop0'\ndrop = 0.0\n",
    "brackets.toml": "[[bogus]]\nname = 'x'\n",
}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    t = tmp_path_factory.mktemp("inputs")
    _datasets(t)
    (t / "binary.toml").write_bytes(BINARY)
    (t / "afile").write_text("not a folder")
    for name, text in SPECS.items():
        (t / name).write_text(text)
    return t


@pytest.mark.parametrize(
    ("case", "args", "expect"), [c for c in CASES if c[2]], ids=[c[0] for c in CASES if c[2]]
)
def test_bad_input_is_refused_with_a_clear_message(tmp, case, args, expect):
    import os

    env_datasets = str(tmp / "datasets")
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    out = tmp / "out" / case.replace(" ", "_")
    if "--out" not in argv:
        argv += ["--out", str(out)]
    old = os.environ.get("HARNESS_DATASETS")
    os.environ["HARNESS_DATASETS"] = env_datasets
    try:
        r = harness_cli(*argv, cwd=tmp)
    finally:
        if old is None:
            os.environ.pop("HARNESS_DATASETS")
        else:
            os.environ["HARNESS_DATASETS"] = old
    text = " ".join(r.stderr.split())
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-1500:])
    assert "Traceback" not in r.stderr, r.stderr
    for e in expect:
        assert e in text, (e, text)
    assert not list(out.glob("*/trials/*.parquet"))  # nothing ran, nothing stored
