"""Imports every detector family module so that each registers itself.

Each family lives in its own module; add one import line per family here.
"""

from __future__ import annotations

import automl_asd.detectors.dcase_ae  # noqa: F401
import automl_asd.detectors.embedding  # noqa: F401
import automl_asd.detectors.frame_gaussian  # noqa: F401
import automl_asd.detectors.hedge  # noqa: F401
import automl_asd.detectors.margin  # noqa: F401
