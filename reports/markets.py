"""The FMMRA paper's comparison as tables (docs/markets.md): for each agent count of the
``heterogeneous`` family, the mean over instances of each of the five mechanisms' task
cost-effectiveness, total fitness, agents' average profit, satisfaction and bidding rounds,
with the best of each column in bold, and whether the paper's three claims hold there.

    python -m reports.markets results/            # Markdown on standard output
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.views import rows_or_none, section_for

FIVE = ("fmmra", "fmmra_fitness", "mssca", "fmmra_fp", "fmmra_sp")
LABELS = {
    "fmmra": "FMMRA",
    "fmmra_fitness": "FMMRA (fitness only)",
    "mssca": "MSSCA",
    "fmmra_fp": "first-price",
    "fmmra_sp": "second-price",
}
#: (column, heading, the paper's expected best)
COLUMNS = (
    ("m_cost_effectiveness", "task cost-effectiveness", "fmmra"),
    ("m_fitness_total", "total fitness", "fmmra_fitness"),
    ("m_agent_utility_mean_winners", "avg profit (winners)", "fmmra_sp"),
    ("m_agent_utility_mean", "avg profit (all agents)", None),
    ("m_satisfaction", "satisfaction", None),
    ("m_welfare", "welfare", None),
    ("m_auction_rounds", "bidding rounds", None),
)

SQL = f"""
SELECT inst_n_agents AS agents, alg_name AS alg, count(*) AS n,
       {", ".join(f"avg({c}) AS {c}" for c, _, _ in COLUMNS)}
FROM trials
WHERE trial_status = 'done' AND inst_family = 'heterogeneous'
  AND alg_name IN ({", ".join(f"'{a}'" for a in FIVE)})
GROUP BY ALL ORDER BY agents, alg
"""


def fmmra_tables(results: list[str | Path]) -> str:
    rows = rows_or_none(results, SQL)
    by_count: dict[int, dict[str, tuple]] = {}
    for agents, alg, n, *vals in rows:
        by_count.setdefault(agents, {})[alg] = (n, *vals)
    if not by_count:
        return "No heterogeneous trials of the five FMMRA mechanisms found.\n"
    head = "| agents | mechanism | trials | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    verdicts = []
    for agents, algs in sorted(by_count.items()):
        best = {}
        for k, (_, _, claim) in enumerate(COLUMNS):
            vals = {a: v[1 + k] for a, v in algs.items() if v[1 + k] is not None}
            best[k] = max(vals, key=vals.get) if vals else None
            if claim:
                verdicts.append((agents, COLUMNS[k][1], LABELS[claim], best[k] == claim))
        for alg in FIVE:
            if alg not in algs:
                continue
            n, *vals = algs[alg]
            cells = [
                "" if v is None else (f"**{v:.2f}**" if best[k] == alg else f"{v:.2f}")
                for k, v in enumerate(vals)
            ]
            lines.append(f"| {agents} | {LABELS[alg]} | {n} | " + " | ".join(cells) + " |")
    lines += ["", "| agents | the paper's claim | holds here |", "|---|---|---|"]
    lines += [
        f"| {a} | {who} highest {what} | {'yes' if ok else 'no'} |" for a, what, who, ok in verdicts
    ]
    return "\n".join(lines) + "\n"


#: the report's FMMRA section (reports/report.py); None without those trials
section = section_for(SQL, lambda results, _out, _styles: fmmra_tables(results))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.markets", description=__doc__)
    ap.add_argument("results", nargs="+", help="result roots or run directories")
    args = ap.parse_args(argv)
    sys.stdout.write(fmmra_tables(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
