"""Every plot of the report twice: a static SVG (the Markdown twin, papers; reports/svg.py) and a
plotly figure for the HTML page, with hover values and a legend that hides and shows series.

A figure is data, not drawing code: the page inlines plotly.js once (plotly's own copy, from
the installed Python package) and draws each figure from its JSON, so the page still opens
offline. Both renderings take their colours, dashes and markers from the same
:class:`~reports.svg.Styles`, so an allocator looks the same in the SVG and on the page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from reports import svg
from reports.svg import Frame, Styles, nice_range

#: SVG dash pattern / marker -> plotly's name for it
DASH = {"": "solid", "6 3": "dash", "2 3": "dot"}
SYMBOL = {"circle": "circle", "square": "square", "triangle": "triangle-up"}
CONFIG = {"displaylogo": False, "responsive": True}
FONT = {"family": "sans-serif", "size": 12}


@dataclass
class Figure:
    """One plot: ``svg`` for the Markdown twin, ``plotly`` ({data, layout, config}) for the
    page."""

    svg: str
    plotly: dict[str, Any]


def save(out: Path, name: str, fig: Figure) -> None:
    """Write ``name`` (the SVG) and, beside it, ``name.plotly.json`` (the page's figure)."""
    (out / name).write_text(fig.svg)
    (out / f"{name}.plotly.json").write_text(json.dumps(fig.plotly))


def load(out: Path, name: str) -> Figure | str:
    """What :func:`save` wrote: a figure, or only the SVG where there is no JSON beside it."""
    text = (out / name).read_text()
    extra = out / f"{name}.plotly.json"
    return Figure(text, json.loads(extra.read_text())) if extra.exists() else text


def identical(series: dict[str, list[tuple[float, ...]]]) -> dict[str, str]:
    """label -> the earlier label whose points are the same (to nine significant digits):
    series that would hide each other say so in the legend."""
    seen: list[tuple[str, list[tuple[float, ...]]]] = []
    same: dict[str, str] = {}

    def key(ps: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
        return sorted(tuple(float(f"{v:.9g}") for v in p[:2]) for p in ps)

    for name, ps in series.items():
        k = key(ps)
        match = next((other for other, ko in seen if ko == k and k), None)
        if match is not None:
            same[name] = match
        else:
            seen.append((name, k))
    return same


def _layout(title: str, width: int, height: int, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "width": width,
        "height": height,
        "font": FONT,
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "legend": {"itemclick": "toggle", "itemdoubleclick": "toggleothers"},
        "plot_bgcolor": "white",
        **extra,
    }


def _axis(title: str, log: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "type": "log" if log else "linear",
        "gridcolor": "#eee",
        "linecolor": "#888",
        "mirror": True,
        "zeroline": False,
        **extra,
    }


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def line(
    series: dict[str, list[tuple[float, ...]]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    log_y: bool = False,
    log_x: bool = False,
    styles: Styles | None = None,
    y_range: tuple[float, float] | None = None,
    width: int = 640,
    height: int = 400,
    xticks: list[tuple[float, str]] | None = None,
    hover: dict[str, list[str]] | None = None,
) -> Figure:
    """Lines with markers and 95% bars, as :func:`reports.svg.line_plot` takes them.
    ``xticks``: (x, label) pairs to label the x axis with (sizes as ``tasks x agents``, say).
    ``hover``: per series, a text per point (in the points' order) shown on hover."""
    styles = styles if styles is not None else Styles()
    if xticks is not None:  # label only the x values some series has a point at
        at = {p[0] for ps in series.values() for p in ps}
        xticks = [(x, text) for x, text in xticks if x in at]
    same = identical(series)
    legend = {name: f"{name} (= {other})" for name, other in same.items()}
    drawn = svg.line_plot(
        series,
        title,
        xlabel,
        ylabel,
        log_y=log_y,
        width=width,
        height=height,
        log_x=log_x,
        styles=styles,
        y_range=y_range,
        xticks=xticks,
        legend=legend,
    )
    data = []
    for name, ps in series.items():
        colour, dash, marker = styles(name)
        texts = (hover or {}).get(name)
        order = sorted(range(len(ps)), key=lambda i: ps[i][0])
        pts = [ps[i] for i in order]
        lo_hi = [svg.bar_ends(p) for p in pts]
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": legend.get(name, name),
            "legendgroup": name,
            "x": [_finite(p[0]) for p in pts],
            "y": [_finite(p[1]) for p in pts],
            "line": {"color": colour, "dash": DASH.get(dash, "solid"), "width": 2},
            "marker": {"color": colour, "symbol": SYMBOL.get(marker, "circle"), "size": 7},
        }
        if any(hi > lo for lo, hi in lo_hi):
            trace["error_y"] = {
                "type": "data",
                "symmetric": False,
                "array": [_finite(hi - p[1]) for p, (_lo, hi) in zip(pts, lo_hi, strict=True)],
                "arrayminus": [_finite(p[1] - lo) for p, (lo, _hi) in zip(pts, lo_hi, strict=True)],
                "color": colour,
                "thickness": 1,
                "width": 3,
            }
        if texts is not None:
            trace["text"] = [texts[i] for i in order]
            trace["hovertemplate"] = (
                "%{text}<br>" + ylabel + ": %{y:.4g}<extra>" + name + "</extra>"
            )
        data.append(trace)
    xaxis = _axis(xlabel, log_x)
    if xticks is not None:
        xaxis |= {
            "tickmode": "array",
            "tickvals": [x for x, _ in xticks],
            "ticktext": [t for _, t in xticks],
        }
    yaxis = _axis(ylabel, log_y)
    if y_range is not None and not log_y:
        yaxis["range"] = list(y_range)
    layout = _layout(
        title, width + 60, height + 40, xaxis=xaxis, yaxis=yaxis, hovermode="x unified"
    )
    return Figure(drawn, {"data": data, "layout": layout, "config": CONFIG})


def scatter(
    points: dict[str, list[tuple[float, float, str]]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    log_x: bool = False,
    styles: Styles | None = None,
    width: int = 640,
    height: int = 400,
    note: str = "",
) -> Figure:
    """One point per trial, (x, y, hover text), in the series' colour and marker, and each
    series' mean as a larger marker ringed in black."""
    styles = styles if styles is not None else Styles()
    kept = {n: [p for p in ps if not log_x or p[0] > 0] for n, ps in points.items()}
    drawn = _scatter_svg(kept, title, xlabel, ylabel, log_x, styles, width, height)
    data = []
    for name, ps in kept.items():
        colour, _dash, marker = styles(name)
        symbol = SYMBOL.get(marker, "circle")
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "legendgroup": name,
                "x": [p[0] for p in ps],
                "y": [p[1] for p in ps],
                "text": [p[2] for p in ps],
                "marker": {"color": colour, "symbol": symbol, "size": 6, "opacity": 0.55},
                "hovertemplate": "%{text}<br>"
                + xlabel
                + ": %{x:,.4g}<br>"
                + ylabel
                + ": %{y:.4g}<extra>"
                + name
                + "</extra>",
            }
        )
        if ps:
            mx, my = _mean([p[0] for p in ps]), _mean([p[1] for p in ps])
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{name} (mean)",
                    "legendgroup": name,
                    "showlegend": False,
                    "x": [mx],
                    "y": [my],
                    "marker": {
                        "color": colour,
                        "symbol": symbol,
                        "size": 13,
                        "line": {"color": "black", "width": 1.5},
                    },
                    "hovertemplate": f"mean of {len(ps)} trials<br>{xlabel}: %{{x:,.4g}}<br>"
                    f"{ylabel}: %{{y:.4g}}<extra>{name}</extra>",
                }
            )
    layout = _layout(
        title,
        width + 60,
        height + 40,
        xaxis=_axis(xlabel, log_x),
        yaxis=_axis(ylabel),
        hovermode="closest",
    )
    if note:
        layout["annotations"] = [_note(note)]
    return Figure(drawn, {"data": data, "layout": layout, "config": CONFIG})


def boxes(
    categories: list[str],
    data: dict[str, dict[str, list[tuple[float, str]]]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    styles: Styles | None = None,
    width: int = 640,
    height: int = 400,
) -> Figure:
    """Per category (a size, say) and series, the distribution of its values (value, hover
    text): a box from the first to the third quartile, the median, whiskers to the furthest
    value within 1.5 times the box, and every value as a point."""
    styles = styles if styles is not None else Styles()
    categories = [c for c in categories if any(by_cat.get(c) for by_cat in data.values())]
    drawn = _boxes_svg(categories, data, title, xlabel, ylabel, styles, width, height)
    traces = []
    for name, by_cat in data.items():
        colour, _dash, marker = styles(name)
        xs, ys, texts = [], [], []
        for cat in categories:
            for value, text in by_cat.get(cat, []):
                xs.append(cat)
                ys.append(_finite(value))
                texts.append(text)
        traces.append(
            {
                "type": "box",
                "name": name,
                "x": xs,
                "y": ys,
                "text": texts,
                "boxpoints": "all",
                "jitter": 0.4,
                "pointpos": 0,
                "quartilemethod": "linear",
                "marker": {"color": colour, "symbol": SYMBOL.get(marker, "circle"), "size": 4},
                "line": {"color": colour, "width": 1.5},
                "hovertemplate": "%{text}<br>" + ylabel + ": %{y:.4g}<extra>" + name + "</extra>",
            }
        )
    xaxis = _axis(xlabel) | {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": categories,
    }
    layout = _layout(
        title, width + 60, height + 40, xaxis=xaxis, yaxis=_axis(ylabel), boxmode="group"
    )
    return Figure(drawn, {"data": traces, "layout": layout, "config": CONFIG})


def bars(
    items: list[tuple[str, float, str]],
    title: str,
    xlabel: str,
    *,
    styles: Styles | None = None,
    width: int = 640,
    x_range: tuple[float, float] | None = None,
) -> Figure:
    """Horizontal bars, top to bottom in the given order: (label, value, hover text)."""
    styles = styles if styles is not None else Styles()
    height = 80 + 26 * max(1, len(items))
    drawn = _bars_svg(items, title, xlabel, styles, width, height, x_range)
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": [label for label, _v, _t in items],
        "x": [_finite(v) for _l, v, _t in items],
        "text": [t for _l, _v, t in items],
        "textposition": "none",
        "marker": {"color": [styles(label)[0] for label, _v, _t in items]},
        "hovertemplate": "%{y}: %{x:.3g}<br>%{text}<extra></extra>",
    }
    xaxis = _axis(xlabel)
    if x_range is not None:
        xaxis["range"] = list(x_range)
    yaxis = _axis("") | {"type": "category", "autorange": "reversed", "automargin": True}
    layout = _layout(title, width + 60, height + 40, xaxis=xaxis, yaxis=yaxis, showlegend=False)
    return Figure(drawn, {"data": [trace], "layout": layout, "config": CONFIG})


def _note(text: str) -> dict[str, Any]:
    return {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "y": -0.22,
        "showarrow": False,
        "font": {"size": 11, "color": "#555"},
        "xanchor": "left",
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median, third quartile, interpolated linearly (plotly's 'linear')."""
    v = sorted(values)

    def q(f: float) -> float:
        pos = f * (len(v) - 1)
        i = int(math.floor(pos))
        j = min(i + 1, len(v) - 1)
        return v[i] + (pos - i) * (v[j] - v[i])

    return q(0.25), q(0.5), q(0.75)


def _y_range(values: list[float]) -> tuple[float, float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo, hi, _ = nice_range(min(0.0, lo), hi if hi > lo else lo + 1)
    return lo, hi


def _x_log_range(xs: list[float]) -> tuple[float, float]:
    lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    return lo, hi if hi > lo else lo + 1


def _scatter_svg(
    points: dict[str, list[tuple[float, float, str]]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool,
    styles: Styles,
    width: int,
    height: int,
) -> str:
    pts = [p for ps in points.values() for p in ps]
    if not pts:
        return svg.empty_plot(title, width)
    xs = [p[0] for p in pts]
    if log_x:
        x_range = _x_log_range(xs)
    else:
        lo, hi, _ = nice_range(min(0.0, min(xs)), max(xs) if max(xs) > min(xs) else min(xs) + 1)
        x_range = (lo, hi)
    frame = Frame(width, height, (70, 170, 40, 50), x_range, _y_range([p[1] for p in pts]), log_x)
    out = frame.open(title, xlabel, ylabel) + frame.x_ticks() + frame.y_ticks()
    for i, (name, ps) in enumerate(points.items()):
        colour, dash, marker = styles(name)
        for x, y, _text in ps:
            out.append(
                svg.draw_marker(marker, frame.px(x), frame.py(y), colour).replace(
                    "/>", ' fill-opacity="0.45"/>'
                )
            )
        if ps:
            mx, my = _mean([p[0] for p in ps]), _mean([p[1] for p in ps])
            out.append(
                f'<circle cx="{frame.px(mx):.1f}" cy="{frame.py(my):.1f}" r="6" '
                f'fill="{colour}" stroke="black" stroke-width="1.5"/>'
            )
        out += frame.legend(i, name, colour, dash, marker)
    out.append("</svg>")
    return "\n".join(out)


def _boxes_svg(
    categories: list[str],
    data: dict[str, dict[str, list[tuple[float, str]]]],
    title: str,
    xlabel: str,
    ylabel: str,
    styles: Styles,
    width: int,
    height: int,
) -> str:
    values = [v for by_cat in data.values() for vs in by_cat.values() for v, _t in vs]
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values or not categories:
        return svg.empty_plot(title, width)
    n = len(categories)
    frame = Frame(width, height, (70, 170, 40, 50), (-0.5, n - 0.5), _y_range(values))
    out = frame.open(title, xlabel, ylabel)
    out += frame.x_ticks([(float(k), c) for k, c in enumerate(categories)])
    out += frame.y_ticks()
    names = list(data)
    slot = 0.8 / max(1, len(names))
    half = 0.35 * slot * frame.pw / n
    for i, name in enumerate(names):
        colour, dash, marker = styles(name)
        for k, cat in enumerate(categories):
            vs = [v for v, _t in data[name].get(cat, []) if v is not None and math.isfinite(v)]
            if not vs:
                continue
            cx = frame.px(k - 0.4 + slot * (i + 0.5))
            q1, med, q3 = _quartiles(vs)
            reach = 1.5 * (q3 - q1)
            lo = min(v for v in vs if v >= q1 - reach)
            hi = max(v for v in vs if v <= q3 + reach)
            top, bottom = frame.py(q3), frame.py(q1)
            out += [
                f'<line x1="{cx:.1f}" y1="{frame.py(hi):.1f}" x2="{cx:.1f}" y2="{top:.1f}" '
                f'stroke="{colour}"/>',
                f'<line x1="{cx:.1f}" y1="{bottom:.1f}" x2="{cx:.1f}" y2="{frame.py(lo):.1f}" '
                f'stroke="{colour}"/>',
                f'<rect x="{cx - half:.1f}" y="{top:.1f}" width="{2 * half:.1f}" '
                f'height="{max(0.5, bottom - top):.1f}" fill="{colour}" fill-opacity="0.15" '
                f'stroke="{colour}" stroke-width="1.5"/>',
                f'<line x1="{cx - half:.1f}" y1="{frame.py(med):.1f}" x2="{cx + half:.1f}" '
                f'y2="{frame.py(med):.1f}" stroke="{colour}" stroke-width="2.5"/>',
            ]
            for j, v in enumerate(sorted(vs)):  # spread sideways in a fixed pattern, no randomness
                dx = ((j % 5) - 2) * 0.35 * half
                out.append(
                    f'<circle cx="{cx + dx:.1f}" cy="{frame.py(v):.1f}" r="1.8" fill="{colour}" '
                    'fill-opacity="0.6"/>'
                )
        out += frame.legend(i, name, colour, dash, marker)
    out.append("</svg>")
    return "\n".join(out)


def _bars_svg(
    items: list[tuple[str, float, str]],
    title: str,
    xlabel: str,
    styles: Styles,
    width: int,
    height: int,
    x_range: tuple[float, float] | None,
) -> str:
    values = [v for _l, v, _t in items if v is not None and math.isfinite(v)]
    if not values:
        return svg.empty_plot(title, width)
    if x_range is None:
        lo, hi, _ = nice_range(min(0.0, min(values)), max(values) if max(values) > 0 else 1.0)
        x_range = (lo, hi)
    n = len(items)
    # item k is drawn at y = n - 1 - k: the first item at the top
    frame = Frame(width, height, (170, 30, 40, 50), x_range, (-0.5, n - 0.5))
    out = frame.open(title, xlabel, "")
    out += frame.x_ticks()
    for k, (label, value, _text) in enumerate(items):
        y = frame.py(n - 1 - k)
        out.append(
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
        if value is None or not math.isfinite(value):
            continue
        x0, x1 = frame.px(max(x_range[0], 0.0)), frame.px(value)
        bar = 0.6 * frame.ph / n
        out.append(
            f'<rect x="{min(x0, x1):.1f}" y="{y - bar / 2:.1f}" width="{abs(x1 - x0):.1f}" '
            f'height="{bar:.1f}" fill="{styles(label)[0]}"/>'
        )
        out.append(
            f'<text x="{max(x0, x1) + 4:.1f}" y="{y + 4:.1f}" font-size="11">{value:.2f}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
