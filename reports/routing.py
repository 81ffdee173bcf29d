"""The decentralised-GA seed paper's tables from an executed run (``docs/specs/patel_ga.toml``):
Table I (time to visit every location), Table II (total distance), both as mean and 95%
interval over the trials with the paper's figure beside, the message and compute overhead,
Table III (GA convergence during execution), where our ordering agrees with the paper's, and
the gaps to the LKH-3 best-known costs of executed runs on ``mtsp_lkh3`` instances.

    python -m reports.routing results/patel_ga [more result dirs] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from reports import figures, stats, svg
from reports.views import rows_or_none, section_for

SIZES = ("10x5", "20x4", "30x3", "35x5", "40x6")
#: the paper's approaches in its table order, and its Tables I and II (seconds, metres)
PAPER_T1 = {
    "NN": (19.6, 45.5, 41.6, 33.4, 26.2),
    "CBAA-ms": (14.7, 28.8, 41.5, 30.8, 26.0),
    "CBAA-mm": (14.7, 28.8, 41.4, 27.6, 26.0),
    "DH-ms": (11.6, 29.6, 42.1, 25.8, 23.5),
    "DH-mm": (11.6, 29.6, 42.7, 25.9, 23.3),
    "ACBBA-ms": (15.1, 24.1, 34.4, 27.6, 26.8),
    "ACBBA-mm": (14.6, 25.5, 34.4, 24.6, 25.8),
    "PIA": (19.2, 31.3, 45.1, 34.6, 31.8),
    "HIPC": (11.8, 27.9, 34.4, 24.0, 24.7),
    "GA-ms": (12.0, 26.0, 33.9, 21.8, 23.6),
    "GA-mm": (12.5, 23.3, 33.8, 24.2, 23.3),
    "GA-multi": (14.1, 22.5, 33.3, 22.3, 22.5),
}
PAPER_T2 = {
    "NN": (486.3, 903.8, 603.3, 826.8, 773.2),
    "CBAA-ms": (301.2, 517.6, 606.7, 689.0, 719.4),
    "CBAA-mm": (301.5, 519.8, 602.2, 625.2, 709.2),
    "DH-ms": (256.8, 517.8, 615.1, 584.2, 649.6),
    "DH-mm": (256.2, 516.6, 626.7, 585.1, 641.1),
    "ACBBA-ms": (327.8, 404.3, 441.1, 624.8, 690.8),
    "ACBBA-mm": (334.5, 428.8, 439.7, 520.8, 683.0),
    "PIA": (209.8, 482.3, 508.1, 481.5, 563.9),
    "HIPC": (198.1, 401.6, 445.0, 443.0, 590.0),
    "GA-ms": (222.7, 448.9, 456.6, 460.5, 600.0),
    "GA-mm": (268.1, 429.6, 468.8, 553.9, 636.7),
    "GA-multi": (245.6, 404.6, 455.8, 494.9, 604.0),
}
#: Table III: variant -> size -> relative difference (%) at 0..4 s after the first solution
PAPER_T3 = {
    "GA-ms": {
        "20x4": (31.4, 5.0, 4.6, 4.3, 3.8),
        "30x3": (30.6, 3.8, 2.5, 2.4, 2.1),
        "35x5": (28.5, 3.2, 0.7, 0.5, 0.4),
        "40x6": (30.0, 12.1, 7.2, 2.0, 1.9),
    },
    "GA-mm": {
        "20x4": (26.4, 8.2, 7.3, 5.6, 4.2),
        "30x3": (21.6, 1.1, 1.9, 1.7, 0.6),
        "35x5": (25.6, 14.9, 12.2, 16.5, 14.2),
        "40x6": (49.0, 17.2, 11.7, 7.7, 5.4),
    },
    "GA-multi": {
        "20x4": (37.3, 7.1, 4.0, 3.9, 3.9),
        "30x3": (22.7, 2.3, 1.6, 1.2, 0.9),
        "35x5": (34.4, 12.8, 11.9, 11.8, 11.7),
        "40x6": (55.4, 13.8, 12.0, 7.2, 5.1),
    },
}

SQL = """
SELECT alg_name, alg_params, inst_family, inst_name, inst_size, inst_n_tasks, inst_n_agents,
       m_exec_makespan, m_exec_distance, m_exec_complete, m_exec_gap_best_known,
       m_exec_objective, m_best_known, inst_objective, m_messages, m_bytes,
       m_exec_alloc_cpu_s, m_exec_replans, trial_exec_trace
FROM trials
WHERE trial_status = 'done' AND coalesce(trial_execution, '') <> ''
"""
COLUMNS = [
    "alg", "params", "family", "inst", "size", "n", "m", "makespan", "distance", "complete",
    "gap_bk", "objective", "best_known", "objective_kind", "messages", "bytes", "cpu",
    "replans", "trace",
]  # fmt: skip


def label(alg: str, params: str | dict) -> str:
    """The paper's name of an allocator and its variant."""
    p = json.loads(params) if isinstance(params, str) else params
    suffix = {"min_sum": "-ms", "min_max": "-mm"}.get(p.get("score", ""), "")
    base = {
        "greedy_nn": "NN",
        "cbaa": "CBAA",
        "dh": "DH",
        "acbba": "ACBBA",
        "pia": "PIA",
        "hipc": "HIPC",
        "ga_ms": "GA-ms",
        "ga_mm": "GA-mm",
        "ga_multi": "GA-multi",
        "sga": "SGA (central)",
    }.get(alg, alg)
    return base + (suffix if alg in ("cbaa", "dh", "acbba") else "")


def mean_ci(xs: list[float]) -> tuple[float, float] | None:
    """Mean and half-width of its 95% interval (Student's t)."""
    s = stats.mean_ci(xs)
    return None if s is None else (s.mean, s.half)


def _cell(stat: tuple[float, float] | None, fmt: str) -> str:
    if stat is None:
        return ""
    mean, half = stat
    return f"{mean:{fmt}}" if math.isnan(half) else f"{mean:{fmt}} ± {half:{fmt}}"


def ranks(values: dict[str, float]) -> dict[str, float]:
    """Average ranks (1 = smallest)."""
    order = sorted(values, key=values.get)
    out: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: dict[str, float], b: dict[str, float]) -> float | None:
    keys = sorted(set(a) & set(b))
    if len(keys) < 3:
        return None
    ra, rb = ranks({k: a[k] for k in keys}), ranks({k: b[k] for k in keys})
    ma, mb = sum(ra.values()) / len(keys), sum(rb.values()) / len(keys)
    cov = sum((ra[k] - ma) * (rb[k] - mb) for k in keys)
    va = math.sqrt(sum((ra[k] - ma) ** 2 for k in keys))
    vb = math.sqrt(sum((rb[k] - mb) ** 2 for k in keys))
    return cov / (va * vb) if va and vb else None


def convergence(trace: list[list[float]], at: tuple[float, ...]) -> list[float | None]:
    """Table III's measure for one trial: the relative difference (%) between the best
    solution held at each time (seconds after the first sample) and the best of the trial."""
    if not trace:
        return [None] * len(at)
    t0 = trace[0][0]
    best = min(c for _, c in trace)
    out: list[float | None] = []
    for a in at:
        held = [c for t, c in trace if t - t0 <= a + 1e-9]
        out.append(100.0 * (held[-1] - best) / best if held and best > 0 else None)
    return out


def routing_report(
    results: list[str | Path], out: Path | None = None, styles: svg.Styles | None = None
) -> str:
    """The routing section; plots go to ``out`` drawn in ``styles`` (the report's, so that an
    allocator keeps its colour; fresh ones when run alone)."""
    styles = styles if styles is not None else svg.Styles()
    rows = rows_or_none(results, SQL)
    if not rows:
        return "No executed trials found (run a spec with an [execution] table).\n"
    data = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    for d in data:
        d["label"] = label(d["alg"], d["params"])
        styles.same_as(d["label"], d["alg"], d["params"])
    lines = ["# Routing and re-planning during execution", ""]
    mtsp = [d for d in data if d["family"] == "mtsp"]
    if mtsp:
        lines += _paper_tables(mtsp, out, styles)
    lkh = [d for d in data if d["family"] == "mtsp_lkh3"]
    if lkh:
        lines += _lkh_table(lkh)
    return "\n".join(lines) + "\n"


def _paper_tables(data: list[dict], out: Path | None, styles: svg.Styles) -> list[str]:
    cells: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for d in data:
        c = cells[(d["label"], d["size"])]
        for k in ("makespan", "distance", "messages", "bytes", "cpu", "replans"):
            c[k].append(d[k])
        c["complete"].append(bool(d["complete"]))
        c["trace"].append(json.loads(d["trace"] or "[]"))
    labels = [k for k in PAPER_T1 if any(key[0] == k for key in cells)]
    labels += sorted({k[0] for k in cells} - set(labels))
    sizes = [s for s in SIZES if any(k[1] == s for k in cells)]
    sizes += sorted(
        {k[1] for k in cells} - set(sizes), key=lambda s: [int(x) for x in s.split("x")]
    )
    lines: list[str] = []
    ours: dict[str, dict[str, dict[str, float]]] = {"makespan": {}, "distance": {}}
    for metric, title, paper, fmt in (
        ("makespan", "Table I: time (s) to visit every location", PAPER_T1, ".1f"),
        ("distance", "Table II: total distance (m) driven by all agents", PAPER_T2, ".1f"),
    ):
        lines += [
            f"## {title}",
            "",
            "Mean ± half-width of the 95% interval over the trials (Student's t); the paper's "
            "mean of 20 trials in brackets; **bold**: the best mean of a size.",
            "",
            "| approach | " + " | ".join(sizes) + " |",
            "|---|" + "---|" * len(sizes),
        ]
        best = {}
        for s in sizes:
            means = {
                lab: mean_ci(cells[(lab, s)][metric])[0]
                for lab in labels
                if (lab, s) in cells and mean_ci(cells[(lab, s)][metric])
            }
            best[s] = min(means, key=means.get) if means else None
            ours[metric][s] = means
        for lab in labels:
            row = []
            for s in sizes:
                c = cells.get((lab, s))
                text = _cell(mean_ci(c[metric]), fmt) if c else ""
                if text and best[s] == lab:
                    text = f"**{text}**"
                if lab in paper and s in SIZES:
                    text += f" ({paper[lab][SIZES.index(s)]:{fmt}})"
                n = len(c[metric]) if c else 0
                if c and not all(c["complete"]):
                    text += f" [{sum(c['complete'])}/{n} complete]"
                row.append(text)
            lines.append(f"| {lab} | " + " | ".join(row) + " |")
        lines.append("")
    lines += _agreement(ours, sizes)
    lines += [
        "## Overhead: messages and allocation compute per mission",
        "",
        "Mean messages (all re-plans, and the status broadcasts of online allocators), "
        "kilobytes, re-plans (online: periods) and CPU seconds of allocation per trial.",
        "",
        "| approach | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for lab in labels:
        row = []
        for s in sizes:
            c = cells.get((lab, s))
            if not c:
                row.append("")
                continue
            k = len(c["messages"])
            row.append(
                f"{sum(c['messages']) / k:,.0f} msgs, {sum(c['bytes']) / k / 1024:,.0f} kB, "
                f"{sum(c['replans']) / k:,.0f} re-plans, {sum(c['cpu']) / k:.2f} s"
            )
        lines.append(f"| {lab} | " + " | ".join(row) + " |")
    lines.append("")
    lines += _table3(cells, sizes, out, styles)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for metric, name in (("makespan", "time_s"), ("distance", "distance_m")):
            series = {
                lab: [
                    (int(s.split("x")[0]), mean_ci(cells[(lab, s)][metric])[0])
                    for s in sizes
                    if (lab, s) in cells
                ]
                for lab in labels
            }
            drawn = figures.line(series, f"executed {metric}", "locations", name, styles=styles)
            figures.save(out, f"routing_{metric}.svg", drawn)
        lines += [
            "Plots: `routing_makespan.svg`, `routing_distance.svg`, `routing_convergence.svg`.",
            "",
        ]
    return lines


def _agreement(ours: dict[str, dict[str, dict[str, float]]], sizes: list[str]) -> list[str]:
    if not any(s in SIZES for s in sizes):
        return []  # none of the paper's sizes: nothing to compare with
    lines = [
        "## Our ordering against the paper's",
        "",
        "Spearman's rank correlation between our means and the paper's over the approaches "
        "both have, and the best approach of each (lower is better).",
        "",
        "| size | time: rho | time: best (ours / paper) | distance: rho | distance: best (ours / paper) |",
        "|---|---|---|---|---|",
    ]
    for s in sizes:
        if s not in SIZES:
            continue
        k = SIZES.index(s)
        row = [s]
        for metric, paper in (("makespan", PAPER_T1), ("distance", PAPER_T2)):
            mine = ours[metric].get(s, {})
            theirs = {lab: v[k] for lab, v in paper.items() if lab in mine}
            rho = spearman(mine, theirs)
            row.append("" if rho is None else f"{rho:+.2f}")
            b1 = min(mine, key=mine.get) if mine else ""
            b2 = min(theirs, key=theirs.get) if theirs else ""
            row.append(f"{b1} / {b2}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def _table3(cells: dict, sizes: list[str], out: Path | None, styles: svg.Styles) -> list[str]:
    at = (0.0, 1.0, 2.0, 3.0, 4.0)
    variants = [v for v in ("GA-ms", "GA-mm", "GA-multi") if any((v, s) in cells for s in sizes)]
    if not variants:
        return []
    lines = [
        "## Table III: GA convergence during execution",
        "",
        "Mean relative difference (%) between the best solution any agent holds at each time "
        "(seconds after the first sample) and the best found in the mission; the paper's "
        "figure in brackets. Costs include the distance already driven, so they are "
        "whole-mission costs.",
        "",
        "| variant | time (s) | " + " | ".join(sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    plot: dict[str, list[tuple[float, float]]] = {}
    for v in variants:
        for i, a in enumerate(at):
            row = []
            for s in sizes:
                c = cells.get((v, s))
                vals = [convergence(tr, at)[i] for tr in c["trace"]] if c else []
                vals = [x for x in vals if x is not None]
                text = f"{sum(vals) / len(vals):.1f}" if vals else ""
                paper = PAPER_T3.get(v, {}).get(s)
                if paper:
                    text += f" ({paper[i]:.1f})"
                row.append(text)
                if s == sizes[-1] and vals:
                    plot.setdefault(v, []).append((a, sum(vals) / len(vals)))
            lines.append(f"| {v if i == 0 else ''} | {a:.0f} | " + " | ".join(row) + " |")
    lines.append("")
    if out is not None and plot:
        out.mkdir(parents=True, exist_ok=True)
        drawn = figures.line(
            plot, f"GA convergence, {sizes[-1]}", "seconds", "% over the best", styles=styles
        )
        figures.save(out, "routing_convergence.svg", drawn)
    return lines


def _lkh_table(data: list[dict]) -> list[str]:
    """One row per approach, one column per instance and objective: the mean gap (%) of the
    executed cost over the best-known cost."""
    cols = sorted({(d["inst"], d["objective_kind"]) for d in data})
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for d in data:
        groups[(d["label"], d["inst"], d["objective_kind"])].append(d)
    best_known = {(d["inst"], d["objective_kind"]): d["best_known"] for d in data}
    labels = [k for k in PAPER_T1 if any(g[0] == k for g in groups)]
    labels += sorted({g[0] for g in groups} - set(labels))
    short = {"min_sum": "sum", "min_max": "max"}
    lines = [
        "## mTSP instances with LKH-3 best-known costs (executed, depot start and return)",
        "",
        "Mean gap (%) of the executed cost over the best-known cost: total distance for "
        "min-sum, the longest agent's distance for min-max, return legs included; "
        "**bold**: the smallest of a column.",
        "",
        "| approach | "
        + " | ".join(f"{i.removeprefix('mtsp_lkh3-')} {short.get(o, o)}" for i, o in cols)
        + " |",
        "|---|" + "---|" * len(cols),
        "| best known | "
        + " | ".join("" if best_known[c] is None else f"{best_known[c]:.0f}" for c in cols)
        + " |",
    ]
    means: dict[tuple, float] = {}
    for (lab, inst, kind), ds in groups.items():
        gaps = [d["gap_bk"] for d in ds if d["gap_bk"] is not None]
        if gaps and len(gaps) == len(ds):
            means[(lab, inst, kind)] = 100 * sum(gaps) / len(gaps)
    for lab in labels:
        row = []
        for inst, kind in cols:
            v = means.get((lab, inst, kind))
            if v is None:
                row.append("incomplete" if (lab, inst, kind) in groups else "")
                continue
            column = [means[k] for k in means if k[1:] == (inst, kind)]
            text = f"{v:.1f}"
            row.append(f"**{text}**" if v == min(column) else text)
        lines.append(f"| {lab} | " + " | ".join(row) + " |")
    lines.append("")
    return lines


#: the report's routing section (reports/report.py); None without executed trials
section = section_for(SQL, routing_report)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="result roots or run directories")
    ap.add_argument("--out", type=Path, help="directory for the SVG plots")
    args = ap.parse_args(argv)
    sys.stdout.write(routing_report(args.results, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
