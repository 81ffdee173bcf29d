"""Statistics shared by the reports: the mean and its 95% interval (Student's t)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Stat:
    n: int
    mean: float
    half: float  # half-width of the 95% interval (nan with one value)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def mean_ci(xs: list[Any]) -> Stat | None:
    """Mean and half-width of the 95% interval of the finite values, or None without any."""
    vals = [float(x) for x in xs if x is not None and math.isfinite(float(x))]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return Stat(1, mean, math.nan)
    sd = math.sqrt(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1))
    return Stat(len(vals), mean, t975(len(vals) - 1) * sd / math.sqrt(len(vals)))
