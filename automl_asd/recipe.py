"""Frozen recipes: a dataclass tree <-> strict JSON (``schema_version`` 1).

A recipe is everything ``apply`` needs to train and score a machine type: feature spec,
detector (registry name + params), score normalisation, threshold rule, supplemental-data use,
ensemble, seed, and provenance. JSON is the only persisted form: components are named by
registry name, never by import path, and nothing is pickled, so a recipe file cannot run code.

Parsing is strict: unknown keys, wrong types (a bool is not an int), unknown detector/backend
names and out-of-range values raise :class:`RecipeError` naming the JSON path, e.g.
``detector.params.backend.params.k: 0 is below the minimum 1``. Keys missing inside a section
take their documented defaults; ``to_dict``/``to_json`` always write every value resolved, so
``content_hash()`` (sha256 of the canonical JSON without ``provenance``) is stable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from automl_asd.errors import PermanentError
from automl_asd.features import FeatureSpec
from automl_asd.recipe_checks import semantic_errors

__all__ = [
    "SCHEMA_VERSION",
    "RecipeError",
    "DetectorSpec",
    "NormalizationSpec",
    "ThresholdSpec",
    "SupplementalSpec",
    "EnsembleSpec",
    "Provenance",
    "Recipe",
    "load_recipe",
    "shipped_recipe_names",
    "validate_params",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

NormalizationMethod = Literal["none", "domain_zscore", "domain_log_zscore"]
ThresholdMethod = Literal["gamma", "quantile"]
CombineRule = Literal["mean_z", "mean", "max"]
ProvenanceSource = Literal["shipped", "search", "manual"]


class RecipeError(PermanentError, ValueError):
    """A malformed recipe; the message starts with the JSON path of the offending field."""


@dataclass(frozen=True)
class DetectorSpec:
    """Detector family by registry name, with its fully resolved parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        # ``params`` is a dict (unhashable); hash its canonical JSON so recipes can be
        # dict keys / set members.
        return hash((self.name, json.dumps(_plain(self.params), sort_keys=True)))


@dataclass(frozen=True)
class NormalizationSpec:
    """Score normalisation (see :mod:`automl_asd.scoring`)."""

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


@dataclass(frozen=True)
class EnsembleSpec:
    """``size`` members with seeds derived from the recipe seed, combined by ``combine``."""

    size: int = 1
    combine: CombineRule = "mean_z"


@dataclass(frozen=True)
class Provenance:
    """How the recipe was made. Not part of :meth:`Recipe.content_hash`."""

    package_version: str = ""
    created: str = ""
    source: ProvenanceSource = "manual"
    space_name: str | None = None
    space_sha256: str | None = None
    dev_machine_types: tuple[str, ...] = ()
    objective: float | None = None
    trial_id: str | None = None


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


@dataclass(frozen=True)
class Recipe:
    """A frozen, complete description of how to build a detector for any machine type."""

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
            "provenance": _plain(dataclasses.asdict(self.provenance)),
        }

    def to_json(self) -> str:
        """Human-readable, stable JSON (2-space indent, schema key order, trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def content_hash(self) -> str:
        """sha256 hex digest of the canonical JSON of every section except ``provenance``."""
        d = self.to_dict()
        del d["provenance"]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

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
                f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except RecursionError:
            raise RecipeError(f"{source}: not a usable recipe (JSON nested too deeply; a recipe "
                              "is a few levels deep)") from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits, a duplicate key
            reason = str(exc).split("; use sys.set_int_max_str_digits", 1)[0]
            raise RecipeError(f"{source}: not a usable recipe ({reason})") from None
        try:
            return _parse_recipe(data)
        except RecipeError as exc:
            raise RecipeError(f"{source}: {exc}") from None

    def save(self, path: Path | str) -> Path:
        """Write :meth:`to_json` to ``path`` (the only file this module writes)."""
        out = Path(path)
        out.write_text(self.to_json(), encoding="utf-8")
        return out

    def with_provenance(self, **changes: Any) -> Recipe:
        """Copy with provenance fields replaced (validated); ``created`` defaults to now (UTC)."""
        current = dataclasses.asdict(self.provenance)
        unknown = set(changes) - set(current)
        if unknown:
            valid = ", ".join(current)
            raise RecipeError(f"provenance: unknown field(s) {sorted(unknown)}; valid: {valid}")
        current.update(changes)
        if "created" not in changes and not current["created"]:
            current["created"] = datetime.now(UTC).isoformat(timespec="seconds")
        if not current["package_version"]:
            from automl_asd import __version__

            current["package_version"] = __version__
        prov = _parse_dataclass(Provenance, _plain(current), "provenance")
        return dataclasses.replace(self, provenance=prov)

    def replace(self, **changes: Any) -> Recipe:
        """Copy with top-level fields replaced, re-validated through the strict parser."""
        d = self.to_dict()
        for key, value in changes.items():
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = dataclasses.asdict(value)
            d[key] = _plain(value)
        return _parse_recipe(d)


# ------------------------------------------------------------------- loading
def shipped_recipe_names() -> list[str]:
    """Names of the recipes shipped inside the package (``automl_asd/recipes/*.json``)."""
    folder = resources.files("automl_asd") / "recipes"
    return sorted(
        p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_recipe(path_or_name: str | Path) -> Recipe:
    """Load a recipe from a JSON file path or a shipped name (e.g. ``baseline_ae_mse``).

    An existing path wins over a shipped name. Raises :class:`FileNotFoundError` (listing the
    shipped names) when neither exists, :class:`RecipeError` when the file is malformed.
    """
    path = Path(path_or_name)
    if path.is_file():
        return Recipe.from_json(path.read_text(encoding="utf-8"), source=str(path))
    name = str(path_or_name)
    if name in shipped_recipe_names():
        res = resources.files("automl_asd") / "recipes" / f"{name}.json"
        return Recipe.from_json(res.read_text(encoding="utf-8"), source=f"shipped:{name}")
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


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RecipeError(f"{path}: expected an object, got {_type_name(value)}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: typing.Iterable[str], path: str) -> None:
    allowed = list(allowed)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        prefix = f"{path}." if path else ""
        raise RecipeError(
            f"{prefix}{unknown[0]}: unknown key; valid keys here: {', '.join(allowed)}"
        )


def _check_bounds(value: float, path: str, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise RecipeError(f"{path}: {value!r} is below the minimum {_num(low)}")
    if high is not None and value > high:
        raise RecipeError(f"{path}: {value!r} is above the maximum {_num(high)}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


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
        fval = float(value)
        if fval != fval or fval in (float("inf"), float("-inf")):
            raise RecipeError(f"{path}: {value!r} is not a finite number")
        return fval
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
    _check_keys(mapping, fields, path)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name in fields:
        if name not in mapping:
            continue
        fpath = f"{path}.{name}"
        value = _coerce(mapping[name], hints[name], fpath)
        bounds = _BOUNDS.get(fpath)
        if bounds is not None and value is not None:
            for v in value if isinstance(value, tuple) else (value,):
                _check_bounds(v, fpath, *bounds)
        kwargs[name] = value
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
    _check_keys(mapping, schema, path)
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        ppath = f"{path}.{key}"
        value = mapping.get(key, spec.default)
        out[key] = _validate_param(spec, value, ppath, owner=owner)
    return out


def _validate_param(spec: Any, value: Any, path: str, *, owner: str) -> Any:
    if value is None:
        if spec.default is None:
            return None
        raise RecipeError(f"{path}: null is not allowed ({owner})")
    kind = spec.type
    if kind == "backend":
        return _parse_backend(value, path)
    if kind == "int":
        result: Any = _coerce(value, int, path)
    elif kind == "float":
        result = _coerce(value, float, path)
    elif kind == "bool":
        return _coerce(value, bool, path)
    elif kind == "str":
        result = _coerce(value, str, path)
        if spec.choices is not None and result not in spec.choices:
            choices = ", ".join(repr(c) for c in spec.choices)
            raise RecipeError(f"{path}: {result!r} is not one of {choices}")
        return result
    else:
        raise RecipeError(f"{path}: {owner} declares unsupported parameter type {kind!r}")
    _check_bounds(result, path, spec.low, spec.high)
    return result


def _parse_backend(value: Any, path: str) -> dict[str, Any]:
    from automl_asd.backends import BACKENDS

    mapping = _require_mapping(value, path)
    _check_keys(mapping, ("name", "params"), path)
    if "name" not in mapping:
        raise RecipeError(f"{path}.name: missing; valid backends: {', '.join(sorted(BACKENDS))}")
    name = _coerce(mapping["name"], str, f"{path}.name")
    if name not in BACKENDS:
        raise RecipeError(
            f"{path}.name: unknown backend {name!r}; valid backends: {', '.join(sorted(BACKENDS))}"
        )
    cls = BACKENDS[name]
    params = validate_params(
        cls.params, mapping.get("params", {}), f"{path}.params", owner=f"backend {name}"
    )
    return {"name": name, "params": params}


def _parse_detector(value: Any, path: str) -> DetectorSpec:
    from automl_asd.detectors import REGISTRY

    mapping = _require_mapping(value, path)
    _check_keys(mapping, ("name", "params"), path)
    valid = ", ".join(sorted(REGISTRY))
    if "name" not in mapping:
        raise RecipeError(f"{path}.name: missing; valid detectors: {valid}")
    name = _coerce(mapping["name"], str, f"{path}.name")
    if name not in REGISTRY:
        raise RecipeError(f"{path}.name: unknown detector {name!r}; valid detectors: {valid}")
    params = validate_params(
        REGISTRY[name].params, mapping.get("params", {}), f"{path}.params", owner=name
    )
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


def _parse_recipe(data: Any) -> Recipe:
    mapping = _require_mapping(data, "recipe")
    _check_keys(mapping, _TOP_KEYS, "")
    if "schema_version" not in mapping:
        raise RecipeError(f"schema_version: missing (this version reads {SCHEMA_VERSION})")
    version = _coerce(mapping["schema_version"], int, "schema_version")
    if version != SCHEMA_VERSION:
        raise RecipeError(
            f"schema_version: {version} is not supported; this version reads {SCHEMA_VERSION}"
        )
    for required in ("name", "detector"):
        if required not in mapping:
            raise RecipeError(f"{required}: missing (required)")
    name = _coerce(mapping["name"], str, "name")
    if not name.strip():
        raise RecipeError("name: must not be empty")
    seed = _coerce(mapping.get("seed", 13711), int, "seed")
    _check_bounds(seed, "seed", *_BOUNDS["seed"])
    features = _parse_dataclass(FeatureSpec, mapping.get("features", {}), "features")
    if features.f_max is not None and features.f_max <= features.f_min:
        raise RecipeError(f"features.f_max: {features.f_max!r} must exceed f_min {features.f_min}")
    if features.win_length is not None and features.win_length > features.n_fft:
        raise RecipeError(
            f"features.win_length: {features.win_length} exceeds n_fft {features.n_fft}"
        )
    supplemental = _parse_dataclass(
        SupplementalSpec, mapping.get("supplemental", {}), "supplemental"
    )
    lo, hi = supplemental.noise_snr_db
    if lo > hi:
        raise RecipeError(f"supplemental.noise_snr_db: [{lo}, {hi}] must be [low, high]")
    recipe = Recipe(
        schema_version=version,
        name=name,
        description=_coerce(mapping.get("description", ""), str, "description"),
        features=features,
        detector=_parse_detector(mapping["detector"], "detector"),
        normalization=_parse_dataclass(
            NormalizationSpec, mapping.get("normalization", {}), "normalization"
        ),
        threshold=_parse_dataclass(ThresholdSpec, mapping.get("threshold", {}), "threshold"),
        supplemental=supplemental,
        ensemble=_parse_dataclass(EnsembleSpec, mapping.get("ensemble", {}), "ensemble"),
        seed=seed,
        provenance=_parse_dataclass(Provenance, mapping.get("provenance", {}), "provenance"),
    )
    problems = semantic_errors(recipe)  # cross-field checks (automl_asd.recipe_checks)
    if problems:
        raise RecipeError("; ".join(problems))
    return recipe
