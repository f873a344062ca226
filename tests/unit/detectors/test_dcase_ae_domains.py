"""``dcase_ae``: the nearest training domain when the training clips hold only one domain; a
loss that diverges; too few frame vectors to train on."""

from __future__ import annotations

import numpy as np
import pytest

from automl_asd.detectors import TrainSet, make_detector

_PARAMS = {"epochs": 1, "hidden": 8, "bottleneck": 2, "n_layers": 1}


def _train(domain: str, n: int = 4) -> TrainSet:
    rng = np.random.default_rng(0)
    return TrainSet([rng.normal(size=(40, 16)).astype(np.float32) for _ in range(n)],
                    np.array([domain] * n), np.array(["a"] * n), np.array(["00"] * n),
                    np.array(["fan"] * n))


def test_a_single_trained_domain_is_every_clip_s_nearest() -> None:
    rng = np.random.default_rng(1)
    test = [rng.normal(size=(40, 16)).astype(np.float32) for _ in range(3)]
    for domain in ("source", "target"):
        det = make_detector("dcase_ae", dict(_PARAMS), 0).fit(_train(domain))
        assert det.nearest_domain(test).tolist() == [domain] * 3
        scores, domains = det.score_with_domain(test)
        assert domains.tolist() == [domain] * 3
        np.testing.assert_array_equal(scores, det.score_samples(test))
        back = make_detector("dcase_ae", dict(_PARAMS), 0).set_state(det.get_state())
        assert back.nearest_domain(test).tolist() == [domain] * 3


def test_a_bundle_state_from_before_has_source_reads_as_source_trained() -> None:
    det = make_detector("dcase_ae", dict(_PARAMS), 0).fit(_train("source"))
    state = det.get_state()
    del state["has_source"]
    rng = np.random.default_rng(1)
    test = [rng.normal(size=(40, 16)).astype(np.float32) for _ in range(2)]
    back = make_detector("dcase_ae", dict(_PARAMS), 0).set_state(state)
    assert back.nearest_domain(test).tolist() == ["source", "source"]


def test_a_loss_that_is_not_finite_is_named() -> None:
    """A diverged network (NaN loss) is an error naming the loss and the epoch, not linalg's
    "ill-conditioned" failure in the covariance step."""
    train = _train("source")
    train.features[0][3, 3] = np.inf  # stands for a diverged training run
    with pytest.raises(FloatingPointError, match=r"loss became nan in epoch 1; lower lr"):
        make_detector("dcase_ae", dict(_PARAMS), 0).fit(train)


def test_too_few_frame_vectors_to_train_is_an_error() -> None:
    """One clip of 6 frames gives 2 vectors of 5, one of them held out: nothing to train on
    (the untrained network used to score the clips with a training loss of 0)."""
    clip = np.random.default_rng(0).normal(size=(6, 16)).astype(np.float32)
    train = TrainSet([clip], np.array(["source"]), np.array(["a"]), np.array(["00"]),
                     np.array(["fan"]))
    det = make_detector("dcase_ae", {**_PARAMS, "n_frames": 5, "val_split": 0.5}, 0)
    with pytest.raises(ValueError, match=r"2 frame vector\(s\) of 5 frames from 1 clip\(s\), "
                                         r"1 left for training"):
        det.fit(train)
