"""Regression checks against a stored baseline (DESIGN §8, docs/regression.md).

A baseline is one Parquet file: the rows of a run, reduced to the identifying columns, the
deterministic metrics (every numeric or boolean ``m_`` column but timings and the optimum
solver's own figures, plus the status and the plans) and the timings. ``check`` pairs a
run's trials with the baseline's on the trial key:

* deterministic metrics must be equal, or within a stated tolerance (relative, per metric or
  for all); every difference is listed with its direction (better / worse for the metrics that
  have one);
* timings are judged per group of like trials (allocator, parameters, family, size, faults,
  runtime, execution): the median of the paired ratios current/baseline must exceed the
  threshold *and* a one-sided Wilcoxon signed-rank test on the log ratios must reject "no
  slower" at ``alpha``, which needs enough repetitions (``min_reps``); groups with fewer, or
  faster than ``time_floor`` seconds in the baseline, are reported as not judged.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import InputError, SpecError
from harness.model import OBJECTIVES
from harness.params import Param
from harness.store import Status

META_KEY = b"dta_harness.baseline"
IDENTITY = (
    "trial_key",
    "alg_name",
    "alg_params",
    "inst_family",
    "inst_name",
    "inst_size",
    "inst_n_tasks",
    "inst_objective",
    "inst_hash",
    "trial_rep",
    "trial_seed",
    "trial_runtime",
    "trial_fault_name",
    "trial_execution",
)
TIMINGS = ("trial_wall_s", "trial_cpu_s")
#: m_ columns that measure time or depend on the optimum solver's clock, not the allocation
NOT_DETERMINISTIC = {
    "m_opt_seconds",
    "m_opt_bound",
    "m_opt_status",
    "m_exec_alloc_wall_s",
    "m_exec_alloc_cpu_s",
}
EXACT_TEXT = ("trial_status", "trial_plans")
LOWER_BETTER = (
    "m_gap",
    "m_gap_best_known",
    "m_conflicts",
    "m_violations",
    "m_messages",
    "m_bytes",
    "m_rounds",
    "m_msgs_",
    "m_exec_gap",
    "m_exec_objective",
    "m_exec_makespan",
    "m_exec_distance",
    "m_exec_max_distance",
    "m_exec_replans",
)
HIGHER_BETTER = (
    "m_coverage",
    "m_tasks_assigned",
    "m_feasible",
    "m_complete",
    "m_converged",
    "m_welfare",
    "m_reward",
    "m_exec_complete",
)
STATUS_RANK = {
    Status.DONE: 3,
    Status.SKIP: 2,
    Status.TIMEOUT: 1,
    Status.ERROR: 0,
    Status.INTERRUPTED: 0,
}


def _is_timing(name: str) -> bool:
    return name in NOT_DETERMINISTIC or name.endswith("_s") or "seconds" in name


def metric_columns(schema: pa.Schema) -> list[str]:
    """The deterministic metrics of a trials table: numeric and boolean ``m_`` columns."""
    out = []
    for f in schema:
        if not f.name.startswith("m_") or _is_timing(f.name):
            continue
        if (
            pa.types.is_integer(f.type)
            or pa.types.is_floating(f.type)
            or pa.types.is_boolean(f.type)
        ):
            out.append(f.name)
    return out


# -- locating a run ------------------------------------------------------------------------------
def run_dir(results: str | Path) -> Path:
    """A run directory: ``results`` itself, or the latest run under a result root."""
    from harness.store import latest_run

    p = Path(results)
    if (p / "manifest.json").exists():
        return p
    latest = latest_run(p)
    if latest is None:
        raise InputError(str(p), "(folder)", "a run directory or a result root holding runs")
    return p / latest


def read_run(results: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    d = run_dir(results)
    from harness.store import readable

    files = readable(sorted((d / "trials").glob("*.parquet")))
    if not files:
        raise InputError(str(d), "trials", "stored trials (run `harness bench` first)")
    import duckdb

    from harness.store import typed_trials_sql

    con = duckdb.connect()
    table = con.sql(typed_trials_sql(con, files)).arrow()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    from harness.store import RunStore

    manifest = RunStore(d.parent, d.name).read_manifest() or {}
    return table, manifest


# -- baseline files --------------------------------------------------------------------------------
def write_baseline(results: str | Path, out: str | Path) -> tuple[Path, int]:
    """Reduce a finished run to a baseline file; returns its path and row count."""
    table, manifest = read_run(results)
    if manifest.get("status") != Status.DONE:
        raise InputError(
            str(run_dir(results) / "manifest.json"),
            "status",
            "a finished run ('done'; continue it with harness bench --resume)",
            manifest.get("status"),
        )
    names = set(table.column_names)
    keep = [c for c in IDENTITY + EXACT_TEXT + TIMINGS if c in names]
    keep += metric_columns(table.schema)
    table = table.select(keep).sort_by("trial_key")
    meta = {
        "run_id": manifest.get("run_id"),
        "git_commit": manifest.get("git_commit"),
        "git_dirty": manifest.get("git_dirty"),
        "spec_hash": manifest.get("spec_hash"),
        "machine": manifest.get("machine"),
        "versions": manifest.get("versions"),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    return out, table.num_rows


def read_baseline(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), "(file)", "a baseline file (harness baseline update)")
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(str(p), "(file)", "a readable Parquet baseline", str(exc)) from None
    missing = [c for c in ("trial_key", "trial_status", "alg_name") if c not in table.column_names]
    if missing:
        raise InputError(
            str(p), missing[0], "a column of a baseline written by harness baseline update"
        )
    raw = (table.schema.metadata or {}).get(META_KEY)
    return table, json.loads(raw) if raw else {}


# -- comparing -------------------------------------------------------------------------------------
def _tolerance_table(value: Any, source: str, where: str) -> dict[str, float]:
    """``{m_metric = relative tolerance >= 0}``."""
    if not isinstance(value, dict):
        raise ValueError(value)
    tolerance = Param("tolerance", 0.0, low=0.0, expected="a relative tolerance >= 0")
    for metric in value:
        if not str(metric).startswith("m_"):
            raise SpecError(source, f"{where}.{metric}", "an m_ metric name")
    return {m: tolerance.check(t, source, f"{where}.{m}") for m, t in value.items()}


#: what the check may be told: a spec's ``[check]`` table sets ``SPEC_CHECK`` of them, the
#: flags of ``harness check`` the numbers (flags win over the table, the table over defaults)
CHECK_PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("rtol", 1e-9, "relative tolerance of every metric", low=0.0),
        Param(
            "plan_rtol",
            1e-9,
            "relative tolerance of the times, bids and prices inside plans; task ids and their "
            "order must match exactly",
            low=0.0,
        ),
        Param(
            "time_threshold",
            2.0,
            "median paired ratio current/baseline above which a group is slower",
            low=1.0,
        ),
        Param("time_alpha", 0.05, "significance of the slower-than test", low=0.0, high=1.0),
        Param(
            "time_floor",
            0.005,
            "seconds: groups faster than this in the baseline are not judged",
            low=0.0,
        ),
        Param(
            "tolerances",
            {},
            "relative tolerances of single metrics",
            parse=_tolerance_table,
            expected="a table of m_ metric = relative tolerance >= 0",
        ),
    )
}
SPEC_CHECK = ("rtol", "plan_rtol", "time_threshold", "tolerances")


@dataclass
class Settings:
    rtol: float = CHECK_PARAMS["rtol"].default
    plan_rtol: float = CHECK_PARAMS["plan_rtol"].default
    tolerances: dict[str, float] = field(default_factory=dict)  # metric -> relative tolerance
    fail_on: str = "any"  # "any" difference, or only "worse"
    time_metric: str = "trial_wall_s"
    time_threshold: float = CHECK_PARAMS["time_threshold"].default
    time_alpha: float = CHECK_PARAMS["time_alpha"].default
    min_reps: int = 6
    time_floor: float = CHECK_PARAMS["time_floor"].default
    allow_missing: bool = False
    max_plan_diffs: int = 5  # plan differences listed per trial


@dataclass(frozen=True)
class PlanDiff:
    """One difference between two stored plan sets: where (agent, task, field) and values."""

    where: str
    baseline: Any
    current: Any
    change: str = ""


#: float lists of a stored plan, compared within ``plan_rtol``; task ids are compared exactly
PLAN_FLOATS = ("times", "bids", "prices")


def _plans(text: str | None) -> dict[int, dict[str, Any]]:
    plans = json.loads(text) if text else []
    return {int(p["agent"]): p for p in plans}


def plan_differences(base: str | None, cur: str | None, rtol: float) -> list[PlanDiff]:
    """Compare two ``trial_plans`` JSON texts structurally: per agent, the task ids and their
    order exactly; start times, bids and prices within the relative tolerance ``rtol`` (so a
    last-ulp difference of a SIMD kernel is no change, docs/regression.md); ``extra`` values the
    same way when numeric, exactly otherwise. An empty list means equal."""
    a, b = _plans(base), _plans(cur)
    out: list[PlanDiff] = []
    for agent in sorted(a.keys() | b.keys()):
        pa_, pb = a.get(agent), b.get(agent)
        if pa_ is None or pb is None:
            out.append(
                PlanDiff(
                    f"agent {agent}",
                    "no plan" if pa_ is None else "a plan",
                    "no plan" if pb is None else "a plan",
                )
            )
            continue
        ta, tb = list(pa_.get("tasks") or []), list(pb.get("tasks") or [])
        if ta != tb:
            out.append(PlanDiff(f"agent {agent} tasks", ta, tb, _task_change(ta, tb)))
            continue
        for name in PLAN_FLOATS:
            va, vb = pa_.get(name), pb.get(name)
            if va is None or vb is None or len(va) != len(vb):
                if va != vb:
                    out.append(PlanDiff(f"agent {agent} {name}", va, vb))
                continue
            for task, x, y in zip(ta, va, vb, strict=True):
                if not _same(x, y, rtol):
                    out.append(
                        PlanDiff(
                            f"agent {agent} task {task} {name[:-1]}",
                            repr(x),
                            repr(y),
                            _rel_change(x, y),
                        )
                    )
        ea, eb = pa_.get("extra") or {}, pb.get("extra") or {}
        for k in sorted(ea.keys() | eb.keys()):
            x, y = ea.get(k), eb.get(k)
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
            if (numeric and not _same(x, y, rtol)) or (not numeric and x != y):
                out.append(PlanDiff(f"agent {agent} extra.{k}", x, y, _rel_change(x, y)))
    return out


def _task_change(ta: list[int], tb: list[int]) -> str:
    if sorted(ta) == sorted(tb):
        return "same tasks, other order"
    lost, gained = sorted(set(ta) - set(tb)), sorted(set(tb) - set(ta))
    return (
        "; ".join(
            part
            for part in (f"lost {lost}" if lost else "", f"gained {gained}" if gained else "")
            if part
        )
        or "other order"
    )


def _rel_change(x: Any, y: Any) -> str:
    a, b = _num(x), _num(y)
    if a is None or b is None:
        return ""
    scale = max(abs(a), abs(b))
    return f"{b - a:+.3g} (rel {abs(b - a) / scale:.2g})" if scale else f"{b - a:+.3g}"


@dataclass
class Moved:
    kind: str  # "metric", "status", "missing", "timing"
    verdict: str  # "worse", "better", "changed", "slower", "faster", "missing", "new"
    allocator: str
    family: str
    size: str
    what: str  # instance and repetition, or the group
    metric: str
    baseline: Any
    current: Any
    change: str = ""
    regression: bool = False

    def cells(self, fmt: Any = str) -> list[str]:
        """The row of a 'what moved' table after its verdict; ``fmt`` shows a value."""
        return [
            self.allocator,
            self.family,
            self.size,
            self.what,
            self.metric,
            fmt(self.baseline),
            fmt(self.current),
            self.change,
        ]


@dataclass
class Report:
    compared: int = 0
    missing: int = 0
    new: int = 0
    metrics: int = 0
    timing_groups: int = 0
    timing_unjudged: int = 0
    moved: list[Moved] = field(default_factory=list)
    baseline_meta: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    version_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Moved]:
        return [m for m in self.moved if m.regression]


def _named(metric: str, patterns: tuple[str, ...]) -> bool:
    """``metric`` is one of the names, or one of their ``_``-suffixed variants."""
    return any(metric == p or metric.startswith(p.rstrip("_") + "_") for p in patterns)


def _direction(metric: str, sense: str | None) -> int:
    """+1 when larger is better, -1 when smaller is better, 0 when neither."""
    if metric == "m_objective":
        return {"max": 1, "min": -1}.get(sense or "", 0)
    if _named(metric, HIGHER_BETTER):
        return 1
    return -1 if _named(metric, LOWER_BETTER) else 0


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    f = float(v)
    return None if math.isnan(f) else f


def _same(a: Any, b: Any, rtol: float) -> bool:
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return x is None and y is None
    if math.isinf(x) or math.isinf(y):
        return x == y
    # a tolerance of 0 means exact; otherwise values within 1e-12 of each other near 0 are equal
    return abs(x - y) <= rtol * max(abs(x), abs(y)) + (1e-12 if rtol else 0.0)


def _fmt_change(a: Any, b: Any) -> str:
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return ""
    if x == 0:
        return f"{y - x:+.4g}"
    return f"{100 * (y - x) / abs(x):+.2f}%"


def compare(base: pa.Table, cur: pa.Table, s: Settings) -> Report:
    rep = Report()
    brows = {r["trial_key"]: r for r in base.to_pylist()}
    crows = {r["trial_key"]: r for r in cur.to_pylist()}
    rep.compared = len(brows.keys() & crows.keys())
    metrics = [m for m in metric_columns(base.schema) if m in set(cur.column_names)]
    rep.metrics = len(metrics)

    for key in sorted(brows):
        b = brows[key]
        where = f"{b.get('inst_name')} rep {b.get('trial_rep')}" + (
            f" [{b.get('trial_fault_name')}]"
            if b.get("trial_fault_name") not in (None, "none")
            else ""
        )
        head = (b["alg_name"], b.get("inst_family") or "", b.get("inst_size") or "", where)
        c = crows.get(key)
        if c is None:
            rep.missing += 1
            rep.moved.append(
                Moved(
                    "missing",
                    "missing",
                    *head,
                    "trial",
                    b["trial_status"],
                    None,
                    "",
                    not s.allow_missing,
                )
            )
            continue
        if c["trial_status"] != b["trial_status"]:
            worse = STATUS_RANK.get(c["trial_status"], 0) < STATUS_RANK.get(b["trial_status"], 0)
            verdict = "worse" if worse else "better"
            rep.moved.append(
                Moved(
                    "status",
                    verdict,
                    *head,
                    "trial_status",
                    b["trial_status"],
                    c["trial_status"],
                    "",
                    s.fail_on == "any" or worse,
                )
            )
            continue
        if b["trial_status"] != Status.DONE:
            continue
        sense = OBJECTIVES.get(b.get("inst_objective") or "")
        for m in metrics:
            tol = s.tolerances.get(m, s.rtol)
            if _same(b.get(m), c.get(m), tol):
                continue
            d = _direction(m, sense)
            x, y = _num(b.get(m)), _num(c.get(m))
            if d == 0 or x is None or y is None:
                verdict = "changed"
            else:
                verdict = "better" if (y - x) * d > 0 else "worse"
            regression = s.fail_on == "any" or verdict in ("worse", "changed")
            rep.moved.append(
                Moved(
                    "metric",
                    verdict,
                    *head,
                    m,
                    b.get(m),
                    c.get(m),
                    _fmt_change(b.get(m), c.get(m)),
                    regression,
                )
            )
        if "trial_plans" in b and "trial_plans" in c and b["trial_plans"] != c["trial_plans"]:
            diffs = plan_differences(b["trial_plans"], c["trial_plans"], s.plan_rtol)
            for d in diffs[: s.max_plan_diffs]:
                rep.moved.append(
                    Moved(
                        "metric",
                        "changed",
                        *head,
                        f"trial_plans {d.where}",
                        d.baseline,
                        d.current,
                        d.change,
                        s.fail_on == "any",
                    )
                )
            if len(diffs) > s.max_plan_diffs:
                rep.moved.append(
                    Moved(
                        "metric",
                        "changed",
                        *head,
                        "trial_plans",
                        "",
                        "",
                        f"and {len(diffs) - s.max_plan_diffs} more plan differences",
                        s.fail_on == "any",
                    )
                )
    rep.new = len(crows.keys() - brows.keys())
    _compare_timings(brows, crows, s, rep)
    return rep


def _group(r: dict[str, Any]) -> tuple:
    return (
        r["alg_name"],
        r.get("alg_params") or "",
        r.get("inst_family") or "",
        r.get("inst_size") or "",
        r.get("trial_fault_name") or "",
        r.get("trial_runtime") or "",
        r.get("trial_execution") or "",
    )


def timing_verdict(
    base: list[float], cur: list[float], s: Settings
) -> tuple[str, float, float | None]:
    """Judge one group's paired timings: ("slower" | "faster" | "same" | "unjudged", median
    ratio, one-sided p value of the direction the ratio points)."""
    pairs = [(b, c) for b, c in zip(base, cur, strict=True) if b and c and b > 0 and c > 0]
    if not pairs:
        return "unjudged", float("nan"), None
    logs = np.log([c / b for b, c in pairs])
    ratio = float(np.exp(np.median(logs)))
    if len(pairs) < s.min_reps or float(np.median([b for b, _ in pairs])) < s.time_floor:
        return "unjudged", ratio, None
    from scipy.stats import wilcoxon

    slower = ratio > 1
    alternative = "greater" if slower else "less"
    p = float(wilcoxon(logs, alternative=alternative).pvalue) if np.any(logs != 0) else 1.0
    factor = ratio if slower else 1 / ratio
    if factor > s.time_threshold and p < s.time_alpha:
        return ("slower" if slower else "faster"), ratio, p
    return "same", ratio, p


def _compare_timings(brows: dict, crows: dict, s: Settings, rep: Report) -> None:
    groups: dict[tuple, tuple[list[float], list[float]]] = {}
    for key, b in brows.items():
        c = crows.get(key)
        if c is None or b["trial_status"] != Status.DONE or c["trial_status"] != Status.DONE:
            continue
        if s.time_metric not in b or s.time_metric not in c:
            continue
        g = groups.setdefault(_group(b), ([], []))
        g[0].append(b[s.time_metric])
        g[1].append(c[s.time_metric])
    for g, (bs, cs) in sorted(groups.items()):
        rep.timing_groups += 1
        verdict, ratio, p = timing_verdict(bs, cs, s)
        if verdict == "unjudged":
            rep.timing_unjudged += 1
        if verdict in ("slower", "faster"):
            what = f"{len(bs)} trials" + (f" [{g[4]}]" if g[4] not in ("", "none") else "")
            params = json.loads(g[1]) if g[1] else {}
            alg = g[0] + (f" {params}" if params else "")
            rep.moved.append(
                Moved(
                    "timing",
                    verdict,
                    alg,
                    g[2],
                    g[3],
                    what,
                    s.time_metric + " (median)",
                    float(np.median(bs)),
                    float(np.median(cs)),
                    f"x{ratio:.2f} (p={p:.3g})",
                    verdict == "slower",
                )
            )


def check(
    baseline: str | Path,
    results: str | Path,
    s: Settings,
    overrides: dict[str, Any] | None = None,
) -> Report:
    """Compare a run with a baseline. Tolerances come from ``s``, then the run's spec
    ``[check]`` table, then ``overrides`` (the command line's flags), each over the one before;
    per-metric tolerances of the spec and of ``s`` are merged, ``s`` winning."""
    base, meta = read_baseline(baseline)
    cur, manifest = read_run(results)
    spec_check = dict((manifest.get("spec") or {}).get("check") or {})
    s.tolerances = {**spec_check.pop("tolerances", {}), **s.tolerances}
    for k, v in {**spec_check, **(overrides or {})}.items():
        setattr(s, k, v)
    rep = compare(base, cur, s)
    rep.baseline_meta = meta
    rep.run_id = manifest.get("run_id", "")
    before, now = meta.get("versions") or {}, manifest.get("versions") or {}
    rep.version_changes = {
        k: (before.get(k), now.get(k)) for k in sorted(before) if before.get(k) != now.get(k)
    }
    return rep
