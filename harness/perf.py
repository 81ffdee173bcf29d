"""Timing one allocator on one generated instance, for the figures recorded in docs/benchmarks.md.

    harness perf cbba --family tdr --size 60x10 --repeat 20

Runs in this process on the local runtime: instance generation is not timed; the median and
best wall time over the repeats, CPU time, and the peak RSS of the process during the runs
(the kernel's mark is reset first, so earlier work does not count) are reported.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import allocators
from harness.evaluate import evaluate
from harness.runtime_local import run_local
from harness.scenarios import get_family, make_instance, parse_size
from harness.worker import peak_rss_mb, reset_peak_rss


def measure(
    allocator: str, family: str, size: str, seed: int = 0, repeat: int = 5, comm: str = "full"
) -> dict[str, Any]:
    n, m = parse_size(size)
    get_family(family)
    inst = make_instance({"family": family, "size": [n, m], "seed": seed, "params": {"comm": comm}})
    cls = allocators.get(allocator)
    params = cls.resolve_params({})
    baseline = peak_rss_mb()
    reset_peak_rss()
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = run_local(inst, cls, params, seed=seed, max_rounds=100_000)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    metrics = evaluate(inst, result.plans)
    return {
        "allocator": allocator,
        "family": family,
        "size": size,
        "comm": comm,
        "repeat": repeat,
        "wall_median_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "cpu_median_s": statistics.median(cpus),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": baseline,
        "rounds": result.rounds,
        "messages": result.stats.messages,
        "bytes": result.stats.bytes,
        "converged": result.converged,
        "objective": metrics["m_objective"],
        "coverage": metrics["m_coverage"],
        "conflicts": metrics["m_conflicts"],
    }
