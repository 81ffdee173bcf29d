"""The result store (DESIGN §8): Parquet files written atomically, plus JSON run manifests.

Layout under the output root::

    results/
      <run_id>/manifest.json          spec, git commit, versions, machine, counts, status
      <run_id>/trials/<key>.parquet   one row per trial (written as each trial ends)
      optima/<instance hash>.parquet  exact optimum of an instance, shared by every run

A row is written before its trial starts with status ``interrupted`` and replaced when the
trial ends, so a run that dies leaves a trace of what was in flight. Every write goes to a
temporary file first and is renamed into place: a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

STATUSES = ("done", "timeout", "error", "skip", "interrupted")
FINAL = ("done", "timeout", "error", "skip")

#: Types of the standard columns; other columns (alg_p_*) are inferred.
FLOAT_COLUMNS = {
    "trial_time_limit",
    "trial_wall_s",
    "trial_cpu_s",
    "trial_peak_rss_mb",
    "inst_mean_degree",
    "m_objective",
    "m_coverage",
    "m_total_distance",
    "m_makespan",
    "m_reward",
    "m_fairness",
    "m_fairness_tasks",
    "m_opt_value",
    "m_gap",
    "m_best_known",
    "m_gap_best_known",
    "opt_value",
    "opt_bound",
    "opt_seconds",
    "opt_time_limit",
    "m_opt_bound",
    "m_opt_seconds",
    "m_msgs_per_round",
}
INT_COLUMNS = {
    "trial_seed",
    "trial_rep",
    "inst_n_tasks",
    "inst_n_agents",
    "inst_seed",
    "inst_edges",
    "inst_diameter",
    "inst_bundle_limit",
    "m_tasks_assigned",
    "m_conflicts",
    "m_violations",
    "m_violations_window",
    "m_violations_bundle",
    "m_violations_capability",
    "m_violations_capacity",
    "m_violations_return",
    "m_violations_precedence",
    "m_agents_used",
    "m_rounds",
    "m_messages",
    "m_bytes",
    "m_msgs_max_pair",
    "m_pairs_used",
    "m_nodes",
}
BOOL_COLUMNS = {"m_feasible", "m_complete", "m_converged", "inst_time_windows"}


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def row_table(rows: list[dict[str, Any]]) -> pa.Table:
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    arrays = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in FLOAT_COLUMNS:
            typ = pa.float64()
        elif name in INT_COLUMNS:
            typ = pa.int64()
        elif name in BOOL_COLUMNS:
            typ = pa.bool_()
        else:
            typ = None
        arrays[name] = pa.array(values, typ) if typ is not None else pa.array(values)
        if arrays[name].type == pa.null():
            arrays[name] = arrays[name].cast(pa.string())
    return pa.table(arrays)


class RunStore:
    def __init__(self, out: str | Path, run_id: str) -> None:
        self.root = Path(out)
        self.run_id = run_id
        self.dir = self.root / run_id
        self.trials_dir = self.dir / "trials"
        self.optima_dir = self.root / "optima"

    # -- trials ------------------------------------------------------------------------
    def write_row(self, row: dict[str, Any]) -> None:
        _atomic_write_table(row_table([row]), self.trials_dir / f"{row['trial_key']}.parquet")

    def statuses(self) -> dict[str, str]:
        """trial key -> stored status, for resuming."""
        out = {}
        for path in sorted(self.trials_dir.glob("*.parquet")):
            try:
                out[path.stem] = pq.read_table(path, columns=["trial_status"]).column(0)[0].as_py()
            except (OSError, pa.ArrowInvalid, KeyError):
                continue  # unreadable leftovers are re-run
        return out

    def rows(self) -> list[dict[str, Any]]:
        files = sorted(self.trials_dir.glob("*.parquet"))
        return [pq.read_table(f).to_pylist()[0] for f in files]

    # -- manifest -------------------------------------------------------------------------
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def read_manifest(self) -> dict[str, Any] | None:
        p = self.manifest_path()
        return json.loads(p.read_text()) if p.exists() else None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        _atomic_write_text(
            json.dumps(manifest, indent=2, sort_keys=True, default=str), self.manifest_path()
        )

    # -- optima ---------------------------------------------------------------------------
    def read_optimum(self, inst_hash: str) -> dict[str, Any] | None:
        p = self.optima_dir / f"{inst_hash}.parquet"
        if not p.exists():
            return None
        try:
            return pq.read_table(p).to_pylist()[0]
        except (OSError, pa.ArrowInvalid, IndexError):
            return None

    def write_optimum(self, row: dict[str, Any]) -> None:
        _atomic_write_table(row_table([row]), self.optima_dir / f"{row['inst_hash']}.parquet")


def latest_run(out: str | Path) -> str | None:
    runs = sorted((p for p in Path(out).glob("*/manifest.json")), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent.name if runs else None


def new_run_id(spec_hash: str) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{spec_hash[:6]}"


def environment() -> dict[str, Any]:
    """Versions, machine and git commit, for the run manifest."""
    versions = {}
    for pkg in ("numpy", "pyarrow", "duckdb", "pulp", "scipy", "ray", "rich", "dta-harness"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    repo = Path(__file__).resolve().parents[1]
    commit = dirty = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        dirty = bool(status.strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        pass
    mem = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "python": sys.version.split()[0],
        "versions": versions,
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "memory_gib": mem,
            "node": platform.node(),
        },
    }
