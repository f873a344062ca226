"""Contract tests over EVERY registered detector family and scoring backend.

A family/backend added to the registries is tested here for free. Keep its test parameters tiny
through ``TEST_PARAMS`` / ``BACKEND_TEST_PARAMS`` (or a ``test_params`` class attribute).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

import automl_asd.detectors  # noqa: F401  (loaded before backends: avoids an import cycle)
from automl_asd.backends import BACKENDS, Backend, make_backend
from automl_asd.detectors import REGISTRY, Detector, NotFittedError, TrainSet, make_detector
from automl_asd.recipe import validate_params

#: Tiny per-family parameters so the contract runs in seconds.
TEST_PARAMS: dict[str, dict[str, Any]] = {
    "dcase_ae": {"epochs": 6, "batch_size": 32},
    "pooled_stats": {},
}
BACKEND_TEST_PARAMS: dict[str, dict[str, Any]] = {"knn": {}, "gmm": {}}

N_BINS = 16
N_FRAMES = 24


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    """Tiny nets on a shared 2-core box run far faster on one thread (no spin-waiting)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _family_params(name: str) -> dict[str, Any]:
    cls = REGISTRY[name]
    if name in TEST_PARAMS:
        return dict(TEST_PARAMS[name])
    if cls.test_params:
        return dict(cls.test_params)
    return {"epochs": 2} if "epochs" in cls.params else {}


def _backend_params(name: str) -> dict[str, Any]:
    return dict(BACKEND_TEST_PARAMS.get(name, BACKENDS[name].test_params))


def _clip(rng: np.random.Generator, domain: str, anomaly: bool) -> NDArray[np.float32]:
    """Log-mel-like matrix: a fixed spectral profile (shifted for the target domain) + noise;
    anomalies add a loud narrow band, so every sensible detector must find them."""
    bands = np.arange(N_BINS)
    profile = 5.0 * np.cos(bands / 3.0)  # centred: the AE needs no long bias warm-up
    if domain == "target":
        profile = profile + 1.5 * np.sin(bands / 2.0)
    x = profile + rng.normal(0.0, 1.0, (N_FRAMES, N_BINS))
    if anomaly:
        x[:, 5:8] += 8.0
    return x.astype(np.float32)


def _train_set(seed: int = 0, n_source: int = 40, n_target: int = 5) -> TrainSet:
    rng = np.random.default_rng(seed)
    domains = ["source"] * n_source + ["target"] * n_target
    feats = [_clip(rng, d, False) for d in domains]
    n = len(domains)
    return TrainSet(
        features=feats,
        domains=np.asarray(domains),
        attributes=np.asarray(["noAttribute"] * n),
        sections=np.asarray(["00"] * n),
        machine_types=np.asarray(["toy"] * n),
        names=np.asarray([f"clip{i}.wav" for i in range(n)]),
    )


def _test_clips(seed: int = 1) -> tuple[list[NDArray[np.float32]], NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for domain in ("source", "target"):
        for anomaly in (False, True):
            for _ in range(8):
                feats.append(_clip(rng, domain, anomaly))
                labels.append(int(anomaly))
    return feats, np.asarray(labels)


_FITTED: dict[str, Detector] = {}


def _fitted(name: str) -> Detector:
    if name not in _FITTED:
        _FITTED[name] = make_detector(name, _family_params(name), seed=7).fit(_train_set())
    return _FITTED[name]


FAMILIES = sorted(REGISTRY)


def test_registry_has_the_core_families() -> None:
    assert {"dcase_ae", "pooled_stats"} <= set(REGISTRY)
    assert {"knn", "gmm"} <= set(BACKENDS)


@pytest.mark.parametrize("name", FAMILIES)
def test_schema_defaults_validate(name: str) -> None:
    cls = REGISTRY[name]
    resolved = validate_params(cls.params, {}, "detector.params", owner=name)
    assert set(resolved) == set(cls.params)
    for key, spec in cls.params.items():
        assert spec.type in {"int", "float", "bool", "str", "backend"}, (name, key)


@pytest.mark.parametrize("name", FAMILIES)
def test_cost_scale_is_positive_and_never_falls_with_the_dimension(name: str) -> None:
    # The search's cost estimate multiplies class constants by it (search.budget.cost_scale).
    cls = REGISTRY[name]
    scales = [cls.cost_scale({}, n_bins) for n_bins in (32, 64, 128, 513)]
    assert all(np.isfinite(s) and s > 0 for s in scales), (name, scales)
    assert scales == sorted(scales), (name, scales)


@pytest.mark.parametrize("name", FAMILIES)
def test_not_fitted_error(name: str) -> None:
    det = make_detector(name, _family_params(name), seed=0)
    feats, _ = _test_clips()
    with pytest.raises(NotFittedError):
        det.score_samples(feats)
    with pytest.raises(NotFittedError):
        det.get_state()


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_fit_score_shapes_and_auc_floor(name: str) -> None:
    det = _fitted(name)
    train = _train_set()
    feats, labels = _test_clips()
    scores = det.score_samples(feats)
    assert scores.shape == (len(feats),) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    own = det.self_scores(train)
    assert own.shape == (len(train),) and np.isfinite(own).all()
    auc = roc_auc_score(labels, scores)
    assert auc >= 0.9, f"{name}: AUC {auc:.3f} on obvious anomalies"


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_scores(name: str) -> None:
    feats, _ = _test_clips()
    first = _fitted(name).score_samples(feats)
    again = make_detector(name, _family_params(name), seed=7).fit(_train_set())
    np.testing.assert_array_equal(again.score_samples(feats), first)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_state_round_trip(name: str) -> None:
    det = _fitted(name)
    feats, _ = _test_clips()
    state = det.get_state()
    for key, value in state.items():
        assert isinstance(value, np.ndarray), key
        assert value.dtype.kind != "O", f"{name}: state {key!r} holds Python objects"
    clone = make_detector(name, _family_params(name), seed=7).set_state(state)
    np.testing.assert_array_equal(clone.score_samples(feats), det.score_samples(feats))


#: Hedges whose members carry their own per-domain normalisation (the path where a member's
#: score and nearest domain come from one pass), on top of each family's test parameters.
_ONE_PASS_CASES = [(name, None) for name in FAMILIES] + [
    ("hedge", {"views": "fine",
               "backends": "mahalanobis_logz+frame_gaussian_logz+modulation_logz"}),
    ("hedge", {"views": "fine+coarse", "backends": "knn+mahalanobis_logz"}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "params"), _ONE_PASS_CASES)
def test_score_with_domain_is_score_samples_and_nearest_domain(
        name: str, params: dict[str, Any] | None) -> None:
    """The one-pass hook returns exactly the two separate calls' arrays, for every family."""
    # the class itself: the second hedge mixes raw and normalised members in a combination
    # the schema does not offer (make_detector checks against it)
    det = (_fitted(name) if params is None
           else REGISTRY.get(name)(seed=7, **params).fit(_train_set()))
    feats, _ = _test_clips()
    scores, domains = det.score_with_domain(feats)
    np.testing.assert_array_equal(scores, det.score_samples(feats))
    expected = det.nearest_domain(feats)
    if expected is None:
        assert domains is None
    else:
        assert domains is not None
        np.testing.assert_array_equal(domains, expected)
        assert set(domains.tolist()) <= {"source", "target"}


# ------------------------------------------------------------------ backends
def _embeddings(seed: int) -> tuple[NDArray[np.float32], NDArray[np.str_]]:
    rng = np.random.default_rng(seed)
    # Offset from the origin so that cosine distances are meaningful too.
    src = rng.normal(0.0, 1.0, (60, 8)) + 4.0
    tgt = rng.normal(0.0, 1.0, (6, 8)) + 4.0 + np.array([3.0, 0, 0, 0, 0, 0, 0, 0])
    emb = np.concatenate([src, tgt]).astype(np.float32)
    return emb, np.asarray(["source"] * 60 + ["target"] * 6)


def _test_embeddings(seed: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for shift in (0.0, 3.0):
        for anomaly in (False, True):
            x = rng.normal(0.0, 1.0, (10, 8)) + 4.0
            x[:, 0] += shift
            if anomaly:
                x[:, 3] += 12.0
            rows.append(x)
            labels += [int(anomaly)] * 10
    return np.concatenate(rows).astype(np.float32), np.asarray(labels)


BACKEND_NAMES = sorted(BACKENDS)


def _backend(name: str, seed: int = 3) -> Backend:
    return make_backend(name, _backend_params(name), seed)


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_backend_contract(name: str) -> None:
    emb, doms = _embeddings(0)
    test, labels = _test_embeddings(1)
    fresh = _backend(name)
    with pytest.raises(NotFittedError):
        fresh.score(test)
    b = _backend(name).fit(emb, doms)
    scores = b.score(test)
    assert scores.shape == (len(test),) and np.isfinite(scores).all()
    assert roc_auc_score(labels, scores) >= 0.9
    np.testing.assert_array_equal(_backend(name).fit(emb, doms).score(test), scores)
    try:
        own = b.self_scores()
    except NotImplementedError:
        own = None
    if own is not None:
        assert own.shape == (len(emb),) and np.isfinite(own).all()
    state = b.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype.kind != "O" for v in state.values())
    clone = _backend(name).set_state(state)
    np.testing.assert_allclose(clone.score(test), scores, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_backend_plugs_into_pooled_stats(name: str) -> None:
    det = make_detector(
        "pooled_stats", {"backend": {"name": name, "params": _backend_params(name)}}, seed=1
    ).fit(_train_set())
    feats, labels = _test_clips()
    assert roc_auc_score(labels, det.score_samples(feats)) >= 0.9


# ------------------------------------------------------------------ family specifics
def test_knn_rule_centres_and_target_references() -> None:
    emb, doms = _embeddings(0)
    b = make_backend("knn", {"n_centers": 4, "k": 1, "metric": "euclidean"}, 0).fit(emb, doms)
    state = b.get_state()
    # min(4, 60) k-means centres of the source + each of the 6 target clips as a reference.
    assert state["references"].shape == (4 + 6, 8)
    assert list(state["reference_domains"]).count("target") == 6
    np.testing.assert_allclose(state["references"][4:], emb[60:].astype(np.float64))
    # A target training clip scores exactly 0 (its own reference), but its self-score is
    # out-of-fold, hence positive.
    np.testing.assert_allclose(b.score(emb[60:]), 0.0, atol=1e-6)
    assert (b.self_scores()[60:] > 0).all()
    few = make_backend("knn", {"n_centers": 16}, 0).fit(emb[:5], doms[:5])
    assert few.get_state()["references"].shape[0] == 5  # min(16, n_source)


def test_knn_k_mean_of_nearest() -> None:
    emb = np.array([[0.0], [1.0], [3.0]], np.float32)
    doms = np.array(["target"] * 3)
    b = make_backend("knn", {"k": 2, "metric": "euclidean"}, 0).fit(emb, doms)
    np.testing.assert_allclose(b.score(np.array([[0.5]], np.float32)), [0.5])
    np.testing.assert_allclose(b.score(np.array([[2.0]], np.float32)), [1.0])


def test_gmm_component_rule() -> None:
    emb, doms = _embeddings(0)
    b = make_backend("gmm", {"n_components": 8, "min_per_component": 20}, 0).fit(emb, doms)
    assert b.get_state()["weights_"].shape == (3,)  # min(8, 60 // 20)


def test_pool_features_shapes() -> None:
    from automl_asd.detectors.embedding import pool_features

    x = [np.arange(12, dtype=np.float32).reshape(4, 3)]
    assert pool_features(x, "mean").shape == (1, 3)
    assert pool_features(x, "mean_std_max").shape == (1, 9)
    out = pool_features(x, "mean_std_quantiles")
    assert out.shape == (1, 15)
    np.testing.assert_allclose(out[0, :3], [4.5, 5.5, 6.5])



def test_pool_features_frame_difference_statistics() -> None:
    from automl_asd.detectors.embedding import pool_features

    # Frame differences per band: [1, 1, 1] (std 0) and [0, 3, 0] (std sqrt(2)).
    x = [np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 3.0], [3.0, 3.0]], np.float32)]
    out = pool_features(x, "mean_std_dstd")
    assert out.shape == (1, 6)
    np.testing.assert_allclose(out[0, :2], [1.5, 1.5])
    np.testing.assert_allclose(out[0, 4:], [0.0, np.sqrt(2.0)], rtol=1e-6)
    single = pool_features([np.ones((1, 2), np.float32)], "detrended_mean_std_dstd")
    np.testing.assert_array_equal(single[0, 4:], [0.0, 0.0])


def test_detrended_pooling_drops_a_smooth_response_and_keeps_a_tone() -> None:
    """A microphone response (a broad bump across bins, the same in every frame) moves the
    plain mean by up to 5 dB but the detrended mean by < 10 % of that; a one-bin tone stays;
    std and frame-difference statistics do not move at all."""
    from automl_asd.detectors.embedding import pool_features, smooth_bins

    rng = np.random.default_rng(0)
    n_bins = 64
    base = rng.normal(0.0, 1.0, (200, n_bins))
    bins = np.arange(n_bins)
    mic = 5.0 * np.exp(-0.5 * ((bins - 30) / 12.0) ** 2)  # smooth: ~Q 1 peaking EQ
    shifted = base + mic
    plain = pool_features([base, shifted], "mean_std_dstd")
    flat = pool_features([base, shifted], "detrended_mean_std_dstd")
    assert np.abs(plain[1, :n_bins] - plain[0, :n_bins]).max() > 4.5
    assert np.abs(flat[1, :n_bins] - flat[0, :n_bins]).max() < 0.5
    np.testing.assert_allclose(flat[1, n_bins:], flat[0, n_bins:], atol=1e-5)
    tone = base.copy()
    tone[:, 40] += 6.0
    peaked = pool_features([base, tone], "detrended_mean_std_dstd")
    assert peaked[1, 40] - peaked[0, 40] > 4.0
    # smooth_bins keeps a constant and is the identity for sigma 0.
    np.testing.assert_allclose(smooth_bins(np.full(9, 2.0), 3.0), np.full(9, 2.0))
    v = rng.normal(size=9)
    np.testing.assert_array_equal(smooth_bins(v, 0.0), v)

def test_dcase_ae_architecture_matches_baseline() -> None:
    import torch

    from automl_asd.detectors.dcase_ae import _build_net

    net = _build_net(640, 128, 8, 4)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    dims = [(m.in_features, m.out_features) for m in linears]
    assert dims == [(640, 128), (128, 128), (128, 128), (128, 128), (128, 8),
                    (8, 128), (128, 128), (128, 128), (128, 128), (128, 640)]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 9 and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    assert isinstance(list(net.children())[-1], torch.nn.Linear)  # no BN/ReLU on the output


@pytest.mark.slow
def test_dcase_ae_mahalanobis_selects_domain() -> None:
    det = make_detector("dcase_ae", {**TEST_PARAMS["dcase_ae"], "score": "mahalanobis"},
                        seed=2).fit(_train_set())
    assert det.get_state()["inv_cov_source"].shape == (N_BINS, N_BINS)
    feats, labels = _test_clips()
    scores = det.score_samples(feats)
    assert roc_auc_score(labels, scores) >= 0.9
    domains = det.nearest_domain(feats)
    assert domains is not None
    # The rule is argmin(D_s, D_t); both domains are possible answers.
    assert domains.shape == (len(feats),) and set(domains.tolist()) <= {"source", "target"}


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA GPU")
def test_dcase_ae_on_cuda_matches_its_cpu_copy() -> None:
    det = make_detector("dcase_ae", {**TEST_PARAMS["dcase_ae"], "score": "mahalanobis"}, seed=3)
    det.set_device("cuda")
    det.fit(_train_set())
    feats, labels = _test_clips()
    gpu = det.score_samples(feats)
    assert roc_auc_score(labels, gpu) >= 0.9
    cpu = make_detector("dcase_ae", {**TEST_PARAMS["dcase_ae"], "score": "mahalanobis"}, seed=3)
    cpu.set_state(det.get_state())
    np.testing.assert_allclose(cpu.score_samples(feats), gpu, rtol=1e-3, atol=1e-6)
