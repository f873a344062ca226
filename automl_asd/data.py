"""Scan DCASE Task 2 data trees into typed clip records.

All file-name parsing of the project lives in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = ["Split", "Domain", "Label", "Clip", "MachineData", "DataError"]


class DataError(ValueError):
    """A data tree, file name or wav file that cannot be used; the message names the file."""


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"
    SUPPLEMENTAL = "supplemental"


class Domain(StrEnum):
    SOURCE = "source"
    TARGET = "target"
    UNKNOWN = "unknown"


class Label(StrEnum):
    NORMAL = "normal"
    ANOMALY = "anomaly"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Clip:
    """One wav file of a DCASE tree.

    ``attributes`` is ``None`` for ``noAttribute`` names (hidden attributes) and for anonymised
    eval names; otherwise an ordered tuple of ``(key, value)`` pairs taken from the file name.
    ``kind`` is ``""`` for train/test clips and ``"machine"``, ``"noise"`` or ``"unknown"`` for
    supplemental clips.
    """

    path: Path
    machine_type: str
    section: str
    split: Split
    domain: Domain
    label: Label
    index: int | None
    attributes: tuple[tuple[str, str], ...] | None
    kind: str = ""

    @property
    def name(self) -> str:
        """The file's base name including ``.wav`` (the key of submission files)."""
        return self.path.name

    @property
    def attribute_string(self) -> str:
        """``key_value`` tokens joined by ``_``, or ``noAttribute``."""
        if self.attributes is None:
            return "noAttribute"
        return "_".join(f"{k}_{v}" if v != "" else k for k, v in self.attributes)


@dataclass(frozen=True)
class MachineData:
    """All clips of one machine type, sorted by path."""

    machine_type: str
    root: Path
    clips: tuple[Clip, ...] = field(default_factory=tuple)

    @property
    def train(self) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.split is Split.TRAIN)

    @property
    def test(self) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.split is Split.TEST)

    @property
    def supplemental(self) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.split is Split.SUPPLEMENTAL)

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(sorted({c.section for c in self.clips}))
