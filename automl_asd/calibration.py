"""Score normalisation, ensemble combination and decision thresholds.

Everything here is fitted on *training self-scores* only (scores of the training clips that
the detector did not fit on themselves where the family supports it), never on test data.

Normalisation ``domain_zscore`` (fixed rule):

* statistics: mean/std of the train self-scores of each domain's training clips (by their
  known domain), and of all training clips ("global");
* each test clip is assigned its *nearest domain* by the detector's ``nearest_domain``
  method when the family has one (embedding families: the domain of the nearest training
  embedding; ``dcase_ae``: the domain with the smaller Mahalanobis distance); families without
  it, and domains with fewer than :data:`MIN_DOMAIN_CLIPS` training clips, use the global
  statistics;
* ``z = (score - mean_d) / max(std_d, eps)``; training clips are normalised by their own domain.

Normalisation ``domain_log_zscore``: the same rule on ``log(score)``. Distances of normal clips
are right-skewed and their spread grows with their level (the ~10 target clips give a sparse,
wide reference), so z-scores of log-distances put both domains on one scale better than plain
z-scores. The rule is meant for positive scores (distances); for a detector whose self-scores
are not all positive (e.g. a GMM's negative log-likelihood, a fusion of z-scores) every score
is first shifted by the fixed ``shift = std - min`` of the self-scores (the smallest training
score then maps to ``log(std)``). A test score below the smallest (shifted) training score is
clamped to it, so an exact match cannot give ``-inf``.

Thresholds: ``gamma`` fits ``scipy.stats.gamma`` (shape, loc, scale) to the (normalised) train
self-scores and takes ``ppf(quantile)`` (the baseline's rule with quantile 0.9); ``quantile`` is
the empirical quantile. A clip is anomalous when its score is strictly above the threshold.

State: :class:`ScoreStats` and :class:`DomainNormalizer` give their fitted values as plain
float64 arrays (``get_state``) and are rebuilt from them (``from_state``, which checks them:
they are frozen values, so the rebuild returns a new object); the model bundle stores exactly
these arrays (:mod:`automl_asd.bundle.state`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MIN_DOMAIN_CLIPS",
    "NORMALIZATION_METHODS",
    "ScoreStats",
    "DomainNormalizer",
    "combine_scores",
    "fit_threshold",
    "decide",
]

logger = logging.getLogger(__name__)

#: A domain needs at least this many training clips for its own z-score statistics.
MIN_DOMAIN_CLIPS = 3
_EPS = 1e-12
#: Valid ``normalization.method`` values.
NORMALIZATION_METHODS = ("none", "domain_zscore", "domain_log_zscore")


def spread_scale(mean: NDArray[np.float64], std: NDArray[np.float64]) -> NDArray[np.float64]:
    """The scale to z-score by, per column: ``std``, or where it has no spread (``std <=
    1e-6 |mean|``: identical training clips, one clip per domain, whose cross-fit self-scores
    mirror each other) the scores' own size ``max(|mean|, 1)``, so a test score becomes its
    (relative, for large scores) distance from the training scores instead of a number near
    1e30 (self-scores near 0, e.g. a kNN distance between copies, are not divided by their
    size: that would blow them up the same way)."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    flat = std <= np.maximum(1e-6 * np.abs(mean), _EPS)
    if np.any(flat):
        logger.warning("training self-scores with no spread (identical clips, or too few per "
                       "domain): scaled by their size instead of their spread; the decisions "
                       "are unreliable")
    size = np.maximum(np.abs(mean), 1.0)
    return np.asarray(np.where(flat, size, std), dtype=np.float64)


@dataclass(frozen=True)
class ScoreStats:
    """Mean and standard deviation (floored) of a set of scores."""

    mean: float
    std: float

    @classmethod
    def of(cls, scores: NDArray[np.float64]) -> ScoreStats:
        s = np.asarray(scores, dtype=np.float64)
        if s.size == 0:
            raise ValueError("ScoreStats.of: no scores")
        # identical scores: their own value as the mean (np.mean can be off by rounding, and
        # the floored std would then turn that rounding into a spread of normalised scores)
        mean = float(s[0]) if float(s.min()) == float(s.max()) else float(s.mean())
        return cls(mean, float(spread_scale(np.asarray(mean), np.asarray(s.std()))))

    def z(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        return (np.asarray(scores, dtype=np.float64) - self.mean) / self.std

    def get_state(self) -> NDArray[np.float64]:
        """``[mean, std]`` as a float64 array of shape ``(2,)``."""
        return np.asarray([self.mean, self.std], np.float64)

    @classmethod
    def from_state(cls, state: NDArray[Any], what: str = "score statistics") -> ScoreStats:
        """Rebuild from :meth:`get_state`; ``ValueError`` naming ``what`` for a wrong shape or a
        std that is not positive (it would give infinite scores)."""
        a = np.asarray(state, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"expected (mean, std) of shape (2,), got {a.shape}")
        if not a[1] > 0:
            raise ValueError(f"{what} std {float(a[1])!r} is not positive (zero variance would "
                             "give infinite scores)")
        return cls(float(a[0]), float(a[1]))


@dataclass(frozen=True)
class DomainNormalizer:
    """Score normaliser fitted on train self-scores; ``method`` is one of
    :data:`NORMALIZATION_METHODS` (see module docstring)."""

    method: str
    global_stats: ScoreStats
    domain_stats: dict[str, ScoreStats]
    #: ``domain_log_zscore`` only: scores are clamped to this positive floor before the log.
    log_floor: float = 0.0
    #: ``domain_log_zscore`` only: added to every score before the clamp (0 for distances).
    log_shift: float = 0.0

    @classmethod
    def fit(
        cls, method: str, self_scores: NDArray[np.float64], domains: NDArray[np.str_]
    ) -> DomainNormalizer:
        if method not in NORMALIZATION_METHODS:
            raise ValueError(
                f"normalization.method {method!r}: must be one of "
                f"{', '.join(NORMALIZATION_METHODS)}"
            )
        scores = np.asarray(self_scores, dtype=np.float64)
        floor = shift = 0.0
        if method == "domain_log_zscore":
            if not np.all(np.isfinite(scores)) or scores.size == 0:
                raise ValueError("domain_log_zscore: self-scores must be finite and non-empty")
            if float(scores.min()) <= 0.0:
                shift = max(float(scores.std()), _EPS) - float(scores.min())
            scores = scores + shift
            floor = float(scores.min())
            scores = np.log(scores)
        doms = np.asarray(domains).astype(str)
        per_domain = {
            d: ScoreStats.of(scores[doms == d])
            for d in ("source", "target")
            if int((doms == d).sum()) >= MIN_DOMAIN_CLIPS
        }
        return cls(method, ScoreStats.of(scores), per_domain, floor, shift)

    def get_state(self) -> dict[str, NDArray[np.float64]]:
        """Fitted values as plain arrays: ``"global"`` and one key per domain with statistics
        (``ScoreStats.get_state``), plus ``"log_floor"`` = ``[log_floor, log_shift]`` for
        ``domain_log_zscore``. ``method`` is not part of the state (it comes from the recipe)."""
        state = {"global": self.global_stats.get_state()}
        for d, st in sorted(self.domain_stats.items()):
            state[d] = st.get_state()
        if self.method == "domain_log_zscore":
            state["log_floor"] = np.asarray([self.log_floor, self.log_shift], np.float64)
        return state

    @classmethod
    def from_state(cls, method: str, state: dict[str, NDArray[Any]]) -> DomainNormalizer:
        """Rebuild a normaliser of ``method`` from :meth:`get_state`; ``ValueError`` (the
        message starts with the offending key) for a missing or invalid value."""
        if method not in NORMALIZATION_METHODS:
            raise ValueError(f"normalization.method {method!r}: must be one of "
                             f"{', '.join(NORMALIZATION_METHODS)}")

        def stats(key: str) -> ScoreStats:
            try:
                return ScoreStats.from_state(state[key], "normaliser")
            except KeyError:
                raise ValueError(f"{key}: missing from the normaliser state") from None
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None

        glob = stats("global")
        domains = {d: stats(d) for d in sorted(state) if d not in ("global", "log_floor")}
        floor = shift = 0.0
        if method == "domain_log_zscore":
            if "log_floor" not in state:
                raise ValueError("log_floor: missing from the normaliser state")
            a = np.asarray(state["log_floor"], np.float64)
            if a.shape != (2,) or not (np.all(np.isfinite(a)) and a[0] > 0):
                raise ValueError(f"log_floor: expected (floor > 0, shift), got {a.tolist()}")
            floor, shift = float(a[0]), float(a[1])
        return cls(method, glob, domains, floor, shift)

    @property
    def per_domain(self) -> bool:
        """Whether test clips need a (nearest) domain for this method."""
        return self.method in ("domain_zscore", "domain_log_zscore")

    def transform(
        self, scores: NDArray[np.float64], domains: NDArray[np.str_] | None
    ) -> NDArray[np.float64]:
        """Normalise ``scores`` ``(n,)``; ``domains`` ``(n,)`` holds each clip's (nearest)
        domain, ``None`` or ``"unknown"`` entries use the global statistics."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "none":
            return s.copy()
        if self.method == "domain_log_zscore":
            s = np.log(np.maximum(s + self.log_shift, self.log_floor))
        if domains is None:
            return self.global_stats.z(s)
        doms = np.asarray(domains).astype(str)
        out = self.global_stats.z(s)
        for d, st in self.domain_stats.items():
            mask = doms == d
            out[mask] = st.z(s[mask])
        return out


def combine_scores(
    member_scores: Sequence[NDArray[np.float64]],
    member_stats: Sequence[ScoreStats],
    rule: str,
) -> NDArray[np.float64]:
    """Combine ensemble members' scores ``[(n,), ...]`` into one ``(n,)`` array.

    ``mean_z``: each member is z-scored by its own train self-score statistics
    (``member_stats[i]``, from :meth:`ScoreStats.of` on its self-scores), then averaged;
    ``mean``: plain average; ``max``: element-wise maximum. One member passes through unchanged.
    """
    if not member_scores or len(member_scores) != len(member_stats):
        raise ValueError("combine_scores: need one ScoreStats per member (and 1+ members)")
    if rule not in ("mean_z", "mean", "max"):
        raise ValueError(f"ensemble.combine {rule!r}: must be one of 'mean_z', 'mean', 'max'")
    if len(member_scores) == 1:
        return np.asarray(member_scores[0], np.float64).copy()
    if rule == "mean_z":
        z = [st.z(s) for st, s in zip(member_stats, member_scores, strict=True)]
        return np.asarray(np.mean(z, axis=0), dtype=np.float64)
    stack = np.stack([np.asarray(s, np.float64) for s in member_scores])
    return np.asarray(stack.mean(0) if rule == "mean" else stack.max(0), dtype=np.float64)


def fit_threshold(scores: NDArray[np.float64], method: str, quantile: float) -> float:
    """Decision threshold from train self-scores ``(n,)``.

    ``gamma``: ``scipy.stats.gamma.fit`` then ``ppf(quantile)``; falls back to the empirical
    quantile (with a warning) when the fit fails, gives a non-finite value, or a threshold the
    training scores themselves contradict (far more or fewer of them above it than
    ``1 - quantile``: a free-``loc`` fit to a tight source cluster plus a few spread target
    scores can put it below the median), and for scores without spread.
    ``quantile``: the empirical quantile (linear interpolation).
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("fit_threshold: no finite training scores")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"threshold.quantile {quantile}: must lie in (0, 1)")
    empirical = float(np.quantile(s, quantile))
    if method == "quantile":
        return empirical
    if method != "gamma":
        raise ValueError(f"threshold.method {method!r}: must be 'gamma' or 'quantile'")
    if s.size < 3 or float(s.std()) <= max(_EPS, 1e-9 * max(1.0, abs(float(s.mean())))):
        logger.warning("gamma threshold: %d scores with no spread; using the empirical "
                       "quantile", s.size)
        return empirical
    from scipy import stats  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape, loc, scale = stats.gamma.fit(s)
            value = float(stats.gamma.ppf(quantile, shape, loc=loc, scale=scale))
    except (ValueError, RuntimeError, FloatingPointError) as exc:
        logger.warning("gamma threshold: fit failed (%s); using the empirical quantile", exc)
        return empirical
    if not np.isfinite(value):
        logger.warning("gamma threshold: non-finite ppf; using the empirical quantile")
        return empirical
    expected = (1.0 - quantile) * s.size  # training clips above a sound threshold
    above = int((s > value).sum())
    if not 0.5 * expected - 2 <= above <= 2.0 * expected + 2:
        logger.warning("gamma threshold: the fit puts %d of %d training scores above it "
                       "(about %.0f expected at quantile %g); using the empirical quantile",
                       above, s.size, expected, quantile)
        return empirical
    return value


def decide(scores: NDArray[np.float64], threshold: float) -> NDArray[np.int8]:
    """1 (anomaly) where ``score > threshold`` else 0, shape ``(n,)``."""
    return (np.asarray(scores, dtype=np.float64) > threshold).astype(np.int8)
