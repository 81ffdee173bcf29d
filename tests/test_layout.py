"""The floors of docs/layout.md: allocators are free of Ray, actors and the coordinator; the
Ray side is free of the coordinator; the foundation imports only itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COORDINATOR = ("harness.cli", "harness.bench", "harness.freeze", "harness.pool", "harness.perf",
               "harness.trials", "harness.worker", "harness.spec",
               "harness.cluster_pool")  # fmt: skip
RUNTIMES = ("harness.runtime_local", "harness.execution", "harness.transport")


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _bad(mods: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in mods if any(m == b or m.startswith(b + ".") for b in banned))


@pytest.mark.parametrize("path", sorted((ROOT / "allocators").glob("*.py")), ids=lambda p: p.name)
def test_allocators_stay_free_of_ray_actors_runtimes_and_the_coordinator(path):
    assert _bad(imports(path), ("ray", "actors", "reports", *COORDINATOR, *RUNTIMES)) == []


@pytest.mark.parametrize("path", sorted((ROOT / "actors").glob("*.py")), ids=lambda p: p.name)
def test_the_ray_side_stays_free_of_the_coordinator(path):
    assert _bad(imports(path), ("reports", *COORDINATOR)) == []


FOUNDATION = ("harness.errors", "harness.numerics", "harness.params")


@pytest.mark.parametrize("name", FOUNDATION)
def test_the_foundation_imports_nothing_of_the_project_above_it(name):
    path = ROOT / "harness" / (name.split(".")[1] + ".py")
    project = [m for m in imports(path) if m.split(".")[0] in ("harness", "allocators", "actors")]
    assert sorted(set(project) - set(FOUNDATION)) == []


def test_reports_read_the_store_not_the_runtimes():
    for path in (ROOT / "reports").glob("*.py"):
        assert _bad(imports(path), ("allocators", "actors", *COORDINATOR, *RUNTIMES)) == [], path
