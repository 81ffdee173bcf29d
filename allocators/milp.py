"""The exact optimum as an allocator: the leader solves the instance's MILP with PuLP/CBC
(see ``harness.exact``) within ``time_limit`` seconds and hands out the plans."""

from __future__ import annotations

from allocators._central import Centralised
from harness.api import Param, Plan
from harness.model import Instance


class MILP(Centralised):
    name = "milp"
    summary = "centralised exact MILP (PuLP + CBC); best found plan when time-limited"
    paper = "exact formulations in harness/exact.py"
    families = ("assignment", "tdr", "mtsp", "tsplib", "mtsp_lkh3", "logistics")
    params = (Param("time_limit", 30.0, "CBC time limit in seconds", low=0.1),)

    @classmethod
    def skip_reason(cls, inst: Instance, params: dict) -> str | None:
        from harness.exact import MAX_EXACT_TASKS

        if inst.objective != "max_payoff" and inst.n_tasks > MAX_EXACT_TASKS:
            return f"exact model limited to {MAX_EXACT_TASKS} tasks, instance has {inst.n_tasks}"
        return None

    def solve(self, inst: Instance) -> list[Plan]:
        from harness.exact import solve_exact

        result = solve_exact(inst, time_limit=self.p["time_limit"])
        if result.status not in ("optimal", "feasible"):
            raise RuntimeError(f"exact solver gave no plan: {result.status} {result.note}".strip())
        return result.plans
