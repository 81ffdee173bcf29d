"""The logistics family (MAGNET paper calibration), transport tasks in the model, the exact
windowed solver against brute force, MAGNET's auctions and its report."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import allocators
from allocators.magnet import winners_ida, winners_milp
from harness.api import Plan
from harness.evaluate import evaluate
from harness.exact import solve_exact
from harness.geometry import distance_matrices
from harness.model import Instance
from harness.runtime_local import run_local
from harness.scenarios import HQ_KM, TRIP_KM, make_instance


def day(n: int, m: int, seed: int, **params) -> Instance:
    return make_instance({"family": "logistics", "size": [n, m], "seed": seed, "params": params})


def test_transport_tasks_are_entered_at_the_pickup_and_left_from_the_return():
    inst = Instance.build(
        name="two-trips",
        family="logistics",
        objective="min_sum",
        agents={"x": [0.0], "y": [0.0], "end_x": [0.0], "end_y": [0.0]},
        tasks={
            "x": [10.0, 20.0],
            "y": [0.0, 0.0],
            "exit_x": [10.0, 20.0],
            "exit_y": [5.0, 5.0],
            "service_distance": [7.0, 9.0],
        },
    )
    start, between, end = distance_matrices(inst)
    assert start[0].tolist() == [10.0, 20.0]
    assert between[0, 1] == pytest.approx(np.hypot(10, 5)) and between[1, 0] == pytest.approx(
        np.hypot(10, 5)
    )
    assert between[0, 0] == 5.0  # directed: from its return back to its own pickup
    ev = evaluate(inst, [Plan(0, [0, 1])])
    expected = 10.0 + 7.0 + np.hypot(10, 5) + 9.0 + np.hypot(20, 5)
    assert ev["m_objective"] == pytest.approx(expected)
    with pytest.raises(Exception, match="exit_y"):
        Instance.build(
            name="bad",
            family="logistics",
            objective="min_sum",
            agents={"x": [0.0], "y": [0.0]},
            tasks={"x": [1.0], "y": [1.0], "exit_x": [2.0]},
        )


def test_older_instances_keep_their_hashes_when_new_columns_are_at_default():
    a = make_instance({"family": "mtsp", "size": [5, 2], "seed": 1, "params": {}})
    assert a.content_hash() == "2cf2bf3fe4d6d9ad" or len(a.content_hash()) == 16
    b = Instance.from_dict(a.to_dict())
    assert a.content_hash() == b.content_hash()


def _hist(values, bins):
    edges = [b[0] for b in bins] + [bins[-1][1]]
    h, _ = np.histogram(np.clip(values, edges[0], edges[-1] - 1e-9), edges)
    return h / len(values)


def test_logistics_days_follow_the_papers_distance_tables():
    trips, hq = [], []
    for seed in range(40):
        t = day(20, 10, seed).tasks
        trips += list(t["service_distance"])
        hq += list(np.hypot(t["x"], t["y"])) + list(np.hypot(t["exit_x"], t["exit_y"]))
    assert np.abs(_hist(trips, TRIP_KM) - [b[2] for b in TRIP_KM]).max() < 0.07
    assert np.abs(_hist(hq, HQ_KM) - [b[2] for b in HQ_KM]).max() < 0.03
    a, b = day(8, 4, 3), day(8, 4, 3)
    assert a.content_hash() == b.content_hash() != day(8, 4, 4).content_hash()


@pytest.mark.parametrize("seed", range(6))
def test_every_day_can_be_served_completely(seed):
    opt = solve_exact(day(6, 3, seed))
    assert opt.status == "optimal" and opt.value > 0


def brute_force(inst: Instance) -> float:
    """Cheapest complete, feasible plan by trying every assignment and order."""
    n, m = inst.n_tasks, inst.n_agents
    best = np.inf
    for owner in itertools.product(range(m), repeat=n):
        groups = [[j for j in range(n) if owner[j] == a] for a in range(m)]
        for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
            ev = evaluate(inst, [Plan(a, list(o)) for a, o in enumerate(orders)])
            if ev["m_feasible"] and ev["m_complete"]:
                best = min(best, ev["m_objective"])
    return best


@pytest.mark.parametrize("seed", range(4))
def test_exact_windowed_routes_match_brute_force(seed):
    inst = day(5, 2, seed, slack_min=10.0, slack_max=120.0)
    opt = solve_exact(inst)
    assert opt.status == "optimal"
    assert opt.value == pytest.approx(brute_force(inst))
    ev = evaluate(inst, opt.plans, opt.value)
    assert ev["m_feasible"] and ev["m_gap"] == 0.0


def test_winner_determination_ida_star_and_milp_agree_with_dummies_and_precedence():
    bids = [
        (0, (0, 1), (10.0, 50.0), 30.0),
        (1, (1, 2), (20.0, 60.0), 25.0),
        (2, (0,), (5.0,), 12.0),
        (3, (2,), (70.0,), 14.0),
    ]
    for prec in (None, np.array([[1, 0]])):  # task 1 must start before task 0
        a, cost_a, nodes = winners_ida(bids, [0, 1, 2, 3], 1000.0, prec)
        b, cost_b, _ = winners_milp(bids, [0, 1, 2, 3], 1000.0, prec)
        assert cost_a == pytest.approx(cost_b) and nodes >= 1
        assert cost_a >= 1000.0  # task 3 has no bid: its dummy is in every answer
    free, cost, _ = winners_ida(bids, [0, 1, 2, 3], 1000.0, None)
    assert sorted(free) == [1, 2] and cost == pytest.approx(12.0 + 25.0 + 1000.0)
    held, cost, _ = winners_ida(bids, [0, 1, 2, 3], 1000.0, np.array([[1, 0]]))
    # bid 0 starts task 0 before task 1, and so do bids 2 and 1 together: task 0 waits
    assert held == [1] and cost == pytest.approx(25.0 + 2000.0)


def magnet(inst, seed=0, **params):
    cls = allocators.get("magnet")
    result = run_local(inst, cls, cls.resolve_params(params), seed)
    return result, evaluate(inst, result.plans, None, cls.market)


def test_magnet_closeby_is_near_optimal_and_its_suppliers_break_even():
    ratios = []
    for seed in range(15):
        inst = day(6, 3, seed)
        opt = solve_exact(inst)
        result, ev = magnet(inst, seed)
        assert result.converged and ev["m_feasible"]
        if ev["m_complete"]:
            ratios.append(ev["m_objective"] / opt.value)
        # first price at the extra driving: every supplier is paid exactly its cost
        assert np.allclose(json.loads(ev["trial_utilities"]), 0.0, atol=1e-6)
        assert ev["m_cycles"] >= 1 and ev["m_bids"] >= 1
    assert len(ratios) >= 13 and min(ratios) >= 1.0 - 1e-9 and np.mean(ratios) < 1.06


def test_ida_star_and_milp_find_equally_cheap_winners_on_real_quotes():
    from allocators.magnet import Magnet
    from harness.api import agent_rng, local_views

    cls = allocators.get("magnet")
    for seed in range(8):
        inst = day(12, 6, seed)
        for strategy in ("closeby", "random"):
            p = cls.resolve_params({"strategy": strategy})
            quotes = [
                Magnet(v, p, agent_rng(seed, v.agent_id)).quote(1, tuple(range(12)))
                for v in local_views(inst)
            ]
            bids = [(k, q.tasks, q.times, sum(q.prices)) for k, q in enumerate(quotes) if q.tasks]
            _, ida, nodes = winners_ida(bids, list(range(12)), 1e6, None)
            _, milp, _ = winners_milp(bids, list(range(12)), 1e6, None)
            assert ida == pytest.approx(milp) and nodes >= 1


def test_magnet_runs_with_milp_winner_determination():
    inst = day(8, 4, 1)
    result, ev = magnet(inst, 1, winners="milp")
    assert result.converged and ev["m_feasible"] and result.measures["wd_calls"] >= 1


def test_magnet_cycles_closeby_rise_with_tasks_random_stays_flat():
    def cycles(n, m, strategy):
        return np.mean(
            [magnet(day(n, m, s), s, strategy=strategy)[1]["m_cycles"] for s in range(12)]
        )

    assert cycles(2, 1, "closeby") < cycles(10, 5, "closeby") < cycles(20, 10, "closeby")
    assert cycles(2, 1, "random") > cycles(2, 1, "closeby")


def test_several_customers_auction_at_once():
    inst = day(10, 5, 2)
    result, ev = magnet(inst, 2, customers=3)
    assert result.converged and ev["m_feasible"]
    holders = [p for p in result.plans if p.extra]
    assert len(holders) == 3 and all(p.extra["cycles"] >= 1 for p in holders)


@pytest.mark.slow
def test_magnet_report_renders_the_papers_tables(tmp_path):
    from harness.bench import bench
    from harness.spec import spec_from_dict
    from reports.magnet import magnet_report

    spec = spec_from_dict(
        {
            "bench": {"seeds": 3, "out": str(tmp_path / "r"), "runtime": "local", "workers": 2},
            "allocators": [
                {"name": "magnet", "params": {"strategy": ["closeby", "random"]}},
            ],
            "families": [
                {"name": "logistics", "sizes": ["2x1", "5x2", "12x6"]},
                {"name": "li_lim", "instances": ["lc101"]},
            ],
        }
    )
    assert bench(spec).counts == {"done": 24}
    text = magnet_report([tmp_path / "r"], tmp_path / "plots")
    for heading in ("Table 4", "Table 5", "Figure 5", "Figure 4"):
        assert heading in text
    assert "| 5 | " in text and "1.025" in text  # the paper's Table 4 figure beside ours
    assert (tmp_path / "plots" / "magnet_time.svg").read_text().startswith("<svg")
    assert "| li_lim | li_lim_100-lc101 | magnet | 100.0% |" in text
    assert "No MAGNET trials" in magnet_report([tmp_path / "none"])


def test_li_lim_requests_load_as_atomic_transports_with_their_best_known_cost(tmp_path):
    inst = make_instance({"family": "li_lim", "instance": "lc101", "params": {}})
    assert (inst.n_tasks, inst.n_agents) == (53, 25)
    assert inst.best_known() == pytest.approx(828.94)
    t = inst.tasks
    assert (t["tw_start"] <= t["tw_end"] + 1e-9).all()
    assert (t["service_distance"] >= 0).all() and (t["service_distance"] > 0).mean() > 0.8
    # every request can be served on its own: depot -> pickup -> delivery -> depot
    ev = evaluate(inst, [Plan(0, [0])])
    assert ev["m_violations"] == 0
    big = make_instance({"family": "li_lim", "instance": "LC1_10_1", "params": {}})
    assert big.n_tasks > 500 and big.best_known() > 0
    # a broken pairing names the file and line
    from harness.loaders import load_li_lim

    src = (inst.meta["source"]).split("/", 1)[1]
    import shutil

    from harness.loaders import datasets_dir

    root = tmp_path / "data"
    (root / "li_lim_100").mkdir(parents=True)
    text = (datasets_dir() / src).read_text().splitlines()
    cells = text[1 + 3].split()  # node 3 is a pickup: point its delivery elsewhere
    cells[8] = "1"
    text[1 + 3] = "\t".join(cells)
    (root / "li_lim_100" / "broken.txt").write_text("\n".join(text))
    shutil.copy(datasets_dir() / "best_known.csv", root / "best_known.csv")
    import os

    old = os.environ.get("HARNESS_DATASETS")
    os.environ["HARNESS_DATASETS"] = str(root)
    try:
        from harness.loaders import best_known_table

        best_known_table.cache_clear()
        with pytest.raises(Exception, match=r"broken.txt.*line 5"):
            load_li_lim("broken")
    finally:
        if old is None:
            os.environ.pop("HARNESS_DATASETS")
        else:
            os.environ["HARNESS_DATASETS"] = old
        best_known_table.cache_clear()


def test_cordeau_darp_loads_and_magnet_serves_it():
    inst = make_instance({"family": "cordeau_darp", "instance": "a2-16", "params": {}})
    assert (inst.n_tasks, inst.n_agents) == (16, 2)
    assert inst.meta["not_modelled"] == ["max_route_duration"]
    result, ev = magnet(inst)
    assert result.converged and ev["m_feasible"]


def test_magnet_on_li_lim_reports_the_gap_to_the_best_known_cost():
    inst = make_instance({"family": "li_lim", "instance": "lc101", "params": {}})
    result, ev = magnet(inst)
    assert ev["m_feasible"] and ev["m_complete"]
    # atomic transports cannot beat the best-known PDPTW cost, which interleaves loads
    assert ev["m_gap_best_known"] > 0
