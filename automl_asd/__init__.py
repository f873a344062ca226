"""automl-asd: AutoML for first-shot unsupervised anomalous sound detection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl_asd._version import __version__

__all__ = ["__version__", "load_bundle", "Bundle"]

if TYPE_CHECKING:
    from automl_asd.bundle import Bundle, load_bundle


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import automl_asd`` stays light (no numpy/torch) and cycle-free.
    if name in ("load_bundle", "Bundle"):
        from automl_asd import bundle  # noqa: PLC0415  (PEP 562 lazy attribute: `import automl_asd` stays light)

        return getattr(bundle, name)
    raise AttributeError(f"module 'automl_asd' has no attribute {name!r}")
