"""Imports every backend module so that each registers itself (one line per module)."""

from __future__ import annotations

import automl_asd.backends.fusion  # noqa: F401
import automl_asd.backends.gmm  # noqa: F401
import automl_asd.backends.knn  # noqa: F401
import automl_asd.backends.knn_smote  # noqa: F401
import automl_asd.backends.local_density  # noqa: F401
import automl_asd.backends.mahalanobis  # noqa: F401
