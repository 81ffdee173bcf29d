"""The ``ray`` runtime: one :class:`actors.agent.AgentActor` per agent, peers calling each other
directly; the driver starts the trial, waits for the agents to stop, and reads their results.
It never relays an agent's message. Results are cut at the first round in which every agent
was quiet, the round at which the local runtime stops, so both runtimes report the same plans,
rounds and message counts for synchronous allocators."""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray

from actors.agent import AgentActor
from harness.api import Allocator, Plan
from harness.model import Instance
from harness.runtime_local import MessageStats, RunResult, TrialTimeout


class AgentError(RuntimeError):
    """An agent raised while handling a round; the message names it."""


def spawn(n: int) -> list[Any]:
    """``n`` agent actors spread over the cluster's nodes, ready to be reused across trials."""
    actors = [AgentActor.options(scheduling_strategy="SPREAD").remote() for _ in range(n)]
    ray.get([a.__ray_ready__.remote() for a in actors])
    return actors


def run_ray(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    max_rounds: int = 10_000,
    deadline: float | None = None,
    actors: list[Any] | None = None,
) -> RunResult:
    """Run one trial with each agent in its own actor (``actors``: a pool of at least
    ``inst.n_agents`` actors to reuse; spawned when None)."""
    n = inst.n_agents
    pool = actors if actors is not None else spawn(n)
    if len(pool) < n:
        raise ValueError(f"{len(pool)} actors for {n} agents")
    used = pool[:n]
    trial = uuid.uuid4().hex
    inst_ref = ray.put(inst)
    handles = dict(enumerate(used))
    ray.get(
        [
            a.setup.remote(trial, inst_ref, cls.name, params, seed, i, max_rounds, handles)
            for i, a in enumerate(used)
        ]
    )
    ray.get([a.begin.remote() for a in used])
    refs = [a.result.remote() for a in used]
    results: dict[int, dict[str, Any]] = {}
    waiting = list(refs)
    while waiting:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, waiting = ray.wait(waiting, num_returns=1, timeout=timeout)
        if not ready:
            for a in used:
                ray.kill(a)
            raise TrialTimeout("time limit reached on the ray runtime (its actors were killed)")
        try:
            res = ray.get(ready[0])
        except ray.exceptions.RayActorError as exc:  # the actor's process is gone
            agent = refs.index(ready[0])
            for a in used:
                ray.kill(a)
            raise AgentError(f"agent {agent}: its actor died ({type(exc).__name__})") from None
        if "error" in res:
            for a in used:  # the others would wait for its batches forever
                ray.kill(a)
            raise AgentError(f"agent {res['agent']}: {res['error']}")
        results[res["agent"]] = res
    result = assemble(results, max_rounds)
    result.nodes = [results[a]["node"] for a in sorted(results)]
    result.calls = sum(r["calls"] for r in results.values())
    return result


def assemble(results: dict[int, dict[str, Any]], max_rounds: int) -> RunResult:
    """Plans and counts as of the first round in which every agent was quiet."""
    histories = [results[a]["quiet"] for a in sorted(results)]
    horizon = min(len(h) for h in histories)
    final = next((r for r in range(horizon) if all(h[r] for h in histories)), None)
    converged = final is not None
    if final is None:
        final = max_rounds
    plans = []
    for a in sorted(results):
        plan = [p for r, p in results[a]["plans"] if r <= final][-1]
        plans.append(Plan(plan["agent"], plan["tasks"], plan["times"], plan["bids"]))
    stats = MessageStats()
    per_round = [0] * (final + 1)
    for a in sorted(results):
        for rnd, dst, kind, size in results[a]["log"]:
            if rnd <= final:
                stats.record(a, dst, kind, size)
                per_round[rnd] += 1
    stats.per_round = per_round
    return RunResult(plans, final, converged, stats)
