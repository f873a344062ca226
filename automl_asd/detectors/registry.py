"""The detector registry: recipes name detector families by their stable registry name only.

Family modules import :func:`register` from here (not from the package), so registering is no
import cycle: ``automl_asd.detectors`` imports this module first, then every family.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_asd.components.params import checked_params
from automl_asd.components.registry import Registry
from automl_asd.detectors.base import Detector

__all__ = ["REGISTRY", "register", "get_detector_class", "make_detector"]

#: Every registered detector family by name.
REGISTRY: Registry[Detector] = Registry("detector")


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector family to the registry under ``cls.name``."""
    return REGISTRY.register(cls)


def get_detector_class(name: str) -> type[Detector]:
    """Look a family up by name; an unknown name lists the valid ones."""
    return REGISTRY.get(name)


def make_detector(name: str, params: Mapping[str, Any], seed: int = 0) -> Detector:
    """A new, unfitted detector of family ``name``, its ``params`` checked against the
    family's schema (:func:`~automl_asd.components.params.checked_params`)."""
    cls = REGISTRY.get(name)
    return cls(seed=seed, **checked_params(cls, params))
