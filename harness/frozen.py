"""Frozen suites: a spec's instances written once as Parquet, so a baseline stays comparable
when generator or loader code changes (docs/regression.md).

``harness datasets freeze SPEC --name NAME`` writes::

    datasets/frozen/NAME/
      suite.toml                 the spec, each family read from this folder (frozen = ".")
      instances.parquet          index: file, inst_hash, inst_name, inst_family, sizes,
                                 repetitions and the recipe the instance was generated from
      instances/<hash>.parquet   one instance each (harness/instance_io.py)

A frozen family entry in a spec is ``{name = "tdr", frozen = "PATH"}``: every instance of that
family in the suite at PATH (relative to the spec file), each with the repetition it had when
frozen, so the trial seeds and keys are the ones the original spec gives. Loading checks each
file's content hash against the index.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import InputError, SpecError

INDEX = "instances.parquet"
SUITE = "suite.toml"


def frozen_dir() -> Path:
    from harness.loaders import datasets_dir

    return datasets_dir() / "frozen"


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
    from harness.model import Instance

    path = Path(recipe["frozen"]) / recipe["file"]
    inst = Instance.load(path)
    got = inst.content_hash()
    if got != recipe["hash"]:
        raise InputError(
            str(path), "content hash", f"{recipe['hash']} as in the suite's {INDEX}", got
        )
    return inst


# -- freezing ----------------------------------------------------------------------------------
def freeze(spec: Any, name: str, root: str | Path | None = None, force: bool = False) -> Path:
    """Write the instances of ``spec`` and a spec reading them under ``root/name``."""
    from harness.trials import expand

    if not name or "/" in name or name.startswith("."):
        raise SpecError("command line", "--name", "a folder name without '/'", name)
    if any(f.frozen for f in spec.families):
        raise SpecError(spec.source, "families", "a spec whose families are not frozen already")
    dest = Path(root) if root is not None else frozen_dir()
    dest = dest / name
    if dest.exists() and not force:
        raise SpecError(
            "command line", "--name", f"a suite not yet in {dest.parent} (or --force)", name
        )
    trials, instances, _ = expand(spec)
    tmp = dest.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "instances").mkdir(parents=True)
    reps: dict[str, set[int]] = {}
    for t in trials:
        reps.setdefault(t.instance.hash, set()).add(t.rep)
    from harness.scenarios import make_instance

    rows = []
    for h, ispec in sorted(instances.items(), key=lambda kv: (kv[1].family, kv[1].n_tasks, kv[0])):
        inst = make_instance(ispec.recipe)
        inst.save(tmp / "instances" / f"{h}.parquet")
        rows.append(
            {
                "file": f"instances/{h}.parquet",
                "inst_hash": h,
                "inst_name": ispec.name,
                "inst_family": ispec.family,
                "inst_objective": ispec.objective,
                "inst_n_tasks": ispec.n_tasks,
                "inst_n_agents": ispec.n_agents,
                "reps": sorted(reps.get(h, {0})),
                "recipe": json.dumps(ispec.recipe, sort_keys=True),
            }
        )
    pq.write_table(pa.Table.from_pylist(rows), tmp / INDEX)
    (tmp / SUITE).write_text(suite_toml(spec, name, sorted({r["inst_family"] for r in rows})))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def verify(suite: str | Path) -> list[dict[str, Any]]:
    """Each instance of a suite: whether its file still has its hash, and whether today's
    generator code still builds the same instance from its recipe (``drift``)."""
    from harness.scenarios import make_instance

    suite = Path(suite)
    out = []
    for r in read_index(suite):
        row = {"file": r["file"], "inst_name": r.get("inst_name"), "inst_hash": r["inst_hash"]}
        try:
            load_frozen({"frozen": str(suite), "file": r["file"], "hash": r["inst_hash"]})
            row["file_ok"] = True
        except InputError as exc:
            row["file_ok"] = False
            row["problem"] = str(exc)
        try:
            now = make_instance(json.loads(r["recipe"])).content_hash()
            row["generator_same"] = now == r["inst_hash"]
            row["generator_hash"] = now
        except (InputError, KeyError, TypeError, ValueError) as exc:
            row["generator_same"] = False
            row["generator_hash"] = f"({exc})"
        out.append(row)
    return out


# -- a TOML writer for specs (the values a spec holds: str, int, float, bool, lists, tables) --------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if not isinstance(v, float) or v == v else "nan"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r}")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def suite_toml(spec: Any, name: str, families: list[str]) -> str:
    from harness.spec import SETTINGS

    d = spec.to_dict()
    lines = [
        f"# Frozen suite {name!r}, written by `harness datasets freeze` from {spec.source}.",
        "# Instances are read from this folder; run: harness bench THIS_FILE",
        "",
        "[bench]",
    ]
    for k, v in d["bench"].items():
        if k in ("out", "address") or v == SETTINGS[k][0] and k != "runtime":
            continue
        lines.append(f"{k} = {_toml_value(v)}")
    for a in d["allocators"]:
        lines += ["", "[[allocators]]", f"name = {_toml_value(a['name'])}"]
        if a["params"]:
            lines.append(f"params = {_toml_value(a['params'])}")
    for fam in families:
        lines += ["", "[[families]]", f"name = {_toml_value(fam)}", 'frozen = "."']
    if d["faults"] != [{}]:
        for f in d["faults"]:
            items = f.items() if f else [("name", "none")]
            lines += ["", "[[faults]]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in items]
    if d.get("execution"):
        lines += ["", "[execution]"] + [
            f"{k} = {_toml_value(v)}" for k, v in d["execution"].items()
        ]
    return "\n".join(lines) + "\n"
