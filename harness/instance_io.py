"""Instances as Arrow tables and Parquet files.

One file holds one instance in long form: a ``table`` column says whether a row is an
``agent``, a ``task``, a communication ``edge`` or a ``precedence`` pair; the other columns
are the union of the agent and task schemas (null where a column does not apply), plus
``capabilities`` as a list column. The name, family, objective, graph kind and metadata are in
the file's key-value metadata under ``dta_harness.instance``, so DuckDB can read the rows
(``SELECT * FROM 'x.parquet' WHERE "table" = 'task'``) and the harness can rebuild the instance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import InstanceError
from harness.model import AGENT_COLUMNS, TASK_COLUMNS, CommGraph, Instance

META_KEY = b"dta_harness.instance"


def instance_to_table(inst: Instance) -> pa.Table:
    cols = sorted(set(AGENT_COLUMNS) | set(TASK_COLUMNS))
    kinds: list[str] = []
    ids: list[int] = []
    to: list[int | None] = []
    data: dict[str, list] = {c: [] for c in cols}
    caps: list[list[float] | None] = []
    for kind, table, cap in (
        ("agent", inst.agents, inst.agent_caps),
        ("task", inst.tasks, inst.task_caps),
    ):
        n = len(table["x"])
        kinds += [kind] * n
        ids += list(range(n))
        to += [None] * n
        for c in cols:
            data[c] += table[c].tolist() if c in table else [None] * n
        caps += cap.tolist() if cap is not None else [None] * n
    for kind, pairs in (("edge", inst.comm.edges), ("precedence", inst.precedence)):
        for a, b in [] if pairs is None else pairs.tolist():
            kinds.append(kind)
            ids.append(a)
            to.append(b)  # the pair's second end
            for c in cols:
                data[c].append(None)
            caps.append(None)
    arrays = {
        "table": pa.array(kinds, pa.string()),
        "id": pa.array(ids, pa.int64()),
        "to": pa.array(to, pa.int64()),
    }
    for c in cols:
        typ = (
            pa.int64() if (AGENT_COLUMNS.get(c) or TASK_COLUMNS.get(c))[0] is int else pa.float64()
        )
        arrays[c] = pa.array(data[c], typ)
    arrays["capabilities"] = pa.array(caps, pa.list_(pa.float64()))
    header = {
        "name": inst.name,
        "family": inst.family,
        "objective": inst.objective,
        "comm": {"kind": inst.comm.kind, "params": inst.comm.params},
        "meta": inst.meta,
        "hash": inst.content_hash(),
    }
    table = pa.table(arrays)
    return table.replace_schema_metadata({META_KEY: json.dumps(header).encode()})


def instance_from_parquet(path: str | Path) -> Instance:
    source = str(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InstanceError(source, "(file)", "a readable Parquet file", str(exc)) from None
    meta = (table.schema.metadata or {}).get(META_KEY)
    if meta is None:
        raise InstanceError(
            source, "metadata", "key 'dta_harness.instance' written by save_instance"
        )
    header = json.loads(meta)
    d = table.to_pydict()
    rows = {
        k: [i for i, t in enumerate(d["table"]) if t == k]
        for k in ("agent", "task", "edge", "precedence")
    }

    def cols(kind: str, schema: dict) -> dict[str, list]:
        return {c: [d[c][i] for i in rows[kind]] for c in schema}

    def caps(kind: str) -> np.ndarray | None:
        vals = [d["capabilities"][i] for i in rows[kind]]
        return None if not vals or vals[0] is None else np.asarray(vals, dtype=np.float64)

    for kind in ("agent", "task"):
        got = [d["id"][i] for i in rows[kind]]
        if got != list(range(len(got))):
            raise InstanceError(source, f"{kind} ids", "0, 1, 2, ... in order", got[:5])
    edges = np.array([[d["id"][i], d["to"][i]] for i in rows["edge"]], dtype=np.int64).reshape(
        -1, 2
    )
    prec = [[d["id"][i], d["to"][i]] for i in rows["precedence"]]
    comm = CommGraph(
        kind=header["comm"]["kind"], edges=edges, params=header["comm"].get("params", {})
    )
    inst = Instance.build(
        name=header["name"],
        family=header["family"],
        objective=header["objective"],
        agents=cols("agent", AGENT_COLUMNS),
        tasks=cols("task", TASK_COLUMNS),
        comm=comm,
        agent_caps=caps("agent"),
        task_caps=caps("task"),
        precedence=prec or None,
        meta=header.get("meta", {}),
        source=source,
    )
    if header.get("hash") and header["hash"] != inst.content_hash():
        raise InstanceError(
            source, "hash", f"the content hash {inst.content_hash()}", header["hash"]
        )
    return inst


# -- files: JSON or Parquet, by suffix --------------------------------------------------------
def save_instance(inst: Instance, path: str | Path) -> Path:
    """Write ``inst`` as ``.json`` or ``.parquet`` (by suffix), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".json":
        tmp.write_text(json.dumps(inst.to_dict(), indent=1))
    elif path.suffix == ".parquet":
        pq.write_table(instance_to_table(inst), tmp)
    else:
        raise InstanceError(str(path), "suffix", "'.json' or '.parquet'", path.suffix)
    tmp.replace(path)
    return path


def load_instance(path: str | Path) -> Instance:
    """An instance from a ``.json`` or ``.parquet`` file; errors name the file and field."""
    path = Path(path)
    if not path.exists():
        raise InstanceError(str(path), "(file)", "an existing instance file")
    if path.suffix == ".json":
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InstanceError(str(path), f"line {exc.lineno}", "valid JSON", exc.msg) from None
        return Instance.from_dict(d, source=str(path))
    if path.suffix == ".parquet":
        return instance_from_parquet(path)
    raise InstanceError(str(path), "suffix", "'.json' or '.parquet'", path.suffix)
