"""Figures of the ray runtime (docs/benchmarks.md): actor spawn time, per-trial set-up with a
reused pool, memory of the actors, and message/call rates, against the local runtime.

    python -m actors.perf spawn 8 32 128 --per 1,1,8
    python -m actors.perf rate --sizes 60x20,100x50,150x100 --per 1,5
    python -m actors.perf nn
"""

from __future__ import annotations

import argparse
import time

import ray

import allocators
from actors.runtime import hosts_needed, run_ray, spawn
from harness.runtime_local import run_local
from harness.scenarios import make_instance, parse_size


def actor_rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of all agent-actor processes on this machine (Linux /proc), in MiB:
    now (``VmRSS``) or their peak (``VmHWM``)."""
    from pathlib import Path

    total_kb = 0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"HostActor" in (proc / "cmdline").read_bytes():
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith(f"{field}:"):
                        total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


def spawn_figures(counts: list[int], pers: list[int]) -> None:
    for n, per in zip(counts, pers, strict=True):
        t0 = time.perf_counter()
        actors = spawn(hosts_needed(n, per))
        t_spawn = time.perf_counter() - t0
        inst = make_instance(
            {"family": "assignment", "size": [n, n], "seed": 0, "params": {"comm": "ring"}}
        )
        cls = allocators.get("cbaa")
        run_ray(inst, cls, {}, seed=0, actors=actors, agents_per_actor=per)  # warm-up
        t1 = time.perf_counter()
        r = run_ray(inst, cls, {}, seed=1, actors=actors, agents_per_actor=per)
        t_trial = time.perf_counter() - t1
        print(
            f"agents={n} per_actor={per} actors={len(actors)} spawn_s={t_spawn:.1f} "
            f"setup_with_pool_s={r.setup_s:.2f} trial_with_pool_s={t_trial:.2f} "
            f"actors_rss_mb={actor_rss_mb():.0f}",
            flush=True,
        )
        for a in actors:
            ray.kill(a)


def rate_figures(family: str, sizes: list[str], pers: list[int]) -> None:
    for size, per in ((s, q) for s in sizes for q in pers):
        n, m = parse_size(size)
        inst = make_instance(
            {"family": family, "size": [n, m], "seed": 0, "params": {"comm": "full"}}
        )
        cls = allocators.get("cbba")
        p = cls.resolve_params({})
        actors = spawn(hosts_needed(m, per))
        run_ray(inst, cls, p, seed=0, actors=actors, agents_per_actor=per)  # warm-up
        t0 = time.perf_counter()
        r = run_ray(inst, cls, p, seed=0, actors=actors, agents_per_actor=per)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        run_local(inst, cls, p, seed=0)
        local = time.perf_counter() - t1
        msgs = r.stats.messages
        print(
            f"cbba {size} per_actor={per}: rounds={r.rounds} messages={msgs} calls={r.calls} wall_s={wall:.2f} "
            f"msgs_per_s={msgs / wall:.0f} calls_per_s={r.calls / wall:.0f} local_wall_s={local:.2f}",
            flush=True,
        )
        for a in actors:
            ray.kill(a)


@ray.remote(num_cpus=0)
class _Echo:
    def small_value(self) -> bytes:
        return b"ok"


@ray.remote(num_cpus=0)
class _Client:
    def __init__(self, servers: list) -> None:
        self.servers = servers

    def burst(self, n: int) -> int:
        refs = [s.small_value.remote() for _ in range(n // len(self.servers)) for s in self.servers]
        ray.get(refs)
        return len(refs)


def nn_figure(total: int = 20_000) -> None:
    """Our stand-in for `ray microbenchmark`'s "n:n actor calls async" (which cannot start on
    this machine): n = max(1, CPUs // 2) client actors each fire calls at n server actors and
    wait for all of them; calls per second over all clients."""
    import os

    n = max(1, (os.cpu_count() or 2) // 2)
    servers = [_Echo.remote() for _ in range(n)]
    clients = [_Client.remote(servers) for _ in range(n)]
    ray.get([c.burst.remote(100) for c in clients])  # warm-up
    t0 = time.perf_counter()
    done = sum(ray.get([c.burst.remote(total // n) for c in clients]))
    wall = time.perf_counter() - t0
    print(f"n:n actor calls async (n={n}): {done / wall:.0f} calls/s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("spawn", "rate", "nn"))
    ap.add_argument("counts", nargs="*", type=int, default=[8, 32, 128])
    ap.add_argument("--family", default="tdr")
    ap.add_argument("--sizes", default="60x20,100x50,150x100")
    ap.add_argument("--per", default="1", help="agents per actor, comma-separated")
    args = ap.parse_args()
    pers = [int(x) for x in args.per.split(",")]
    from actors.embedded import start_embedded

    start_embedded()
    if args.what == "spawn":
        spawn_figures(args.counts, pers if len(pers) > 1 else pers * len(args.counts))
    elif args.what == "nn":
        nn_figure()
    else:
        rate_figures(args.family, args.sizes.split(","), pers)
    ray.shutdown()


if __name__ == "__main__":
    main()
