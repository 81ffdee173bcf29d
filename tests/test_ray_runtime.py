"""The ray runtime against the local one: same plans, rounds and message counts (real Ray)."""

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import allocators  # noqa: E402
from actors.runtime import AgentError, run_ray, spawn  # noqa: E402
from harness.conformance import recipe  # noqa: E402
from harness.faults import parse_faults  # noqa: E402
from harness.runtime_local import run_local  # noqa: E402
from harness.scenarios import make_instance  # noqa: E402
from tests.runtime_cases import FAULT_CASES, FAULTS, PAIRS, summary  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def pool():
    import os

    from ray._private import ray_constants

    from actors.embedded import LOOPBACK_ENV, start_embedded
    from tests.cli import faulty_env

    with faulty_env() as env:
        start_embedded(num_cpus=2, runtime_env={"env_vars": env})
        actors = spawn(12)
        yield actors
        ray.shutdown()
        for k in LOOPBACK_ENV:  # other tests start multi-node clusters
            os.environ.pop(k, None)
        ray_constants.ENABLE_RAY_CLUSTER = True


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


@pytest.mark.parametrize("profile", list(FAULTS))
@pytest.mark.parametrize("name,family,size,params", FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_ray_equals_local_under_faults(pool, profile, name, family, size, params):
    """The same faults are injected on both runtimes: same plans, rounds, counts, losses."""
    inst = make_instance(recipe(family, size, params, seed=3))
    cls = allocators.get(name)
    p = cls.resolve_params({})
    faults = parse_faults(FAULTS[profile])
    local = run_local(inst, cls, p, seed=3, faults=faults)
    remote = run_ray(inst, cls, p, seed=3, actors=pool, faults=faults)
    assert summary(remote) == summary(local)
    assert local.wire["sent"] > 0


def _dies(actor: object, calls: int = 2000) -> bool:
    for _ in range(calls):
        try:
            ray.get(actor.__ray_ready__.remote())
        except ray.exceptions.RayActorError:
            return True
    return False


def test_an_injected_crash_kills_the_actor_and_the_pool_is_refilled(pool):
    inst = make_instance(recipe("assignment", (8, 6), {"comm": "ring"}, seed=0))
    cls = allocators.get("cbaa")
    before = list(pool)
    res = run_ray(inst, cls, {}, 0, actors=pool, faults=parse_faults(FAULTS["crash"]))
    assert res.crashed == [1] and res.plans[1].tasks == []
    assert pool[1] is not before[1] and pool[0] is before[0]  # only the crashed one replaced
    # really killed: ray.kill is asynchronous, so a call made just after it may still be
    # served; within a bounded number of calls (no clock involved) the actor must be gone
    assert _dies(before[1])
    assert run_ray(inst, cls, {}, 0, actors=pool).converged  # the replacement works


@pytest.mark.parametrize("per", [2, 3, 5])
def test_several_agents_per_actor_equal_local(pool, per):
    inst = make_instance(recipe("tdr", (20, 10), {"comm": "ring"}, seed=5))
    cls = allocators.get("cbba")
    p = cls.resolve_params({})
    faults = parse_faults({"drop": 0.1, "delay": {"p": 0.2, "max": 2}})
    one = run_ray(inst, cls, p, seed=5, actors=pool, faults=faults)
    hosted = run_ray(inst, cls, p, seed=5, actors=pool, faults=faults, agents_per_actor=per)
    assert summary(hosted) == summary(one) == summary(run_local(inst, cls, p, 5, faults=faults))
    assert hosted.calls < one.calls  # batched per host pair; deliveries inside a host are free
    assert len(set(hosted.nodes)) == 1  # one node here; host count is ceil(10 / per)


ASYNC_FAULTS = [
    {},
    {"duplicate": 0.5},
    {"delay": {"p": 0.5, "max": 3}},
    {"drop": 0.0, "reorder": True},
]


@pytest.mark.parametrize("per", [1, 4])
@pytest.mark.parametrize("fault", ASYNC_FAULTS, ids=["none", "dup", "delay", "reorder"])
def test_asynchronous_delivery_reaches_the_synchronous_answer(pool, per, fault):
    """Async CBAA ends in the global greedy assignment whatever the arrival order: on Ray
    (real arrival order, weight-throwing termination) it matches the local simulation and
    synchronous CBAA."""
    inst = make_instance(recipe("assignment", (12, 10), {"comm": "rgg", "radius": 40.0}, seed=6))
    sync = run_local(inst, allocators.get("cbaa"), {}, seed=6)
    cls = allocators.get("cbaa_async")
    faults = parse_faults(fault)
    local = run_local(inst, cls, {}, seed=6, faults=faults)
    remote = run_ray(inst, cls, {}, 6, actors=pool, faults=faults, agents_per_actor=per)
    alloc = [p.tasks for p in sync.plans]
    assert [p.tasks for p in local.plans] == alloc
    assert [p.tasks for p in remote.plans] == alloc
    assert remote.converged and local.converged
    w = remote.wire
    assert remote.stats.messages == w["sent"] + w["duplicated"]  # every copy was delivered


def test_asynchronous_crash_silences_the_agent(pool):
    inst = make_instance(recipe("assignment", (12, 10), {"comm": "full"}, seed=6))
    cls = allocators.get("cbaa_async")
    faults = parse_faults({"crash": [{"agent": 3, "round": 1}]})
    remote = run_ray(inst, cls, {}, 6, actors=pool, faults=faults)
    assert remote.crashed == [3] and remote.plans[3].tasks == []
    assert remote.wire["lost_crash"] > 0
    w = remote.wire
    assert remote.stats.messages == w["sent"] + w["duplicated"] - w["lost_crash"]


@pytest.mark.parametrize("per", [1, 3])
def test_double_auction_trades_on_ray_in_real_arrival_order(pool, per):
    """The continuous double auction on asynchronous delivery: on Ray the trades follow the
    real arrival order, so the allocation may differ from the local simulation's, but it is
    feasible, every trade lies between the ask and the task's value, and it terminates."""
    from harness.evaluate import evaluate

    inst = make_instance(recipe("heterogeneous", (4, 10), {}, seed=3))
    cls = allocators.get("double_auction")
    p = cls.resolve_params({})
    remote = run_ray(inst, cls, p, 3, actors=pool, agents_per_actor=per)
    ev = evaluate(inst, remote.plans, None, cls.market)
    assert remote.converged and ev["m_feasible"] and ev["m_tasks_assigned"] > 0
    assert ev["m_ir_violations"] == 0 and ev["m_holder_utility"] >= 0
    local = run_local(inst, cls, p, 3)
    assert sum(len(x.tasks) for x in local.plans) > 0


def _descendants(pid: int) -> set[int]:
    parent = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parent[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
    out, todo = set(), [pid]
    while todo:
        k = todo.pop()
        kids = [c for c, pp in parent.items() if pp == k and c not in out]
        out.update(kids)
        todo += kids
    return out


def test_the_embedded_ray_listens_on_loopback_only(pool):
    """Every TCP socket a process of this test's Ray listens on is on loopback (Ray 2.60 once
    bound GCS, raylet and workers to all interfaces and served Prometheus pages on the
    machine's external address)."""
    import os
    import re
    import subprocess

    ours = _descendants(os.getpid()) | {os.getpid()}
    listing = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    seen = []
    for line in listing.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & ours:
            local = line.split()[3]
            seen.append(local)
            host = local.rsplit(":", 1)[0].strip("[]")
            assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), line
    assert len(seen) >= 4  # GCS, raylet, the workers: there is something to look at
    assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"


def test_a_client_without_the_token_is_refused(pool):
    """Token authentication is on: a gRPC call to the GCS without the token is refused as
    unauthenticated; with it, it is served."""
    import grpc
    from ray._private.authentication.grpc_authentication_client_interceptor import (
        _get_authentication_metadata_tuple as token_metadata,
    )

    gcs = ray.get_runtime_context().gcs_address
    assert (Path.home() / ".ray" / "auth_token").exists()  # Ray's user-wide token file
    method = "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo"
    with grpc.insecure_channel(gcs) as ch:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = call(b"", timeout=10, metadata=token_metadata())
        assert isinstance(reply, bytes) and len(reply) > 0


@pytest.mark.parametrize("per", [1, 2])
def test_online_missions_on_ray_equal_local(pool, per):
    """The decentralised GA executed online with its agents in host actors, paced one call a
    period by the driver: the local team's visits, figures, counts and trace."""
    from actors.online import RayTeam
    from harness.execution import ExecSettings, execute

    inst = make_instance(recipe("mtsp", (12, 3), {}, seed=1))
    cls = allocators.get("ga_ms")
    p = cls.resolve_params({})
    settings = ExecSettings(period=0.1, trace_every=0.5)

    def never(sub, s):
        raise AssertionError("an online mission does not restart")

    local = execute(inst, cls, p, 5, settings, never)
    remote = execute(
        inst, cls, p, 5, settings, never, team_factory=lambda: RayTeam(inst, cls, p, 5, pool, per)
    )
    assert [q.to_dict() for q in remote.plans] == [q.to_dict() for q in local.plans]
    assert (remote.makespan, remote.distance, remote.rounds) == (
        local.makespan,
        local.distance,
        local.rounds,
    )
    assert remote.stats.summary() == local.stats.summary()
    assert remote.stats.pairs == local.stats.pairs
    assert remote.stats.per_round == local.stats.per_round
    assert remote.trace == local.trace and remote.complete
    assert remote.calls > 0 and len(remote.nodes) == 3


def test_an_online_agent_error_ends_the_mission_and_the_pool_is_refilled(pool):
    from actors.online import RayTeam
    from harness.execution import ExecSettings, execute

    inst = make_instance(recipe("mtsp", (8, 3), {}, seed=1))
    cls = allocators.get("ga_ms")
    p = {**cls.resolve_params({}), "population": 3}  # not a multiple of 8: the agents refuse
    with pytest.raises(AgentError):
        execute(
            inst,
            cls,
            p,
            5,
            ExecSettings(period=0.1),
            None,
            team_factory=lambda: RayTeam(inst, cls, p, 5, pool, 1),
        )
    ok = allocators.get("cbaa")
    small = make_instance(recipe("assignment", (5, 4), {"comm": "ring"}, seed=0))
    assert run_ray(small, ok, {}, seed=0, actors=pool).converged


@pytest.mark.parametrize("name", ["cbaa", "cbba", "hungarian"])
def test_beliefs_are_the_same_on_ray(pool, name):
    """Agents measure with noise seeded by (trial seed, draw, agent): the same beliefs, hence
    the same plans and counts, whichever process builds each agent."""
    from dataclasses import replace

    from harness.uncertainty import Belief, Uncertainty

    inst = make_instance(recipe("assignment", (9, 6), {"dim": 3}, seed=4))
    seen = replace(inst, belief=Belief(Uncertainty("lognormal"), seed=4, draw=2))
    cls = allocators.get(name)
    p = cls.resolve_params({})
    local = run_local(seen, cls, p, seed=4)
    remote = run_ray(seen, cls, p, seed=4, actors=pool)
    assert summary(remote) == summary(local)
    assert summary(local) != summary(run_local(inst, cls, p, seed=4))  # the beliefs mattered


def test_checkpoints_and_dynamic_missions_are_the_same_on_ray(pool):
    """An executed mission with late tasks, a failing agent, checkpoints and noisy beliefs:
    the same visits and events whether each re-plan runs locally or on Ray."""
    from dataclasses import replace

    from harness.execution import ExecSettings, execute
    from harness.uncertainty import Belief, Uncertainty

    inst = make_instance(recipe("mtsp", (12, 3), {}, seed=3))
    cls = allocators.get("cbba")
    p = cls.resolve_params({})
    settings = ExecSettings.from_dict({"late_tasks": 0.25, "fail_agents": 1, "checkpoints": 2})
    noise = Uncertainty("gaussian", rel=0.05)

    def local(sub, seed):
        return run_local(replace(sub, belief=Belief(noise, seed)), cls, p, seed=seed)

    def remote(sub, seed):
        return run_ray(replace(sub, belief=Belief(noise, seed)), cls, p, seed=seed, actors=pool)

    a, b = (execute(inst, cls, p, 5, settings, ep) for ep in (local, remote))
    assert [q.to_dict() for q in a.plans] == [q.to_dict() for q in b.plans]
    assert [e[:3] + e[4:] for e in a.events] == [e[:3] + e[4:] for e in b.events]
    assert a.checkpoints == b.checkpoints and len(a.events) >= 1
