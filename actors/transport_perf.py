"""``harness perf transport``: message rates of the runtimes next to the ceilings measured in
the same run (docs/benchmarks.md). The message-only allocator ``chatter`` pings every
neighbour each round on a full graph; the ceilings pass the same number of tuples with no
harness around them: a bare loop in one process, and bare Ray actors (agents packed in host
actors, one batched call per host pair a round; one actor per agent calling its peers)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import ray

import allocators
from actors.runtime import hosts_needed, run_ray, spawn
from harness.runtime_local import run_local
from harness.scenarios import make_instance
from harness.transport import LEAN_GC_THRESHOLD, lean_gc


def chatter_instance(n_agents: int, comm: str = "full", radius: float = 40.0) -> Any:
    """One task, ``n_agents`` agents on a ``comm`` graph (``rgg``: of this ``radius``)."""
    params: dict[str, Any] = {"comm": comm}
    if comm == "rgg":
        params["radius"] = radius
    return make_instance(
        {"family": "assignment", "size": [1, n_agents], "seed": 0, "params": params}
    )


def sparse_radius(n_agents: int, degree: float = 10.0, side: float = 100.0) -> float:
    """The rgg radius that gives about ``degree`` neighbours each, for agents spread uniformly
    over a ``side`` x ``side`` square (edge effects aside): n pi r^2 / side^2 = degree."""
    import math

    return side * math.sqrt(degree / (math.pi * max(1, n_agents - 1)))


def bare_loop(n: int, rounds: int) -> float:
    """Messages a second of a loop that hands (sender, message) tuples to inboxes (with the
    collector settings trials run with)."""
    with lean_gc():
        return _bare_loop(n, rounds)


def _bare_loop(n: int, rounds: int) -> float:
    t0 = time.perf_counter()
    sent = 0
    for r in range(rounds):
        inboxes: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for src in range(n):
            msg = r
            for dst in range(n):
                if dst != src:
                    inboxes[dst].append((src, msg))
                    sent += 1
    return sent / (time.perf_counter() - t0)


@ray.remote(num_cpus=0, max_concurrency=4)
class _BareHost:
    """Agents ``block`` of ``n``; a round sends every local agent's message to every other
    agent, one call per other host with all its tuples."""

    def __init__(self, n: int, block: list[int], index: int) -> None:
        import gc

        gc.set_threshold(LEAN_GC_THRESHOLD, *gc.get_threshold()[1:])  # as host actors run
        self.n, self.block, self.index = n, block, index
        self.got = 0

    def peers(self, handles: list[Any], directory: list[int]) -> None:
        self.handles, self.directory = handles, directory

    def take(self, batch: list[tuple[int, int, int]]) -> int:
        inbox: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for src, dst, msg in batch:
            inbox[dst].append((src, msg))
        self.got += len(batch)
        return len(batch)

    def round(self, r: int) -> int:
        out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for src in self.block:
            for dst in range(self.n):
                if dst != src:
                    out[self.directory[dst]].append((src, dst, r))
        local = out.pop(self.index, [])
        self.take(local)
        refs = [self.handles[h].take.remote(b) for h, b in out.items()]
        return len(local) + sum(ray.get(refs))


def bare_hosts(n: int, hosts: int, rounds: int) -> float:
    """Messages a second between bare host actors, ``n`` agents packed in ``hosts``."""
    per = -(-n // hosts)
    directory = [a // per for a in range(n)]
    actors = [
        _BareHost.remote(n, [a for a in range(n) if directory[a] == h], h) for h in range(hosts)
    ]
    ray.get([a.peers.remote(actors, directory) for a in actors])
    ray.get([a.round.remote(-1) for a in actors])  # warm-up
    t0 = time.perf_counter()
    sent = 0
    for r in range(rounds):
        sent += sum(ray.get([a.round.remote(r) for a in actors]))
    rate = sent / (time.perf_counter() - t0)
    for a in actors:
        ray.kill(a)
    return rate


@ray.remote(num_cpus=0, max_concurrency=4)
class _BarePeer:
    def peers(self, handles: list[Any], index: int) -> None:
        self.others = [h for i, h in enumerate(handles) if i != index]

    def ping(self) -> bool:
        return True

    def round(self) -> int:
        ray.get([h.ping.remote() for h in self.others])
        return len(self.others)


def bare_peers(k: int, rounds: int) -> float:
    """Calls a second of ``k`` actors that each call all the others once a round."""
    actors = [_BarePeer.remote() for _ in range(k)]
    ray.get([a.peers.remote(actors, i) for i, a in enumerate(actors)])
    ray.get([a.round.remote() for a in actors])  # warm-up
    t0 = time.perf_counter()
    calls = 0
    for _ in range(rounds):
        calls += sum(ray.get([a.round.remote() for a in actors]))
    rate = calls / (time.perf_counter() - t0)
    for a in actors:
        ray.kill(a)
    return rate


def chatter_rounds(n: int, budget: float = 3_000_000, links: int | None = None) -> int:
    """Rounds that make about ``budget`` messages at ``n`` agents on a graph of ``links``
    directed links (a full graph's n (n - 1) by default); between 2 and 200."""
    links = n * (n - 1) if links is None else links
    return max(2, min(200, round(budget / max(1, links))))


def transport_figures(
    agents: list[int],
    hosts: int,
    budget: float,
    ray_too: bool = True,
    name: str = "chatter",
    comm: str = "full",
    degree: float = 10.0,
) -> list[dict[str, Any]]:
    """One row per agent count: the message-only allocator ``name`` (``chatter``, or
    ``chatter_async`` on asynchronous delivery) on the local runtime and on Ray (``hosts``
    host actors, agents packed, timed after a warm-up trial on the same actors), next to the
    bare loop and the bare host actors passing as many messages. ``comm``: ``full``, or
    ``rgg`` with about ``degree`` neighbours an agent."""
    cls = allocators.get(name)
    rows = []
    for n in agents:
        inst = chatter_instance(n, comm, sparse_radius(n, degree))
        links = 2 * len(inst.comm.edges)
        inst.comm.diameter(n)  # kept on the graph: neither runtime's figure includes it
        rounds = chatter_rounds(n, budget, links)
        p = cls.resolve_params({"rounds": rounds})
        t0 = time.perf_counter()
        loc = run_local(inst, cls, p, seed=0)
        local = time.perf_counter() - t0
        msgs = loc.stats.messages
        row = {
            "agents": n,
            "links": links,
            "rounds": rounds,
            "messages": msgs,
            "local_s": local,
            "local_rate": msgs / local,
            "local_peak_mb": _peak_mb(),
            "bare_loop_rate": bare_loop(n, max(1, round(msgs / max(1, n * (n - 1))))),
        }
        if ray_too:
            per = -(-n // hosts)
            pool = spawn(hosts_needed(n, per))
            run_ray(inst, cls, p, seed=1, actors=pool, agents_per_actor=per)  # warm-up
            t1 = time.perf_counter()
            res = run_ray(inst, cls, p, seed=0, actors=pool, agents_per_actor=per)
            wall = time.perf_counter() - t1
            if res.stats.messages != msgs:
                raise RuntimeError(f"ray counted {res.stats.messages} messages, local {msgs}")
            if cls.synchronous and [q.to_dict() for q in res.plans] != [
                q.to_dict() for q in loc.plans
            ]:
                raise RuntimeError("ray and local plans differ")
            row.update(
                {
                    "ray_s": wall,
                    "ray_rate": msgs / wall,
                    "ray_hosts_peak_mb": hosts_peak_mb(),
                    "bare_hosts_rate": bare_hosts(n, hosts, max(1, round(msgs / (n * (n - 1))))),
                }
            )
            for a in pool:
                ray.kill(a)
        rows.append(row)
    return rows


def _peak_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hosts_peak_mb() -> float:
    """The host actors' peak resident memory on this machine, summed, in MiB."""
    from actors.perf import actor_rss_mb

    return actor_rss_mb("VmHWM")


def peer_figures(k: int = 16, rounds: int = 50) -> dict[str, Any]:
    """One agent per actor at ``k`` actors: the message-only allocator's remote calls a second
    on Ray, next to bare actors calling each other in synchronous rounds."""
    cls = allocators.get("chatter")
    inst = chatter_instance(k)
    p = cls.resolve_params({"rounds": rounds})
    pool = spawn(k)
    run_ray(inst, cls, p, seed=1, actors=pool)  # warm-up
    t0 = time.perf_counter()
    res = run_ray(inst, cls, p, seed=0, actors=pool)
    wall = time.perf_counter() - t0
    for a in pool:
        ray.kill(a)
    t1 = time.perf_counter()
    run_local(inst, cls, p, seed=0)
    local = time.perf_counter() - t1
    return {
        "actors": k,
        "rounds": rounds,
        "calls": res.calls,
        "ray_s": wall,
        "local_s": local,
        "calls_rate": (res.calls or 0) / wall,
        "bare_calls_rate": bare_peers(k, rounds),
    }
