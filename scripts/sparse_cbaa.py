"""CBAA on ``assignment`` with 5,000 agents on a sparse graph (rgg, about 10 neighbours each),
on the local runtime and on Ray (agents packed in one host actor per CPU), in one run: wall
times, the same plans, and the host actors' peak memory (docs/benchmarks.md).

    python scripts/sparse_cbaa.py [--agents 5000] [--tasks 100] [--hosts 2] [--name cbaa]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=5000)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--name", default="cbaa")
    ap.add_argument("--degree", type=float, default=10.0)
    args = ap.parse_args()

    import ray

    import allocators
    from actors.embedded import start_embedded
    from actors.runtime import run_ray, spawn
    from actors.transport_perf import hosts_peak_mb, sparse_radius
    from harness.runtime_local import run_local
    from harness.scenarios import make_instance

    n = args.agents
    radius = sparse_radius(n, args.degree)
    recipe = {"family": "assignment", "size": [args.tasks, n], "seed": 0}
    inst = make_instance({**recipe, "params": {"comm": "rgg", "radius": radius}})
    degree = 2 * len(inst.comm.edges) / n
    print(f"{n} agents, {args.tasks} tasks, rgg radius {radius:.2f}: {degree:.1f} neighbours "
          f"each, diameter {inst.comm.diameter(n)}", flush=True)  # fmt: skip
    cls = allocators.get(args.name)
    p = cls.resolve_params({})
    t0 = time.perf_counter()
    local = run_local(inst, cls, p, seed=0)
    local_s = time.perf_counter() - t0
    print(f"local: {local_s:.1f} s, {local.rounds} rounds, {local.stats.messages:,} messages",
          flush=True)  # fmt: skip
    start_embedded()
    per = -(-n // args.hosts)
    pool = spawn(args.hosts)
    t1 = time.perf_counter()
    remote = run_ray(inst, cls, p, seed=0, actors=pool, agents_per_actor=per)
    ray_s = time.perf_counter() - t1
    same = [q.to_dict() for q in remote.plans] == [q.to_dict() for q in local.plans]
    print(f"ray ({args.hosts} hosts): {ray_s:.1f} s (set-up {remote.setup_s:.1f} s), "
          f"{remote.rounds} rounds, {remote.stats.messages:,} messages; same plans: {same}; "
          f"ray/local {ray_s / local_s:.2f}x; host actors' peak {hosts_peak_mb():,.0f} MiB",
          flush=True)  # fmt: skip
    ray.shutdown()
    sys.exit(0 if same and remote.stats.messages == local.stats.messages else 1)


if __name__ == "__main__":
    main()
