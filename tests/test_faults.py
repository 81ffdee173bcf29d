"""Faults on the wire, on the local runtime (the ray runtime is held to the same results in
test_ray_runtime): the counts move as injected, nothing moves when nothing is injected, bad
profiles are named, and fault profiles are trials of their own in a bench run."""

import json

import pytest

import allocators
from harness.bench import bench
from harness.conformance import CASES, recipe
from harness.errors import SpecError
from harness.evaluate import evaluate
from harness.faults import COUNTERS, Wire, new_counts, parse_faults, uniform
from harness.runtime_local import run_local
from harness.scenarios import make_instance
from harness.spec import apply_overrides, spec_from_dict
from harness.store import RunStore
from harness.trials import expand


def run(name, family, size, params, faults, seed=1, **kw):
    inst = make_instance(recipe(family, size, params, seed))
    cls = allocators.get(name)
    if cls.skip_reason(inst, cls.resolve_params({})):
        pytest.skip(cls.skip_reason(inst, cls.resolve_params({})))
    return inst, run_local(
        inst, cls, cls.resolve_params({}), seed, faults=parse_faults(faults), **kw
    )


SYNC = [
    (name, family, case, params)
    for name, cls in allocators.available().items()
    if cls.synchronous
    for family in cls.families
    for case, params in CASES.get(family, [])
    if isinstance(case, tuple)
]


@pytest.mark.parametrize(
    "name,family,case,params", SYNC, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SYNC]
)
def test_no_faults_counts_are_exact(name, family, case, params):
    _inst, res = run(name, family, case, params, {})
    assert res.wire["sent"] == res.stats.messages == sum(res.stats.per_round)
    assert all(res.wire[c] == 0 for c in COUNTERS if c != "sent")
    assert res.crashed == []


@pytest.mark.parametrize(
    "name,family,case,params", SYNC, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in SYNC]
)
def test_allocators_survive_duplicates_and_reordering(name, family, case, params):
    inst, clean = run(name, family, case, params, {})
    _, res = run(name, family, case, params, {"duplicate": 0.3, "reorder": True})
    m = evaluate(inst, res.plans)
    assert res.converged and m["m_conflicts"] == 0 and m["m_feasible"]
    assert res.wire["duplicated"] > 0 or res.wire["sent"] < 5
    # every allocator here reaches the same allocation: duplicates and order do not matter
    assert [p.tasks for p in res.plans] == [p.tasks for p in clean.plans]


CBBA = ("cbba", "tdr", (20, 8), {"comm": "ring"})


def test_drop_loses_the_counted_messages():
    _, clean = run(*CBBA, {})
    _, res = run(*CBBA, {"drop": 0.25})
    w = res.wire
    assert res.stats.messages == w["sent"] - w["dropped"]
    assert 0.15 < w["dropped"] / w["sent"] < 0.35  # thousands of draws around 0.25
    assert res.stats.messages < clean.stats.messages or res.rounds != clean.rounds


def test_duplicates_are_delivered_twice():
    _, res = run(*CBBA, {"duplicate": 0.5})
    w = res.wire
    assert res.stats.messages == w["sent"] + w["duplicated"]
    assert 0.4 < w["duplicated"] / w["sent"] < 0.6


def test_delays_arrive_late_but_arrive():
    inst, clean = run("cbaa", "assignment", (12, 10), {"comm": "line"}, {})
    _, res = run(
        "cbaa", "assignment", (12, 10), {"comm": "line"}, {"delay": {"p": 1.0, "min": 2, "max": 2}}
    )
    w = res.wire
    assert w["delayed"] == w["sent"] and res.stats.messages == w["sent"]  # quiescence: all arrive
    assert res.rounds > clean.rounds
    assert [p.tasks for p in res.plans] == [p.tasks for p in clean.plans]
    # a message sent in round r is handled in round r + 3: nothing is handled in rounds 1 and 2
    assert res.stats.per_round[0] == 0 and res.stats.per_round[1] == 0
    assert evaluate(inst, res.plans)["m_conflicts"] == 0


def test_a_partition_cuts_exactly_the_messages_across():
    size = (10, 8)
    _, res = run("cbaa", "assignment", size, {}, {"partition": {"groups": "halves"}})
    left, right = set(range(4)), set(range(4, 8))  # "halves" of 8 agents
    across = [(s, d) for (s, d) in res.stats.pairs if (s in left) != (d in left)]
    assert across == [] and res.wire["partitioned"] > 0
    assert res.stats.messages == res.wire["sent"] - res.wire["partitioned"]
    pairs = set(res.stats.pairs)
    assert any(s in left and d in left for s, d in pairs)  # each side still talks within
    assert any(s in right and d in right for s, d in pairs)


def test_a_crash_empties_the_plan_and_loses_messages_to_the_agent():
    inst, clean = run(*CBBA, {})
    _, res = run(*CBBA, {"crash": [{"agent": 3, "round": 4}]})
    assert res.crashed == [3] and res.plans[3].tasks == []
    assert res.wire["lost_crash"] > 0
    late = [d for (s, d) in res.stats.pairs if d == 3]
    assert late  # it did receive messages before crashing
    m, m0 = evaluate(inst, res.plans), evaluate(inst, clean.plans)
    assert m["m_coverage"] <= m0["m_coverage"]


def test_crashes_the_trial_meets_before_it_ends_are_counted_as_crashes():
    """cbaa on mtsp 20x5, every agent crashed at round 1: the round-0 bids are all lost to the
    crashes and the trial ends in round 0. Crashed agents, lost messages and coverage agree:
    five agents crashed, twenty messages lost to them, nothing covered (once 0 crashed,
    coverage 0.25 and 20 messages lost)."""
    crash = {"crash": [{"agent": a, "round": 1} for a in range(5)]}
    inst, res = run("cbaa", "mtsp", (20, 5), {}, crash)
    assert res.wire["lost_crash"] == 20 and res.rounds == 0
    assert res.crashed == [0, 1, 2, 3, 4]
    assert all(p.tasks == [] for p in res.plans)
    assert evaluate(inst, res.plans)["m_coverage"] == 0.0


def test_faults_replay_from_the_seed_and_change_with_it():
    a = run(*CBBA, {"drop": 0.2, "delay": {"p": 0.3, "max": 3}}, seed=2)[1]
    b = run(*CBBA, {"drop": 0.2, "delay": {"p": 0.3, "max": 3}}, seed=2)[1]
    c = run(*CBBA, {"drop": 0.2, "delay": {"p": 0.3, "max": 3}}, seed=3)[1]
    assert (a.wire, a.rounds, a.stats.summary()) == (b.wire, b.rounds, b.stats.summary())
    assert a.wire != c.wire


def test_fate_is_a_pure_function_of_the_coordinates():
    w = Wire(parse_faults({"drop": 0.5, "duplicate": 0.5, "delay": {"p": 0.5, "max": 4}}), 7, 5)
    counts = new_counts()
    first = [w.fate(1, 2, r, i, counts) for r in range(50) for i in range(4)]
    again = [w.fate(1, 2, r, i, counts) for r in range(50) for i in range(4)]
    assert first == again and counts["sent"] == 400
    assert {
        d - r - 1
        for (c, d), r in zip(first, [r for r in range(50) for _ in range(4)], strict=True)
        if c
    } <= set(range(5))
    mean = sum(uniform(3, k) for k in range(20_000)) / 20_000
    assert 0.49 < mean < 0.51


def test_geometric_delays_have_the_asked_mean():
    w = Wire(parse_faults({"delay": {"p": 1.0, "dist": "geometric", "mean": 3.0}}), 1, 2)
    counts = new_counts()
    delays = [w.fate(0, 1, r, 0, counts)[1] - r - 1 for r in range(20_000)]
    assert min(delays) >= 1 and 2.8 < sum(delays) / len(delays) < 3.2


@pytest.mark.parametrize(
    "profile,field",
    [
        ({"drop": 1.5}, "faults.drop"),
        ({"drop": "often"}, "faults.drop"),
        ({"delay": 3}, "faults.delay"),
        ({"delay": {"p": 0.1, "dist": "normal"}}, "faults.delay.dist"),
        ({"delay": {"p": 0.1, "min": 3, "max": 2}}, "faults.delay.max"),
        ({"delay": {"p": 0.1, "dist": "geometric", "mean": 0.5}}, "faults.delay.mean"),
        ({"reorder": "yes"}, "faults.reorder"),
        ({"partition": {"groups": [[0, 1], [1, 2]]}}, "faults.partition.groups"),
        ({"partition": {"groups": "halves", "from": 5, "to": 5}}, "faults.partition.to"),
        ({"crash": {"agent": 1}}, "faults.crash[0]"),
        ({"crash": [{"agent": 1, "round": 0}]}, "faults.crash[0].round"),
        ({"jitter": 1}, "faults.jitter"),
    ],
)
def test_bad_profiles_name_the_field(profile, field):
    with pytest.raises(SpecError) as err:
        parse_faults(profile, "spec.toml", "faults")
    assert "spec.toml" in str(err.value) and field in str(err.value)


def fault_spec(out, faults):
    return spec_from_dict(
        {
            "bench": {
                "seeds": 2,
                "out": str(out),
                "runtime": "local",
                "workers": 2,
                "optimum": False,
            },
            "allocators": [{"name": "cbba"}, {"name": "cbaa_async"}, {"name": "cbaa"}],
            "families": [{"name": "assignment", "sizes": ["8x6"], "params": {"comm": "ring"}}],
            "faults": faults,
        }
    )


def test_profiles_are_trials_with_their_own_keys_and_stored_counts(tmp_path):
    profiles = [{}, {"name": "lossy", "drop": 0.3}, {"crash": [{"agent": 2, "round": 2}]}]
    spec = fault_spec(tmp_path, profiles)
    trials, _, _ = expand(spec)
    assert len(trials) == 3 * 2 * 3 and len({t.key for t in trials}) == len(trials)
    by_seed = {}
    for t in trials:
        by_seed.setdefault((t.allocator, t.rep), set()).add(t.seed)
    assert all(len(s) == 1 for s in by_seed.values())  # paired: same seed under every profile
    res = bench(spec)
    rows = RunStore(tmp_path, res.run_id).rows()
    assert {r["trial_status"] for r in rows} == {"done"}
    names = {r["trial_fault_name"] for r in rows}
    assert names == {"none", "lossy", "crash"}
    for r in rows:
        faults = json.loads(r["trial_faults"])
        lost = r["m_msgs_dropped"] + r["m_msgs_partitioned"] + r["m_msgs_lost_crash"]
        if r["trial_fault_name"] == "none":
            assert faults == {} and lost == 0 and r["m_messages"] == r["m_msgs_sent"]
        if r["trial_fault_name"] == "lossy":
            assert faults == {"drop": 0.3} and r["m_msgs_dropped"] > 0
            assert r["m_messages"] == r["m_msgs_sent"] - r["m_msgs_dropped"]
        if r["trial_fault_name"] == "crash":
            assert r["m_crashed"] == 1 and json.loads(r["trial_crashed_agents"]) == [2]
    again = bench(fault_spec(tmp_path / "again", profiles))
    keep = ("trial_key", "m_messages", "m_msgs_dropped", "m_objective", "m_rounds", "trial_plans")
    first = sorted(tuple(r[k] for k in keep) for r in rows)
    second = sorted(
        tuple(r[k] for k in keep) for r in RunStore(tmp_path / "again", again.run_id).rows()
    )
    assert first == second  # reproducible from the stored seed and profile


def test_faults_from_the_command_line_and_bad_crash_ids(tmp_path):
    spec = apply_overrides(fault_spec(tmp_path, [{}]), faults=["{drop = 0.1}", "{reorder = true}"])
    assert [t.fault_name for t in expand(spec)[0]][:2] == ["drop=0.1", "reorder"]
    with pytest.raises(SpecError, match="--faults"):
        apply_overrides(spec, faults=["{drop = "])
    with pytest.raises(SpecError, match=r"faults\[0\]\.crash"):
        expand(fault_spec(tmp_path, [{"crash": [{"agent": 6, "round": 1}]}]))
    with pytest.raises(SpecError, match=r"faults\[1\]\.name"):
        fault_spec(tmp_path, [{"drop": 0.1}, {"name": "drop=0.1"}])
