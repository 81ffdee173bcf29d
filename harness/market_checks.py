"""Empirical checks of a market outcome on small instances (docs/markets.md).

Truthfulness: each agent in turn acts on its valuations multiplied by each factor of
``FACTORS`` (the allocators' ``misreport_agent`` / ``misreport_factor`` parameters) while the
others stay truthful; the mechanism is re-run with the same seed and the evaluator computes
the agent's *true* utility. The check stores the largest gain over truth-telling, which
agent and which factor. Zero means no profitable misreport was found among those tried.

Stability: in the final outcome, could an agent raise its utility by switching task
unilaterally, at the prices of the outcome? For every agent ``i`` and every task ``j`` it does
not serve, ``i`` drops one of its tasks (or none, if it has room) and inserts ``j`` at its best
position; ``j`` comes at its current price if another agent serves it, and at no payment if
it is free. The check stores the Nash-stability flag and the largest gain.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from harness.api import Allocator, Plan
from harness.evaluate import evaluate
from harness.geometry import capable
from harness.model import Instance
from harness.runtime_local import run_local

FACTORS = (0.5, 0.75, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.25, 1.5, 2.0)
TOL = 1e-6


def utilities(inst: Instance, plans: list[Plan], side: str) -> np.ndarray:
    return np.array(json.loads(evaluate(inst, plans, None, side)["trial_utilities"]))


def truthfulness(
    inst: Instance,
    cls: type[Allocator],
    params: dict[str, Any],
    seed: int,
    truthful: list[Plan],
    factors: tuple[float, ...] = FACTORS,
    deadline: float | None = None,
) -> dict[str, Any]:
    """``deadline`` (a ``time.monotonic()`` value): stop there; ``m_truth_complete`` says
    whether every misreport was tried."""
    side = cls.market
    base = utilities(inst, truthful, side)
    best = (0.0, -1, 1.0)
    runs = 0
    for agent in range(inst.n_agents):
        if deadline is not None and time.monotonic() > deadline:
            break
        for f in factors:
            runs += 1
            lie = {**params, "misreport_agent": agent, "misreport_factor": f}
            plans = run_local(inst, cls, lie, seed).plans
            gain = float(utilities(inst, plans, side)[agent] - base[agent])
            if gain > best[0] + TOL:
                best = (gain, agent, f)
    return {
        "m_truth_gain": best[0],
        "m_truth_agent": best[1],
        "m_truth_factor": best[2],
        "m_truth_runs": runs,
        "m_truth_complete": runs == inst.n_agents * len(factors),
    }


def stability(inst: Instance, plans: list[Plan], side: str) -> dict[str, Any]:
    by_agent = {p.agent: p for p in plans}
    plans = [by_agent.get(a, Plan(a)) for a in range(inst.n_agents)]
    base = utilities(inst, plans, side)
    price_of: dict[int, float] = {}
    for p in plans:
        for k, j in enumerate(p.tasks):
            if p.prices is not None:
                price_of[j] = float(p.prices[k])
    claims = np.zeros(inst.n_tasks, dtype=np.int64)
    for p in plans:
        claims[p.tasks] += 1
    team = inst.tasks["team"]
    can = capable(inst)
    limit = inst.agents["max_tasks"]
    best_gain, who = 0.0, -1
    for p in plans:
        i = p.agent
        own = list(p.tasks)
        drops: list[int | None] = list(range(len(own)))
        if not limit[i] or len(own) < limit[i]:
            drops.append(None)
        for j in range(inst.n_tasks):
            if j in own or not can[i, j]:
                continue
            free = claims[j] < team[j]
            price = 0.0 if free else price_of.get(j, 0.0)
            for drop in drops:
                rest = [t for k, t in enumerate(own) if k != drop]
                rest_prices = (
                    [float(p.prices[k]) for k in range(len(own)) if k != drop]
                    if p.prices is not None
                    else [0.0] * len(rest)
                )
                for pos in range(len(rest) + 1):
                    seq = rest[:pos] + [j] + rest[pos:]
                    prices = rest_prices[:pos] + [price] + rest_prices[pos:]
                    trial = list(plans)
                    trial[i] = Plan(i, seq, None, None, prices)
                    gain = float(utilities(inst, trial, side)[i] - base[i])
                    if gain > best_gain + TOL:
                        best_gain, who = gain, i
    return {"m_stable": best_gain <= TOL, "m_stability_gain": best_gain, "m_unstable_agent": who}
