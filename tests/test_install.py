"""The harness as installed, not only as a checkout: shipped data and specs found through the
package, user suites written where the user is, the version, and a wheel that runs from
another directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InputError
from tests.cli import ROOT, harness_cli


def test_shipped_data_and_specs_are_packages_not_paths_beside_the_code():
    from harness.resources import DATA_PACKAGE, SPECS_PACKAGE, package_dir, shipped_specs

    assert (package_dir(DATA_PACKAGE) / "solomon" / "C101.txt").is_file()
    assert (package_dir(DATA_PACKAGE) / "frozen" / "ci" / "suite.toml").is_file()
    assert {"magnet", "fmmra", "patel_ga", "ci"} <= set(shipped_specs())
    assert package_dir(SPECS_PACKAGE) == ROOT / "docs" / "specs"


def test_a_missing_instance_names_the_folder_the_override_and_the_nearest_name(monkeypatch):
    from harness.loaders import load

    with pytest.raises(InputError) as err:
        load("tsplib", "eil5")
    text = str(err.value)
    assert "HARNESS_DATASETS" in text and "did you mean eil51?" in text
    monkeypatch.setenv("HARNESS_DATASETS", "/nowhere")
    with pytest.raises(InputError) as err:
        load("solomon", "C101")
    assert "$HARNESS_DATASETS=/nowhere" in str(err.value)


def test_paper_specs_resolve_by_name_and_a_typo_gets_a_suggestion():
    from harness.resources import resolve_spec

    assert resolve_spec("paper:magnet").name == "magnet.toml"
    assert resolve_spec("my/spec.toml") == Path("my/spec.toml")
    with pytest.raises(InputError, match="did you mean magnet"):
        resolve_spec("paper:magnt")


def test_specs_list_and_a_shipped_paper_spec_at_a_small_size(tmp_path):
    r = harness_cli("specs", "list", cwd=tmp_path)
    assert r.returncode == 0 and "paper:magnet" in r.stdout, r.stderr
    out = tmp_path / "res"
    r = harness_cli(
        "bench", "paper:magnet", "--size", "2x1", "--seeds", "1", "--runtime", "local",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "logistics" in r.stdout and list(out.glob("*/manifest.json"))


def test_freeze_writes_into_the_current_directory_and_finds_suites_by_name(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[bench]\nseeds = 1\n[[allocators]]\nname = "sga"\n'
                    '[[families]]\nname = "tdr"\nsizes = ["6x2"]\n')  # fmt: skip
    r = harness_cli("datasets", "freeze", str(spec), "--name", "mine", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "frozen" / "mine" / "suite.toml").is_file()
    listed = harness_cli("datasets", "list", cwd=tmp_path).stdout
    assert "mine" in listed and "ci" in listed  # the user's suite and the shipped one
    assert harness_cli("datasets", "verify", "mine", cwd=tmp_path).returncode == 0
    r = harness_cli("datasets", "verify", "mne", cwd=tmp_path)
    assert r.returncode != 0 and "did you mean mine?" in r.stderr.replace("\n", " ")


def test_version():
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.startswith("harness 0.")


@pytest.mark.slow
def test_the_wheel_runs_from_another_directory(tmp_path):
    """Build the wheel, install it (without dependencies: this environment has them) into a
    folder that comes first on the path, and run from a directory outside the checkout."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    away = tmp_path / "away"
    away.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", *args],
            cwd=away, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    where = subprocess.run(
        [sys.executable, "-c", "import harness; print(harness.__file__)"],
        cwd=away, env=env, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(site)), where
    listed = run("datasets", "list")
    assert "ci" in listed.stdout and str(site) in listed.stdout, listed.stderr
    r = run("bench", "--family", "solomon", "--instances", "C101", "--allocators", "sga",
            "--runtime", "local", "--no-optimum", "--out", str(away / "res"))  # fmt: skip
    assert r.returncode == 0 and "solomon" in r.stdout, r.stderr
    r = run("bench", "paper:magnet", "--size", "2x1", "--seeds", "1", "--runtime", "local",
            "--out", str(away / "res"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert not (site / "dta_harness_data" / "frozen" / "mine").exists()
