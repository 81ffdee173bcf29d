"""CBBA's consensus rules (Table 1 of Choi, Brunet, How, IEEE T-RO 2009), as plain Python: the
readable reference, and the function the numba round kernel (``_cbba_kernel``) compiles. A
module of its own so that the kernel and the allocator both import it, and neither the other."""

from __future__ import annotations

import numpy as np

from harness.numerics import TIE_RTOL

NONE = -1


def decide(
    i: int,
    k: int,
    yk: float,
    zk: int,
    yi: float,
    zi: int,
    sk: np.ndarray,
    si: np.ndarray,
    rtol: float = TIE_RTOL,
) -> int:
    """Table 1 of the paper for one task, as the receiver ``i`` sees a message from ``k``:
    1 update, -1 reset, 0 leave. ``sk``/``si`` are the two time-stamp vectors; bids within
    ``rtol`` are tied (harness/numerics.py, written out here for numba). Compiled with numba for
    the round kernel below; the plain function is the readable reference."""
    finite = abs(yk) < np.inf and abs(yi) < np.inf
    eps = rtol * max(1.0, abs(yk), abs(yi)) if finite else 0.0
    tie = yk == yi or abs(yk - yi) <= eps
    better = (yk > yi and not tie) or (tie and zk >= 0 and (zi < 0 or zk < zi))
    if zk == k:
        if zi == i:
            return int(better)
        if zi in (k, NONE):
            return 1
        return int(sk[zi] > si[zi] or better)
    if zk == i:
        if zi == k:
            return -1
        if zi in (i, NONE):
            return 0
        return -1 if sk[zi] > si[zi] else 0
    if zk == NONE:
        if zi == k:
            return 1
        if zi in (i, NONE):
            return 0
        return int(sk[zi] > si[zi])
    m = zk  # a third agent
    if zi == i:
        return int(sk[m] > si[m] and better)
    if zi == k:
        return 1 if sk[m] > si[k] else -1
    if zi == NONE:
        return int(sk[m] > si[m])
    if zi == m:
        return int(sk[m] > si[m])
    n = zi
    if sk[m] > si[m] and (sk[n] > si[n] or better):
        return 1
    return -1 if sk[n] > si[n] and si[m] > sk[m] else 0
