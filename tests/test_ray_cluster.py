"""Several Ray nodes on one machine (ray.cluster_utils.Cluster): agents spread over nodes,
and the results still equal the local runtime's."""

import pytest

ray = pytest.importorskip("ray")

import allocators  # noqa: E402
from actors.runtime import run_ray, spawn  # noqa: E402
from harness.conformance import recipe  # noqa: E402
from harness.runtime_local import run_local  # noqa: E402
from harness.scenarios import make_instance  # noqa: E402
from tests.test_ray_runtime import summary  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def cluster_pool():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    actors = spawn(9)
    # SPREAD is best effort and trials use the pool's first actors: order the pool round-robin
    # over the nodes, so that any first few actors sit on several nodes
    nodes = ray.get(
        [
            a.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
            for a in actors
        ]
    )
    by_node: dict[str, list] = {}
    for a, node in zip(actors, nodes, strict=True):
        by_node.setdefault(node, []).append(a)
    assert len(by_node) > 1, "SPREAD placed every actor on one node"
    queues = list(by_node.values())
    actors = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    yield actors
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.parametrize(
    "name,family,size,params",
    [
        ("cbba", "tdr", (20, 6), {"comm": "ring"}),
        ("cbaa", "assignment", (9, 9), {"comm": "rgg", "radius": 40.0}),
        ("greedy_nn", "mtsp", (15, 5), {"comm": "line"}),
        ("sga", "tdr", (12, 4), {}),
    ],
)
def test_three_nodes_equal_local(cluster_pool, name, family, size, params):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 3
    inst = make_instance(recipe(family, size, params, seed=4))
    cls = allocators.get(name)
    p = cls.resolve_params({})
    remote = run_ray(inst, cls, p, seed=4, actors=cluster_pool)
    assert summary(remote) == summary(run_local(inst, cls, p, seed=4))
    assert len(set(remote.nodes)) > 1  # the agents really sit on several nodes
