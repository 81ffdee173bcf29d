"""Where the harness finds what it ships and where it writes what users make.

Shipped, read-only, found with ``importlib`` whether the project runs from a checkout or from
an installed wheel:

- the public instance sets and the frozen suites: the ``dta_harness_data`` package, which is
  the repository's ``datasets/`` folder (pyproject.toml maps it), unless ``$HARNESS_DATASETS``
  names another folder of the same layout;
- the papers' experiments: the ``dta_harness_specs`` package, the repository's
  ``docs/specs/``; ``harness specs list`` shows them and ``harness bench paper:NAME`` runs one.

Made by users: frozen suites go to ``./frozen/NAME`` in the current directory unless
``--dir`` says otherwise; nothing is ever written into the installed package.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from harness.errors import InputError, suggest

DATA_PACKAGE = "dta_harness_data"
SPECS_PACKAGE = "dta_harness_specs"
DATASETS_ENV = "HARNESS_DATASETS"
PAPER_PREFIX = "paper:"


def package_dir(name: str) -> Path:
    """The folder of a data package (a namespace package: no ``__init__.py``)."""
    spec = importlib.util.find_spec(name)
    places = [] if spec is None else list(spec.submodule_search_locations or [])
    if not places:
        raise InputError(
            name, "(package)", "the harness's data installed with it (pip install dta-harness)"
        )
    return Path(places[0])


def datasets_dir() -> Path:
    """``$HARNESS_DATASETS``, or the instance sets shipped with the harness."""
    env = os.environ.get(DATASETS_ENV)
    return Path(env) if env else package_dir(DATA_PACKAGE)


def datasets_hint() -> str:
    """Where instance files were looked for, for error messages."""
    env = os.environ.get(DATASETS_ENV)
    if env:
        return f"${DATASETS_ENV}={env}"
    return (
        f"the shipped instance sets ({datasets_dir()}; set ${DATASETS_ENV} to use another folder)"
    )


def shipped_frozen_dir() -> Path:
    """The frozen suites shipped with the harness (read-only)."""
    return datasets_dir() / "frozen"


def user_frozen_dir() -> Path:
    """Where ``harness datasets freeze`` writes by default: ``./frozen`` here."""
    return Path.cwd() / "frozen"


def frozen_dirs() -> list[Path]:
    """Where named frozen suites are looked for: the user's folder first, then the shipped."""
    return [user_frozen_dir(), shipped_frozen_dir()]


def specs_dir() -> Path:
    return package_dir(SPECS_PACKAGE)


def shipped_specs() -> dict[str, Path]:
    """The papers' experiment specs shipped with the harness, by name (file stem)."""
    return {p.stem: p for p in sorted(specs_dir().glob("*.toml"))}


def spec_summary(path: Path) -> str:
    """The first comment line of a spec file: what the experiment is."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line:
            break
    return ""


def resolve_spec(arg: str) -> Path:
    """A spec argument as a file: ``paper:NAME`` is a shipped spec; anything else a path."""
    if not arg.startswith(PAPER_PREFIX):
        return Path(arg)
    name = arg[len(PAPER_PREFIX) :]
    specs = shipped_specs()
    if name not in specs:
        raise InputError(
            "command line",
            "spec",
            f"{PAPER_PREFIX}NAME with NAME one of {', '.join(specs)}{suggest(name, specs)}",
            arg,
        )
    return specs[name]
