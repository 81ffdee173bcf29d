"""Statistics shared by the reports: the mean and its 95% interval (Student's t), clipped to
the range the metric can take and marked when clipped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: how the reports state the interval they show
INTERVAL_NOTE = (
    "mean and 95% Student-t interval over the done trials; where the interval leaves the "
    "range the metric can take (a negative time, count or gap, a coverage above 100%), it is "
    "cut at the bound and marked †"
)


@dataclass
class Stat:
    n: int
    mean: float
    half: float  # half-width of the 95% t interval (nan with one value)
    lo: float = math.nan  # the interval's ends, within the metric's range
    hi: float = math.nan
    clipped: bool = False  # an end was cut at a bound


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def mean_ci(xs: list[Any], low: float | None = None, high: float | None = None) -> Stat | None:
    """Mean and 95% t interval of the finite values, or None without any; the interval is
    cut at ``low`` and ``high`` (the metric's range) and then marked ``clipped``."""
    vals = [float(x) for x in xs if x is not None and math.isfinite(float(x))]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return Stat(1, mean, math.nan)
    sd = math.sqrt(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1))
    half = t975(len(vals) - 1) * sd / math.sqrt(len(vals))
    lo, hi = mean - half, mean + half
    clipped = False
    if low is not None and lo < low:
        lo, clipped = low, True
    if high is not None and hi > high:
        hi, clipped = high, True
    return Stat(len(vals), mean, half, lo, hi, clipped)
