"""The economy of a market trial (docs/markets.md): payments, utilities, welfare, and the
task-fitness model of the heterogeneous family (AHP weights, attribute fitness).

The evaluator calls :func:`market_metrics` with each agent's gross value (what its served
tasks produce, as the evaluator replays them) and cost (a fixed cost per task plus travel
at the agent's cost per distance). Prices come from the plans. Who pays whom is the
allocator's side:

``forward``  agents buy the right to do tasks (FMMRA, the single-item auctions): agent
             utility = value - cost - price; the task holders receive the prices.
``reverse``  task holders buy service (Contract Net, the combinatorial reverse auction, the
             double auction): agent utility = price - cost; holder utility = value - price.

Social welfare is value - cost in both; prices are transfers and cancel out of it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from harness.api import Plan
from harness.model import Instance
from harness.numerics import least_index

TOL = 1e-6
SIDES = ("forward", "reverse")

#: Saaty's random consistency index RI by matrix order (1-10)
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49)
#: the 1-9 scale of pairwise importance and its reciprocals
SAATY = np.array(
    [1 / 9, 1 / 8, 1 / 7, 1 / 6, 1 / 5, 1 / 4, 1 / 3, 1 / 2, 1, 2, 3, 4, 5, 6, 7, 8, 9]
)


def ahp_weights(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights (the normalised principal eigenvector) and consistency ratio
    ``CR = CI / RI`` with ``CI = (lambda_max - k) / (k - 1)`` of a judgment matrix."""
    a = np.asarray(matrix, dtype=np.float64)
    k = a.shape[0]
    values, vectors = np.linalg.eig(a)
    top = int(np.argmax(values.real))
    w = np.abs(vectors[:, top].real)
    w = w / w.sum()
    if k <= 2:
        return w, 0.0
    ci = (values[top].real - k) / (k - 1)
    return w, float(ci / RANDOM_INDEX[k - 1])


def random_judgment_matrix(rng: np.random.Generator, k: int, noise: float) -> np.ndarray:
    """A reciprocal judgment matrix on the 1-9 scale, as an expert with a hidden priority
    vector would fill it: ``a_pq`` is the scale value nearest to ``w_p / w_q`` times a
    log-normal judgment error of spread ``noise``."""
    hidden = rng.dirichlet(np.ones(k))
    a = np.ones((k, k))
    for p in range(k):
        for q in range(p + 1, k):
            # scalar libm exp and log: NumPy's SIMD ones differ in the last bit by CPU
            ratio = hidden[p] / hidden[q] * math.exp(float(rng.normal(0.0, noise)))
            v = SAATY[least_index([abs(math.log(s) - math.log(ratio)) for s in SAATY])]
            a[p, q], a[q, p] = v, 1.0 / v
    return a


def ahp_sample(
    rng: np.random.Generator, k: int, noise: float = 0.5, max_tries: int = 1000
) -> tuple[np.ndarray, float, int]:
    """Draw judgment matrices until one has CR < 0.1 (the seed paper's acceptance rule);
    return its weights, its CR and how many were drawn."""
    for tries in range(1, max_tries + 1):
        w, cr = ahp_weights(random_judgment_matrix(rng, k, noise))
        if cr < 0.1:
            return w, cr, tries
    raise ValueError(f"no judgment matrix with CR < 0.1 in {max_tries} draws (noise {noise})")


def fitness_matrix(inst: Instance) -> np.ndarray | None:
    """Task fitness ``F[i, j] = sum_k w[j, k] * s[i, j, k]`` (agents x tasks) for instances
    whose public data carry AHP weights; the attribute fitness ``s`` rises linearly from
    ``lo`` when the agent just meets the requirement to ``hi`` at the top capability level.
    None for instances without a fitness model."""
    pub = inst.meta.get("public", {})
    if "ahp_weights" not in pub or inst.agent_caps is None:
        return None
    w = np.asarray(pub["ahp_weights"], dtype=np.float64)
    lo, hi = pub["fitness_range"]
    top = float(pub["cap_max"])
    a = inst.agent_caps[:, None, :]
    r = inst.task_caps[None, :, :]
    s = lo + (hi - lo) * np.clip((a - r) / np.maximum(top - r, 1e-12), 0.0, 1.0)
    return (s * w[None, :, :]).sum(axis=-1)


def market_metrics(
    inst: Instance, plans: list[Plan], gross: np.ndarray, cost: np.ndarray, side: str
) -> dict[str, Any]:
    """Payments, utilities, welfare, satisfaction and, for the heterogeneous family, total
    fitness and cost-effectiveness. ``plans`` holds one plan per agent, in id order."""
    if side not in SIDES:
        raise ValueError(f"market side must be one of {SIDES}, not {side!r}")
    m = inst.n_agents
    paid = np.zeros(m)
    unpriced = 0
    ratios: list[float] = []
    fit = fitness_matrix(inst)
    pub = inst.meta.get("public", {})
    alpha, beta = float(pub.get("alpha", 0.0)), float(pub.get("beta", 0.0))
    fitness_total = ce_total = 0.0
    rounds = 0.0
    transfers = None  # agents' net money when they trade among themselves (Contract Net)
    if any(p.extra and "transfer" in p.extra for p in plans):
        transfers = np.array([float((p.extra or {}).get("transfer", 0.0)) for p in plans])
    reported: dict[str, float] = {}  # other protocol counts the allocators report
    for p in plans:
        if p.extra:
            rounds = max(rounds, float(p.extra.get("auction_rounds", 0.0)))
            for k, v in p.extra.items():
                if k in ("auction_rounds", "transfer", "paid"):
                    continue
                v = float(v)
                reported[k] = (
                    max(reported.get(k, v), v) if k.endswith("_max") else (reported.get(k, 0.0) + v)
                )
        if not p.tasks:
            continue
        if p.prices is None or len(p.prices) != len(p.tasks):
            unpriced += len(p.tasks)
            continue
        paid[p.agent] = float(np.sum(p.prices))
        for k, j in enumerate(p.tasks):
            bid = None if p.bids is None else float(p.bids[k])
            price = float(p.prices[k])
            if bid is not None and abs(price) > TOL:
                ratios.append(bid / price)
            if fit is not None:
                fitness_total += fit[p.agent, j]
                ce_total += alpha * (bid if bid is not None else 0.0) + beta * fit[p.agent, j]
    if transfers is not None:
        paid = transfers
    if side == "forward":
        utility = gross - cost - paid
        holder = float(paid.sum())
    else:
        utility = paid - cost
        holder = float(gross.sum() - paid.sum())
    winners = np.array([bool(p.tasks) for p in plans])
    out: dict[str, Any] = {
        "m_payments": float(
            sum(float((p.extra or {}).get("paid", 0.0)) for p in plans)
            if transfers is not None
            else paid.sum()
        ),
        "m_welfare": float(gross.sum() - cost.sum()),
        "m_value": float(gross.sum()),
        "m_cost": float(cost.sum()),
        "m_holder_utility": holder,
        "m_agent_utility": float(utility.sum()),
        "m_agent_utility_mean": float(utility.mean()),
        "m_agent_utility_mean_winners": float(utility[winners].mean()) if winners.any() else 0.0,
        "m_agent_utility_min": float(utility.min()),
        "m_ir_violations": int((utility < -TOL).sum()),
        "m_unpriced_tasks": unpriced,
        "m_satisfaction": float(np.mean(ratios)) if ratios else None,
        "m_auction_rounds": int(rounds),
        "trial_utilities": json.dumps([round(float(u), 9) for u in utility]),
    }
    out.update({f"m_{k}": v for k, v in sorted(reported.items())})
    if fit is not None:
        out["m_fitness_total"] = float(fitness_total)
        out["m_cost_effectiveness"] = float(ce_total)
    return out
