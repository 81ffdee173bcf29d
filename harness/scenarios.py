"""Problem families: seeded generators and named public instance sets (DESIGN §3).

A family is found by name. Generated families take a size ``TASKSxAGENTS`` and a seed;
dataset families take an instance name. Both take optional parameters (communication graph,
objective, ...), declared with their defaults so that a spec is validated before anything runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import SpecError, suggest
from harness.model import COMM_KINDS, Instance, comm_from_params
from harness.numerics import length
from harness.params import Param, defaults, resolve

WORLD = 100.0  # side of the square (or cube) workspace of the generated families


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    kind: str  # "generated" or "dataset"
    objectives: tuple[str, ...]
    params: tuple[Param, ...]
    make: Callable[..., Instance] = field(repr=False)
    sizes_hint: str = ""

    def check_params(self, params: dict[str, Any], source: str, where: str) -> dict[str, Any]:
        """Fill defaults and reject unknown names or wrong values."""
        return resolve(self.params, params, source, where, f"{self.name} parameters")


SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


#: the largest instance a spec may ask for: a task-by-task distance matrix of MAX_TASKS² floats
#: is 3.2 GB, an agent-by-task one at the agent bound 800 MB
MAX_TASKS = 20_000
MAX_AGENTS = 5_000


def parse_size(text: Any, source: str = "command line", where: str = "size") -> tuple[int, int]:
    """``"10x5"`` -> (10 tasks, 5 agents), at most MAX_TASKS x MAX_AGENTS."""
    m = SIZE_RE.match(str(text))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise SpecError(source, where, "TASKSxAGENTS with positive integers, like '10x5'", text)
    n, k = int(m.group(1)), int(m.group(2))
    if n > MAX_TASKS or k > MAX_AGENTS:
        raise SpecError(
            source,
            where,
            f"at most {MAX_TASKS:,} tasks and {MAX_AGENTS:,} agents (the distance matrices of "
            "a larger instance do not fit in memory)",
            text,
        )
    return n, k


def _points(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    pts = np.zeros((n, 3))
    pts[:, :dim] = rng.uniform(0.0, WORLD, size=(n, dim))
    return pts


DIM = Param("dim", 2, "dimensions of the workspace", choices=(2, 3))


def _check_dim(params: dict[str, Any]) -> int:
    return DIM.check(params.get("dim", 2), "family parameters", "dim")


def gen_assignment(n_tasks: int, n_agents: int, seed: int, **params: Any) -> Instance:
    """m agents and n tasks uniform in a 100 x 100 (x 100) workspace; each agent takes at most
    one task; payoff ``100 / distance`` (CAGA seed paper, §4) -- see ``geometry.payoff_matrix``."""
    rng = np.random.default_rng(seed)
    dim = _check_dim(params)
    a, t = _points(rng, n_agents, dim), _points(rng, n_tasks, dim)
    return Instance.build(
        name=f"assignment-{n_tasks}x{n_agents}-s{seed}",
        family="assignment",
        objective="max_payoff",
        agents={"x": a[:, 0], "y": a[:, 1], "z": a[:, 2], "max_tasks": 1},
        tasks={"x": t[:, 0], "y": t[:, 1], "z": t[:, 2]},
        comm=comm_from_params(params, n_agents, a),
        meta={
            "generator": "assignment",
            "params": params,
            "seed": seed,
            "size": [n_tasks, n_agents],
        },
        source=f"generator assignment {n_tasks}x{n_agents}",
    )


def gen_tdr(n_tasks: int, n_agents: int, seed: int, **params: Any) -> Instance:
    """Time-discounted reward with time windows, the setting of the CBBA paper (Choi, Brunet,
    How 2009, §V): agents with a start point and a speed, tasks with a value, a window
    [tw_start, tw_end] in which service may start, a duration and a discount lambda; score of a
    task served at time t: ``value * exp(-lambda * (t - tw_start))``; bundle limit L per agent.

    Window starts spread over a horizon that grows with tasks per agent, so that an agent can
    serve about L tasks; every draw is continuous, so ties have probability zero.
    """
    rng = np.random.default_rng(seed)
    dim = _check_dim(params)
    limit = params.get("bundle_limit") or max(1, math.ceil(n_tasks / n_agents))
    a, t = _points(rng, n_agents, dim), _points(rng, n_tasks, dim)
    horizon = 100.0 + 40.0 * limit
    tw_start = rng.uniform(0.0, horizon, n_tasks)
    return Instance.build(
        name=f"tdr-{n_tasks}x{n_agents}-s{seed}",
        family="tdr",
        objective="max_tdr",
        agents={
            "x": a[:, 0],
            "y": a[:, 1],
            "z": a[:, 2],
            "speed": rng.uniform(1.0, 2.0, n_agents),
            "max_tasks": limit,
        },
        tasks={
            "x": t[:, 0],
            "y": t[:, 1],
            "z": t[:, 2],
            "tw_start": tw_start,
            "tw_end": tw_start + rng.uniform(20.0, 60.0, n_tasks),
            "duration": rng.uniform(5.0, 10.0, n_tasks),
            "value": rng.uniform(10.0, 100.0, n_tasks),
            "discount": rng.uniform(0.005, 0.02, n_tasks),
        },
        comm=comm_from_params(params, n_agents, a),
        meta={"generator": "tdr", "params": params, "seed": seed, "size": [n_tasks, n_agents]},
        source=f"generator tdr {n_tasks}x{n_agents}",
    )


def gen_mtsp(n_tasks: int, n_agents: int, seed: int, **params: Any) -> Instance:
    """Multi-agent TSP as in Patel et al. (ICRA 2020): n locations and m agents with distinct
    start points in a 100 x 100 square; open paths (agents do not return) unless
    ``return_to_start``; objective ``min_sum`` (total distance) or ``min_max`` (makespan)."""
    rng = np.random.default_rng(seed)
    dim = _check_dim(params)
    a, t = _points(rng, n_agents, dim), _points(rng, n_tasks, dim)
    ret = bool(params.get("return_to_start", False))
    end = a if ret else np.full_like(a, np.nan)
    return Instance.build(
        name=f"mtsp-{n_tasks}x{n_agents}-s{seed}",
        family="mtsp",
        objective=params.get("objective", "min_sum"),
        agents={
            "x": a[:, 0],
            "y": a[:, 1],
            "z": a[:, 2],
            "end_x": end[:, 0],
            "end_y": end[:, 1],
            "end_z": end[:, 2],
        },
        tasks={"x": t[:, 0], "y": t[:, 1], "z": t[:, 2]},
        comm=comm_from_params(params, n_agents, a),
        meta={"generator": "mtsp", "params": params, "seed": seed, "size": [n_tasks, n_agents]},
        source=f"generator mtsp {n_tasks}x{n_agents}",
    )


HETEROGENEOUS_PARAMS = (
    Param("cap_max", 0.8, "agents' capability levels lie in [0, cap_max]", low=0.0),
    Param("req_max", 0.2, "tasks' required levels lie in [0, req_max]", low=0.0),
    Param("team_min", 2, "fewest agents a task takes", low=1),
    Param("team_max", 5, "most agents a task takes", low=1),
    Param("alpha", 0.3, "cost-effectiveness weight of the bid", low=0.0),
    Param("beta", 0.7, "cost-effectiveness weight of the fitness", low=0.0),
)
HETEROGENEOUS = defaults(HETEROGENEOUS_PARAMS)


def gen_heterogeneous(n_tasks: int, n_agents: int, seed: int, **params: Any) -> Instance:
    """Heterogeneous agents and multi-attribute tasks, the setting of the FMMRA seed paper
    (its §2-3 and Table 2; our reading of the ranges is in docs/markets.md).

    Agents: a position, five capability levels (computing, mobility, decision, defence,
    firepower) in [0, cap_max], a value measure V in [1, 10] (the fixed cost of doing any
    task) and a fuel use e in [1, 10] per workspace side travelled; one task each.
    Tasks: a position, a benefit B in [20, 30] (the ``value`` column), required levels in
    [0, req_max] (an agent below any of them is screened out), and a team size in
    [team_min, team_max] (how many agents the task takes). Each task's attribute weights come
    from an AHP judgment matrix accepted only with CR < 0.1; the weights, the fitness scale
    and the cost-effectiveness weights alpha (bid) and beta (fitness) are public.
    Objective: welfare (benefit minus the agents' costs)."""
    rng = np.random.default_rng(seed)
    params = {**HETEROGENEOUS, **params}
    k = 5
    cap_max, req_max = float(params["cap_max"]), float(params["req_max"])
    if not 0.0 <= req_max <= cap_max:
        raise SpecError(
            "family parameters", "req_max", f"a level in [0, cap_max={cap_max}]", req_max
        )
    lo, hi = int(params["team_min"]), int(params["team_max"])
    if not 1 <= lo <= hi:
        raise SpecError("family parameters", "team_max", f"an integer >= team_min ({lo}) >= 1", hi)
    a, t = _points(rng, n_agents, 2), _points(rng, n_tasks, 2)
    from harness.economics import ahp_sample

    weights, crs, draws = [], [], 0
    for _ in range(n_tasks):
        w, cr, tries = ahp_sample(rng, k)
        weights.append([round(float(v), 12) for v in w])
        crs.append(round(cr, 12))
        draws += tries
    return Instance.build(
        name=f"heterogeneous-{n_tasks}x{n_agents}-s{seed}",
        family="heterogeneous",
        objective="max_welfare",
        agents={
            "x": a[:, 0],
            "y": a[:, 1],
            "max_tasks": 1,
            "fixed_cost": rng.uniform(1.0, 10.0, n_agents),
            "cost_per_distance": rng.uniform(1.0, 10.0, n_agents) / WORLD,
        },
        tasks={
            "x": t[:, 0],
            "y": t[:, 1],
            "value": rng.uniform(20.0, 30.0, n_tasks),
            "team": rng.integers(lo, hi + 1, n_tasks),
        },
        agent_caps=rng.uniform(0.0, cap_max, (n_agents, k)),
        task_caps=rng.uniform(0.0, req_max, (n_tasks, k)),
        comm=comm_from_params(params, n_agents, a),
        meta={
            "generator": "heterogeneous",
            "params": params,
            "seed": seed,
            "size": [n_tasks, n_agents],
            "attributes": ["computing", "mobility", "decision", "defence", "firepower"],
            "ahp_cr": crs,
            "ahp_draws": draws,
            "public": {
                "ahp_weights": weights,
                "fitness_range": [1.0, 10.0],
                "cap_max": cap_max,
                "alpha": float(params["alpha"]),
                "beta": float(params["beta"]),
            },
        },
        source=f"generator heterogeneous {n_tasks}x{n_agents}",
    )


#: the MAGNET seed's Tables 1 and 3: (low, high, share) bins of a container trip's length
#: (pickup -> destination -> return, km) and of pickup/return distances to headquarters (km);
#: the open-ended top bins are closed at 250 and 40 km here
TRIP_KM = ((3, 10, 0.064), (10, 30, 0.263), (30, 60, 0.361), (60, 120, 0.041), (120, 250, 0.271))
HQ_KM = ((10, 15, 0.004), (15, 20, 0.401), (20, 25, 0.157), (25, 30, 0.413), (30, 40, 0.025))
LOGISTICS_PARAMS = (
    Param("port_width", 0.1, "half-width of the port sector, radians", above=0.0),
    Param("handling", 30.0, "minutes of handling per container", low=0.0),
    Param("slack_min", 60.0, "least slack of a deadline, minutes", low=0.0),
    Param("slack_max", 300.0, "most slack of a deadline, minutes", low=0.0),
)
LOGISTICS = defaults(LOGISTICS_PARAMS)


def _from_bins(rng: np.random.Generator, bins: tuple, n: int) -> np.ndarray:
    shares = np.array([b[2] for b in bins])
    which = rng.choice(len(bins), size=n, p=shares / shares.sum())
    lo = np.array([b[0] for b in bins])[which]
    hi = np.array([b[1] for b in bins])[which]
    return rng.uniform(lo, hi)


def gen_logistics(n_tasks: int, n_agents: int, seed: int, **params: Any) -> Instance:
    """A day of container transports, calibrated to the MAGNET seed paper (§4.1, Tables
    1-3): each task picks a container up in the port area, drives it to a destination and
    returns it to a (usually other) port terminal; it is available at the pickup from a time
    and due back at the return by a deadline. Trucks carry one container, start and end at
    headquarters (0, 0) within an availability slot, drive 1 km a minute; the price of
    driving is 1 a km. Units: km and minutes from 06:00.

    Pickups and returns lie at Table 3's distances from headquarters, within a sector of
    half-width ``port_width`` radians (the Rotterdam port area); a trip's length follows
    Table 1 (its destination on the ellipse through which pickup -> destination -> return
    has that length). Duration = trip driving + ``handling`` minutes. Time windows are drawn
    around a hidden feasible plan (tasks dealt to the trucks in turn in a random order; a
    container is ready up to an hour before that plan reaches it; the deadline leaves
    ``slack_min``-``slack_max`` minutes of slack), and a truck's slot is stretched to cover
    that plan, so every day can be served completely."""
    rng = np.random.default_rng(seed)
    params = {**LOGISTICS, **params}
    width = float(params["port_width"])
    handling = float(params["handling"])
    lo_slack, hi_slack = float(params["slack_min"]), float(params["slack_max"])
    if not lo_slack <= hi_slack:
        raise SpecError(
            "family parameters", "slack_max", f"a value >= slack_min ({lo_slack})", hi_slack
        )
    slot_start = rng.uniform(0.0, 120.0, n_agents)
    slot_end = slot_start + rng.uniform(540.0, 720.0, n_agents)

    def port(k: int) -> np.ndarray:
        r = _from_bins(rng, HQ_KM, k)
        theta = rng.uniform(-width, width, k)
        return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)

    pick, ret, dest = np.zeros((n_tasks, 2)), np.zeros((n_tasks, 2)), np.zeros((n_tasks, 2))
    inside = np.zeros(n_tasks)
    for j in range(n_tasks):
        p, r = port(2)
        gap = length(r - p)
        trip = max(_from_bins(rng, TRIP_KM, 1)[0], gap + 1e-6)
        # the destination on the ellipse of foci p and r whose points are ``trip`` away from
        # p and r together
        a_, c_ = 0.5 * trip, 0.5 * gap
        b_ = math.sqrt(max(a_ * a_ - c_ * c_, 0.0))
        u = (r - p) / gap if gap > 0 else np.array([1.0, 0.0])
        v = np.array([-u[1], u[0]])
        phi = rng.uniform(0.0, 2.0 * math.pi)
        d = 0.5 * (p + r) + a_ * math.cos(phi) * u + b_ * math.sin(phi) * v
        pick[j], ret[j], dest[j] = p, r, d
        inside[j] = length(d - p) + length(r - d)
    duration = inside + handling
    # windows drawn around a hidden feasible plan (tasks in random order, dealt to the
    # trucks in turn), so that every day can be served completely, as the company's could
    ready, latest = np.zeros(n_tasks), np.zeros(n_tasks)
    clock, where = slot_start.copy(), np.zeros((n_agents, 2))
    for k, j in enumerate(rng.permutation(n_tasks)):
        a = k % n_agents
        arrive = clock[a] + length(pick[j] - where[a])
        ready[j] = max(0.0, arrive - rng.uniform(0.0, 60.0))
        begin = max(arrive, ready[j])
        due = begin + duration[j] + rng.uniform(lo_slack, hi_slack)  # back at the return by then
        latest[j] = due - duration[j]
        clock[a], where[a] = begin + duration[j], ret[j]
    home = clock + np.linalg.norm(where, axis=1)
    slot_end = np.maximum(slot_end, home)
    zeros = np.zeros(n_agents)
    return Instance.build(
        name=f"logistics-{n_tasks}x{n_agents}-s{seed}",
        family="logistics",
        objective="min_sum",
        agents={
            "x": zeros,
            "y": zeros,
            "end_x": zeros,
            "end_y": zeros,
            "avail_start": slot_start,
            "avail_end": slot_end,
        },
        tasks={
            "x": pick[:, 0],
            "y": pick[:, 1],
            "exit_x": ret[:, 0],
            "exit_y": ret[:, 1],
            "service_distance": inside,
            "duration": duration,
            "tw_start": ready,
            "tw_end": latest,
        },
        comm=comm_from_params(params, n_agents, np.zeros((n_agents, 3))),
        meta={
            "generator": "logistics",
            "params": params,
            "seed": seed,
            "size": [n_tasks, n_agents],
            "destinations": dest.round(6).tolist(),
            "units": "km, minutes from 06:00, 1 km/min",
        },
        source=f"generator logistics {n_tasks}x{n_agents}",
    )


_GRAPH = (
    Param("comm", "full", "the agents' communication graph", choices=COMM_KINDS),
    Param("radius", 40.0, "range of the rgg graph", above=0.0),
)


def _objective(objectives: tuple[str, ...]) -> Param:
    return Param("objective", objectives[0], "what the allocation optimises", choices=objectives)


_VEHICLES = Param("vehicles", 0, "vehicles (0: the instance's own number)", low=0)


def _dataset_family(
    name: str, description: str, objectives: tuple[str, ...], params: tuple[Param, ...]
) -> Family:
    def make(instance: str, **p: Any) -> Instance:
        from harness import loaders

        return loaders.load(name, instance, **p)

    return Family(
        name, description, "dataset", objectives, (*_GRAPH, _objective(objectives), *params), make
    )


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "assignment",
            "single assignment, payoff 100/distance (CAGA), uniform 100^2 or 100^3",
            "generated",
            ("max_payoff",),
            (*_GRAPH, DIM),
            gen_assignment,
            "3x3 .. 1000x1000",
        ),
        Family(
            "tdr",
            "time-discounted reward with time windows and bundle limit (CBBA paper)",
            "generated",
            ("max_tdr",),
            (
                *_GRAPH,
                DIM,
                Param("bundle_limit", 0, "tasks an agent may take (0: tasks / agents)", low=0),
            ),
            gen_tdr,
            "8x3 .. 1000x100",
        ),
        Family(
            "mtsp",
            "multi-agent TSP, distinct starts, open paths (Patel et al. 2020)",
            "generated",
            ("min_sum", "min_max"),
            (
                *_GRAPH,
                DIM,
                _objective(("min_sum", "min_max")),
                Param("return_to_start", False, "closed tours back to each agent's start"),
            ),
            gen_mtsp,
            "10x5, 20x4, 30x3, 35x5, 40x6 .. 1000x50",
        ),
        Family(
            "heterogeneous",
            "heterogeneous agents, multi-attribute team tasks, AHP fitness (FMMRA paper)",
            "generated",
            ("max_welfare",),
            (*_GRAPH, *HETEROGENEOUS_PARAMS),
            gen_heterogeneous,
            "4x10 .. 4x29 (the seed paper), any TASKSxAGENTS",
        ),
        Family(
            "logistics",
            "container transports with time windows, trucks with slots (MAGNET paper)",
            "generated",
            ("min_sum",),
            (*_GRAPH, *LOGISTICS_PARAMS),
            gen_logistics,
            "2x1 .. 20x10 (the seed's days), any TASKSxAGENTS",
        ),
        _dataset_family(
            "tsplib",
            "TSPLIB EUC_2D; all agents start and end at node 1",
            ("min_sum", "min_max"),
            (Param("agents", 1, "salesmen", low=1),),
        ),
        _dataset_family(
            "mtsp_lkh3",
            "mTSP LKH-3 set: NAME-mK, depot node 1, best-known min-sum/min-max",
            ("min_sum", "min_max"),
            (),
        ),
        _dataset_family(
            "li_lim",
            "Li & Lim PDPTW (100 and 1000 nodes) as atomic transports, best-known distance",
            ("min_sum", "min_max"),
            (_VEHICLES,),
        ),
        _dataset_family(
            "cordeau_darp",
            "Cordeau & Laporte dial-a-ride as atomic transports",
            ("min_sum", "min_max"),
            (_VEHICLES,),
        ),
        _dataset_family(
            "solomon",
            "Solomon VRPTW (100 customers) and Gehring-Homberger (1000)",
            ("min_sum", "min_max"),
            (_VEHICLES,),
        ),
    )
}


def get_family(name: str, source: str = "command line", where: str = "family") -> Family:
    if name not in FAMILIES:
        raise SpecError(
            source,
            where,
            f"one of the families {', '.join(FAMILIES)}{suggest(name, FAMILIES)}",
            name,
        )
    return FAMILIES[name]


def make_instance(recipe: dict[str, Any]) -> Instance:
    """Build the instance a trial recipe names: ``{"family", "params", and "size"+"seed" or
    "instance"}``. Recipes are small, so workers rebuild instances instead of receiving them."""
    if "frozen" in recipe:
        from harness.frozen import load_frozen

        return load_frozen(recipe)
    fam = get_family(recipe["family"])
    params = dict(recipe.get("params", {}))
    if fam.kind == "generated":
        n, m = recipe["size"]
        return fam.make(n, m, recipe["seed"], **params)
    return fam.make(recipe["instance"], **params)
