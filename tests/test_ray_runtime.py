"""The ray runtime against the local one: same plans, rounds and message counts (real Ray)."""

import pytest

ray = pytest.importorskip("ray")

import allocators  # noqa: E402
from actors.runtime import AgentError, run_ray, spawn  # noqa: E402
from harness.runtime_local import run_local  # noqa: E402
from harness.scenarios import make_instance  # noqa: E402
from tests.conformance import CASES, recipe  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def pool():
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    env = {"HARNESS_EXTRA_ALLOCATORS": "tests.faulty_allocators", "PYTHONPATH": root}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    allocators.available.cache_clear()
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}
    )
    actors = spawn(12)
    yield actors
    ray.shutdown()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    allocators.available.cache_clear()


PAIRS = [
    (name, family, case, params)
    for name, cls in allocators.available().items()
    if cls.synchronous and name != "milp"
    for family in cls.families
    if family in ("assignment", "tdr", "mtsp")
    for case, params in CASES[family]
    if isinstance(case, tuple) and case[1] <= 12
]


def summary(result):
    s = result.stats.summary()
    return {
        "plans": [p.to_dict() for p in result.plans],
        "rounds": result.rounds,
        "converged": result.converged,
        "messages": s["messages"],
        "bytes": s["bytes"],
        "by_type": s["by_type"],
        "pairs": dict(result.stats.pairs),
        "per_round": list(result.stats.per_round),
    }


@pytest.mark.parametrize(
    "name,family,case,params", PAIRS, ids=[f"{p[0]}-{p[1]}-{p[2]}" for p in PAIRS]
)
def test_ray_equals_local(pool, name, family, case, params):
    inst = make_instance(recipe(family, case, params, seed=2))
    cls = allocators.get(name)
    p = cls.resolve_params({})
    local = run_local(inst, cls, p, seed=2)
    remote = run_ray(inst, cls, p, seed=2, actors=pool)
    assert summary(remote) == summary(local)


def test_round_limit_matches(pool):
    inst = make_instance(recipe("tdr", (16, 5), {"comm": "line"}, seed=1))
    cls = allocators.get("cbba")
    p = cls.resolve_params({})
    local = run_local(inst, cls, p, seed=1, max_rounds=3)
    remote = run_ray(inst, cls, p, seed=1, max_rounds=3, actors=pool)
    assert not local.converged and summary(remote) == summary(local)


def test_an_agent_error_ends_the_trial_with_its_message(pool):
    inst = make_instance(recipe("assignment", (5, 4), {"comm": "ring"}, seed=0))
    cls = allocators.get("test_crash")
    with pytest.raises(AgentError, match="deliberate failure in round 2"):
        run_ray(inst, cls, cls.resolve_params({"round": 2}), seed=0)  # own actors: they are killed
    ok = allocators.get("cbaa")
    assert run_ray(inst, ok, {}, seed=0, actors=pool).converged  # the pool is untouched


def test_a_killed_actor_is_detected_and_ends_the_trial(pool):
    inst = make_instance(recipe("assignment", (5, 4), {"comm": "ring"}, seed=0))
    cls = allocators.get("test_die")
    with pytest.raises(AgentError, match="agent 1: its actor died"):
        run_ray(inst, cls, cls.resolve_params({"round": 2}), seed=0)
    assert run_ray(inst, allocators.get("cbaa"), {}, seed=0, actors=pool).converged
