"""``harness report``: one self-contained HTML page (interactive plots, plotly.js inlined, opens
offline) and its Markdown twin (plots as SVG files beside it), from one or more result roots
or run directories.

Per family: a table of mean and 95% interval (Student's t over trials) of quality, gap to the
optimum or best-known cost, coverage, messages, bytes, rounds and time, per allocator and
size; plots of each against size (sizes labelled ``tasks x agents`` in numeric order; log
axes when the values span a factor of ten or more); the distribution of the quality measure
over trials, per size; quality against messages, one point per trial; convergence over rounds
where trials recorded a trace (``trace_rounds``). Then the allocators ranked across families
(reports/ranking.py), and paper-style sections (routing, MAGNET, markets), each from its own
module in :data:`SECTIONS`. An allocator keeps its colour, dash and marker in every plot.
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
from reports import caga, figures, magnet, markets, ranking, routing
from reports.figures import Figure
from reports.stats import INTERVAL_NOTE, Stat, mean_ci
from reports.svg import Styles
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
    ("Allocation under uncertainty (CAGA)", caga.section),
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
       {uncertainty_column} AS uncertainty,
       coalesce(trial_execution, '') AS execution, inst_size AS size, inst_n_tasks AS n_tasks,
       inst_n_agents AS n_agents, trial_status AS status, inst_objective AS objective,
       inst_hash, coalesce(inst_name, inst_hash) AS inst_name, trial_seed AS seed,
       coalesce(trial_rep, 0) AS rep, m_feasible AS feasible, m_complete AS complete,
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
        if r.get("uncertainty", "none") != "none":
            label += f" <{r['uncertainty']}>"
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
    figures: dict[str, dict] = field(default_factory=dict)  # file name -> plotly figure

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (head, rows)))

    def plot(self, name: str, fig: Figure | str) -> None:
        """A plot: a figure (SVG and interactive), or an SVG only."""
        if isinstance(fig, Figure):
            self.plots[name] = fig.svg
            self.figures[name] = fig.plotly
        else:
            self.plots[name] = fig
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

    def to_html(self, interactive: bool = True) -> str:
        """The page. ``interactive``: plots drawn by plotly.js (inlined, so the page opens
        offline; the SVG stays in a ``noscript``), else the SVG plots only (a small page)."""
        figs = self.figures if interactive else {}
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
                body.append(f'<figure class="plot">{plot_html(c, self.plots[c], figs)}</figure>')
            else:
                body.append(markdown_to_html(c, self.plots, figs))
        return HTML.format(
            title=html.escape(self.title),
            toc="\n".join(toc),
            body="\n".join(body),
            scripts=plotly_scripts() if figs else "",
        )


def plot_html(name: str, svg: str, figs: dict[str, dict]) -> str:
    """A plot on the page: a ``div`` plotly draws into from the figure's JSON (the SVG in a
    ``noscript``), or the SVG where the plot has no figure."""
    fig = figs.get(name)
    if fig is None:
        return svg
    div = "plot-" + _slug(name)
    data = json.dumps(fig, allow_nan=False).replace("</", "<\\/")
    return (
        f'<div class="iplot" id="{div}" data-name="{html.escape(name)}"></div>'
        f'<script type="application/json" data-for="{div}">{data}</script>'
        f"<noscript>{svg}</noscript>"
    )


#: draws every figure of the page; a plot drawn gets ``data-drawn="yes"``, one that failed
#: ``data-drawn="failed"`` and a console error (tests/test_report_browser.py reads both)
DRAW_JS = """
(function () {
  document.querySelectorAll("div.iplot").forEach(function (div) {
    try {
      var spec = JSON.parse(document.querySelector('script[data-for="' + div.id + '"]').textContent);
      Plotly.newPlot(div, spec.data, spec.layout, spec.config).then(function () {
        div.setAttribute("data-drawn", "yes");
      }, function (e) {
        div.setAttribute("data-drawn", "failed");
        console.error("plot " + div.id + " not drawn: " + e);
      });
    } catch (e) {
      div.setAttribute("data-drawn", "failed");
      console.error("plot " + div.id + " not drawn: " + e);
    }
  });
})();
"""


def plotly_scripts() -> str:
    """plotly.js, inlined from the installed plotly package, then the code that draws the
    page's figures."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs().replace("</script", "<\\/script")
    return f"<script>{js}</script>\n<script>{DRAW_JS}</script>"


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
div.iplot {{ display: inline-block; }}
</style></head><body>
<h1>{title}</h1>
<nav><ul>{toc}</ul></nav>
{body}
{scripts}
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
        name = str(tokens[idx].attrs.get("src", "")).removeprefix("plots/")
        svg = env.get("plots", {}).get(name)
        if svg is not None:
            return f'<span class="plot">{plot_html(name, svg, env.get("figures", {}))}</span>'
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


def markdown_to_html(
    text: str, plots: dict[str, str] | None = None, figures: dict[str, dict] | None = None
) -> str:
    """The Markdown a report section writes, as HTML (markdown-it-py: CommonMark with pipe
    tables); images of the page's plots are embedded: interactive where ``figures`` holds the
    plot, else as their SVG."""
    return str(_MD.render(text, {"plots": plots or {}, "figures": figures or {}}))


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
    quality_plots(page, family, done, sizes, series_labels, gap_col, objective, styles)
    if len(sizes) < 2:
        page.para("One size only: no plots against scale.")
        return
    xpos, xticks, numeric = size_axis(sizes)
    xlabel = "tasks (sizes as tasks x agents)" if numeric else "size (tasks x agents)"
    for col, head, unit, may_log in metrics:
        series: dict[str, list[tuple[float, ...]]] = {}
        hover: dict[str, list[str]] = {}
        scale = 100.0 if unit == "%" else 1.0
        for lab in series_labels:
            pts, texts = [], []
            for size, _n, _m in sizes:
                st = stats.get((lab, size), {}).get(col)
                if st is None:
                    continue
                pts.append((xpos[size], scale * st.mean, scale * st.lo, scale * st.hi))
                texts.append(f"{size_label(size, _n, _m)}: mean of {st.n}")
            if pts:
                series[lab], hover[lab] = pts, texts
        if not series:
            continue
        ys = [p[1] for ps in series.values() for p in ps]
        log_y = may_log and min(ys) > 0 and max(ys) / min(ys) >= 10
        log_x = numeric and xticks[0][0] > 0 and xticks[-1][0] / xticks[0][0] >= 10
        name = f"{_slug(family)}_{_slug(head)}.svg"
        page.plot(
            name,
            figures.line(
                series,
                f"{family}: {head} (95% intervals)",
                xlabel,
                head + (" (%)" if scale != 1.0 else ""),
                log_y=log_y,
                log_x=log_x,
                styles=styles,
                y_range=(0.0, 100.0) if col == "m_coverage" else None,
                xticks=xticks,
                hover=hover,
                **PLOT_SIZE,
            ),
        )


def size_label(size: str, n_tasks: int, n_agents: int) -> str:
    """A size as ``tasks x agents``; a size named otherwise (an instance set's own name)
    keeps its name, followed by the numbers."""
    plain = f"{n_tasks}x{n_agents}"
    return size if size == plain else f"{size} ({plain})"


def size_axis(
    sizes: list[tuple[str, int, int]],
) -> tuple[dict[str, float], list[tuple[float, str]], bool]:
    """Where each size goes on an x axis, its tick labels, and whether the axis is the number
    of tasks (sizes with distinct task counts) or, where sizes share a task count, evenly
    spaced sizes in numeric order."""
    numeric = len({n for _s, n, _m in sizes}) == len(sizes)
    pos = {s: float(n) if numeric else float(k) for k, (s, n, _m) in enumerate(sizes)}
    return pos, [(pos[s], size_label(s, n, m)) for s, n, m in sizes], numeric


def quality_plots(
    page: Page,
    family: str,
    done: list[dict[str, Any]],
    sizes: list[tuple[str, int, int]],
    series_labels: list[str],
    gap_col: str,
    objective: str,
    styles: Styles,
) -> None:
    """The distribution of the quality measure over trials, per size and allocator (box and
    points), and quality against messages, one point per trial: the trade-off between what a
    method achieves and what it costs in communication."""
    has_gap = any(r["gap"] is not None for r in done)
    col, head, scale = ("gap", "gap (%)", 100.0) if has_gap else ("m_objective", objective, 1.0)
    head = head or "objective"
    cats = [size_label(s, n, m) for s, n, m in sizes]
    label_of = {s: size_label(s, n, m) for s, n, m in sizes}
    dist: dict[str, dict[str, list[tuple[float, str]]]] = {}
    pts: dict[str, list[tuple[float, float, str]]] = {}
    for lab in series_labels:
        for r in done:
            if r["label"] != lab or r[col] is None or not math.isfinite(r[col]):
                continue
            where = f"{label_of[r['size']]}, instance {r['inst_name']}" + (
                f" rep {r['rep']}" if r["rep"] else ""
            )
            dist.setdefault(lab, {}).setdefault(label_of[r["size"]], []).append(
                (scale * r[col], where)
            )
            if r["m_messages"] is not None:
                msgs = float(r["m_messages"])
                pts.setdefault(lab, []).append((msgs, scale * r[col], f"{where}: {msgs:,.0f} msgs"))
    if not dist:
        return
    what = "gap" if has_gap else "objective"
    page.plot(
        f"{_slug(family)}_{what}_distribution.svg",
        figures.boxes(
            cats,
            dist,
            f"{family}: {what} over trials, per size",
            "size (tasks x agents)",
            head,
            styles=styles,
            **PLOT_SIZE,
        ),
    )
    xs = [p[0] for ps in pts.values() for p in ps]
    if not xs or max(xs) <= 0:
        return  # no method sent a message: nothing to trade off
    positive = [x for x in xs if x > 0]
    log_x = max(positive) / min(positive) >= 10
    note = ""
    if log_x and min(xs) == 0:  # a log axis has no 0: those trials go at 1, and the plot says so
        pts = {lab: [(max(x, 1.0), y, t) for x, y, t in ps] for lab, ps in pts.items()}
        note = "trials that sent no message (centralised methods) are drawn at 1"
    page.plot(
        f"{_slug(family)}_{what}_vs_messages.svg",
        figures.scatter(
            pts,
            f"{family}: {what} against messages, per trial",
            "messages",
            head,
            log_x=log_x,
            styles=styles,
            note=note,
            **PLOT_SIZE,
        ),
    )
    if note:
        page.para(f"In the {what}-against-messages plot, {note}.")


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
            figures.line(
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
    unc = (
        "coalesce(trial_uncertainty_name, 'none')" if "trial_uncertainty_name" in have else "'none'"
    )
    rel = con.execute(SQL.format(exec_columns=exec_columns, by=by_sql, uncertainty_column=unc))
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    labels(rows, by)
    styles = Styles(sorted({r["label"] for r in rows}))
    for r in sorted(rows, key=lambda r: (r["faults"] != "none", r["uncertainty"] != "none")):
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
    ranking_section(page, rows, styles)
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
                page.plot(drawn.name, figures.load(Path(tmp), drawn.name))
    return page


def ranking_section(page: Page, rows: list[dict[str, Any]], styles: Styles) -> None:
    """The allocators ranked across families (reports/ranking.py): a table, and a bar per
    allocator of its overall score. Only where some family has two allocators to rank."""
    ranked = ranking.rank(rows)
    if not ranked.families:
        return
    page.heading(1, "Ranking across families")
    page.markdown(ranking.markdown(ranked))
    overall = ranked.overall()
    if len(overall) < 2:
        return
    per_family = {
        lab: ", ".join(
            f"{f.family} {f.mean_rank[lab]:.2f} of {len(f.mean_rank)}"
            for f in ranked.families
            if lab in f.mean_rank
        )
        for lab, _v, _n in overall
    }
    page.plot(
        "ranking_overall.svg",
        figures.bars(
            [(lab, v, f"mean rank: {per_family[lab]}") for lab, v, _n in overall],
            "Mean normalised rank across families (0 = best on every instance)",
            "mean normalised rank",
            styles=styles,
            x_range=(0.0, 1.0),
        ),
    )


def _demote(md: str) -> str:
    """Section Markdown under the report's level-1 heading: its headings go one level down."""
    return "\n".join("#" + line if line.startswith("#") else line for line in md.splitlines())


def write_report(
    results: list[str | Path],
    out: str | Path,
    title: str | None = None,
    by: str | None = None,
    interactive: bool = True,
) -> Path:
    """Write ``report.html`` and ``report.md`` (with ``plots/*.svg``) under ``out``. ``by``
    ("run" or "commit") keeps the trials of each run (commit) apart, one series each.
    ``interactive``: the page draws its plots with plotly.js, inlined (about 5 MB); else the
    page shows the SVG plots only."""
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    page = build(results, title, by)
    for name, text in page.plots.items():
        (out / "plots" / name).write_text(text)
    (out / "report.md").write_text(page.to_markdown())
    (out / "report.html").write_text(page.to_html(interactive))
    return out / "report.html"
