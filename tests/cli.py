"""Running the ``harness`` command line from tests, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def harness_cli(
    *args: str, cwd: Path, extra_allocators: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m harness.cli ARGS`` in ``cwd``; ``extra_allocators`` sets
    HARNESS_EXTRA_ALLOCATORS for it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if extra_allocators is not None:
        env["HARNESS_EXTRA_ALLOCATORS"] = extra_allocators
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def bench_argv(allocators: str, family: str, sizes: str, seeds: int) -> list[str]:
    """The arguments of a local ``harness bench`` of ``allocators`` on ``family`` at
    ``sizes`` with ``seeds`` seeds; a test adds its own flags after them."""
    return [
        "bench",
        "--runtime",
        "local",
        "--allocators",
        allocators,
        "--family",
        family,
        "--size",
        sizes,
        "--seeds",
        str(seeds),
    ]
