"""Hungarian algorithm: the optimal linear assignment (Kuhn 1955), centralised, on the
``100/distance`` payoffs; SciPy's ``linear_sum_assignment`` (Crouse 2016) does the solve."""

from __future__ import annotations

from allocators._central import Centralised
from harness.api import Plan
from harness.model import Instance


class Hungarian(Centralised):
    name = "hungarian"
    summary = "centralised optimal single assignment (Hungarian / Jonker-Volgenant)"
    paper = "Kuhn. The Hungarian method for the assignment problem. Naval Res. Logist. Q. 2, 1955"
    families = ("assignment",)

    def solve(self, inst: Instance) -> list[Plan]:
        from harness.exact import optimal_assignment  # with PuLP: loaded when first solved

        return optimal_assignment(inst)
