"""Scoring backends (clip embeddings -> anomaly scores), by stable snake_case name.

The registry lives in :mod:`automl_asd.backends.registry`; importing this package registers
every backend (``_modules``: one import line per backend module).
"""

from __future__ import annotations

from automl_asd.backends import _modules  # noqa: F401  (each backend registers itself)
from automl_asd.backends.base import Backend
from automl_asd.backends.registry import (
    BACKENDS,
    get_backend_class,
    make_backend,
    register_backend,
)

__all__ = ["Backend", "BACKENDS", "register_backend", "get_backend_class", "make_backend"]
