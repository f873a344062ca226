"""What the detector library takes from a developer calling it directly (found by a library
probe, 2026-12-07): scoring no clips gives no scores in every family (``pooled_stats`` and
``hedge`` raised numpy's "need at least one array to stack", ``dcase_ae`` "no clips"), and the
registries' factories check parameters against the schema."""

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


def test_the_factories_check_parameters_against_the_schema() -> None:
    """Found by a library probe (2026-12-07): ``make_detector`` took ``{"context": "zzz"}`` and
    ``{"ridge": -5.0}`` (failing later in ``fit`` with "'<' not supported between instances of
    'int' and 'str'"); an unknown name did not list the valid ones; ``seed`` had no default."""
    from automl_asd.backends import make_backend
    from automl_asd.components.params import ParamError

    with pytest.raises(ParamError, match=r"frame_gaussian\.context: expected an integer, got str"):
        make_detector("frame_gaussian", {"context": "zzz"})
    with pytest.raises(ParamError, match=r"frame_gaussian\.ridge: .* below the minimum"):
        make_detector("frame_gaussian", {"ridge": -5.0})
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['n_centres'\] \(did you mean "
                                        r"'n_centers'\?\); valid: n_centers, k, metric"):
        make_backend("knn", {"n_centres": 4})
    assert make_backend("knn", {"k": 3}).k == 3  # seed defaults to 0
    assert make_detector("pooled_stats", {"backend": {"name": "knn", "params": {}}}).seed == 0


def test_an_unknown_name_lists_the_valid_ones_however_it_is_looked_up() -> None:
    """Found by a library probe (2026-12-07): ``REGISTRY["bogus"]`` was a bare KeyError('bogus')
    and the message of ``.get`` printed quoted."""
    from automl_asd.backends import BACKENDS
    from automl_asd.detectors import REGISTRY

    for lookup in (lambda: REGISTRY["bogus"], lambda: REGISTRY.get("bogus")):
        with pytest.raises(KeyError) as exc:
            lookup()
        assert str(exc.value) == ("unknown detector 'bogus'; valid detectors: "
                                  + ", ".join(REGISTRY.names()))
    with pytest.raises(KeyError, match="valid backends: .*knn"):
        BACKENDS["nope"]
