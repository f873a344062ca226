"""Declarative, conditional search spaces (``search_spaces/*.yaml``) for ``automl-asd search``.

A space file mirrors the recipe JSON. Every leaf is either a constant or a search dimension::

    name: default
    description: free text
    reference: baseline_ae_mse       # reference recipe: base values + first point to evaluate
    fidelity: {rungs: [0.25, 0.5, 1.0], reduction_factor: 2}
    selection: {objective: mean, pick: best}   # optional; see automl_asd/search/selection.py
    space:
      features:
        n_mels: {choice: [64, 128]}          # categorical (scalars only)
      detector:
        choose:                              # conditional: one option per registry name
          dcase_ae:
            epochs: {int: [5, 100], log: true}
          pooled_stats:
            backend:
              choose:                        # a ParamSpec(type="backend") parameter
                knn: {k: {int: [1, 8]}}
                mahalanobis: {}
      threshold:
        quantile: {float: [0.8, 0.95]}

Each dimension is named by its path, with component choices spelled out
(``detector.name``, ``detector.dcase_ae.epochs``, ``detector.pooled_stats.backend.name``,
``detector.pooled_stats.backend.knn.k``), so every Optuna name keeps one distribution.
Values not in the space come from the reference recipe when it uses the same component (for a
``{fixed: {name, params}}`` component too), else from the component's ``ParamSpec`` defaults.
The reference recipe (any shipped name, or a recipe file, looked up beside the space file
first) is the search's starting point; it is the official DCASE baseline only when it is one of
``recipe.OFFICIAL_BASELINES`` (``describe_reference`` says which). Files written before the
key was renamed may still say ``baseline:`` (read with a deprecation warning). Adding a new
registered family or backend to a search is a YAML edit only.

This module is pure: no Ray, and Optuna only through the duck-typed ``trial.suggest_*`` calls.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from automl_asd.backends import get_backend_class
from automl_asd.components.params import ParamError, ParamSpec, finite_number, validate
from automl_asd.detectors import get_detector_class
from automl_asd.errors import AutomlAsdError
from automl_asd.recipe import Recipe, load_recipe, official_baseline_name, printable_name
from automl_asd.search.selection import SelectionRule, parse_selection

__all__ = [
    "SpaceError",
    "Dimension",
    "Fixed",
    "Choose",
    "Fidelity",
    "SearchSpace",
    "load_space",
    "resolve_space_path",
    "SHIPPED_SPACES_DIR",
    "shipped_space_names",
]

logger = logging.getLogger(__name__)



def _shipped_spaces_dir(package_file: str = __file__) -> Path:
    """``search_spaces/`` at the repository root, or its installed copy.

    A checkout (installed editable or not) has the folder next to the package and uses it; a
    wheel install has only the package data ``automl_asd.search_spaces``, its copy. The
    checkout's own folder comes first: found 2026-12-07, a checkout run through
    ``PYTHONPATH`` while another checkout was installed editable read the other checkout's
    spaces (the editable install's finder maps ``automl_asd.search_spaces`` to its own
    folder, wherever ``automl_asd`` itself was imported from), and ``search --help`` named it.
    """

    root = Path(package_file).resolve().parents[2]
    source_tree = root / "search_spaces"
    # a checkout: its pyproject.toml beside it (in a wheel install, root is site-packages,
    # where a top-level search_spaces/ would be another distribution's)
    if source_tree.is_dir() and (root / "pyproject.toml").is_file():
        return source_tree
    try:
        folder = Path(str(resources.files("automl_asd.search_spaces")))
    except ModuleNotFoundError:
        return source_tree
    return folder if folder.is_dir() else source_tree


#: Folder of the shipped spaces (``search_spaces/`` at the repository root, or its copy
#: installed with the package).
SHIPPED_SPACES_DIR = _shipped_spaces_dir()


def shipped_space_names() -> list[str]:
    """Names of the shipped spaces (``--space NAME``), sorted."""
    return sorted(p.stem for p in SHIPPED_SPACES_DIR.glob("*.yaml"))

_TOP_KEYS = {"name", "description", "reference", "fidelity", "space", "selection"}
#: The old name of ``reference`` (still read, with a deprecation warning).
_OLD_REFERENCE_KEY = "baseline"
_SECTIONS = ("features", "detector", "normalization", "threshold", "supplemental", "ensemble",
             "seed")
_Scalar = bool | int | float | str | None


#: :meth:`SearchSpace.points` lists a finite space up to this many points (a few ms each).
POINTS_LIMIT = 5000


#: :meth:`SearchSpace.n_recipes` by (space sha256, name, limit)
_RECIPE_COUNTS: dict[tuple[str, str, int], int | None] = {}


class SpaceError(AutomlAsdError, ValueError):
    """An invalid search space; the message names the YAML file, the path and the fix."""


@dataclass(frozen=True)
class Dimension:
    """One Optuna parameter: ``kind`` ``"categorical"`` (``choices``), ``"int"`` or ``"float"``
    (``low``..``high`` inclusive, optional ``log`` and ``step``). ``recipe_path`` is where the
    value goes in the recipe JSON."""

    name: str
    recipe_path: tuple[str, ...]
    kind: Literal["categorical", "int", "float"]
    choices: tuple[_Scalar, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial (or Ray's capturing wrapper of one) for this dimension."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and (not float(value).is_integer()):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is not None:
            k = (value - self.low) / self.step
            return math.isclose(k, round(k), abs_tol=1e-9)
        return True

    def probe_values(self) -> list[Any]:
        """Values that exercise the domain's edges (used to validate it against the schema)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"choice {list(self.choices)}"
        extra = (", log" if self.log else "") + (f", step {self.step}" if self.step else "")
        return f"{self.kind} [{self.low}, {self.high}{extra}]"


@dataclass(frozen=True)
class Fixed:
    """A constant value written at ``recipe_path``."""

    recipe_path: tuple[str, ...]
    value: Any


@dataclass(frozen=True)
class Choose:
    """A component choice (detector family or backend): ``name`` dimension + per-option params."""

    path: str
    recipe_path: tuple[str, ...]
    kind: Literal["detector", "backend"]
    name_dim: Dimension
    options: Mapping[str, Mapping[str, Node]]


Node = Dimension | Fixed | Choose


@dataclass(frozen=True)
class Fidelity:
    """ASHA budget: Ω is reported after training on each fraction of the source train clips."""

    rungs: tuple[float, ...] = (1.0,)
    reduction_factor: int = 2


@dataclass(frozen=True)
class SearchSpace:
    """A parsed, validated search space. Build with :func:`load_space`."""

    name: str
    description: str
    path: Path
    sha256: str
    reference_name: str
    fidelity: Fidelity
    base: Mapping[str, Any]
    nodes: Mapping[str, Node] = field(default_factory=dict)
    #: The shipped official-baseline recipe the reference recipe equals, else ``None``.
    reference_official: str | None = None
    #: The search's objective and final pick (``selection:``; :mod:`automl_asd.search.selection`).
    selection: SelectionRule = field(default_factory=SelectionRule)
    #: What the reference was loaded from (a shipped name, or the path of a recipe file beside
    #: the space file); empty: ``reference_name``.
    reference_source: str = ""

    def describe_reference(self) -> str:
        """E.g. ``reference recipe `fast_default` (not the official DCASE baseline)``; when the
        space fixes or constrains values of its own, the first point is not that recipe and
        says so (``reference point (`baseline_ae_mse` as this space sets it: not the recipe
        itself)``), never claiming the official baseline for another recipe."""
        if not self.reference_is_exact():
            return (f"reference point (`{self.reference_name}` as this space sets it: not the "
                    "recipe itself)")
        return self.describe_reference_recipe()

    @property
    def reference_label(self) -> str:
        """What reports call the search's first point: ``"reference recipe"`` when it is the
        recipe itself, else ``"reference point"`` (found 2026-12-07: a space that fixes
        ``n_mels: 64`` reported its point's Ω as `fast_default`'s, which scores higher)."""
        return "reference recipe" if self.reference_is_exact() else "reference point"

    def describe_reference_recipe(self) -> str:
        """The reference recipe itself, e.g. ``reference recipe `fast_default` (not the
        official DCASE baseline)`` (what ``demo`` applies for comparison)."""
        kind = ("the official DCASE baseline" if self.reference_official
                else "not the official DCASE baseline")
        return f"reference recipe `{self.reference_name}` ({kind})"

    def reference_recipe(self) -> Recipe:
        """The reference recipe itself, loaded as the space file named it (a recipe file
        beside the space file first)."""
        return load_recipe(self.reference_source or self.reference_name)

    # -- walking ---------------------------------------------------------------------------
    def _build(self, get: Callable[[Dimension, dict[str, Any]], Any]) -> dict[str, Any]:
        """The recipe dict for the values ``get(dimension, recipe so far)`` returns; only active
        dimensions are asked."""
        recipe = copy.deepcopy(dict(self.base))
        for node in self.nodes.values():
            _apply_node(recipe, node, get, self.base)
        return recipe

    def dimensions(self) -> Iterator[Dimension]:
        """Every dimension of the space (active or not), depth first."""

        def walk(node: Node) -> Iterator[Dimension]:
            if isinstance(node, Dimension):
                yield node
            elif isinstance(node, Choose):
                yield node.name_dim
                for params in node.options.values():
                    for child in params.values():
                        yield from walk(child)

        for node in self.nodes.values():
            yield from walk(node)

    def n_points(self) -> int | None:
        """How many distinct points the space holds (each choice and each step of an int or
        stepped float dimension, summed over the options of a component choice); ``None``
        when a float dimension without a step makes it continuous. An upper bound on the
        distinct recipes: points that differ only in parameters inert where they are set are
        one recipe (:meth:`~automl_asd.recipe.Recipe.behaviour_hash`)."""

        def count(node: Node) -> int | None:
            if isinstance(node, Fixed):
                return 1
            if isinstance(node, Choose):
                total = 0
                for option in node.name_dim.choices:
                    sub = product(node.options.get(str(option), {}).values())
                    if sub is None:
                        return None
                    total += sub
                return total
            if node.kind == "categorical":
                return len(node.choices)
            if node.kind == "float" and node.step is None:
                return None if node.high > node.low else 1
            step = node.step or 1
            return int(math.floor((node.high - node.low) / step + 1e-9)) + 1

        def product(nodes: Iterable[Node]) -> int | None:
            n = 1
            for node in nodes:
                c = count(node)
                if c is None:
                    return None
                n *= c
            return n

        return product(self.nodes.values())

    def points(self, limit: int = POINTS_LIMIT) -> list[dict[str, Any]] | None:
        """Every point of a finite space, as the sampled parameters (``{dimension name:
        value}``, active dimensions only) in a fixed order; ``None`` when the space is
        continuous or holds more than ``limit`` points. Walks :meth:`define_by_run` itself, so
        the conditional structure is the one trials sample."""
        n = self.n_points()
        if n is None or n > limit:
            return None
        found: list[dict[str, Any]] = []
        path: list[int] = []  # the choice made at each dimension met, in order
        while True:
            walker = _Walker(path)
            self.define_by_run(walker)
            found.append(walker.params)
            path, sizes = walker.path, walker.sizes
            while path and path[-1] == sizes[-1] - 1:  # the next path, odometer-wise
                path.pop()
                sizes.pop()
            if not path:
                return found
            path[-1] += 1

    def n_recipes(self, limit: int = POINTS_LIMIT) -> int | None:
        """How many distinct recipes a finite space holds: its valid points, those that differ
        only in parameters inert where they are set (:meth:`Recipe.behaviour_hash`, the
        search's duplicate check) counted once; ``None`` as :meth:`points`. Counted once per
        space file content (``sha256``)."""
        key = (self.sha256, self.name, limit)
        if key not in _RECIPE_COUNTS:
            points = self.points(limit)
            hashes: set[str] = set()
            for params in points or ():
                try:
                    hashes.add(self.to_recipe(params).behaviour_hash())
                except AutomlAsdError:  # an invalid combination: never a trial
                    continue
            _RECIPE_COUNTS[key] = None if points is None else len(hashes)
        return _RECIPE_COUNTS[key]

    # -- Optuna -----------------------------------------------------------------------------
    def define_by_run(self, trial: Any) -> None:
        """Optuna define-by-run function: only ``trial.suggest_*`` calls, no computation."""
        self._build(lambda dim, _: dim.suggest(trial))

    def optuna_function(self) -> SpaceFunction:
        """A picklable define-by-run callable (Ray Tune checkpoints its searcher)."""
        return SpaceFunction(self)

    def to_recipe_dict(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Replay sampled parameters (``{dimension name: value}``) into a recipe dict."""

        def get(dim: Dimension, _: dict[str, Any]) -> Any:
            if dim.name not in params:
                raise SpaceError(f"{self.path}: parameter {dim.name!r} missing from the sampled "
                                 "configuration (was the space edited since the search began?)")
            return params[dim.name]

        return self._build(get)

    def to_recipe(self, params: Mapping[str, Any], **provenance: Any) -> Recipe:
        """Replay sampled parameters into a validated :class:`~automl_asd.recipe.Recipe`;
        ``provenance`` keys (and ``name``/``description``) override the recipe's."""

        data = self.to_recipe_dict(params)
        for key in ("name", "description"):
            if key in provenance:
                data[key] = provenance.pop(key)
        if provenance:
            data["provenance"] = {**data.get("provenance", {}), **provenance}
        return Recipe.from_dict(data)

    def coerce_point(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Give sampled values their dimension's exact type and choice (a table column may
        store an int dimension as ``2.0`` or a choice as a string); unknown names are kept."""
        dims = {d.name: d for d in self.dimensions()}
        out: dict[str, Any] = {}
        for name, value in params.items():
            dim = dims.get(name)
            if dim is None or value is None:
                out[name] = value
            elif dim.kind == "int":
                out[name] = int(round(float(value)))
            elif dim.kind == "float":
                out[name] = float(value)
            else:
                match = [c for c in dim.choices if _same(value, c) or str(c) == str(value)]
                out[name] = match[0] if match else value
        return out

    def reference_point(self) -> dict[str, Any]:
        """The reference recipe as a point of this space (``{dimension name: value}``).

        Raises :class:`SpaceError` when the reference recipe lies outside the space.
        """
        point: dict[str, Any] = {}

        def get(dim: Dimension, so_far: dict[str, Any]) -> Any:
            # ``so_far`` holds the reference recipe's values, and the registry defaults for
            # component parameters the reference recipe leaves out.
            value = _lookup(so_far, dim.recipe_path)
            if not dim.contains(value):
                raise SpaceError(
                    f"{self.path}: {dim.name}: the reference recipe {self.reference_name!r} has "
                    f"{value!r}, outside {dim.describe()}; widen the space so that the reference "
                    "recipe is one of its points")
            point[dim.name] = value
            return value

        self._build(get)
        return point

    def reference_is_exact(self) -> bool:
        """True when the reference point replays to exactly the reference recipe (every
        section that takes part in the recipe's content hash)."""
        replay = self.to_recipe_dict(self.reference_point())
        return all(replay.get(k) == self.base.get(k) for k in _SECTIONS)


class _Walker:
    """A stand-in for an Optuna trial that takes the ``path[i]``-th value at the i-th
    dimension met (the first value past the path), recording the values and how many each
    dimension had (:meth:`SearchSpace.points`)."""

    def __init__(self, path: list[int]) -> None:
        self.path = list(path)
        self.sizes: list[int] = []
        self.params: dict[str, Any] = {}

    def _take(self, name: str, values: Sequence[Any]) -> Any:
        i = len(self.sizes)
        if i == len(self.path):
            self.path.append(0)
        self.sizes.append(len(values))
        self.params[name] = values[self.path[i]]
        return self.params[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._take(name, list(choices))

    def suggest_int(self, name: str, low: int, high: int, log: bool = False,
                    step: int = 1) -> Any:
        return self._take(name, list(range(int(low), int(high) + 1, int(step))))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False,
                      step: float | None = None) -> Any:
        if step is None:  # n_points() is None for these: never walked
            raise SpaceError(f"{name}: a float dimension without a step has no points to list")
        n = int(math.floor((high - low) / step + 1e-9)) + 1
        return self._take(name, [low + k * step for k in range(n)])


@dataclass(frozen=True)
class SpaceFunction:
    """Picklable wrapper of :meth:`SearchSpace.define_by_run` for ``OptunaSearch``."""

    space: SearchSpace

    def __call__(self, trial: Any) -> None:
        self.space.define_by_run(trial)


# --------------------------------------------------------------------------------------------
# building recipe dicts
# --------------------------------------------------------------------------------------------
class _Missing:
    pass


_MISSING: Any = _Missing()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = data
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur:
            return _MISSING
        cur = cur[key]
    return cur


def _assign(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    cur = data
    for key in path[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[key] = nxt
        cur = nxt
    cur[path[-1]] = value


def _component_schema(kind: str, name: str) -> Mapping[str, Any]:
    if kind == "detector":

        return get_detector_class(name).params

    return get_backend_class(name).params


def _default_params(kind: str, name: str) -> dict[str, Any]:
    return {key: copy.deepcopy(spec.default)
            for key, spec in _component_schema(kind, name).items()}


def _apply_node(recipe: dict[str, Any], node: Node,
                get: Callable[[Dimension, dict[str, Any]], Any], base: Mapping[str, Any]) -> None:
    if isinstance(node, Fixed):
        # a fixed component of the reference's own kind keeps the reference's values for the
        # parameters it does not list, as `choose:` does (it fell back to registry defaults)
        _assign(recipe, node.recipe_path,
                _merge_component(_lookup(base, node.recipe_path), copy.deepcopy(node.value)))
    elif isinstance(node, Dimension):
        _assign(recipe, node.recipe_path, get(node, recipe))
    else:
        chosen = get(node.name_dim, recipe)
        # Unsearched parameters: the reference recipe's values when it uses the same component
        # here, else the registry defaults.
        params = _default_params(node.kind, str(chosen))
        base_comp = _lookup(base, node.recipe_path)
        if isinstance(base_comp, Mapping) and base_comp.get("name") == chosen:
            params.update(copy.deepcopy(dict(base_comp.get("params", {}))))
        _assign(recipe, node.recipe_path, {"name": chosen, "params": params})
        for child in node.options[str(chosen)].values():
            _apply_node(recipe, child, get, base)


# --------------------------------------------------------------------------------------------
# parsing and validation
# --------------------------------------------------------------------------------------------
def resolve_space_path(space: str | Path) -> Path:
    """A path to a YAML file, or the name of a shipped space (``default``, ``smoke``)."""
    path = Path(space).expanduser()
    if path.is_file():
        return path
    shipped = SHIPPED_SPACES_DIR / f"{space}.yaml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(f"search space {str(space)!r} not found: give a YAML file or one of "
                            f"the shipped spaces {shipped_space_names()}")


def load_space(space: str | Path) -> SearchSpace:
    """Load and validate a search space against the detector/backend registries and the recipe
    schema.

    Args:
        space: a YAML file path or a shipped space name.
    Returns:
        The parsed space; its ``sha256`` is the hash of the file's bytes.
    Raises:
        SpaceError: naming the file and the YAML path of the first problem.
    """

    path = resolve_space_path(space)
    raw = path.read_bytes()
    try:
        doc = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise SpaceError(f"{path}: {_yaml_problem(exc)}") from None
    if not isinstance(doc, dict):
        raise SpaceError(f"{path}: expected a mapping with keys {sorted(_TOP_KEYS)}")
    if _OLD_REFERENCE_KEY in doc:
        if "reference" in doc:
            raise SpaceError(f"{path}: both 'reference' and its old name "
                             f"'{_OLD_REFERENCE_KEY}' are given; keep only 'reference'")
        logger.warning("%s: the key '%s' is deprecated (in this field 'baseline' means the "
                       "official DCASE autoencoder); rename it to 'reference'", path,
                       _OLD_REFERENCE_KEY)
        doc = {("reference" if k == _OLD_REFERENCE_KEY else k): v for k, v in doc.items()}
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise SpaceError(f"{path}: unknown top-level key(s) {sorted(unknown)}; "
                         f"valid keys: {sorted(_TOP_KEYS)}")
    for key in ("name", "reference", "space"):
        if key not in doc:
            raise SpaceError(f"{path}: missing required key {key!r}")
    name = doc["name"]
    if not isinstance(name, str) or not name:
        raise SpaceError(f"{path}: name: expected a non-empty string")
    if not printable_name(name):  # it names the frozen recipe (search_<name>)
        raise SpaceError(f"{path}: name: {name!r}: one line of printable characters without "
                         "'|'")
    ref = str(doc["reference"])
    beside = path.parent / ref  # a recipe file named relative to the space file
    source = str(beside.resolve()) if ref.endswith(".json") and beside.is_file() else ref
    try:
        reference = load_recipe(source)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise SpaceError(f"{path}: reference: cannot load recipe {doc['reference']!r}: {exc}") \
            from None
    base = json.loads(reference.to_json())
    base.pop("provenance", None)
    fidelity = _parse_fidelity(doc.get("fidelity"), path)
    try:
        selection = parse_selection(doc.get("selection"), str(path))
    except ValueError as exc:
        raise SpaceError(str(exc)) from None
    body = doc["space"]
    if not isinstance(body, dict):
        raise SpaceError(f"{path}: space: expected a mapping of recipe sections {_SECTIONS}")
    nodes: dict[str, Node] = {}
    for section, sub in body.items():
        if section not in _SECTIONS:
            raise SpaceError(f"{path}: space.{section}: unknown recipe section; valid sections: "
                             f"{list(_SECTIONS)}")
        if section == "detector":
            nodes[section] = _parse_component(sub, path, "detector", ("detector",), "detector")
        elif section == "seed":
            nodes[section] = _parse_leaf(sub, path, "seed", ("seed",))
        else:
            if not isinstance(sub, dict):
                raise SpaceError(f"{path}: space.{section}: expected a mapping of field -> value "
                                 "or dimension")
            for key, value in sub.items():
                dotted = f"{section}.{key}"
                if key not in base.get(section, {}):
                    valid = sorted(base.get(section, {}))
                    raise SpaceError(f"{path}: space.{dotted}: unknown field; valid fields of "
                                     f"{section}: {valid}")
                nodes[dotted] = _parse_leaf(value, path, dotted, (section, key))
    result = SearchSpace(name=name, description=str(doc.get("description", "")), path=path,
                         sha256=hashlib.sha256(raw).hexdigest(),
                         reference_name=str(doc["reference"]), fidelity=fidelity, base=base,
                         nodes=nodes, reference_official=official_baseline_name(reference),
                         selection=selection, reference_source=source)
    _check_names_unique(result)
    result.reference_point()  # raises when the reference recipe lies outside the space
    _probe(result)
    logger.debug("loaded space %s (%d dimensions) from %s", name,
                 sum(1 for _ in result.dimensions()), path)
    return result


def _parse_fidelity(raw: Any, path: Path) -> Fidelity:
    if raw is None:
        return Fidelity()
    if not isinstance(raw, dict) or set(raw) - {"rungs", "reduction_factor"}:
        raise SpaceError(f"{path}: fidelity: expected {{rungs: [..], reduction_factor: N}}")
    rungs = raw.get("rungs", [1.0])
    if (not isinstance(rungs, list) or not rungs
            or not all(isinstance(r, int | float) and not isinstance(r, bool) and 0 < r <= 1
                       for r in rungs)
            or any(b <= a for a, b in zip(rungs, rungs[1:], strict=False))
            or rungs[-1] != 1):
        raise SpaceError(f"{path}: fidelity.rungs: {rungs!r}; expected increasing fractions in "
                         "(0, 1] ending with 1.0, e.g. [0.25, 0.5, 1.0]")
    factor = raw.get("reduction_factor", 2)
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
        raise SpaceError(f"{path}: fidelity.reduction_factor: {factor!r}; expected an integer "
                         ">= 2")
    return Fidelity(rungs=tuple(float(r) for r in rungs), reduction_factor=factor)


def _is_dimension(raw: Any) -> bool:
    return isinstance(raw, dict) and bool(set(raw) & {"choice", "int", "float"})


def _parse_leaf(raw: Any, path: Path, dotted: str, recipe_path: tuple[str, ...]) -> Node:
    if isinstance(raw, dict) and set(raw) == {"fixed"}:
        return Fixed(recipe_path, raw["fixed"])
    if not _is_dimension(raw):
        if isinstance(raw, dict):
            raise SpaceError(f"{path}: space.{dotted}: a mapping must be a dimension "
                             "({choice: [..]}, {int: [lo, hi]}, {float: [lo, hi]}) or "
                             "{fixed: VALUE}")
        return Fixed(recipe_path, raw)
    return _parse_dimension(raw, path, dotted, recipe_path)


def _parse_dimension(raw: dict[str, Any], path: Path, dotted: str,
                     recipe_path: tuple[str, ...]) -> Dimension:
    where = f"{path}: space.{dotted}"
    kinds = set(raw) & {"choice", "int", "float"}
    if len(kinds) != 1:
        raise SpaceError(f"{where}: give exactly one of choice/int/float")
    kind = kinds.pop()
    allowed = {"choice"} if kind == "choice" else {kind, "log", "step"}
    extra = set(raw) - allowed
    if extra:
        raise SpaceError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")
    if kind == "choice":
        choices = raw["choice"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: choice: expected a non-empty list")
        for c in choices:
            if not isinstance(c, bool | int | float | str) and c is not None:
                raise SpaceError(f"{where}: choice {c!r}: Optuna choices must be scalars "
                                 "(bool, int, float, str or null)")
        if len({json.dumps(c) for c in choices}) != len(choices):
            raise SpaceError(f"{where}: choice: duplicate values in {choices}")
        return Dimension(dotted, recipe_path, "categorical", choices=tuple(choices))
    bounds = raw[kind]
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)):
        raise SpaceError(f"{where}: {kind}: expected [low, high]")
    low, high = (_finite(b, where, kind) for b in bounds)
    if kind == "int" and not all(b.is_integer() for b in (low, high)):
        raise SpaceError(f"{where}: int bounds must be integers, got {bounds}")
    if low > high:
        raise SpaceError(f"{where}: low {low:g} is above high {high:g}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log: expected true or false")
    if log and low <= 0:
        raise SpaceError(f"{where}: log scale needs low > 0, got {low:g}")
    step = raw.get("step")
    if step is not None:
        # What Optuna accepts: an int step is a whole number >= 1 (exactly 1 on a log
        # scale); a float step is positive and never combined with log.
        if not isinstance(step, int | float) or isinstance(step, bool):
            raise SpaceError(f"{where}: step: expected a positive number, got {step!r}")
        step = _finite(step, where, "step")
        if kind == "int" and (step < 1 or not step.is_integer() or (log and step != 1)):
            raise SpaceError(f"{where}: step: an int dimension's step must be a whole number "
                             f">= 1{' and exactly 1 with log' if log else ''}, got {step:g}")
        if kind == "float" and (step <= 0 or log):
            raise SpaceError(f"{where}: step: a float dimension's step must be positive and "
                             "cannot be combined with log")
        span = (high - low) / step
        if not math.isclose(span, round(span), rel_tol=0, abs_tol=1e-9):
            # found 2026-12-07: Optuna warned mid-run and moved high to the last step, so
            # [1, 4] step 2 never sampled 4
            raise SpaceError(f"{where}: step {step:g} does not divide high - low "
                             f"({high:g} - {low:g}): high is never sampled; make it "
                             f"{low + step * math.floor(span):g} or "
                             f"{low + step * math.ceil(span):g}")
    return Dimension(dotted, recipe_path, "int" if kind == "int" else "float", low=low,
                     high=high, log=log, step=step)


class _StrictLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one
    silently: a space whose searched dimension was overridden below it searched nothing)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; keys given beside it override, as in YAML
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; give each key once", mark)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: line, column and the problem (not PyYAML's several lines
    quoting ``<byte string>``)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {where}{problem}"


def _merge_component(base: Any, value: Any) -> Any:
    """``value`` (a fixed leaf or component ``{name, params}``) over ``base`` (the reference's
    value there): a component of the same name keeps the base's parameters it does not set,
    nested components (a backend) likewise; anything else is ``value`` as given."""
    if not (isinstance(value, Mapping) and isinstance(base, Mapping)
            and value.get("name") is not None and base.get("name") == value.get("name")):
        return value
    params = dict(base.get("params") or {})
    for key, sub in dict(value.get("params") or {}).items():
        params[key] = _merge_component(params.get(key), sub)
    return {**value, "params": params}


def _finite(value: int | float, where: str, what: str) -> float:
    """``value`` of a space file as a finite float, or :class:`SpaceError` (NaN, infinities
    and integers too large for a float: YAML allows thousands of digits); the check and its
    wording are the recipe fields' (:func:`finite_number`)."""
    try:
        return finite_number(value, f"{where}: {what}")
    except ParamError as exc:
        raise SpaceError(str(exc)) from None


def _parse_component(raw: Any, path: Path, dotted: str, recipe_path: tuple[str, ...],
                     kind: Literal["detector", "backend"]) -> Choose | Fixed:
    where = f"{path}: space.{dotted}"
    if isinstance(raw, dict) and set(raw) == {"fixed"}:
        # A constant component; the recipe schema validates it when the space is probed.
        if not isinstance(raw["fixed"], dict) or "name" not in raw["fixed"]:
            raise SpaceError(f"{where}: fixed: expected {{name: ..., params: {{..}}}}")
        return Fixed(recipe_path, raw["fixed"])
    if not isinstance(raw, dict) or set(raw) != {"choose"} or not isinstance(raw["choose"], dict) \
            or not raw["choose"]:
        raise SpaceError(f"{where}: expected {{choose: {{<{kind} name>: {{param: value or "
                         "dimension, ...}}, ...}}}}")
    options: dict[str, dict[str, Node]] = {}
    for comp_name, params in raw["choose"].items():
        try:
            schema = _component_schema(kind, str(comp_name))
        except KeyError as exc:
            raise SpaceError(f"{where}.{comp_name}: {exc.args[0]}") from None
        params = params or {}
        if not isinstance(params, dict):
            raise SpaceError(f"{where}.{comp_name}: expected a mapping of parameter -> value or "
                             "dimension")
        parsed: dict[str, Node] = {}
        for pname, pvalue in params.items():
            pdotted = f"{dotted}.{comp_name}.{pname}"
            if pname not in schema:
                raise SpaceError(f"{path}: space.{pdotted}: {kind} {comp_name!r} has no parameter "
                                 f"{pname!r}; valid parameters: {sorted(schema)}")
            spec = schema[pname]
            prp = (*recipe_path, "params", str(pname))
            if spec.type == "backend":
                if _is_dimension(pvalue):
                    raise SpaceError(f"{path}: space.{pdotted}: a backend parameter takes "
                                     "{choose: {<backend name>: {...}}} (or {fixed: {name: ..., "
                                     "params: {..}}})")
                parsed[str(pname)] = _parse_component(pvalue, path, pdotted, prp, "backend")
            else:
                node = _parse_leaf(pvalue, path, pdotted, prp)
                _check_against_spec(node, spec, f"{path}: space.{pdotted}")
                parsed[str(pname)] = node
        options[str(comp_name)] = parsed
    name_dim = Dimension(f"{dotted}.name", (*recipe_path, "name"), "categorical",
                         choices=tuple(options))
    return Choose(dotted, recipe_path, kind, name_dim, options)


def _check_against_spec(node: Node, spec: ParamSpec, where: str) -> None:
    """Check a parameter's constant or domain against its ``ParamSpec`` (type, range, choices)."""
    if isinstance(node, Fixed):
        values = [node.value]
    elif isinstance(node, Dimension):
        if node.kind == "float" and spec.type == "int":
            raise SpaceError(f"{where}: the parameter is an int; use {{int: [lo, hi]}}")
        if node.kind in ("int", "float") and spec.type not in ("int", "float"):
            raise SpaceError(f"{where}: the parameter is a {spec.type}; use {{choice: [..]}}")
        values = node.probe_values()
    else:  # pragma: no cover - backends are parsed by _parse_component
        return
    for value in values:
        try:
            validate(spec, value, where)  # the recipe parser's validator: same acceptance
        except ParamError as exc:
            raise SpaceError(str(exc)) from None


def _check_names_unique(space: SearchSpace) -> None:
    seen: dict[str, Dimension] = {}
    for dim in space.dimensions():
        if dim.name in seen and seen[dim.name] != dim:
            raise SpaceError(f"{space.path}: dimension {dim.name!r} defined twice with different "
                             "domains")
        seen[dim.name] = dim


def _probe(space: SearchSpace) -> None:
    """Build a recipe at every edge of every dimension and validate it with the recipe schema,
    so that out-of-range sections (threshold, normalisation, ...) fail at load time."""

    base_point = space.reference_point()
    dims = list(space.dimensions())
    by_name = {d.name: d for d in dims}

    def point_for(target: Dimension, value: Any) -> dict[str, Any]:
        # Activate every choice on the way to ``target`` (parsed from its dotted name).
        point = dict(base_point)
        point[target.name] = value
        parts = target.name.split(".")
        for i in range(1, len(parts) - 1):
            name_dim = by_name.get(".".join(parts[:i]) + ".name")
            if name_dim is not None and parts[i] in name_dim.choices:
                point[name_dim.name] = parts[i]
        return point

    def check(point: dict[str, Any], what: str) -> None:
        def get(d: Dimension, _: dict[str, Any]) -> Any:
            return point[d.name] if d.name in point else d.probe_values()[0]

        try:
            Recipe.from_dict(space._build(get))
        except (ValueError, KeyError, TypeError) as exc:
            raise SpaceError(f"{space.path}: {what} gives an invalid recipe: {exc}") from None

    # The reference point first: a space of constants alone has no edges to probe.
    check(dict(base_point), "its reference point")
    for dim in dims:
        for value in dim.probe_values():
            check(point_for(dim, value), f"space.{dim.name} = {value!r}")
