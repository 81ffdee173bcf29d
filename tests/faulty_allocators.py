"""Allocators that misbehave on purpose, registered through HARNESS_EXTRA_ALLOCATORS, to test
that the coordinator stores errors and timeouts and goes on."""

from __future__ import annotations

from allocators.cbaa import CBAA
from harness.api import Allocator, Param, Plan


class Crashing(CBAA):
    name = "test_crash"
    summary = "CBAA that raises in a given round"
    paper = "test fixture"
    params = (Param("round", 1, "round in which to raise"),)

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        if rnd >= self.p["round"]:
            raise ValueError(f"deliberate failure in round {rnd}")
        return super().step(rnd, inbox)


class Endless(Allocator):
    name = "test_endless"
    summary = "never converges and keeps one CPU busy in each round"
    paper = "test fixture"
    families = ("assignment", "tdr")
    params = (Param("spin", 0, "busy iterations per round (0: none)"),)

    def step(self, rnd, inbox):  # noqa: ANN001, ANN201
        total = 0
        for i in range(self.p["spin"]):
            total += i
        return []

    @property
    def converged(self) -> bool:
        return False

    def plan(self) -> Plan:
        return Plan(self.id)
