"""Backend registry (scoring of clip embeddings), by stable snake_case name."""

from __future__ import annotations

from typing import Any

from automl_asd.backends.base import Backend

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend_class", "make_backend"]

BACKENDS: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    if cls.name in BACKENDS and BACKENDS[cls.name] is not cls:
        raise ValueError(f"backend name {cls.name!r} registered twice")
    BACKENDS[cls.name] = cls
    return cls


def get_backend_class(name: str) -> type[Backend]:
    try:
        return BACKENDS[name]
    except KeyError:
        valid = ", ".join(sorted(BACKENDS))
        raise KeyError(f"unknown backend {name!r}; valid backends: {valid}") from None


def make_backend(name: str, params: dict[str, Any], seed: int) -> Backend:
    return get_backend_class(name)(seed=seed, **params)


# Backend modules register themselves on import: one import line per module in _modules.py.
from automl_asd.backends import _modules  # noqa: E402,F401
