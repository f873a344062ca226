"""Non-editable installs: the wheel carries the search spaces and recipes, and an installed copy
finds them from any working folder; ``search --help`` lists the spaces found."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT as REPO

SPACES = sorted(p.stem for p in (REPO / "search_spaces").glob("*.yaml"))
RECIPES = sorted(p.stem for p in (REPO / "automl_asd" / "recipes").glob("*.json"))


def test_package_list_matches_the_source_folders() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts)
             for p in (REPO / "automl_asd").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert listed == found | {"automl_asd.search_spaces", "automl_asd.recipes"}


def test_every_shipped_space_loads_by_name_from_another_folder(tmp_path: Path) -> None:
    code = ("from automl_asd.search.space import load_space, shipped_space_names\n"
            "names = shipped_space_names()\n"
            "print(' '.join(f'{n}={load_space(n).name}' for n in names))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [f"{n}={n}" for n in SPACES]
    assert {"default", "demo", "margin", "smoke"} <= set(SPACES)


def test_search_help_lists_the_spaces_found() -> None:
    res = subprocess.run([sys.executable, "-m", "automl_asd.cli", "search", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "shipped name: " + ", ".join(SPACES) in text


@pytest.mark.slow
def test_wheel_ships_spaces_and_recipes_and_an_installed_copy_loads_them(
        tmp_path: Path) -> None:
    # Build from a copy of the sources: setuptools writes build/ and *.egg-info next to them.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for item in ("automl_asd", "search_spaces"):
        shutil.copytree(REPO / item, src / item, ignore=skip)
    for item in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / item, src / item)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=600,
        cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("automl_asd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for space in SPACES:
        assert f"automl_asd/search_spaces/{space}.yaml" in names
    for recipe in RECIPES:
        assert f"automl_asd/recipes/{recipe}.json" in names
    assert not any(n.startswith("search_spaces/") for n in names)  # no top-level package

    # Install the wheel's files into a folder first on sys.path (the dependencies come from
    # this environment) and use it from an empty working folder.
    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                           "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr
    work = tmp_path / "empty"
    work.mkdir()
    code = ("import automl_asd, automl_asd.search.space as s\n"
            "from automl_asd.recipe import load_recipe, shipped_recipe_names\n"
            "print(automl_asd.__file__)\n"
            "print(s.SHIPPED_SPACES_DIR)\n"
            "print(' '.join(f'{n}={s.load_space(n).name}' for n in s.shipped_space_names()))\n"
            "print(' '.join(f'{n}={load_recipe(n).name}' for n in shipped_recipe_names()))\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    res = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    pkg, spaces_dir, spaces, recipes = res.stdout.strip().splitlines()
    assert Path(pkg).is_relative_to(target)
    assert Path(spaces_dir) == target / "automl_asd" / "search_spaces"
    assert spaces.split() == [f"{n}={n}" for n in SPACES]
    assert recipes.split() == [f"{n}={n}" for n in RECIPES]
