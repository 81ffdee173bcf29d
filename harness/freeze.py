"""Writing and verifying frozen suites (``harness datasets freeze`` and ``verify``); the suites
themselves and how they are read: harness/frozen.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import InputError, SpecError
from harness.frozen import INDEX, SUITE, load_frozen, read_index
from harness.instance_io import save_instance
from harness.resources import user_frozen_dir
from harness.scenarios import make_instance
from harness.spec import SETTINGS
from harness.trials import expand


# -- freezing ----------------------------------------------------------------------------------
def freeze(spec: Any, name: str, root: str | Path | None = None, force: bool = False) -> Path:
    """Write the instances of ``spec`` and a spec reading them under ``root/name``."""

    if not name or "/" in name or name.startswith("."):
        raise SpecError("command line", "--name", "a folder name without '/'", name)
    if any(f.frozen for f in spec.families):
        raise SpecError(spec.source, "families", "a spec whose families are not frozen already")
    dest = Path(root) if root is not None else user_frozen_dir()
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

    rows = []
    for h, ispec in sorted(instances.items(), key=lambda kv: (kv[1].family, kv[1].n_tasks, kv[0])):
        inst = make_instance(ispec.recipe)
        save_instance(inst, tmp / "instances" / f"{h}.parquet")
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

    d = spec.to_dict()
    lines = [
        f"# Frozen suite {name!r}, written by `harness datasets freeze` from {spec.source}.",
        "# Instances are read from this folder; run: harness bench THIS_FILE",
        "",
        "[bench]",
    ]
    for k, v in d["bench"].items():
        if k in ("out", "address") or v == SETTINGS[k].default and k != "runtime":
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
