"""Small, dependency-free SVG line plots for the reports (opens offline in any browser)."""

from __future__ import annotations

import math
from html import escape

#: one colour per series, in order (colour-blind safe palette, Okabe-Ito)
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def line_plot(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    width: int = 640,
    height: int = 400,
) -> str:
    """An SVG document: one polyline with markers per series of (x, y) points."""
    pts = [(x, y) for ps in series.values() for x, y in ps if not log_y or y > 0]
    if not pts:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40"><text x="10" y="25">{escape(title)}: no data</text></svg>'
    left, right, top, bottom = 70, 160, 40, 50
    xs = [x for x, _ in pts]
    ys = [math.log10(y) if log_y else y for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if log_y:
        y0, y1 = math.floor(y0), math.ceil(y1)
    else:
        y0 = min(0.0, y0)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        v = math.log10(y) if log_y else y
        return top + ph - (v - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
        f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="15" y="{top + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 15 {top + ph / 2})">{escape(ylabel)}</text>',
    ]
    for k in range(6):  # x ticks
        x = x0 + (x1 - x0) * k / 5
        out.append(f'<text x="{px(x):.1f}" y="{top + ph + 16}" text-anchor="middle">{x:g}</text>')
    if log_y:
        ticks = [10.0**e for e in range(int(y0), int(y1) + 1)]
    else:
        ticks = [y0 + (y1 - y0) * k / 5 for k in range(6)]
    for y in ticks:
        yy = py(y)
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{y:g}</text>')
    for i, (name, ps) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        ps = sorted((x, y) for x, y in ps if not log_y or y > 0)
        if ps:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ps)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            out += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in ps
            ]
        ly = top + 14 + 18 * i
        out.append(
            f'<rect x="{left + pw + 12}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
        )
        out.append(f'<text x="{left + pw + 30}" y="{ly + 1}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
