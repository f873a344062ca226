"""The package's import layering, pinned (ARCHITECTURE.md lists the same layers).

* Every core module (all but ``automl_asd.orchestration.*`` and the modules that reach it, i.e.
  the commands that start Ray work) imports without ``ray`` and ``optuna``: checked by importing
  them in a fresh interpreter.
* No module imports a module of a higher layer. Checked on the source (AST) over ALL imports:
  module level, inside functions and under ``TYPE_CHECKING``.
* No import cycles among the package's modules (module-level imports: what runs at import).

``LAYERS`` is the data: lowest first, each layer a tuple of module or package names (a package
covers its submodules; the longest matching name wins). A layer may import its own layer and
every lower one. ``automl_asd`` itself (the package face, ``__init__.py``) sits in the top layer.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "automl_asd"

#: Lowest layer first.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("automl_asd._version", "automl_asd.errors"),
    ("automl_asd.components", "automl_asd.environment", "automl_asd.progress"),
    ("automl_asd.data", "automl_asd.audio", "automl_asd.ground_truth", "automl_asd.download",
     "automl_asd.synth"),
    ("automl_asd.features", "automl_asd.caches"),
    ("automl_asd.nn", "automl_asd.backends", "automl_asd.detectors", "automl_asd.calibration",
     "automl_asd.evaluation.metrics"),
    ("automl_asd.recipe", "automl_asd.recipe_checks", "automl_asd.provenance"),
    ("automl_asd.io", "automl_asd.storage"),
    ("automl_asd.representation_cache", "automl_asd.pipeline", "automl_asd.supplemental"),
    ("automl_asd.bundle",),
    ("automl_asd.evaluation",),
    ("automl_asd.search", "automl_asd.apply", "automl_asd.recipe_summary"),
    ("automl_asd.orchestration",),
    ("automl_asd.serve", "automl_asd.commands", "automl_asd.cli", "automl_asd"),
)

#: The Ray layer; modules importing it (anywhere) are left out of the Ray-free import check.
RAY_LAYER = "automl_asd.orchestration"


# ----------------------------------------------------------------------------- the source
@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package by its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, importer: str) -> Iterable[str]:
    """The package modules one import statement names (``from pkg import sub`` names
    ``pkg.sub`` when that is a module, else ``pkg``)."""
    known = modules()
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolve against the importer's package
        pkg = importer if known[importer].name == "__init__.py" else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            pkg = pkg.rpartition(".")[0]
        base = f"{pkg}.{base}" if base else pkg
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in known else base


@cache
def imports(module: str, *, module_level_only: bool) -> frozenset[str]:
    """Package modules ``module`` imports: all imports, or only those run at import time
    (module level, not in functions, not under ``TYPE_CHECKING``)."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(body: list[ast.stmt], at_import: bool) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                if at_import or not module_level_only:
                    found.update(_targets(node, module))
            elif isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.body, False)
                visit(node.orelse, at_import)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(node.body, False)
            else:
                for attr in ("body", "orelse", "finalbody", "handlers", "cases"):
                    inner = getattr(node, attr, None)
                    if isinstance(inner, list):
                        visit(inner, at_import)

    visit(tree.body, True)
    return frozenset(m for m in found
                     if (m == "automl_asd" or m.startswith("automl_asd.")) and m != module)


def _entry(module: str) -> str | None:
    """The LAYERS entry of ``module`` (the longest entry that names it or a package above)."""
    name = module
    best: str | None = None
    for layer in LAYERS:
        for entry in layer:
            if (name == entry or name.startswith(entry + ".")) and (
                    best is None or len(entry) > len(best)):
                best = entry
    return best


def layer_of(module: str) -> int:
    entry = _entry(module)
    assert entry is not None, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def _entries_present() -> dict[str, list[str]]:
    present: dict[str, list[str]] = {e: [] for layer in LAYERS for e in layer}
    for mod in modules():
        entry = _entry(mod)
        if entry is not None:
            present[entry].append(mod)
    return present


# ----------------------------------------------------------------------------- (a) Ray-free core
def core_modules() -> list[str]:
    """All modules outside orchestration/ that never import it (not even lazily)."""
    return [m for m in modules()
            if not (m == RAY_LAYER or m.startswith(RAY_LAYER + "."))
            and not any(t == RAY_LAYER or t.startswith(RAY_LAYER + ".")
                        for t in imports(m, module_level_only=False))]


_PROBE = """
import importlib, json, sys
culprits = {}
for name in json.loads(sys.argv[1]):
    before = {m for m in ("ray", "optuna") if m in sys.modules}
    importlib.import_module(name)
    for m in ("ray", "optuna"):
        if m in sys.modules and m not in before:
            culprits[m] = name
print(json.dumps(culprits))
"""


def test_core_modules_import_without_ray_or_optuna() -> None:
    core = core_modules()
    assert "automl_asd.pipeline" in core and "automl_asd.cli" in core
    assert not any(m.startswith(RAY_LAYER) for m in core)
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(core)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    culprits = json.loads(proc.stdout.strip().splitlines()[-1])
    assert culprits == {}, f"importing these core modules loads Ray/Optuna: {culprits}"


_PUBLIC = """
import json, sys
import automl_asd
light = sorted(m for m in ("numpy", "torch", "ray", "optuna") if m in sys.modules)
names = {n: type(getattr(automl_asd, n)).__name__ for n in automl_asd.__all__}
heavy = sorted(m for m in ("ray", "optuna") if m in sys.modules)
print(json.dumps([light, names, heavy]))
"""


def test_the_public_api_is_light_to_import_and_ray_free() -> None:
    """``import automl_asd`` loads none of numpy/torch/Ray; every name of ``__all__`` (the
    architecture review's public API: Recipe and load_recipe were missing, found by a library
    probe 2026-12-07) resolves without Ray or Optuna."""
    proc = subprocess.run([sys.executable, "-c", _PUBLIC], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    light, names, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert light == [] and heavy == []
    assert {"Recipe", "load_recipe", "load_bundle", "Bundle", "scan", "apply_recipe",
            "evaluate_recipe"} <= set(names)
    assert names["Recipe"] == "type" and names["load_recipe"] == "function"


# ----------------------------------------------------------------------------- (b) layers
def test_every_module_is_in_a_layer() -> None:
    missing = sorted(m for m in modules() if _entry(m) is None)
    assert missing == [], f"modules in no layer (add them to LAYERS): {missing}"


@pytest.mark.parametrize("entry", [e for layer in LAYERS for e in layer])
def test_no_module_imports_a_higher_layer(entry: str) -> None:
    members = _entries_present()[entry]
    assert members, f"LAYERS names {entry}, which does not exist: remove it from LAYERS"
    upward = sorted(
        f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
        for m in members for t in imports(m, module_level_only=False)
        if layer_of(t) > layer_of(m))
    assert upward == [], "imports of a higher layer:\n" + "\n".join(upward)


# ----------------------------------------------------------------------------- (c) cycles
def _cycles() -> list[frozenset[str]]:
    """Strongly connected components (more than one module, or a self-import) of the
    module-level import graph (Tarjan)."""
    graph = {m: sorted(imports(m, module_level_only=True)) for m in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in graph:
                continue
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(frozenset(comp))

    for v in graph:
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in _cycles()]
    assert cycles == [], f"module-level import cycles: {cycles}"


# ----------------------------------------------------------------------------- the checker
def test_the_checks_see_real_imports() -> None:
    """The AST reader finds function-local and TYPE_CHECKING imports, and the layer order
    rejects a known downward-only pair the other way round."""
    every = imports("automl_asd.commands.search", module_level_only=False)
    at_import = imports("automl_asd.commands.search", module_level_only=True)
    tune = "automl_asd.orchestration.tune"  # loaded only when a search runs
    assert tune in every and tune not in at_import and "automl_asd.search.space" in at_import
    assert layer_of("automl_asd.pipeline") > layer_of("automl_asd.features")
    assert layer_of("automl_asd.orchestration.local_ray") > layer_of("automl_asd.pipeline")
    assert layer_of("automl_asd.detectors.margin") == layer_of("automl_asd.detectors")


# ----------------------------------------------------------------------------- (d) the doc
def _architecture_rows() -> list[tuple[set[str], str]]:
    """ARCHITECTURE.md's layer table: per row, the names of its ``layer`` column (as dotted
    module names) and its description column."""
    rows = []
    for line in (REPO_ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            names = {"automl_asd" if n == "automl_asd" else
                     "automl_asd." + n.rstrip("/").replace("/", ".")
                     for n in re.findall(r"`([^`]+)`", cells[1])}
            rows.append((names, cells[2]))
    return rows


def test_architecture_lists_the_same_layers() -> None:
    """ARCHITECTURE.md's table holds LAYERS, row by row; its Ray row names every module of
    ``orchestration/`` (found 2026-12-07: `local_ray`, `budget` and `progress` were not)."""
    rows = _architecture_rows()
    assert [names for names, _ in rows] == [set(layer) for layer in LAYERS]
    ray_row = next(text for names, text in rows if RAY_LAYER in names)
    unnamed = sorted(m.rsplit(".", 1)[1] for m in modules()
                     if m.startswith(RAY_LAYER + ".") and f"`{m.rsplit('.', 1)[1]}`" not in ray_row)
    assert unnamed == [], f"ARCHITECTURE.md's {RAY_LAYER} row does not name {unnamed}"
