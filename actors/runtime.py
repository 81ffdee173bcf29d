"""The ``ray`` runtime: agents in :class:`actors.agent.HostActor` actors (one agent each by
default), peers calling each other directly; the driver starts the trial, waits for its end,
and reads the agents' results. It never relays an agent's message.

Synchronous allocators: results are cut at the first round in which every live agent was quiet,
the round at which the local runtime stops, so both runtimes report the same plans, rounds,
message counts and injected faults. Asynchronous allocators: the trial ends when the weight
monitor has all the weight back (no call in flight, no actor busy).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import ray

from actors.agent import HostActor, Monitor
from harness.api import Allocator, Plan, merge_measures
from harness.faults import COUNTERS, new_counts
from harness.model import Instance
from harness.transport import MessageStats, RunRequest, RunResult, TrialTimeout


class AgentError(RuntimeError):
    """An agent raised while handling a round, or its actor died; the message names it."""


def spawn(n: int) -> list[Any]:
    """``n`` host actors spread over the cluster's nodes, ready to be reused across trials."""
    actors = [HostActor.options(scheduling_strategy="SPREAD").remote() for _ in range(n)]
    ray.get([a.__ray_ready__.remote() for a in actors])
    return actors


def hosts_needed(n_agents: int, agents_per_actor: int) -> int:
    return math.ceil(n_agents / max(1, agents_per_actor))


_MONITOR: list[Any] = []


def _monitor() -> Any:
    if not _MONITOR:
        _MONITOR.append(Monitor.options(num_cpus=0).remote())
    return _MONITOR[0]


def _replace(pool: list[Any], dead: list[int]) -> None:
    """Kill the pool's actors at positions ``dead`` and put fresh ones in their place (their
    start is not awaited here: the next trial's set-up waits for them)."""
    for i in dead:
        ray.kill(pool[i])
        pool[i] = HostActor.options(scheduling_strategy="SPREAD").remote()


def run_ray(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    *,
    actors: list[Any] | None = None,
    agents_per_actor: int = 1,
    **limits: Any,
) -> RunResult:
    """Run one trial on Ray (``RayRuntime``); ``limits``: ``max_rounds``, ``deadline`` and
    ``faults`` as in ``RunRequest``."""
    return RayRuntime(actors, agents_per_actor).run(RunRequest(inst, cls, params, seed, **limits))


def _run(req: RunRequest, actors: list[Any] | None, agents_per_actor: int) -> RunResult:
    """Run one trial. ``actors``: a pool of host actors to reuse (spawned when None); actors
    that a failure or an injected crash kills are replaced in the list, so the pool stays whole.
    ``agents_per_actor`` > 1 hosts agents in contiguous blocks."""
    inst, cls, params, seed = req.inst, req.cls, req.params, req.seed
    max_rounds, deadline, faults = req.max_rounds, req.deadline, req.faults
    n = inst.n_agents
    k = hosts_needed(n, agents_per_actor)
    pool = actors if actors is not None else spawn(k)
    if len(pool) < k:
        raise ValueError(f"{len(pool)} actors for {n} agents at {agents_per_actor} per actor")
    used = pool[:k]
    per = math.ceil(n / k)
    directory = [a // per for a in range(n)]
    blocks = [[a for a in range(n) if directory[a] == h] for h in range(k)]
    trial = uuid.uuid4().hex
    t_setup = time.perf_counter()
    inst_ref = ray.put(inst)
    monitor = None if cls.synchronous else _monitor()
    if monitor is not None:
        ray.get(monitor.reset.remote(trial))
    ray.get(
        [
            a.setup.remote(
                trial,
                inst_ref,
                cls.name,
                params,
                seed,
                blocks[h],
                max_rounds,
                faults.to_dict(),
                directory,
                used,
                h,
                monitor,
            )
            for h, a in enumerate(used)
        ]
    )
    setup_s = time.perf_counter() - t_setup
    share = Fraction(1, k)
    ray.get([a.begin.remote(None if cls.synchronous else share) for a in used])
    refs = [a.result.remote() for a in used]
    waiting = list(refs)
    if monitor is not None:
        waiting.append(monitor.wait.remote(trial))
    by_agent: dict[int, dict[str, Any]] = {}
    calls = 0
    while waiting:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, waiting = ray.wait(waiting, num_returns=1, timeout=timeout)
        if not ready:
            _replace(pool, list(range(k)))
            raise TrialTimeout("time limit reached on the ray runtime (its actors were killed)")
        if ready[0] not in refs:  # the weight monitor: the asynchronous trial is over
            ray.get([a.close.remote() for a in used])
            continue
        try:
            res = ray.get(ready[0])
        except ray.exceptions.RayActorError as exc:  # the actor's process is gone
            host = refs.index(ready[0])
            _replace(pool, list(range(k)))
            raise AgentError(
                f"agent {blocks[host][0] if per == 1 else blocks[host]}: its actor died "
                f"({type(exc).__name__})"
            ) from None
        if isinstance(res, dict):  # an agent raised; the others would wait for it forever
            _replace(pool, list(range(k)))
            agents = res["agents"]
            raise AgentError(f"agent {agents[0] if len(agents) == 1 else agents}: {res['error']}")
        calls += sum(r.get("calls", 0) for r in res)
        for r in res:
            by_agent[r["agent"]] = r
        if monitor is not None and len(by_agent) == n:
            waiting = []
    if cls.synchronous:
        result = assemble(by_agent, max_rounds)
        if per == 1:  # an injected crash really kills the agent's actor
            _replace(pool, [h for h in range(k) if by_agent[blocks[h][0]]["crashed"]])
    else:
        result = assemble_async(by_agent)
    result.nodes = [by_agent[a]["node"] for a in range(n)]
    result.calls = calls
    result.actors = k
    result.setup_s = setup_s
    return result


def assemble(results: dict[int, dict[str, Any]], max_rounds: int) -> RunResult:
    """Plans and counts as of the first round in which every live agent was quiet. An agent
    that stopped (proof of quiescence, or crash) counts as quiet from then on."""
    agents = sorted(results)
    histories = [results[a]["quiet"] for a in agents]
    last = max(len(h) for h in histories)
    final = next(
        (
            r
            for r in range(min(last, max_rounds + 1))
            if all(r >= len(h) or h[r] for h in histories)
        ),
        None,
    )
    converged = final is not None
    if final is None:
        final = max_rounds
    plans = []
    crashed = []
    # agents a message sent by the final round was lost to, because they had crashed by its
    # due round (as the local runtime counts them)
    dead = {d for a in agents for rnd, _c, gone in results[a]["wire"] if rnd <= final for d in gone}
    for a in agents:
        res = results[a]
        if (res["crashed"] and res["round"] < final) or a in dead:  # not in the final round
            crashed.append(a)
            plans.append(Plan(a))
            continue
        plan = [p for r, p in res["plans"] if r <= final][-1]
        plans.append(Plan.from_dict(plan))
    stats = MessageStats()
    per_round = [0] * (final + 1)
    wire = new_counts()
    for a in agents:
        delivered = 0
        for rnd, by_type, receivers in results[a]["log"]:
            if rnd <= final:
                stats.add_sent(a, by_type, receivers)
                per_round[rnd] += (count := len(receivers))
                delivered += count
        for rnd, counts, _gone in results[a]["wire"]:
            if rnd <= final:
                for c in COUNTERS:
                    wire[c] += counts[c]
        if not results[a]["wire"]:  # no faults injected: every message sent was delivered
            wire["sent"] += delivered
    stats.per_round = per_round
    measures = merge_measures([results[a]["measures"] for a in agents])
    history = {a: results[a]["plans"] for a in agents}
    return RunResult(
        plans,
        final,
        converged,
        stats,
        wire=wire,
        crashed=crashed,
        measures=measures,
        plan_history=history,
    )


def assemble_async(results: dict[int, dict[str, Any]]) -> RunResult:
    """An asynchronous trial's plans and counts; its ``rounds`` is the largest number of
    messages any agent handled."""
    stats = MessageStats()
    wire = new_counts()
    plans, crashed = [], []
    converged = True
    for a in sorted(results):
        res = results[a]
        p = res["plan"]
        plans.append(Plan.from_dict(p))
        if "stats" in res:  # the deliveries its host counted
            stats.merge(res["stats"])
        for c in COUNTERS:
            wire[c] += res["counts"][c]
        if res["crashed"]:
            crashed.append(a)
        else:
            converged = converged and res["converged"] and not res["limited"]
    rounds = max((r["activations"] for r in results.values()), default=0)
    measures = merge_measures([results[a]["measures"] for a in sorted(results)])
    return RunResult(plans, rounds, converged, stats, wire=wire, crashed=crashed, measures=measures)


@dataclass
class RayRuntime:
    """The Ray runtime behind the ``Runtime`` interface: agents in the host ``actors`` (a pool
    kept across trials; dead ones are replaced), ``agents_per_actor`` to a host."""

    actors: list[Any] | None = None
    agents_per_actor: int = 1
    name: str = "ray"

    def run(self, req: RunRequest) -> RunResult:
        return _run(req, self.actors, self.agents_per_actor)
