"""The result store (DESIGN §8): Parquet files written atomically, plus JSON run manifests.

Layout under the output root::

    results/
      <run_id>/manifest.json          spec, git commit, versions, machine, counts, status
      <run_id>/trials/<key>.parquet   one row per trial (written as each trial ends)
      <run_id>/trials/compacted.parquet  the rows of a run once it stops, in one file
      <run_id>/ray.log                what Ray said while the run used it (harness.bench)
      optima/<instance hash>.parquet  exact optimum of an instance, shared by every run

A row is written before its trial starts with status ``interrupted`` and replaced when the
trial ends, so a run that dies leaves a trace of what was in flight. Every write goes to a
temporary file first and is renamed into place: a reader never sees half a file. When a run
stops, its rows are merged into ``compacted.parquet`` and the one-row files removed (reading
one file is about 100 times faster than reading a thousand); a resumed run writes one-row
files again, which win over the compacted row of the same key until the next compaction.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class Status(enum.StrEnum):
    """The one status vocabulary of a trial (and of a run's manifest), shared by the pool,
    bench, the store, the regression check and the report. Members are strings: stored as
    their value, equal to it in comparisons."""

    DONE = "done"
    TIMEOUT = "timeout"
    ERROR = "error"
    SKIP = "skip"
    INTERRUPTED = "interrupted"  # started, no result stored (yet)


STATUSES = tuple(Status)
COMPACTED = "compacted.parquet"
#: statuses a resumed run keeps (unless asked to retry them)
FINAL = (Status.DONE, Status.TIMEOUT, Status.ERROR, Status.SKIP)

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
    "m_exec_objective",
    "m_exec_gap",
    "m_exec_gap_best_known",
    "m_exec_makespan",
    "m_exec_distance",
    "m_exec_max_distance",
    "m_exec_alloc_wall_s",
    "m_exec_alloc_cpu_s",
    "m_welfare",
    "m_value",
    "m_cost",
    "m_payments",
    "m_holder_utility",
    "m_agent_utility",
    "m_agent_utility_mean",
    "m_agent_utility_mean_winners",
    "m_agent_utility_min",
    "m_satisfaction",
    "m_fitness_total",
    "m_cost_effectiveness",
    "m_stability_gain",
    "m_truth_gain",
    "m_truth_factor",
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
    "m_exec_replans",
    "m_exec_checkpoints",
    "m_exec_events",
    "m_crashed",
    "m_calls",
    "m_actors",
    "m_unpriced_tasks",
    "m_ir_violations",
    "m_auction_rounds",
    "m_truth_agent",
    "m_truth_runs",
    "m_unstable_agent",
    "m_mc_draws",
}
BOOL_COLUMNS = {
    "m_feasible",
    "m_complete",
    "m_converged",
    "inst_time_windows",
    "m_exec_complete",
    "m_stable",
    "m_truth_complete",
}
#: ``m_`` columns that hold text (every other metric is a number or a flag)
TEXT_METRICS = {"m_opt_status", "m_msg_types"}
#: prefixes of metric families whose members are counts (``m_msgs_dropped``, ...)
INT_PREFIXES = ("m_msgs_",)
_SQL = {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "text": "VARCHAR"}


def column_kind(name: str) -> str | None:
    """The declared kind of a stored column ("float", "int", "bool", "text"), or None for a
    column whose type is taken from its values (``alg_p_*``, ``inst_*`` features, text)."""
    if name in FLOAT_COLUMNS:
        return "float"
    if name in INT_COLUMNS or (name.startswith(INT_PREFIXES) and name != "m_msgs_per_round"):
        return "int"
    if name in BOOL_COLUMNS:
        return "bool"
    if name in TEXT_METRICS:
        return "text"
    if name.startswith("m_"):
        return "float"  # a metric nobody declared: a number (so a null never turns it to text)
    return None


class DamagedFile(UserWarning):
    """A stored file that cannot be read: skipped (its path and reason in the message)."""


def _damaged(path: Path, reason: str) -> None:
    import warnings

    warnings.warn(
        DamagedFile(
            f"skipped damaged file {path} ({reason}); `harness store verify --repair` moves "
            "it aside"
        ),
        stacklevel=3,
    )


def parquet_problem(path: Path, full: bool = False, column: str = "trial_key") -> str | None:
    """Why a stored Parquet file cannot be used, or None. The quick check reads its footer
    and schema; ``full`` reads every page too (a flipped bit inside the data)."""
    try:
        if full:
            table = pq.read_table(path, page_checksum_verification=True)
            names = table.column_names
        else:
            meta = pq.read_metadata(path)  # the footer, once
            names = meta.schema.names
            if meta.num_rows < 1:
                return "no rows"
    except Exception as exc:  # noqa: BLE001 - any failure to read is damage
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    if column not in names:
        return f"no {column} column"
    return None


def readable(
    files: list[Path],
    column: str = "trial_key",
    check: Callable[[Path], str | None] | None = None,
) -> list[Path]:
    """The files that can be read (Parquet footer and schema with ``column``, or what
    ``check`` says, e.g. ``json_problem``); the others are skipped with a ``DamagedFile``
    warning naming each."""
    out = []
    for f in files:
        problem = parquet_problem(f, column=column) if check is None else check(f)
        if problem is None:
            out.append(f)
        else:
            _damaged(f, problem)
    return out


def json_problem(path: Path) -> str | None:
    """Why a run manifest cannot be used, or None."""
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if isinstance(d, dict) else "not a JSON object"


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, write_page_checksum=True)  # a flipped bit is found on read
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def row_table(rows: list[dict[str, Any]]) -> pa.Table:
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    arrays = {}
    arrow = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "text": pa.string()}
    for name in names:
        values = [r.get(name) for r in rows]
        kind = column_kind(name)
        typ = arrow[kind] if kind is not None else None
        if kind == "int" and any(isinstance(v, float) and not v.is_integer() for v in values):
            typ = pa.float64()  # a count that is not whole: keep the value
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
        compacted = self.trials_dir / COMPACTED
        if compacted.exists():
            try:
                t = pq.read_table(compacted, columns=["trial_key", "trial_status"])
                out.update(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
            except Exception as exc:  # noqa: BLE001 - its trials run again; the file stays
                _damaged(compacted, f"{type(exc).__name__}")
        for path in self.single_files():
            try:
                out[path.stem] = pq.read_table(path, columns=["trial_status"]).column(0)[0].as_py()
            except (OSError, pa.ArrowInvalid, KeyError):
                continue  # unreadable leftovers are re-run
        return out

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock (``<run>/.lock``, an advisory ``flock`` the kernel drops
        when the process dies): a second process writing the same run is refused."""
        import fcntl

        from harness.errors import HarnessError

        path = self.dir / ".lock"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")  # noqa: SIM115 - held for the context
        except OSError as exc:
            raise HarnessError(
                f"--out {self.root}: cannot write the run directory {self.dir}: "
                f"{exc.strerror or exc} (expected a writable directory)"
            ) from None
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                raise HarnessError(
                    f"{self.dir}: another harness process (pid {holder}) is writing this run; "
                    "wait for it to stop, then resume it with harness bench --resume "
                    f"{self.run_id}"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            fh.close()

    def single_files(self) -> list[Path]:
        return sorted(p for p in self.trials_dir.glob("*.parquet") if p.name != COMPACTED)

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row, one per trial key (a one-row file wins over the compacted row)."""
        by_key: dict[str, dict[str, Any]] = {}
        compacted = self.trials_dir / COMPACTED
        for f in readable([compacted] if compacted.exists() else []):
            by_key.update((r["trial_key"], r) for r in pq.read_table(f).to_pylist())
        for f in readable(self.single_files()):
            row = pq.read_table(f).to_pylist()[0]
            by_key[row["trial_key"]] = row
        return [by_key[k] for k in sorted(by_key)]

    def compact(self) -> int:
        """Merge the run's rows into ``compacted.parquet`` (one row per key, sorted by key) and
        remove the one-row files; returns the number of rows. Column types are unified as
        DuckDB does for the ``trials`` view."""
        singles = self.single_files()
        if not singles:
            return 0
        import duckdb

        files = readable(
            singles
            + ([self.trials_dir / COMPACTED] if (self.trials_dir / COMPACTED).exists() else [])
        )
        if (self.trials_dir / COMPACTED).exists() and self.trials_dir / COMPACTED not in files:
            return 0  # never overwrite a damaged compacted file: verify --repair first
        con = duckdb.connect()
        table = con.sql(f"{typed_trials_sql(con, files)} ORDER BY trial_key").arrow()
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
        _atomic_write_table(table, self.trials_dir / COMPACTED)
        n = table.num_rows
        for f in singles:
            f.unlink(missing_ok=True)
        return int(n)

    # -- manifest -------------------------------------------------------------------------
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def read_manifest(self) -> dict[str, Any] | None:
        p = self.manifest_path()
        if not p.exists():
            return None
        problem = json_problem(p)
        if problem is not None:
            from harness.errors import HarnessError

            raise HarnessError(
                f"{p}: damaged run manifest ({problem}); `harness store verify --repair "
                f"--results {self.root}` moves it aside and writes a minimal one"
            )
        return json.loads(p.read_text())

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


def _quote(path: Path | str) -> str:
    return str(path).replace("'", "''")


#: columns every ``trials`` view has, even when no stored row holds them (a run whose trials all
#: failed stores no metric): queries and reports bind to them and see NULLs
CORE_COLUMNS = (
    "trial_key",
    "trial_run_id",
    "trial_status",
    "trial_message",
    "trial_runtime",
    "trial_fault_name",
    "trial_execution",
    "trial_uncertainty_name",
    "trial_wall_s",
    "trial_cpu_s",
    "alg_name",
    "alg_params",
    "inst_family",
    "inst_name",
    "inst_size",
    "inst_n_tasks",
    "inst_n_agents",
    "inst_objective",
    "m_objective",
    "m_gap",
    "m_gap_best_known",
    "m_best_known",
    "m_opt_value",
    "m_feasible",
    "m_complete",
    "m_coverage",
    "m_conflicts",
    "m_violations",
    "m_messages",
    "m_bytes",
    "m_rounds",
    "m_converged",
    "trial_finished",
    "inst_hash",
    "m_opt_status",
)


def sql_type(name: str) -> str:
    """The DuckDB type of a stored column (VARCHAR for undeclared ones)."""
    kind = column_kind(name)
    return _SQL[kind] if kind is not None else "VARCHAR"


def typed_trials_sql(con: Any, files: list[Path]) -> str:
    """``trials_sql`` with every declared column cast to its declared type (a store written
    before a column was declared, or one whose nulls were stored as text, reads the same) and
    the ``CORE_COLUMNS`` it lacks added as typed NULLs."""
    raw = trials_sql(files)
    have = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE ({raw})").fetchall()}
    replace, add = [], []
    for name, typ in have.items():
        kind = column_kind(name)
        want = _SQL[kind] if kind is not None else None
        if kind == "int" and typ == "DOUBLE":
            want = None  # counts stored as floats somewhere: keep the floats
        if want is not None and typ != want:
            replace.append(f'TRY_CAST("{name}" AS {want}) AS "{name}"')
    for name in CORE_COLUMNS:
        if name not in have:
            add.append(f'CAST(NULL AS {sql_type(name)}) AS "{name}"')
    if not replace and not add:
        return raw
    star = f"* REPLACE ({', '.join(replace)})" if replace else "*"
    return f"SELECT {star}{''.join(', ' + a for a in add)} FROM ({raw})"


def trials_sql(files: list[Path]) -> str:
    """A SELECT over trial files (one-row and compacted, of one run or many): one row per run
    and key, a one-row file winning over a compacted row (a resumed run not yet compacted)."""
    listing = "[" + ", ".join(f"'{_quote(f)}'" for f in files) + "]"
    mixed = {f.parent for f in files if f.name == COMPACTED} & {
        f.parent for f in files if f.name != COMPACTED
    }
    if not mixed:
        return f"SELECT * FROM read_parquet({listing}, union_by_name = true)"
    return (
        f"SELECT * EXCLUDE (filename) FROM read_parquet({listing}, union_by_name = true, "
        "filename = true) QUALIFY row_number() OVER (PARTITION BY trial_run_id, trial_key "
        f"ORDER BY (filename LIKE '%{COMPACTED}')) = 1"
    )


def run_dirs(path: str | Path) -> list[Path]:
    """``path`` itself when it is a run directory, else the runs of the result root it is."""
    p = Path(path)
    if (p / "manifest.json").exists():
        return [p]
    return sorted(m.parent for m in p.glob("*/manifest.json"))


@dataclass
class Damage:
    path: Path
    problem: str
    moved_to: Path | None = None


def verify(results: list[str | Path], repair: bool = False) -> tuple[int, list[Damage]]:
    """Read every stored file under the result paths in full: trial files, run manifests and
    optimum files. Returns the number of files checked and the damaged ones. ``repair`` moves
    each damaged file into ``<root>/damaged/`` (nothing is deleted) and gives a run whose
    manifest was damaged a minimal one (no spec: resume it with its spec file)."""
    checked = 0
    found: list[Damage] = []
    roots: set[Path] = set()
    for r in results:
        for run in run_dirs(r):
            roots.add(run.parent)
            checked += 1
            m = run / "manifest.json"
            problem = json_problem(m)
            if problem:
                found.append(Damage(m, problem))
            for f in sorted((run / "trials").glob("*.parquet")):
                checked += 1
                problem = parquet_problem(f, full=True)
                if problem:
                    found.append(Damage(f, problem))
    for root in sorted(roots):
        for f in sorted((root / "optima").glob("*.parquet")):
            checked += 1
            problem = parquet_problem(f, full=True, column="inst_hash")
            if problem:
                found.append(Damage(f, problem))
    if repair:
        for d in found:
            root = next(
                r for r in sorted(roots, key=lambda p: -len(p.parts)) if r in d.path.parents
            )
            dest = root / "damaged" / d.path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(d.path, dest)
            d.moved_to = dest
            if d.path.name == "manifest.json":
                run = d.path.parent
                _atomic_write_text(
                    json.dumps(
                        {
                            "run_id": run.name,
                            "status": Status.INTERRUPTED.value,
                            "spec": None,
                            "spec_hash": None,
                            "notes": [
                                f"manifest rebuilt by harness store verify --repair; the "
                                f"damaged one is {dest}"
                            ],
                        },
                        indent=2,
                    ),
                    d.path,
                )
    return checked, found


def compact_all(results: list[str | Path]) -> dict[str, int]:
    """Compact every run under each path (a result root or a run directory)."""
    return {
        str(run): RunStore(run.parent, run.name).compact() for r in results for run in run_dirs(r)
    }


def latest_run(out: str | Path) -> str | None:
    runs = sorted((p for p in Path(out).glob("*/manifest.json")), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent.name if runs else None


def new_run_id(spec_hash: str, out: str | Path | None = None) -> str:
    """``UTCdate-time-spechash``; when ``out`` already holds a run of that name (the same spec
    started twice within a second), ``-2``, ``-3``, ... after it."""
    base = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{spec_hash[:6]}"
    if out is None:
        return base
    name, k = base, 1
    while (Path(out) / name).exists():
        k += 1
        name = f"{base}-{k}"
    return name


def cached_rows(out: str | Path, run_id: str, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The trial cache: for each trial key of ``wanted`` (key -> code version,
    harness/codeversion.py), the latest ``done`` or ``skip`` row another run under ``out``
    stored with that key and that code version. Timeouts and errors are not reused: they
    may come from the machine rather than the code. A store that cannot be read as a whole
    (a damaged file, rows from before code versions) gives what can be matched, or nothing."""
    import duckdb

    files = [
        str(p)
        for p in sorted(Path(out).glob("*/trials/*.parquet"))
        if p.parent.parent.name != run_id
    ]
    if not files or not wanted:
        return {}
    keys = pa.table({"k": list(wanted), "v": list(wanted.values())})
    con = duckdb.connect()
    con.register("wanted", keys)
    try:
        rel = con.sql(
            "SELECT t.* FROM read_parquet($files, union_by_name = true) t "
            "JOIN wanted w ON t.trial_key = w.k AND t.trial_code_version = w.v "
            "WHERE t.trial_status IN ('done', 'skip') "
            "QUALIFY row_number() OVER (PARTITION BY t.trial_key "
            "ORDER BY t.trial_finished DESC NULLS LAST) = 1",
            params={"files": files},
        )
        table = rel.to_arrow_table()
    except duckdb.Error:
        return {}
    return {r["trial_key"]: r for r in table.to_pylist()}


def git_commit() -> str | None:
    """The commit of the checkout the harness runs from; None when installed from a wheel."""
    return git_state()[0]


def git_state() -> tuple[str | None, bool | None]:
    """(commit, whether tracked files changed) of the checkout the harness runs from. An
    installed copy lives in site-packages, which may sit inside some other repository: only a
    folder that is itself the project's checkout counts."""
    repo = Path(__file__).resolve().parents[1]
    if not ((repo / ".git").exists() and (repo / "pyproject.toml").exists()):
        return None, None
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
    return commit, dirty


def environment() -> dict[str, Any]:
    """Versions, machine and git commit, for the run manifest."""
    versions = {}
    for pkg in ("numpy", "pyarrow", "duckdb", "pulp", "scipy", "ray", "rich", "dta-harness"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    commit, dirty = git_state()
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
