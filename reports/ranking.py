"""Allocators ranked across families, as Demšar (2006, "Statistical comparisons of classifiers
over multiple data sets", JMLR 7) ranks classifiers across data sets.

A *block* is one instance of a family in one repetition (``trial_rep``): every allocator that
ran on it is one competitor. Within a block the allocators are ranked by the objective in its
own direction (``min_*`` lower is better, ``max_*`` higher), which ranks them as the gap to the
optimum does, and also where the family has no optimum. A plan the evaluator gives no gap
(infeasible, or incomplete where the objective is a cost) ranks below every plan it grades,
with the trials that did not finish (``error``, ``timeout``, ``interrupted``); a ``skip``
(the allocator declined the instance) is no competitor. Ties share the mean of their ranks;
values equal to nine significant digits are ties, so no ranking turns on a last bit.

Per family: each allocator's mean rank, its wins (blocks where it ranks first, ties included)
and, over the blocks where every one of the family's allocators ran (at least three of them
and two blocks), Friedman's test and the Nemenyi critical difference at 5%: two allocators
whose mean ranks differ by more than it differ significantly. Across families, ranks are
normalised to [0, 1] within each block ((rank - 1) / (competitors - 1), 0 the best), so a
family with more competitors weighs no more than another; the overall score is the mean over
the families an allocator ran in.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

FAILED = ("error", "timeout", "interrupted")


@dataclass
class FamilyRanks:
    family: str
    measure: str  # what was ranked: "objective `min_sum` (lower is better)"
    blocks: int
    mean_rank: dict[str, float]
    mean_norm: dict[str, float]
    wins: dict[str, float]
    ran: dict[str, int]  # blocks each allocator took part in
    friedman: tuple[float, float, int, int] | None = None  # (chi2, p, k, complete blocks)
    cd: float | None = None  # Nemenyi critical difference at 5%, over the complete blocks
    note: str = ""


@dataclass
class Ranking:
    families: list[FamilyRanks] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # families with nothing to rank, and why

    def overall(self) -> list[tuple[str, float, int]]:
        """(label, mean normalised rank over its families, families), best first."""
        per: dict[str, list[float]] = {}
        for fam in self.families:
            for label, v in fam.mean_norm.items():
                per.setdefault(label, []).append(v)
        out = [(lab, sum(vs) / len(vs), len(vs)) for lab, vs in per.items()]
        return sorted(out, key=lambda t: (round(t[1], 9), -t[2], t[0]))


def _direction(objective: str) -> int | None:
    if objective.startswith("min"):
        return 1
    if objective.startswith("max"):
        return -1
    return None


def _key(v: float) -> float:
    return float(f"{v:.9g}")


def block_ranks(entries: list[tuple[str, float | None]]) -> dict[str, float]:
    """Ranks (1 = best, ties share their mean) of (label, score) pairs, lower scores first;
    a score of None (did not finish) ranks after every number."""
    keyed = sorted((math.inf if v is None else _key(v), label) for label, v in entries)
    ranks: dict[str, float] = {}
    done = 0
    for _score, group in itertools.groupby(keyed, key=lambda e: e[0]):
        labels = [label for _s, label in group]
        for label in labels:
            ranks[label] = done + (len(labels) + 1) / 2
        done += len(labels)
    return ranks


def rank(rows: list[dict[str, Any]]) -> Ranking:
    """The ranking of the report's rows (each with ``family``, ``label``, ``status``,
    ``objective``, ``m_objective``, ``feasible``, ``complete``, ``inst_hash``, ``rep``)."""
    out = Ranking()
    for family in sorted({r["family"] for r in rows}):
        fam = [r for r in rows if r["family"] == family]
        objective = next((r["objective"] for r in fam if r["objective"]), "") or ""
        sign = _direction(objective)
        if sign is None:
            out.skipped.append(f"{family}: objective `{objective}` has no direction to rank by")
            continue
        measure = f"objective `{objective}` ({'lower' if sign > 0 else 'higher'} is better)"
        blocks: dict[tuple[Any, Any], list[tuple[str, float | None]]] = {}
        for r in fam:
            if r["status"] == "done":
                v = r.get("m_objective")
                graded = r.get("feasible") is not False and (
                    sign < 0 or r.get("complete") is not False
                )
                score = sign * v if graded and v is not None and math.isfinite(v) else None
            elif r["status"] in FAILED:
                score = None
            else:
                continue
            blocks.setdefault((r.get("inst_hash"), r.get("rep")), []).append((r["label"], score))
        ranked = [block_ranks(b) for b in blocks.values() if len({lab for lab, _ in b}) > 1]
        if not ranked:
            out.skipped.append(f"{family}: no instance with two allocators or more")
            continue
        labels = sorted({lab for br in ranked for lab in br})
        sums = dict.fromkeys(labels, 0.0)
        norms = dict.fromkeys(labels, 0.0)
        wins = dict.fromkeys(labels, 0.0)
        ran = dict.fromkeys(labels, 0)
        for br in ranked:
            k = len(br)
            best = min(br.values())
            for lab, rk in br.items():
                sums[lab] += rk
                norms[lab] += (rk - 1) / (k - 1)
                ran[lab] += 1
                wins[lab] += rk == best
        fr = FamilyRanks(
            family,
            measure,
            len(ranked),
            {lab: sums[lab] / ran[lab] for lab in labels},
            {lab: norms[lab] / ran[lab] for lab in labels},
            wins,
            ran,
        )
        complete = [br for br in ranked if set(br) == set(labels)]
        _friedman(fr, complete, labels)
        out.families.append(fr)
    return out


def _friedman(fr: FamilyRanks, complete: list[dict[str, float]], labels: list[str]) -> None:
    k, n = len(labels), len(complete)
    if k < 3 or n < 2:
        fr.note = f"no Friedman test: {k} allocators on {n} instances where all ran (needs 3 and 2)"
        return
    from scipy import stats

    r = [sum(br[lab] for br in complete) / n for lab in labels]
    # Friedman's statistic on ranks with ties averaged (Demšar 2006, eq. for chi2_F)
    chi2 = 12 * n / (k * (k + 1)) * (sum(x * x for x in r) - k * (k + 1) ** 2 / 4)
    p = float(stats.chi2.sf(chi2, k - 1))
    fr.friedman = (chi2, p, k, n)
    q = float(stats.studentized_range.ppf(0.95, k, math.inf)) / math.sqrt(2)
    fr.cd = q * math.sqrt(k * (k + 1) / (6 * n))


def markdown(ranking: Ranking) -> str:
    """The ranking as Markdown: the overall table, then one line per family."""
    if not ranking.families:
        return "Nothing to rank: " + ("; ".join(ranking.skipped) or "no families") + "."
    fams = ranking.families
    head = ["allocator", "overall (0 best, 1 worst)", "families"] + [
        f"{f.family} mean rank (of {len(f.mean_rank)})" for f in fams
    ]
    lines = [
        "Each instance (in each repetition) ranks the allocators that ran on it by the "
        "family's objective; a trial that did not finish, or a plan with no gap (infeasible, "
        "or incomplete on a cost), ranks last; ties share their ranks. "
        "The overall score is the mean over families of each allocator's rank normalised to "
        "[0, 1] within its instances. Demšar (2006) is the method; reports/ranking.py says "
        "how ties, failures and skips count.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for label, score, n in ranking.overall():
        cells = [label, f"{score:.3f}", str(n)]
        for f in fams:
            if label in f.mean_rank:
                cells.append(f"{f.mean_rank[label]:.2f}, first in {f.wins[label]:g}/{f.ran[label]}")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for f in fams:
        text = f"- **{f.family}**: {f.blocks} instances, by {f.measure}; "
        if f.friedman is not None:
            chi2, p, k, n = f.friedman
            text += (
                f"Friedman χ² = {chi2:.2f} over {n} instances where all {k} ran, "
                f"p = {p:.3g}; Nemenyi critical difference {f.cd:.2f} ranks"
            )
        else:
            text += f.note
        lines.append(text + ".")
    for s in ranking.skipped:
        lines.append(f"- not ranked: {s}.")
    return "\n".join(lines)
