"""``bench/frame_knn.py``: the per-section values it reads (the project's ``machine_metrics``)
by hand, and both frame-bank scorers on frames with a known shift (the one bank ignores
domains; the per-domain z-scores do not)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from automl_asd.evaluation.metrics import machine_metrics
from tests.fixtures.bench import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("frame_knn")


def test_official_values_follow_the_spec() -> None:
    y = np.array([0, 0, 0, 0, 1, 1])
    d = np.array(["source", "source", "target", "target", "source", "target"])
    s = np.array([0.1, 0.5, 0.9, 0.2, 0.6, 0.8])
    a_s, a_t, p = machine_metrics(y, d, s).official_values
    # source normals {0.1, 0.5} against every anomaly {0.6, 0.8}: all 4 pairs ordered
    assert a_s == 1.0
    # target normals {0.9, 0.2} against {0.6, 0.8}: pairs ordered (0.2<0.6, 0.2<0.8) = 2 of 4
    assert a_t == 0.5
    assert p == pytest.approx(roc_auc_score(y, s, max_fpr=0.1))


def _clips(rng: np.random.Generator, n: int, offset: np.ndarray) -> list[np.ndarray]:
    return [(rng.normal(0.0, 1.0, (40, 16)) + offset).astype(np.float32) for _ in range(n)]


def test_a_raw_bank_loses_the_target_domain_and_per_domain_z_scores_keep_it(
        bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    shift = np.zeros(16)
    shift[:4] = 3.0  # the target domain: four bands louder
    fault = np.zeros(16)
    fault[8:12] = 1.5  # the anomaly: four other bands louder
    train = _clips(rng, 60, 0.0) + _clips(rng, 10, shift)
    train_domains = np.array(["source"] * 60 + ["target"] * 10)
    test = (_clips(rng, 20, 0.0) + _clips(rng, 20, shift)
            + _clips(rng, 10, fault) + _clips(rng, 10, shift + fault))
    y = np.array([0] * 40 + [1] * 20)
    domains = np.array(["source"] * 20 + ["target"] * 20 + ["source"] * 10 + ["target"] * 10)
    scores = bench.score_type(train, train_domains, test, pca=8, bank=5000, n_cal=10, seed=0)
    one = machine_metrics(y, domains, scores["one bank"]).official_values
    per_domain = machine_metrics(y, domains, scores["per-domain log z"]).official_values
    assert one[0] > 0.95 and per_domain[0] > 0.95  # source normals vs every anomaly
    # Ten target clips make a sparse bank: with raw distances the target's normals sit as far
    # from it as the source's anomalies from theirs (the bench's AUC-t 0.35 on novel types);
    # z-scores against the target's own clips put them back.
    assert per_domain[1] > 0.95 and one[1] < 0.8


def test_frames_average_adjacent_bands(bench: ModuleType) -> None:
    m = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(bench.frames([m], 2)[0], [[0.5, 2.5, 4.5], [6.5, 8.5, 10.5]])
