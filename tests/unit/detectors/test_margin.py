"""The margin_cnn family: auxiliary labels, training on tiny data, determinism, state."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from automl_asd.detectors import TrainSet, make_detector
from automl_asd.detectors.margin import auxiliary_labels

N_BINS = 24
TINY = {"size": "tiny", "crop_frames": 16, "emb_dim": 16, "epochs": 4, "batch_size": 16,
        "n_subclusters": 2, "lr": 3e-3, "backend": {"name": "knn_smote", "params": {}}}


def _clip(rng: np.random.Generator, peak: int, n_frames: int = 40,
          anomaly: bool = False) -> NDArray[np.float32]:
    """dB spectrogram: a sloped floor plus a machine tone at ``peak`` (attribute-dependent)."""
    x = np.linspace(-50, -70, N_BINS)[None, :] + rng.normal(0, 2, (n_frames, N_BINS))
    x[:, peak] += 25
    if anomaly:  # an extra intermittent tone
        x[::3, (peak + 9) % N_BINS] += 20
    return x.astype(np.float32)


def _train_set(seed: int = 0, n_per_attr: int = 16, attributes: bool = True) -> TrainSet:
    rng = np.random.default_rng(seed)
    feats, doms, attrs = [], [], []
    for a, peak in enumerate((3, 8, 13)):
        for i in range(n_per_attr):
            target = a == 2  # the third attribute only exists in the target domain
            if target and i >= 4:
                break
            feats.append(_clip(rng, peak, n_frames=40 if i % 5 else 11))  # some short clips
            doms.append("target" if target else "source")
            attrs.append(f"peak_{peak}" if attributes else "noAttribute")
    n = len(feats)
    return TrainSet(features=feats, domains=np.array(doms), attributes=np.array(attrs),
                    sections=np.array(["00"] * n), machine_types=np.array(["fan"] * n))


def test_auxiliary_labels_rules() -> None:
    train = _train_set()
    labels, names = auxiliary_labels(train, "attribute_domain", 8, seed=0)
    assert len(names) == 3 and sorted(set(labels.tolist())) == [0, 1, 2]
    assert all(n.startswith("fan|00|") for n in names)
    labels, names = auxiliary_labels(train, "section_domain", 8, seed=0)
    assert names == ["fan|00|source", "fan|00|target"]
    hidden = _train_set(attributes=False, n_per_attr=40)
    labels, names = auxiliary_labels(hidden, "attribute_domain", 8, seed=0)
    # noAttribute: domain classes x k-means pseudo-classes, min(8, n_group // 20) per group
    n_src = int((hidden.domains == "source").sum())
    assert len([n for n in names if "|source|pc" in n]) == min(8, n_src // 20)
    assert len([n for n in names if "|target|" in n]) == 1
    # the pseudo-classes do not mix the two hidden source attributes (peaks 3 and 8)
    src = hidden.domains == "source"
    true = np.array([0] * 40 + [1] * 40)
    for c in np.unique(labels[src]):
        assert len(set(true[labels[src] == c].tolist())) == 1
    single = TrainSet(features=hidden.features[:30], domains=hidden.domains[:30],
                      attributes=hidden.attributes[:30], sections=hidden.sections[:30],
                      machine_types=hidden.machine_types[:30])
    _, names = auxiliary_labels(single, "section_domain", 0, seed=0)
    assert len(names) >= 2  # a single class falls back to pseudo-classes


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["subcluster_adacos", "arcface"])
def test_fit_detects_anomalies_and_is_deterministic(loss: str) -> None:
    train = _train_set()
    params = dict(TINY, loss=loss)
    det = make_detector("margin_cnn", params, seed=5).fit(train)
    rng = np.random.default_rng(9)
    normal = [_clip(rng, p) for p in (3, 8, 13) for _ in range(6)]
    anomal = [_clip(rng, p, anomaly=True) for p in (3, 8, 13) for _ in range(6)]
    scores = det.score_samples(normal + anomal)
    assert scores.shape == (36,)
    auc = roc_auc_score(np.r_[np.zeros(18), np.ones(18)], scores)
    assert auc > 0.9, auc
    again = make_detector("margin_cnn", params, seed=5).fit(train)
    np.testing.assert_array_equal(again.score_samples(normal[:4]), scores[:4])
    self_scores = det.self_scores(train)
    assert self_scores.shape == (len(train),) and np.all(np.isfinite(self_scores))
    emb = det.embed(normal[:3])  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert set(det.nearest_domain(normal).tolist()) <= {"source", "target"}  # type: ignore[attr-defined]


@pytest.mark.slow
def test_state_roundtrip_without_attributes_and_no_spectrum_branch() -> None:
    train = _train_set(attributes=False)
    params = dict(TINY, epochs=1, spectrum_branch=False, loss="adacos", mixup_prob=0.0,
                  backend={"name": "mahalanobis", "params": {}})
    det = make_detector("margin_cnn", params, seed=1).fit(train)
    feats = list(train.features[:5])
    restored = make_detector("margin_cnn", params, seed=1).set_state(det.get_state())
    np.testing.assert_allclose(restored.score_samples(feats), det.score_samples(feats),
                               rtol=1e-5)
    assert all(isinstance(v, np.ndarray) for v in det.get_state().values())


def test_unfitted_and_bad_input_errors() -> None:
    from automl_asd.detectors import NotFittedError

    det = make_detector("margin_cnn", TINY, seed=0)
    with pytest.raises(NotFittedError):
        det.score_samples([np.zeros((20, N_BINS), np.float32)])
    with pytest.raises(ValueError, match="at least 2"):
        det.fit(TrainSet(features=[np.zeros((20, N_BINS), np.float32)],
                         domains=np.array(["source"]), attributes=np.array(["a"]),
                         sections=np.array(["00"]), machine_types=np.array(["fan"])))
    with pytest.raises(TypeError, match="unknown"):
        make_detector("margin_cnn", {"depth": 3}, seed=0)
