"""CBBA here against the reference Python CBBA (zehuilu/CBBA-Python, a port of the MIT MATLAB
original) on identical inputs with time windows: wall time side by side and how far the two
allocations agree.

    python scripts/vs_reference_cbba.py --reference /path/to/CBBA-Python --sizes 30x5 60x10

The reference is not part of this project and is not installed by it: pass the path of a
checkout. Each size is one ``tdr`` instance of this harness (seed 0; complete graph; bundle
limit tasks / agents), handed to the reference as one agent type and one task type with the
same positions, speeds, availability, values, windows, durations and discounts. The reference
imports matplotlib only to plot; an empty stand-in is used when matplotlib is not installed.

What differs by design (docs/allocators.md): the reference stamps messages with the iteration
number and stops after ``n_agents`` quiet iterations; this CBBA stamps receipt times and stops
after 2D + 1 quiet rounds; ties here are within a relative 1e-9, there within an absolute 1e-5.
So the two may end on different, equally valid allocations; the script reports the objective
of both under this harness's evaluator and the share of tasks given to the same agent.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load_reference(path: Path) -> types.SimpleNamespace:
    lib = path / "lib"
    if not (lib / "CBBA.py").is_file():
        raise SystemExit(f"--reference {path}: expected a CBBA-Python checkout with lib/CBBA.py")
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:  # plotting only: an empty stand-in
        mpl = types.ModuleType("matplotlib")
        mpl.pyplot = types.ModuleType("matplotlib.pyplot")
        sys.modules.update({"matplotlib": mpl, "matplotlib.pyplot": mpl.pyplot})
    sys.path.insert(0, str(lib))
    import Agent
    import CBBA
    import Task
    import WorldInfo

    return types.SimpleNamespace(
        CBBA=CBBA.CBBA, Agent=Agent.Agent, Task=Task.Task, WorldInfo=WorldInfo.WorldInfo
    )


def _config(inst) -> dict:  # noqa: ANN001
    t = inst.tasks
    window = {
        "TASK_VALUE": 1.0,
        "START_TIME": int(t["tw_start"].min()),
        "END_TIME": int(t["tw_end"].max()) + 1,
        "DURATION": 1,
    }
    return {
        "AGENT_TYPES": ["quad", "car"],
        "TASK_TYPES": ["track", "rescue"],
        "QUAD_DEFAULT": {"NOM_VELOCITY": 1},
        "CAR_DEFAULT": {"NOM_VELOCITY": 1},
        "TRACK_DEFAULT": window,
        "RESCUE_DEFAULT": window,
    }


def run_reference(ref: types.SimpleNamespace, inst) -> tuple[list, list, float]:  # noqa: ANN001
    """The reference's paths (task ids per agent), start times and wall time on ``inst``."""
    a, t = inst.agents, inst.tasks
    agents = [
        ref.Agent(
            agent_id=i,
            agent_type=0,
            availability=float(a["avail_start"][i]),
            x=float(a["x"][i]),
            y=float(a["y"][i]),
            z=float(a["z"][i]),
            nom_velocity=float(a["speed"][i]),
        )
        for i in range(len(a["x"]))
    ]
    tasks = [
        ref.Task(
            task_id=j,
            task_type=0,
            task_value=float(t["value"][j]),
            start_time=float(t["tw_start"][j]),
            end_time=float(t["tw_end"][j]),
            duration=float(t["duration"][j]),
            discount=float(t["discount"][j]),
            x=float(t["x"][j]),
            y=float(t["y"][j]),
            z=float(t["z"][j]),
        )
        for j in range(len(t["x"]))
    ]
    xyz = [t["x"], t["y"], t["z"]]
    world = ref.WorldInfo(*[[float(c.min()), float(c.max())] for c in xyz])
    solver = ref.CBBA(_config(inst))
    depth = int(a["max_tasks"].max())
    w0 = time.perf_counter()
    paths, times = solver.solve(agents, tasks, world, depth, time_window_flag=True)
    wall = time.perf_counter() - w0
    return [list(map(int, p)) for p in paths], [list(map(float, t)) for t in times], wall


def compare(ref: types.SimpleNamespace, size: str, seed: int = 0) -> dict[str, object]:
    import allocators
    from harness.api import Plan
    from harness.evaluate import evaluate
    from harness.runtime_local import run_local
    from harness.scenarios import make_instance, parse_size

    n, m = parse_size(size)
    inst = make_instance({"family": "tdr", "size": [n, m], "seed": seed, "params": {}})
    cls = allocators.get("cbba")
    run_local(inst, cls, cls.resolve_params({}), seed=seed, max_rounds=100_000)  # warm numba
    w0 = time.perf_counter()
    ours = run_local(inst, cls, cls.resolve_params({}), seed=seed, max_rounds=100_000)
    ours_s = time.perf_counter() - w0
    paths, times, ref_s = run_reference(ref, inst)
    ref_plans = [Plan(a, p, t) for a, (p, t) in enumerate(zip(paths, times, strict=True))]
    owner_ours = {j: p.agent for p in ours.plans for j in p.tasks}
    owner_ref = {j: a for a, p in enumerate(paths) for j in p}
    same = sum(owner_ours.get(j) == owner_ref.get(j) for j in range(n))
    return {
        "size": size,
        "ours_s": ours_s,
        "reference_s": ref_s,
        "speed-up": ref_s / ours_s,
        "objective_ours": evaluate(inst, ours.plans)["m_objective"],
        "objective_ref": evaluate(inst, ref_plans)["m_objective"],
        "same_owner": same / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="a CBBA-Python checkout")
    ap.add_argument("--sizes", nargs="+", default=["30x5", "60x10", "100x10"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ref = _load_reference(args.reference)
    print(
        "| tasks x agents | reference | here | speed-up | objective here / reference | same owner |"
    )
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        r = compare(ref, size, args.seed)
        print(
            f"| {r['size']} | {r['reference_s']:.3f} s | {r['ours_s']:.4f} s | "
            f"{r['speed-up']:.1f}x | {r['objective_ours']:.2f} / {r['objective_ref']:.2f} | "
            f"{r['same_owner']:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
