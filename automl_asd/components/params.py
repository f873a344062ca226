"""Parameter schema shared by detector families and scoring backends.

It lives in its own module so that ``detectors`` and ``backends`` can both import it without
importing each other (a family may use backends, and backends need the schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ParamSpec", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """A detector or backend used before ``fit`` (the same bases as scikit-learn's, defined here
    so that reading parameter schemas does not import scikit-learn)."""


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
