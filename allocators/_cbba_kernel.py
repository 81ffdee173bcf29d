"""CBBA's consensus round compiled with numba (imported on first use, so that processes that
never run CBBA, such as most agent actors, do not load numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from allocators._cbba_rules import NONE, decide  # noqa: F401 - NONE documents the -1 below

_decide = njit(cache=True)(decide)


@njit(cache=True)
def consensus_kernel(i, y, z, s, senders, arrivals, ys, zs, ss, rtol):  # noqa: ANN001, ANN202 - compiled
    """The receiver's table after the round's messages, read in arrival order; after each
    message the stamps merge (eq. 6) and ``s_i[k]`` becomes its receipt time. Entries where
    message and table agree are skipped: every rule leaves them as they are. ``rtol``: the
    tie tolerance (harness/numerics.py), passed in so that a cached compilation never holds a stale
    one."""
    changed = False
    for r in range(len(senders)):
        k = senders[r]
        for j in range(len(y)):
            if zs[r, j] != z[j] or ys[r, j] != y[j]:
                action = _decide(i, k, ys[r, j], zs[r, j], y[j], z[j], ss[r], s, rtol)
                if action == 1:
                    y[j], z[j] = ys[r, j], zs[r, j]
                    changed = True
                elif action == -1:
                    y[j], z[j] = -np.inf, -1
                    changed = True
        for m in range(len(s)):
            if ss[r, m] > s[m]:
                s[m] = ss[r, m]
        s[k] = arrivals[r]
    return changed
