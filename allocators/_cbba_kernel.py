"""CBBA's consensus round compiled with numba (imported on first use, so that processes that
never run CBBA, such as most agent actors, do not load numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from allocators._cbba_rules import NONE, decide  # noqa: F401 - NONE documents the -1 below

_decide = njit(cache=True)(decide)


@njit(cache=True)
def consensus_kernel(i, y, z, s, senders, arrivals, rows, ys, zs, ss, rtol):  # noqa: ANN001, ANN202 - compiled
    """The receiver's table after the round's messages, read in arrival order: message ``r``
    comes from ``senders[r]`` at ``arrivals[r]`` and is row ``rows[r]`` of ``ys``, ``zs`` and
    ``ss`` (harness.api.columns). After each message the stamps merge (eq. 6) and ``s_i[k]``
    becomes its receipt time. Entries where message and table agree are skipped: every rule
    leaves them as they are. ``rtol``: the tie tolerance
    (harness/numerics.py), passed in so that a cached compilation never holds a stale one."""
    changed = False
    n = len(y)
    # a task on which every message agrees with the table stays as it is through the whole
    # round; only the others are read message by message
    differs = np.zeros(n, dtype=np.bool_)
    for r in range(len(senders)):
        yq, zq = ys[rows[r]], zs[rows[r]]
        for j in range(n):
            differs[j] |= (zq[j] != z[j]) | (yq[j] != y[j])
    active = np.flatnonzero(differs)
    for r in range(len(senders)):
        k = senders[r]
        q = rows[r]
        yq, zq, sq = ys[q], zs[q], ss[q]
        for j in active:
            if zq[j] != z[j] or yq[j] != y[j]:
                action = _decide(i, k, yq[j], zq[j], y[j], z[j], sq, s, rtol)
                if action == 1:
                    y[j], z[j] = yq[j], zq[j]
                    changed = True
                elif action == -1:
                    y[j], z[j] = -np.inf, -1
                    changed = True
        for m in range(len(s)):
            if sq[m] > s[m]:
                s[m] = sq[m]
        s[k] = arrivals[r]
    return changed
