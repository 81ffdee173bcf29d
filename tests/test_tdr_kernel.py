"""The compiled ``tdr`` route (allocators/_tdr_kernel.py) against the plain-Python rules, and
the shared round columns (harness.api.columns) against stacking each inbox alone."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import allocators
from allocators.cbba import WinningBids
from harness.api import Inbox, RoundBatch, round_batch
from harness.numerics import tied
from harness.scenarios import make_instance
from harness.transport import make_agents


def _agents(size: list[int], seed: int, **params: object) -> list:
    inst = make_instance({"family": "tdr", "size": size, "seed": seed, "params": params})
    cls = allocators.get("cbba")
    return make_agents(inst, cls, cls.resolve_params({}), seed)


def _fresh_rows(route) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """The gap rows of ``route`` computed from nothing."""
    other = copy.deepcopy(route)
    other._G = None
    other._tdr_start()
    L = len(route.tasks)
    return other._G[: L + 1], other._E[: L + 1]


@pytest.mark.parametrize("seed", range(6))
def test_compiled_bundle_construction_equals_the_python_rule(seed):
    """From random winning-bid tables and half-built routes, the compiled construction adds
    the same tasks at the same places and times as the Python loop, with bids equal within
    the tie tolerance (only ``exp`` may differ, in its last bit)."""
    rng = np.random.default_rng(seed)
    agents = _agents([40 + 10 * seed, 6], seed, bundle_limit=[0, 3, 8][seed % 3])
    added = 0
    for a in agents:
        n = a.view.tasks.n
        others = rng.integers(-1, len(agents), n)
        a.y[:] = np.where(others >= 0, rng.uniform(0, 120, n), -np.inf)
        a.z[:] = others
        if seed % 2:  # start from a route already holding a task or two
            a.build_bundle_python()
            a.route.remove(set(a.bundle[1:]))
            a.bundle = a.bundle[:1]
        ref = copy.deepcopy(a)
        assert a.build_bundle() == ref.build_bundle_python()
        added += len(a.bundle)
        assert a.bundle == ref.bundle
        assert a.route.tasks == ref.route.tasks and a.route.times == ref.route.times
        assert (a.z == ref.z).all() and tied(a.y, ref.y).all()
        assert a.route.load == ref.route.load
        G, E = _fresh_rows(a.route)
        L = len(a.route.tasks)
        assert (a.route._E[: L + 1] == E).all()
        assert tied(a.route._G[: L + 1], G).all()
    assert added >= len(agents)  # the rule had choices to make


@pytest.mark.parametrize("seed", range(4))
def test_removing_tasks_leaves_the_rows_a_fresh_route_computes(seed):
    """Removing any set of stops keeps the rows of gaps whose neighbours stayed neighbours
    and recomputes the others: the result is what a route built from nothing holds."""
    rng = np.random.default_rng(seed)
    removed = 0
    for a in _agents([60, 4], seed, bundle_limit=12):
        a.build_bundle()
        if len(a.route.tasks) < 2:
            continue
        drop = set(rng.choice(a.route.tasks, rng.integers(1, len(a.route.tasks)), replace=False))
        a.route.remove({int(t) for t in drop})
        removed += len(drop)
        G, E = _fresh_rows(a.route)
        L = len(a.route.tasks)
        assert (a.route._G[: L + 1] == G).all() and (a.route._E[: L + 1] == E).all()
    assert removed


def _message(rng: np.random.Generator, n: int) -> WinningBids:
    return WinningBids(rng.random(n), rng.integers(-1, 5, n), rng.random(5))


def _columns(batch: RoundBatch, box: list) -> tuple:
    rows = batch.rows(WinningBids, box)
    return rows, [batch.column(WinningBids, f) for f in ("y", "z", "s")]


def test_round_columns_equal_stacking_each_inbox_alone():
    """Three receivers share one RoundBatch; each one's rows pick out exactly its own messages,
    in its own order, also when a receiver brings messages the batch has not seen yet."""
    rng = np.random.default_rng(0)
    msgs = [_message(rng, 7) for _ in range(5)]
    batch = RoundBatch()
    boxes = [
        Inbox([(1, msgs[1]), (2, msgs[2]), (3, msgs[3])], batch),
        Inbox([(4, msgs[4]), (0, msgs[0])], batch),
        Inbox([(3, msgs[3]), (0, msgs[0]), (2, msgs[2]), (4, msgs[4])], batch),
    ]
    for box in boxes:
        rows, mats = _columns(round_batch(box), box)
        alone_rows, alone = _columns(round_batch(list(box)), list(box))
        assert alone_rows.tolist() == list(range(len(box)))
        for m, a in zip(mats, alone, strict=True):
            assert (m[rows] == a).all()
            assert not m.flags.writeable
    assert len(batch.column(WinningBids, "y")) == 5  # one row per distinct message


def test_local_runtime_hands_agents_inboxes_that_share_the_round():
    """The local runtime's inboxes of one round carry one batch; a broadcast is one row."""
    from harness.runtime_local import run_local

    seen: list[tuple[int, int, int]] = []
    inst = make_instance({"family": "tdr", "size": [12, 4], "seed": 1, "params": {}})
    cls = allocators.get("cbba")

    class Spy(cls):
        def step(self, rnd, inbox):  # noqa: ANN001, ANN202
            if inbox:
                batch = round_batch(inbox)
                batch.rows(WinningBids, inbox)
                ys = batch.column(WinningBids, "y")
                seen.append((rnd, id(inbox.batch), len(ys)))
            return super().step(rnd, inbox)

    run_local(inst, Spy, cls.resolve_params({}), seed=1, max_rounds=50)
    by_round: dict[int, set[int]] = {}
    for rnd, batch, _ in seen:
        by_round.setdefault(rnd, set()).add(batch)
    assert by_round and all(len(b) == 1 for b in by_round.values())
    assert max(k for *_, k in seen) <= 4  # four agents broadcast: at most four rows
