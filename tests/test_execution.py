"""Execution (agents travel while the allocator re-plans) and the allocators of issue 6."""

import json
import re

import numpy as np
import pytest

import allocators
from harness.bench import bench
from harness.errors import SpecError
from harness.evaluate import evaluate
from harness.execution import ExecSettings, Fleet, execute, remaining_instance
from harness.faults import parse_faults
from harness.runtime_local import run_local
from harness.scenarios import make_instance
from harness.spec import apply_overrides, spec_from_dict
from harness.store import RunStore
from reports.routing import convergence, label, mean_ci, routing_report, spearman


def mtsp(n, m, seed=1, **params):
    return make_instance({"family": "mtsp", "size": [n, m], "seed": seed, "params": params})


def executed(inst, name, params=None, seed=5, **settings):
    cls = allocators.get(name)
    p = cls.resolve_params(params or {})
    return execute(
        inst,
        cls,
        p,
        seed,
        ExecSettings(**settings),
        lambda sub, s: run_local(sub, cls, p, s, 10_000),
    )


def straight_line_cost(inst, res):
    """The distance of each agent's visit sequence from its start, in straight lines."""
    xyz = np.stack([inst.tasks[c] for c in "xyz"], axis=1)
    out = []
    for p in res.plans:
        here = np.array([inst.agents[c][p.agent] for c in "xyz"])
        d = 0.0
        for j in p.tasks:
            d += float(np.linalg.norm(xyz[j] - here))
            here = xyz[j]
        out.append(d)
    return out


@pytest.mark.parametrize(
    "name,params",
    [
        ("greedy_nn", {}),
        ("cbaa", {"score": "min_max"}),
        ("dh", {"score": "min_sum"}),
        ("acbba", {"bundle": 3, "max_iterations": 5}),
        ("pia", {"bundle": 3}),
        ("hipc", {}),
        ("sga", {}),
        ("ga_multi", {}),
    ],
)
def test_every_location_is_visited_once_and_the_figures_add_up(name, params):
    inst = mtsp(14, 3)
    res = executed(inst, name, params, period=0.2)
    assert res.complete and res.message == ""
    visits = sorted(j for p in res.plans for j in p.tasks)
    assert visits == list(range(inst.n_tasks))
    last = max(t for p in res.plans for t in p.times)
    assert res.makespan == pytest.approx(last)
    # agents drive at least the straight lines between their visits (more when they turned)
    lines = straight_line_cost(inst, res)
    for drove, line in zip(res.per_agent, lines, strict=True):
        assert drove >= line - 1e-6
    assert res.distance == pytest.approx(sum(res.per_agent))
    # an agent's visit times follow from its distance and the speed when it never waited
    for p, line in zip(res.plans, lines, strict=True):
        if p.tasks:
            assert p.times[-1] * 5.0 >= line - 1e-6
    assert res.stats.messages > 0 and res.replans >= 1


def test_an_executed_mission_replays_from_its_seed():
    inst = mtsp(20, 4, seed=2)
    for name in ("acbba", "ga_ms"):
        a = executed(inst, name, period=0.2)
        b = executed(inst, name, period=0.2)
        assert [p.to_dict() for p in a.plans] == [p.to_dict() for p in b.plans]
        assert (a.makespan, a.distance, a.stats.messages, a.stats.bytes) == (
            b.makespan,
            b.distance,
            b.stats.messages,
            b.stats.bytes,
        )
        assert a.trace == b.trace


def test_restart_replans_when_an_agent_runs_out_and_single_task_allocators_replan_per_visit():
    inst = mtsp(12, 3)
    res = executed(inst, "dh", {"score": "min_sum"})
    # one task per agent per plan: at least one re-plan per location after the first round
    assert res.replans >= inst.n_tasks - inst.n_agents + 1
    bundled = executed(inst, "sga")
    assert bundled.replans < res.replans


def test_the_remaining_problem_starts_where_the_agents_are():
    inst = mtsp(6, 2)
    fleet = Fleet(inst, 5.0)
    seqs = [[0, 1], [2]]
    fleet.advance(seqs, 1.0)  # one second at 5 m/s
    assert fleet.now == pytest.approx(1.0)
    assert (fleet.travelled <= 5.0 + 1e-9).all() and fleet.travelled.max() > 0
    for a, s in enumerate(seqs):  # an agent still under way drove the whole second
        if s:
            assert fleet.travelled[a] == pytest.approx(5.0)
    sub = remaining_instance(inst, fleet)
    assert sub.n_tasks == int((~fleet.visited).sum())
    assert np.allclose(sub.agents["x"], fleet.pos[:, 0])
    assert np.allclose(sub.agents["avail_start"], fleet.travelled / 5.0)
    assert np.allclose(sub.agents["speed"], 5.0)


def test_the_ga_keeps_running_and_switches_to_nearest_neighbours_near_the_end():
    inst = mtsp(16, 4, seed=3)
    res = executed(inst, "ga_multi", period=0.1, trace_every=0.5)
    assert res.complete
    assert len(res.trace) >= 3
    times = [t for t, _ in res.trace]
    assert times == sorted(times)
    # the best estimate of the whole mission improves on the nearest-neighbour start
    assert min(c for _, c in res.trace) <= res.trace[0][1]
    assert res.stats.by_type["Status"][0] > 0
    few = executed(mtsp(3, 5, seed=4), "ga_ms", period=0.1)  # fewer locations than agents
    assert few.complete


def test_online_mode_needs_an_online_allocator():
    with pytest.raises(SpecError, match="execution.mode"):
        executed(mtsp(5, 2), "sga", mode="online")


@pytest.mark.parametrize(
    "table,field",
    [
        ({"speed": 0}, "execution.speed"),
        ({"speed": "fast"}, "execution.speed"),
        ({"mode": "later"}, "execution.mode"),
        ({"pace": 1.0}, "execution.pace"),
    ],
)
def test_bad_execution_tables_name_the_field(table, field):
    d = {
        "allocators": [{"name": "sga"}],
        "families": [{"name": "mtsp", "sizes": ["5x2"]}],
        "execution": table,
    }
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        spec_from_dict(d, "x.toml")


def test_executed_trials_are_stored_with_their_figures_and_keys(tmp_path):
    spec = spec_from_dict(
        {
            "bench": {"seeds": 1, "out": str(tmp_path), "runtime": "local", "workers": 1},
            "allocators": [{"name": "greedy_nn"}, {"name": "ga_mm"}],
            "families": [{"name": "mtsp", "sizes": ["8x3"]}],
            "execution": {"speed": 5.0, "period": 0.2},
        }
    )
    res = bench(spec)
    rows = RunStore(tmp_path, res.run_id).rows()
    assert {r["trial_status"] for r in rows} == {"done"}
    for r in rows:
        assert r["m_exec_complete"] and r["m_exec_makespan"] > 0
        assert r["m_exec_distance"] >= r["m_total_distance"] - 1e-6
        assert json.loads(r["trial_execution"])["speed"] == 5.0
        assert r["m_exec_gap"] is not None and r["m_exec_gap"] >= -1e-9  # 8 tasks: exact
    # planning trials of the same spec have other keys
    plain = spec_from_dict({**spec.to_dict(), "execution": {}})
    plain.settings["out"] = str(tmp_path / "plain")
    keys = {r["trial_key"] for r in RunStore(tmp_path / "plain", bench(plain).run_id).rows()}
    assert keys.isdisjoint({r["trial_key"] for r in rows})
    over = apply_overrides(plain, execution="{period = 0.5}")
    assert over.execution["period"] == 0.5
    # the routing report reads the executed trials only, with the paper's layout
    text = routing_report([tmp_path], tmp_path / "plots")
    assert "Table I" in text and "Table II" in text and "Table III" in text
    assert "| NN |" in text and "| GA-mm |" in text and "(45.5)" not in text  # 8x3: no paper
    assert (tmp_path / "plots" / "routing_makespan.svg").read_text().startswith("<svg")
    # in the whole report, the routing plots draw each allocator in the report's style for it
    from reports.report import write_report
    from reports.svg import COLOURS

    write_report([tmp_path], tmp_path / "rep")
    drawn = (tmp_path / "rep" / "plots" / "routing_makespan.svg").read_text()
    legend = dict(
        (label, colour)
        for colour, label in re.findall(
            r'<line [^>]*stroke="(#[0-9A-Fa-f]{6})"[^>]*/>\n<[^>]+/>\n<text [^>]*>([^<]+)</text>',
            drawn,
        )
    )
    # the report's labels, sorted: ga_mm, greedy_nn
    assert legend == {"GA-mm": COLOURS[0], "NN": COLOURS[1]}


def test_report_statistics():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / 3**0.5, rel=1e-5)
    assert spearman({"a": 1, "b": 2, "c": 3}, {"a": 10, "b": 20, "c": 30}) == pytest.approx(1.0)
    assert spearman({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1}) == pytest.approx(-1.0)
    trace = [[0.5, 120.0], [1.5, 110.0], [2.5, 100.0]]
    assert convergence(trace, (0.0, 1.0, 2.0)) == pytest.approx([20.0, 10.0, 0.0])
    assert label("acbba", {"score": "min_max"}) == "ACBBA-mm" and label("ga_ms", "{}") == "GA-ms"


@pytest.mark.parametrize(
    "name,params",
    [
        ("acbba", {}),
        ("acbba", {"bundle": 5, "max_iterations": 5}),
        ("pia", {}),
        ("pia", {"bundle": 5, "max_iterations": 5}),
        ("hipc", {}),
    ],
)
@pytest.mark.parametrize("comm", ["full", "ring"])
def test_async_bundle_consensus_is_conflict_free_in_any_delivery_order(name, params, comm):
    inst = mtsp(30, 5, seed=6, comm=comm)
    cls = allocators.get(name)
    p = cls.resolve_params(params)
    for seed in range(4):  # the seed draws the latencies: other delivery orders
        for faults in ({}, {"duplicate": 0.3}, {"delay": {"p": 0.3, "max": 4}}):
            res = run_local(inst, cls, p, seed, 10_000, faults=parse_faults(faults))
            m = evaluate(inst, res.plans)
            assert res.converged and m["m_conflicts"] == 0, (seed, faults)
            if name != "pia" and not params:  # PIA and bundle limits may leave tasks
                assert m["m_complete"], (seed, faults)


def test_decentralised_hungarian_is_the_optimal_assignment():
    inst = make_instance({"family": "assignment", "size": [7, 5], "seed": 3, "params": {}})
    dh = run_local(inst, allocators.get("dh"), allocators.get("dh").resolve_params({}), 1)
    hu = run_local(inst, allocators.get("hungarian"), {}, 1)
    a, b = evaluate(inst, dh.plans), evaluate(inst, hu.plans)
    assert a["m_objective"] == pytest.approx(b["m_objective"])
    assert a["m_conflicts"] == 0


def test_decentralised_hungarian_floods_only_as_far_as_needed():
    full = mtsp(9, 4, seed=2)
    ring = mtsp(9, 6, seed=2, comm="ring")
    cls = allocators.get("dh")
    p = cls.resolve_params({})
    res = run_local(full, cls, p, 1)
    assert res.stats.messages == 4 * 3  # one row to each neighbour, nothing forwarded
    clean = run_local(ring, cls, p, 1)
    late = run_local(ring, cls, p, 1, faults=parse_faults({"delay": {"p": 0.5, "max": 3}}))
    for r in (clean, late):  # every agent learns every row, delayed copies or not
        assert r.converged and evaluate(ring, r.plans)["m_conflicts"] == 0
        assert sorted(len(pl.tasks) for pl in r.plans) == [1] * 6
    assert [pl.tasks for pl in late.plans] == [pl.tasks for pl in clean.plans]


def test_pia_keeps_no_task_its_own_restated_impact_lost():
    """Regression: a PIA agent restates its impacts after adding tasks; a restated (lower)
    bid can lose a task at once, and the agent must release it without waiting for another
    message (this case ended with one task in two bundles)."""
    inst = mtsp(40, 6, seed=3)
    cls = allocators.get("pia")
    res = run_local(inst, cls, cls.resolve_params({"bundle": 5, "max_iterations": 5}), 5)
    assert res.converged and evaluate(inst, res.plans)["m_conflicts"] == 0


@pytest.mark.parametrize("speed", [1.0, 5.0, 0.5])
def test_executed_missions_are_feasible_at_any_speed(tmp_path, speed):
    """Visit times come from the execution speed, so the plans are judged at that speed: at
    5 m/s (the GA paper's) they were once stored infeasible, every visit 'too early' for an
    agent of the instance's 1 m/s. The gap is kept where the objective ignores speed."""
    spec = spec_from_dict(
        {
            "bench": {"seeds": 2, "out": str(tmp_path), "runtime": "local", "workers": 1},
            "allocators": [{"name": "cbaa"}, {"name": "sga"}],
            "families": [
                {"name": "mtsp", "sizes": ["10x3"]},
                {"name": "mtsp", "sizes": ["6x2"], "params": {"objective": "min_max"}},
            ],
            "execution": {"speed": speed, "period": 0.1},
        }
    )
    rows = RunStore(tmp_path, bench(spec).run_id).rows()
    assert len(rows) == 8 and {r["trial_status"] for r in rows} == {"done"}
    for r in rows:
        assert r["m_feasible"] and r["m_violations"] == 0, (r["alg_name"], r["m_violations"])
        speed_matters = r["inst_objective"] == "min_max" and speed != 1.0
        assert (r["m_gap"] is None) == speed_matters
        assert r["m_exec_gap"] is not None
