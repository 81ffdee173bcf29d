"""Allocation algorithms, one module each. The registry is this folder: every public module is
imported and every :class:`harness.api.Allocator` subclass it defines with a ``name`` is an
allocator. Modules whose names start with ``_`` hold shared agent logic.

Allocators kept outside this folder are registered by naming their modules in the environment
variable ``HARNESS_EXTRA_ALLOCATORS`` (comma-separated, importable module names); worker
processes inherit it. A class there with ``override = True`` replaces the allocator of the same
name (a patched version run under the name its baseline knows: ``harness check``)."""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import cache

from harness.api import Allocator
from harness.errors import SpecError, suggest


@cache
def available() -> dict[str, type[Allocator]]:
    found: dict[str, type[Allocator]] = {}
    names = [
        f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
    ]
    names += [
        n.strip() for n in os.environ.get("HARNESS_EXTRA_ALLOCATORS", "").split(",") if n.strip()
    ]
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise SpecError(
                "HARNESS_EXTRA_ALLOCATORS", name, "an importable module", str(exc)
            ) from None
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Allocator)
                and obj.name
                and obj.__module__ == module.__name__
            ):
                if obj.name in found and getattr(obj, "override", False):
                    found[obj.name] = obj  # an extra module's patched version, on purpose
                    continue
                if obj.name in found:
                    raise RuntimeError(
                        f"allocator name {obj.name!r} defined twice ({module.__name__})"
                    )
                found[obj.name] = obj
    return dict(sorted(found.items()))


def get(name: str, source: str = "command line", where: str = "allocator") -> type[Allocator]:
    table = available()
    if name not in table:
        raise SpecError(
            source, where, f"one of the allocators {', '.join(table)}{suggest(name, table)}", name
        )
    return table[name]
