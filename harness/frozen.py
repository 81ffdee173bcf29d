"""Frozen suites: a spec's instances written once as Parquet, so a baseline stays comparable
when generator or loader code changes (docs/regression.md).

``harness datasets freeze SPEC --name NAME`` writes (into ``./frozen`` of the current directory
unless ``--dir`` names another folder; the shipped suites are in ``datasets/frozen``)::

    frozen/NAME/
      suite.toml                 the spec, each family read from this folder (frozen = ".")
      instances.parquet          index: file, inst_hash, inst_name, inst_family, sizes,
                                 repetitions and the recipe the instance was generated from
      instances/<hash>.parquet   one instance each (harness/instance_io.py)

A frozen family entry in a spec is ``{name = "tdr", frozen = "PATH"}``: every instance of that
family in the suite at PATH (relative to the spec file), each with the repetition it had when
frozen, so the trial seeds and keys are the ones the original spec gives. Loading checks each
file's content hash against the index. This module reads suites; harness/freeze.py writes
and verifies them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import InputError, suggest
from harness.instance_io import load_instance

INDEX = "instances.parquet"
SUITE = "suite.toml"


def frozen_dir() -> Path:
    """The frozen suites shipped with the harness (read-only; harness/resources.py)."""
    from harness.resources import shipped_frozen_dir

    return shipped_frozen_dir()


def find_suite(name: str) -> Path:
    """A frozen suite given by path, or by name: ``./frozen/NAME``, then the shipped one."""
    from harness.resources import frozen_dirs

    path = Path(name)
    if path.exists() or "/" in name:
        return path
    for root in frozen_dirs():
        if (root / name / INDEX).exists():
            return root / name
    known = sorted({p.parent.name for d in frozen_dirs() for p in d.glob(f"*/{INDEX}")})
    raise InputError(
        "command line",
        "suite",
        f"a folder or the name of a frozen suite in {' or '.join(map(str, frozen_dirs()))} "
        f"({', '.join(known) or 'none'}){suggest(name, known)}",
        name,
    )


def read_index(suite: str | Path) -> list[dict[str, Any]]:
    path = Path(suite) / INDEX
    if not path.exists():
        raise InputError(
            str(path), "(file)", "the index of a frozen suite (harness datasets freeze)"
        )
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(str(path), "(file)", "a readable Parquet file", str(exc)) from None
    need = {"file", "inst_hash", "inst_family", "reps"}
    for i, r in enumerate(rows):
        missing = sorted(need - {k for k, v in r.items() if v is not None})
        if missing:
            raise InputError(
                str(path),
                f"row {i}.{missing[0]}",
                "a value (columns: file, inst_hash, inst_family, reps)",
            )
    return rows


def frozen_recipes(suite: Path, family: str) -> list[tuple[dict[str, Any], int]]:
    """(recipe, repetition) of every instance of ``family`` in the suite."""
    out = []
    for r in read_index(suite):
        if r["inst_family"] != family:
            continue
        recipe = {"family": family, "frozen": str(suite), "file": r["file"], "hash": r["inst_hash"]}
        out += [(recipe, int(rep)) for rep in r["reps"]]
    return out


def load_frozen(recipe: dict[str, Any]) -> Any:
    """The instance a frozen recipe names, after checking its content hash."""
    path = Path(recipe["frozen"]) / recipe["file"]
    inst = load_instance(path)
    got = inst.content_hash()
    if got != recipe["hash"]:
        raise InputError(
            str(path), "content hash", f"{recipe['hash']} as in the suite's {INDEX}", got
        )
    return inst
