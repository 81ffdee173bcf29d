"""DuckDB views over one or more result roots or run directories (DESIGN §8).

``trials``: one row per trial (all runs found); ``runs``: one row per run manifest;
``optima``: the exact optima cache; ``rounds``: one row per round of the trials that recorded
a trace (``trace_rounds``); ``exec_trace``: the samples of executed online trials. Any DuckDB
client can do the same without harness code::

    SELECT * FROM read_parquet('results/*/trials/*.parquet', union_by_name = true)

(a run being resumed can hold a trial both in its compacted file and in a one-row file;
the views keep the one-row file's, see harness/store.py)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from harness.store import (
    CORE_COLUMNS,
    json_problem,
    readable,
    run_dirs,
    sql_type,
    typed_trials_sql,
)

#: columns of the empty views, so queries still bind when nothing is stored yet
EMPTY = {
    "trials": ", ".join(f"{c} {sql_type(c)}" for c in CORE_COLUMNS),
    "runs": "run_id VARCHAR, status VARCHAR, started VARCHAR, git_commit VARCHAR",
    "optima": "inst_hash VARCHAR, opt_value DOUBLE, opt_status VARCHAR",
}
_KEYS = "trial_key, trial_run_id, alg_name, alg_params, inst_family, inst_size, inst_n_tasks, inst_n_agents, trial_fault_name"
#: every view ``harness query`` and the report read, with what a row of it is
VIEWS = {
    "trials": "one row per trial: its keys, parameters, status and measures",
    "runs": "one row per run: its manifest (spec, settings, environment)",
    "optima": "one row per instance with an exact optimum (the PuLP cache)",
    "rounds": "one row per trial and round: messages, objective, coverage, conflicts",
    "exec_trace": "one row per trial and sample of an executed mission: time, best cost",
    "draws": "one row per trial and Monte Carlo draw under uncertainty: objective, gap, ...",
}

#: views that unnest a JSON column of trials: name -> (the column, trial columns the view
#: keeps besides the identity ones, its row layout as SQL, its schema when nothing is stored)
TRACES = {
    "rounds": (
        "trial_round_trace",
        "",
        "r[1]::BIGINT AS round, r[2]::BIGINT AS messages, r[3] AS objective, "
        "r[4] AS coverage, r[5]::BIGINT AS conflicts",
        "round BIGINT, messages BIGINT, objective DOUBLE, coverage DOUBLE, conflicts BIGINT",
    ),
    "exec_trace": (
        "trial_exec_trace",
        "",
        "r[1] AS seconds, r[2] AS best_cost",
        "seconds DOUBLE, best_cost DOUBLE",
    ),
    "draws": (  # harness/uncertainty.py DRAW_COLUMNS, after the draw's number
        "trial_draws",
        ", trial_uncertainty_name",
        "trial_uncertainty_name AS uncertainty, r[1]::BIGINT AS draw, r[2] AS objective, "
        "r[3] AS gap, r[4] AS gap_best_known, r[5] AS coverage, r[6]::BIGINT AS conflicts, "
        "r[7]::BOOLEAN AS feasible, r[8]::BIGINT AS messages, r[9]::BIGINT AS bytes, "
        "r[10]::BIGINT AS rounds",
        "uncertainty VARCHAR, draw BIGINT, objective DOUBLE, gap DOUBLE, "
        "gap_best_known DOUBLE, coverage DOUBLE, conflicts BIGINT, feasible BOOLEAN, "
        "messages BIGINT, bytes BIGINT, rounds BIGINT",
    ),
}


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def locate(results: list[str | Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """Trial files, manifests and optima files under each path (a root or a run directory)."""
    trials: list[Path] = []
    manifests: list[Path] = []
    optima: list[Path] = []
    for r in results:
        r = Path(r)
        runs = run_dirs(r)
        root = r.parent if runs == [r] else r  # the optima cache sits beside the runs
        optima += sorted((root / "optima").glob("*.parquet"))
        for run in runs:
            manifests.append(run / "manifest.json")
            trials += sorted((run / "trials").glob("*.parquet"))
    return trials, manifests, sorted(set(optima))


def connect(results: list[str | Path]) -> duckdb.DuckDBPyConnection:
    trials, manifests, optima = locate(results)
    trials = readable(trials)
    optima = readable(optima, column="inst_hash")
    manifests = readable(manifests, check=json_problem)
    con = duckdb.connect()
    if trials:
        con.execute(f"CREATE VIEW trials AS {typed_trials_sql(con, trials)}")
    else:
        con.execute(f"CREATE TABLE trials ({EMPTY['trials']})")
    for name, files, reader in (
        ("runs", manifests, "read_json_auto({}, union_by_name = true, maximum_depth = 2)"),
        ("optima", optima, "read_parquet({}, union_by_name = true)"),
    ):
        if files:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {reader.format(_sql_list(files))}")
        else:
            con.execute(f"CREATE TABLE {name} ({EMPTY[name]})")
    have = {r[0] for r in con.execute("DESCRIBE trials").fetchall()}
    for name, (column, extra, layout, empty) in TRACES.items():
        if column in have and set(_KEYS.split(", ")) <= have:
            con.execute(
                f"CREATE VIEW {name} AS SELECT {_KEYS}, {layout} FROM "
                f"(SELECT {_KEYS}{extra}, unnest(CAST({column} AS DOUBLE[][])) AS r FROM "
                f"trials WHERE {column} IS NOT NULL AND {column} <> '')"
            )
        else:
            cols = ", ".join(f"{k} VARCHAR" for k in _KEYS.split(", "))
            con.execute(f"CREATE TABLE {name} ({cols}, {empty})")
    return con


SUMMARY_SQL = """
SELECT inst_family AS family,
       alg_name || CASE WHEN coalesce(trial_uncertainty_name, 'none') = 'none' THEN ''
                        ELSE ' <' || trial_uncertainty_name || '>' END AS allocator,
       inst_size AS size,
       trial_fault_name AS faults,
       CASE WHEN count(*) FILTER (WHERE trial_status <> 'skip') = 0 THEN 'skip'
            ELSE printf('%d/%d', count(*) FILTER (WHERE trial_status = 'done'),
                        count(*) FILTER (WHERE trial_status <> 'skip')) END AS done,
       coalesce(avg(m_gap), avg(m_gap_best_known)) AS gap,
       CASE WHEN count(m_gap) > 0 THEN 'optimum'
            WHEN count(m_gap_best_known) > 0 THEN 'best known'
            WHEN count(*) FILTER (WHERE trial_status <> 'skip') = 0 THEN 'allocator skipped'
            WHEN count(*) FILTER (WHERE trial_status = 'done') = 0 THEN 'no done trial'
            WHEN bool_or(m_opt_status = 'optimal') THEN 'plans infeasible'
            WHEN bool_or(m_opt_status = 'skipped') THEN 'optimum skipped'
            WHEN bool_or(m_opt_status IN ('timeout', 'feasible')) THEN 'optimum timed out'
            WHEN bool_or(m_opt_status = 'error') THEN 'optimum failed'
            ELSE 'no reference' END AS "gap to",
       avg(CASE WHEN m_feasible THEN 1.0 ELSE 0.0 END) FILTER (WHERE trial_status = 'done') AS feas,
       avg(m_coverage) AS cover,
       avg(m_conflicts) AS confl,
       avg(m_messages) AS msgs,
       avg(m_rounds) AS rounds,
       1000 * avg(trial_wall_s) FILTER (WHERE trial_status = 'done') AS ms
FROM trials
WHERE trial_run_id = ?
GROUP BY ALL
ORDER BY family, min(inst_n_tasks * 100000 + inst_n_agents), allocator, faults
"""

#: why the summary has no gap to the optimum: the optimum solver's own notes, per size
OPTIMUM_NOTES_SQL = """
SELECT DISTINCT t.inst_family, t.inst_size, o.opt_status, o.opt_note
FROM trials t JOIN optima o USING (inst_hash)
WHERE t.trial_run_id = ? AND t.m_gap IS NULL AND t.trial_status = 'done'
      AND o.opt_status <> 'optimal'
ORDER BY 1, 2
"""


def section_for(
    sql: str, render: Callable[[list[str | Path], Path, Any], str]
) -> Callable[[list[str | Path], Path, Any], str | None]:
    """A report section (reports/report.py): ``render(results, out, styles)``, or None when
    the stores hold no row for ``sql``. ``styles``: the report's plot styles (reports/svg.py),
    so an allocator is drawn alike in every section."""

    def section(results: list[str | Path], out: Path, styles: Any = None) -> str | None:
        return (
            render(results, out, styles)
            if rows_or_none(results, f"SELECT 1 FROM ({sql}) LIMIT 1")
            else None
        )

    return section


def rows_or_none(results: list[str | Path], sql: str) -> list[tuple]:
    """The rows of a query over the stores, or none when the columns it names were never
    stored (a report section over trials that were not run)."""
    try:
        return connect(results).execute(sql).fetchall()
    except duckdb.BinderException:
        return []
