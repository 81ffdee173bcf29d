"""One tie tolerance (harness/numerics.py), and numbers that do not depend on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from allocators.cbba import decide, outbids, pick_best
from harness.numerics import TIE_RTOL, beats, best_index, key_less, least_index, length, ranked
from harness.numerics import tied as is_tied

ROOT = Path(__file__).resolve().parents[1]
INF = np.inf


def test_ties_are_relative_with_a_unit_floor_and_infinities_compare_exactly():
    assert is_tied(55.51231259959789, 55.512312599597884)
    assert is_tied(0.0, 1e-12) and not is_tied(0.0, 1e-6)
    assert is_tied(1e6, 1e6 * (1 + TIE_RTOL / 2)) and not is_tied(1e6, 1e6 * (1 + 10 * TIE_RTOL))
    assert is_tied(-INF, -INF) and not is_tied(-INF, 5.0) and not is_tied(INF, 1e300)
    assert beats(2.0, 1.0) and not beats(1.0 + 1e-12, 1.0) and beats(1.0, -INF)
    assert not beats(-INF, -INF) and not is_tied(float("nan"), 1.0)
    assert list(is_tied(np.array([1.0, 2.0]), np.array([1.0 + 1e-13, 2.1]))) == [True, False]


def test_best_index_breaks_ties_by_keys_not_by_bits():
    v = np.array([3.0, 5.0 + 2e-15, 5.0, 5.0 - 2e-15, 4.0])
    assert best_index(v) == 1  # tied maxima: the lowest index
    assert best_index(v, np.array([0, 9, 7, 8, 0])) == 2  # then the smallest key
    assert best_index(v, valid=np.array([1, 0, 0, 1, 1], bool)) == 3
    assert best_index(np.full(3, -INF)) == 0 and best_index(np.array([1.0, INF, INF])) == 1
    assert least_index(np.array([2.0, 1.0 + 1e-13, 1.0])) == 1
    assert ranked([1.0, 3.0, 3.0 + 1e-12, 2.0], [0, 5, 4, 0]) == [2, 1, 3, 0]
    assert ranked([1.0, 3.0, 1.0 - 1e-12], [2, 0, 1], descending=False) == [2, 0, 1]
    assert key_less((1.0 + 1e-13, 0, 5), (1.0, 1, 0)) and not key_less((1.1, 0), (1.0, 1))


def test_cbba_decisions_do_not_flip_on_an_ulp():
    """Two agents bid the same value computed two ways; whichever is an ulp larger, the lower
    id wins, in bundle selection, CBAA's max-consensus and CBBA's Table 1."""
    a, b = 55.51231259959789, 55.512312599597884
    for hi, lo in ((a, b), (b, a)):
        # agent 0 bids ``lo``, agent 1 holds ``hi``: agent 0 still wins (lower id)
        assert outbids(np.array([lo]), np.array([0]), np.array([hi]), np.array([1]))[0]
        assert not outbids(np.array([hi]), np.array([1]), np.array([lo]), np.array([0]))[0]
        s = np.zeros(2)
        assert decide(1, 0, lo, 0, hi, 1, s, s) == 1  # receiver 1 hears agent 0's claim
        assert decide(0, 1, hi, 1, lo, 0, s, s) == 0  # receiver 0 keeps its own
        c = np.array([lo, hi, 1.0])
        assert pick_best(c, np.ones(3, bool), np.array([5.0, 1.0, 0.0])) == 1  # earlier window
        assert pick_best(c, np.ones(3, bool), np.array([0.0, 0.0, 0.0])) == 0  # then lower id


def test_length_is_a_plain_sum_of_squares():
    assert length([3.0, 4.0]) == 5.0 and length(np.zeros(3)) == 0.0


#: CPU paths to compare: NumPy's SIMD dispatch (AVX-512, AVX2, baseline) and OpenBLAS kernels
CPU_PATHS = (
    {},
    {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"},
    {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Prescott",
    },
    {"OPENBLAS_CORETYPE": "Haswell"},
)

_FINGERPRINT = """
import json
from harness.scenarios import FAMILIES, get_family
from harness.trials import derive_seed, trial_key
out = {}
for name, fam in sorted(FAMILIES.items()):
    if fam.kind != "generated":
        continue
    for n, m, seed in ((12, 4, 1), (30, 6, 2)):
        h = get_family(name, "t", "f").make(n, m, seed).content_hash()
        out[f"{name}-{n}x{m}-{seed}"] = [h, derive_seed(0, "trial", "cbba", {}, h, 0)]
print(json.dumps(out, sort_keys=True))
"""


@pytest.mark.slow
def test_instance_hashes_and_seeds_are_the_same_on_every_cpu_path():
    """Content hashes of generated instances, and the seeds and keys hashed from them, come out
    the same whatever SIMD kernels NumPy and OpenBLAS pick (a logistics generator once took
    its distances from BLAS ``dot``, whose last bit depends on the kernel)."""
    seen = []
    for extra in CPU_PATHS:
        env = {**os.environ, **extra}
        out = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seen.append(json.loads(out.stdout))
    assert len(seen[0]) >= 8
    for other in seen[1:]:
        assert other == seen[0]
