"""Instance model, generators and loaders: validation, round trips, hashes, clear errors."""

import json

import numpy as np
import pytest

from harness.errors import InstanceError, SpecError
from harness.instance_io import load_instance, save_instance
from harness.loaders import load_mtsp_lkh3, load_solomon, load_tsplib, read_solomon, read_tsplib
from harness.model import Instance, make_comm_graph
from harness.scenarios import make_instance, parse_size


def small(**kw):
    base = dict(
        name="t",
        family="assignment",
        objective="max_payoff",
        agents={"x": [0.0, 1.0], "y": [0.0, 1.0]},
        tasks={"x": [2.0, 3.0, 4.0], "y": [0.0, 0.0, 1.0]},
    )
    base.update(kw)
    return Instance.build(**base)


@pytest.mark.parametrize(
    "family,size", [("assignment", [7, 5]), ("tdr", [9, 3]), ("mtsp", [10, 5])]
)
def test_generators_are_deterministic_and_seed_sensitive(family, size):
    a = make_instance({"family": family, "size": size, "seed": 11})
    b = make_instance({"family": family, "size": size, "seed": 11})
    c = make_instance({"family": family, "size": size, "seed": 12})
    assert a.content_hash() == b.content_hash() != c.content_hash()
    assert (a.n_tasks, a.n_agents) == tuple(size)


def test_assignment_sizes_up_to_1000_and_3d():
    big = make_instance({"family": "assignment", "size": [1000, 1000], "seed": 0})
    assert big.n_tasks == big.n_agents == 1000 and (big.agents["max_tasks"] == 1).all()
    cube = make_instance({"family": "assignment", "size": [3, 3], "seed": 0, "params": {"dim": 3}})
    assert (cube.tasks["z"] > 0).all() and (cube.tasks["z"] < 100).all()


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
@pytest.mark.parametrize(
    "recipe",
    [
        {"family": "tdr", "size": [8, 3], "seed": 1, "params": {"comm": "rgg", "radius": 30.0}},
        {"family": "mtsp", "size": [10, 5], "seed": 2, "params": {"return_to_start": True}},
        {"family": "solomon", "instance": "R101"},
    ],
)
def test_round_trip_keeps_content_hash(tmp_path, suffix, recipe):
    inst = make_instance(recipe)
    path = save_instance(inst, tmp_path / f"inst{suffix}")
    back = load_instance(path)
    assert back.content_hash() == inst.content_hash()
    for col in inst.tasks:
        np.testing.assert_array_equal(back.tasks[col], inst.tasks[col])
    np.testing.assert_array_equal(back.comm.edges, inst.comm.edges)


def test_parquet_instance_is_readable_by_duckdb(tmp_path):
    import duckdb

    inst = make_instance({"family": "tdr", "size": [8, 3], "seed": 1})
    path = save_instance(inst, tmp_path / "i.parquet")
    n = duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE \"table\" = 'task'").fetchall()[0][0]
    assert n == 8


def test_hash_ignores_name_but_not_content():
    a, b = small(), small(name="other")
    assert a.content_hash() == b.content_hash()
    c = small(tasks={"x": [2.0, 3.0, 4.5], "y": [0.0, 0.0, 1.0]})
    assert c.content_hash() != a.content_hash()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(objective="max_fun"), "objective"),
        (dict(tasks={"x": [1.0, 2.0], "y": [1.0]}), "tasks.y"),
        (
            dict(tasks={"x": [1.0], "y": [1.0], "tw_start": [5.0], "tw_end": [1.0]}),
            "tasks[0].tw_end",
        ),
        (dict(tasks={"x": [1.0], "y": [float("nan")]}), "tasks[0].y"),
        (dict(agents={"x": [0.0, 1.0], "y": [0.0, 1.0], "speed": [1.0, 0.0]}), "agents[1].speed"),
        (dict(agents={"x": [0.0], "y": [0.0], "max_tasks": [1.5]}), "agents.max_tasks"),
        (dict(tasks={"x": [1.0], "y": [1.0], "colour": [1]}), "tasks.colour"),
        (dict(comm=make_comm_graph("edges", 2, edges=[])), "comm"),
    ],
)
def test_validation_names_the_field(kwargs, field):
    with pytest.raises(InstanceError) as err:
        small(**kwargs)
    assert field in str(err.value) and "expected" in str(err.value)


def test_edited_json_is_caught_by_its_hash(tmp_path):
    path = save_instance(small(), tmp_path / "i.json")
    d = json.loads(path.read_text())
    d["tasks"]["x"][0] = 99.0
    path.write_text(json.dumps(d))
    with pytest.raises(InstanceError, match="hash"):
        load_instance(path)


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",\n "family": }')
    with pytest.raises(InstanceError, match=r"bad.json: line 2"):
        load_instance(path)


def test_comm_graphs():
    assert len(make_comm_graph("full", 5).edges) == 10
    ring = make_comm_graph("ring", 6)
    assert ring.diameter(6) == 3
    assert make_comm_graph("line", 6).diameter(6) == 5
    assert make_comm_graph("star", 6).diameter(6) == 2
    pts = np.array([[0, 0], [1, 0], [50, 50], [51, 50]], dtype=float)
    rgg = make_comm_graph("rgg", 4, pts, radius=5.0)
    assert rgg.diameter(4) > 0 and rgg.params["bridges"] == 1  # bridged into one component
    with pytest.raises(InstanceError, match="kind"):
        make_comm_graph("mesh", 3)


def test_tsplib_and_best_known():
    inst = load_tsplib("eil51")
    assert (inst.n_tasks, inst.n_agents) == (50, 1) and inst.best_known() == 426
    assert inst.distance_kind == "euc_2d"
    m = load_mtsp_lkh3("eil51-m5", objective="min_max")
    assert m.best_known() == 118 and m.n_agents == 5
    assert load_mtsp_lkh3("eil51-m5").best_known() == 468


def test_solomon_and_homberger():
    r = load_solomon("R101")
    assert r.n_tasks == 100 and r.n_agents == 25 and r.best_known() == pytest.approx(1645.79)
    assert r.agents["capacity"][0] == 200 and r.tasks["duration"][0] == 10
    h = load_solomon("c1_10_1")
    assert h.n_tasks == 1000


def test_bad_instance_files_name_file_and_field(tmp_path):
    bad = tmp_path / "x.tsp"
    bad.write_text(
        "NAME : x\nTYPE : TSP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : GEO\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2\nEOF\n"
    )
    with pytest.raises(InstanceError, match=r"x.tsp: EDGE_WEIGHT_TYPE: expected EUC_2D"):
        read_tsplib(bad)
    bad.write_text("NAME : x\nEDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 one 1\nEOF\n")
    with pytest.raises(InstanceError, match=r"x.tsp: line 5"):
        read_tsplib(bad)
    sol = tmp_path / "s.txt"
    sol.write_text(
        "S\n\nVEHICLE\nNUMBER CAPACITY\n 3 10\n\nCUSTOMER\nhead\n 0 1 1 0 0 100 0\n 1 2 2 1 0 50\n"
    )
    with pytest.raises(InstanceError, match=r"s.txt: line 10: expected 7 numbers"):
        read_solomon(sol)
    with pytest.raises(InstanceError, match="tsplib: instance: expected a file name from tsplib"):
        load_tsplib("nope")


@pytest.mark.parametrize("text", ["10", "10x", "x5", "0x3", "10by5", "-1x2"])
def test_bad_sizes(text):
    with pytest.raises(SpecError, match="TASKSxAGENTS"):
        parse_size(text)
    assert parse_size(" 12X4 ") == (12, 4)
