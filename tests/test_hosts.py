"""The Ray hosts' round logic (actors.hosts.SyncHosts) in one process: agents packed in 1, 2
or 3 hosts, packets pickled between them and delivered in shuffled orders, give the local
runtime's plans, rounds, message counts and faults. The Ray tests run the same logic in real
actors; these cover more cases and orders than real Ray can in the time."""

import pytest

import allocators
from actors.hosts import emulate_hosts
from actors.runtime import assemble
from harness.conformance import recipe
from harness.faults import parse_faults
from harness.runtime_local import run_local
from harness.scenarios import make_instance
from tests.runtime_cases import FAULT_CASES, FAULTS, PAIRS, summary


def _hosted(inst, cls, p, seed, hosts, order_seed=None, faults=None, max_rounds=10_000):
    extra = {} if faults is None else {"faults": faults}
    results, packets = emulate_hosts(
        inst, cls, p, seed, hosts, max_rounds=max_rounds, order_seed=order_seed, **extra
    )
    return assemble(results, max_rounds), packets


@pytest.mark.parametrize(
    "name,family,case,params", PAIRS, ids=[f"{p[0]}-{p[1]}-{p[2]}" for p in PAIRS]
)
def test_packed_hosts_equal_local(name, family, case, params):
    inst = make_instance(recipe(family, case, params, seed=2))
    cls = allocators.get(name)
    p = cls.resolve_params({})
    local = summary(run_local(inst, cls, p, seed=2))
    for hosts, order in [(1, None), (2, None), (3, 7), (inst.n_agents, 11)]:
        result, packets = _hosted(inst, cls, p, 2, hosts, order_seed=order)
        assert summary(result) == local, (hosts, order)
        assert (packets > 0) == (hosts > 1)


@pytest.mark.parametrize("profile", list(FAULTS))
@pytest.mark.parametrize("name,family,size,params", FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_packed_hosts_equal_local_under_faults(profile, name, family, size, params):
    inst = make_instance(recipe(family, size, params, seed=3))
    cls = allocators.get(name)
    p = cls.resolve_params({})
    faults = parse_faults(FAULTS[profile])
    local = summary(run_local(inst, cls, p, seed=3, faults=faults))
    for hosts, order in [(2, 1), (3, 2), (inst.n_agents, 3)]:
        result, _ = _hosted(inst, cls, p, 3, hosts, order_seed=order, faults=faults)
        assert summary(result) == local, (hosts, order)


def test_round_limit_on_packed_hosts():
    inst = make_instance(recipe("tdr", (16, 5), {"comm": "line"}, seed=1))
    cls = allocators.get("cbba")
    p = cls.resolve_params({})
    local = run_local(inst, cls, p, seed=1, max_rounds=3)
    result, _ = _hosted(inst, cls, p, 1, 2, order_seed=5, max_rounds=3)
    assert not local.converged and summary(result) == summary(local)


def test_a_broadcast_travels_once_per_destination_host():
    """The message-only allocator on a full graph: each agent's round is one shared item, so
    a packet to a host carries each message object once, whatever the host's agent count."""
    import pickle

    from actors.hosts import AgentHost, SyncHosts
    from harness.transport import make_agents

    inst = make_instance(recipe("assignment", (1, 40), {"comm": "full"}))
    cls = allocators.get("chatter")
    p = cls.resolve_params({"rounds": 2})
    directory = [a // 20 for a in range(40)]
    made = make_agents(inst, cls, p, 0, list(range(20)))
    group = SyncHosts({a.id: AgentHost(a, 40, 0, 100) for a in made}, directory, 0)
    packets = group.start()
    assert list(packets) == [1]
    packet = packets[1]
    assert len(packet) == 20  # one round output per sending agent, not one per receiver
    data = pickle.dumps(packet, protocol=5)
    assert data.count(b"Ping") == 1  # the class named once; each message object pickled once
    assert all(type(out[5]) is tuple and len(out[5]) == 1 for out in packet)


ASYNC_FAULTS = [{}, {"drop": 0.2, "duplicate": 0.2}, {"delay": {"p": 0.3, "max": 2}}]


@pytest.mark.parametrize("fault", ASYNC_FAULTS, ids=["none", "drop-dup", "delay"])
@pytest.mark.parametrize("hosts", [1, 3, 10])
def test_asynchronous_hosts_reach_the_synchronous_answer(hosts, fault):
    """Async CBAA on packed asynchronous hosts, packets in shuffled orders: the synchronous
    CBAA's assignment, every copy delivered and counted once, pair counts that add up."""
    from actors.runtime import assemble_async

    inst = make_instance(recipe("assignment", (12, 10), {"comm": "rgg", "radius": 40.0}, seed=6))
    sync = run_local(inst, allocators.get("cbaa"), {}, seed=6)
    cls = allocators.get("cbaa_async")
    faults = parse_faults(fault)
    results, _ = emulate_hosts(inst, cls, {}, 6, hosts, faults=faults, order_seed=hosts)
    remote = assemble_async(results)
    assert [p.tasks for p in remote.plans] == [p.tasks for p in sync.plans]
    assert remote.converged
    w = remote.wire
    assert remote.stats.messages == w["sent"] - w["dropped"] + w["duplicated"] > 0
    assert sum(remote.stats.pairs.values()) == remote.stats.messages
    edges = {(a, b) for a in range(10) for b in inst.comm.neighbours(10)[a]}
    assert set(remote.stats.pairs) <= edges


def test_asynchronous_chatter_sends_what_the_synchronous_one_sends():
    """The asynchronous message-only allocator on hosts: as many messages, pairs and bytes as
    the synchronous one on the local runtime; a broadcast travels as one copy per host."""
    from actors.runtime import assemble_async

    inst = make_instance(recipe("assignment", (1, 30), {"comm": "full"}))
    sync = run_local(inst, allocators.get("chatter"), {"rounds": 4}, seed=0)
    cls = allocators.get("chatter_async")
    results, packets = emulate_hosts(inst, cls, {"rounds": 4}, 0, 3, order_seed=1)
    remote = assemble_async(results)
    assert remote.stats.summary() == sync.stats.summary()
    assert remote.stats.pairs == sync.stats.pairs
    assert remote.converged and packets > 0


@pytest.mark.parametrize("hosts", [1, 2, 3])
def test_hosts_stop_without_waiting_out_the_diameter(hosts):
    """On a line of 30 agents (diameter 29) the agents' quiet counts alone would run 30 more
    rounds after the last message (round 2); the hosts' quiet notes stop every agent sooner
    (one host: the round after; several: agents far from a host boundary may have run ahead
    while their host waited for the others), and the results equal the local runtime's."""
    inst = make_instance(recipe("assignment", (1, 30), {"comm": "line"}))
    cls = allocators.get("chatter")
    p = cls.resolve_params({"rounds": 2})
    local = summary(run_local(inst, cls, p, seed=0))
    results, _ = emulate_hosts(inst, cls, p, 0, hosts, order_seed=hosts)
    assert summary(assemble(results, 10_000)) == local
    longest = max(len(r["quiet"]) for r in results.values())  # rounds 0.. run
    assert longest < 2 + 29 + 1
    assert hosts > 1 or longest == 3
