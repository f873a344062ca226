"""The backend registry (scoring of clip embeddings), by stable snake_case name.

Backend modules import :func:`register_backend` from here (not from the package), so
registering is no import cycle: ``automl_asd.backends`` imports this module first, then every
backend module.
"""

from __future__ import annotations

from typing import Any

from automl_asd.backends.base import Backend
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


def make_backend(name: str, params: dict[str, Any], seed: int) -> Backend:
    """A new, unfitted backend ``name`` (``params`` as validated by the recipe)."""
    return BACKENDS.get(name)(seed=seed, **params)
