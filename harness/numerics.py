"""Numbers that mean the same on every CPU: one tie tolerance for every decision an allocator
takes on floats (docs/allocators.md, Ties), and lengths computed without BLAS.

NumPy picks its SIMD kernels by CPU, so a score such as ``value * exp(-discount * late)`` can
differ in its last bit between two machines (an AVX-512 ``exp`` against an AVX2 one). When two
scores are equal in exact arithmetic, or nearly so, comparing them with ``>`` or ``==`` lets
that bit decide who wins, and the same trial then allocates differently on two machines. Here
two scores are *tied* when they differ by at most ``TIE_RTOL`` times the larger magnitude (and
at least 1, so that scores near 0 get an absolute ``TIE_RTOL``); a tie is broken by the
allocator's own tie keys (agent id, window start, task id), never by the bits. Infinite
values compare exactly.

Why ``1e-9``: every score in the project is a sum or product of a few dozen instance numbers
(distances, values, discounts), whose rounding error is below ``1e-13`` relative, while
instance data carry at most 10 significant digits; so scores that differ by less than
``1e-9`` relative differ by rounding only, and scores that differ by more differ in the data.
The MIT reference CBBA compares bids within an absolute ``1e-5``; with bids from ``1e-2`` to
``1e5`` here, a relative tolerance fits every family. On one machine, decisions and stored
values stay exactly reproducible: the tolerance changes which bid wins only among tied ones.

A tolerance is not transitive: three bids ``a < b < c`` with ``b - a`` and ``c - b`` inside it
but ``c - a`` outside would rank in a cycle. That needs bids spaced within ``1e-9`` of each
other, which real instances do not give; a decision still flips if two scores differ by
``TIE_RTOL`` to within an ulp, which is as unlikely.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: relative tie tolerance of scores, bids, prices and costs (module docstring)
TIE_RTOL = 1e-9


def tie_eps(a: Any, b: Any) -> Any:
    """The largest difference at which ``a`` and ``b`` count as tied (0 where one is infinite)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
    out = np.where(np.isfinite(scale), TIE_RTOL * scale, 0.0)
    return out if out.ndim else float(out)


def tied(a: Any, b: Any) -> Any:
    """``a`` and ``b`` are equal within the tie tolerance (elementwise)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        out = (a == b) | (np.abs(a - b) <= tie_eps(a, b))
    return out if out.ndim else bool(out)


def beats(a: Any, b: Any) -> Any:
    """``a`` is larger than ``b`` by more than the tie tolerance (elementwise)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        out = (a > b) & ~((a == b) | (np.abs(a - b) <= tie_eps(a, b)))
    return out if out.ndim else bool(out)


def best_index(values: Any, *keys: Any, valid: Any = None) -> int:
    """The index of the largest of ``values`` (among ``valid``); values tied with the largest
    go to the smallest ``keys`` in turn (arrays as long as ``values``), then to the lowest
    index. Like ``np.argmax``, the first index when no value is finite or none is valid."""
    v = np.asarray(values, dtype=float)
    ok = np.ones(len(v), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if not ok.any():
        return 0
    top = v[ok].max()
    if not np.isfinite(top):  # all -inf, a +inf, or a NaN: the first such, exactly
        hit = np.flatnonzero(ok & (v == top)) if not np.isnan(top) else np.flatnonzero(ok)
        return int(hit[0])
    cand = np.flatnonzero(ok & tied(v, top))
    if len(cand) == 1 or not keys:
        return int(cand[0])
    cols = [np.asarray(k)[cand] for k in reversed(keys)]
    return int(cand[np.lexsort((cand, *cols))[0]])


def least_index(values: Any, *keys: Any, valid: Any = None) -> int:
    """``best_index`` of the smallest value."""
    return best_index(-np.asarray(values, dtype=float), *keys, valid=valid)


def ranked(values: Sequence[float], keys: Sequence[Any], descending: bool = True) -> list[int]:
    """Positions ``0..n-1`` ordered by value (largest first unless ``descending`` is false);
    runs of values tied with the run's first value are ordered by ``keys``, then position."""
    n = len(values)
    sign = -1.0 if descending else 1.0
    first = sorted(range(n), key=lambda p: (sign * float(values[p]), keys[p], p))
    out: list[int] = []
    k = 0
    while k < n:
        lead = float(values[first[k]])
        run = [first[k]]
        k += 1
        while k < n and tied(float(values[first[k]]), lead):
            run.append(first[k])
            k += 1
        out += sorted(run, key=lambda p: (keys[p], p))
    return out


def key_less(a: tuple, b: tuple) -> bool:
    """Tuple ``a`` sorts before ``b``: a float first element compared within the tie
    tolerance, the other elements exactly."""
    if tied(a[0], b[0]):
        return a[1:] < b[1:]
    return a[0] < b[0]


def length(v: Any) -> float:
    """The Euclidean length of one vector, the same on every CPU. ``np.linalg.norm`` of a 1-D
    vector calls BLAS ``dot``, whose kernel (and so its last bit) OpenBLAS picks by CPU; this
    sums the squares in order with IEEE operations, which round the same everywhere."""
    return math.sqrt(sum(float(x) * float(x) for x in np.asarray(v, dtype=float).ravel()))
