"""Imports every detector family module so that each registers itself.

Each family lives in its own module; add one import line per family here.
"""

from __future__ import annotations
