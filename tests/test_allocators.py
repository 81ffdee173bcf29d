"""Known equivalences and bounds of the consensus auctions (Choi, Brunet, How 2009)."""

import numpy as np
import pytest

import allocators
from allocators.sga import sequential_greedy
from harness.evaluate import evaluate
from harness.exact import solve_exact
from harness.model import Instance
from harness.runtime_local import run_local
from harness.scenarios import make_instance


def run(name, inst, seed=0, **params):
    cls = allocators.get(name)
    result = run_local(inst, cls, cls.resolve_params(params), seed=seed, max_rounds=20_000)
    assert result.converged
    return result


def allocation(plans):
    return {p.agent: list(p.tasks) for p in plans}


def tie_free_tdr(n, m, seed, comm="full"):
    """A ``tdr`` instance whose windows open at 0, so every start time is an arrival time and
    no two (agent, task) scores are equal (continuous positions and speeds)."""
    base = make_instance({"family": "tdr", "size": [n, m], "seed": seed, "params": {"comm": comm}})
    tasks = dict(base.tasks)
    tasks["tw_start"] = np.zeros(n)
    tasks["tw_end"] = np.full(n, 1e6)
    return Instance.build(
        name=base.name + "-open",
        family="tdr",
        objective="max_tdr",
        agents=dict(base.agents),
        tasks=tasks,
        comm=base.comm,
        meta=base.meta,
    )


@pytest.mark.parametrize("seed", range(25))
def test_cbaa_equals_global_greedy_and_half_of_optimum(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(3, 30)), int(rng.integers(3, 30))
    comm = ["full", "ring", "rgg", "line"][seed % 4]
    inst = make_instance(
        {"family": "assignment", "size": [n, m], "seed": seed, "params": {"comm": comm}}
    )
    cbaa = run("cbaa", inst, seed)
    greedy = sequential_greedy(inst, "payoff")
    assert allocation(cbaa.plans) == allocation(greedy)
    opt = solve_exact(inst, 30)
    value = evaluate(inst, cbaa.plans)["m_objective"]
    assert value >= 0.5 * opt.value - 1e-9
    assert value <= opt.value + 1e-9


@pytest.mark.parametrize("comm", ["full", "ring", "rgg", "line", "grid"])
def test_cbba_equals_sequential_greedy_on_tie_free_tdr(comm):
    """Choi et al. state that under diminishing marginal gains CBBA agrees with sequential
    greedy. Measured here, it does on about 97% of tie-free instances; the rest are a known
    transient-blocking case (docs/algorithms.md): an agent loses a slot to a bid that rests on a
    task its bidder later loses, fills the slot with another task, and CBBA has no rule that makes
    it revisit a slot it still wins. The values then stay within 1% of sequential greedy."""
    equal, seeds = 0, range(30)
    for seed in seeds:
        rng = np.random.default_rng(100 + seed)
        m = int(rng.integers(2, 8))
        n = int(rng.integers(m, 6 * m))
        inst = tie_free_tdr(n, m, seed, comm)
        cbba = run("cbba", inst, seed)
        sga = sequential_greedy(inst, "tdr")
        equal += allocation(cbba.plans) == allocation(sga)
        got, ref = evaluate(inst, cbba.plans), evaluate(inst, sga)
        assert got["m_conflicts"] == 0 and got["m_feasible"]
        assert got["m_objective"] == pytest.approx(ref["m_objective"], rel=0.01)
    assert equal >= 0.9 * len(seeds)


def test_cbba_equals_sequential_greedy_when_agents_bid_once():
    # with a bundle limit of 1 no slot can be blocked and refilled: CBBA is CBAA, exactly greedy
    for seed in range(15):
        inst = make_instance(
            {
                "family": "tdr",
                "size": [12, 6],
                "seed": seed,
                "params": {"bundle_limit": 1, "comm": "ring"},
            }
        )
        assert allocation(run("cbba", inst, seed).plans) == allocation(
            sequential_greedy(inst, "tdr")
        )


@pytest.mark.parametrize("comm", ["ring", "line", "rgg", "grid", "star"])
@pytest.mark.parametrize("seed", range(6))
def test_cbba_converges_conflict_free_on_sparse_graphs_with_ties(comm, seed):
    # generated tdr instances have ties (agents arriving before a window opens all bid the full
    # value); the consensus tie rule must still leave no conflict
    inst = make_instance(
        {"family": "tdr", "size": [30, 8], "seed": seed, "params": {"comm": comm, "radius": 30.0}}
    )
    result = run("cbba", inst, seed)
    m = evaluate(inst, result.plans)
    assert m["m_conflicts"] == 0 and m["m_feasible"]
    assert result.rounds > inst.comm.diameter(inst.n_agents)


@pytest.mark.parametrize("objective", ["min_sum", "min_max"])
@pytest.mark.parametrize("seed", range(4))
def test_cbba_on_mtsp_covers_every_location(objective, seed):
    inst = make_instance(
        {
            "family": "mtsp",
            "size": [30, 4],
            "seed": seed,
            "params": {"comm": "ring", "objective": objective},
        }
    )
    m = evaluate(inst, run("cbba", inst, seed).plans)
    assert m["m_complete"] and m["m_conflicts"] == 0


def test_cbaa_on_a_line_needs_more_rounds_than_on_a_complete_graph():
    full = make_instance(
        {"family": "assignment", "size": [12, 12], "seed": 3, "params": {"comm": "full"}}
    )
    line = make_instance(
        {"family": "assignment", "size": [12, 12], "seed": 3, "params": {"comm": "line"}}
    )
    assert run("cbaa", line).rounds > run("cbaa", full).rounds
    assert allocation(run("cbaa", line).plans) == allocation(run("cbaa", full).plans)


@pytest.mark.parametrize("seed", range(8))
def test_greedy_nn_never_leaves_a_nearer_task_free(seed):
    inst = make_instance(
        {"family": "assignment", "size": [15, 10], "seed": seed, "params": {"comm": "ring"}}
    )
    plans = run("greedy_nn", inst, seed).plans
    d = np.linalg.norm(inst.agent_xyz()[:, None, :] - inst.task_xyz()[None, :, :], axis=-1)
    taken = {t for p in plans for t in p.tasks}
    free = [j for j in range(inst.n_tasks) if j not in taken]
    for p in plans:
        assert len(p.tasks) == 1  # 15 tasks for 10 agents: everyone is served
        assert all(d[p.agent, p.tasks[0]] <= d[p.agent, j] for j in free)


def test_messages_are_counted_per_delivery_with_pickled_sizes():
    inst = make_instance(
        {"family": "assignment", "size": [6, 5], "seed": 1, "params": {"comm": "ring"}}
    )
    r = run("cbaa", inst)
    s = r.stats.summary()
    assert s["messages"] == sum(r.stats.per_round) == sum(r.stats.pairs.values())
    assert s["by_type"]["Bids"]["count"] == s["messages"]
    assert s["bytes"] >= s["messages"] * 2 * 6 * 8  # two arrays of 6 values each, at least
    assert all(abs(a - b) in (1, 4) for a, b in r.stats.pairs)  # ring neighbours only


def test_pair_counts_in_bulk_equal_counting_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk counts (receiver lists, folded into arrays as they pile up, merged across runs)
    give the per-pair figures of counting every message its agent sent, one at a time."""
    from collections import Counter

    from harness.transport import MessageStats

    sent: Counter = Counter()
    base = allocators.get("cbaa")

    class Counted(base):  # type: ignore[misc, valid-type]
        def start(self):  # noqa: ANN202
            out = super().start()
            sent.update((self.id, dst) for dst, _ in out)
            return out

        def step(self, rnd, inbox):  # noqa: ANN001, ANN202
            out = super().step(rnd, inbox)
            sent.update((self.id, dst) for dst, _ in out)
            return out

    inst = make_instance(
        {"family": "assignment", "size": [6, 7], "seed": 2, "params": {"comm": "rgg"}}
    )
    monkeypatch.setattr(MessageStats, "fold_at", 5)  # fold every few sends
    r = run_local(inst, Counted, base.resolve_params({}), seed=3)
    again = run_local(inst, Counted, base.resolve_params({}), seed=4)
    r.stats.merge(again.stats)
    assert r.stats.folded
    assert r.stats.pairs == sent
    assert r.stats.pair_figures() == (len(sent), max(sent.values()))
    assert max(sent.values()) > 1  # some pair carried several messages
    assert sum(sent.values()) == r.stats.messages


def test_compiled_consensus_round_equals_the_reference_rules():
    """The numba kernel must apply exactly ``decide`` (Table 1, plain Python) message by message,
    on random tables with every mix of winners, bids and time stamps."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from allocators import _cbba_kernel as K
    from allocators import cbba as C

    @given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(1, 4))
    @settings(max_examples=300, deadline=None)
    def check(seed, i, n_msgs):
        rng = np.random.default_rng(seed)
        senders = np.array([k for k in rng.permutation(5) if k != i][:n_msgs], dtype=np.int64)
        tables = rng.integers(-1, 5, size=(n_msgs + 1, 30))
        # 2.0 and 2.0 + 1e-12 are tied bids (harness/numerics.py): the lower id must win them
        values = [1.0, 2.0, 2.0 + 1e-12, 3.0]
        bids = np.where(tables >= 0, rng.choice(values, size=tables.shape), -np.inf)
        stamps = rng.integers(-1, 4, size=(n_msgs + 1, 5)).astype(float)
        arrivals = 7 + np.sort(rng.random(n_msgs))
        y, z, s = bids[0].copy(), tables[0].copy(), stamps[0].copy()
        for r, k in enumerate(senders, 1):  # the reference: one task at a time in plain Python
            for j in range(30):
                if tables[r, j] != z[j] or bids[r, j] != y[j]:
                    action = C.decide(
                        i, int(k), bids[r, j], int(tables[r, j]), y[j], int(z[j]), stamps[r], s
                    )
                    if action == 1:
                        y[j], z[j] = bids[r, j], tables[r, j]
                    elif action == -1:
                        y[j], z[j] = -np.inf, -1
            s = np.maximum(s, stamps[r])
            s[k] = arrivals[r - 1]
        rows = np.arange(n_msgs)[::-1].copy()  # message r is row rows[r] of reversed tables
        ys, zs = bids[1:][::-1], tables[1:][::-1]
        same = (ys == ys[0]).all(axis=0) & (zs == zs[0]).all(axis=0)
        for cols in (np.flatnonzero(~same), np.arange(30)):  # the columns that differ, or all
            y2, z2, s2 = bids[0].copy(), tables[0].copy(), stamps[0].copy()
            K.consensus_kernel(
                i, y2, z2, s2, senders, arrivals, rows, ys, zs, stamps[1:][::-1],
                cols, ys[:, cols].copy(), zs[:, cols].copy(), C.TIE_RTOL,
            )  # fmt: skip
            assert y2.tolist() == y.tolist() and z2.tolist() == z.tolist()
            assert s2.tolist() == s.tolist()

    check()


def test_runtime_rejects_messages_to_non_neighbours():
    from harness.api import Allocator, Message, Plan, ProtocolError

    class Hello(Message):
        pass

    class Shouter(Allocator):
        name = "shouter"

        def start(self):
            return [(self.view.n_agents - 1 - self.id, Hello())] if self.id == 0 else []

        def step(self, rnd, inbox):
            return []

        def plan(self):
            return Plan(self.id)

    inst = make_instance(
        {"family": "assignment", "size": [4, 5], "seed": 0, "params": {"comm": "line"}}
    )
    with pytest.raises(ProtocolError, match="non-neighbour 4"):
        run_local(inst, Shouter, {}, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("comm", ["rgg", "grid"])
@pytest.mark.parametrize("seed", range(3))
def test_cbba_conflict_free_at_scale_on_sparse_graphs(comm, seed):
    # equal whole-round time stamps once left 2-6 conflicts on every 300x40 rgg instance; with
    # receipt times inside the round (the paper's continuous-time stamps) none remain
    inst = make_instance(
        {"family": "tdr", "size": [300, 40], "seed": seed, "params": {"comm": comm, "radius": 30.0}}
    )
    m = evaluate(inst, run("cbba", inst, seed).plans)
    assert m["m_conflicts"] == 0 and m["m_feasible"]


@pytest.mark.slow
@pytest.mark.parametrize("family,size", [("mtsp", [60, 8]), ("assignment", [200, 150])])
def test_decentralised_allocators_at_scale(family, size):
    inst = make_instance(
        {"family": family, "size": size, "seed": 5, "params": {"comm": "rgg", "radius": 30.0}}
    )
    for name in ("cbba", "greedy_nn") + (("cbaa",) if family == "assignment" else ()):
        m = evaluate(inst, run(name, inst, 5).plans)
        assert m["m_conflicts"] == 0 and m["m_feasible"], name
        if family == "mtsp":
            assert m["m_complete"], name


@pytest.mark.parametrize("name", ["ga_ms", "ga_mm", "ga_multi"])
@pytest.mark.parametrize("size", [(10, 5), (20, 4), (35, 5)])
def test_decentralised_ga_agrees_and_never_loses_its_seed(name, size):
    """Every agent ends with the same solution (one allocation, no conflict, all tasks),
    and elitism keeps the GA at least as good as the min-max nearest-neighbour seed under
    its own fitness."""
    from harness.api import agent_rng, local_views

    inst = make_instance(
        {"family": "mtsp", "size": list(size), "seed": 4, "params": {"objective": "min_max"}}
    )
    cls = allocators.get(name)
    p = cls.resolve_params({})
    result = run_local(inst, cls, p, 4)
    ev = evaluate(inst, result.plans)
    assert result.converged and ev["m_feasible"] and ev["m_complete"]
    assert all(plan.tasks for plan in result.plans)  # every agent at least one task
    probe = cls(local_views(inst)[0], p, agent_rng(4, 0))
    probe.starts = {v.agent_id: v.position for v in local_views(inst)}
    probe.ends = {v.agent_id: v.end for v in local_views(inst)}
    probe._setup()
    seed_cost = probe.cost(*probe.nearest_neighbours())
    order = np.array([j for plan in result.plans for j in plan.tasks])
    breaks = np.cumsum([len(plan.tasks) for plan in result.plans])[:-1]
    assert probe.cost(order, breaks) <= seed_cost + 1e-9


def test_check_outgoing_judges_few_items_as_it_judges_many():
    """A send of a few items is checked item by item, a longer one with set operations: both
    accept and refuse the same items, with the same message."""
    from collections import namedtuple

    import numpy as np

    from harness.api import Allocator, Message, Plan, ProtocolError
    from harness.transport import check_outgoing, make_agents

    class Hello(Message):
        pass

    class Quiet(Allocator):
        name = "quiet"

        def plan(self):
            return Plan(self.id)

    class Central(Quiet):
        name = "central"
        centralised = True

    inst = make_instance(
        {"family": "assignment", "size": [4, 5], "seed": 0, "params": {"comm": "line"}}
    )
    hi = Hello()
    pair = namedtuple("pair", "dst msg")
    bad = [
        [(3, hi)],  # agent 2's neighbours are 1 and 3: fine
        [(4, hi)],  # not a neighbour
        [(2, hi)],  # itself
        [(True, hi)],
        [(np.int64(1), hi)],
        [[1, hi]],
        [(1, hi, 0)],
        [(1, "hello")],
        [pair(1, hi)],
        [(-1, hi)],
    ]

    def outcome(agent, out):
        try:
            return ("ok", len(check_outgoing(agent, out, 5)))
        except ProtocolError as exc:
            return ("refused", str(exc))

    for cls in (Quiet, Central):
        agent = make_agents(inst, cls, {}, 0, [2])[0]
        ok = (1, hi) if cls is Quiet else (0, hi)
        for items in bad:
            few = outcome(agent, [ok, *items])
            many = outcome(agent, [ok] * 20 + items)
            assert few[0] == many[0], (cls.name, items, few, many)
            if few[0] == "refused":
                assert few == many
        assert outcome(agent, [(4, hi)])[0] == ("ok" if cls is Central else "refused")
