"""Semantic recipe checks and a cost estimate, so errors surface at the recipe, not at a wav.

:func:`feature_semantic_errors` returns every cross-field problem of a ``features`` section as
``"json.path: message"`` strings; the recipe parser (``recipe.feature_errors``) collects them
with all its other problems into one :class:`~automl_asd.recipe.RecipeError`:
``f_min < f_max <= sample_rate / 2``, ``hop_length <= win_length``,
``n_mels <= n_fft // 2 + 1``, and no mel filter without an FFT bin in it
(:func:`empty_mel_filters`: a band ``f_min..f_max`` too narrow for ``n_mels`` at
``sample_rate / n_fft`` resolution gives constant, information-free features)
(``win_length <= n_fft`` is checked by the parser itself).

:func:`estimate_cost` estimates what a recipe costs on a data set: feature-cache bytes
(``sample_rate / hop_length`` frames per clip-second x ``n_bins`` x 4 bytes) and training work
(``ensemble.size x epochs`` member-epochs; for ``dcase_ae`` also approximate FLOPs,
6 x weights per frame vector per epoch). :func:`check_cost` refuses a recipe whose estimate
exceeds a limit, with the estimate and the setting in the message. Limits (defaults):
``AUTOML_ASD_MAX_CACHE_GB`` (200 GB of feature cache for the data at hand) and
``AUTOML_ASD_MAX_MEMBER_EPOCHS`` (20000), or the ``--max-cache-gb`` / ``--max-member-epochs``
flags of ``recipe validate`` and ``apply``. Without data (``recipe validate``) the estimate is
for the DCASE 2025 development set (7 machine types x 1200 clips x 10 s; plus supplemental).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_asd.audio import AudioError, wav_info
from automl_asd.data import DataError, find_machine_dirs
from automl_asd.errors import ResourceLimitError

if TYPE_CHECKING:
    from automl_asd.features import FeatureSpec
    from automl_asd.recipe import Recipe

__all__ = ["semantic_errors", "feature_semantic_errors", "empty_mel_filters", "CostEstimate",
           "estimate_cost",
           "check_cost", "cost_limits", "REFERENCE_CLIP_SECONDS", "data_clip_seconds",
           "check_cost_for_data"]

#: DCASE 2025 Task 2 development set: 7 types x (1000 train + 200 test) clips of 10 s.
REFERENCE_CLIP_SECONDS = 7 * 1200 * 10.0
REFERENCE_TRAIN_CLIP_SECONDS = 7 * 1000 * 10.0
REFERENCE_NAME = "the DCASE 2025 dev set (84,000 clip-seconds)"
DEFAULT_MAX_CACHE_GB = 200.0
DEFAULT_MAX_MEMBER_EPOCHS = 20000
#: About 300 times the official baseline's training on the DCASE 2025 development set
#: (~3.5e14 FLOPs); the default search space's largest autoencoder stays far below it.
DEFAULT_MAX_TRAIN_FLOPS = 1e17
ENV_MAX_TRAIN_FLOPS = "AUTOML_ASD_MAX_TRAIN_FLOPS"
ENV_MAX_CACHE_GB = "AUTOML_ASD_MAX_CACHE_GB"
ENV_MAX_MEMBER_EPOCHS = "AUTOML_ASD_MAX_MEMBER_EPOCHS"


def semantic_errors(recipe: Recipe) -> list[str]:
    """Cross-field problems of a parsed recipe, each ``"json.path: message"`` (empty: none)."""
    return feature_semantic_errors(recipe.features)


def feature_semantic_errors(f: FeatureSpec, path: str = "features") -> list[str]:
    """Cross-field problems of a ``features`` section (the recipe parser's
    ``feature_errors`` adds them to its list; ``win_length <= n_fft`` and ``f_max > f_min``
    are checked there)."""
    errors: list[str] = []
    nyquist = f.sample_rate / 2
    if f.f_max is not None and f.f_max > nyquist:
        errors.append(f"{path}.f_max: {f.f_max:g} Hz is above the Nyquist frequency "
                      f"{nyquist:g} Hz of sample_rate {f.sample_rate}; use at most {nyquist:g} "
                      "or null")
    if f.f_min >= nyquist and (f.f_max is None or f.f_max > f.f_min):
        errors.append(f"{path}.f_min: {f.f_min:g} Hz must be below f_max "
                      f"{nyquist:g} Hz (sample_rate {f.sample_rate} has Nyquist "
                      f"{nyquist:g} Hz)")
    win = f.win_length if f.win_length is not None else f.n_fft
    if f.hop_length > win:
        errors.append(f"{path}.hop_length: {f.hop_length} exceeds the window "
                      f"{win} (win_length, or n_fft when null); frames would skip samples")
    if f.kind == "logmel" and f.n_mels > f.n_fft // 2 + 1:
        errors.append(f"{path}.n_mels: {f.n_mels} mel bands for only {f.n_fft // 2 + 1} "
                      f"FFT bins (n_fft {f.n_fft}) leaves empty filters; use n_mels <= "
                      f"{f.n_fft // 2 + 1} or a larger n_fft")
    elif f.kind == "logmel" and not errors and 0 <= f.f_min < _top(f) <= nyquist:
        empty = empty_mel_filters(f)  # needs a valid band (the parser reports the others)
        if empty:
            top = _top(f)
            errors.append(f"{path}.n_mels: {empty} of {f.n_mels} mel filters over "
                          f"{f.f_min:g}..{top:g} Hz hold no FFT bin (bins are "
                          f"{f.sample_rate / f.n_fft:g} Hz apart at n_fft {f.n_fft}); their "
                          "bands would be constant: widen f_min..f_max, lower n_mels or raise "
                          "n_fft")
    return errors


def _top(f: FeatureSpec) -> float:
    return float(f.f_max) if f.f_max is not None else f.sample_rate / 2


def _hz_to_mel(hz: float, scale: str) -> float:
    if scale == "htk":
        return 2595.0 * math.log10(1.0 + hz / 700.0)
    if hz < 1000.0:  # slaney: linear below 1 kHz, logarithmic above
        return 3.0 * hz / 200.0
    return 15.0 + math.log(hz / 1000.0) * 27.0 / math.log(6.4)


def _mel_to_hz(mel: float, scale: str) -> float:
    if scale == "htk":
        return 700.0 * (math.pow(10.0, mel / 2595.0) - 1.0)
    if mel < 15.0:
        return 200.0 * mel / 3.0
    return 1000.0 * math.exp((mel - 15.0) * math.log(6.4) / 27.0)


@functools.lru_cache(maxsize=256)
def empty_mel_filters(f: FeatureSpec) -> int:
    """How many of the ``n_mels`` triangular filters (torchaudio's ``melscale_fbanks`` layout:
    ``n_mels + 2`` points evenly spaced in mel between ``f_min`` and ``f_max``, the filter of
    point ``i`` rising from point ``i`` to ``i + 1`` and falling to ``i + 2``) have no FFT bin
    with a weight of at least 1 % of the filter's peak, i.e. are zero (or all but) everywhere.
    Cached per spec: every recipe parse asks (a search space's load probes each value, trial
    tables parse every trial), and the answer depends on the spec alone."""
    lo, hi = _hz_to_mel(f.f_min, f.mel_scale), _hz_to_mel(_top(f), f.mel_scale)
    pts = [_mel_to_hz(lo + (hi - lo) * k / (f.n_mels + 1), f.mel_scale)
           for k in range(f.n_mels + 2)]
    step = f.sample_rate / f.n_fft  # FFT bin k is at k * step Hz (k = 0 .. n_fft // 2)
    empty = 0
    for left, mid, right in zip(pts[:-2], pts[1:-1], pts[2:], strict=True):
        peak = 0.0
        for k in range(max(0, math.floor(left / step)),
                       min(f.n_fft // 2, math.ceil(right / step)) + 1):
            hz = k * step
            up = (hz - left) / (mid - left) if mid > left else 0.0
            down = (right - hz) / (right - mid) if right > mid else 0.0
            peak = max(peak, min(up, down))
        if peak < 0.01:
            empty += 1
    return empty


@dataclass(frozen=True)
class CostEstimate:
    """What a recipe costs on a data set (see the module docstring)."""

    cache_bytes_per_clip_second: float
    clip_seconds: float
    data_name: str
    member_epochs: int | None
    train_flops: float | None

    @property
    def cache_bytes(self) -> float:
        return self.cache_bytes_per_clip_second * self.clip_seconds

    def describe(self) -> str:
        text = (f"feature cache ~{_bytes(self.cache_bytes_per_clip_second)} per clip-second, "
                f"~{_bytes(self.cache_bytes)} for {self.data_name}")
        if self.member_epochs is not None:
            text += f"; training {self.member_epochs:,} member-epochs (ensemble.size x epochs)"
        if self.train_flops is not None:
            text += f", ~{self.train_flops:.2g} FLOPs"
        return text


def _bytes(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _ae_weights(params: dict[str, Any], n_bins: int) -> int:
    dims = ([int(params.get("n_frames", 5)) * n_bins]
            + [int(params.get("hidden", 128))] * int(params.get("n_layers", 4))
            + [int(params.get("bottleneck", 8))])
    enc = sum(a * b for a, b in zip(dims, dims[1:], strict=False))
    return 2 * enc


def estimate_cost(recipe: Recipe, *, clip_seconds: float | None = None,
                  train_clip_seconds: float | None = None,
                  data_name: str | None = None) -> CostEstimate:
    """Cost of ``recipe`` on ``clip_seconds`` of audio (default: the reference data set)."""
    f = recipe.features
    frames_per_s = f.sample_rate / f.hop_length
    per_s = frames_per_s * f.n_bins * 4
    if clip_seconds is None:
        clip_seconds, train_clip_seconds = REFERENCE_CLIP_SECONDS, REFERENCE_TRAIN_CLIP_SECONDS
        data_name = data_name or REFERENCE_NAME
    params = dict(recipe.detector.params)
    epochs = params.get("epochs")
    member_epochs = (recipe.ensemble.size * int(epochs)
                     if isinstance(epochs, int) and not isinstance(epochs, bool) else None)
    flops = None
    if recipe.detector.name == "dcase_ae" and member_epochs is not None:
        train_s = train_clip_seconds if train_clip_seconds is not None else clip_seconds
        flops = 6.0 * _ae_weights(params, f.n_bins) * frames_per_s * train_s * member_epochs
    return CostEstimate(per_s, clip_seconds, data_name or f"{clip_seconds:,.0f} clip-seconds",
                        member_epochs, flops)


def cost_limits(max_cache_gb: float | None = None,
                max_member_epochs: int | None = None,
                max_train_flops: float | None = None) -> tuple[float, int, float]:
    """Effective limits: the arguments, else the environment, else the defaults."""
    if max_cache_gb is None:
        max_cache_gb = _env_number(ENV_MAX_CACHE_GB, DEFAULT_MAX_CACHE_GB)
    if max_member_epochs is None:
        max_member_epochs = int(_env_number(ENV_MAX_MEMBER_EPOCHS, DEFAULT_MAX_MEMBER_EPOCHS))
    if max_train_flops is None:
        max_train_flops = _env_number(ENV_MAX_TRAIN_FLOPS, DEFAULT_MAX_TRAIN_FLOPS)
    return max_cache_gb, max_member_epochs, max_train_flops


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ResourceLimitError(f"${name}={raw!r}: not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ResourceLimitError(f"${name}={raw!r}: must be a positive number")
    return value


def check_cost(recipe: Recipe, estimate: CostEstimate, *, max_cache_gb: float | None = None,
               max_member_epochs: int | None = None, max_train_flops: float | None = None,
               source: str = "recipe") -> None:
    """Raise :class:`ResourceLimitError` when ``estimate`` exceeds a limit."""
    cache_gb, member_epochs, train_flops = cost_limits(max_cache_gb, max_member_epochs,
                                                       max_train_flops)
    problems = []
    if estimate.cache_bytes > cache_gb * 1e9:
        problems.append(f"features.hop_length: the feature cache would need "
                        f"~{_bytes(estimate.cache_bytes)} for {estimate.data_name} (limit "
                        f"{cache_gb:g} GB: --max-cache-gb or ${ENV_MAX_CACHE_GB}); raise "
                        "hop_length or lower n_mels/n_fft")
    if estimate.member_epochs is not None and estimate.member_epochs > member_epochs:
        problems.append(f"detector.params.epochs: ensemble.size x epochs = "
                        f"{estimate.member_epochs:,} member-epochs exceeds the limit "
                        f"{member_epochs:,} (--max-member-epochs or ${ENV_MAX_MEMBER_EPOCHS})")
    if estimate.train_flops is not None and estimate.train_flops > train_flops:
        problems.append(f"detector.params: training would take ~{estimate.train_flops:.2g} "
                        f"FLOPs on {estimate.data_name}, over the limit {train_flops:.2g} "
                        f"(--max-train-flops or ${ENV_MAX_TRAIN_FLOPS}); lower epochs, hidden, "
                        "n_layers, n_frames or ensemble.size")
    if problems:
        raise ResourceLimitError(f"{source}: refused, estimated cost too high: "
                                 + "; ".join(problems) + f" [estimate: {estimate.describe()}]")


def data_clip_seconds(clip_paths: Iterable[Path], train_paths: Iterable[Path] = ()
                      ) -> tuple[float, float]:
    """Approximate total and training clip-seconds of wav files from their sizes, scaled by
    the bytes per second of the first readable header (no samples decoded)."""
    paths = list(clip_paths)
    train = list(train_paths)
    rate = None
    for p in paths[:5]:
        try:
            info = wav_info(p)
            if info.frames > 0:
                rate = p.stat().st_size / info.duration
                break
        except (AudioError, OSError):
            continue
    if rate is None:
        return 0.0, 0.0

    def seconds(ps: list[Path]) -> float:
        total = 0
        for p in ps:
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total / rate

    return seconds(paths), seconds(train)


def check_cost_for_data(recipe: Recipe, root: Path, machine_types: Iterable[str] | None = None,
                        *, max_cache_gb: float | None = None,
                        max_member_epochs: int | None = None,
                        max_train_flops: float | None = None,
                        source: str = "recipe") -> CostEstimate:
    """:func:`check_cost` on the wav files of ``root`` (only ``machine_types`` if given);
    returns the estimate. A tree that cannot be read is left to the caller's scan."""
    try:
        dirs = find_machine_dirs(root)
    except DataError:
        dirs = {}
    wanted = set(machine_types) if machine_types else None
    clips: list[Path] = []
    train: list[Path] = []
    for mt, folder in sorted(dirs.items()):
        if wanted is not None and mt not in wanted:
            continue
        for sub in ("train", "test", "supplemental"):
            found = sorted((folder / sub).glob("*.wav")) + sorted((folder / sub).glob("*.WAV"))
            clips += found
            if sub == "train":
                train += found
    if not clips:
        estimate = estimate_cost(recipe)
    else:
        seconds, train_seconds = data_clip_seconds(clips, train)
        estimate = estimate_cost(recipe, clip_seconds=seconds, train_clip_seconds=train_seconds,
                                 data_name=f"{root} ({len(clips):,} clips, "
                                           f"~{seconds:,.0f} clip-seconds)")
    check_cost(recipe, estimate, max_cache_gb=max_cache_gb, max_train_flops=max_train_flops,
               max_member_epochs=max_member_epochs, source=source)
    return estimate
