"""Values read back from trial tables (pandas rows) as plain Python.

Shared by the search's freezing step (``orchestration/search.py``) and the novel-type check
(``novel_check.py``), which both rebuild recipes from trial rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["is_missing", "to_native"]


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (an inactive conditional parameter in a nullable column)."""
    if value is None:
        return True
    import pandas as pd

    if value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def to_native(value: Any) -> Any:
    """numpy scalars (from pandas rows) -> Python scalars for the recipe."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
