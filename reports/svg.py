"""Small, dependency-free SVG line plots for the reports (opens offline in any browser)."""

from __future__ import annotations

import json
import math
from html import escape

#: colours (colour-blind safe palette, Okabe-Ito), then dash patterns and markers for more series
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
DASHES = ("", "6 3", "2 3")
MARKERS = ("circle", "square", "triangle")


class Styles:
    """A fixed style (colour, dash, marker) per series label: the first label asked for gets the
    first style, and a label keeps its style in every plot drawn with the same ``Styles``."""

    def __init__(self, labels: list[str] | None = None) -> None:
        self.by_label: dict[str, tuple[str, str, str]] = {}
        #: (allocator, its parameters as canonical JSON) -> the label it is drawn as
        self.identities: dict[tuple[str, str], str] = {}
        self.aliases: dict[str, str] = {}  # another name of the same series -> its label
        for name in labels or []:
            self(name)

    def identify(self, label: str, allocator: str, params: str | dict | None) -> None:
        """``label`` is how the allocator with these parameters is drawn here."""
        self.identities.setdefault((allocator, canonical(params)), label)

    def same_as(self, label: str, allocator: str, params: str | dict | None) -> None:
        """Draw ``label`` (a section's own name for an allocator) in the style the report gave
        that allocator with these parameters, when it gave one."""
        known = self.identities.get((allocator, canonical(params)))
        if known is not None and known != label:
            self.aliases[label] = known

    def __call__(self, label: str) -> tuple[str, str, str]:
        label = self.aliases.get(label, label)
        if label not in self.by_label:
            k = len(self.by_label)
            n = len(COLOURS)
            self.by_label[label] = (
                COLOURS[k % n],
                DASHES[(k // n) % len(DASHES)],
                MARKERS[(k // n) % len(MARKERS)],
            )
        return self.by_label[label]


def canonical(params: str | dict | None) -> str:
    """Parameters as sorted JSON, whether given as a dict or as stored JSON text."""
    if isinstance(params, str):
        params = json.loads(params or "{}")
    return json.dumps(params or {}, sort_keys=True)


def draw_marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{colour}"/>'
    if kind == "triangle":
        return (
            f'<polygon points="{x:.1f},{y - 4:.1f} {x - 4:.1f},{y + 3:.1f} {x + 4:.1f},{y + 3:.1f}" '
            f'fill="{colour}"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'


def nice_range(lo: float, hi: float, n: int = 5) -> tuple[float, float, float]:
    """An axis range around [lo, hi] with about ``n`` steps of 1, 2 or 5 times a power of ten."""
    raw = (hi - lo) / n if hi > lo else 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw - 1e-12)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(int(lo), int(hi) + 1)]
    _, _, step = nice_range(lo, hi)
    k0 = math.ceil(lo / step - 1e-9)
    return [round(k * step, 12) for k in range(k0, int(math.floor(hi / step + 1e-9)) + 1)]


def bar_ends(p: tuple) -> tuple[float, float]:
    """The ends of a point's error bar: (x, y) none, (x, y, half) symmetric, (x, y, lo, hi)."""
    if len(p) > 3 and all(v is not None and math.isfinite(v) for v in p[2:4]):
        return p[2], p[3]
    half = p[2] if len(p) > 2 and p[2] is not None and math.isfinite(p[2]) else 0.0
    return p[1] - half, p[1] + half


class Frame:
    """The parts every plot shares: the title, the plot area, the axis labels, ticks and
    grid lines, and the legend at the right. Ranges are in axis units (log10 of the value on a
    log axis); ``px`` and ``py`` map values to pixels (a y outside its range is cut to it)."""

    def __init__(
        self,
        width: int,
        height: int,
        margins: tuple[int, int, int, int],
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        log_x: bool = False,
        log_y: bool = False,
    ) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = margins
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.log_x, self.log_y = log_x, log_y
        self.pw = width - self.left - self.right
        self.ph = height - self.top - self.bottom

    def px(self, x: float) -> float:
        v = math.log10(x) if self.log_x else x
        return self.left + (v - self.x0) / (self.x1 - self.x0) * self.pw

    def py(self, y: float) -> float:
        v = math.log10(max(y, 1e-300)) if self.log_y else y
        v = min(max(v, self.y0), self.y1)
        return self.top + self.ph - (v - self.y0) / (self.y1 - self.y0) * self.ph

    def open(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        """The document's start: title, plot area, axis labels."""
        left, top, pw, ph, height = self.left, self.top, self.pw, self.ph, self.height
        return [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{height}" '
            'font-family="sans-serif" font-size="12">',
            f'<text x="{self.width / 2}" y="20" text-anchor="middle" font-size="14">'
            f"{escape(title)}</text>",
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
            f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{escape(xlabel)}'
            + (" (log)" if self.log_x else "")
            + "</text>",
            f'<text x="15" y="{top + ph / 2}" text-anchor="middle" '
            f'transform="rotate(-90 15 {top + ph / 2})">{escape(ylabel)}'
            + (" (log)" if self.log_y else "")
            + "</text>",
        ]

    def x_ticks(self, ticks: list[tuple[float, str]] | None = None) -> list[str]:
        """Labels under the x axis: ``ticks`` as (value, label), else round numbers."""
        if ticks is None:
            ticks = [(x, f"{x:g}") for x in _ticks(self.x0, self.x1, self.log_x)]
        else:  # given labels may crowd: keep those at least 30 px from the last one kept
            kept: list[tuple[float, str]] = []
            for x, text in sorted(ticks):
                if not kept or self.px(x) - self.px(kept[-1][0]) >= 30:
                    kept.append((x, text))
            ticks = kept
        y = self.top + self.ph + 16
        return [
            f'<text x="{self.px(x):.1f}" y="{y}" text-anchor="middle">{escape(text)}</text>'
            for x, text in ticks
        ]

    def y_ticks(self, ticks: list[tuple[float, str]] | None = None) -> list[str]:
        """Grid lines and labels along the y axis: ``ticks`` as (value, label), else round
        numbers."""
        if ticks is None:
            ticks = [(y, f"{y:.4g}") for y in _ticks(self.y0, self.y1, self.log_y)]
        out = []
        for y, text in ticks:
            yy = self.py(y)
            out.append(
                f'<line x1="{self.left}" y1="{yy:.1f}" x2="{self.left + self.pw}" y2="{yy:.1f}" '
                'stroke="#eee"/>'
            )
            out.append(
                f'<text x="{self.left - 6}" y="{yy + 4:.1f}" text-anchor="end">{escape(text)}</text>'
            )
        return out

    def legend(self, i: int, name: str, colour: str, dash: str, marker: str) -> list[str]:
        """Entry ``i`` of the legend: a line in the series' style, its marker, its name."""
        x, ly = self.left + self.pw, self.top + 14 + 18 * i
        return [
            f'<line x1="{x + 8}" y1="{ly - 3}" x2="{x + 28}" y2="{ly - 3}" '
            f'stroke="{colour}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>",
            draw_marker(marker, x + 18, ly - 3, colour),
            f'<text x="{x + 34}" y="{ly + 1}">{escape(name)}</text>',
        ]


def empty_plot(title: str, width: int) -> str:
    """What a plot with nothing to draw shows: its title, and that there is no data."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40">'
        f'<text x="10" y="25">{escape(title)}: no data</text></svg>'
    )


def line_plot(
    series: dict[str, list[tuple[float, ...]]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
    width: int = 640,
    height: int = 400,
    log_x: bool = False,
    styles: Styles | None = None,
    y_range: tuple[float, float] | None = None,
    xticks: list[tuple[float, str]] | None = None,
    legend: dict[str, str] | None = None,
) -> str:
    """An SVG document: one polyline with markers per series of (x, y) points, or (x, y, half)
    points drawn with an error bar of half-width ``half`` (a 95% interval, say), or
    (x, y, lo, hi) points with a bar from ``lo`` to ``hi``. ``y_range``
    fixes a linear y axis (bars are cut at its ends). ``xticks``: (x, label) pairs to label
    the x axis with instead of round numbers (labels closer than 30 px to the last one drawn
    are left out). ``legend``: a series' name in the legend, where it is not its label."""
    styles = styles if styles is not None else Styles()
    ok = lambda x, y: (not log_y or y > 0) and (not log_x or x > 0)  # noqa: E731
    pts = [p for ps in series.values() for p in ps if ok(p[0], p[1])]
    if not pts:
        return empty_plot(title, width)
    left, right, top, bottom = 70, 170, 40, 50
    xs = [math.log10(p[0]) if log_x else p[0] for p in pts]
    ys = []
    for p in pts:
        for y in bar_ends(p):
            if not log_y:
                ys.append(y)
            elif y > 0:
                ys.append(math.log10(y))
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if log_y:
        y0, y1 = math.floor(y0), math.ceil(y1)
    elif y_range is not None:
        y0, y1 = y_range
    else:
        y0, y1, _ = nice_range(min(0.0, y0), y1)
    if xticks is not None:  # labelled values: the axis spans them, with a little room
        pad = 0.06 * (x1 - x0) if x1 > x0 else 0.5
        x0, x1 = x0 - pad, x1 + pad
    elif log_x:
        x0, x1 = math.floor(x0), math.ceil(x1)
    elif x1 > x0:
        x0, x1, _ = nice_range(x0, x1)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    frame = Frame(width, height, (left, right, top, bottom), (x0, x1), (y0, y1), log_x, log_y)
    px, py = frame.px, frame.py
    out = frame.open(title, xlabel, ylabel)
    out += frame.x_ticks(xticks)
    out += frame.y_ticks()
    for i, (name, ps) in enumerate(series.items()):
        colour, dash, marker = styles(name)
        ps = sorted(p for p in ps if ok(p[0], p[1]))
        if ps:
            path = " ".join(f"{px(p[0]):.1f},{py(p[1]):.1f}" for p in ps)
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dashed}/>'
            )
            for p in ps:
                lo, hi = bar_ends(p)
                if hi > lo and (not log_y or lo > 0):
                    out.append(
                        f'<line x1="{px(p[0]):.1f}" y1="{py(lo):.1f}" x2="{px(p[0]):.1f}" '
                        f'y2="{py(hi):.1f}" stroke="{colour}" stroke-width="1"/>'
                    )
                out.append(draw_marker(marker, px(p[0]), py(p[1]), colour))
        out += frame.legend(i, (legend or {}).get(name, name), colour, dash, marker)
    out.append("</svg>")
    return "\n".join(out)
