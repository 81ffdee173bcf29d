"""Sequential greedy assignment (SGA), the centralised baseline of the CBBA paper (Choi et al.
2009, §IV-C): repeatedly give the (agent, task) pair of largest marginal score to that agent,
at its best position, until no agent can take a task. Marginal scores come from the same
insertion rule as CBBA, so under diminishing marginal gains CBBA's result equals SGA's.
"""

from __future__ import annotations

import numpy as np

from allocators._central import Centralised
from allocators._routes import ROUTING_FAMILIES, Route, default_mode
from harness.api import Param, Plan, local_views
from harness.model import Instance
from harness.numerics import tied


def sequential_greedy(inst: Instance, mode: str) -> list[Plan]:
    routes = [Route(v, mode) for v in local_views(inst)]
    tw_start = inst.tasks["tw_start"]
    n = inst.n_tasks
    scores = np.empty((inst.n_agents, n))
    pos = np.zeros((inst.n_agents, n), dtype=np.int64)
    start = np.zeros((inst.n_agents, n))
    for a, r in enumerate(routes):
        scores[a], pos[a], start[a] = r.candidates()
    taken = np.zeros(n, dtype=bool)
    while True:
        best = scores.max()
        if not np.isfinite(best):
            break
        agents, tasks = np.nonzero(tied(scores, best))
        # ties (harness/numerics.py): lowest agent id, then earliest window start, then lowest task id
        order = np.lexsort((tasks, tw_start[tasks], agents))
        a, j = int(agents[order[0]]), int(tasks[order[0]])
        routes[a].insert(j, int(pos[a, j]), float(start[a, j]))
        taken[j] = True
        scores[:, j] = -np.inf
        scores[a], pos[a], start[a] = routes[a].candidates()
        scores[a, taken] = -np.inf
    return [Plan(a, list(r.tasks), list(r.times)) for a, r in enumerate(routes)]


class SGA(Centralised):
    name = "sga"
    summary = "centralised sequential greedy (CBBA's reference): best (agent, task) pair first"
    paper = "Choi, Brunet, How 2009, §IV-C (sequential greedy algorithm)"
    families = ("assignment", *ROUTING_FAMILIES)
    params = (
        Param("score", "auto", "marginal score", ("auto", "tdr", "min_sum", "min_max", "payoff")),
    )

    def solve(self, inst: Instance) -> list[Plan]:
        mode = default_mode(inst.objective, self.p["score"])
        return sequential_greedy(inst, mode)
