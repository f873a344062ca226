"""Behaviour of the knn_smote, mahalanobis, local_density and fusion backends."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

import automl_asd.detectors  # noqa: F401  (import order: see note in the report)
from automl_asd.backends import BACKENDS, make_backend
from automl_asd.backends.knn_smote import cosine_knn, l2_normalize
from automl_asd.backends.mahalanobis import MAX_FOLDS

MINE = ("knn_smote", "mahalanobis", "local_density", "fusion")


def _unit(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _two_domains(
    seed: int = 0, n_src: int = 200, n_tgt: int = 10, dim: int = 8
) -> tuple[NDArray[np.float64], NDArray[np.str_], NDArray[np.float64], NDArray[np.float64]]:
    """Source cluster around e0 (tight), target cluster around e1 (wider)."""
    rng = np.random.default_rng(seed)
    e0, e1 = np.eye(dim)[0], np.eye(dim)[1]
    src = _unit(e0 + 0.05 * rng.normal(size=(n_src, dim)))
    tgt = _unit(e1 + 0.15 * rng.normal(size=(n_tgt, dim)))
    emb = np.concatenate([src, tgt])
    domains = np.array(["source"] * n_src + ["target"] * n_tgt)
    new_src = _unit(e0 + 0.05 * rng.normal(size=(50, dim)))
    new_tgt = _unit(e1 + 0.15 * rng.normal(size=(50, dim)))
    return emb, domains, new_src, new_tgt


def _outliers(seed: int = 1, dim: int = 8) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return _unit(np.eye(dim)[2] + 0.05 * rng.normal(size=(50, dim)))


def test_registered() -> None:
    for name in MINE:
        assert name in BACKENDS


@pytest.mark.parametrize("name", MINE)
def test_outliers_score_higher_than_normals_of_both_domains(name: str) -> None:
    emb, domains, new_src, new_tgt = _two_domains()
    b = make_backend(name, {}, seed=3).fit(emb.astype(np.float32), domains)
    normal = np.concatenate([b.score(new_src), b.score(new_tgt)])
    anomal = b.score(_outliers())
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomal))]
    assert roc_auc_score(y, np.r_[normal, anomal]) > 0.99


@pytest.mark.parametrize("name", MINE)
def test_self_scores_state_roundtrip_and_determinism(name: str) -> None:
    emb, domains, new_src, _ = _two_domains()
    b = make_backend(name, {}, seed=3).fit(emb.astype(np.float32), domains)
    self_scores = b.self_scores()
    assert self_scores.shape == (len(emb),) and np.all(np.isfinite(self_scores))
    again = make_backend(name, {}, seed=3).fit(emb.astype(np.float32), domains)
    np.testing.assert_array_equal(again.score(new_src), b.score(new_src))
    restored = make_backend(name, {}, seed=3).set_state(b.get_state())
    np.testing.assert_allclose(restored.score(new_src), b.score(new_src), rtol=1e-12)
    np.testing.assert_allclose(restored.self_scores(), self_scores, rtol=1e-12)


@pytest.mark.parametrize("name", ["knn_smote", "local_density"])
def test_target_clip_is_its_own_reference(name: str) -> None:
    emb, domains, _, _ = _two_domains()
    b = make_backend(name, {}, seed=0).fit(emb.astype(np.float32), domains)
    tgt = emb[domains == "target"]
    np.testing.assert_allclose(b.score(tgt), 0.0, atol=1e-9)
    # self-scores never match a clip with itself: strictly positive for target clips
    assert np.all(b.self_scores()[domains == "target"] > 1e-4)


@pytest.mark.parametrize("n_src", [10, 16, 300])
def test_knn_smote_self_scores_sit_where_new_normal_clips_score(n_src: int) -> None:
    """Found 2026-12-07: the source clips were scored against k-means centres made from
    themselves: with no more source clips than centres each clip was its own centre (self-score
    0, every one), and at 990 clips a quarter of new normal clips scored above the
    self-scores' 0.9 quantile. Cross-fitted, about a tenth do (knn: the same)."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n_src + 10, 32)).astype(np.float32)
    domains = np.array(["source"] * n_src + ["target"] * 10)
    b = make_backend("knn_smote", {}, seed=0).fit(emb, domains)
    own = b.self_scores()
    assert np.all(own > 1e-3)  # no clip matches itself
    new = b.score(rng.normal(size=(4000, 32)).astype(np.float32))
    above = float((new > np.quantile(own[domains == "source"], 0.9)).mean())
    assert 0.02 < above < 0.15, above  # in-sample: 0.25 at 990 clips, 1.0 at 10 and 16
    # a model saved before the self-scores were cross-fitted makes them again from its clips
    state = {k: v for k, v in b.get_state().items() if k != "self_scores"}
    old = make_backend("knn_smote", {}, seed=0).set_state(state)
    np.testing.assert_array_equal(old.self_scores(), own)


def test_knn_smote_bank_sizes_and_synthetic_points_between_targets() -> None:
    emb, domains, _, _ = _two_domains(n_src=400, n_tgt=10)
    b = make_backend("knn_smote", {"smote_ratio": 0.1, "n_centres": 16}, seed=0)
    b.fit(emb.astype(np.float32), domains)
    state = b.get_state()
    assert state["source_bank"].shape[0] == 16
    assert state["target_bank"].shape[0] == 40  # round(0.1 * 400)
    synth = state["target_bank"][10:]
    # every synthetic point lies on a segment between two target clips: close to the target
    # cluster (cosine to e1 high), far from the source
    assert np.all(synth[:, 1] > 0.7) and np.all(synth[:, 0] < 0.5)
    no_smote = make_backend("knn_smote", {"smote_ratio": 0.0, "n_centres": 0}, seed=0)
    no_smote.fit(emb.astype(np.float32), domains)
    assert no_smote.get_state()["target_bank"].shape[0] == 10
    assert no_smote.get_state()["source_bank"].shape[0] == 400


def test_knn_smote_without_target_clips() -> None:
    emb, domains, new_src, _ = _two_domains()
    src = emb[domains == "source"].astype(np.float32)
    b = make_backend("knn_smote", {}, seed=0).fit(src, np.array(["source"] * len(src)))
    assert np.all(np.isfinite(b.score(new_src))) and np.all(np.isfinite(b.self_scores()))


def test_mahalanobis_matches_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2)) * np.array([1.0, 3.0])
    b = make_backend("mahalanobis", {"covariance": "empirical", "ridge": 0.0}, seed=0)
    b.fit(x.astype(np.float32), np.array(["source"] * 500))
    mu = x.astype(np.float32).astype(np.float64).mean(axis=0)
    cov = np.cov(x.astype(np.float32).astype(np.float64), rowvar=False)
    q = np.array([[1.0, 2.0], [-3.0, 0.5]])
    d = q - mu
    expected = np.einsum("nd,de,ne->n", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(b.score(q.astype(np.float32)), expected, rtol=1e-6)


@pytest.mark.parametrize("params", [{}, {"covariance": "empirical", "target_covariance": "pooled"}])
def test_mahalanobis_without_spread_is_the_euclidean_distance(params: dict[str, str]) -> None:
    """Found by a review (2026-12-06): one training clip per domain left a zero covariance,
    whose ridge floor (1e-9) sent `hedge_pooled`'s scores to ~1e13. Without spread the
    distance is the squared Euclidean one."""
    emb = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]], dtype=np.float32)
    b = make_backend("mahalanobis", params, seed=0).fit(emb, np.array(["source", "target"]))
    q = np.array([[0.0, 1.0, 3.0], [3.0, 1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(b.score(q), [1.0, 4.0])


def test_mahalanobis_min_over_domains_and_crossfit_self_scores() -> None:
    emb, domains, new_src, new_tgt = _two_domains()
    b = make_backend("mahalanobis", {"target_covariance": "pooled"}, seed=0)
    b.fit(emb.astype(np.float32), domains)
    # a clip at the target mean is close to the target domain even though it is far from source
    t_mean = emb[domains == "target"].mean(axis=0, keepdims=True)
    assert b.score(t_mean.astype(np.float32))[0] < np.median(b.score(new_src)) * 2
    # cross-fitted self-scores are larger than in-sample scores on average (no self-matching)
    assert b.self_scores().mean() > b.score(emb.astype(np.float32)).mean()


def test_local_density_removes_domain_scale() -> None:
    """Plain kNN gives sparse target normals higher scores than dense source normals; the
    density-normalised score brings the two domains onto one scale (AUC near 0.5)."""
    emb, domains, new_src, new_tgt = _two_domains(n_src=200, n_tgt=30)
    y = np.r_[np.zeros(50), np.ones(50)]
    d_src, _ = cosine_knn(new_src, emb, 1)
    d_tgt, _ = cosine_knn(new_tgt, emb, 1)
    plain_auc = roc_auc_score(y, np.r_[d_src[:, 0], d_tgt[:, 0]])
    b = make_backend("local_density", {"k": 3}, seed=0).fit(emb.astype(np.float32), domains)
    ld_auc = roc_auc_score(y, np.r_[b.score(new_src), b.score(new_tgt)])
    assert plain_auc > 0.9
    assert abs(ld_auc - 0.5) < 0.2


def test_fusion_z_normalises_members_by_self_scores() -> None:
    emb, domains, new_src, _ = _two_domains()
    b = make_backend("fusion", {"members": "knn_smote+mahalanobis", "combine": "mean"}, seed=0)
    b.fit(emb.astype(np.float32), domains)
    # with combine=mean, the combined self-scores have mean exactly 0 (each member z-scored)
    assert abs(b.self_scores().mean()) < 1e-9
    m0 = make_backend("knn_smote", {}, seed=0).fit(emb.astype(np.float32), domains)
    m1 = make_backend("mahalanobis", {}, seed=7919).fit(emb.astype(np.float32), domains)
    z0 = (m0.score(new_src) - m0.self_scores().mean()) / m0.self_scores().std()
    z1 = (m1.score(new_src) - m1.self_scores().mean()) / m1.self_scores().std()
    np.testing.assert_allclose(b.score(new_src), (z0 + z1) / 2, rtol=1e-9, atol=1e-12)
    low = make_backend("fusion", {"members": "knn_smote+mahalanobis", "combine": "min"}, seed=0)
    low.fit(emb.astype(np.float32), domains)
    np.testing.assert_allclose(low.score(new_src), np.minimum(z0, z1), rtol=1e-9, atol=1e-12)


def test_cosine_knn_leave_one_out() -> None:
    x = l2_normalize(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    d, idx = cosine_knn(x, x, 1, exclude=np.arange(3, dtype=np.int64))
    assert idx[:, 0].tolist() == [1, 0, 1]
    assert d[0, 0] == pytest.approx(1 - x[0] @ x[1])


@pytest.mark.parametrize("target_cov", ["own", "source", "pooled"])
def test_mahalanobis_self_scores_equal_naive_refits(target_cov: str) -> None:
    emb, domains, _, _ = _two_domains(n_src=40, n_tgt=6, dim=4)
    x = emb.astype(np.float32)
    params = {"target_covariance": target_cov}
    b = make_backend("mahalanobis", params, seed=0).fit(x, domains)
    got = b.self_scores()
    src = np.flatnonzero(domains == "source")
    for i in list(np.flatnonzero(domains == "target")) + [int(src[0]), int(src[7])]:
        if domains[i] == "target":
            held = np.array([i])
        else:  # MAX_FOLDS (20) folds in a fixed order over the 40 source clips
            k = MAX_FOLDS
            held = src[np.arange(len(src)) % k == np.flatnonzero(src == i)[0] % k]
            assert len(held) == 2
        keep = np.ones(len(x), dtype=bool)
        keep[held] = False
        naive = make_backend("mahalanobis", params, seed=0).fit(x[keep], domains[keep])
        assert got[i] == pytest.approx(naive.score(x[i : i + 1])[0], rel=1e-6)


def test_mahalanobis_self_scores_sit_where_new_normal_clips_score() -> None:
    # The self-scores set each domain's normaliser, so they must look like the scores of new
    # normal clips under the full fit. In 40 dimensions from 100 clips a covariance fitted
    # on 80 % of them (5 folds) inflates held-out distances by ~20 % (about 0.2 in log
    # distance); MAX_FOLDS folds (95 % of the clips) leave a few per cent.
    rng = np.random.default_rng(0)
    dim, n = 40, 100
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    train = (rng.normal(size=(n, dim)) @ mix).astype(np.float32)
    new = (rng.normal(size=(4000, dim)) @ mix).astype(np.float32)
    domains = np.array(["source"] * n)
    b = make_backend("mahalanobis", {"covariance": "empirical", "ridge": 1e-6},
                     seed=0).fit(train, domains)
    gap = float(np.log(b.self_scores()).mean() - np.log(b.score(new)).mean())
    assert abs(gap) < 0.08, gap


# -------------------------------------------------------------- tiny training sets
def test_fold_ids_never_leave_a_fold_training_on_nothing() -> None:
    from automl_asd.backends.knn import fold_ids

    one_each = np.array(["source", "target"])
    folds = fold_ids(one_each, 2, 0)
    assert sorted(folds.tolist()) == [0, 1]
    # the usual case is untouched: each domain dealt round-robin over the folds
    doms = np.array(["source"] * 7 + ["target"] * 3)
    folds = fold_ids(doms, 5, 3)
    assert sorted(folds[:7].tolist()) == [0, 0, 1, 1, 2, 3, 4]
    assert sorted(folds[7:].tolist()) == [0, 1, 2]


@pytest.mark.parametrize("name", ["knn", "fusion", "gmm", "mahalanobis", "local_density",
                                  "knn_smote"])
def test_one_source_and_one_target_clip(name: str) -> None:
    emb = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    doms = np.array(["source", "target"])
    b = make_backend(name, {}, 0).fit(emb, doms)
    own = b.self_scores()
    assert own.shape == (2,) and np.all(np.isfinite(own))
    far = b.score(np.array([[9.0, 9.0, 9.0]], np.float32))
    assert np.isfinite(far).all()


def test_gmm_on_two_and_three_clips_and_refusing_one() -> None:
    for emb, doms in ((np.eye(3, dtype=np.float32)[:2], np.array(["source", "source"])),
                      (np.eye(3, dtype=np.float32), np.array(["source", "source", "target"]))):
        b = make_backend("gmm", {}, 0).fit(emb, doms)
        assert np.all(np.isfinite(b.self_scores()))
    with pytest.raises(ValueError, match="gmm: needs at least 2 training embeddings, got 1"):
        make_backend("gmm", {}, 0).fit(np.eye(3, dtype=np.float32)[:1], np.array(["source"]))


def test_knn_centres_of_copies_are_the_distinct_points() -> None:
    """Found by probing (2026-12-06): identical training clips made k-means ask for 16 centres
    of one point (sklearn ConvergenceWarnings on stderr, one per fold)."""
    import warnings

    emb = np.repeat(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], np.float32), 20, axis=0)
    doms = np.array(["source"] * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = make_backend("knn", {"n_centers": 16}, 0).fit(emb, doms)
        assert np.allclose(b.self_scores(), 0.0)


@pytest.mark.parametrize("covariance", ["ledoit_wolf", "empirical"])
def test_mahalanobis_pooled_target_folds_reuse_the_base_precision_bit_for_bit(
        covariance: str) -> None:
    # A fold holding out target clips only keeps every source clip: self_scores reuses the
    # full fit's source precision instead of inverting the same covariance again; the
    # scores must be those of a refit from scratch, bit for bit.
    emb, domains, _, _ = _two_domains(n_src=30, n_tgt=5, dim=6)
    x = emb.astype(np.float32)
    params = {"covariance": covariance, "target_covariance": "pooled", "ridge": 0.01}
    got = make_backend("mahalanobis", params, seed=0).fit(x, domains).self_scores()
    for i in np.flatnonzero(domains == "target"):
        keep = np.ones(len(x), dtype=bool)
        keep[i] = False
        naive = make_backend("mahalanobis", params, seed=0).fit(x[keep], domains[keep])
        assert got[i] == naive.score(x[i : i + 1])[0]


def test_mahalanobis_source_rule_inverts_one_covariance_for_both_domains() -> None:
    emb, domains, _, _ = _two_domains(n_src=30, n_tgt=5, dim=6)
    b = make_backend("mahalanobis", {"target_covariance": "source"}, seed=0).fit(emb, domains)
    np.testing.assert_array_equal(b.precisions_[0], b.precisions_[1])


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_backend_refuses_unknown_domains_and_non_finite_rows(name: str) -> None:
    """Found 2026-12-07: `mahalanobis` left rows of an unknown domain out of its fit and gave
    them uninitialised memory as self-scores ("Source" fitted on the target clips alone); `knn`
    counted them as source; a NaN training row gave NaN scores to every clip. Now each is a
    ValueError naming it."""
    emb, domains, new_src, _ = _two_domains()
    emb32 = emb.astype(np.float32)
    for wrong in ("Source", "unknown"):
        bad = domains.copy().astype(object)
        bad[:5] = wrong
        with pytest.raises(ValueError,
                           match=f"domains must be 'source' or 'target', got '{wrong}'"):
            make_backend(name, {}, seed=0).fit(emb32, bad)
    with pytest.raises(ValueError, match="3 domain\\(s\\) for 210 training embeddings"):
        make_backend(name, {}, seed=0).fit(emb32, domains[:3])
    holed = emb32.copy()
    holed[[4, 9], 2] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"2 of 210 training embeddings hold NaN or inf values "
                                         r"\(row\(s\) 4, 9\)"):
        make_backend(name, {}, seed=0).fit(holed, domains)
    fitted = make_backend(name, {}, seed=0).fit(emb32, domains)
    query = new_src.astype(np.float32)
    clean = fitted.score(query)
    query[7, 0] = np.nan  # that row alone scores NaN (the pipeline names its clip)
    got = fitted.score(query)
    assert np.isnan(got[7]) and np.array_equal(np.delete(got, 7), np.delete(clean, 7))
    with pytest.raises(ValueError, match="must be a 2-D"):
        fitted.score(query[0])
    assert np.all(np.isfinite(fitted.score(new_src.astype(np.float32))))


@pytest.mark.parametrize("name", sorted(BACKENDS.names()))
def test_embeddings_of_another_width_are_refused_naming_both_widths(name: str) -> None:
    """Found by a library probe (2026-12-07): scoring embeddings of another width than the fit
    failed in numpy ("matmul: Input operand 1 has a mismatch in its core dimension 0", or a
    broadcast error), naming neither the backend nor the widths; after a state round trip
    too."""
    emb, domains, new_src, _ = _two_domains()
    b = make_backend(name, {}, seed=3).fit(emb.astype(np.float32), domains)
    restored = make_backend(name, {}, seed=3).set_state(b.get_state())
    for backend in (b, restored):
        assert backend.n_features_in_ == 8
        with pytest.raises(ValueError, match=f"backend {name}: embeddings to score have 7 "
                                             "dimensions; it was fitted on 8"):
            backend.score(new_src[:, :7])
        assert backend.score(new_src).shape == (50,)
