"""The package version, in a leaf module so that internal modules read it without importing the
package face (``automl_asd/__init__.py``)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
