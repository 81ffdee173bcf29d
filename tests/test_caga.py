"""CAGA (allocators/caga.py): the ε auction is near-optimal, the GA is the same on every agent,
Monte Carlo payoffs come from the trial's uncertainty model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import allocators
from harness.api import local_views
from harness.evaluate import evaluate
from harness.exact import solve_exact
from harness.runtime_local import run_local
from harness.scenarios import make_instance
from harness.uncertainty import Belief, Uncertainty

CAGA = allocators.get("caga")


def _inst(n: int, m: int, seed: int):
    return make_instance(
        {"family": "assignment", "size": [n, m], "params": {"dim": 3}, "seed": seed}
    )


@pytest.mark.parametrize("seed", range(6))
def test_with_true_costs_it_is_within_m_eps_of_the_optimum(seed):
    """Bertsekas: an auction that ends in ε-complementary slackness is within m·ε of the
    optimum; every member's auction does, whatever ε the GA gave it."""
    inst = _inst(8, 7, seed)
    p = CAGA.resolve_params({"generations": 2, "population": 4})
    res = run_local(inst, CAGA, p, seed=seed)
    got = evaluate(inst, res.plans)
    opt = solve_exact(inst, 30.0).value
    assert got["m_feasible"] and got["m_conflicts"] == 0
    assert got["m_objective"] >= opt - inst.n_agents * p["eps_max"] - 1e-9
    assert res.converged


def test_every_agent_applies_the_same_ga_step():
    """The agents agree on the team seed and on each member's fitness, so all end in the
    same member: one task each, no conflict, on many seeds and under noise."""
    for seed in range(8):
        inst = _inst(9, 9, seed)
        seen = replace(inst, belief=Belief(Uncertainty("lognormal"), seed))
        p = CAGA.resolve_params({"generations": 3, "population": 5})
        res = run_local(seen, CAGA, p, seed=seed)
        tasks = [t for pl in res.plans for t in pl.tasks]
        assert len(tasks) == len(set(tasks)) == 9
        assert {pl.extra for pl in res.plans} == {None}
        assert res.stats.summary()["messages"] > 0


def test_a_trial_replays_and_the_ga_budget_counts():
    inst = _inst(6, 6, 3)
    p = CAGA.resolve_params({})
    a, b = (run_local(inst, CAGA, p, seed=5) for _ in range(2))
    assert [pl.to_dict() for pl in a.plans] == [pl.to_dict() for pl in b.plans]
    assert a.rounds == b.rounds
    none = run_local(inst, CAGA, CAGA.resolve_params({"generations": 0}), seed=5)
    assert none.rounds < a.rounds  # one auction per member and no GA step


def test_monte_carlo_payoffs_need_the_model_and_samples():
    inst = _inst(12, 4, 1)
    seen = replace(inst, belief=Belief(Uncertainty("lognormal"), 7))
    rng = np.random.default_rng(0)
    (view,) = local_views(seen, [2])
    assert view.public["uncertainty"]["model"] == "lognormal"
    raw = CAGA(view, CAGA.resolve_params({"mc_samples": 0}), rng).c
    mc = CAGA(view, CAGA.resolve_params({"mc_samples": 50}), rng).c
    assert not np.allclose(raw, mc)  # valued over positions drawn around the measurement
    (plain,) = local_views(inst, [2])
    assert "uncertainty" not in plain.public
    assert np.array_equal(
        CAGA(plain, CAGA.resolve_params({}), rng).c,
        CAGA(plain, CAGA.resolve_params({"mc_samples": 0}), rng).c,
    )  # no model: the measurement (here the truth) as is


def test_other_graphs_are_a_stated_skip():
    inst = make_instance(
        {"family": "assignment", "size": [5, 5], "params": {"comm": "ring"}, "seed": 0}
    )
    assert "fully connected" in CAGA.skip_reason(inst, CAGA.resolve_params({}))
    bad = CAGA.resolve_params({"eps_min": 1e-3, "eps_max": 1e-4})
    assert "eps_min" in CAGA.skip_reason(_inst(3, 3, 0), bad)


@pytest.mark.parametrize("n,m", [(5, 5), (8, 6), (6, 8), (3, 9), (9, 3), (14, 14)])
def test_omb_clears_the_market_at_the_optimum(n, m):
    """Liu and Shell: prices raised on over-demanded goods until every customer is matched
    are Walrasian, and the assignment is optimal (PuLP agrees), with more goods or more
    customers; the merchant only ever receives demands and slacks, never a payoff."""
    from allocators.omb import Demand, Slack

    omb = allocators.get("omb")
    for seed in range(5):
        inst = _inst(n, m, seed)
        res = run_local(inst, omb, omb.resolve_params({}), seed=seed)
        got = evaluate(inst, res.plans)
        opt = solve_exact(inst, 30.0).value
        assert res.converged and got["m_feasible"]
        assert got["m_objective"] == pytest.approx(opt, rel=1e-9)
        to_merchant = set(res.stats.summary().get("by_type", {})) - {
            "Prices",
            "Constricted",
            "Cleared",
        }
        assert to_merchant <= {Demand.__name__, Slack.__name__}


def test_the_papers_experiment_is_one_spec_and_one_report_section(tmp_path):
    """paper:caga at two small sizes: the section shows the paper's Tables 5 and 6 beside
    ours and splits CAGA's difference to CBAA into its parts."""
    from harness.bench import bench
    from harness.resources import resolve_spec
    from harness.spec import apply_overrides, load_spec
    from reports import caga

    spec = apply_overrides(
        load_spec(resolve_spec("paper:caga")),
        sizes_csv="3x3,5x5",
        settings={"seeds": 2, "out": str(tmp_path), "workers": 2},
    )
    bench(spec, run_id="p")
    text = caga.section([tmp_path / "p"], tmp_path)
    assert "(6.71)" in text and "(13.82)" in text  # the paper's Table 5 beside ours
    assert "(8.89)" in text  # and its Table 6
    for part in ("ε auction", "+ Monte Carlo", "+ GA", "CAGA (MC + GA)"):
        assert part in text
    rows = [line for line in text.splitlines() if line.startswith("| 5x5 |")]
    assert len(rows) == 4 and all("%" in r for r in rows[-1:])
    # the same with checkpoints, reported beside the allocate-once runs
    cp = apply_overrides(
        load_spec(resolve_spec("paper:caga_checkpoints")),
        sizes_csv="3x3",
        settings={"seeds": 2, "out": str(tmp_path / "cp"), "workers": 2},
    )
    bench(cp, run_id="c")
    both = caga.section([tmp_path / "p", tmp_path / "cp"], tmp_path)
    assert "Re-allocating at checkpoints (5" in both
    (row,) = [r for r in both.split("Re-allocating")[1].splitlines() if r.startswith("| 3x3 |")]
    assert row.count("%") >= 6  # CBAA, OMB, Hungarian, ... each with its allocate-once gap


def test_hungarian_under_noise_solves_with_every_agents_measurements():
    """The centralised optimum of what the agents measured: each agent reports its own payoff
    row (a bigger report, counted), the leader solves the matrix of all of them."""
    from harness.exact import best_assignment

    hung = allocators.get("hungarian")
    inst = _inst(9, 7, 4)
    seen = replace(inst, belief=Belief(Uncertainty("lognormal"), 8))
    res = run_local(seen, hung, {}, seed=1)
    views = local_views(seen)
    believed = np.array(
        [v.tasks["value"] * 100.0 / np.maximum(v.tasks.from_point(v.position), 1.0) for v in views]
    )
    want = best_assignment(believed)
    assert [p.tasks for p in res.plans] == [p.tasks for p in want]
    plain = run_local(inst, hung, {}, seed=1)
    assert res.stats.summary()["bytes"] > plain.stats.summary()["bytes"]
    assert res.stats.summary()["messages"] == plain.stats.summary()["messages"]
