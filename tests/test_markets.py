"""Market mechanisms: feasibility, payments, exact winner determination and VCG against the
PuLP welfare optimum, the truthfulness and stability checks, AHP, and the FMMRA paper's
qualitative results."""

from __future__ import annotations

import json

import numpy as np
import pytest

import allocators
from harness.economics import RANDOM_INDEX, ahp_sample, ahp_weights, fitness_matrix
from harness.errors import SpecError
from harness.evaluate import evaluate
from harness.exact import solve_exact
from harness.market_checks import FACTORS, stability, truthfulness
from harness.model import Instance
from harness.runtime_local import run_local
from harness.scenarios import make_instance

MARKETS = ["first_price", "vickrey", "fmmra", "fmmra_fitness", "mssca", "fmmra_fp", "fmmra_sp"]
FMMRA_FIVE = ["fmmra", "fmmra_fitness", "mssca", "fmmra_fp", "fmmra_sp"]


def hetero(n_tasks: int, n_agents: int, seed: int, **params) -> Instance:
    return make_instance(
        {"family": "heterogeneous", "size": [n_tasks, n_agents], "seed": seed, "params": params}
    )


def run(inst: Instance, name: str, **params):
    cls = allocators.get(name)
    p = cls.resolve_params(params)
    result = run_local(inst, cls, p, 0)
    return cls, p, result, evaluate(inst, result.plans, None, cls.market)


@pytest.mark.parametrize("name", MARKETS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_task_markets_are_feasible_priced_and_rational(name, seed):
    inst = hetero(4, 12, seed)
    cls, _, result, ev = run(inst, name)
    assert result.converged
    assert ev["m_feasible"], ev
    assert ev["m_unpriced_tasks"] == 0
    assert ev["m_tasks_assigned"] > 0
    claims = np.zeros(inst.n_tasks, dtype=int)
    for p in result.plans:
        assert len(p.tasks) <= 1 and len(p.prices or []) == len(p.tasks)
        claims[p.tasks] += 1
    assert (claims <= inst.tasks["team"]).all()
    # bidders never bid above their valuation and pay at most their bid: no loss
    assert ev["m_ir_violations"] == 0
    assert ev["m_agent_utility_min"] >= -1e-9
    # welfare splits into agents' utility and holders' revenue
    assert ev["m_welfare"] == pytest.approx(ev["m_agent_utility"] + ev["m_holder_utility"])


def test_vickrey_and_first_price_differ_only_in_price():
    inst = hetero(4, 15, 3)
    _, _, fp, ev_fp = run(inst, "first_price")
    _, _, sp, ev_sp = run(inst, "vickrey")
    assert [p.tasks for p in fp.plans] == [p.tasks for p in sp.plans]
    assert ev_sp["m_payments"] < ev_fp["m_payments"]
    assert ev_fp["m_agent_utility"] == pytest.approx(0.0, abs=1e-9)  # truthful first price


@pytest.mark.parametrize(
    ("family", "size", "params"),
    [
        ("mtsp", [6, 2], {"bundle_size": 0}),
        ("mtsp", [6, 3], {"bundle_size": 0}),
        ("heterogeneous", [4, 8], {}),
        ("heterogeneous", [3, 10], {}),
    ],
)
@pytest.mark.parametrize("payment", ["vcg", "bid"])
def test_exact_winner_determination_and_vcg_reach_the_pulp_welfare_optimum(
    family, size, params, payment
):
    inst = make_instance({"family": family, "size": size, "seed": 3, "params": {}})
    opt = solve_exact(inst)
    assert opt.status == "optimal"
    cls = allocators.get("combinatorial")
    p = cls.resolve_params({**params, "winners": "exact", "payment": payment})
    result = run_local(inst, cls, p, 0)
    ev = evaluate(inst, result.plans, opt.value, cls.market)
    assert ev["m_feasible"] and ev["m_gap"] == pytest.approx(0.0, abs=1e-9)
    assert ev["m_ir_violations"] == 0
    if payment == "vcg":  # winners are paid at least their bids
        for plan in result.plans:
            if plan.tasks:
                assert sum(plan.prices) >= sum(plan.bids) - 1e-9


def test_greedy_winner_determination_is_feasible_and_no_better_than_exact():
    inst = make_instance({"family": "heterogeneous", "size": [4, 12], "seed": 5, "params": {}})
    opt = solve_exact(inst)
    _, _, _, ev = run(inst, "combinatorial", winners="greedy", payment="bid")
    assert ev["m_feasible"]
    assert ev["m_objective"] <= opt.value + 1e-9


def single_item(values: list[float]) -> Instance:
    """One task at the origin worth 100; agents on a line, so agent i's valuation is
    100 - fixed_cost[i] (no travel cost)."""
    m = len(values)
    return Instance.build(
        name="single-item",
        family="heterogeneous",
        objective="max_welfare",
        agents={
            "x": [0.0] * m,
            "y": [0.0] * m,
            "max_tasks": 1,
            "fixed_cost": [100.0 - v for v in values],
            "cost_per_distance": 0.0,
        },
        tasks={"x": [0.0], "y": [0.0], "value": [100.0]},
    )


@pytest.mark.parametrize("values", [[30.0, 10.0, 20.0], [50.0, 49.0, 5.0, 12.0], [8.0, 40.0]])
def test_truthfulness_check_vickrey_zero_first_price_positive(values):
    inst = single_item(values)
    for name, expect_gain in (("vickrey", False), ("first_price", True)):
        cls, p, result, _ = run(inst, name)
        check = truthfulness(inst, cls, p, 0, result.plans)
        assert check["m_truth_runs"] == len(values) * len(FACTORS)
        if expect_gain:
            # the winner bids its value and keeps nothing; shading keeps it the winner
            assert check["m_truth_gain"] > 0
            assert check["m_truth_agent"] == int(np.argmax(values))
            assert check["m_truth_factor"] < 1
        else:
            assert check["m_truth_gain"] == 0.0


@pytest.mark.parametrize("seed", [1, 2])
def test_truthfulness_check_vcg_zero_pay_as_bid_positive(seed):
    inst = make_instance({"family": "mtsp", "size": [5, 3], "seed": seed, "params": {}})
    cls, p, result, _ = run(inst, "combinatorial", bundle_size=0, payment="vcg")
    assert truthfulness(inst, cls, p, 0, result.plans)["m_truth_gain"] == 0.0
    cls, p, result, _ = run(inst, "combinatorial", bundle_size=0, payment="bid")
    assert truthfulness(inst, cls, p, 0, result.plans)["m_truth_gain"] > 0.0


def test_stability_check_flags_a_profitable_switch():
    # two tasks worth 100 at the origin, one agent (valuation 90 on each) holding task 0 at
    # price 80 while task 1 is free: switching to task 1 (no price) gains 80
    inst = Instance.build(
        name="switch",
        family="heterogeneous",
        objective="max_welfare",
        agents={"x": [0.0], "y": [0.0], "max_tasks": 1, "fixed_cost": [10.0]},
        tasks={"x": [0.0, 0.0], "y": [0.0, 0.0], "value": [100.0, 100.0]},
    )
    from harness.api import Plan

    held = [Plan(0, [0], None, [80.0], [80.0])]
    out = stability(inst, held, "forward")
    assert not out["m_stable"] and out["m_stability_gain"] == pytest.approx(80.0)
    cheap = [Plan(0, [0], None, [0.0], [0.0])]
    assert stability(inst, cheap, "forward")["m_stable"]


def test_ahp_weights_of_a_consistent_matrix_and_the_acceptance_rule():
    w = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    got, cr = ahp_weights(w[:, None] / w[None, :])
    assert np.allclose(got, w) and abs(cr) < 1e-9
    assert RANDOM_INDEX[4] == 1.12
    rng = np.random.default_rng(0)
    for _ in range(20):
        weights, cr, tries = ahp_sample(rng, 5)
        assert cr < 0.1 and tries >= 1 and weights.sum() == pytest.approx(1.0)
    inst = hetero(4, 10, 7)
    assert all(cr < 0.1 for cr in inst.meta["ahp_cr"])
    fit = fitness_matrix(inst)
    assert fit.shape == (10, 4) and (fit >= 1.0 - 1e-9).all() and (fit <= 10.0 + 1e-9).all()


def test_heterogeneous_family_is_seeded_and_validated():
    a, b = hetero(4, 10, 3), hetero(4, 10, 3)
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != hetero(4, 10, 4).content_hash()
    with pytest.raises(SpecError, match="req_max"):
        hetero(4, 10, 0, req_max=0.9)
    with pytest.raises(SpecError, match="team_max"):
        hetero(4, 10, 0, team_min=3, team_max=2)
    with pytest.raises(SpecError, match=r"params\.markup"):
        allocators.get("fmmra").resolve_params({"markup": -0.5}, "spec.toml", "params")


def test_fmmra_reproduces_the_papers_qualitative_results():
    """At 29 agents and 4 tasks, over 20 instances: FMMRA has the highest task
    cost-effectiveness of the five, fitness-only matching the highest total fitness, and the
    second-price auction the highest average profit of the winning agents."""
    sums: dict[str, np.ndarray] = {n: np.zeros(3) for n in FMMRA_FIVE}
    for seed in range(20):
        inst = hetero(4, 29, seed)
        for name in FMMRA_FIVE:
            _, _, _, ev = run(inst, name)
            assert ev["m_feasible"]
            sums[name] += [
                ev["m_cost_effectiveness"],
                ev["m_fitness_total"],
                ev["m_agent_utility_mean_winners"],
            ]
    best = {k: max(FMMRA_FIVE, key=lambda n, k=k: sums[n][k]) for k in range(3)}
    assert best == {0: "fmmra", 1: "fmmra_fitness", 2: "fmmra_sp"}, sums


def test_fmmra_dynamic_markup_raises_bids_over_rounds():
    inst = hetero(4, 29, 1)
    _, _, dyn, ev_dyn = run(inst, "mssca")
    _, _, fixed, ev_fixed = run(inst, "fmmra_fp")
    assert ev_dyn["m_auction_rounds"] >= 2
    # with the markup, winners paid more of their expected profit than without it
    assert ev_dyn["m_agent_utility_mean_winners"] < ev_fixed["m_agent_utility_mean_winners"]
    assert json.loads(ev_dyn["trial_utilities"]) != json.loads(ev_fixed["trial_utilities"])


def market_spec(out, **settings):
    from harness.spec import spec_from_dict

    return spec_from_dict(
        {
            "bench": {
                "seeds": 2,
                "out": str(out),
                "runtime": "local",
                "workers": 2,
                "time_limit": 60.0,
                **settings,
            },
            "allocators": [
                {"name": "fmmra"},
                {"name": "vickrey"},
                {"name": "combinatorial", "params": {"payment": ["vcg", "bid"]}},
            ],
            "families": [{"name": "heterogeneous", "sizes": ["3x6", "4x20"]}],
        }
    )


@pytest.mark.slow
def test_bench_stores_market_economics_and_checks_and_reproduces_them(tmp_path):
    from harness.bench import bench
    from harness.store import RunStore
    from reports.views import connect

    result = bench(market_spec(tmp_path / "a"))
    assert result.counts == {"done": 16}
    con = connect([tmp_path / "a"])
    rows = con.execute(
        """SELECT alg_name, inst_n_agents, m_gap, m_payments, m_welfare, m_truth_gain,
                  m_stable, m_cost_effectiveness, m_auction_rounds
           FROM trials ORDER BY trial_key"""
    ).fetchall()
    assert len(rows) == 16
    for alg, agents, gap, payments, welfare, truth, stable, ce, rounds in rows:
        assert payments is not None and welfare is not None and ce is not None
        assert rounds >= 1
        # the checks ran on the 3x6 instances only (market_checks = 64 pairs)
        assert (truth is None) == (agents == 20), (alg, agents)
        assert (stable is None) == (agents == 20)
        if alg == "combinatorial" and agents == 6:
            assert gap == pytest.approx(0.0, abs=1e-9)  # exact winner determination
    vcg_truth = con.execute(
        """SELECT max(m_truth_gain) FROM trials
           WHERE alg_name = 'combinatorial' AND alg_params LIKE '%vcg%' AND inst_n_agents = 6"""
    ).fetchall()[0][0]
    assert vcg_truth == 0.0
    again = bench(market_spec(tmp_path / "b", workers=1))
    keep = ("trial_key", "trial_plans", "m_payments", "trial_utilities", "m_truth_gain")

    def pick(store, run_id):
        return sorted(tuple(r.get(k) for k in keep) for r in RunStore(store, run_id).rows())

    assert pick(tmp_path / "a", result.run_id) == pick(tmp_path / "b", again.run_id)


def test_fmmra_report_table_holds_every_mechanism_and_the_claims(tmp_path):
    from harness.bench import bench
    from harness.spec import spec_from_dict
    from reports.markets import LABELS, fmmra_tables

    spec = spec_from_dict(
        {
            "bench": {"seeds": 2, "out": str(tmp_path), "runtime": "local", "workers": 1},
            "allocators": [{"name": n} for n in FMMRA_FIVE],
            "families": [{"name": "heterogeneous", "sizes": ["4x10", "4x12"]}],
        }
    )
    assert bench(spec).counts == {"done": 20}
    text = fmmra_tables([tmp_path])
    for agents in (10, 12):
        for name in FMMRA_FIVE:
            assert f"| {agents} | {LABELS[name]} | 2 |" in text
    assert text.count("highest task cost-effectiveness |") == 2
    assert "No heterogeneous trials" in fmmra_tables([tmp_path / "nothing"])


@pytest.mark.parametrize("seed", [1, 4])
def test_english_auction_is_within_its_increment_of_the_welfare_optimum(seed):
    inst = hetero(4, 12, seed)
    opt = solve_exact(inst)
    _, p, result, ev = run(inst, "english")
    assert ev["m_feasible"] and ev["m_ir_violations"] == 0
    served = sum(len(plan.tasks) for plan in result.plans)
    assert ev["m_objective"] >= opt.value - served * p["increment"] - 1e-9


def test_dutch_auction_sells_at_falling_prices_and_is_not_truthful():
    inst = single_item([30.0, 10.0, 20.0])
    cls, p, result, ev = run(inst, "dutch", decrement=0.01)
    winner = next(plan for plan in result.plans if plan.tasks)
    assert winner.agent == 0 and ev["m_ir_violations"] == 0
    assert winner.prices[0] <= 30.0 and winner.prices[0] > 20.0
    assert truthfulness(inst, cls, p, 0, result.plans)["m_truth_gain"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contract_net_only_improves_and_trades_rationally(seed):
    from allocators.contract_net import initial_owner

    inst = make_instance({"family": "mtsp", "size": [15, 4], "seed": seed, "params": {}})
    cls, p, result, ev = run(inst, "contract_net")
    assert result.converged and ev["m_feasible"] and ev["m_complete"]
    assert ev["m_ir_violations"] == 0  # no agent ends worse off than it started
    initial = [
        [j for j in range(inst.n_tasks) if initial_owner(j, inst.n_agents, 0) == a]
        for a in range(inst.n_agents)
    ]
    assert any(sorted(plan.tasks) != initial[plan.agent] for plan in result.plans)
    # every transfer saved its manager more than it paid: the total cost fell
    from allocators._market import Valuer
    from harness.api import Plan, local_views

    before = 0.0
    for view in local_views(inst):
        valuer = Valuer(view)
        for j in initial[view.agent_id]:
            valuer.add(j)
        before += valuer.route.distance()
    assert ev["m_objective"] < before
    assert ev["m_payments"] > 0 and ev["m_auction_rounds"] >= 1
    assert isinstance(result.plans[0], Plan)


def test_ssi_and_psi_on_routing():
    inst = make_instance({"family": "mtsp", "size": [10, 3], "seed": 1, "params": {}})
    opt = solve_exact(inst)
    _, _, _, ssi = run(inst, "ssi")
    _, _, _, psi = run(inst, "psi")
    for ev in (ssi, psi):
        assert ev["m_feasible"] and ev["m_complete"]
    assert ssi["m_ir_violations"] == 0  # each ask was the true marginal cost when won
    assert ssi["m_objective"] <= psi["m_objective"]  # sequential sees its own route
    assert ssi["m_objective"] >= opt.value - 1e-9
    _, _, _, second = run(inst, "ssi", payment="second")
    assert second["m_payments"] >= ssi["m_payments"]


def test_double_auction_trades_between_cost_and_value_and_replays_from_its_seed():
    inst = hetero(4, 16, 2)
    cls = allocators.get("double_auction")
    p = cls.resolve_params({})
    a = run_local(inst, cls, p, 5)
    b = run_local(inst, cls, p, 5)
    assert [x.to_dict() for x in a.plans] == [x.to_dict() for x in b.plans]
    ev = evaluate(inst, a.plans, None, cls.market)
    assert a.converged and ev["m_feasible"] and ev["m_tasks_assigned"] > 0
    assert ev["m_ir_violations"] == 0 and ev["m_holder_utility"] >= 0
    for plan in a.plans:
        for k, j in enumerate(plan.tasks):
            assert plan.prices[k] <= inst.tasks["value"][j] + 1e-9
            assert plan.bids[k] <= plan.prices[k] + 1e-9


def test_truthfulness_check_stops_at_its_deadline():
    import time

    inst = single_item([30.0, 10.0, 20.0])
    cls, p, result, _ = run(inst, "vickrey")
    full = truthfulness(inst, cls, p, 0, result.plans)
    assert full["m_truth_complete"] and full["m_truth_runs"] == 3 * len(FACTORS)
    cut = truthfulness(inst, cls, p, 0, result.plans, deadline=time.monotonic() - 1.0)
    assert not cut["m_truth_complete"] and cut["m_truth_runs"] == 0
