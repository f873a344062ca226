"""Supplemental clips: noise mixing in the power domain, clean clips as normal data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from automl_asd.data import Clip, Domain, Label, MachineData, Split
from automl_asd.supplemental import clean_as_normal, mix_noise, noise_clips


def _clip(name: str, split: Split, kind: str = "") -> Clip:
    return Clip(path=Path(f"/x/fan/{split.value}/{name}"), machine_type="fan", section="00",
                split=split, domain=Domain.SOURCE, label=Label.NORMAL, index=0,
                attributes=None, kind=kind)


def test_mix_noise_power_domain_value() -> None:
    clip = np.zeros((10, 4), np.float32)  # 0 dB = power 1 everywhere
    noise = np.full((3, 4), -20.0, np.float32)  # power 0.01: gain rescales it to the SNR
    (out,) = mix_noise([clip], [noise], prob=1.0, snr_db=(10.0, 10.0), seed=0)
    # P_mix = 1 + (1 / 0.01) / 10 * 0.01 = 1.1
    np.testing.assert_allclose(out, 10 * math.log10(1.1), rtol=1e-5)
    assert out.shape == (10, 4) and out.dtype == np.float32


def test_mix_noise_snr_controls_the_change() -> None:
    rng = np.random.default_rng(0)
    clip = rng.normal(-40, 5, (50, 8)).astype(np.float32)
    noise = rng.normal(-60, 5, (80, 8)).astype(np.float32)
    (loud,) = mix_noise([clip], [noise], 1.0, (0.0, 0.0), seed=1)
    (quiet,) = mix_noise([clip], [noise], 1.0, (30.0, 30.0), seed=1)
    assert np.all(loud >= clip - 1e-4) and np.all(quiet >= clip - 1e-4)  # power only adds
    assert np.abs(loud - clip).mean() > 10 * np.abs(quiet - clip).mean()
    # linear-power features: exact total power ratio
    p = 10 ** (clip / 10)
    pn = 10 ** (noise / 10)
    (lin,) = mix_noise([p], [pn], 1.0, (0.0, 0.0), seed=1, db=False)
    assert (lin - p).mean() == pytest.approx(p.mean(), rel=0.05)


def test_linear_magnitude_features_are_mixed_at_the_requested_snr() -> None:
    """Found 2026-12-06: magnitude features (power 1, no log) were mixed as if they were
    power, so a 10 dB request gave about 30 dB."""
    rng = np.random.default_rng(2)
    mag = rng.uniform(0.5, 2.0, (40, 6)).astype(np.float32)
    noise_mag = rng.uniform(0.1, 0.3, (40, 6)).astype(np.float32)
    for snr in (0.0, 10.0):
        (mixed,) = mix_noise([mag], [noise_mag], 1.0, (snr, snr), seed=3, db=False, power=1.0)
        clip_power = float((mag.astype(np.float64) ** 2).mean())
        added = float((mixed.astype(np.float64) ** 2).mean()) - clip_power
        assert 10 * math.log10(clip_power / added) == pytest.approx(snr, abs=0.01)
    # the same clip as power features (power 2) gives the same mixture, squared
    (as_power,) = mix_noise([mag ** 2], [noise_mag ** 2], 1.0, (10.0, 10.0), seed=3, db=False)
    (as_mag,) = mix_noise([mag], [noise_mag], 1.0, (10.0, 10.0), seed=3, db=False, power=1.0)
    np.testing.assert_allclose(as_mag.astype(np.float64) ** 2, as_power, rtol=1e-5)


def test_mix_noise_probability_seed_and_graceful_fallbacks() -> None:
    clips = [np.full((5, 2), float(i), np.float32) for i in range(400)]
    noise = [np.zeros((7, 2), np.float32)]
    out = mix_noise(clips, noise, 0.25, (0.0, 10.0), seed=3)
    changed = sum(not np.array_equal(a, b) for a, b in zip(clips, out, strict=True))
    assert 70 <= changed <= 130
    again = mix_noise(clips, noise, 0.25, (0.0, 10.0), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))
    assert mix_noise(clips, [], 0.5, (0.0, 10.0), seed=0) == clips  # no noise clips
    assert all(a is b for a, b in zip(mix_noise(clips, noise, 0.0, (0, 1), 0), clips,
                                      strict=True))
    with pytest.raises(ValueError, match="prob"):
        mix_noise(clips, noise, 1.5, (0.0, 1.0), seed=0)
    with pytest.raises(ValueError, match="n_bins"):
        mix_noise(clips, [np.zeros((3, 5), np.float32)], 1.0, (0.0, 1.0), seed=0)


def test_clean_and_noise_clips_from_machine_data() -> None:
    clips = (
        _clip("section_00_source_train_normal_0000_a_1.wav", Split.TRAIN),
        _clip("section_00_machine_0000.wav", Split.SUPPLEMENTAL, "machine"),
        _clip("section_00_noise_0000.wav", Split.SUPPLEMENTAL, "noise"),
        _clip("section_00_noise_0001.wav", Split.SUPPLEMENTAL, "noise"),
    )
    m = MachineData("fan", Path("/x/fan"), clips)
    assert [c.name for c in clean_as_normal(m)] == ["section_00_machine_0000.wav"]
    assert len(noise_clips(m)) == 2
    bare = MachineData("fan", Path("/x/fan"), clips[:1])
    assert clean_as_normal(bare) == () and noise_clips(bare) == ()
