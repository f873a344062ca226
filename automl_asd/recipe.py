"""Frozen recipes: a dataclass tree <-> strict JSON (``schema_version`` 1).

A recipe is everything ``apply`` needs to train and score a machine type: feature spec,
detector (registry name + params), score normalisation, threshold rule, supplemental-data use,
ensemble, seed, and provenance. JSON is the only persisted form: components are named by
registry name, never by import path, and nothing is pickled, so a recipe file cannot run code.

Parsing is strict: unknown keys, wrong types (a bool is not an int), unknown detector/backend
names and out-of-range values raise :class:`RecipeError` naming the JSON path, e.g.
``detector.params.backend.params.k: 0 is below the minimum 1``. Every problem of a recipe is
collected and reported at once (``RecipeError.errors``, one ``"path: message"`` each); checks
across the fields of a section live in ``*_errors`` functions returning such lists
(:func:`feature_errors`, :func:`supplemental_errors`). Keys missing inside a section
take their documented defaults; ``to_dict``/``to_json`` always write every value resolved, so
``content_hash()`` (sha256 of the canonical JSON without ``provenance``) is stable.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import threading
import types
import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from automl_asd._version import __version__
from automl_asd.backends import BACKENDS
from automl_asd.components.frozen import deep_freeze
from automl_asd.components.params import (
    ParamError,
    ParamSpec,
    check_bounds,
    did_you_mean,
    finite_number,
    validate,
)
from automl_asd.components.params import type_name as _type_name
from automl_asd.components.registry import Registry
from automl_asd.detectors import REGISTRY
from automl_asd.errors import PermanentError
from automl_asd.features import FeatureSpec
from automl_asd.recipe_checks import feature_semantic_errors

__all__ = [
    "SCHEMA_VERSION",
    "content_digest",
    "RecipeError",
    "DetectorSpec",
    "NormalizationSpec",
    "ThresholdSpec",
    "SupplementalSpec",
    "EnsembleSpec",
    "DataFingerprint",
    "Provenance",
    "Recipe",
    "OFFICIAL_BASELINES",
    "official_baseline_name",
    "feature_errors",
    "supplemental_errors",
    "load_recipe",
    "shipped_recipe",
    "shipped_recipe_names",
    "validate_params",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: The shipped recipes that reproduce the official DCASE Task 2 baseline autoencoder. In this
#: project "baseline" means these two and nothing else.
OFFICIAL_BASELINES: tuple[str, ...] = ("baseline_ae_mse", "baseline_ae_mahalanobis")

_R = typing.TypeVar("_R")

NormalizationMethod = Literal["none", "domain_zscore", "domain_log_zscore"]
ThresholdMethod = Literal["gamma", "quantile"]
CombineRule = Literal["mean_z", "mean", "max"]
ProvenanceSource = Literal["shipped", "search", "manual"]


class RecipeError(PermanentError, ValueError):
    """A malformed recipe. ``errors`` lists every problem as ``"<JSON path>: <message>"``; the
    message is that single line, or a count followed by one indented line per problem.
    ``source`` (a file name) prefixes the message when given."""

    def __init__(self, errors: str | typing.Sequence[str], *, source: str | None = None) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        self.source = source
        if len(self.errors) == 1:
            text = self.errors[0]
        else:
            text = f"{len(self.errors)} problems:\n  - " + "\n  - ".join(self.errors)
        super().__init__(f"{source}: {text}" if source else text)


class _Collect:
    """Gathers the problems of several independent checks so all are reported at once."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def run(self, fn: typing.Callable[..., _R], *args: Any) -> _R | None:
        """``fn(*args)``; on :class:`RecipeError` keep its problems and return ``None``."""
        try:
            return fn(*args)
        except RecipeError as exc:
            self.errors.extend(exc.errors)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise RecipeError(self.errors)


@dataclass(frozen=True)
class DetectorSpec:
    """Detector family by registry name, with its fully resolved parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # read-only all the way down: an edit in place changed the recipe's hash silently
        # (found 2026-12-07); components.frozen
        object.__setattr__(self, "params", deep_freeze(self.params))

    def __hash__(self) -> int:
        # hash the canonical JSON so recipes can be dict keys / set members
        return hash((self.name, json.dumps(_plain(self.params), sort_keys=True)))


@dataclass(frozen=True)
class NormalizationSpec:
    """Score normalisation (see :mod:`automl_asd.calibration`)."""

    method: NormalizationMethod = "none"


@dataclass(frozen=True)
class ThresholdSpec:
    """Decision threshold fitted on train self-scores: gamma ``ppf(quantile)`` or empirical."""

    method: ThresholdMethod = "gamma"
    quantile: float = 0.9


@dataclass(frozen=True)
class SupplementalSpec:
    """Use of the 2025 supplemental clips (clean machine sound and/or noise)."""

    clean_as_normal: bool = False
    noise_mix_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (0.0, 10.0)

    def canonical(self) -> SupplementalSpec:
        """The same use of the clips with inert settings at their defaults: the noise SNR
        range means nothing when no clip is mixed with noise."""
        if self.noise_mix_prob > 0.0:
            return self
        return dataclasses.replace(self, noise_snr_db=SupplementalSpec.noise_snr_db)


@dataclass(frozen=True)
class EnsembleSpec:
    """``size`` members with seeds derived from the recipe seed, combined by ``combine``."""

    size: int = 1
    combine: CombineRule = "mean_z"


def _json_hash(obj: Any) -> int:
    return hash(json.dumps(_plain(dataclasses.asdict(obj)), sort_keys=True))


@dataclass(frozen=True)
class DataFingerprint:
    """What development data a search saw (see :mod:`automl_asd.provenance`).

    ``clip_counts``: machine type -> ``"<split>/<domain>/<label>"`` (supplemental clips:
    ``"supplemental/<kind>"``) -> number of clips. ``files_sha256``: sha256 of the sorted
    relative paths (``<machine type>/<path under its folder>``, one per line).
    """

    machine_types: tuple[str, ...] = ()
    clip_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    n_files: int = 0
    files_sha256: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "clip_counts", deep_freeze(self.clip_counts))

    def __hash__(self) -> int:
        return _json_hash(self)


@dataclass(frozen=True)
class Provenance:
    """How the recipe was made. Not part of :meth:`Recipe.content_hash`.

    ``objective`` is the chosen trial's Ω over the development types, whatever the space's
    selection objective (a ``worst_type`` search ranks trials by their worst type, and its
    recipe's description gives that value too). ``dev_data`` and ``versions`` (package ->
    version) were added later: recipes without them still load (``None`` / empty).
    """

    package_version: str = ""
    created: str = ""
    source: ProvenanceSource = "manual"
    space_name: str | None = None
    space_sha256: str | None = None
    dev_machine_types: tuple[str, ...] = ()
    objective: float | None = None
    trial_id: str | None = None
    dev_data: DataFingerprint | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    #: :meth:`Recipe.behaviour_hash` of the recipe as its search froze it (searched recipes
    #: frozen since 2026-12-07): a recipe whose behaviour differs was edited afterwards, and the
    #: search's provenance (space, trial, Ω) no longer describes it.
    behaviour_sha256: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", deep_freeze(self.versions))

    def __hash__(self) -> int:
        return _json_hash(self)


# Numeric bounds per section field: path-suffix -> (low, high), inclusive; None = unbounded.
_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "threshold.quantile": (0.5, 0.9999),
    "supplemental.noise_mix_prob": (0.0, 1.0),
    "supplemental.noise_snr_db": (-30.0, 60.0),
    "ensemble.size": (1, 64),
    "seed": (0, 2**63 - 1),
    "features.sample_rate": (1000, 192000),
    "features.n_fft": (16, 65536),
    "features.hop_length": (1, 65536),
    "features.win_length": (16, 65536),
    "features.n_mels": (1, 1024),
    "features.f_min": (0.0, None),
    "features.f_max": (1.0, None),
    "features.power": (0.5, 2.0),
}


#: Set while this module builds a :class:`Recipe` from values it has already checked (the strict
#: parser, a validated copy): :meth:`Recipe.__post_init__` then skips its own check.
_CHECKED = threading.local()


class _Checked:
    """``with _Checked():`` the recipes built inside are trusted (their values were checked)."""

    def __enter__(self) -> None:
        _CHECKED.depth = getattr(_CHECKED, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _CHECKED.depth -= 1


#: Section fields of :class:`Recipe` and the class each must hold.
_SECTION_TYPES: dict[str, type] = {
    "detector": DetectorSpec, "features": FeatureSpec, "normalization": NormalizationSpec,
    "threshold": ThresholdSpec, "supplemental": SupplementalSpec, "ensemble": EnsembleSpec,
    "provenance": Provenance,
}


@dataclass(frozen=True)
class Recipe:
    """A frozen, complete description of how to build a detector for any machine type.

    Built directly (``Recipe(name=..., detector=DetectorSpec("pooled_stats", {...}))``), a recipe is
    checked as strictly as one read from JSON and resolved the same way (parameters left out
    take their defaults): ``Recipe(...)`` equals ``Recipe.from_dict(Recipe(...).to_dict())``,
    and a recipe the parser would refuse raises :class:`RecipeError` here too (found
    2026-12-07: one with an unknown detector or ``n_mels=0`` was accepted until ``apply``
    failed on it).
    """

    name: str
    detector: DetectorSpec
    features: FeatureSpec = field(default_factory=FeatureSpec)
    description: str = ""
    normalization: NormalizationSpec = field(default_factory=NormalizationSpec)
    threshold: ThresholdSpec = field(default_factory=ThresholdSpec)
    supplemental: SupplementalSpec = field(default_factory=SupplementalSpec)
    ensemble: EnsembleSpec = field(default_factory=EnsembleSpec)
    seed: int = 13711
    provenance: Provenance = field(default_factory=Provenance)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if getattr(_CHECKED, "depth", 0):
            return
        wrong = [f"{key}: expected {cls.__name__}, got {type(getattr(self, key)).__name__}"
                 for key, cls in _SECTION_TYPES.items()
                 if not isinstance(getattr(self, key), cls)]
        if wrong:
            raise RecipeError(wrong)
        checked = _parse_recipe(self.to_dict())
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, getattr(checked, f.name))

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with every value resolved (keys in schema order)."""
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "description": self.description,
            "features": _plain(dataclasses.asdict(self.features)),
            "detector": {"name": self.detector.name, "params": _plain(self.detector.params)},
            "normalization": _plain(dataclasses.asdict(self.normalization)),
            "threshold": _plain(dataclasses.asdict(self.threshold)),
            "supplemental": _plain(dataclasses.asdict(self.supplemental)),
            "ensemble": _plain(dataclasses.asdict(self.ensemble)),
            "seed": self.seed,
            "provenance": _provenance_dict(self.provenance),
        }

    def to_json(self) -> str:
        """Human-readable, stable JSON (2-space indent, schema key order, trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def content_hash(self) -> str:
        """sha256 hex digest of the canonical JSON of every section except ``provenance``."""
        return content_digest(self.to_dict())

    def behaviour_hash(self) -> str:
        """sha256 hex digest of what decides the scores and decisions: :meth:`content_hash`
        of this recipe without ``name`` / ``description``, with the detector's parameters in
        their canonical form (:meth:`Detector.canonical_params`: inert ones at their defaults)
        and ``supplemental.noise_snr_db`` at its default when no clip is mixed with noise.

        Two recipes with the same behaviour hash score every clip the same; the search's
        duplicate check keys proposals by it."""
        params = REGISTRY[self.detector.name].canonical_params(self.detector.params)
        with _Checked():  # a hash input, not a recipe: its empty name is on purpose
            same = dataclasses.replace(self, name="", description="",
                                       supplemental=self.supplemental.canonical(),
                                       detector=DetectorSpec(self.detector.name, params))
        return same.content_hash()

    def edited_since_frozen(self) -> bool:
        """Whether this recipe scores otherwise than the one its search froze (its provenance
        records that one's :meth:`behaviour_hash`); ``False`` when it records none."""
        frozen = self.provenance.behaviour_sha256
        return frozen is not None and frozen != self.behaviour_hash()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Strictly parse a recipe dict (see module docstring). Raises :class:`RecipeError`."""
        return _parse_recipe(data)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> Recipe:
        """Parse recipe JSON text; ``source`` names the file in error messages."""
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise RecipeError(
                f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                source=source) from None
        except RecursionError:
            raise RecipeError("not a usable recipe (JSON nested too deeply; a recipe is a few "
                              "levels deep)", source=source) from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits, a duplicate key
            reason = str(exc).split("; use sys.set_int_max_str_digits", 1)[0]
            raise RecipeError(f"not a usable recipe ({reason})", source=source) from None
        try:
            return _parse_recipe(data)
        except RecipeError as exc:
            raise RecipeError(exc.errors, source=source) from None

    def save(self, path: Path | str) -> Path:
        """Write :meth:`to_json` to ``path`` (the only file this module writes)."""
        out = Path(path)
        out.write_text(self.to_json(), encoding="utf-8")
        return out

    def with_provenance(self, **changes: Any) -> Recipe:
        """Copy with provenance fields replaced (validated); an empty ``created`` becomes now
        (UTC), one already set is kept unless given."""
        current = dataclasses.asdict(self.provenance)
        unknown = set(changes) - set(current)
        if unknown:
            valid = ", ".join(current)
            raise RecipeError(f"provenance: unknown field(s) {sorted(unknown)}; valid: {valid}")
        current.update(changes)
        if "created" not in changes and not current["created"]:
            current["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        if not current["package_version"]:
            current["package_version"] = __version__
        prov = _parse_dataclass(Provenance, _plain(current), "provenance")
        if errors := provenance_errors(prov):
            raise RecipeError(errors)
        with _Checked():
            return dataclasses.replace(self, provenance=prov)

    def replace(self, **changes: Any) -> Recipe:
        """Copy with top-level fields replaced, re-validated through the strict parser."""
        d = self.to_dict()
        for key, value in changes.items():
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = dataclasses.asdict(value)
            d[key] = _plain(value)
        return _parse_recipe(d)


#: Provenance fields added after schema 1 was published: written only when set, so recipes
#: without them keep their exact canonical JSON.
_OPTIONAL_PROVENANCE = ("dev_data", "versions", "behaviour_sha256")


def content_digest(doc: Mapping[str, Any]) -> str:
    """:meth:`Recipe.content_hash` of a recipe document (``to_dict`` form, or a recipe file's
    JSON as written): sha256 of its canonical JSON (sorted keys, no spaces) without
    ``provenance``. ``ValueError`` for NaN/infinity."""
    d = {k: v for k, v in doc.items() if k != "provenance"}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _provenance_dict(prov: Provenance) -> dict[str, Any]:
    d: dict[str, Any] = _plain(dataclasses.asdict(prov))
    for key in _OPTIONAL_PROVENANCE:
        if not d.get(key):
            del d[key]
    return d


# ------------------------------------------------------------------- loading
def _model_sections(recipe: Recipe) -> dict[str, Any]:
    d = recipe.to_dict()
    for key in ("name", "description", "provenance"):
        del d[key]
    return d


def official_baseline_name(recipe: Recipe) -> str | None:
    """The shipped official-baseline recipe (:data:`OFFICIAL_BASELINES`) that ``recipe`` equals
    in every section except name, description and provenance; ``None`` when ``recipe`` is not
    the official baseline, whatever its name."""
    mine = _model_sections(recipe)
    for name in OFFICIAL_BASELINES:
        if _model_sections(shipped_recipe(name)) == mine:
            return name
    return None


def shipped_recipe_names() -> list[str]:
    """Names of the recipes shipped inside the package (``automl_asd/recipes/*.json``)."""
    folder = resources.files("automl_asd") / "recipes"
    return sorted(
        p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json")
    )


def shipped_recipe(name: str) -> Recipe:
    """The recipe shipped as ``name`` (one of :func:`shipped_recipe_names`), never a file of
    that name in the current folder (what the package itself compares with, e.g. the official
    baselines). Raises :class:`FileNotFoundError` listing the shipped names."""
    if name not in shipped_recipe_names():
        raise FileNotFoundError(f"recipe {name!r}: not a shipped recipe; shipped recipes: "
                                f"{', '.join(shipped_recipe_names())}")
    res = resources.files("automl_asd") / "recipes" / f"{name}.json"
    return Recipe.from_json(res.read_text(encoding="utf-8"), source=f"shipped:{name}")


def load_recipe(path_or_name: str | Path) -> Recipe:
    """Load a recipe from a JSON file path or a shipped name (e.g. ``baseline_ae_mse``).

    An existing file wins over a shipped name; when a bare name (no folder, e.g.
    ``fast_default``) is both a file in the current folder and a shipped recipe, a warning
    says the file is used. Raises :class:`FileNotFoundError` (listing the shipped names) when
    neither exists, :class:`RecipeError` when the path is a folder or the file is malformed.
    """
    name = str(path_or_name)
    try:  # `--frozen=~/runs/s1/recipe.json`: no shell expands ~ there
        path = Path(path_or_name).expanduser()
    except RuntimeError:  # ~name of an unknown user: the name as given (not found below)
        path = Path(path_or_name)
    if path.is_file():
        if name in shipped_recipe_names():
            # found 2026-12-07: a file ./fast_default silently replaced the shipped recipe
            logger.warning("recipe %r: both a file in the current folder and a shipped recipe; "
                           "using the file %s (to use the shipped recipe, rename the file or "
                           "run from another folder; write ./%s to mean the file)", name,
                           path.resolve(), name)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RecipeError(f"not UTF-8 text (byte {exc.start}: {exc.reason}); a recipe is "
                              "a JSON file", source=str(path)) from None
        recipe = Recipe.from_json(text, source=str(path))
        if recipe.edited_since_frozen():
            prov = recipe.provenance
            logger.warning(
                "%s: this recipe scores otherwise than the one search froze as trial %s of "
                "space %r (edited since, or frozen by another automl-asd version): its "
                "provenance (objective Ω %s on %s) describes that recipe, not this one", path,
                prov.trial_id, prov.space_name, prov.objective,
                ", ".join(prov.dev_machine_types) or "-")
        return recipe
    if name in shipped_recipe_names():
        return shipped_recipe(name)
    if path.is_dir():  # found 2026-12-07: a folder was "no such file"
        inside = path / "recipe.json"
        hint = (f"; give the recipe JSON file, e.g. {inside}" if inside.is_file()
                else "; give a recipe JSON file (e.g. RUN/recipe.json of a search) or a "
                     "shipped name (`automl-asd recipe list`)")
        raise RecipeError(f"is a folder, not a recipe file{hint}", source=name)
    shipped = ", ".join(shipped_recipe_names())
    raise FileNotFoundError(
        f"recipe {name!r}: no such file and not a shipped recipe; shipped recipes: {shipped}"
    )


# ------------------------------------------------------------------- parsing
def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` object hook refusing duplicate keys (the last one would win silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r} in one JSON object")
        out[key] = value
    return out


def _plain(value: Any) -> Any:
    """Tuples -> lists, mappings -> dicts (recursively), for JSON output."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RecipeError(f"{path}: expected an object, got {_type_name(value)}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: typing.Iterable[str], path: str) -> None:
    allowed = list(allowed)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        prefix = f"{path}." if path else ""
        raise RecipeError([f"{prefix}{key}: unknown key{did_you_mean(key, allowed)}; valid keys "
                           f"here: {', '.join(allowed)}" for key in unknown])


def _check_bounds(value: float, path: str, low: float | None, high: float | None) -> None:
    try:
        check_bounds(value, path, low, high)
    except ParamError as exc:
        raise RecipeError(str(exc)) from None


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against a type hint (int/float/bool/str/Literal/Optional/tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            if value is None:
                raise RecipeError(f"{path}: null is not allowed here")
            return _coerce(value, inner[0], path)
        raise RecipeError(f"{path}: unsupported union type {tp}")  # pragma: no cover
    if origin is Literal:
        if not isinstance(value, str) or value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise RecipeError(f"{path}: {value!r} is not one of {choices}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{path}: expected a list, got {_type_name(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise RecipeError(f"{path}: expected a list of {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in pairs)
    if origin in (dict, Mapping):
        mapping = _require_mapping(value, path)
        out: dict[str, Any] = {}
        col = _Collect()
        for key, item in mapping.items():
            if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
                col.errors.append(f"{path}: keys must be strings, got {key!r}")
                continue
            out[key] = col.run(_coerce, item, args[1], f"{path}.{key}")
        col.raise_if_any()
        return out
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _parse_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{path}: expected true/false, got {_type_name(value)} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{path}: expected an integer, got {_type_name(value)} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{path}: expected a number, got {_type_name(value)} {value!r}")
        try:
            return finite_number(value, path)
        except ParamError as exc:
            raise RecipeError(str(exc)) from None
    if tp is str:
        if not isinstance(value, str):
            raise RecipeError(f"{path}: expected a string, got {_type_name(value)} {value!r}")
        return value
    raise RecipeError(f"{path}: unsupported field type {tp}")  # pragma: no cover


_T = typing.TypeVar("_T")


def _parse_dataclass(cls: type[_T], data: Any, path: str) -> _T:
    """Strictly build dataclass ``cls`` from a JSON object; missing keys take defaults."""
    mapping = _require_mapping(data, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    col = _Collect()
    col.run(_check_keys, mapping, fields, path)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name in fields:
        if name not in mapping:
            continue
        fpath = f"{path}.{name}"
        before = len(col.errors)
        value = col.run(_coerce, mapping[name], hints[name], fpath)
        if len(col.errors) > before:
            continue
        bounds = _BOUNDS.get(fpath)
        if bounds is not None and value is not None:
            for v in value if isinstance(value, tuple) else (value,):
                col.run(_check_bounds, v, fpath, *bounds)
        kwargs[name] = value
    col.raise_if_any()
    return cls(**kwargs)


def validate_params(
    schema: Mapping[str, Any], params: Any, path: str, *, owner: str
) -> dict[str, Any]:
    """Validate ``params`` against a ``dict[str, ParamSpec]`` schema; returns resolved params.

    Missing keys take the ParamSpec default. ``type="backend"`` values are nested
    ``{"name": <backend>, "params": {...}}`` objects validated against that backend's schema.
    ``None`` is accepted only where the default is ``None``.
    """
    mapping = _require_mapping(params, path)
    col = _Collect()
    col.run(_check_keys, mapping, schema, path)
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        ppath = f"{path}.{key}"
        value = mapping.get(key, spec.default)
        out[key] = col.run(functools.partial(_validate_param, owner=owner), spec, value, ppath)
    col.raise_if_any()
    return out


def _validate_param(spec: ParamSpec, value: Any, path: str, *, owner: str) -> Any:
    if spec.type == "backend" and value is not None:
        return _parse_backend(value, path)
    try:
        return validate(spec, value, path, owner=owner)
    except ParamError as exc:
        raise RecipeError(str(exc)) from None


def _parse_named(value: Any, path: str, registry: Registry[Any], owner: str
                 ) -> tuple[str, dict[str, Any]]:
    """``{name, params}`` of a component of ``registry`` (detectors or backends), strictly
    checked; ``owner`` prefixes the name in parameter errors ("backend " for a backend)."""
    mapping = _require_mapping(value, path)
    col = _Collect()
    col.run(_check_keys, mapping, ("name", "params"), path)
    if "name" not in mapping:
        col.errors.append(f"{path}.name: missing; valid {registry.kind}s: "
                          f"{', '.join(registry.names())}")
        col.raise_if_any()
    name = _coerce(mapping["name"], str, f"{path}.name")
    if name not in registry:
        col.errors.append(f"{path}.name: {registry.unknown_message(name)}")
    col.raise_if_any()
    params = validate_params(registry[name].params, mapping.get("params", {}),
                             f"{path}.params", owner=f"{owner}{name}")
    return name, params


def _parse_backend(value: Any, path: str) -> dict[str, Any]:
    name, params = _parse_named(value, path, BACKENDS, "backend ")
    return {"name": name, "params": params}


def _parse_detector(value: Any, path: str) -> DetectorSpec:
    name, params = _parse_named(value, path, REGISTRY, "")
    return DetectorSpec(name=name, params=params)


_TOP_KEYS = (
    "schema_version",
    "name",
    "description",
    "features",
    "detector",
    "normalization",
    "threshold",
    "supplemental",
    "ensemble",
    "seed",
    "provenance",
)


def feature_errors(spec: FeatureSpec, path: str = "features") -> list[str]:
    """Checks across the fields of a parsed ``features`` section (``"path: message"`` each)."""
    errors: list[str] = []
    if spec.f_max is not None and spec.f_max <= spec.f_min:
        errors.append(f"{path}.f_max: {spec.f_max!r} must exceed f_min {spec.f_min}")
    if spec.win_length is not None and spec.win_length > spec.n_fft:
        errors.append(f"{path}.win_length: {spec.win_length} exceeds n_fft {spec.n_fft}")
    errors += feature_semantic_errors(spec, path)  # Nyquist, hop, mel bands (recipe_checks)
    return errors


def supplemental_errors(spec: SupplementalSpec, path: str = "supplemental") -> list[str]:
    """Checks across the fields of a parsed ``supplemental`` section."""
    lo, hi = spec.noise_snr_db
    return [f"{path}.noise_snr_db: [{lo}, {hi}] must be [low, high]"] if lo > hi else []


def provenance_errors(prov: Provenance, path: str = "provenance") -> list[str]:
    """Checks of a parsed ``provenance`` section: digests are sha256 hex, ``created`` an ISO
    8601 time and Ω within [0, 1] (found 2026-12-07: ``space_sha256: "xyz"`` and
    ``created: "yesterday"`` passed ``recipe validate``)."""
    errors: list[str] = []
    for key in ("space_sha256", "behaviour_sha256"):
        value = getattr(prov, key)
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            errors.append(f"{path}.{key}: {value!r} is not a sha256 hex digest (64 of 0-9a-f)")
    if prov.created:
        try:
            datetime.fromisoformat(prov.created)
        except ValueError:
            errors.append(f"{path}.created: {prov.created!r} is not an ISO 8601 time "
                          "(e.g. 2026-12-07T12:00:00+00:00)")
    if prov.objective is not None and not 0.0 <= prov.objective <= 1.0:
        errors.append(f"{path}.objective: {prov.objective!r} is not an Ω within [0, 1]")
    return errors


def _checked(parse: typing.Callable[[], _R], checks: typing.Callable[[_R], list[str]]) -> _R:
    """``parse()``, then the cross-field ``checks`` of its result (all problems raised)."""
    value = parse()
    errors = checks(value)
    if errors:
        raise RecipeError(errors)
    return value


def printable_name(name: str) -> bool:
    """Whether ``name`` (a recipe's, a search space's) is one line of printable characters
    without ``|``: it goes into log lines and Markdown tables (found 2026-12-07: a recipe
    named "a|b\\nc" split both)."""
    return "|" not in name and not any(
        unicodedata.category(ch).startswith(("C", "Zl", "Zp")) for ch in name)


def _parse_recipe(data: Any) -> Recipe:
    mapping = _require_mapping(data, "recipe")
    col = _Collect()
    col.run(_check_keys, mapping, _TOP_KEYS, "")
    if "schema_version" not in mapping:
        raise RecipeError([*col.errors,
                           f"schema_version: missing (this version reads {SCHEMA_VERSION})"])
    version = _coerce(mapping["schema_version"], int, "schema_version")
    if version != SCHEMA_VERSION:
        # Another schema: the other fields may mean something else; this is the only problem.
        raise RecipeError(
            f"schema_version: {version} is not supported; this version reads {SCHEMA_VERSION}"
        )
    for required in ("name", "detector"):
        if required not in mapping:
            col.errors.append(f"{required}: missing (required)")
    name = col.run(_coerce, mapping.get("name", "?"), str, "name")
    if name is not None and not name.strip():
        col.errors.append("name: must not be empty")
    elif name is not None and not printable_name(name):
        col.errors.append(f"name: {name!r}: one line of printable characters without '|'")
    seed = col.run(_coerce, mapping.get("seed", 13711), int, "seed")
    if seed is not None:
        col.run(_check_bounds, seed, "seed", *_BOUNDS["seed"])

    def section(cls: type[_R], key: str) -> _R | None:
        return col.run(_parse_dataclass, cls, mapping.get(key, {}), key)

    features = col.run(_checked, lambda: _parse_dataclass(
        FeatureSpec, mapping.get("features", {}), "features"), feature_errors)
    supplemental = col.run(_checked, lambda: _parse_dataclass(
        SupplementalSpec, mapping.get("supplemental", {}), "supplemental"), supplemental_errors)
    detector = (col.run(_parse_detector, mapping["detector"], "detector")
                if "detector" in mapping else None)
    description = col.run(_coerce, mapping.get("description", ""), str, "description")
    normalization = section(NormalizationSpec, "normalization")
    threshold = section(ThresholdSpec, "threshold")
    ensemble = section(EnsembleSpec, "ensemble")
    provenance = col.run(_checked, lambda: _parse_dataclass(
        Provenance, mapping.get("provenance", {}), "provenance"), provenance_errors)
    if features is not None and detector is not None:  # what the family allows on these bins
        col.errors += REGISTRY[detector.name].recipe_errors(detector.params, features.n_bins)
    col.raise_if_any()
    assert name is not None and seed is not None and features is not None  # for mypy
    assert supplemental is not None and detector is not None and description is not None
    assert normalization is not None and threshold is not None and ensemble is not None
    assert provenance is not None
    with _Checked():
        return Recipe(
            schema_version=version,
            name=name,
            description=description,
            features=features,
            detector=detector,
            normalization=normalization,
            threshold=threshold,
            supplemental=supplemental,
            ensemble=ensemble,
            seed=seed,
            provenance=provenance,
        )
