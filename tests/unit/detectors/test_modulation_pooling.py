"""The ``modulation`` pooling: a band's level moving at a known rate peaks at that rate."""

from __future__ import annotations

import numpy as np
import pytest

from automl_asd.detectors.embedding import MOD_SEGMENT, modulation_spectrum, pool_features


def _modulated(rate_bins: int, n_frames: int = 128, n_bins: int = 16) -> np.ndarray:
    t = np.arange(n_frames)
    x = np.zeros((n_frames, n_bins))
    # bins 0..7 (band 0) move at `rate_bins` cycles per MOD_SEGMENT frames; band 1 is still
    x[:, :8] = 3.0 * np.sin(2 * np.pi * rate_bins * t / MOD_SEGMENT)[:, None]
    return x


@pytest.mark.parametrize("rate", [2, 5, 11])
def test_peak_at_the_modulation_rate_of_the_moving_band_only(rate: int) -> None:
    spec = modulation_spectrum(_modulated(rate)).reshape(2, MOD_SEGMENT // 2)
    assert int(np.argmax(spec[0])) + 1 == rate  # bins start at modulation bin 1
    assert spec[0].max() > spec[1].max() + 10.0  # the still band is at the floor log(1e-6)
    assert np.allclose(spec[1], np.log(1e-6))


def test_shape_short_clips_and_level_invariance() -> None:
    x = _modulated(4)
    pooled = pool_features([x, x + 20.0, x[:10]], "modulation")
    assert pooled.shape == (3, 2 * MOD_SEGMENT // 2)
    assert np.allclose(pooled[0], pooled[1], atol=1e-4)  # a constant level shift drops out
    assert np.isfinite(pooled[2]).all()  # a clip shorter than a segment is zero-padded
    single = pool_features([np.ones((5, 3))], "modulation")  # fewer bins than a band
    assert single.shape == (1, MOD_SEGMENT // 2)
