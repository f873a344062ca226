"""Size presets, sample rate and the error class of the generator (no numpy/scipy: the CLI
reads them to build ``synth --help`` without importing the generator)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from automl_asd.errors import AutomlAsdError

__all__ = ["SAMPLE_RATE", "Size", "SizeSpec", "SIZES", "SynthError"]

SAMPLE_RATE = 16000

Size = Literal["tiny", "small", "full"]


class SynthError(AutomlAsdError, ValueError):
    """Invalid generator arguments or an output folder that cannot be written safely."""


@dataclass(frozen=True)
class SizeSpec:
    """Clip counts per machine type and clip length of one size preset."""

    n_source_train: int
    n_target_train: int
    n_test_per_group: int  # per (domain, label) group: 4 groups
    n_supplemental: int
    duration_s: float

    @property
    def n_clips(self) -> int:
        return (self.n_source_train + self.n_target_train + 4 * self.n_test_per_group
                + self.n_supplemental)


SIZES: dict[str, SizeSpec] = {
    "full": SizeSpec(990, 10, 50, 100, 10.0),
    "small": SizeSpec(190, 10, 25, 20, 6.0),
    "tiny": SizeSpec(54, 6, 10, 8, 2.0),
}
