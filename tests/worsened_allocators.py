"""A deliberately worsened ``greedy_nn`` registered under its own name (``override = True``),
through HARNESS_EXTRA_ALLOCATORS: ``harness check`` must report it against a baseline."""

from __future__ import annotations

from allocators.greedy_nn import GreedyNN
from harness.api import Plan


class WorseGreedyNN(GreedyNN):
    override = True

    def plan(self) -> Plan:
        p = super().plan()
        if self.id == 0 and p.tasks:  # agent 0 forgets its last task
            return Plan(p.agent, p.tasks[:-1], p.times[:-1] if p.times else p.times)
        return p
