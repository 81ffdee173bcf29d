"""The report's interactive views (reports/figures.py, reports/ranking.py): sizes in numeric
order, series that would hide each other, the distribution and gap-against-messages plots, and
the ranking across families."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.bench import bench
from harness.spec import spec_from_dict
from reports import figures, ranking
from reports import report as report_mod

SIZES = ["20x5", "8x4", "6x2"]  # out of order, and "20x5" < "8x4" as text


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("res")
    spec = spec_from_dict(
        {
            "bench": {"seeds": 3, "out": str(out), "runtime": "local", "workers": 2},
            "allocators": [{"name": a} for a in ("cbba", "sga", "greedy_nn", "hungarian")],
            "families": [
                {"name": "tdr", "sizes": SIZES},
                {"name": "assignment", "sizes": ["6x6"]},
            ],
        },
        "report views test",
    )
    bench(spec, run_id="v1")
    return out


@pytest.fixture(scope="module")
def page(store) -> report_mod.Page:
    return report_mod.build([store])


def test_sizes_are_labelled_tasks_x_agents_in_numeric_order(page):
    fig = page.figures["tdr_objective.svg"]
    assert fig["layout"]["xaxis"]["ticktext"] == ["6x2", "8x4", "20x5"]
    assert fig["layout"]["xaxis"]["tickvals"] == [6.0, 8.0, 20.0]
    svg = page.plots["tdr_objective.svg"]
    assert svg.index(">6x2<") < svg.index(">20x5<")
    box = page.figures["tdr_gap_distribution.svg"]
    assert box["layout"]["xaxis"]["categoryarray"] == ["6x2", "8x4"]  # 20x5 has no optimum
    md = page.to_markdown()
    table = [line.split(" | ")[2] for line in md.splitlines() if line.startswith("| cbba | local")]
    assert table == ["6x6", "6x2", "8x4", "20x5"]  # assignment, then tdr


def test_sizes_that_share_a_task_count_are_spread_evenly():
    pos, ticks, numeric = report_mod.size_axis([("20x4", 20, 4), ("20x5", 20, 5), ("40x5", 40, 5)])
    assert not numeric
    assert [t for _x, t in ticks] == ["20x4", "20x5", "40x5"]
    assert len(set(pos.values())) == 3
    assert report_mod.size_label("C101", 100, 25) == "C101 (100x25)"


def test_identical_series_say_so_in_the_legend_of_both_renderings():
    series = {"cbba": [(1, 2.0), (2, 3.0)], "sga": [(2, 3.0), (1, 2.0)], "greedy": [(1, 1.0)]}
    fig = figures.line(series, "t", "x", "y")
    names = [t["name"] for t in fig.plotly["data"]]
    assert names == ["cbba", "sga (= cbba)", "greedy"]
    assert ">sga (= cbba)</text>" in fig.svg
    assert fig.plotly["layout"]["legend"]["itemclick"] == "toggle"  # click hides a series


def test_the_gap_against_messages_scatter_has_one_point_per_graded_trial(store, page):
    from reports.views import connect

    con = connect([store])
    expected = {
        alg: n
        for alg, n in con.execute(
            "SELECT alg_name, count(*) FROM trials WHERE inst_family = 'tdr' "
            "AND trial_status = 'done' AND m_gap IS NOT NULL GROUP BY alg_name"
        ).fetchall()
    }
    fig = page.figures["tdr_gap_vs_messages.svg"]
    points = {t["name"]: len(t["x"]) for t in fig["data"] if t.get("showlegend", True)}
    assert points == expected
    assert fig["layout"]["xaxis"]["title"]["text"] == "messages"
    hover = next(t for t in fig["data"] if t["name"] == "cbba")["text"][0]
    assert "instance" in hover and "msgs" in hover


def test_the_distribution_holds_every_trial_not_only_the_mean(store, page):
    from reports.views import connect

    con = connect([store])
    gaps = sorted(
        100 * g
        for (g,) in con.execute(
            "SELECT m_gap FROM trials WHERE inst_family = 'tdr' AND alg_name = 'cbba' "
            "AND trial_status = 'done' AND m_gap IS NOT NULL"
        ).fetchall()
    )
    fig = page.figures["tdr_gap_distribution.svg"]
    trace = next(t for t in fig["data"] if t["name"] == "cbba")
    assert trace["type"] == "box" and trace["boxpoints"] == "all"
    assert sorted(trace["y"]) == pytest.approx(gaps)


def test_block_ranks_share_ties_and_put_failures_last():
    got = ranking.block_ranks(
        [("a", 1.0), ("b", 1.0 + 1e-12), ("c", None), ("d", 0.5), ("e", None)]
    )
    assert got == {"d": 1.0, "a": 2.5, "b": 2.5, "c": 4.5, "e": 4.5}


def _row(family, label, inst, value, status="done", objective="min_sum", complete=True):
    return {
        "family": family,
        "label": label,
        "status": status,
        "objective": objective,
        "m_objective": value,
        "feasible": True,
        "complete": complete,
        "inst_hash": inst,
        "rep": 0,
    }


def test_ranking_across_families_and_friedman_match_the_textbook():
    scores = {  # lower is better (min_sum): a always best, c always worst, no ties
        "i1": {"a": 1.0, "b": 2.0, "c": 3.0},
        "i2": {"a": 1.0, "b": 3.0, "c": 2.0},
        "i3": {"a": 1.0, "b": 2.0, "c": 3.0},
        "i4": {"a": 2.0, "b": 1.0, "c": 3.0},
    }
    rows = [_row("f", lab, inst, v) for inst, by in scores.items() for lab, v in by.items()]
    # a second family, maximised, where b wins and a incomplete plan of a... still counts (max)
    rows += [
        _row("g", "a", "j1", 5.0, objective="max_tdr"),
        _row("g", "b", "j1", 9.0, objective="max_tdr"),
    ]
    # a skip is no competitor; an error ranks last
    rows += [_row("g", "c", "j1", None, status="skip", objective="max_tdr")]
    rows += [_row("g", "d", "j1", None, status="error", objective="max_tdr")]
    got = ranking.rank(rows)
    f, g = got.families
    assert f.mean_rank == {"a": 1.25, "b": 2.0, "c": 2.75}
    assert f.wins == {"a": 3, "b": 1, "c": 0}
    from scipy import stats

    columns = [[scores[i][lab] for i in sorted(scores)] for lab in ("a", "b", "c")]
    chi2, p = stats.friedmanchisquare(*columns)
    assert f.friedman[0] == pytest.approx(chi2) and f.friedman[1] == pytest.approx(p)
    # Nemenyi: q_0.05 for k = 3 is 2.343 (Demšar 2006, Table 5a), CD = q sqrt(k(k+1)/6N)
    assert f.cd == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)), rel=1e-3)
    assert g.mean_rank == {"b": 1.0, "a": 2.0, "d": 3.0}
    assert "c" not in g.mean_rank
    overall = dict((lab, v) for lab, v, _n in got.overall())
    assert overall["a"] == pytest.approx((0.125 + 0.5) / 2)
    assert overall["d"] == 1.0


def test_an_incomplete_cost_ranks_with_the_failures():
    rows = [
        _row("f", "a", "i", 10.0),
        _row("f", "b", "i", 5.0, complete=False),  # cheaper because it left tasks undone
        _row("f", "c", "i", 20.0),
    ]
    (f,) = ranking.rank(rows).families
    assert f.mean_rank == {"a": 1.0, "c": 2.0, "b": 3.0}


def test_the_report_has_a_ranking_section(page):
    md = page.to_markdown()
    assert "# Ranking across families" in md
    section = md.split("# Ranking across families")[1]
    assert "hungarian" in section and "Friedman" in section
    assert "ranking_overall.svg" in page.figures
