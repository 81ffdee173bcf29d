"""Conformance checks any allocator must pass; an author of a new allocator runs
``pytest tests/test_conformance.py -k NAME`` (every registered allocator is picked up).

- every plan is conflict-free and feasible on each family the allocator declares;
- the same seed gives the same plans, rounds and message counts (determinism);
- the run converges within the round limit.
"""

from __future__ import annotations

from typing import Any

from harness.api import Allocator
from harness.evaluate import evaluate
from harness.runtime_local import RunResult, run_local
from harness.scenarios import make_instance

#: small instances of each family, (family, size or instance name, family params)
CASES: dict[str, list[tuple[Any, dict[str, Any]]]] = {
    "assignment": [
        ((6, 4), {}),
        ((4, 6), {"comm": "ring"}),
        ((12, 12), {"comm": "rgg", "radius": 30.0}),
    ],
    "tdr": [((9, 3), {}), ((16, 5), {"comm": "line"}), ((20, 6), {"comm": "rgg", "radius": 35.0})],
    "mtsp": [
        ((10, 3), {}),
        ((9, 3), {"comm": "ring", "objective": "min_max"}),
        ((15, 5), {"return_to_start": True}),
    ],
    "heterogeneous": [((4, 10), {}), ((5, 16), {"team_max": 3, "req_max": 0.3})],
    "logistics": [((6, 3), {}), ((10, 5), {})],
    "li_lim": [("lc101", {})],
    "cordeau_darp": [("a2-16", {})],
    "tsplib": [("eil51", {"agents": 3})],
    "mtsp_lkh3": [("eil51-m3", {})],
    "solomon": [("C101", {"vehicles": 12})],
}


def recipe(family: str, case: Any, params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    if isinstance(case, tuple):
        return {"family": family, "size": list(case), "seed": seed, "params": params}
    return {"family": family, "instance": case, "params": params}


def check_allocator(
    cls: type[Allocator], family: str, case: Any, params: dict[str, Any], seed: int = 0
) -> RunResult:
    inst = make_instance(recipe(family, case, params, seed))
    alg_params = cls.resolve_params({})
    reason = cls.skip_reason(inst, alg_params)
    if reason:
        return None
    first = run_local(inst, cls, alg_params, seed=seed, max_rounds=5_000)
    assert first.converged, f"{cls.name} did not converge on {inst.name}"
    metrics = evaluate(inst, first.plans)
    assert metrics["m_conflicts"] == 0, (
        f"{cls.name}: {metrics['m_conflicts']} conflicts on {inst.name}"
    )
    assert metrics["m_feasible"], f"{cls.name}: infeasible plan on {inst.name}: {metrics}"
    again = run_local(inst, cls, alg_params, seed=seed, max_rounds=5_000)
    assert [p.to_dict() for p in again.plans] == [p.to_dict() for p in first.plans]
    assert (again.rounds, again.stats.messages, again.stats.bytes) == (
        first.rounds,
        first.stats.messages,
        first.stats.bytes,
    )
    return first
