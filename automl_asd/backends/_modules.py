"""Imports every backend module so that each registers itself (one line per module)."""

from __future__ import annotations
