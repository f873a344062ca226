"""Detector registry: recipes name detectors by their stable registry name only."""

from __future__ import annotations

from typing import Any

from automl_asd.detectors.base import Detector, NotFittedError, ParamSpec, TrainSet

__all__ = [
    "Detector",
    "NotFittedError",
    "ParamSpec",
    "TrainSet",
    "REGISTRY",
    "register",
    "get_detector_class",
    "make_detector",
]

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector family to the registry under ``cls.name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get_detector_class(name: str) -> type[Detector]:
    """Look a family up by name; an unknown name lists the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown detector {name!r}; valid detectors: {valid}") from None


def make_detector(name: str, params: dict[str, Any], seed: int) -> Detector:
    return get_detector_class(name)(seed=seed, **params)


# Family modules register themselves on import (keep this list sorted).
from automl_asd.detectors import (  # noqa: E402,F401
    _families,
)
