"""Spectral features with torchaudio, cached on disk once per (feature spec, file set)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["FeatureSpec"]

FeatureKind = Literal["logmel", "stft"]


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute from a clip. Defaults are the official baseline's log-mel settings.

    ``kind="logmel"``: ``(n_frames, n_mels)`` log-mel in dB (``10*log10(max(mel, eps))`` for
    power 2, as the baseline's ``20/power*log10``). ``kind="stft"``: ``(n_frames, n_fft//2+1)``
    STFT magnitude (``power``=1) or power, log-compressed in dB when ``log`` is true.
    """

    kind: FeatureKind = "logmel"
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    win_length: int | None = None
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    power: float = 2.0
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney", "none"] = "slaney"
    log: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def n_bins(self) -> int:
        """Feature dimension per frame."""
        return self.n_mels if self.kind == "logmel" else self.n_fft // 2 + 1

    def key(self) -> str:
        """Stable short hash of the spec (part of the cache key)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
