"""``harness``: the command line, a thin shell over the Python API (STYLE: benchopt).

harness bench [SPEC.toml] [--allocators a,b] [--family f] [--size 10x5,20x4] ...
harness query "SQL" [--results DIR ...] [--format table|csv|json|parquet] [--output FILE]
harness report [--results DIR ...] [--out DIR]
harness check --baseline FILE [--results DIR]; harness baseline update --baseline FILE
harness datasets freeze [SPEC] --name NAME; harness datasets verify NAME
harness list allocators|families
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from harness.errors import HarnessError
from harness.store import Status

if TYPE_CHECKING:
    from harness.params import Param

console = Console()
if not console.is_terminal:  # logs and pipes: wide enough for the summary table
    console = Console(width=160)
err_console = Console(stderr=True)


def param_flags(
    p: argparse.ArgumentParser,
    params: Iterable[Param],
    suite: dict[str, Any] | None = None,
    note: str = "",
) -> None:
    """A ``--flag`` for each declared parameter, its help built from the declaration (meaning,
    allowed values, default). Flags default to None, so a value the user did not give never
    overrides a spec's; ``suite`` gives the values a bare command runs with where they differ
    from the defaults (a bare ``harness bench`` runs the default suite); ``note`` ends each
    help."""
    from harness.params import shown

    for param in params:
        flag = "--" + param.name.replace("_", "-")
        text = param.help()[:-1]
        if suite and param.name in suite and suite[param.name] != param.default:
            text += f"; the default suite: {shown(suite[param.name])}"
        text += note + ")"
        text = text.replace("%", "%%")  # argparse formats help with %
        if param.kind is bool:
            action: Any = argparse.BooleanOptionalAction
            p.add_argument(flag, dest=param.name, action=action, default=None, help=text)
        else:
            p.add_argument(flag, dest=param.name, type=param.kind, default=None, help=text)


def _version() -> str:
    """The installed distribution's version, and the commit when run from a git checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("dta-harness")
    except PackageNotFoundError:
        text = "(not installed)"
    from harness.store import git_commit

    commit = git_commit()
    return f"{text} ({commit})" if commit else text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Benchmark harness for distributed task allocation."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="run a benchmark (no arguments: the default quick suite)")
    b.add_argument(
        "spec",
        nargs="?",
        help="bench spec (TOML), or paper:NAME for a shipped one (harness specs list); "
        "flags override its values",
    )
    b.add_argument("--allocators", help="allocator names, comma-separated")
    b.add_argument(
        "--family", help="problem families, comma-separated (replace the spec's families)"
    )
    b.add_argument(
        "--size", dest="sizes", help="sizes TASKSxAGENTS, comma-separated (generated families)"
    )
    b.add_argument("--instances", help="instance names, comma-separated (dataset families)")
    b.add_argument(
        "--comm", help="communication graphs, comma-separated: full, ring, line, star, grid, rgg"
    )
    b.add_argument(
        "--faults",
        action="append",
        metavar="TABLE",
        help="a fault profile as a TOML inline table, e.g. '{drop = 0.1, reorder = true}' "
        "(repeat for several; replaces the spec's [[faults]])",
    )
    b.add_argument(
        "--uncertainty",
        action="append",
        metavar="TABLE",
        help='what agents believe: a TOML inline table, e.g. \'{model = "lognormal", '
        "draws = 10}' (repeat for several; replaces the spec's [[uncertainty]]; "
        "docs/uncertainty.md)",
    )
    b.add_argument(
        "--execute",
        nargs="?",
        const="{}",
        metavar="TABLE",
        help="agents travel while the allocator re-plans: optional TOML inline table "
        "'{speed = 5.0, period = 0.01, mode = \"auto\"}' (replaces the spec's [execution])",
    )
    b.add_argument("--run-id", help="name of the run directory (default: time + spec hash)")
    b.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="RUN_ID",
        help="resume a run (default: the latest under --out); stored trials are kept",
    )
    b.add_argument(
        "--retry",
        default="",
        metavar="STATUSES",
        help="with --resume: run again the stored trials of these statuses, comma-separated "
        "(timeout, error)",
    )
    from harness.spec import DEFAULT_SPEC, SETTINGS

    param_flags(b, SETTINGS.values(), DEFAULT_SPEC["bench"])

    from reports.views import VIEWS

    q = sub.add_parser(
        "query",
        help=f"SQL over the result store (views: {', '.join(VIEWS)})",
        description="SQL over the result store. Views: "
        + "; ".join(f"{k}: {v}" for k, v in VIEWS.items())
        + f". A result of more than {VERTICAL_OVER} columns prints one record at a time.",
    )
    q.add_argument("sql", help="a DuckDB query over the views")
    q.add_argument(
        "--results",
        action="append",
        help="result root or run directory (repeatable; default results/)",
    )
    q.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    q.add_argument("--output", "-o", help="write the result to this file (required for parquet)")

    cp = sub.add_parser(
        "compact", help="merge each run's one-row trial files into one (bench does it itself)"
    )
    cp.add_argument(
        "--results",
        action="append",
        help="result root or run directory (repeatable; default results/)",
    )

    rp = sub.add_parser("report", help="an HTML page and its Markdown twin from stored results")
    rp.add_argument(
        "--results",
        action="append",
        help="result root or run directory (repeatable; default results/)",
    )
    rp.add_argument("--out", help="output folder (default: report/ under the first --results)")
    rp.add_argument("--title", help="the page's title")
    rp.add_argument(
        "--by",
        choices=("run", "commit"),
        help="compare runs: one series per allocator and run (or git commit)",
    )
    rp.add_argument(
        "--static",
        action="store_true",
        help="SVG plots only on the page (no plotly.js: a page of kilobytes, not 5 MB)",
    )

    st = sub.add_parser("store", help="check the result store's files (and set damaged ones aside)")
    st_sub = st.add_subparsers(dest="store_command", required=True)
    sv = st_sub.add_parser(
        "verify", help="read every stored file in full; exit status 1 when some are damaged"
    )
    sv.add_argument("--results", action="append", help="result root or run directory (repeatable)")
    sv.add_argument(
        "--repair",
        action="store_true",
        help="move damaged files to <root>/damaged/ and give runs a minimal manifest",
    )

    c = sub.add_parser(
        "check",
        help="compare a run with a baseline; exit status 1 on a regression",
    )
    c.add_argument("--baseline", required=True, help="baseline file (harness baseline update)")
    c.add_argument(
        "--results", default="results", help="a run directory, or a result root (its latest run)"
    )
    c.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="METRIC=RTOL",
        help="relative tolerance of one metric, e.g. m_bytes=0.05 (repeatable)",
    )
    c.add_argument(
        "--fail-on",
        choices=("any", "worse"),
        default="any",
        help="fail on any difference (default) or only on worse values",
    )
    c.add_argument("--time-metric", default="trial_wall_s", choices=("trial_wall_s", "trial_cpu_s"))
    c.add_argument(
        "--min-reps", type=int, default=6, help="paired trials a group needs to be judged (6)"
    )
    from harness.regress import CHECK_PARAMS

    numbers = [q for q in CHECK_PARAMS.values() if q.kind is float]
    param_flags(c, numbers, note="; a run's [check] table may set another")
    c.add_argument(
        "--allow-missing", action="store_true", help="baseline trials absent from the run pass"
    )
    c.add_argument("--output", "-o", help="also write every moved figure to this CSV file")
    c.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the verdict and the table as Markdown (e.g. $GITHUB_STEP_SUMMARY)",
    )

    bl = sub.add_parser("baseline", help="write a baseline file from a run")
    bl_sub = bl.add_subparsers(dest="action", required=True)
    bu = bl_sub.add_parser("update", help="write (or replace) a baseline from a run")
    bu.add_argument(
        "--results", default="results", help="a run directory, or a result root (its latest run)"
    )
    bu.add_argument("--baseline", "--out", dest="baseline", required=True, help="file to write")

    ds = sub.add_parser("datasets", help="frozen suites: instances stored as Parquet")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    fz = ds_sub.add_parser("freeze", help="write a spec's instances and a spec reading them")
    fz.add_argument("spec", nargs="?", help="bench spec (default: the default suite)")
    fz.add_argument("--name", required=True, help="suite name: the folder DIR/NAME")
    fz.add_argument("--dir", help="folder of suites (default: ./frozen here)")
    fz.add_argument("--force", action="store_true", help="replace a suite of that name")
    ds_sub.add_parser("list", help="the frozen suites in ./frozen and those shipped")
    vf = ds_sub.add_parser(
        "verify", help="check a suite's files and whether generators still give them"
    )
    vf.add_argument("suite", help="suite folder or name")

    sp = sub.add_parser("specs", help="the papers' experiments shipped with the harness")
    sp_sub = sp.add_subparsers(dest="action", required=True)
    sp_sub.add_parser("list", help="name, what it runs, and the file")
    sh = sp_sub.add_parser("show", help="print a shipped spec (to copy and edit)")
    sh.add_argument("name", help="a name from harness specs list")

    pf = sub.add_parser(
        "perf",
        help="time one allocator on one generated instance (local runtime); "
        "`perf transport`: message rates of the runtimes against bare ceilings",
    )
    pf.add_argument("allocator")
    pf.add_argument("--family", default="tdr")
    pf.add_argument("--size", default="60x10", help="TASKSxAGENTS")
    pf.add_argument("--comm", default="full")
    pf.add_argument("--seed", type=int, default=0)
    pf.add_argument("--repeat", type=int, default=5)
    pf.add_argument(
        "--agents",
        default="50,200,1000",
        help="perf transport: agent counts, comma-separated (50,200,1000)",
    )
    pf.add_argument("--hosts", type=int, default=2, help="perf transport: Ray host actors (2)")
    pf.add_argument(
        "--messages",
        type=float,
        default=3e6,
        help="perf transport: about this many messages per agent count (3e6)",
    )
    pf.add_argument("--local-only", action="store_true", help="perf transport: no Ray figures")
    pf.add_argument(
        "--delivery",
        choices=("sync", "async"),
        default="sync",
        help="perf transport: synchronous rounds (chatter) or asynchronous delivery "
        "(chatter_async)",
    )
    pf.add_argument(
        "--graph",
        choices=("full", "sparse"),
        default="full",
        help="perf transport: full graph, or sparse (rgg with about --degree neighbours each)",
    )
    pf.add_argument(
        "--degree", type=float, default=10.0, help="perf transport: sparse graph degree (10)"
    )
    pf.add_argument(
        "--no-peers",
        action="store_true",
        help="perf transport: leave out the one-agent-per-actor figure",
    )

    cf = sub.add_parser(
        "conformance",
        help="run the conformance checks on allocators, your own included (exit 1 on a failure)",
    )
    cf.add_argument(
        "module",
        nargs="?",
        help="an importable module defining allocators (default: the built-in ones)",
    )
    cf.add_argument("--allocator", action="append", help="only these allocators (repeatable)")
    cf.add_argument("--family", action="append", help="only these families (repeatable)")
    cf.add_argument("--seed", type=int, default=3, help="the trial seed (3)")

    ls = sub.add_parser("list", help="list allocators or families")
    ls.add_argument("what", choices=("allocators", "families"))
    return parser


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}")


#: what an interrupted run prints after "stored trials are kept" (set once a run has its id)
_RESUME_HINT = [""]


def resume_hint(run_id: str, out: str) -> str:
    """The command that continues run ``run_id`` stored under ``out`` (its spec is in the
    run's manifest, so no spec argument is needed)."""
    from harness.spec import SETTINGS

    flag = "" if out == SETTINGS["out"].default else f" --out {shlex.quote(out)}"
    return f"; continue with: harness bench --resume {run_id}{flag}"


def main(argv: list[str] | None = None) -> int:
    import warnings

    from harness.store import DamagedFile

    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", DamagedFile)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/]: stored trials are kept{_RESUME_HINT[0]}")
        return 130


# -- bench ---------------------------------------------------------------------------------------
class Ticker:
    """When a log (no terminal: ``ray job submit``, CI, a pipe) gets a plain progress line:
    at every tenth of the work, at least every ``every`` seconds, and at the end."""

    def __init__(self, total: int, every: float = 30.0, start: float | None = None) -> None:
        self.total, self.every = total, every
        self.done = 0
        self.last = time.monotonic() if start is None else start
        self.next_mark = 1

    def tick(self, now: float | None = None) -> bool:
        self.done += 1
        now = time.monotonic() if now is None else now
        tenths = 10 * self.done // max(1, self.total)
        due = self.done >= self.total or tenths >= self.next_mark or now - self.last >= self.every
        if due:
            self.next_mark = tenths + 1
            self.last = now
        return due


class Eta:
    """Time left, weighted by trial size: a remaining trial is expected to take the mean wall
    time of the trials done with the same allocator and size; where none is done yet, what a
    straight line through (tasks x agents, wall time) of all done trials gives for its size
    (the plain mean while only one size is done). The sum becomes wall-clock time at the rate
    the run has kept so far, which counts the workers running side by side. Kept as running
    sums: a finished trial costs the same however many came before it."""

    def __init__(self) -> None:
        self.left: dict[tuple[str, str], int] = {}
        self.units: dict[tuple[str, str], int] = {}
        self.spent: dict[tuple[str, str], tuple[int, float]] = {}  # (trials done, seconds)
        self.sums = [0, 0.0, 0.0, 0.0, 0.0]  # n, sum x, sum y, sum xx, sum xy
        self.t0 = time.monotonic()

    def plan(self, trials: list[tuple[str, str, int]]) -> None:
        for alg, size, units in trials:
            self.left[(alg, size)] = self.left.get((alg, size), 0) + 1
            self.units[(alg, size)] = units
        self.t0 = time.monotonic()

    def done(self, alg: str, size: str, wall: float | None) -> None:
        key = (alg, size)
        if self.left.get(key, 0) > 0:
            self.left[key] -= 1
        y = max(0.0, float(wall or 0.0))
        n, secs = self.spent.get(key, (0, 0.0))
        self.spent[key] = (n + 1, secs + y)
        x = float(self.units.get(key, 1))
        for i, v in enumerate((1, x, y, x * x, x * y)):
            self.sums[i] += v

    def _line(self) -> tuple[float, float]:
        """Intercept and slope of wall time against size over every done trial (slope >= 0)."""
        n, sx, sy, sxx, sxy = self.sums
        mx, my = sx / n, sy / n
        var = sxx / n - mx * mx
        slope = max(0.0, (sxy / n - mx * my) / var) if var > 1e-12 * max(1.0, mx * mx) else 0.0
        return max(0.0, my - slope * mx), slope

    def seconds(self, now: float | None = None) -> float | None:
        spent_work = self.sums[2]
        if spent_work <= 0:
            return None
        a, b = self._line()
        work = 0.0
        for key, left in self.left.items():
            if left:
                n, secs = self.spent.get(key, (0, 0.0))
                work += left * (secs / n if n else a + b * self.units[key])
        elapsed = (time.monotonic() if now is None else now) - self.t0
        return work * elapsed / spent_work

    def text(self) -> str:
        left = self.seconds()
        if left is None:
            return "-:--:--"
        left = int(round(left))
        return f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"


class RichObserver:
    """The bars on a terminal (trials, and exact optima while they are computed); in a log,
    where no bar is drawn, a plain line every tenth of the work or 30 s (:class:`Ticker`)."""

    def __init__(self, progress: Progress, out: str = "results") -> None:
        self.progress = progress
        self.out = out
        self.task: Any = None
        self.opt_task: Any = None
        self.failed = 0
        self.total = self.completed = 0
        self.counts: dict[str, int] = {}
        self.t0 = time.monotonic()
        self.ticker = Ticker(0)
        self.opt_ticker = Ticker(0)
        self.eta = Eta()

    def started(self, run_id: str, total: int, reused: int, optima: int) -> None:
        _RESUME_HINT[0] = resume_hint(run_id, self.out)
        console.print(
            f"run [bold]{run_id}[/]: {total} trials"
            + (f", {reused} already stored" if reused else "")
            + (f", {optima} exact optima to compute" if optima else "")
        )
        if optima:  # trials of an instance wait for its optimum: show that work on its own
            self.opt_task = self.progress.add_task("exact optima", total=optima, eta="")
            self.opt_ticker = Ticker(optima)
        self.task = self.progress.add_task("trials", total=total, completed=reused, eta="-:--:--")
        self.total, self.completed, self.t0 = total, reused, time.monotonic()
        self.ticker = Ticker(total - reused)

    def cached(self, n: int) -> None:
        console.print(
            f"{n} trials from the trial cache (earlier runs, same trial and code version; "
            "--no-cache runs them again)"
        )

    def planned(self, trials: list[tuple[str, str, int]]) -> None:
        self.eta.plan(trials)

    def _log_line(self, status: str) -> None:
        self.completed += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if not self.ticker.tick() or console.is_terminal:
            return
        spent = time.monotonic() - self.t0
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        console.print(
            f"trials {self.completed}/{self.total} ({100 * self.completed // max(1, self.total)}%)"
            f": {counts}; {spent:.0f} s elapsed, about {self.eta.text()} left",
            highlight=False,
        )

    def optimum(self, row: dict[str, Any]) -> None:
        if self.opt_task is not None:
            self.progress.advance(self.opt_task)
            if self.opt_ticker.tick() and not console.is_terminal:
                done, total = self.opt_ticker.done, self.opt_ticker.total
                console.print(
                    f"exact optima {done}/{total}; {time.monotonic() - self.t0:.0f} s elapsed",
                    highlight=False,
                )
        if row["opt_status"] in ("timeout", "error"):
            self.progress.console.log(
                f"[yellow]optimum {row['opt_status']}[/] {row['inst_name']}: {row['opt_note']}"
            )

    def trial(self, row: dict[str, Any]) -> None:
        self.eta.done(row["alg_name"], row["inst_size"], row.get("trial_wall_s"))
        self.progress.update(self.task, advance=1, eta=self.eta.text())
        self._log_line(row["trial_status"])
        if row["trial_status"] in (Status.ERROR, Status.TIMEOUT):
            self.failed += 1
            first = (row.get("trial_message") or "").splitlines()[0:1]
            self.progress.console.log(
                f"[red]{row['trial_status']}[/] {row['alg_name']} on {row['inst_name']}: {first[0] if first else ''}"
            )


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import bench
    from harness.spec import SETTINGS, apply_overrides, default_spec, load_spec
    from harness.store import RunStore

    retry = tuple(s.strip() for s in args.retry.split(",") if s.strip())
    for st in retry:
        if st not in (Status.TIMEOUT, Status.ERROR, Status.SKIP):
            raise HarnessError(
                f"command line: --retry: expected statuses among timeout, error, skip, got {st!r}"
            )
    if retry and args.resume is None:
        raise HarnessError("command line: --retry: expected with --resume (a run to retry in)")
    from harness.resources import resolve_spec

    spec = load_spec(resolve_spec(args.spec)) if args.spec else None
    settings = {k: getattr(args, k) for k in SETTINGS if getattr(args, k, None) is not None}
    if spec is None and args.resume is not None:
        out = settings.get("out", SETTINGS["out"].default)
        from harness.spec import spec_from_dict
        from harness.store import latest_run

        run_id = args.resume or latest_run(out)
        manifest = RunStore(out, run_id).read_manifest() if run_id else None
        if manifest is None:
            raise HarnessError(f"{out}: no run to resume" + (f" named {run_id}" if run_id else ""))
        spec = spec_from_dict(manifest["spec"], f"{out}/{run_id}/manifest.json")
    spec = spec or default_spec()
    comms = [c.strip() for c in args.comm.split(",") if c.strip()] if args.comm else []
    family_params = {"comm": comms[0] if len(comms) == 1 else comms} if comms else None
    spec = apply_overrides(
        spec,
        allocators_csv=args.allocators,
        family=args.family,
        sizes_csv=args.sizes,
        instances_csv=args.instances,
        family_params=family_params,
        settings=settings,
        faults=args.faults,
        execution=args.execute,
        uncertainty=args.uncertainty,
    )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta {task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        result = bench(
            spec,
            run_id=args.run_id or (args.resume or None),
            resume=args.resume is not None,
            observer=RichObserver(progress, str(spec.settings["out"])),
            retry=retry,
        )
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    print_summary(spec.settings["out"], result.run_id)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    if result.cached:
        counts += (", " if counts else "") + f"done (cached) {result.cached}"
    console.print(
        f"stored in [bold]{result.run_dir}[/] ({counts or 'nothing new'}); "
        f'query with: harness query "SELECT * FROM trials" --results {result.run_dir}; '
        f"a report: harness report --results {result.run_dir}"
    )
    return 0


def print_summary(out: str, run_id: str) -> None:
    import duckdb

    from reports.views import OPTIMUM_NOTES_SQL, SUMMARY_SQL, connect

    con = connect([Path(out) / run_id])
    rel = con.execute(SUMMARY_SQL, [run_id])
    names = [d[0] for d in rel.description]
    rows = rel.fetchall()
    table = Table(
        title=f"run {run_id}: means over seeds; gap to the exact optimum, else to the best-known "
        "cost ('gap to' says which, or why there is none); ms = wall time per trial",
        pad_edge=False,
        box=None,
        header_style="bold",
    )
    for k, name in enumerate(names):
        text = name in ("family", "allocator", "size", "faults", "done", "gap to")
        width = max([len(str(r[k])) for r in rows] + [len(name)]) if text else None
        table.add_column(name, justify="left" if text else "right", min_width=width, no_wrap=text)
    for row in rows:
        table.add_row(*[escape(_fmt(v, name)) for v, name in zip(row, names, strict=True)])
    console.print(table)
    try:
        notes = con.execute(OPTIMUM_NOTES_SQL, [run_id]).fetchall()
    except duckdb.Error:  # no optima stored, or none with a note
        notes = []
    seen = set()
    for fam, _size, status, note in notes:
        if (fam, status, note) in seen:
            continue
        seen.add((fam, status, note))
        sizes = sorted({s for f, s, st, n in notes if (f, st, n) == (fam, status, note)})
        console.print(
            f"[dim]no gap to the optimum for {fam} {', '.join(sizes)}: optimum {status}"
            + (f" ({escape(note)})" if note else "")
            + "[/]"
        )


def _fmt(v: Any, name: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        if name in ("gap", "feas", "cover"):
            return f"{100 * v:.1f}%"
        if name in ("ms", "msgs", "rounds"):
            return f"{v:,.0f}" if v >= 10 else f"{v:.2g}"
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


# -- query ---------------------------------------------------------------------------------------
def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from reports.views import connect

    if args.format == "parquet" and not args.output:
        raise HarnessError("query: --format parquet needs --output FILE")
    con = connect(_stores("query", args.results))
    if args.format == "parquet":
        try:
            con.sql(args.sql).write_parquet(args.output)
        except duckdb.Error as exc:
            raise HarnessError(f"query: {exc}{_damage_hint(exc)}") from None
        return 0
    try:
        rel = con.execute(args.sql)
    except duckdb.Error as exc:
        raise HarnessError(f"query: {exc}{_damage_hint(exc)}") from None
    if rel.description is None:
        return 0
    names = [d[0] for d in rel.description]
    rows = rel.fetchall()
    out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        _write_rows(args.format, names, rows, out)
    finally:
        if args.output:
            out.close()
    return 0


def _damage_hint(exc: Exception) -> str:
    """A hint for DuckDB errors that come from reading a file rather than from the SQL."""
    import duckdb

    if isinstance(exc, duckdb.IOException | duckdb.InvalidInputException):
        return " (a stored file may be damaged: harness store verify finds it)"
    return ""


def _stores(command: str, given: list[str] | None, need_trials: bool = True) -> list[str]:
    """The result paths a command reads, each an existing result root or run directory, and
    together holding stored trials (unless not ``need_trials``); else an error that names
    the paths searched."""
    from reports.views import locate

    results = given or ["results"]
    for r in results:
        if not Path(r).is_dir():
            what = "a file" if Path(r).exists() else "no such directory"
            raise HarnessError(
                f"{command}: --results {r}: expected a result root or run directory, "
                f"found {what}" + ("" if given else " (the default; give --results DIR)")
            )
    if need_trials and not locate(results)[0]:
        raise HarnessError(
            f"{command}: no stored trials under {', '.join(results)} (searched "
            f"{', '.join(str(Path(r).resolve()) for r in results)}; run harness bench first)"
        )
    return results


def _write_rows(fmt: str, names: list[str], rows: list[tuple], out: Any) -> None:
    if fmt == "csv":
        import csv

        w = csv.writer(out, lineterminator="\n")
        w.writerow(names)
        w.writerows(rows)
    elif fmt == "json":
        text = json.dumps([dict(zip(names, r, strict=True)) for r in rows], default=str, indent=1)
        out.write(text + "\n")
    else:
        target = console if out is sys.stdout else Console(file=out, width=200)
        if len(names) > VERTICAL_OVER:  # too wide to read across: one record at a time
            target.print(_vertical(names, rows))
            return
        table = Table()
        for n in names:
            table.add_column(n)
        for r in rows:
            table.add_row(*[_fmt(v) for v in r])
        target.print(table)


#: a query result with more columns than this prints one record at a time
VERTICAL_OVER = 12


def _vertical(names: list[str], rows: list[tuple]) -> Table:
    """Rows as records: a ``column | value`` block per row, values shortened to a line."""
    table = Table("column", "value", box=None, pad_edge=False, show_header=False)
    for i, r in enumerate(rows):
        table.add_row(f"[bold]-- row {i + 1} --[/]", "")
        for n, v in zip(names, r, strict=True):
            text = _fmt(v).replace("\n", " ")
            table.add_row(n, text if len(text) <= 160 else text[:157] + "...")
    return table


# -- compact -------------------------------------------------------------------------------------
def cmd_compact(args: argparse.Namespace) -> int:
    from harness.store import compact_all

    for run, n in compact_all(args.results or ["results"]).items():
        console.print(f"{run}: " + (f"{n} rows in one file" if n else "nothing to compact"))
    return 0


# -- store -------------------------------------------------------------------------------------
def cmd_store(args: argparse.Namespace) -> int:
    from harness.store import verify

    results = _stores("store verify", args.results, need_trials=False)
    checked, damaged = verify(results, repair=args.repair)
    if not damaged:
        console.print(f"[bold green]ok[/]: {checked} files read, none damaged")
        return 0
    table = Table("file", "problem", "moved to", header_style="bold", box=None, pad_edge=False)
    for d in damaged:
        table.add_row(escape(str(d.path)), escape(d.problem), escape(str(d.moved_to or "")))
    console.print(table)
    what = "moved aside" if args.repair else "run with --repair to move them aside"
    console.print(f"[bold red]damaged[/]: {len(damaged)} of {checked} files ({what})")
    return 0 if args.repair else 1


# -- report --------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    import duckdb

    from reports.report import write_report

    results = _stores("report", args.results)
    out = Path(args.out) if args.out else Path(results[0]) / "report"
    try:
        page = write_report(results, out, args.title, args.by, interactive=not args.static)
    except duckdb.Error as exc:  # the report's SQL is fixed: a failed read is a stored file's
        raise HarnessError(
            f"report: {exc} (a stored file may be damaged: harness store verify finds it, "
            "--repair sets it aside)"
        ) from None
    console.print(f"report: {page} (open it offline) and {out / 'report.md'}")
    return 0


# -- check, baseline, datasets --------------------------------------------------------------------
def _tolerances(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
            if not math.isfinite(out[name.strip()]):
                raise ValueError(value)
        except ValueError:
            raise HarnessError(
                f"command line: --tolerance: expected METRIC=RTOL like m_bytes=0.05, got {item!r}"
            ) from None
        if not name.strip().startswith("m_") or out[name.strip()] < 0:
            raise HarnessError(
                f"command line: --tolerance: expected an m_ metric and a tolerance >= 0, got {item!r}"
            )
    return out


def cmd_check(args: argparse.Namespace) -> int:
    from harness.regress import CHECK_PARAMS, Settings, check

    flags = {
        name: param.check(v, "command line", "--" + name.replace("_", "-"))
        for name, param in CHECK_PARAMS.items()
        if param.kind is float and (v := getattr(args, name)) is not None
    }
    s = Settings(
        tolerances=_tolerances(args.tolerance),
        fail_on=args.fail_on,
        time_metric=args.time_metric,
        min_reps=args.min_reps,
        allow_missing=args.allow_missing,
    )
    rep = check(args.baseline, args.results, s, flags)
    meta = rep.baseline_meta
    commit = (meta.get("git_commit") or "?")[:10]
    console.print(
        f"baseline {args.baseline} (run {meta.get('run_id', '?')}, commit {commit}) "
        f"against run {rep.run_id}: {rep.compared} trials paired, {rep.metrics} metrics each, "
        f"{rep.missing} missing, {rep.new} new; timing: {rep.timing_groups} groups, "
        f"{rep.timing_unjudged} not judged (fewer than {s.min_reps} pairs or under "
        f"{s.time_floor:g} s)"
    )
    if rep.compared == 0:
        console.print(
            "[yellow]note[/]: no trial of the run has a key in the baseline: another runtime, "
            "root seed, parameters or instances (a generator changed? run a frozen suite)"
        )
    if rep.version_changes:
        changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in rep.version_changes.items())
        console.print(f"[yellow]note[/]: package versions differ from the baseline's: {changes}")
    cols = ("", "allocator", "family", "size", "trial", "metric", "baseline", "current", "change")
    if rep.moved:
        table = Table(*cols, title="what moved", header_style="bold", box=None, pad_edge=False)
        for m in rep.moved[:60]:
            mark = "[red]FAIL[/]" if m.regression else "[dim]info[/]"
            table.add_row(f"{mark} {m.verdict}", *(escape(c) for c in m.cells(_fmt)))
        console.print(table)
        if len(rep.moved) > 60:
            console.print(f"... and {len(rep.moved) - 60} more (--output FILE lists them all)")
    if args.output:
        import csv

        with open(args.output, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["regression", "kind", "verdict", *cols[1:]])
            for m in rep.moved:
                w.writerow(
                    [m.regression, m.kind, m.verdict, m.allocator, m.family, m.size, m.what]
                    + [m.metric, m.baseline, m.current, m.change]
                )
    bad = rep.regressions
    if args.markdown:
        _check_markdown(args.markdown, rep, cols)
    if bad:
        console.print(f"[bold red]regression[/]: {len(bad)} of {len(rep.moved)} moved figures fail")
        return 1
    console.print(f"[bold green]ok[/]: {len(rep.moved)} figures moved, none failing")
    return 0


def _check_markdown(path: str, rep: Any, cols: tuple[str, ...]) -> None:
    bad = rep.regressions
    lines = [
        f"### harness check: {'regression' if bad else 'ok'}",
        "",
        f"{rep.compared} trials paired, {rep.missing} missing, {rep.new} new; "
        f"{len(rep.moved)} figures moved, {len(bad)} failing.",
        "",
    ]
    if rep.moved:
        lines += ["| " + " | ".join(c or "verdict" for c in cols) + " |", "|---" * len(cols) + "|"]
        for m in rep.moved:
            cells = [("**FAIL** " if m.regression else "") + m.verdict, *m.cells(_fmt)]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    with open(path, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.regress import run_dir, write_baseline

    path, n = write_baseline(args.results, args.baseline)
    console.print(f"baseline {path}: {n} trials from run {run_dir(args.results).name}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from harness.freeze import freeze, verify
    from harness.frozen import find_suite
    from harness.spec import default_spec, load_spec

    if args.action == "freeze":
        spec = load_spec(args.spec) if args.spec else default_spec()
        dest = freeze(spec, args.name, args.dir, args.force)
        console.print(f"frozen suite {dest}: run it with harness bench {dest / 'suite.toml'}")
        return 0
    if args.action == "list":
        from harness.frozen import INDEX, read_index
        from harness.resources import frozen_dirs

        table = Table("suite", "instances", "families", "baseline", "where", header_style="bold")
        for root, where in zip(frozen_dirs(), ("here", "shipped"), strict=True):
            for d in sorted(p.parent for p in root.glob(f"*/{INDEX}")):
                rows = read_index(d)
                table.add_row(
                    d.name,
                    str(len(rows)),
                    ", ".join(sorted({r["inst_family"] for r in rows})),
                    "baseline.parquet" if (d / "baseline.parquet").exists() else "-",
                    f"{where}: {d}",
                )
        console.print(table)
        return 0
    suite = find_suite(args.suite)
    rows = verify(suite)
    table = Table("instance", "hash", "file", "generator today", header_style="bold")
    for r in rows:
        table.add_row(
            r["inst_name"] or r["file"],
            r["inst_hash"],
            "ok" if r["file_ok"] else f"[red]{r.get('problem')}[/]",
            "same" if r["generator_same"] else f"[yellow]differs ({r['generator_hash']})[/]",
        )
    console.print(table)
    drift = sum(not r["generator_same"] for r in rows)
    broken = sum(not r["file_ok"] for r in rows)
    console.print(
        f"{len(rows)} instances: {broken} unreadable or changed files; {drift} that today's "
        "generators no longer reproduce (the frozen files keep baselines comparable)"
    )
    return 1 if broken else 0


# -- perf ----------------------------------------------------------------------------------------
def cmd_perf(args: argparse.Namespace) -> int:
    if args.allocator == "transport":
        return _perf_transport(args)
    from harness.perf import measure

    r = measure(args.allocator, args.family, args.size, args.seed, args.repeat, args.comm)
    table = Table(
        "measure",
        "value",
        title=f"{r['allocator']} on {r['family']} {r['size']} ({r['comm']} graph)",
    )
    for k, v in r.items():
        table.add_row(k, _fmt(v) if not isinstance(v, float) else f"{v:.4g}")
    console.print(table)
    return 0


def _perf_transport(args: argparse.Namespace) -> int:
    from actors.transport_perf import peer_figures, transport_figures

    agents = [int(x) for x in args.agents.split(",") if x.strip()]
    if not args.local_only:
        from actors.embedded import start_embedded

        start_embedded()
    name = "chatter" if args.delivery == "sync" else "chatter_async"
    comm = "full" if args.graph == "full" else "rgg"
    rows = transport_figures(
        agents, args.hosts, args.messages, not args.local_only, name, comm, args.degree
    )
    ray_cols = ("bare hosts msg/s", "ray s", "ray msg/s", "ray/local", "ray hosts peak MiB")
    graph = "full graph" if comm == "full" else f"sparse graph (about {args.degree:g} neighbours)"
    table = Table(
        "agents",
        "rounds",
        "messages",
        "bare loop msg/s",
        "local s",
        "local msg/s",
        "local peak MiB",
        *(() if args.local_only else ray_cols),
        title=f"{name} ({args.delivery}), {graph}; Ray: {args.hosts} host actors, agents packed",
    )
    for r in rows:
        cells = [
            str(r["agents"]),
            str(r["rounds"]),
            f"{r['messages']:,}",
            f"{r['bare_loop_rate']:,.0f}",
            f"{r['local_s']:.2f}",
            f"{r['local_rate']:,.0f}",
            f"{r['local_peak_mb']:,.0f}",
        ]
        if not args.local_only:
            cells += [
                f"{r['bare_hosts_rate']:,.0f}",
                f"{r['ray_s']:.2f}",
                f"{r['ray_rate']:,.0f}",
                f"{r['ray_s'] / r['local_s']:.1f}x",
                f"{r['ray_hosts_peak_mb']:,.0f}",
            ]
        table.add_row(*cells)
    console.print(table)
    if not args.local_only and not args.no_peers:
        q = peer_figures()
        console.print(
            f"one agent per actor, {q['actors']} actors, {q['rounds']} rounds: "
            f"{q['calls_rate']:,.0f} calls/s on Ray ({q['ray_s']:.2f} s; local {q['local_s']:.3f} s)"
            f", bare actors {q['bare_calls_rate']:,.0f} calls/s "
            f"({q['calls_rate'] / q['bare_calls_rate']:.2f}x of bare)"
        )
    return 0


# -- conformance ---------------------------------------------------------------------------------
def cmd_conformance(args: argparse.Namespace) -> int:
    import os

    import allocators
    from harness.conformance import ConformanceError, cases_for, check_allocator

    if args.module:
        extra = os.environ.get("HARNESS_EXTRA_ALLOCATORS", "")
        os.environ["HARNESS_EXTRA_ALLOCATORS"] = ",".join(x for x in (extra, args.module) if x)
        allocators.available.cache_clear()
    table = allocators.available()
    if args.allocator:
        chosen = [allocators.get(n, "command line", "--allocator") for n in args.allocator]
    elif args.module:
        chosen = [c for c in table.values() if c.__module__ == args.module]
        if not chosen:
            raise HarnessError(f"conformance: {args.module} defines no allocator")
    else:
        chosen = list(table.values())
    out = Table("allocator", "family", "case", "result", header_style="bold", box=None)
    failed = passed = skipped = 0
    for cls in chosen:
        for family, case, params in cases_for(cls, args.family):
            shown = "x".join(map(str, case)) if isinstance(case, tuple) else str(case)
            try:
                res = check_allocator(cls, family, case, params, seed=args.seed)
            except ConformanceError as exc:
                failed += 1
                out.add_row(cls.name, family, shown, f"[red]FAIL[/] {escape(str(exc))}")
                continue
            except Exception as exc:  # noqa: BLE001 - a crash is a failure, shown
                failed += 1
                out.add_row(
                    cls.name,
                    family,
                    shown,
                    f"[red]ERROR[/] {escape(type(exc).__name__)}: {escape(str(exc))}",
                )
                continue
            if res is None:
                skipped += 1
                out.add_row(cls.name, family, shown, "[dim]skip[/]")
            else:
                passed += 1
                out.add_row(cls.name, family, shown, f"ok ({res.rounds} rounds)")
    console.print(out)
    console.print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


# -- list ----------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "allocators":
        import allocators

        table = Table("name", "families", "parameters", "summary")
        for name, cls in allocators.available().items():
            params = ", ".join(f"{p.name}={p.default}" for p in cls.params) or "-"
            table.add_row(name, ", ".join(cls.families), params, cls.summary)
    else:
        from harness.scenarios import FAMILIES

        table = Table("name", "kind", "objectives", "parameters", "sizes / description")
        for f in FAMILIES.values():
            params = ", ".join(f"{q.name}={q.default}" for q in f.params)
            table.add_row(
                f.name, f.kind, ", ".join(f.objectives), params, f.sizes_hint or f.description
            )
    console.print(table)
    return 0


def cmd_specs(args: argparse.Namespace) -> int:
    from harness.resources import PAPER_PREFIX, resolve_spec, shipped_specs, spec_summary

    if args.action == "show":
        console.print(resolve_spec(PAPER_PREFIX + args.name).read_text(), markup=False)
        return 0
    table = Table("name", "what", "run it with", header_style="bold")
    for name, path in shipped_specs().items():
        table.add_row(name, spec_summary(path), f"harness bench {PAPER_PREFIX}{name}")
    console.print(table)
    return 0


#: ``harness COMMAND``: the function that runs it
COMMANDS = {
    "bench": cmd_bench,
    "query": cmd_query,
    "compact": cmd_compact,
    "store": cmd_store,
    "report": cmd_report,
    "check": cmd_check,
    "baseline": cmd_baseline,
    "datasets": cmd_datasets,
    "specs": cmd_specs,
    "perf": cmd_perf,
    "list": cmd_list,
    "conformance": cmd_conformance,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
