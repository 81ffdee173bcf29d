"""One declaration of a parameter (harness/params.py): its checks, and the flags built from it."""

from __future__ import annotations

import math

import pytest

from harness.errors import SpecError
from harness.params import Param, resolve


def _refused(param: Param, value: object) -> str:
    with pytest.raises(SpecError) as err:
        param.check(value, "s.toml", "bench.x")
    text = str(err.value)
    assert text.startswith("s.toml: bench.x: expected "), text
    return text


def test_a_float_takes_an_int_and_refuses_what_is_not_a_finite_number():
    p = Param("x", 1.0, "seconds", above=0.0)
    assert p.check(3, "s", "x") == 3.0 and isinstance(p.check(3, "s", "x"), float)
    for bad in (math.nan, math.inf, -math.inf, True, "1", None):
        assert "a finite number" in _refused(p, bad)
    assert "> 0" in _refused(p, 0.0)


def test_ints_bools_strings_and_bounds():
    n = Param("n", 3, "repetitions", low=1, high=100_000)
    assert n.check(7, "s", "n") == 7
    assert "an integer" in _refused(n, 2.0) and "an integer" in _refused(n, False)
    assert "at most 100,000" in _refused(n, 100_001)
    assert ">= 1" in _refused(n, 0)
    flag = Param("f", False)
    assert flag.check(True, "s", "f") is True
    assert "true or false" in _refused(flag, 1)
    choice = Param("c", "a", choices=("a", "b"))
    assert "one of a, b" in _refused(choice, "z")


def test_a_table_names_unknown_and_missing_fields_and_fills_defaults():
    decl = (Param("a", 1), Param("b", "x", required=True))
    assert resolve(decl, {"b": "y"}, "s", "t") == {"a": 1, "b": "y"}
    assert resolve(decl, {"b": "y"}, "s", "t", fill=False) == {"b": "y"}
    with pytest.raises(SpecError, match=r"t\.c: expected one of the settings: a, b"):
        resolve(decl, {"b": "y", "c": 0}, "s", "t")
    with pytest.raises(SpecError, match=r"t\.b: expected a string \(required\)"):
        resolve(decl, {"a": 2}, "s", "t")
    with pytest.raises(SpecError, match="expected a table of settings"):
        resolve(decl, [1], "s", "t")


def test_each_checks_every_table_of_a_list_and_names_its_index():
    p = Param("crash", [], each=(Param("agent", 0, low=0, required=True),))
    assert p.check({"agent": 2}, "s", "f.crash") == [{"agent": 2}]
    with pytest.raises(SpecError, match=r"f\.crash\[1\]\.agent"):
        p.check([{"agent": 1}, {"agent": -1}], "s", "f.crash")


def test_every_bench_setting_is_a_flag_whose_help_gives_its_real_default():
    from harness.cli import build_parser
    from harness.params import shown
    from harness.spec import DEFAULT_SPEC, SETTINGS

    parser = build_parser()
    bench = next(
        a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("bench")
    )
    text = " ".join(bench.format_help().split())
    for name, param in SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        assert f"(default {shown(param.default)}" in text, name
    assert "(default 3; the default suite: 5)" in text  # seeds: a bare bench runs 5
    assert DEFAULT_SPEC["bench"]["seeds"] == 5 and SETTINGS["seeds"].default == 3
    args = parser.parse_args(["bench", "--seeds", "4", "--no-optimum"])
    assert args.seeds == 4 and args.optimum is False and args.time_limit is None


def test_placement_is_chosen_for_speed_unless_given():
    from harness.worker import placement

    assert placement(16, 0, 0, cpu_share=1) == 16  # one CPU: all agents in one host
    assert placement(16, 0, 0, cpu_share=4) == 4  # four CPUs: four hosts of four
    assert placement(3, 0, 0, cpu_share=4) == 1  # a CPU for each agent: an actor each
    assert placement(16, 1, 0, cpu_share=1) == 1  # asked for: an actor for every agent
    assert placement(16, 2, 0, cpu_share=1) == 2
    assert placement(100, 1, 16, cpu_share=1) == 7  # at most 16 actors
    assert placement(100, 0, 16, cpu_share=1) == 7
