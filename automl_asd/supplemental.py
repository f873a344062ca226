"""Use of the 2025 supplemental clips: noise-only clips as augmentation, clean clips as normal data.

Both uses degrade gracefully: a machine type without a ``supplemental`` folder (or without clips
of the needed kind) simply trains on its train clips, with an info log line.

Noise mixing works on feature matrices, not waveforms, so features are extracted (and cached)
once. For dB features (``10*log10(power)``; the baseline's ``20/power*log10(|X|**power)`` is the
same thing) the mixture is approximated in the power domain::

    P_mix = P_clip + g * P_noise,   g = (mean P_clip / mean P_noise) / 10**(snr_db / 10)

i.e. the cross term ``2 Re(X N*)`` of the true mixture spectrum is dropped. Its expectation is
zero for independent signals and, summed over the many STFT bins inside a mel band, it is small,
so the approximation is close for log-mel and reasonable for linear STFT bins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from automl_asd.data import Clip, MachineData

__all__ = ["mix_noise", "clean_as_normal", "noise_clips"]

logger = logging.getLogger(__name__)

_TINY = 1e-12


def clean_as_normal(machine: MachineData) -> tuple[Clip, ...]:
    """Supplemental clean-machine clips (``kind == "machine"``) to add as normal training data.

    They are source-domain recordings of the same machine type. Returns ``()`` (and logs) when
    the machine type has no supplemental clips of that kind.
    """
    clips = tuple(c for c in machine.supplemental if c.kind == "machine")
    if not clips:
        logger.info("%s: no clean supplemental clips; training on train clips only",
                    machine.machine_type)
    return clips


def noise_clips(machine: MachineData) -> tuple[Clip, ...]:
    """Supplemental noise-only clips (``kind == "noise"``); ``()`` (and a log line) if none."""
    clips = tuple(c for c in machine.supplemental if c.kind == "noise")
    if not clips:
        logger.info("%s: no noise supplemental clips; noise mixing is skipped",
                    machine.machine_type)
    return clips


def _fit_length(noise: NDArray[np.float64], n_frames: int, rng: np.random.Generator
                ) -> NDArray[np.float64]:
    """Tile the noise to at least ``n_frames`` frames, then take a random window."""
    reps = -(-n_frames // noise.shape[0])
    tiled = np.tile(noise, (reps, 1)) if reps > 1 else noise
    start = int(rng.integers(0, tiled.shape[0] - n_frames + 1))
    return tiled[start : start + n_frames]


def mix_noise(
    features: Sequence[NDArray[np.float32]],
    noise_features: Sequence[NDArray[np.float32]],
    prob: float,
    snr_db: tuple[float, float] | Sequence[float],
    seed: int,
    *,
    db: bool = True,
    power: float = 2.0,
) -> list[NDArray[np.float32]]:
    """Mix random noise clips into training clips at a random SNR (feature/power domain).

    Args:
        features: per-clip ``(n_frames_i, n_bins)`` matrices of the training clips.
        noise_features: ``(m_j, n_bins)`` matrices of noise-only clips (may be empty).
        prob: probability that a clip is mixed (each clip independently).
        snr_db: ``(low, high)``: the SNR of a mixed clip is uniform in this range (dB, clip
            power over scaled noise power, both averaged over the whole matrix).
        seed: seed of the draws (clip selection, noise clip, window, SNR).
        db: features are dB (``10*log10(power)``); ``False`` for linear features.
        power: the exponent of linear features (``|X| ** power``: 2 = power, 1 = magnitude),
            turned into power for mixing and back; unused for dB features.

    Returns:
        A new list, same order and shapes: mixed copies for the selected clips and the input
        arrays for the rest. With no noise clips or ``prob == 0`` the input is returned as is.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"mix_noise: prob must be in [0, 1], got {prob}")
    lo, hi = (float(v) for v in snr_db)
    if lo > hi:
        raise ValueError(f"mix_noise: snr_db must be (low, high) with low <= high, got {snr_db}")
    if prob == 0.0 or len(noise_features) == 0:
        return list(features)
    n_bins = {np.asarray(f).shape[1] for f in features} | {
        np.asarray(f).shape[1] for f in noise_features}
    if len(n_bins) > 1:
        raise ValueError(f"mix_noise: clips and noise clips differ in n_bins: {sorted(n_bins)}")
    rng = np.random.default_rng(seed)
    out: list[NDArray[np.float32]] = []
    for feat in features:
        # Draw everything for every clip so the selection of one clip does not shift the others.
        use = rng.random() < prob
        j = int(rng.integers(0, len(noise_features)))
        snr = rng.uniform(lo, hi)
        window_seed = int(rng.integers(0, 2**31))
        if not use:
            out.append(feat)
            continue
        x = np.asarray(feat, dtype=np.float64)
        n = _fit_length(np.asarray(noise_features[j], dtype=np.float64), x.shape[0],
                        np.random.default_rng(window_seed))
        to_power = 2.0 / float(power)
        p_x = 10.0 ** (x / 10.0) if db else np.maximum(x, 0.0) ** to_power
        p_n = 10.0 ** (n / 10.0) if db else np.maximum(n, 0.0) ** to_power
        gain = (p_x.mean() / max(p_n.mean(), _TINY)) / 10.0 ** (snr / 10.0)
        p_mix = p_x + gain * p_n
        mixed = (10.0 * np.log10(np.maximum(p_mix, _TINY)) if db
                 else p_mix ** (1.0 / to_power))
        out.append(mixed.astype(np.float32))
    return out
