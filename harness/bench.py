"""The coordinator (DESIGN §6): expand a spec into trials, compute exact optima once per
instance, run trials concurrently with hard time limits, and store every outcome as it comes.

``bench(spec)`` is the Python API; ``harness bench`` is a thin shell over it.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.codeversion import code_version
from harness.errors import SpecError
from harness.pool import Pool
from harness.spec import BenchSpec
from harness.store import (
    FINAL,
    RunStore,
    Status,
    cached_rows,
    environment,
    latest_run,
    new_run_id,
)
from harness.trials import Trial, expand
from harness.worker import KILLED, OptimumJob, TrialJob, default_memory_limit_mb

#: a run id is a folder name inside the output root
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Observer:
    """Hooks for progress display; the CLI renders them with rich. All optional."""

    def started(self, run_id: str, total: int, reused: int, optima: int) -> None: ...

    def optimum(self, row: dict[str, Any]) -> None: ...

    def trial(self, row: dict[str, Any]) -> None: ...

    def cached(self, n: int) -> None:
        """``n`` trials were taken from the trial cache (stored rows of earlier runs)."""

    def planned(self, trials: list[tuple[str, str, int]]) -> None:
        """The trials about to run, as (allocator, size ``TxA``, tasks x agents)."""


@dataclass
class BenchResult:
    run_id: str
    run_dir: Path
    counts: dict[str, int]
    total: int
    reused: int
    notes: list[str] = field(default_factory=list)
    #: trials taken from the trial cache (rows of earlier runs, same key and code version)
    cached: int = 0

    @property
    def ok(self) -> bool:
        return self.counts.get(Status.INTERRUPTED, 0) == 0


class CtrlC:
    """Ctrl-C as a flag as well as ``KeyboardInterrupt``. A library may swallow the exception
    where it lands (pyarrow does, while it looks for pandas in ``pa.array``), so the run
    loop also checks the flag between results and raises there. Installed only over Python's
    own handler, in the main thread; elsewhere it does nothing."""

    def __init__(self) -> None:
        self.hit = False
        self.previous: Any = None

    def __enter__(self) -> CtrlC:
        import signal
        import threading

        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _grace(limit: float) -> float:
    return limit + max(5.0, 0.25 * limit)


def bench(
    spec: BenchSpec,
    *,
    run_id: str | None = None,
    resume: bool = False,
    observer: Observer | None = None,
    compact: bool = True,
    retry: tuple[str, ...] = (),
) -> BenchResult:
    """Run (or resume) a bench; returns the run id, where it is stored and status counts.
    ``compact``: merge the run's one-row files into one when it stops (``harness compact``
    does it later otherwise). ``retry``: on resume, statuses whose stored trials run again
    (``timeout``, ``error``). The run directory is locked while it runs: a second writer is
    refused."""
    obs = observer or Observer()
    s = spec.settings
    trials, instances, notes = expand(spec)
    if not trials:  # say why, and leave no empty run directory behind
        from harness.errors import HarnessError

        why = "; ".join(notes) or "the spec's allocators, families and sizes give no trial"
        raise HarnessError(f"{spec.source}: nothing to run: {why}")
    out = Path(s["out"])
    if run_id is not None and not RUN_ID_RE.fullmatch(run_id):
        raise SpecError(
            "command line",
            "--run-id",
            "a name of letters, digits, '.', '_' and '-' (a folder inside --out)",
            run_id,
        )
    if resume:
        run_id = run_id or latest_run(out)
        if run_id is None:
            raise SpecError(str(out), "--resume", "an existing run to resume (none found)")
    else:
        run_id = run_id or new_run_id(spec.spec_hash(), out)
    store = RunStore(out, run_id)
    if resume and not store.manifest_path().exists():
        raise SpecError(
            str(out / run_id), "manifest.json", "a run directory written by harness bench"
        )
    with store.lock():
        try:
            return _bench(spec, store, trials, instances, notes, resume, obs, compact, retry)
        except OSError as exc:  # a full disk, a folder gone: say what, keep what is stored
            from harness.errors import HarnessError

            raise HarnessError(
                f"{exc.filename or store.dir}: {exc.strerror or exc}: the run stopped; the "
                f"trials stored before are kept; continue with harness bench --resume {run_id} "
                f"--out {out}"
            ) from None


def _bench(
    spec: BenchSpec,
    store: RunStore,
    trials: list[Trial],
    instances: dict[str, Any],
    notes: list[str],
    resume: bool,
    obs: Observer,
    compact: bool,
    retry: tuple[str, ...],
) -> BenchResult:
    """``bench`` once the run directory is locked."""
    s, run_id = spec.settings, store.run_id
    out = Path(s["out"])
    if resume:
        manifest = store.read_manifest()
        if manifest is None:
            raise SpecError(
                str(out / run_id), "manifest.json", "a run directory written by harness bench"
            )
        if manifest.get("spec_hash") not in (None, spec.spec_hash()):  # None: a rebuilt one
            raise SpecError(
                str(out / run_id),
                "spec",
                "the same spec as the run being resumed (use its spec, or no spec)",
            )
    else:
        if store.read_manifest() is not None:
            raise SpecError(
                "command line", "--run-id", "a new run id (that one exists; use --resume)", run_id
            )
        manifest = {}
    stored = store.statuses()
    # stored final rows are kept, but those of a status asked to be retried (--retry)
    todo = [t for t in trials if stored.get(t.key) not in FINAL or stored.get(t.key) in retry]
    reused = len(trials) - len(todo)
    from_cache = 0
    if s["cache"] and todo:  # the same trial, run by the same code, stored by another run
        hits = cached_rows(out, run_id, {t.key: code_version(t.allocator) for t in todo})
        for t in todo:
            if t.key in hits:
                store.write_row(
                    {
                        **hits[t.key],
                        "trial_run_id": run_id,
                        "trial_cached_from": hits[t.key]["trial_run_id"],
                    }
                )
        from_cache = sum(t.key in hits for t in todo)
        todo = [t for t in todo if t.key not in hits]
    manifest.update(
        {
            "run_id": run_id,
            "spec": spec.to_dict(),
            "spec_hash": spec.spec_hash(),
            "spec_source": spec.source,
            "status": "running",
            "started": manifest.get("started") or _now(),
            "resumed": manifest.get("resumed", []) + ([_now()] if resume else []),
            "n_trials": len(trials),
            "notes": notes,
            **environment(),
        }
    )
    store.write_manifest(manifest)

    known: dict[str, dict[str, Any] | None] = {}
    need: list[str] = []
    if s["optimum"]:
        for h in sorted({t.instance.hash for t in todo}):
            cached = store.read_optimum(h)
            if cached and (
                cached["opt_status"] in ("optimal", "infeasible", "skipped")
                or (
                    cached["opt_status"] == "feasible"
                    and cached["opt_time_limit"] >= s["optimum_time_limit"]
                )
            ):  # timeouts, errors and shorter time-limited solves are tried again
                known[h] = cached
            else:
                need.append(h)
    ready: list[Trial] = [t for t in todo if not s["optimum"] or t.instance.hash in known]
    blocked: dict[str, list[Trial]] = {}
    for t in todo:
        if s["optimum"] and t.instance.hash not in known:
            blocked.setdefault(t.instance.hash, []).append(t)
    counts: dict[str, int] = {}
    obs.started(run_id, len(trials), reused + from_cache, len(need))
    if from_cache:
        obs.cached(from_cache)
    obs.planned(
        [
            (t.allocator, f"{t.instance.n_tasks}x{t.instance.n_agents}",
             t.instance.n_tasks * t.instance.n_agents)
            for t in todo
        ]
    )  # fmt: skip
    ray_address, ray_started = None, False
    ray_log = RayLog(store.dir / RAY_LOG)
    ray_trials = any(t.runtime == "ray" for t in todo)
    on_cluster = bool(todo or need) and dispatch_on_ray(s["dispatch"], s["address"], ray_trials)
    manifest["dispatch"] = "ray" if on_cluster else "pool"
    if ray_trials or on_cluster:
        ray_address, ray_started = _connect_ray(s["address"], ray_log)
        manifest["ray"] = {
            "address": ray_address,
            "started_here": ray_started,
            "nodes": _ray_nodes(),
        }
        store.write_manifest(manifest)
    cpus = sum(int(n["cpus"]) for n in manifest["ray"]["nodes"]) if "ray" in manifest else 0
    workers = spec.workers
    if "ray" in manifest and not s["workers"]:
        workers = max(1, cpus)
    manifest["workers"] = workers
    size = min(workers, max(1, len(todo) + len(need)))
    cpu_share = max(1, cpus // size)  # CPUs a Ray trial may fill while `size` trials run
    if on_cluster:  # trials as Ray work on the cluster's nodes; 0 = each node's own share
        from harness.cluster_pool import ClusterPool

        manifest["memory_limit_mb"] = s["memory_limit_mb"]
        pool: Pool | ClusterPool = ClusterPool(size, s["memory_limit_mb"])
    else:
        manifest["memory_limit_mb"] = s["memory_limit_mb"] or default_memory_limit_mb(size)
        pool = Pool(size, manifest["memory_limit_mb"])
    status = Status.INTERRUPTED
    try:
        with CtrlC() as ctrl_c:
            while need or ready or pool.busy():
                ctrl_c.check()
                while pool.idle() and (need or ready):
                    if need:
                        h = need.pop(0)
                        job = OptimumJob(instances[h].recipe, s["optimum_time_limit"])
                        pool.submit(("optimum", h), job, _grace(2 * s["optimum_time_limit"]) + 30)
                    else:
                        trial = ready.pop(0)
                        base = trial.base_row(run_id, s["time_limit"])
                        store.write_row(
                            {
                                **base,
                                "trial_status": Status.INTERRUPTED.value,
                                "trial_message": "trial started, no result stored",
                            }
                        )
                        job = _trial_job(trial, known, s, ray_address, cpu_share)
                        limit = _grace(s["time_limit"])
                        if trial.runtime == "ray":  # the worker may first have to start its actors
                            n = trial.instance.n_agents
                            limit += 30.0 + 0.5 * min(n, s["max_actors"] or n)
                        pool.submit(("trial", trial), job, limit)
                for (kind, tag), result in pool.results():
                    if kind == "optimum":
                        row = _optimum_row(instances[tag], result, s["optimum_time_limit"])
                        store.write_optimum(row)
                        known[tag] = row
                        ready.extend(blocked.pop(tag, []))
                        obs.optimum(row)
                    else:
                        row = _trial_row(tag, result, run_id, s, known.get(tag.instance.hash))
                        store.write_row(row)
                        counts[row["trial_status"]] = counts.get(row["trial_status"], 0) + 1
                        obs.trial(row)
                    ctrl_c.check()
            ctrl_c.check()
        status = Status.DONE
    finally:
        notes.extend(pool.notes)
        pool.close()
        if ray_started:
            import ray

            ray.shutdown()
        ray_log.close()
        try:
            if compact:
                store.compact()
        except Exception as exc:  # noqa: BLE001 - the one-row files stay, nothing is lost
            notes.append(f"rows not compacted ({type(exc).__name__}: {exc}); one-row files kept")
        manifest.update({"status": status, "finished": _now(), "counts": _merge_counts(store)})
        try:
            store.write_manifest(manifest)
        except OSError:  # the disk is full: the manifest keeps 'running', resume still works
            if status == Status.DONE:
                raise
    return BenchResult(run_id, store.dir, counts, len(trials), reused, notes, from_cache)


def dispatch_on_ray(dispatch: str, address: str, ray_trials: bool) -> bool:
    """Whether trials run as Ray work on the cluster (``ClusterPool``) or in the driver's
    process pool. ``auto``: on Ray whenever the sweep uses Ray (an address, or trials of the
    ray runtime); the pool for a sweep of local trials on this machine alone, which would
    otherwise pay Ray's start and stop (about 8 s here) for nothing (docs/benchmarks.md)."""
    if dispatch == "auto":
        return bool(address) or ray_trials
    return dispatch == "ray"


def _connect_ray(address: str, log: RayLog) -> tuple[str, bool]:
    """Join the Ray cluster at ``address``, or start an embedded one (token authentication
    stays on, nothing bound beyond loopback: actors/embedded.py). Returns its address for the
    workers. What Ray says goes to ``log`` (in the run's directory), not to the terminal."""
    import ray

    started = not address and not ray.is_initialized()  # then this process stops it too
    if not ray.is_initialized():
        log.start()
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            from actors.embedded import start_embedded

            start_embedded(log_to_driver=True)
        log.take_worker_output()
    return ray.get_runtime_context().gcs_address, started


#: the file in a run's directory that holds what Ray said during the run
RAY_LOG = "ray.log"


class RayLog:
    """What Ray says during a run, in a file of the run's directory: the ``ray`` logger's
    records (the token-authentication notice, "Started a local Ray instance", warnings) and
    the output Ray streams to the driver from its workers and daemons. ``close`` gives the
    terminal back; a log never started closes as a no-op."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: Any = None
        self.saved: tuple[list[Any], bool] | None = None  # the ray logger's handlers, propagate

    def start(self) -> None:
        """Before ``ray.init``: the ``ray`` logger writes to the file only."""
        import logging

        self.file = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        handler = logging.StreamHandler(self.file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("ray")
        self.saved = (logger.handlers[:], logger.propagate)
        logger.handlers, logger.propagate = [handler], False

    def take_worker_output(self) -> None:
        """After ``ray.init``: the streamed output goes to the file, one line each with the
        process that printed it (Ray 2.60's stream dispatcher has one handler,
        ``ray_print_logs``, which this replaces)."""
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as streams

        fh = self.file

        def to_file(data: dict[str, Any]) -> None:
            who = data.get("actor_name") or data.get("task_name") or data.get("pid")
            where = f"({who}, pid={data.get('pid')}, ip={data.get('ip')})"
            with contextlib.suppress(OSError, ValueError):  # a full disk, the run over: dropped
                fh.writelines(f"{where} {line}\n" for line in data.get("lines", ()))

        streams.remove_handler("ray_print_logs")
        streams.add_handler("harness_ray_log", to_file)

    def close(self) -> None:
        if self.file is None:
            return
        import logging

        from ray._private.ray_logging import global_worker_stdstream_dispatcher as streams

        streams.remove_handler("harness_ray_log")
        if self.saved is not None:
            logger = logging.getLogger("ray")
            logger.handlers, logger.propagate = self.saved
        self.file.close()
        self.file = self.saved = None


def _ray_nodes() -> list[dict[str, Any]]:
    import ray

    return [
        {
            "id": n["NodeID"],
            "address": n["NodeManagerAddress"],
            "cpus": n["Resources"].get("CPU", 0),
        }
        for n in ray.nodes()
        if n["Alive"]
    ]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _merge_counts(store: RunStore) -> dict[str, int]:
    out: dict[str, int] = {}
    for st in store.statuses().values():
        out[st] = out.get(st, 0) + 1
    return out


def _trial_job(
    trial: Trial,
    known: dict[str, dict[str, Any] | None],
    s: dict[str, Any],
    ray_address: str | None,
    cpu_share: int = 1,
) -> TrialJob:
    opt = known.get(trial.instance.hash)
    return TrialJob(
        recipe=trial.instance.recipe,
        inst_hash=trial.instance.hash,
        allocator=trial.allocator,
        params=trial.params,
        seed=trial.seed,
        time_limit=s["time_limit"],
        max_rounds=s["max_rounds"],
        runtime=trial.runtime,
        faults=trial.faults,
        execution=trial.execution,
        uncertainty=trial.uncertainty,
        agents_per_actor=s["agents_per_actor"],
        max_actors=s["max_actors"],
        cpu_share=cpu_share,
        market_checks=s["market_checks"],
        trace_rounds=s["trace_rounds"],
        optimum=opt["opt_value"] if opt and opt["opt_status"] == "optimal" else None,
        ray_address=ray_address,
    )


def _optimum_row(inst: Any, result: dict[str, Any], limit: float) -> dict[str, Any]:
    row = {**inst.columns(), "opt_time_limit": limit}
    killed = KILLED in result
    if killed or "error" in result:
        note = "killed past its hard time limit" if killed else result["error"]
        status = Status.TIMEOUT if killed else Status.ERROR
        row.update(
            {
                "opt_value": None,
                "opt_status": status,
                "opt_solver": "",
                "opt_seconds": None,
                "opt_bound": None,
                "opt_note": note,
                "opt_plans": "[]",
            }
        )
    else:
        row.update(result)
    return row


def _trial_row(
    trial: Trial,
    result: dict[str, Any],
    run_id: str,
    s: dict[str, Any],
    opt: dict[str, Any] | None,
) -> dict[str, Any]:
    row = trial.base_row(run_id, s["time_limit"])
    row.update(optimum_columns(opt))
    if KILLED in result:  # its other keys say where it ran
        row.update({k: v for k, v in result.items() if k != KILLED})
        row.update(
            {
                "trial_status": Status.TIMEOUT.value,
                "trial_message": f"killed past its time limit ({s['time_limit']} s)",
                "trial_wall_s": _grace(s["time_limit"]),
            }
        )
    elif "error" in result:
        row.update({"trial_status": Status.ERROR.value, "trial_message": result["error"]})
    else:
        row.update(result)
    row["trial_finished"] = _now()
    return row


def optimum_columns(opt: dict[str, Any] | None) -> dict[str, Any]:
    """Columns of a trial row that describe the instance's exact optimum."""
    if not opt:
        return {"m_opt_status": None, "m_opt_bound": None, "m_opt_seconds": None}
    return {
        "m_opt_status": opt["opt_status"],
        "m_opt_bound": opt["opt_bound"],
        "m_opt_seconds": opt["opt_seconds"],
    }
