"""One sweep on Ray test clusters of 1, 2 and 3 nodes on this machine (ray.cluster_utils.Cluster,
one CPU per node): the wall time of each, and how many trials every node ran.

    python scripts/cluster_sweep.py [--nodes 1,2,3] [--seeds 12]

The sweep: CBBA on tdr 150x20 (local runtime, no optimum), ``--seeds`` instances.
Each cluster runs it with ``harness bench --address``-style dispatch (``dispatch = "ray"``):
the driver on the head only schedules, and the trials run on every node. The figures are in
docs/benchmarks.md ("A sweep over a cluster").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sweep(nodes: int, seeds: int, out: Path) -> tuple[float, float, Counter]:
    import ray
    from ray.cluster_utils import Cluster

    from harness.bench import bench
    from harness.spec import spec_from_dict
    from harness.store import RunStore

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        spec = spec_from_dict(
            {
                "bench": {
                    "seeds": seeds,
                    "out": str(out),
                    "runtime": "local",
                    "dispatch": "ray",
                    "optimum": False,
                },
                "allocators": [{"name": "cbba"}],
                "families": [{"name": "tdr", "sizes": ["150x20"]}],
            },
            "scripts/cluster_sweep.py",
        )
        t0 = time.perf_counter()
        res = bench(spec, run_id=f"nodes{nodes}")
        wall = time.perf_counter() - t0
        assert res.counts == {"done": res.total}, res.counts
        rows = RunStore(out, res.run_id).rows()
        per_node = Counter(r["trial_node"][:8] for r in rows)
        return wall, sum(r["trial_wall_s"] for r in rows), per_node
    finally:
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", default="1,2,3")
    ap.add_argument("--seeds", type=int, default=16)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.nodes.split(",")):
            wall, work, per_node = sweep(n, args.seeds, Path(tmp) / f"n{n}")
            rows.append((n, wall, work, per_node))
            print(f"{n} node(s): {wall:.1f} s, trials per node {dict(per_node)}", flush=True)
    base = rows[0][1]
    print(
        "\n| nodes (1 CPU each) | sweep wall | speed-up | trial seconds summed | trials per node |"
    )
    print("|---|---|---|---|---|")
    for n, wall, work, per_node in rows:
        counts = ", ".join(str(c) for c in sorted(per_node.values(), reverse=True))
        print(f"| {n} | {wall:.1f} s | {base / wall:.2f}x | {work:.1f} s | {counts} |")


if __name__ == "__main__":
    main()
