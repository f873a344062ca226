"""automl-asd: AutoML for first-shot unsupervised anomalous sound detection."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
