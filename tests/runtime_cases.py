"""The cases both runtimes are compared on, shared by the Ray tests and the in-process host
tests: one sparse case per family for every synchronous allocator, fault profiles, and the
summary of a result that must be equal across runtimes."""

import allocators
from harness.conformance import CASES


def ray_case(family):
    """One case per family: a sparse graph where the family has one (relaying over several
    hops is where the runtimes could differ), else the first; the conformance suite covers
    the other cases on the local runtime."""
    cases = [c for c in CASES[family] if isinstance(c[0], tuple) and c[0][1] <= 12]
    sparse = [c for c in cases if c[1].get("comm", "full") != "full"]
    return (sparse or cases)[0]


# every synchronous allocator on each generated family it declares
PAIRS = [
    (name, family, *ray_case(family))
    for name, cls in allocators.available().items()
    if cls.synchronous and name != "milp"
    for family in cls.families
    if family in ("assignment", "tdr", "mtsp", "heterogeneous", "logistics")
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
        "wire": dict(result.wire),
        "crashed": list(result.crashed),
    }


FAULTS = {
    "drop": {"drop": 0.2},
    "delay": {"delay": {"p": 0.4, "dist": "uniform", "min": 1, "max": 3}},
    "geometric": {"delay": {"p": 0.3, "dist": "geometric", "mean": 2.0}},
    "dup-reorder": {"duplicate": 0.3, "reorder": True},
    "partition": {"partition": {"groups": "halves", "from": 0, "to": 4}},
    "crash": {"crash": [{"agent": 1, "round": 2}]},
    # every agent crashes in round 1: the messages of round 0 are lost, the trial ends there
    "all crash at 1": {"crash": [{"agent": a, "round": 1} for a in range(5)]},
    "all": {
        "drop": 0.1,
        "duplicate": 0.1,
        "reorder": True,
        "delay": {"p": 0.2, "max": 2},
        "partition": {"groups": [[0, 1], [2, 3]], "from": 1, "to": 3},
        "crash": [{"agent": 4, "round": 3}],
    },
}
FAULT_CASES = [
    ("cbba", "tdr", (14, 6), {"comm": "ring"}),
    ("cbaa", "assignment", (8, 6), {"comm": "line"}),
    ("sga", "tdr", (10, 5), {}),
]
