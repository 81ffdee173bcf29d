"""Bench specs (DESIGN §6): a TOML file, every key of ``[bench]`` also a command-line flag.

```toml
[bench]
seeds = 3                 # repetitions: instances per size (generated) or trial seeds (datasets)
root_seed = 0
runtime = "ray"            # agents as Ray actors (embedded Ray unless address is set); or "local"
time_limit = 60.0         # seconds per trial; over it the trial is stored as "timeout"
optimum = true            # exact optimum (PuLP) for instances small enough
optimum_time_limit = 30.0
max_rounds = 10000
workers = 0               # trials in parallel; 0 = one per CPU
out = "results"

[[allocators]]
name = "cbba"
params = { score = ["tdr", "min_sum"] }   # a list is a grid axis

[[families]]
name = "tdr"
sizes = ["8x3", "10x4"]                    # TASKSxAGENTS, generated families
params = { comm = ["full", "ring"] }       # a list is a grid axis

[[families]]
name = "tsplib"
instances = ["eil51", "berlin52"]          # dataset families

[[faults]]                                 # optional fault profiles: a grid axis of trials
name = "none"
[[faults]]
name = "lossy"
drop = 0.1
delay = { p = 0.2, dist = "uniform", min = 1, max = 3 }
duplicate = 0.05
reorder = true
partition = { groups = "halves", from = 2, to = 6 }
crash = [{ agent = 0, round = 3 }]
```
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allocators
from harness.errors import SpecError, read_text
from harness.faults import fault_name, parse_faults
from harness.params import Param, defaults, resolve
from harness.scenarios import MAX_AGENTS, get_family, parse_size

RUNTIMES = ("local", "ray")

WEEK = 7 * 24 * 3600.0

#: the [bench] settings, each also a ``harness bench`` flag (built from these declarations)
SETTINGS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("seeds", 3, "repetitions (instances per size, or trial seeds)", low=1, high=100_000),
        Param("root_seed", 0, "the seed every trial's seed derives from"),
        Param("runtime", "ray", "where agents run", choices=RUNTIMES),
        Param(
            "time_limit",
            60.0,
            "seconds per trial; past it the trial is stored as a timeout",
            above=0,
            high=WEEK,
        ),
        Param("optimum", True, "exact optimum (PuLP) for the instances small enough"),
        Param("optimum_time_limit", 30.0, "seconds per exact optimum", above=0, high=WEEK),
        Param("max_rounds", 10_000, "a round limit", low=1, high=100_000_000),
        Param(
            "address",
            "",
            "a Ray cluster address ('auto', 'host:port'); empty: start Ray here",
            expected="a string",
        ),
        Param(
            "dispatch",
            "auto",
            "where trials run: 'ray' as Ray work on the cluster's nodes, 'pool' in processes on "
            "this machine, 'auto' on Ray when the sweep uses Ray (an address, or ray-runtime "
            "trials), else the pool",
            choices=("auto", "pool", "ray"),
        ),
        Param(
            "workers",
            0,
            "trials in parallel (0 = one per CPU of this machine, or of the Ray cluster on the "
            "ray runtime)",
            low=0,
            high=1024,
        ),
        Param(
            "agents_per_actor",
            0,
            "agents hosted by one Ray actor (0: placed for speed, one actor per agent while "
            "the trial has a CPU for each, else packed into about one host actor per CPU; "
            "1: an actor for every agent)",
            low=0,
            high=MAX_AGENTS,
        ),
        Param(
            "max_actors",
            0,
            "most actors per trial on the ray runtime (0: the cluster's CPUs shared among the "
            "trials running at once)",
            low=0,
            high=MAX_AGENTS,
        ),
        Param(
            "market_checks",
            64,
            "agents x tasks up to which market trials get the truthfulness and stability "
            "checks (0 = never)",
            low=0,
            high=10**9,
        ),
        Param(
            "memory_limit_mb",
            0,
            "megabytes a trial's process may allocate (0 = 70% of this machine's memory shared "
            "among the workers); past it the trial is stored as an error",
            low=0,
            high=1 << 30,
        ),
        Param("out", "results", "the result root directory"),
        Param(
            "cache",
            True,
            "reuse a stored done or skip row of the same trial key and code version from "
            "another run under --out (--no-cache: run every trial)",
        ),
        Param(
            "max_draws",
            100,
            "most Monte Carlo draws an [[uncertainty]] profile may ask per trial",
            low=1,
            high=100_000,
        ),
        Param(
            "trace_rounds",
            False,
            "record each round's messages, objective, coverage and conflicts (synchronous "
            "allocators; the time it takes is not counted)",
        ),
    )
}


@dataclass
class AllocatorEntry:
    name: str
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def variants(self, source: str, where: str) -> list[dict[str, Any]]:
        cls = allocators.get(self.name, source, f"{where}.name")
        out = []
        for combo in _grid(self.grid):
            out.append(cls.resolve_params(combo, source, f"{where}.params"))
        return out


@dataclass
class FamilyEntry:
    name: str
    sizes: list[tuple[int, int]] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    #: a frozen suite's folder (harness/frozen.py): the family's instances are read from it
    frozen: str = ""


@dataclass
class BenchSpec:
    settings: dict[str, Any]
    allocators: list[AllocatorEntry]
    families: list[FamilyEntry]
    source: str = "spec"
    faults: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    #: ``[execution]``: agents travel while the allocator re-plans (harness/execution.py);
    #: empty: trials only plan
    execution: dict[str, Any] = field(default_factory=dict)
    #: ``[check]``: tolerances ``harness check`` applies to this run (flags win over them)
    check: dict[str, Any] = field(default_factory=dict)
    #: ``[[uncertainty]]``: what agents believe (harness/uncertainty.py), a grid axis
    uncertainty: list[dict[str, Any]] = field(default_factory=lambda: [{}])

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench": dict(self.settings),
            "allocators": [{"name": a.name, "params": a.grid} for a in self.allocators],
            "families": [
                {
                    "name": f.name,
                    **({"sizes": [f"{n}x{m}" for n, m in f.sizes]} if f.sizes else {}),
                    **({"instances": f.instances} if f.instances else {}),
                    **({"frozen": f.frozen} if f.frozen else {}),
                    "params": f.grid,
                }
                for f in self.families
            ],
            "faults": [dict(f) for f in self.faults],
            **({"execution": dict(self.execution)} if self.execution else {}),
            **({"check": dict(self.check)} if self.check else {}),
            **(
                {"uncertainty": [dict(u) for u in self.uncertainty]}
                if self.uncertainty != [{}]
                else {}
            ),
        }

    def spec_hash(self) -> str:
        d = self.to_dict()
        d["bench"] = {
            k: v
            for k, v in d["bench"].items()
            if k not in ("out", "workers", "address", "dispatch", "memory_limit_mb", "cache")
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def workers(self) -> int:
        return self.settings["workers"] or os.cpu_count() or 1


def _grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = sorted(params)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(params[k] for k in keys))
    ]


def _as_grid(value: Any, source: str, where: str) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(source, where, "a table of parameter = value or [values]", value)
    out = {}
    for k, v in value.items():
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise SpecError(source, f"{where}.{k}", "at least one value", v)
        out[k] = vals
    return out


#: upper bounds of numeric settings (a bound keeps a typo from taking the machine)
def check_setting(key: str, value: Any, source: str) -> Any:
    if key not in SETTINGS:
        raise SpecError(source, f"bench.{key}", f"one of the settings {', '.join(SETTINGS)}")
    return SETTINGS[key].check(value, source, f"bench.{key}")


def spec_from_dict(d: dict[str, Any], source: str = "spec") -> BenchSpec:
    if not isinstance(d, dict):
        raise SpecError(source, "(top level)", "a table")
    tables = {"bench", "allocators", "families", "faults", "execution", "check", "uncertainty"}
    unknown = sorted(set(d) - tables)
    if unknown:
        raise SpecError(
            source,
            unknown[0],
            "only [bench], [[allocators]], [[families]], [[faults]], [[uncertainty]], "
            "[execution] and [check]",
        )
    settings = defaults(SETTINGS.values())
    bench = d.get("bench", {})
    if not isinstance(bench, dict):
        raise SpecError(source, "bench", "a table of settings", bench)
    for k, v in bench.items():
        settings[k] = check_setting(k, v, source)
    allocs = []
    for i, a in enumerate(_list(d.get("allocators"), source, "allocators")):
        where = f"allocators[{i}]"
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise SpecError(source, f"{where}.name", "an allocator name", a)
        extra = sorted(set(a) - {"name", "params"})
        if extra:
            raise SpecError(source, f"{where}.{extra[0]}", "only 'name' and 'params'")
        entry = AllocatorEntry(a["name"], _as_grid(a.get("params"), source, f"{where}.params"))
        entry.variants(source, where)  # validates names and values now
        allocs.append(entry)
    fams = []
    for i, f in enumerate(_list(d.get("families"), source, "families")):
        where = f"families[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise SpecError(source, f"{where}.name", "a family name", f)
        extra = sorted(set(f) - {"name", "sizes", "instances", "params", "frozen"})
        if extra:
            raise SpecError(
                source,
                f"{where}.{extra[0]}",
                "only 'name', 'sizes', 'instances', 'params' and 'frozen'",
            )
        fam = get_family(f["name"], source, f"{where}.name")
        if "frozen" in f:
            fams.append(_frozen_entry(f, fam.name, source, where))
            continue
        grid = _as_grid(f.get("params"), source, f"{where}.params")
        for combo in _grid(grid):
            fam.check_params(combo, source, f"{where}.params")
        sizes, instances = f.get("sizes", []), f.get("instances", [])
        if fam.kind == "generated":
            if instances:
                raise SpecError(
                    source,
                    f"{where}.instances",
                    f"no instances: {fam.name} is generated, give 'sizes'",
                )
            if not isinstance(sizes, list) or not sizes:
                raise SpecError(source, f"{where}.sizes", 'a list of sizes like ["10x5"]', sizes)
            parsed = [parse_size(s, source, f"{where}.sizes[{k}]") for k, s in enumerate(sizes)]
            fams.append(FamilyEntry(fam.name, sizes=parsed, grid=grid))
        else:
            if sizes:
                raise SpecError(
                    source, f"{where}.sizes", f"no sizes: {fam.name} is a dataset, give 'instances'"
                )
            if (
                not isinstance(instances, list)
                or not instances
                or not all(isinstance(x, str) for x in instances)
            ):
                raise SpecError(source, f"{where}.instances", "a list of instance names", instances)
            fams.append(FamilyEntry(fam.name, instances=list(instances), grid=grid))
    if not allocs:
        raise SpecError(source, "allocators", "at least one [[allocators]] entry")
    if not fams:
        raise SpecError(source, "families", "at least one [[families]] entry")
    profiles = _list(d.get("faults"), source, "faults") or [{}]
    seen: dict[str, int] = {}
    for i, prof in enumerate(profiles):
        where = f"faults[{i}]"
        parse_faults(prof, source, where)
        label = fault_name(prof)
        if label in seen:
            raise SpecError(
                source, f"{where}.name", f"a name not used by faults[{seen[label]}]", label
            )
        seen[label] = i
    execution = d.get("execution", {})
    if execution != {}:
        from harness.execution import ExecSettings

        execution = ExecSettings.from_dict(execution, source, "execution").to_dict()
    check = check_table(d.get("check") or {}, source)
    beliefs = uncertainty_profiles(d.get("uncertainty"), source, settings["max_draws"])
    return BenchSpec(
        settings, allocs, fams, source, [dict(p) for p in profiles], execution, check, beliefs
    )


def uncertainty_profiles(value: Any, source: str, max_draws: int) -> list[dict[str, Any]]:
    """Check ``[[uncertainty]]`` (harness/uncertainty.py): each profile's fields, and names
    (a profile's label) used once."""
    from harness.uncertainty import Uncertainty

    profiles = _list(value, source, "uncertainty") or [{}]
    seen: dict[str, int] = {}
    for i, prof in enumerate(profiles):
        if not isinstance(prof, dict):
            raise SpecError(source, f"uncertainty[{i}]", "a table of settings", prof)
        label = Uncertainty.from_dict(prof, source, f"uncertainty[{i}]", max_draws).label
        if label in seen:
            raise SpecError(
                source,
                f"uncertainty[{i}].name",
                f"a name (or settings) other than uncertainty[{seen[label]}]'s",
                label,
            )
        seen[label] = i
    return [dict(p) for p in profiles]


def check_table(value: Any, source: str) -> dict[str, Any]:
    """Validate a spec's ``[check]`` table (regression-check tolerances, docs/regression.md)."""
    from harness.regress import CHECK_PARAMS, SPEC_CHECK

    decl = [CHECK_PARAMS[k] for k in SPEC_CHECK]
    return resolve(decl, value, source, "check", "[check] settings", fill=False)


def _frozen_entry(f: dict[str, Any], family: str, source: str, where: str) -> FamilyEntry:
    """``{name = FAMILY, frozen = PATH}``: PATH relative to the spec file's folder."""
    from harness.frozen import INDEX, frozen_recipes

    extra = sorted(k for k in set(f) - {"name", "frozen"} if f[k] not in ({}, []))
    if extra:
        raise SpecError(
            source, f"{where}.{extra[0]}", "only 'name' with 'frozen' (the suite fixes the rest)"
        )
    path = f["frozen"]
    if not isinstance(path, str) or not path:
        raise SpecError(source, f"{where}.frozen", "the path of a frozen suite's folder", path)
    base = Path(source).parent if Path(source).is_file() else Path.cwd()
    suite = (base / path).resolve()
    if not (suite / INDEX).exists():
        raise SpecError(
            source, f"{where}.frozen", f"a folder holding {INDEX} (looked in {suite})", path
        )
    if not frozen_recipes(suite, family):
        raise SpecError(source, f"{where}.name", f"a family with instances in {suite}", family)
    return FamilyEntry(family, frozen=str(suite))


def _list(value: Any, source: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(source, where, f"an array of tables ([[{where}]])", value)
    return value


def _inline_table(text: str) -> dict[str, Any]:
    """One TOML inline table (``{drop = 0.1}``), and nothing after it."""
    parsed = tomllib.loads(f"x = {text}")
    if set(parsed) != {"x"} or not isinstance(parsed["x"], dict):
        raise tomllib.TOMLDecodeError("expected one inline table and nothing else")
    return parsed["x"]


def load_spec(path: str | Path) -> BenchSpec:
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), "(file)", "an existing TOML spec file")
    text = read_text(path, SpecError)
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), "(syntax)", "valid TOML", str(exc)) from None
    return spec_from_dict(d, str(path))


#: The suite ``harness bench`` runs with no arguments: a few allocators, both ``assignment`` and
#: ``tdr``, sizes small enough for exact optima plus one larger size; a few minutes on a laptop.
DEFAULT_SPEC: dict[str, Any] = {
    "bench": {"seeds": 5, "trace_rounds": True},
    "allocators": [{"name": n} for n in ("cbaa", "cbba", "greedy_nn", "sga", "hungarian", "milp")],
    "families": [
        {"name": "assignment", "sizes": ["5x5", "10x10", "50x50", "100x100"]},
        {"name": "tdr", "sizes": ["8x3", "10x4", "60x10", "150x20"]},
    ],
}


def default_spec() -> BenchSpec:
    return spec_from_dict(copy.deepcopy(DEFAULT_SPEC), "default suite")


def _csv(text: str, flag: str, what: str) -> list[str]:
    """A comma-separated flag value as its non-empty items."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise SpecError("command line", flag, f"a comma-separated list of {what}", text)
    return items


def apply_overrides(
    spec: BenchSpec,
    *,
    allocators_csv: str | None = None,
    family: str | None = None,
    sizes_csv: str | None = None,
    instances_csv: str | None = None,
    family_params: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    faults: list[str] | None = None,
    execution: str | None = None,
    uncertainty: list[str] | None = None,
) -> BenchSpec:
    """Command-line flags over a spec: flags win over the file's values. ``faults``: fault
    profiles as TOML inline tables (``{drop = 0.1, reorder = true}``), replacing the spec's."""
    d = spec.to_dict()
    src = "command line"
    if faults:
        d["faults"] = []
        for i, text in enumerate(faults):
            try:
                d["faults"].append(_inline_table(text))
            except tomllib.TOMLDecodeError as exc:
                raise SpecError(
                    src, f"--faults[{i}]", "a TOML inline table like '{drop = 0.1}'", text
                ) from exc
    if uncertainty:
        d["uncertainty"] = []
        for i, text in enumerate(uncertainty):
            try:
                d["uncertainty"].append(_inline_table(text))
            except tomllib.TOMLDecodeError as exc:
                raise SpecError(
                    src,
                    f"--uncertainty[{i}]",
                    "a TOML inline table like '{model = \"lognormal\", draws = 10}'",
                    text,
                ) from exc
    if execution is not None:
        try:
            d["execution"] = _inline_table(execution) or {"mode": "auto"}
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(
                src, "--execute", "a TOML inline table like '{speed = 5.0}'", execution
            ) from exc
    for k, v in (settings or {}).items():
        if v is not None:
            d["bench"][k] = check_setting(k, v, src)
    if allocators_csv:
        names = _csv(allocators_csv, "--allocators", "allocator names")
        import allocators

        for n in names:  # named by the flag the user typed, with the nearest name
            allocators.get(n, src, "--allocators")
        keep = {a["name"]: a for a in d["allocators"]}
        d["allocators"] = [keep.get(n, {"name": n}) for n in names]
    if family or sizes_csv or instances_csv or family_params:
        if family is None:
            if len(d["families"]) != 1:
                raise SpecError(
                    src, "--family", "a family name when --size/--instances/--comm are given"
                )
            family = d["families"][0]["name"]
        names = _csv(family, "--family", "family names")
        fams = {n: get_family(n, src, "--family") for n in names}
        generated = [n for n in names if fams[n].kind == "generated"]
        datasets = [n for n in names if fams[n].kind != "generated"]
        if instances_csv and not datasets:
            raise SpecError(
                src,
                "--instances",
                f"no instances: {family} is generated, give --size",
                instances_csv,
            )
        if sizes_csv and not generated:
            raise SpecError(
                src, "--size", f"no sizes: {family} is a dataset, give --instances", sizes_csv
            )
        sizes = _csv(sizes_csv, "--size", "sizes TASKSxAGENTS") if sizes_csv else None
        for text in sizes or ():
            parse_size(text, src, "--size")
        entries = []
        for name in names:
            old = next((f for f in d["families"] if f["name"] == name), {"name": name})
            entry: dict[str, Any] = {
                "name": name,
                "params": {**old.get("params", {}), **(family_params or {})},
            }
            if fams[name].kind == "generated":
                entry["sizes"] = sizes or old.get("sizes")
                if not entry["sizes"]:
                    raise SpecError(src, "--size", f"sizes for {name}, like --size 10x5,20x4")
            else:
                inst = _csv(instances_csv, "--instances", "names") if instances_csv else None
                entry["instances"] = inst or old.get("instances")
                if not entry["instances"]:
                    raise SpecError(
                        src, "--instances", f"instance names for {name}, like --instances eil51"
                    )
            entries.append(entry)
        d["families"] = entries
    return spec_from_dict(
        d, spec.source if not (family or allocators_csv) else f"{spec.source} + command line"
    )
