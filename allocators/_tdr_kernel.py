"""Time-discounted-reward routes compiled with numba: the score of every task at one gap of a
route, and CBBA's whole bundle construction (Alg. 3) on a ``tdr`` route. Imported on first use,
so that processes that never score a ``tdr`` route do not load numba.

The arithmetic is ``Route._tdr_gap``'s, operation for operation (the same sums in the same
order, so start times are bit-identical); ``exp`` is the C library's, where NumPy may use its own
SIMD kernel, so a score can differ from NumPy's in its last bit. No decision depends on that
bit: every comparison of scores goes through the tie tolerance (harness/numerics.py).

Arrays, so that the compiled functions take few arguments:

``T``  (7, n) task rows: window start, window end, duration, value, discount, distance to the
       route's end point (0 without one), distance from the agent's start point;
``P``  (5,) route scalars: start time, speed, end of availability, 1.0 if the route returns to
       an end point, the feasibility slack ``EPS``;
``D``, ``DT``  task-to-task distances (from the row task's exit to the column task) and their
       transpose, so that the distances into one task are a row too;
``G``, ``E``  (rows, n): score and start time of every task at gap ``k`` in row ``k`` (rows
       ``0..L`` are valid for a route of ``L`` tasks).
"""

# ruff: noqa: ANN001, ANN201, ANN202 - compiled functions: numba types the arguments
from __future__ import annotations

import math

import numpy as np
from numba import njit

TW_START, TW_END, DUR, VALUE, DISC, DEND, D0 = range(7)


@njit(cache=True)
def gap_row(k, L, tasks, times, G, E, T, D, DT, P):
    """Row ``k`` of ``G`` and ``E`` for the route ``tasks[:L]`` with start times ``times[:L]``:
    a task inserted between stop ``k - 1`` (the start point for k = 0) and stop ``k`` starts at
    its earliest time there and must keep stop ``k``'s start time (or, at the end, finish within
    the agent's availability)."""
    t0, speed, t_end, eps = P[0], P[1], P[2], P[4]
    has_end = P[3] > 0.0
    a = -1
    fin = t0
    if k > 0:
        a = tasks[k - 1]
        fin = times[k - 1] + T[DUR, a]
    inner = k < L
    b = tasks[k] if inner else -1
    tb = times[k] if inner else 0.0
    for j in range(T.shape[1]):  # branch-free: the tests below are unpredictable
        dprev = T[D0, j] if k == 0 else D[a, j]
        tws = T[TW_START, j]
        est = max(fin + dprev / speed, tws)
        ok = est <= T[TW_END, j] + eps
        if inner:
            ok &= est <= tb - T[DUR, j] - DT[b, j] / speed + eps
        elif has_end:
            ok &= est + T[DUR, j] + T[DEND, j] / speed <= t_end + eps
        else:
            ok &= est + T[DUR, j] <= t_end + eps
        E[k, j] = est
        # exp(-0.0) is exactly 1 in every libm, so a task served without delay scores its value
        score = T[VALUE, j] * math.exp(-T[DISC, j] * (est - tws))
        G[k, j] = score if ok else -np.inf


@njit(cache=True, inline="always")
def _tied(a, b, rtol):
    """harness.numerics.tied for two floats."""
    if a == b:
        return True
    scale = max(max(abs(a), abs(b)), 1.0)
    eps = rtol * scale if abs(scale) < np.inf else 0.0
    return abs(a - b) <= eps


@njit(cache=True)
def cbba_bundle(  # noqa: PLR0913 - one compiled call per bundle
    ident, L, limit, tasks, times, G, E, T, D, DT, P, free, load, demand, capacity, y, z, rtol, out
):
    """CBBA's bundle construction on a ``tdr`` route: while the bundle is below ``limit``, add
    the task of largest marginal score (its best gap, ties to the earliest gap) among those whose
    score outbids the winning bid ``(y, z)``; ties go to the earliest window start, then the
    lowest task id. ``free``: tasks the agent may take and has not; ``tasks``/``times`` hold room
    for one more stop than ``limit`` allows, ``G``/``E`` for the rows of a route of ``limit``.

    Updates ``tasks``, ``times``, ``G``, ``E``, ``free``, ``y`` and ``z`` in place and writes
    each added task into ``out``, in order. Returns how many."""
    n = T.shape[1]
    eps = P[4]
    # each task's best gap (the first of the largest scores), that score, and whether it
    # outbids the winning bid; kept up to date as gaps split, so that a pick reads one number
    # per task, not every gap, and the tie rules run only where a score changed
    bestc = np.empty(n)
    bestk = np.zeros(n, dtype=np.int64)
    outbid = np.zeros(n, dtype=np.bool_)
    for j in range(n):
        c = G[0, j]
        for k in range(1, L + 1):
            if G[k, j] > c:
                c = G[k, j]
                bestk[j] = k
        bestc[j] = c
        outbid[j] = free[j] and _outbids(c, y[j], z[j], ident, rtol)
    added = 0
    while limit > L:
        top = -np.inf
        for j in range(n):
            if outbid[j] and load + demand[j] <= capacity + eps and bestc[j] > top:
                top = bestc[j]
        if top == -np.inf:
            break
        near = top - 4.0 * rtol * max(abs(top), 1.0)  # every score tied with top is above
        best = -1
        for j in range(n):
            c = bestc[j]
            if (
                c >= near
                and outbid[j]
                and load + demand[j] <= capacity + eps
                and _tied(c, top, rtol)
                and (best < 0 or T[TW_START, j] < T[TW_START, best])
            ):
                best = j
        c = bestc[best]
        pos = bestk[best]
        start = E[pos, best]
        for r in range(L, pos - 1, -1):  # the stops after the gap move one on
            tasks[r + 1] = tasks[r]
            times[r + 1] = times[r]
        for r in range(L, pos, -1):  # so do the gaps after it; the gap itself splits in two
            G[r + 1] = G[r]
            E[r + 1] = E[r]
        tasks[pos] = best
        times[pos] = start
        L += 1
        gap_row(pos, L, tasks, times, G, E, T, D, DT, P)
        gap_row(pos + 1, L, tasks, times, G, E, T, D, DT, P)
        free[best] = False
        outbid[best] = False
        load += demand[best]
        y[best] = c
        z[best] = ident
        out[added] = best
        added += 1
        for j in range(n):  # gap pos became gaps pos and pos + 1; later gaps moved one on
            if not free[j]:
                continue
            bk = bestk[j]
            old = bestc[j]
            if bk == pos:  # its best gap is gone: look at every gap again
                c = G[0, j]
                bk = 0
                for k in range(1, L + 1):
                    if G[k, j] > c:
                        c = G[k, j]
                        bk = k
            else:
                c = old
                a, b = G[pos, j], G[pos + 1, j]
                if bk > pos:  # the new gaps come first: on a tie they win
                    bk += 1
                    if b >= c:
                        c, bk = b, pos + 1
                    if a >= c:
                        c, bk = a, pos
                else:
                    if a > c:
                        c, bk = a, pos
                    if b > c:
                        c, bk = b, pos + 1
            bestk[j] = bk
            if c != old:
                bestc[j] = c
                outbid[j] = _outbids(c, y[j], z[j], ident, rtol)
    return added


@njit(cache=True, inline="always")
def _outbids(c, yj, zj, ident, rtol):
    """Score ``c`` (finite) of agent ``ident`` outbids the winning bid ``(yj, zj)``: higher
    beyond the tie tolerance, or tied and ``ident`` is the lower id (allocators/cbba.py,
    ``outbids``)."""
    if not abs(c) < np.inf:
        return False
    tie = _tied(c, yj, rtol)
    return (c > yj and not tie) or (tie and (zj < 0 or ident < zj))
