"""Conformance checks any allocator must pass, shipped with the package so that an author can
run them on an allocator that lives in their own project:

    harness conformance my_package.my_allocators            # every allocator the module defines
    harness conformance my_package.my_allocators --allocator mine --family tdr

(the module is imported as ``HARNESS_EXTRA_ALLOCATORS`` would import it; docs/allocators.md).
Inside this repository ``pytest tests/test_conformance.py -k NAME`` runs the same checks on
every registered allocator. On each small instance of each family the allocator declares:

- the run converges within the round limit;
- every plan is conflict-free and feasible (the independent evaluator says so);
- the same seed gives the same plans, rounds and message counts (determinism).
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


class ConformanceError(AssertionError):
    """An allocator broke a conformance rule; the message names the allocator, instance and
    rule."""


def check_allocator(
    cls: type[Allocator], family: str, case: Any, params: dict[str, Any], seed: int = 0
) -> RunResult | None:
    """Run the checks on one instance; the first run's result, or None when the allocator
    declines the instance (``skip_reason``). Raises ConformanceError on a broken rule."""
    inst = make_instance(recipe(family, case, params, seed))
    alg_params = cls.resolve_params({})
    reason = cls.skip_reason(inst, alg_params)
    if reason:
        return None
    first = run_local(inst, cls, alg_params, seed=seed, max_rounds=5_000)
    if not first.converged:
        raise ConformanceError(f"{cls.name} did not converge on {inst.name} in 5,000 rounds")
    metrics = evaluate(inst, first.plans)
    if metrics["m_conflicts"]:
        raise ConformanceError(f"{cls.name}: {metrics['m_conflicts']} conflicts on {inst.name}")
    if not metrics["m_feasible"]:
        broken = {k: v for k, v in metrics.items() if k.startswith("m_violations_") and v}
        raise ConformanceError(f"{cls.name}: infeasible plans on {inst.name}: {broken}")
    again = run_local(inst, cls, alg_params, seed=seed, max_rounds=5_000)
    if [p.to_dict() for p in again.plans] != [p.to_dict() for p in first.plans]:
        raise ConformanceError(f"{cls.name}: the same seed gave other plans on {inst.name}")
    if (again.rounds, again.stats.messages, again.stats.bytes) != (
        first.rounds,
        first.stats.messages,
        first.stats.bytes,
    ):
        raise ConformanceError(
            f"{cls.name}: the same seed gave other rounds or message counts on {inst.name}"
        )
    return first


def cases_for(cls: type[Allocator], families: list[str] | None = None) -> list[tuple]:
    """(family, case, family params) of every shipped case of the families ``cls`` declares
    (or of those among ``families``)."""
    return [
        (family, case, params)
        for family in cls.families
        if families is None or family in families
        for case, params in CASES.get(family, [])
    ]
