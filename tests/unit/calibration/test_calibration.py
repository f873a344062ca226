"""Score normalisation, ensemble combination and thresholds (automl_asd.calibration)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from automl_asd.calibration import (
    MIN_DOMAIN_CLIPS,
    DomainNormalizer,
    ScoreStats,
    combine_scores,
    decide,
    fit_threshold,
)


def test_gamma_threshold_recovers_the_true_quantile() -> None:
    rng = np.random.default_rng(0)
    scores = stats.gamma.rvs(3.0, loc=1.0, scale=2.0, size=4000, random_state=rng)
    true = stats.gamma.ppf(0.9, 3.0, loc=1.0, scale=2.0)
    assert fit_threshold(scores, "gamma", 0.9) == pytest.approx(true, rel=0.03)
    assert fit_threshold(scores, "quantile", 0.9) == pytest.approx(np.quantile(scores, 0.9))
    # Roughly 10 % of the training scores lie above a 0.9 threshold.
    thr = fit_threshold(scores, "gamma", 0.9)
    assert 0.07 < decide(scores, thr).mean() < 0.13


def test_gamma_threshold_handles_negative_z_scores() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 1.0, 500)
    thr = fit_threshold(z, "gamma", 0.9)
    assert np.isfinite(thr) and 0.8 < thr < 1.8


def test_threshold_fallbacks_and_errors() -> None:
    assert fit_threshold(np.full(10, 2.0), "gamma", 0.9) == 2.0  # no spread -> empirical
    assert fit_threshold(np.array([1.0, 2.0]), "gamma", 0.5) == 1.5  # too few to fit
    with pytest.raises(ValueError, match="no finite"):
        fit_threshold(np.array([np.nan]), "gamma", 0.9)
    with pytest.raises(ValueError, match="threshold.method 'otsu'"):
        fit_threshold(np.arange(10.0), "otsu", 0.9)


@pytest.mark.parametrize("seed", range(6))
def test_a_gamma_fit_the_training_scores_contradict_falls_back(seed: int) -> None:
    """Found 2026-12-06: raw self-scores of 990 tight source clips and 10 spread target clips
    (the DCASE shape) gave gamma fits with 0.5 % or 99 % of the training clips above a 0.9
    threshold; the empirical quantile is used instead."""
    rng = np.random.default_rng(seed)
    s = np.r_[rng.lognormal(0, 0.05, 990), 3 * rng.lognormal(0, 0.5, 10)]
    thr = fit_threshold(s, "gamma", 0.9)
    assert 0.05 <= decide(s, thr).mean() <= 0.2
    assert thr > np.median(s)


@pytest.mark.parametrize(("method", "value"), [("domain_zscore", -0.7),
                                               ("domain_log_zscore", 100.0),
                                               ("domain_log_zscore", 7.3),
                                               ("domain_log_zscore", -3.0)])
def test_identical_self_scores_normalise_to_zero_and_flag_nothing_equal(
        method: str, value: float) -> None:
    """Found 2026-12-06: np.mean of identical scores is off by rounding, the floored std
    turned that into a spread, and a test clip equal to every training clip was flagged."""
    doms = np.array(["source"] * 990 + ["target"] * 10)
    scores = np.full(1000, value)
    norm = DomainNormalizer.fit(method, scores, doms)
    train = norm.transform(scores, doms)
    assert np.all(train == 0.0)
    thr = fit_threshold(train, "gamma", 0.9)
    assert thr == 0.0
    test = norm.transform(np.array([value, value]), np.array(["source", "target"]))
    np.testing.assert_array_equal(decide(test, thr), [0, 0])


def test_decide_is_strictly_greater() -> None:
    np.testing.assert_array_equal(decide(np.array([0.5, 1.0, 1.5]), 1.0), [0, 0, 1])
    assert decide(np.array([2.0]), 1.0).dtype == np.int8


def test_domain_zscore_uses_nearest_domain_stats() -> None:
    self_scores = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    domains = np.array(["source"] * 3 + ["target"] * 3)
    norm = DomainNormalizer.fit("domain_zscore", self_scores, domains)
    src, tgt = ScoreStats.of(self_scores[:3]), ScoreStats.of(self_scores[3:])
    out = norm.transform(np.array([2.0, 20.0, 5.0]), np.array(["source", "target", "unknown"]))
    glob = ScoreStats.of(self_scores)
    np.testing.assert_allclose(out, [src.z(np.array([2.0]))[0], tgt.z(np.array([20.0]))[0],
                                     glob.z(np.array([5.0]))[0]])
    assert out[0] == pytest.approx(0.0) and out[1] == pytest.approx(0.0)
    # Without domain information every clip uses the global statistics.
    np.testing.assert_allclose(norm.transform(np.array([5.0]), None), glob.z(np.array([5.0])))


def test_small_domain_falls_back_to_global() -> None:
    self_scores = np.arange(12.0)
    domains = np.array(["source"] * 10 + ["target"] * 2)
    assert MIN_DOMAIN_CLIPS > 2
    norm = DomainNormalizer.fit("domain_zscore", self_scores, domains)
    assert set(norm.domain_stats) == {"source"}
    out = norm.transform(np.array([4.0]), np.array(["target"]))
    np.testing.assert_allclose(out, norm.global_stats.z(np.array([4.0])))


def test_none_normalisation_is_identity() -> None:
    norm = DomainNormalizer.fit("none", np.arange(5.0), np.array(["source"] * 5))
    np.testing.assert_array_equal(norm.transform(np.array([3.0, 7.0]), None), [3.0, 7.0])
    with pytest.raises(ValueError, match="normalization.method 'minmax'"):
        DomainNormalizer.fit("minmax", np.arange(5.0), np.array(["source"] * 5))


def test_combine_rules() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0])
    sa, sb = ScoreStats(2.0, 1.0), ScoreStats(20.0, 10.0)
    np.testing.assert_allclose(combine_scores([a, b], [sa, sb], "mean_z"), [-1.0, 0.5, 0.5])
    np.testing.assert_allclose(combine_scores([a, b], [sa, sb], "mean"), [5.5, 16.0, 11.5])
    np.testing.assert_allclose(combine_scores([a, b], [sa, sb], "max"), [10.0, 30.0, 20.0])
    np.testing.assert_array_equal(combine_scores([a], [sa], "mean_z"), a)  # one member: as is
    with pytest.raises(ValueError, match="ensemble.combine 'median'"):
        combine_scores([a, b], [sa, sb], "median")


def test_score_stats_floor() -> None:
    st = ScoreStats.of(np.full(5, 3.0))
    assert st.std > 0 and np.isfinite(st.z(np.array([4.0]))).all()


def test_self_scores_without_spread_are_scaled_by_their_size(
        caplog: pytest.LogCaptureFixture) -> None:
    """Found by probing (2026-12-06): one training clip per domain (mirrored cross-fit
    self-scores) or identical clips left a std floor of 1e-6 |mean|, and every test score came
    out at 1e6..1e38, all flagged. Without spread the scale is the scores' size (>= 1)."""
    from automl_asd.calibration import ScoreStats, spread_scale

    big = ScoreStats.of(np.array([250.0, 250.0]))
    assert (big.mean, big.std) == (250.0, 250.0)
    assert big.z(np.array([500.0]))[0] == pytest.approx(1.0)
    tiny = ScoreStats.of(np.array([3e-9, 3e-9, 3e-9]))
    assert tiny.std == 1.0 and tiny.z(np.array([5.0]))[0] == pytest.approx(5.0)
    assert "no spread" in caplog.text
    # a real spread is kept as it is, column by column
    np.testing.assert_array_equal(spread_scale(np.array([1.0, 40.0]), np.array([0.5, 0.0])),
                                  [0.5, 40.0])
    ok = ScoreStats.of(np.array([1.0, 2.0, 3.0]))
    assert ok.std == pytest.approx(np.std([1.0, 2.0, 3.0]))
