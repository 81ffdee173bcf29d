"""From a spec to trials: instance recipes, stable keys and stored seeds (DESIGN §6).

Seeds are hashes of the axes that define a trial (benchopt's habit), so adding an allocator or
a size never changes the seeds of the others. A trial's key hashes (allocator and its resolved
parameters, instance content hash, seed, runtime, faults).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allocators
from harness.codeversion import code_version
from harness.errors import InputError, SpecError
from harness.faults import fault_name, parse_faults
from harness.frozen import frozen_recipes
from harness.model import Instance
from harness.scenarios import get_family, make_instance
from harness.spec import BenchSpec, _grid
from harness.uncertainty import Uncertainty


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from the JSON of ``parts``."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def trial_key(
    alg: str,
    params: dict[str, Any],
    inst_hash: str,
    seed: int,
    runtime: str,
    faults: dict[str, Any],
    execution: dict[str, Any] | None = None,
    uncertainty: dict[str, Any] | None = None,
) -> str:
    payload = {
        "allocator": alg,
        "params": params,
        "instance": inst_hash,
        "seed": seed,
        "runtime": runtime,
        "faults": faults,
    }
    if execution:  # planning-only trials keep the keys they had before execution existed
        payload["execution"] = execution
    if uncertainty:  # as do trials whose agents see the true positions
        payload["uncertainty"] = uncertainty
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class InstanceSpec:
    recipe: dict[str, Any]
    hash: str
    name: str
    family: str
    objective: str
    n_tasks: int
    n_agents: int
    features: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        """The identity columns shared by trial rows and optimum rows."""
        return {
            "inst_hash": self.hash,
            "inst_name": self.name,
            "inst_family": self.family,
            "inst_objective": self.objective,
            "inst_n_tasks": self.n_tasks,
            "inst_n_agents": self.n_agents,
        }


@dataclass
class Trial:
    key: str
    allocator: str
    params: dict[str, Any]
    instance: InstanceSpec
    seed: int
    rep: int
    runtime: str
    faults: dict[str, Any] = field(default_factory=dict)
    fault_name: str = "none"
    execution: dict[str, Any] = field(default_factory=dict)
    #: ``Uncertainty.to_dict()`` (empty: the true positions) and its label
    uncertainty: dict[str, Any] = field(default_factory=dict)
    uncertainty_name: str = "none"

    def base_row(self, run_id: str, time_limit: float) -> dict[str, Any]:
        """Identifying columns every stored row has, whatever its status."""
        inst = self.instance
        row: dict[str, Any] = {
            "trial_key": self.key,
            "trial_run_id": run_id,
            "trial_seed": self.seed,
            "trial_rep": self.rep,
            "trial_runtime": self.runtime,
            "trial_faults": json.dumps(self.faults, sort_keys=True),
            "trial_fault_name": self.fault_name,
            "trial_execution": json.dumps(self.execution, sort_keys=True) if self.execution else "",
            "trial_uncertainty": json.dumps(self.uncertainty, sort_keys=True)
            if self.uncertainty
            else "",
            "trial_uncertainty_name": self.uncertainty_name,
            "trial_time_limit": time_limit,
            "alg_name": self.allocator,
            "alg_params": json.dumps(self.params, sort_keys=True),
            "trial_code_version": code_version(self.allocator),
            **inst.columns(),
            "inst_size": f"{inst.n_tasks}x{inst.n_agents}",
            "inst_recipe": json.dumps(inst.recipe, sort_keys=True),
        }
        row.update({f"alg_p_{k}": v for k, v in sorted(self.params.items())})
        row.update(inst.features)
        return row


def instance_features(inst: Instance) -> dict[str, Any]:
    """Instance facts that become result columns, so every table can be sliced by them."""
    n_edges = len(inst.comm.edges)
    return {
        "inst_seed": inst.meta.get("seed"),
        "inst_source": inst.meta.get("source", "generated"),
        "inst_comm": inst.comm.kind,
        "inst_edges": n_edges,
        "inst_mean_degree": 2.0 * n_edges / inst.n_agents,
        "inst_diameter": inst.comm.diameter(inst.n_agents),
        "inst_bundle_limit": int(inst.agents["max_tasks"].max()),
        "inst_time_windows": bool((inst.tasks["tw_end"] < float("inf")).any()),
    }


def expand(spec: BenchSpec) -> tuple[list[Trial], dict[str, InstanceSpec], list[str]]:
    """All trials of a spec, the instances they use (by hash), and notes on skipped pairs."""
    s = spec.settings
    instances: dict[str, InstanceSpec] = {}
    per_family: list[tuple[str, list[tuple[InstanceSpec, int]]]] = []
    for fi, fam_entry in enumerate(spec.families):
        fam = get_family(fam_entry.name)
        built: list[tuple[InstanceSpec, int]] = []
        for params in _grid(fam_entry.grid):
            if fam_entry.frozen:
                recipes = frozen_recipes(Path(fam_entry.frozen), fam.name)
            elif fam.kind == "generated":
                recipes = [
                    (
                        {
                            "family": fam.name,
                            "size": [n, m],
                            "params": params,
                            "seed": derive_seed(
                                s["root_seed"], "instance", fam.name, n, m, params, rep
                            ),
                        },
                        rep,
                    )
                    for n, m in fam_entry.sizes
                    for rep in range(s["seeds"])
                ]
            else:
                recipes = [
                    ({"family": fam.name, "instance": name, "params": params}, rep)
                    for name in fam_entry.instances
                    for rep in range(s["seeds"])
                ]
            cache: dict[str, InstanceSpec] = {}
            for recipe, rep in recipes:
                ident = json.dumps({k: v for k, v in recipe.items()}, sort_keys=True)
                if ident not in cache:
                    try:
                        inst = make_instance(recipe)
                    except InputError as exc:
                        raise SpecError(
                            spec.source, f"families[{fi}]", f"instances that load; {exc}"
                        ) from None
                    cache[ident] = InstanceSpec(
                        recipe,
                        inst.content_hash(),
                        inst.name,
                        inst.family,
                        inst.objective,
                        inst.n_tasks,
                        inst.n_agents,
                        instance_features(inst),
                    )
                spec_i = cache[ident]
                instances[spec_i.hash] = spec_i
                built.append((spec_i, rep))
        per_family.append((fam.name, built))
    trials: list[Trial] = []
    notes: list[str] = []
    profiles = [
        (fault_name(f), parse_faults(f, spec.source, f"faults[{i}]"))
        for i, f in enumerate(spec.faults)
    ]
    beliefs = [
        Uncertainty.from_dict(u, spec.source, f"uncertainty[{i}]", s["max_draws"])
        for i, u in enumerate(spec.uncertainty)
    ]
    first: dict[str, int] = {}
    for i, (label, prof) in enumerate(profiles):
        same = json.dumps(prof.to_dict(), sort_keys=True)
        if same in first:  # equal settings give equal trial keys: one would vanish
            j = first[same]
            raise SpecError(
                spec.source,
                f"faults[{i}]",
                f"settings other than faults[{j}]'s ({profiles[j][0]!r}): '{label}' injects "
                "the same faults, so its trials would be the same trials",
                spec.faults[i],
            )
        first[same] = i
        groups = sorted(set().union(*prof.partition)) if isinstance(prof.partition, tuple) else []
        named = [("partition.groups", "agent ids", a) for a in groups[-1:]]
        named += [("crash", "an agent id", a) for a, _rnd in prof.crash]
        for where, what, agent in named:
            small = [x for x in instances.values() if x.n_agents <= agent]
            if small:
                raise SpecError(
                    spec.source,
                    f"faults[{i}].{where}",
                    f"{what} below {small[0].n_agents}, the agent count of {small[0].name}",
                    agent,
                )
    for ai, entry in enumerate(spec.allocators):
        cls = allocators.get(entry.name)
        for params in entry.variants(spec.source, f"allocators[{ai}]"):
            for fam_name, built in per_family:
                if fam_name not in cls.families:
                    notes.append(f"{entry.name} does not support family {fam_name}: not run")
                    continue
                for inst_spec, rep in built:
                    # the seed leaves faults out: profiles compare on the same runs, paired
                    seed = derive_seed(
                        s["root_seed"], "trial", entry.name, params, inst_spec.hash, rep
                    )
                    for (label, prof), belief in itertools.product(profiles, beliefs):
                        faults = prof.to_dict()
                        key = trial_key(
                            entry.name,
                            params,
                            inst_spec.hash,
                            seed,
                            s["runtime"],
                            faults,
                            spec.execution,
                            belief.to_dict(),
                        )
                        trials.append(
                            Trial(
                                key,
                                entry.name,
                                params,
                                inst_spec,
                                seed,
                                rep,
                                s["runtime"],
                                faults,
                                label,
                                dict(spec.execution),
                                belief.to_dict(),
                                belief.label,
                            )
                        )
    seen: set[str] = set()
    unique = []
    for t in trials:
        if t.key not in seen:
            seen.add(t.key)
            unique.append(t)
    return unique, instances, sorted(set(notes))
