"""Hungarian algorithm: the optimal linear assignment (Kuhn 1955), centralised, on the
``100/distance`` payoffs; SciPy's ``linear_sum_assignment`` (Crouse 2016) does the solve."""

from __future__ import annotations

import numpy as np

from allocators._central import Centralised
from harness.api import Plan
from harness.geometry import capable, payoff_matrix
from harness.model import Instance


def optimal_assignment(inst: Instance) -> list[Plan]:
    from scipy.optimize import linear_sum_assignment

    payoff = np.where(capable(inst), payoff_matrix(inst), -1e18)
    rows, cols = linear_sum_assignment(payoff, maximize=True)
    plans = [Plan(a) for a in range(inst.n_agents)]
    for a, j in zip(rows.tolist(), cols.tolist(), strict=True):
        if payoff[a, j] > -1e17:
            plans[a].tasks.append(j)
    return plans


class Hungarian(Centralised):
    name = "hungarian"
    summary = "centralised optimal single assignment (Hungarian / Jonker-Volgenant)"
    paper = "Kuhn. The Hungarian method for the assignment problem. Naval Res. Logist. Q. 2, 1955"
    families = ("assignment",)

    def solve(self, inst: Instance) -> list[Plan]:
        return optimal_assignment(inst)
