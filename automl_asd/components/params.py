"""Parameter schema shared by detector families and scoring backends, and its one validator.

It lives below ``detectors`` and ``backends`` so that both can import it without importing each
other (a family may use backends, and backends need the schema). :func:`validate` is used by
the recipe parser (:mod:`automl_asd.recipe`) and by the search-space loader, so a value is
accepted by a space exactly when a recipe would accept it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from automl_asd.errors import AutomlAsdError

__all__ = ["ParamSpec", "ParamError", "NotFittedError", "Parameterized", "validate",
           "checked_params", "check_bounds", "finite_number", "type_name", "PARAM_TYPES"]

#: The ``ParamSpec.type`` values.
PARAM_TYPES = ("int", "float", "bool", "str", "backend")


class NotFittedError(AutomlAsdError, ValueError, AttributeError):
    """A detector or backend used before ``fit`` (the same builtin bases as scikit-learn's,
    defined here so that reading parameter schemas does not import scikit-learn)."""


class ParamError(AutomlAsdError, ValueError):
    """A parameter value that does not fit its :class:`ParamSpec`; the message is
    ``"<path>: <problem>"``."""


@dataclass(frozen=True)
class ParamSpec:
    """Schema of one detector or backend parameter, used to validate recipes and search spaces.

    ``type`` is one of ``"int"``, ``"float"``, ``"bool"``, ``"str"`` or ``"backend"`` (a nested
    ``{"name": <backend>, "params": {...}}`` checked against that backend's schema). Numeric
    values must lie in ``[low, high]`` (inclusive, ``None`` = unbounded); strings must be one of
    ``choices``.
    """

    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""


def type_name(value: Any) -> str:
    """JSON-ish name of a value's type for messages (``null``, ``int``, ``object``, ...)."""
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def validate(spec: ParamSpec, value: Any, path: str, *, owner: str = "") -> Any:
    """Check one scalar parameter value against ``spec``; return it coerced (an int given for a
    float parameter becomes a float).

    Raises :class:`ParamError` ``"<path>: <problem>"``: a wrong type (bools are not numbers,
    ``3.0`` is not an integer), a non-finite float, a number outside ``[low, high]``, a string
    outside ``choices``, or ``None`` where the default is not ``None``. ``owner`` (e.g.
    ``"backend knn"``) is named in messages about the schema itself. A ``"backend"`` parameter
    is a nested component: its caller validates it against the backend registry.
    """
    if value is None:
        if spec.default is None:
            return None
        raise ParamError(f"{path}: null is not allowed ({owner})" if owner
                         else f"{path}: null is not allowed here")
    kind = spec.type
    if kind == "bool":
        if not isinstance(value, bool):
            raise ParamError(f"{path}: expected true/false, got {type_name(value)} {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ParamError(f"{path}: expected a string, got {type_name(value)} {value!r}")
        if spec.choices is not None and value not in spec.choices:
            choices = ", ".join(repr(c) for c in spec.choices)
            raise ParamError(f"{path}: {value!r} is not one of {choices}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{path}: expected an integer, got {type_name(value)} {value!r}")
        result: int | float = value
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamError(f"{path}: expected a number, got {type_name(value)} {value!r}")
        result = finite_number(value, path)
    elif kind == "backend":
        raise ParamError(f"{path}: a backend parameter is a nested {{name, params}} component; "
                         "validate it against the backend registry")
    else:
        raise ParamError(f"{path}: {owner or 'the component'} declares unsupported parameter "
                         f"type {kind!r}")
    check_bounds(result, path, spec.low, spec.high)
    return result


def finite_number(value: int | float, path: str) -> float:
    """``value`` as a finite float (``-0.0`` read as ``0.0``, so equal recipes hash alike);
    :class:`ParamError` for NaN, infinities and integers too large for a float (JSON and YAML
    allow thousands of digits)."""
    try:
        result = float(value)
    except OverflowError:
        raise ParamError(f"{path}: an integer of {len(str(abs(int(value))))} digits is not a "
                         "finite number") from None
    if not math.isfinite(result):
        raise ParamError(f"{path}: {value!r} is not a finite number")
    return result + 0.0  # -0.0 + 0.0 == 0.0


def check_bounds(value: float, path: str, low: float | None, high: float | None) -> None:
    """:class:`ParamError` when ``value`` lies outside ``[low, high]`` (``None`` = open)."""
    if low is not None and value < low:
        raise ParamError(f"{path}: {value!r} is below the minimum {_num(low)}")
    if high is not None and value > high:
        raise ParamError(f"{path}: {value!r} is above the maximum {_num(high)}")


def _closest(name: str, valid: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.75)
    return close[0] if close else None


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when one valid name is close to ``name`` (a typo, or the
    other spelling: ``knn`` says ``n_centers``, ``knn_smote`` ``n_centres``), else ``""``."""
    close = _closest(name, valid)
    return f" (did you mean {close!r}?)" if close else ""


def unknown_names(owner: str, unknown: Sequence[str], valid: Iterable[str]) -> str:
    """``"<owner>: unknown parameter(s) [...]"`` with a suggestion for each unknown name close
    to a valid one: ``(did you mean 'x'?)`` for a single name, ``('a': did you mean 'x'?; ...)``
    for several."""
    valid = list(valid)
    text = f"{owner}: unknown parameter(s) {list(unknown)}"
    if len(unknown) == 1:
        return text + did_you_mean(unknown[0], valid)
    hints = [f"{name!r}: did you mean {close!r}?" for name in unknown
             if (close := _closest(name, valid))]
    return text + (f" ({'; '.join(hints)})" if hints else "")


def checked_params(cls: type[Parameterized], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` for ``cls(**params)``, each scalar checked against ``cls.params``
    (:func:`validate`; a nested ``backend`` is checked when the detector makes it): what the
    registries' factories pass on (found 2026-12-07: ``{"context": "zzz"}`` for
    ``frame_gaussian`` was accepted and failed in ``fit``: "'<' not supported between
    'int' and 'str'"). An
    unknown name is a ``TypeError`` listing the valid ones; a bad value a :class:`ParamError`."""
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        raise TypeError(f"{unknown_names(cls._label + cls.name, unknown, cls.params)}; "
                        f"valid: {', '.join(cls.params)}")
    return {key: value if cls.params[key].type == "backend"
            else validate(cls.params[key], value, f"{cls._label}{cls.name}.{key}")
            for key, value in params.items()}


class Parameterized:
    """What detector families and scoring backends share (scikit-learn style): ``__init__``
    takes exactly the keyword arguments of :attr:`params` (plus ``seed``) and stores each as an
    attribute, defaults filled in, without validating or computing anything; an unknown keyword
    is a ``TypeError`` naming it. Values are validated by the recipe and space parsers
    (:func:`validate`), which read the same schema."""

    #: Registry name (stable snake_case; recipes refer to components by this name only).
    name: ClassVar[str]
    #: Parameter schema; ``__init__`` takes exactly these keyword arguments plus ``seed``.
    params: ClassVar[dict[str, ParamSpec]]
    #: Small parameters for the registry-wide contract tests (seconds on CPU); ``{}``: the
    #: tests' defaults.
    test_params: ClassVar[dict[str, Any]] = {}
    #: What an error message calls the component before its name (``"backend "`` for backends).
    _label: ClassVar[str] = ""

    def __init__(self, *, seed: int = 0, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self.params))
        if unknown:
            raise TypeError(unknown_names(self._label + self.name, unknown, self.params))
        self.seed = seed
        for key, spec in self.params.items():
            setattr(self, key, kwargs.get(key, spec.default))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The keyword arguments of ``__init__`` as stored: one key per :attr:`params` entry,
        and ``seed``. ``type(self)(**self.get_params())`` is an unfitted copy, so
        ``sklearn.base.clone`` works (found 2026-12-07: it failed on the missing ``deep``
        argument, and a copy would have lost the seed). ``deep`` is scikit-learn's; no
        parameter here is itself an estimator, so it changes nothing."""
        del deep
        return {**{key: getattr(self, key) for key in self.params}, "seed": self.seed}

    def set_params(self, **params: Any) -> Parameterized:
        """Set parameters by name (as scikit-learn's ``set_params``) and return ``self``; an
        unknown name is a ``TypeError`` listing the valid ones. Values are not validated here,
        as in ``__init__``; a fitted instance must be fitted again."""
        valid = [*self.params, "seed"]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise TypeError(f"{unknown_names(self._label + self.name, unknown, valid)}; "
                            f"valid: {', '.join(valid)}")
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _check_fitted(self) -> None:
        """``NotFittedError`` unless ``fit`` has set ``fitted_``."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{self._label}{self.name}: call fit() first")
