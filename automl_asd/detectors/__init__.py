"""Detector families: recipes name detectors by their stable registry name only.

The registry lives in :mod:`automl_asd.detectors.registry`; importing this package registers
every family (``_families``: one import line per family module).
"""

from __future__ import annotations

from automl_asd.detectors import _families  # noqa: F401  (each family registers itself)
from automl_asd.detectors.base import Detector, NotFittedError, ParamSpec, TrainSet
from automl_asd.detectors.registry import REGISTRY, get_detector_class, make_detector, register

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
