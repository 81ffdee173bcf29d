"""CBBA's consensus round compiled with numba (imported on first use, so that processes that
never run CBBA, such as most agent actors, do not load numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from allocators._cbba_rules import NONE, decide  # noqa: F401 - NONE documents the -1 below

_decide = njit(cache=True, inline="always")(decide)  # inlined: called for every entry read


@njit(cache=True)
def consensus_kernel(i, y, z, s, senders, arrivals, rows, ys, zs, ss, cols, ysm, zsm, rtol):  # noqa: ANN001, ANN202 - compiled
    """The receiver's table after the round's messages, read in arrival order: message ``r``
    comes from ``senders[r]`` at ``arrivals[r]`` and is row ``rows[r]`` of ``ys``, ``zs`` and
    ``ss`` (harness.api.RoundBatch.rows). ``cols``: the tasks on which the rows may differ, and
    ``ysm``/``zsm`` those columns of ``ys``/``zs``, contiguous (harness.api.RoundBatch.mixed); on
    every other task all rows agree, so the first message's row stands for all. After each
    message the stamps merge (eq. 6) and ``s_i[k]`` becomes its receipt time. Entries where
    message and table agree are skipped: every rule leaves them as they are. ``rtol``: the tie
    tolerance (harness/numerics.py), passed in so that a cached compilation never holds a stale
    one."""
    changed = False
    n = len(y)
    where = np.full(n, -1, dtype=np.int64)  # a task's place among cols, -1 where rows agree
    for t in range(len(cols)):
        where[cols[t]] = t
    # a task on which every message agrees with the table stays as it is through the whole
    # round; only the others are read message by message
    q0 = rows[0]
    differs = np.zeros(n, dtype=np.bool_)
    for j in range(n):
        differs[j] = (where[j] < 0) & ((zs[q0, j] != z[j]) | (ys[q0, j] != y[j]))
    for r in range(len(senders)):
        q = rows[r]
        for t in range(len(cols)):
            j = cols[t]
            differs[j] |= (zsm[q, t] != z[j]) | (ysm[q, t] != y[j])
    active = np.flatnonzero(differs)
    for r in range(len(senders)):
        k = senders[r]
        q = rows[r]
        sq = ss[q]
        for j in active:
            t = where[j]
            yk = ysm[q, t] if t >= 0 else ys[q0, j]
            zk = zsm[q, t] if t >= 0 else zs[q0, j]
            if zk != z[j] or yk != y[j]:
                action = _decide(i, k, yk, zk, y[j], z[j], sq, s, rtol)
                if action == 1:
                    y[j], z[j] = yk, zk
                    changed = True
                elif action == -1:
                    y[j], z[j] = -np.inf, -1
                    changed = True
        for m in range(len(s)):
            if sq[m] > s[m]:
                s[m] = sq[m]
        s[k] = arrivals[r]
    return changed
