"""Hungarian algorithm: the optimal linear assignment (Kuhn 1955), centralised, on the
``100/distance`` payoffs; SciPy's ``linear_sum_assignment`` (Crouse 2016) does the solve.

Under uncertainty (docs/uncertainty.md) the leader solves with every agent's own measured
payoffs, which each agent adds to its report: the "cost matrix with uncertainties" the CAGA
paper gives its baselines (the leader's own measurements would be one sensor for the team)."""

from __future__ import annotations

from typing import Any

import numpy as np

from allocators._central import Centralised, MeasuredReport
from harness.api import Plan
from harness.geometry import payoff
from harness.model import Instance


class Hungarian(Centralised):
    name = "hungarian"
    summary = "centralised optimal single assignment (Hungarian / Jonker-Volgenant)"
    paper = "Kuhn. The Hungarian method for the assignment problem. Naval Res. Logist. Q. 2, 1955"
    families = ("assignment",)

    def measured(self) -> tuple[float, ...] | None:
        view = self.view
        if "uncertainty" not in view.public:  # no noise: the leader's table is everyone's
            return None
        row = payoff(view.tasks["value"], view.tasks.from_point(view.position))
        return tuple(float(x) for x in np.where(view.capable(), row, -1e18))

    def solve(self, inst: Instance) -> list[Plan]:
        from harness.exact import best_assignment, optimal_assignment  # loads PuLP

        reports: dict[int, Any] = self.solving
        if reports and all(isinstance(r, MeasuredReport) for r in reports.values()):
            return best_assignment(np.array([reports[a].payoffs for a in sorted(reports)]))
        return optimal_assignment(inst)
