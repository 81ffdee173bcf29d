"""``harness report``: one self-contained HTML page (plots inline, opens offline) and its
Markdown twin (plots as SVG files beside it), from one or more result roots or run directories.

Per family: a table of mean and 95% interval (Student's t over trials) of quality, gap to the
optimum or best-known cost, coverage, messages, bytes, rounds and time, per allocator and
size; plots of each against the number of tasks (log axes when the values span a factor of
ten or more); convergence over rounds where trials recorded a trace (``trace_rounds``).
Paper-style sections (routing, MAGNET, markets) follow, each from its own module in
:data:`SECTIONS`. An allocator keeps its colour, dash and marker in every plot.
"""

from __future__ import annotations

import html
import json
import math
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from harness.store import Status
from reports import magnet, markets, routing
from reports.stats import INTERVAL_NOTE, Stat, mean_ci
from reports.svg import Styles, line_plot
from reports.views import connect

#: (column, heading, unit / format, log axis allowed)
METRICS = (
    ("m_objective", "objective", ".4g", False),
    ("gap", "gap", "%", False),
    ("m_coverage", "coverage", "%", False),
    ("m_messages", "messages", ",.0f", True),
    ("m_bytes", "bytes", ",.0f", True),
    ("m_rounds", "rounds", ".3g", True),
    ("ms", "time (ms)", ".3g", True),
)

#: paper-style sections: (title, section); a section takes (results, out folder, the report's
#: plot styles) and returns Markdown, or None when the results hold nothing for it
SECTIONS: tuple[tuple[str, Callable[[list[str | Path], Path, Styles], str | None]], ...] = (
    ("Routing and re-planning during execution", routing.section),
    ("MAGNET (logistics)", magnet.section),
    ("Market mechanisms (FMMRA)", markets.section),
)

#: executed trials (harness/execution.py) add these, in families where any trial has them
#: the range each metric can take: intervals are cut there (reports/stats.py). The gap to an
#: exact optimum is >= 0; to a best-known cost it may be negative (a better solution found)
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "m_coverage": (0.0, 1.0),
    "m_messages": (0.0, None),
    "m_bytes": (0.0, None),
    "m_rounds": (0.0, None),
    "ms": (0.0, None),
    "m_exec_objective": (0.0, None),
    "m_exec_makespan": (0.0, None),
}

EXEC_METRICS = (
    ("m_exec_objective", "executed cost", ".4g", False),
    ("m_exec_makespan", "executed makespan (s)", ".4g", False),
)

SQL = """
SELECT inst_family AS family, alg_name, coalesce(alg_params, '{{}}') AS alg_params,
       coalesce(trial_fault_name, 'none') AS faults, coalesce(trial_runtime, '?') AS runtime,
       coalesce(trial_execution, '') AS execution, inst_size AS size, inst_n_tasks AS n_tasks,
       inst_n_agents AS n_agents, trial_status AS status, inst_objective AS objective,
       m_objective, m_gap, m_gap_best_known, m_coverage, m_messages, m_bytes, m_rounds,
       1000 * trial_wall_s AS ms, {exec_columns},
       split_part(coalesce(trial_message, ''), chr(10), 1) AS message,
       trial_run_id AS run_id, coalesce(left(r.git_commit, 7), '?') AS git_commit
FROM trials t LEFT JOIN (SELECT DISTINCT run_id AS rid, git_commit FROM runs) r
     ON t.trial_run_id = r.rid
QUALIFY row_number() OVER (PARTITION BY trial_key{by} ORDER BY trial_finished DESC) = 1
"""


PLOT_SIZE = {"width": 560, "height": 340}


def _fmt(stat: Stat | None, fmt: str) -> str:
    if stat is None:
        return ""

    scale = 100.0 if fmt == "%" else 1.0
    unit = "%" if fmt == "%" else ""
    mean, half = scale * stat.mean, scale * stat.half
    # three significant digits for the mean (one decimal for percentages); the interval to the
    # same decimal place
    mag = math.floor(math.log10(abs(mean))) if mean else 0
    decimals = 1 if unit else 0 if fmt == ",.0f" else max(0, min(3, 2 - mag))
    text = f"{mean:,.{decimals}f}{unit}"
    if math.isnan(half):
        return text
    if stat.clipped:  # cut at the metric's range: both ends shown, marked
        lo, hi = scale * stat.lo, scale * stat.hi
        return f"{text} [{lo:,.{decimals}f}, {hi:,.{decimals}f}]†"
    return f"{text} ± {half:,.{decimals}f}{unit}"


def labels(rows: list[dict[str, Any]], by: str | None = None) -> None:
    """Give each row its series label: the allocator, plus the parameters that vary among its
    trials, plus the fault profile when it is not ``none``, plus the runtime and the
    execution settings when the rows hold several, plus ``@run`` or ``@commit`` when runs are
    compared (``by``). Rows of one label are pooled, so trials of different runtimes, fault
    profiles or execution settings never share a mean."""
    runtimes = {r["runtime"] for r in rows}
    executions = {r["execution"] for r in rows}
    params: dict[str, list[dict]] = {}
    for r in rows:
        p = json.loads(r["alg_params"] or "{}")
        r["_params"] = p
        params.setdefault(r["alg_name"], []).append(p)
    varying = {
        a: sorted({k for p in ps for k in p if len({json.dumps(q.get(k)) for q in ps}) > 1})
        for a, ps in params.items()
    }
    for r in rows:
        keys = varying[r["alg_name"]]
        label = r["alg_name"]
        if keys:
            label += "(" + ", ".join(f"{k}={r['_params'].get(k)}" for k in keys) + ")"
        if r["faults"] != "none":
            label += f" [{r['faults']}]"
        if len(runtimes) > 1:
            label += f" on {r['runtime']}"
        if len(executions) > 1:
            ex = json.loads(r["execution"]) if r["execution"] else {}
            label += (
                " {" + ", ".join(f"{k}={ex[k]}" for k in ("speed", "period") if k in ex) + "}"
                if ex
                else " (planning)"
            )
        if by == "run":
            label += f" @{r['run_id']}"
        elif by == "commit":
            label += f" @{r['git_commit']}"
        r["label"] = label


@dataclass
class Page:
    """The report as blocks that render to both Markdown and HTML."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, content)
    plots: dict[str, str] = field(default_factory=dict)  # file name -> SVG

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (head, rows)))

    def plot(self, name: str, svg: str) -> None:
        self.plots[name] = svg
        self.blocks.append(("plot", name))

    def markdown(self, text: str) -> None:
        self.blocks.append(("md", text))

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, c in self.blocks:
            if kind == "h":
                out += ["#" * c[0] + " " + c[1], ""]
            elif kind == "p":
                out += [c, ""]
            elif kind == "table":
                head, rows = c
                out.append("| " + " | ".join(head) + " |")
                out.append("|" + "---|" * len(head))
                out += ["| " + " | ".join(r) + " |" for r in rows]
                out.append("")
            elif kind == "plot":
                out += [f"![{c}](plots/{c})", ""]
            else:
                out += [c.rstrip(), ""]
        return "\n".join(out)

    def to_html(self) -> str:
        body = []
        toc = []
        for kind, c in self.blocks:
            if kind == "h":
                anchor = re.sub(r"[^a-z0-9]+", "-", c[1].lower()).strip("-")
                body.append(f'<h{c[0] + 1} id="{anchor}">{html.escape(c[1])}</h{c[0] + 1}>')
                if c[0] == 1:
                    toc.append(f'<li><a href="#{anchor}">{html.escape(c[1])}</a></li>')
            elif kind == "p":
                body.append(f"<p>{_inline(c)}</p>")
            elif kind == "table":
                body.append(_html_table(*c))
            elif kind == "plot":
                body.append(f'<figure class="plot">{self.plots[c]}</figure>')
            else:
                body.append(markdown_to_html(c, self.plots))
        return HTML.format(
            title=html.escape(self.title),
            toc="\n".join(toc),
            body="\n".join(body),
        )


HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }}
th {{ background: #f4f4f4; }}
td:first-child, th:first-child, td.text {{ text-align: left; }}
figure.plot, span.plot {{ display: inline-block; margin: 0.3em; vertical-align: top; }}
h2 {{ border-bottom: 2px solid #0072B2; padding-bottom: 4px; margin-top: 2em; }}
code {{ background: #f4f4f4; padding: 1px 3px; }}
nav li {{ display: inline; margin-right: 1.2em; }}
</style></head><body>
<h1>{title}</h1>
<nav><ul>{toc}</ul></nav>
{body}
</body></html>
"""


#: cells aligned right: numbers, percentages, intervals, empty cells
NUMERIC = re.compile(r"^(\*\*)?[-+−]?[\d.,]+(%|e[-+]?\d+)?( ± .*)?(\*\*)?$|^$")


def _markdown() -> MarkdownIt:
    """CommonMark with pipe tables (markdown-it-py). Raw HTML in the text is escaped; headings
    go one level down (the page's title is the only h1); a table cell that is not a number is
    aligned left (``class="text"``); an image of a plot whose SVG the page holds is the SVG."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def heading(renderer: Any, tokens: list, idx: int, options: Any, env: dict) -> str:
        level = min(int(tokens[idx].tag[1]) + 1, 6)
        return f"<h{level}>" if tokens[idx].nesting == 1 else f"</h{level}>\n"

    def td_open(renderer: Any, tokens: list, idx: int, options: Any, env: dict) -> str:
        inline = tokens[idx + 1] if tokens[idx + 1].type == "inline" else None
        text = inline.content.strip() if inline is not None else ""
        return "<td>" if NUMERIC.match(text) else '<td class="text">'

    def image(renderer: Any, tokens: list, idx: int, options: Any, env: dict) -> str:
        src = str(tokens[idx].attrs.get("src", ""))
        svg = env.get("plots", {}).get(src.removeprefix("plots/"))
        if svg is not None:
            return f'<span class="plot">{svg}</span>'
        return str(renderer.image(tokens, idx, options, env))

    md.add_render_rule("heading_open", heading)
    md.add_render_rule("heading_close", heading)
    md.add_render_rule("td_open", td_open)
    md.add_render_rule("image", image)
    return md


_MD = _markdown()


def _inline(text: str) -> str:
    """One line of Markdown (bold, code spans) as HTML, the rest escaped."""
    return str(_MD.renderInline(text))


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in head) + "</tr></thead>"]
    out.append("<tbody>")
    for r in rows:
        cells = "".join(
            f"<td>{_inline(c)}</td>" if NUMERIC.match(c) else f'<td class="text">{_inline(c)}</td>'
            for c in r
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def markdown_to_html(text: str, plots: dict[str, str] | None = None) -> str:
    """The Markdown a report section writes, as HTML (markdown-it-py: CommonMark with pipe
    tables); images of the page's plots are embedded as their SVG."""
    return str(_MD.render(text, {"plots": plots or {}}))


# -- the generic part -------------------------------------------------------------------------------
def _order(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    sizes = {(r["size"], r["n_tasks"], r["n_agents"]) for r in rows}
    return sorted(sizes, key=lambda s: (s[1], s[2], s[0]))


def family_section(page: Page, family: str, rows: list[dict[str, Any]], styles: Styles) -> None:
    page.heading(1, f"Family {family}")
    done = [r for r in rows if r["status"] == Status.DONE]
    gap_col = "m_gap" if any(r["m_gap"] is not None for r in done) else "m_gap_best_known"
    for r in done:
        r["gap"] = r[gap_col]
    objective = next((r["objective"] for r in rows if r["objective"]), "")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    page.para(
        f"{len(rows)} trials ("
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f"); objective `{objective}`; gap "
        + ("to the exact optimum" if gap_col == "m_gap" else "to the best-known cost")
        + f"; {INTERVAL_NOTE}; time is wall time per trial."
    )
    bounds = dict(BOUNDS)
    if gap_col == "m_gap":
        bounds["gap"] = (0.0, None)  # nothing beats an exact optimum
    if objective in ("min_sum", "min_max", "max_tdr", "max_payoff"):
        bounds["m_objective"] = (0.0, None)  # distances, times, rewards; welfare may be < 0
    sizes = _order(rows)
    series_labels = sorted({r["label"] for r in rows})
    executed = any(r["m_exec_objective"] is not None for r in done)
    metrics = METRICS + EXEC_METRICS if executed else METRICS
    stats: dict[tuple[str, str], dict[str, Stat | None]] = {}
    table_rows = []
    for size, _n, _m in sizes:
        for lab in series_labels:
            here = [r for r in rows if r["label"] == lab and r["size"] == size]
            if not here:
                continue
            ok = [r for r in here if r["status"] == Status.DONE]
            st = {
                col: mean_ci([r[col] for r in ok], *bounds.get(col, (None, None)))
                for col, *_ in metrics
            }
            stats[(lab, size)] = st
            runtime = ", ".join(sorted({r["runtime"] for r in here}))
            table_rows.append(
                [lab, runtime, size, _done(here)]
                + [_fmt(st[col], fmt) for col, _h, fmt, _l in metrics]
            )
    page.table(
        ["allocator", "runtime", "size", "done"] + [h for _c, h, _f, _l in metrics], table_rows
    )
    failed: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        if r["status"] in (Status.ERROR, Status.TIMEOUT, Status.INTERRUPTED):
            failed.setdefault((r["label"], r["size"], r["status"]), []).append(r["message"])
    if failed:
        page.para("Trials that did not finish (first line of the first message):")
        page.table(
            ["allocator", "size", "status", "trials", "message"],
            [[k[0], k[1], k[2], str(len(v)), v[0][:160]] for k, v in sorted(failed.items())],
        )
    if len(sizes) < 2:
        page.para("One size only: no plots against scale.")
    else:
        for col, head, unit, may_log in metrics:
            series = {}
            scale = 100.0 if unit == "%" else 1.0
            for lab in series_labels:
                pts = [
                    (float(n), scale * st.mean, scale * st.lo, scale * st.hi)
                    for size, n, _m in sizes
                    if (st := stats.get((lab, size), {}).get(col)) is not None
                ]
                if pts:
                    series[lab] = pts
            if not series:
                continue
            ys = [p[1] for ps in series.values() for p in ps]
            xs = [p[0] for ps in series.values() for p in ps]
            log_y = may_log and min(ys) > 0 and max(ys) / min(ys) >= 10
            log_x = min(xs) > 0 and max(xs) / min(xs) >= 10
            name = f"{_slug(family)}_{_slug(head)}.svg"
            page.plot(
                name,
                line_plot(
                    series,
                    f"{family}: {head} (95% intervals)",
                    "tasks",
                    head + (" (%)" if scale != 1.0 else ""),
                    log_y=log_y,
                    log_x=log_x,
                    styles=styles,
                    y_range=(0.0, 100.0) if col == "m_coverage" else None,
                    **PLOT_SIZE,
                ),
            )


def _done(rows: list[dict[str, Any]]) -> str:
    """Done out of run (skips are not runs): ``4/5``, or ``skip`` when the allocator declined
    every instance."""
    ran = [r for r in rows if r["status"] != Status.SKIP]
    if not ran:
        return "skip"
    return f"{sum(r['status'] == 'done' for r in ran)}/{len(ran)}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


CONVERGENCE_SQL = """
SELECT DISTINCT inst_family, alg_name, coalesce(alg_params, '{}'),
       coalesce(trial_fault_name, 'none'), inst_size, inst_n_tasks, trial_key, round, objective,
       coverage
FROM rounds WHERE inst_family = ? ORDER BY trial_key, round
"""


def convergence_section(
    page: Page, con: Any, family: str, rows: list[dict], styles: Styles
) -> None:
    """Mean objective and coverage by round at the largest size with traces; a trial that has
    stopped keeps its final value in the later rounds."""
    got = con.execute(CONVERGENCE_SQL, [family]).fetchall()
    if not got:
        return
    label_of = {(r["alg_name"], r["alg_params"], r["faults"]): r["label"] for r in rows}
    largest = max(got, key=lambda r: (r[5], r[4]))[4]
    traces: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
    for _fam, alg, params, faults, size, _n, key, rnd, obj, cov in got:
        if size != largest:
            continue
        lab = label_of.get((alg, params, faults), alg)
        traces.setdefault(lab, {}).setdefault(key, []).append((int(rnd), obj, cov))
    page.heading(2, f"{family}: convergence over rounds ({largest})")
    page.para(
        "Mean over trials of the team's plans as they stand after each round (trials that "
        "have stopped keep their final value); conflicting claims count in the objective "
        "until they are resolved."
    )
    for k, head in ((1, "objective"), (2, "coverage")):
        series = {}
        for lab, by_key in sorted(traces.items()):
            last = max(t[-1][0] for t in by_key.values())
            columns = [_carried(t, k, last) for t in by_key.values()]
            pts = []
            for rnd, vals in enumerate(zip(*columns, strict=True), start=1):
                vals = [v for v in vals if v is not None]
                if vals:
                    pts.append((float(rnd), sum(vals) / len(vals)))
            series[lab] = pts
        page.plot(
            f"{_slug(family)}_convergence_{head}.svg",
            line_plot(
                series,
                f"{family} {largest}: {head} by round",
                "round",
                head,
                styles=styles,
                y_range=(0.0, 1.0) if head == "coverage" else None,
                **PLOT_SIZE,
            ),
        )


def _carried(trace: list[tuple], k: int, last: int) -> list[Any]:
    """Field ``k`` of a trace (rows sorted by round) at rounds 1..last: each round the value of
    the latest row at or before it (None before the first)."""
    out, value, i = [], None, 0
    for rnd in range(1, last + 1):
        while i < len(trace) and trace[i][0] <= rnd:
            value = trace[i][k]
            i += 1
        out.append(value)
    return out


def build(results: list[str | Path], title: str | None = None, by: str | None = None) -> Page:
    con = connect(results)
    have = {r[0] for r in con.execute("DESCRIBE trials").fetchall()}
    exec_columns = ", ".join(c if c in have else f"NULL AS {c}" for c, *_ in EXEC_METRICS)
    by_sql = {None: "", "run": ", trial_run_id", "commit": ", r.git_commit"}[by]
    rel = con.execute(SQL.format(exec_columns=exec_columns, by=by_sql))
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    labels(rows, by)
    styles = Styles(sorted({r["label"] for r in rows}))
    for r in sorted(rows, key=lambda r: r["faults"] != "none"):
        styles.identify(r["label"], r["alg_name"], r["alg_params"])
    runs = con.execute(
        "SELECT run_id, status, started, git_commit, n_trials FROM runs ORDER BY started"
    ).fetchall()
    page = Page(title or "Distributed task allocation: benchmark report")
    page.para(
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from "
        f"{len(runs)} run(s), {len(rows)} trials. Query the same store with "
        '`harness query "SELECT ..."` (docs/results.md).'
    )
    if runs:
        page.table(
            ["run", "status", "started", "commit", "trials"],
            [
                [str(r[0]), str(r[1]), str(r[2] or ""), (r[3] or "")[:10], str(r[4] or "")]
                for r in runs
            ],
        )
    if not rows:
        page.para("No trials found.")
    for family in sorted({r["family"] for r in rows}):
        fam_rows = [r for r in rows if r["family"] == family]
        family_section(page, family, fam_rows, styles)
        convergence_section(page, con, family, fam_rows, styles)
    for title_, render in SECTIONS:
        with tempfile.TemporaryDirectory() as tmp:
            text = render(results, Path(tmp), styles)  # drawn in the report's styles
            if not text:
                continue
            first, _, rest = text.partition("\n")
            if first.startswith("# "):  # the section's own title replaces the default one
                title_, text = first[2:].strip(), rest
            page.heading(1, title_)
            page.markdown(_demote(text))
            for drawn in sorted(Path(tmp).glob("*.svg")):
                page.plot(drawn.name, drawn.read_text())
    return page


def _demote(md: str) -> str:
    """Section Markdown under the report's level-1 heading: its headings go one level down."""
    return "\n".join("#" + line if line.startswith("#") else line for line in md.splitlines())


def write_report(
    results: list[str | Path], out: str | Path, title: str | None = None, by: str | None = None
) -> Path:
    """Write ``report.html`` and ``report.md`` (with ``plots/*.svg``) under ``out``. ``by``
    ("run" or "commit") keeps the trials of each run (commit) apart, one series each."""
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    page = build(results, title, by)
    for name, text in page.plots.items():
        (out / "plots" / name).write_text(text)
    (out / "report.md").write_text(page.to_markdown())
    (out / "report.html").write_text(page.to_html())
    return out / "report.html"
