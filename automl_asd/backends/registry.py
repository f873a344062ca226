"""The backend registry (scoring of clip embeddings), by stable snake_case name.

Backend modules import :func:`register_backend` from here (not from the package), so
registering is no import cycle: ``automl_asd.backends`` imports this module first, then every
backend module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl_asd.backends.base import Backend
from automl_asd.components.params import checked_params
from automl_asd.components.registry import Registry

__all__ = ["BACKENDS", "register_backend", "get_backend_class", "make_backend"]

#: Every registered backend by name.
BACKENDS: Registry[Backend] = Registry("backend")


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator adding a backend to the registry under ``cls.name``."""
    return BACKENDS.register(cls)


def get_backend_class(name: str) -> type[Backend]:
    """Look a backend up by name; an unknown name lists the valid ones."""
    return BACKENDS.get(name)


def make_backend(name: str, params: Mapping[str, Any], seed: int = 0) -> Backend:
    """A new, unfitted backend ``name``, its ``params`` checked against its schema
    (:func:`~automl_asd.components.params.checked_params`)."""
    cls = BACKENDS.get(name)
    return cls(seed=seed, **checked_params(cls, params))
