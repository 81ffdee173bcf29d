"""Running the ``harness`` command line from tests, as a user's shell would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what a test's workers (pool processes, Ray actors) need to find tests.faulty_allocators
FAULTY_ENV = {"HARNESS_EXTRA_ALLOCATORS": "tests.faulty_allocators", "PYTHONPATH": str(ROOT)}


@contextlib.contextmanager
def faulty_env() -> Iterator[dict[str, str]]:
    """``FAULTY_ENV`` in this process's environment (inherited by what it starts) and the
    allocator registry, for a module-scoped fixture; everything as it was afterwards."""
    import allocators

    old = {k: os.environ.get(k) for k in FAULTY_ENV}
    os.environ.update(FAULTY_ENV)
    allocators.available.cache_clear()
    try:
        yield dict(FAULTY_ENV)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        allocators.available.cache_clear()


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
