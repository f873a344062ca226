"""The lock (constraints.txt) and pyproject.toml agree; the environment runs the locked versions."""

from __future__ import annotations

import importlib.metadata
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures.paths import REPO_ROOT as ROOT


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    lock = _lock()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is declared in pyproject.toml but not locked"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"lock has {req.name}=={lock[name]}, outside pyproject's {req.specifier}"
        )


def test_torch_pair_is_pinned_exactly_in_both_files() -> None:
    lock = _lock()
    declared = {canonicalize_name(r.name): str(r.specifier) for r in _requirements()}
    for name in ("torch", "torchaudio"):
        assert declared[name] == "==2.11.0", f"pyproject must pin {name}==2.11.0 exactly"
        assert lock[name] == "2.11.0"


def test_lock_pins_the_installer_and_build_backend() -> None:
    lock = _lock()
    for name in ("pip", "setuptools", "wheel"):
        assert name in lock, f"{name} must be locked so installs do not float"


@pytest.mark.parametrize("name", ["torch", "torchaudio", "ray", "optuna", "numpy", "scikit-learn"])
def test_installed_versions_are_the_locked_ones(name: str) -> None:
    installed = importlib.metadata.version(name).split("+")[0]
    assert installed == _lock()[canonicalize_name(name)], (
        f"{name} {installed} is installed but constraints.txt locks {_lock()[name]}; "
        "reinstall with: bash tools/install.sh .venv dev --editable"
    )
