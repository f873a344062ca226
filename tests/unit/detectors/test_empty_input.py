"""Scoring no clips gives no scores in every family (found by a library probe, 2026-12-07:
``pooled_stats`` and ``hedge`` raised numpy's "need at least one array to stack", ``dcase_ae``
"no clips", while ``frame_gaussian`` and ``margin_cnn`` returned an empty array)."""

from __future__ import annotations

import numpy as np
import pytest

from automl_asd.detectors import TrainSet, make_detector

_SMALL = {"dcase_ae": {"epochs": 1, "hidden": 8, "bottleneck": 2, "n_layers": 1}}


def _train(n: int = 12) -> TrainSet:
    rng = np.random.default_rng(0)
    return TrainSet([rng.normal(size=(40, 16)).astype(np.float32) for _ in range(n)],
                    np.array(["source"] * (n - 2) + ["target"] * 2), np.array(["a"] * n),
                    np.array(["00"] * n), np.array(["fan"] * n))


@pytest.mark.parametrize("name", ["pooled_stats", "hedge", "frame_gaussian", "dcase_ae"])
def test_no_clips_score_as_an_empty_array(name: str) -> None:
    det = make_detector(name, dict(_SMALL.get(name, {})), 0).fit(_train())
    scores = det.score_samples([])
    assert scores.shape == (0,) and scores.dtype == np.float64
    rng = np.random.default_rng(1)
    one = det.score_samples([rng.normal(size=(40, 16)).astype(np.float32)])
    assert one.shape == (1,) and np.isfinite(one).all()
