import pytest

import allocators
from harness.conformance import CASES, check_allocator

PAIRS = [
    (name, family, case, params)
    for name, cls in allocators.available().items()
    for family in cls.families
    for case, params in CASES.get(family, [])
]


@pytest.mark.parametrize(
    "name,family,case,params", PAIRS, ids=[f"{p[0]}-{p[1]}-{p[2]}" for p in PAIRS]
)
def test_allocator_conformance(name, family, case, params):
    check_allocator(allocators.get(name), family, case, params, seed=3)


def test_every_allocator_declares_its_metadata():
    for name, cls in allocators.available().items():
        assert cls.name == name and cls.summary and cls.paper and cls.families
        cls.resolve_params({})  # defaults are valid


def test_an_outside_allocator_runs_the_shipped_checks(tmp_path):
    """A plug-in author's own module, outside this repository: `harness conformance MODULE`
    passes the sound allocator and names the broken one's conflicts (exit status 1)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "my_allocs.py").write_text(
        "from allocators.cbaa import CBAA\n"
        "from harness.api import Plan\n\n"
        "class Mine(CBAA):\n"
        "    name = 'my_cbaa'\n\n"
        "class Greedy(CBAA):\n"
        "    name = 'my_broken'\n"
        "    def plan(self):\n"
        "        return Plan(self.id, [0])  # every agent claims task 0\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}"}
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", "conformance", "my_allocs", "--family", "assignment"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    text = " ".join(r.stdout.split())
    assert r.returncode == 1, r.stdout + r.stderr
    assert "my_cbaa assignment 6x4 ok" in text
    assert "my_broken assignment 6x4 FAIL my_broken:" in text and "conflicts" in text
    assert "3 passed, 3 failed" in text
