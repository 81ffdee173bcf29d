import pytest

import allocators
from tests.conformance import CASES, check_allocator

PAIRS = [
    (name, family, case, params)
    for name, cls in allocators.available().items()
    for family in cls.families
    for case, params in CASES.get(family, [])
]


@pytest.mark.parametrize(
    "name,family,case,params", PAIRS, ids=[f"{p[0]}-{p[1]}-{p[2]}" for p in PAIRS]
)
def test_allocator_conformance(name, family, case, params):
    check_allocator(allocators.get(name), family, case, params, seed=3)


def test_every_allocator_declares_its_metadata():
    for name, cls in allocators.available().items():
        assert cls.name == name and cls.summary and cls.paper and cls.families
        cls.resolve_params({})  # defaults are valid
