"""The code version of a trial, for the trial cache (docs/results.md, "The trial cache").

A stored row is reused by a later run only when its trial key (the instance, allocator,
parameters, seed, faults and runtime) and its code version both match. The code version is a
content hash, not the git commit, so that it means the same in a checkout with uncommitted
changes and in an installed wheel: SHA-256 over the source of

- the harness core: every module of ``harness/`` and ``actors/``;
- ``allocators/__init__.py`` and the allocators' shared helpers (``allocators/_*.py``);
- the allocator's own module.

Editing ``allocators/cbba.py`` therefore re-runs CBBA's trials and keeps the others; editing
the runtime, the evaluator or a shared helper re-runs everything. Dependencies (NumPy, PuLP,
Ray) are not in the hash: a row records their versions in the run's manifest.
"""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@cache
def _core_digest() -> bytes:
    h = hashlib.sha256()
    files = [*sorted((ROOT / "harness").glob("*.py")), *sorted((ROOT / "actors").glob("*.py"))]
    files += [ROOT / "allocators" / "__init__.py", *sorted((ROOT / "allocators").glob("_*.py"))]
    for path in dict.fromkeys(files):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.digest()


@cache
def code_version(allocator: str) -> str:
    """16 hex digits: the hash of the harness core and of ``allocator``'s module."""
    import allocators

    module = sys.modules.get(allocators.get(allocator).__module__)
    own = getattr(module, "__file__", None)
    h = hashlib.sha256(_core_digest())
    if own:
        h.update(Path(own).read_bytes())
    return h.hexdigest()[:16]
