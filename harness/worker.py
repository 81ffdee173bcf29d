"""What a worker process does with one job: compute an exact optimum, or run and evaluate one
trial. Jobs carry recipes, not instances; the worker rebuilds the instance and checks its hash.
Every exception becomes a stored status; the worker itself survives."""

from __future__ import annotations

import contextlib
import json
import resource
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import allocators
from harness.evaluate import evaluate
from harness.exact import solve_exact
from harness.faults import Faults, parse_faults
from harness.runtime_local import LocalRuntime, run_local
from harness.scenarios import make_instance
from harness.store import Status
from harness.transport import RunRequest, RunResult, Runtime, TrialTimeout
from harness.uncertainty import DRAW_COLUMNS, NONE, Belief, Uncertainty, summarise_draws


@dataclass(frozen=True)
class OptimumJob:
    """What crosses the pool to compute an instance's exact optimum."""

    recipe: dict[str, Any]
    time_limit: float


@dataclass(frozen=True)
class TrialJob:
    """What crosses the pool to run one trial: the instance as a recipe (the worker rebuilds
    it and checks ``inst_hash``), the allocator and its resolved parameters, the seed, and the
    settings the trial needs."""

    recipe: dict[str, Any]
    inst_hash: str
    allocator: str
    params: dict[str, Any]
    seed: int
    time_limit: float = 60.0
    max_rounds: int = 10_000
    runtime: str = "local"
    faults: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    #: ``Uncertainty.to_dict()``: what agents believe (empty: the true positions)
    uncertainty: dict[str, Any] = field(default_factory=dict)
    agents_per_actor: int = 0  # 0: placed for speed (see placement)
    max_actors: int = 0  # 0: cpu_share
    cpu_share: int = 1  # the cluster's CPUs shared among the trials running at once
    market_checks: int = 0
    trace_rounds: bool = False
    optimum: float | None = None  # the exact optimum's value, when proven
    ray_address: str | None = None


class SkipTrial(Exception):
    """The allocator cannot run this instance (a stated limit, not a failure)."""


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux), so the next reading is this trial's peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_optimum(job: OptimumJob) -> dict[str, Any]:
    inst = make_instance(job.recipe)
    opt = solve_exact(inst, job.time_limit)
    return {
        **opt.row(),
        "opt_plans": json.dumps([p.to_dict() for p in opt.plans]),
    }


_WARM: set[str] = set()


def warm_up(name: str) -> None:
    """Run an allocator once, untimed, on a tiny generated instance of a family it supports,
    the first time this process meets it: lazy imports and JIT compilation (numba) then do
    not land in the first trial's timings. Failures here are ignored (the trial reports its
    own)."""
    if name in _WARM:
        return
    _WARM.add(name)
    from harness.scenarios import get_family

    try:
        cls = allocators.get(name)
        fam = next(f for f in map(get_family, cls.families) if f.kind == "generated")
        inst = fam.make(4, 2, 0)
        params = cls.resolve_params({})
        if cls.skip_reason(inst, params) is None:
            result = run_local(inst, cls, params, 0, 50, time.monotonic() + 5.0)
            evaluate(inst, result.plans, None, cls.market)
    except Exception:  # noqa: BLE001, S110 - warming up is best effort
        pass


def run_trial(job: TrialJob, on_start: Any = None) -> dict[str, Any]:
    """Run one trial; return the metric columns (``m_*``, ``trial_*`` timings and status).
    ``on_start()`` is called once imports and warm-up are done, when the trial's clock starts
    (the pool starts its hard limit then)."""
    out: dict[str, Any] = {}
    tracer: RoundTracer | None = None  # its time is not counted as the trial's
    if job.runtime != "ray":  # on ray the agents run in actors, not here
        warm_up(job.allocator)
    if on_start is not None:
        on_start()
    reset_peak_rss()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    started = time.monotonic()
    try:
        inst = make_instance(job.recipe)
        if inst.content_hash() != job.inst_hash:
            raise RuntimeError(
                f"instance rebuilt with hash {inst.content_hash()}, expected {job.inst_hash}"
            )
        cls = allocators.get(job.allocator)
        reason = cls.skip_reason(inst, job.params)
        if reason:
            raise SkipTrial(reason)
        faults = parse_faults(job.faults or {})
        unc = Uncertainty.from_dict(job.uncertainty, max_draws=1 << 30) if job.uncertainty else NONE
        n_draws = unc.draws if unc.active else 1
        if job.trace_rounds and cls.synchronous and not job.execution:
            tracer = RoundTracer(inst)
        # one run per Monte Carlo draw (one without uncertainty): (its result, the mission)
        runs: list[tuple[RunResult, Any]] = []
        if job.execution:
            from harness.execution import ExecSettings, evaluate_executed

            settings = ExecSettings.from_dict(job.execution)
            for k in range(n_draws):
                ex_k = run_executed(inst, cls, job, faults, unc, k)
                runs.append((ex_k.as_run(), ex_k))
        else:
            runtime = runtime_for(job, inst, tracer)
            deadline = time.monotonic() + job.time_limit  # once the runtime is up
            for k in range(n_draws):  # each draw plans on fresh measurements
                seen = replace(inst, belief=Belief(unc, job.seed, k)) if unc.active else inst
                req = RunRequest(seen, cls, job.params, job.seed, job.max_rounds, deadline, faults)
                runs.append((runtime.run(req), None))
                if k == 0:
                    if tracer is not None and runtime.name == "ray":
                        tracer.replay(runs[0][0])
                    if n_draws > 1:  # the first draw keeps the trace; the others run plain
                        runtime = runtime_for(job, inst)
        result, executed = runs[0]
        if tracer is not None:
            out["trial_round_trace"] = json.dumps(tracer.rows)
        opt = job.optimum

        def grade(run: RunResult, ex: Any) -> dict[str, Any]:
            """The metric columns of one run, graded with the true positions."""
            if ex is not None:  # visits and their times are the true mission's
                graded = evaluate_executed(inst, run.plans, settings, opt, cls.market)
                graded.update(ex.columns(inst, opt))
                return graded
            # under uncertainty the task sequences count, not the start times an agent stated
            # from what it believed: the evaluator times them with the true distances
            plans = [replace(p, times=None) for p in run.plans] if unc.active else run.plans
            return evaluate(inst, plans, opt, cls.market)

        draws = (
            [{**grade(r, ex), **r.columns(), "converged": r.converged} for r, ex in runs]
            if unc.active
            else []
        )
        metrics = {} if draws else grade(result, executed)
        # the market checks re-run the mechanism on the true instance: not what agents saw
        if cls.market and inst.n_agents * inst.n_tasks <= job.market_checks and not draws:
            # the checks share the trial's time limit, counted from the trial's start
            check_deadline = started + job.time_limit
            metrics.update(market_check_columns(inst, cls, job, result.plans, check_deadline))
        out.update(metrics)
        out.update(result.columns())
        converged = result.converged
        if draws:
            converged = all(d.pop("converged") for d in draws)
            out.update(summarise_draws(draws))
            out["trial_draws"] = json.dumps(  # rows of the ``draws`` view (reports/views.py)
                [[k, *(_number(d.get(c)) for c in DRAW_COLUMNS)] for k, d in enumerate(draws)]
            )
        out.update(
            {
                "trial_status": Status.DONE.value,
                "trial_message": executed.message
                if executed is not None
                else ""
                if converged
                else f"round limit {job.max_rounds} reached before convergence",
            }
        )
    except TrialTimeout as exc:
        out.update({"trial_status": Status.TIMEOUT.value, "trial_message": str(exc)})
    except SkipTrial as exc:
        out.update({"trial_status": Status.SKIP.value, "trial_message": str(exc)})
    except MemoryError:
        limit = resource.getrlimit(resource.RLIMIT_DATA)[0]
        shown = f"{limit / 2**20:,.0f} MB" if limit > 0 else "the machine's memory"
        out.update(
            {
                "trial_status": Status.ERROR.value,
                "trial_message": f"memory limit: the trial allocated more than {shown} "
                "(bench.memory_limit_mb)",
                RESTART: True,
            }
        )
    except Exception as exc:  # noqa: BLE001 - every failure is a stored row
        tb = traceback.format_exc(limit=-3)
        out.update(
            {
                "trial_status": Status.ERROR.value,
                "trial_message": f"{type(exc).__name__}: {exc}\n{tb}",
            }
        )
    out["trial_wall_s"] = time.perf_counter() - wall0 - (tracer.wall if tracer else 0.0)
    out["trial_cpu_s"] = time.process_time() - cpu0 - (tracer.cpu if tracer else 0.0)
    out["trial_peak_rss_mb"] = peak_rss_mb()
    return out


class RoundTracer:
    """``trace_rounds``: after each round, the team's plans as they stand, evaluated. Rows are
    ``[round, messages delivered, objective, coverage, conflicts]``; the time spent here is
    kept apart (``wall``, ``cpu``) and taken off the trial's timings."""

    def __init__(self, inst: Any) -> None:
        self.inst = inst
        self.rows: list[list[float]] = []
        self.wall = self.cpu = 0.0

    def __call__(self, rnd: int, messages: int, agents: list[Any]) -> None:
        """The local runtime's per-round hook: the agents' plans now."""
        w, c = time.perf_counter(), time.process_time()
        plans = [a.plan() for a in agents]
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c
        self.record(rnd, messages, plans)

    def replay(self, result: RunResult) -> None:
        """The ray runtime: the trace rebuilt after the run from the agents' plan histories."""
        for rnd, plans in enumerate(result.plans_by_round(), start=1):
            self.record(rnd, result.stats.per_round[rnd], plans)

    def record(self, rnd: int, messages: int, plans: list[Any]) -> None:
        w, c = time.perf_counter(), time.process_time()
        m = evaluate(self.inst, plans)
        obj = m["m_objective"]
        self.rows.append(
            [
                rnd,
                messages,
                None if obj is None or obj != obj else round(float(obj), 9),
                round(float(m["m_coverage"]), 9),
                int(m["m_conflicts"]),
            ]
        )
        self.wall += time.perf_counter() - w
        self.cpu += time.process_time() - c


def run_executed(
    inst: Any, cls: Any, job: TrialJob, faults: Faults, unc: Uncertainty = NONE, draw: int = 0
) -> Any:
    """A trial whose agents travel while the allocator re-plans (harness/execution.py). Each
    re-plan runs on the trial's runtime; so do online allocators' agents (on Ray, in host
    actors paced one call a period: actors.online.RayTeam). Under uncertainty every re-plan
    (the first, and each checkpoint's) plans on what the agents measure from where they are
    then: fresh noise, seeded by the re-plan's seed and the Monte Carlo draw."""
    from harness.execution import ExecSettings, execute

    if faults.active:
        raise SkipTrial("fault injection is not combined with execution yet")
    settings = ExecSettings.from_dict(job.execution)
    deadline = time.monotonic() + job.time_limit

    def episode(sub: Any, seed: int) -> RunResult:
        if unc.active:
            sub = replace(sub, belief=Belief(unc, seed, draw))
        runtime = runtime_for(job, sub)
        # a re-plan on Ray has had a time limit of its own, counted once its actors are up;
        # the mission's deadline still bounds the whole trial (execute checks it)
        limit = deadline if runtime.name == "local" else time.monotonic() + job.time_limit
        return runtime.run(RunRequest(sub, cls, job.params, seed, job.max_rounds, limit, faults))

    def team() -> Any:
        runtime = runtime_for(job, inst)
        if runtime.name != "ray":
            from harness.execution import LocalTeam

            return LocalTeam(inst, cls, job.params, job.seed)
        from actors.online import RayTeam

        return RayTeam(
            inst, cls, job.params, job.seed, runtime.actors, runtime.agents_per_actor, deadline
        )

    return execute(inst, cls, job.params, job.seed, settings, episode, deadline, team)


def market_check_columns(
    inst: Any, cls: Any, job: TrialJob, plans: list[Any], deadline: float
) -> dict:
    """Truthfulness (re-runs on the local runtime, same seed, one agent misreporting at a
    time, until ``deadline``) and stability of the outcome; see
    :mod:`harness.market_checks`."""
    from harness.market_checks import stability, truthfulness

    out = truthfulness(inst, cls, job.params, job.seed, plans, deadline=deadline)
    out.update(stability(inst, plans, cls.market))
    return out


_RAY_POOL: list[Any] = []


def placement(n_agents: int, agents_per_actor: int, max_actors: int, cpu_share: int) -> int:
    """Agents per host actor. Given (``agents_per_actor`` >= 1): that many, or more when the
    trial may use at most ``max_actors`` actors. Placed for speed (0): an actor for every
    agent while the trial has a CPU for each (``max_actors``, else ``cpu_share``), else the
    agents packed into that many host actors."""
    cap = max_actors or max(1, cpu_share)
    if agents_per_actor:
        return max(agents_per_actor, -(-n_agents // max_actors) if max_actors else 1)
    return 1 if n_agents <= cap else -(-n_agents // cap)


def _number(v: Any) -> float | None:
    """A value as JSON number (a flag as 0 or 1), None where there is none."""
    if v is None:
        return None
    v = float(v)
    return v if v == v and abs(v) != float("inf") else None


def runtime_for(job: TrialJob, inst: Any, tracer: Any = None) -> Runtime:
    """The runtime a trial names, ready to run ``inst``. On ``ray``: connected to the
    coordinator's Ray instance, with enough host actors; the worker keeps them for the next
    trials (actors that a failure or an injected crash killed are replaced in the pool by
    ``run_ray``), and agents share actors when there are more than ``max_actors``."""
    if job.runtime != "ray":
        return LocalRuntime(tracer)
    import ray

    from actors.runtime import RayRuntime, hosts_needed, spawn

    if not ray.is_initialized():
        ray.init(address=job.ray_address, log_to_driver=False)
    per = placement(inst.n_agents, job.agents_per_actor, job.max_actors, job.cpu_share)
    need = hosts_needed(inst.n_agents, per)
    if len(_RAY_POOL) < need:
        _RAY_POOL.extend(spawn(need - len(_RAY_POOL)))
    return RayRuntime(_RAY_POOL, per)


#: what a worker sends when a job's clock starts (before its result)
STARTED = "started"
#: a result key asking the pool for a fresh worker (this one ran out of memory)
RESTART = "_restart"
#: a result key meaning the job was killed past its hard time limit (the rest: where it ran)
KILLED = "_killed"


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux ``PR_SET_PDEATHSIG``),
    so a coordinator killed with SIGKILL leaves no worker running a trial without a limit."""
    import ctypes
    import os
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the call: go now
        os._exit(1)


def default_memory_limit_mb(workers: int) -> int:
    """70% of this machine's memory, shared among the workers (what bench.memory_limit_mb = 0
    means): a runaway trial fails alone and leaves the machine alive."""
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(256, int(0.7 * total / 2**20 / max(1, workers)))


def limit_memory(megabytes: int) -> None:
    """Cap the data this process may allocate (``RLIMIT_DATA``): past it allocations fail
    with MemoryError, which the trial stores as ``error: memory limit``."""
    if megabytes > 0:
        cap = megabytes * 2**20
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_DATA, (cap, resource.getrlimit(resource.RLIMIT_DATA)[1])
            )


def where_columns(node: str = "") -> dict[str, str]:
    """The columns of a trial row naming where it ran: ``trial_host`` (the machine's host name)
    and ``trial_node`` (the Ray node id when the trial ran as Ray work, else empty)."""
    import socket

    return {"trial_host": socket.gethostname(), "trial_node": node}


def do_job(job: Any, on_start: Any = None, where: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one job (an optimum or a trial, by its type) in this worker; ``on_start()`` when its
    clock starts; a trial's result gets the ``where`` columns. Never raises: a failure is the
    result ``{"error": ...}``."""
    try:
        if isinstance(job, OptimumJob):
            if on_start is not None:
                on_start()
            return run_optimum(job)
        return {**run_trial(job, on_start), **(where or {})}
    except MemoryError:
        return {"error": "memory limit reached", RESTART: True}
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}


def serve(conn: Any, memory_limit_mb: int = 0) -> None:
    """Worker process main loop: receive a job, send ``STARTED`` when the job's clock starts,
    then the result row."""
    import signal

    die_with_parent()
    # Ctrl-C reaches the whole process group: the coordinator stops the run and the pool;
    # a worker ignores it rather than print a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(memory_limit_mb)
    where = where_columns()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(do_job(job, lambda: conn.send(STARTED), where))
