"""Clip-embedding family: pooled per-band statistics of the feature matrix -> a backend.

Embedding of a clip with features ``(n_frames, n_bins)``: per-band mean and standard deviation
over time (optionally also the max, or the 10/50/90 % quantiles, or the standard deviation of
the frame-to-frame differences), concatenated. ``detrended_mean_std_dstd`` replaces the mean
spectrum by its deviation from its own smooth envelope (a Gaussian of ``DETREND_SIGMA`` bands
across frequency): a microphone or room response is smooth across frequency in log-mel, so
this drops most of it while keeping tonal peaks and narrow resonances. With
``standardize`` every embedding dimension is z-scored by the mean/std of the training
embeddings (not with a single training clip: centred on itself it would be the zero vector,
which a cosine backend cannot rank against). Any registered backend
(``automl_asd.backends.BACKENDS``) then scores the embeddings; "extract once, score many"
makes this family cheap to search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends import Backend, make_backend
from automl_asd.backends.knn import pairwise_distances
from automl_asd.detectors.base import Detector, ParamSpec, TrainSet
from automl_asd.detectors.registry import register

__all__ = ["PooledStatsDetector", "modulation_spectrum", "pool_bands", "pool_features",
           "smooth_bins"]

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "mean_std", "mean_std_max", "mean_std_quantiles", "mean_std_dstd",
            "detrended_mean_std_dstd", "modulation")
#: ``modulation`` pooling: bins averaged per band, frames per Hann segment (hop: half of it).
MOD_BAND_BINS = 8
MOD_SEGMENT = 32
#: Width (in bins) of the Gaussian that gives ``detrended_*`` poolings the smooth envelope.
DETREND_SIGMA = 4.0
#: How a test clip's domain is chosen for per-domain score normalisation.
DOMAIN_RULES = ("nearest_clip", "backend")


def pool_features(
    features: Sequence[NDArray[np.float32]], pooling: str
) -> NDArray[np.float32]:
    """Pooled statistics per clip: ``(n_clips, n_bins * n_stats)`` float32.

    ``n_stats`` is 1 (mean), 2 (mean, std), 3 (mean, std, max; or mean, std, std of the
    frame differences) or 5 (mean, std, q10, q50, q90); ``modulation`` is
    :func:`modulation_spectrum` instead. ``detrended_mean_std_dstd`` subtracts
    from the mean its smooth envelope across bins (:func:`smooth_bins`); a clip with a single
    frame has zero difference statistics.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r}: must be one of {', '.join(POOLINGS)}")
    rows = []
    for i, feat in enumerate(features):
        x = np.asarray(feat, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"clip {i}: expected a (n_frames>0, n_bins) matrix, got {x.shape}")
        if pooling == "modulation":
            rows.append(modulation_spectrum(x))
            continue
        mean = x.mean(axis=0)
        if pooling.startswith("detrended_"):
            mean = mean - smooth_bins(mean, DETREND_SIGMA)
        stats = [mean]
        if pooling != "mean":
            stats.append(x.std(axis=0))
        if pooling == "mean_std_max":
            stats.append(x.max(axis=0))
        elif pooling == "mean_std_quantiles":
            stats.extend(np.quantile(x, [0.1, 0.5, 0.9], axis=0))
        elif pooling.endswith("_dstd"):
            stats.append(np.diff(x, axis=0).std(axis=0) if len(x) > 1
                         else np.zeros(x.shape[1]))
        rows.append(np.concatenate(stats))
    return np.stack(rows).astype(np.float32)


def modulation_spectrum(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log modulation spectrum of a ``(n_frames, n_bins)`` matrix: ``MOD_BAND_BINS`` adjacent
    bins averaged into bands (one band for fewer bins), each band's envelope minus its mean, cut
    into Hann-windowed segments of ``MOD_SEGMENT`` frames with half overlap (a shorter clip is
    zero-padded to one segment), and the power at modulation bins 1 .. ``MOD_SEGMENT // 2``
    averaged over segments: ``(n_bands * MOD_SEGMENT // 2,)``, ``log(power + 1e-6)``, band-major.
    At hop 512 / 16 kHz that is 0.98 .. 15.6 Hz in 0.98 Hz steps: the rates of operating cycles,
    strokes, rattles and beats that pooled means and standard deviations do not keep.
    """
    n_t = x.shape[0]
    bands = pool_bands(x, MOD_BAND_BINS)
    env = bands - bands.mean(axis=0, keepdims=True)
    if n_t < MOD_SEGMENT:
        env = np.vstack([env, np.zeros((MOD_SEGMENT - n_t, env.shape[1]))])
    hop = MOD_SEGMENT // 2
    starts = range(0, len(env) - MOD_SEGMENT + 1, hop)
    window = np.hanning(MOD_SEGMENT)[:, None]
    power = np.mean([np.abs(np.fft.rfft(env[s:s + MOD_SEGMENT] * window, axis=0)) ** 2
                     for s in starts], axis=0)[1:hop + 1]  # (hop, n_bands)
    out: NDArray[np.float64] = np.log(power.T.ravel() + 1e-6)
    return out


def pool_bands(x: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """``(n_frames, n_bins // w)``: each group of ``w = min(width, n_bins)`` adjacent bins of a
    ``(n_frames, n_bins)`` matrix averaged (trailing bins dropped; at least one band)."""
    w = min(width, x.shape[1])
    n_bands = x.shape[1] // w
    out: NDArray[np.float64] = x[:, :n_bands * w].reshape(x.shape[0], n_bands, w).mean(axis=2)
    return out


def smooth_bins(v: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    """``v`` (1-D) smoothed by a Gaussian of ``sigma`` bins, edges extended (nearest value)."""
    if sigma <= 0:
        return v.copy()
    radius = int(np.ceil(4.0 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(v, radius, mode="edge")
    return np.convolve(padded, taps, mode="valid")


@register
class PooledStatsDetector(Detector):
    """Pooled log-mel statistics (mean/std/...) per clip, scored by a backend (default knn)."""

    name = "pooled_stats"
    params = {
        "pooling": ParamSpec("str", "mean_std", choices=POOLINGS, help="statistics per band"),
        "standardize": ParamSpec(
            "bool", True, help="z-score each embedding dimension by train statistics"
        ),
        "backend": ParamSpec(
            "backend", {"name": "knn", "params": {}}, help="scoring backend name + params"
        ),
        "domain_rule": ParamSpec(
            "str", "nearest_clip", choices=DOMAIN_RULES,
            help="domain of a test clip for per-domain normalisation: that of the nearest "
                 "training embedding, or the backend's own (falls back to nearest_clip)",
        ),
    }

    cost_params = ("backend",)
    pooling: str
    standardize: bool
    backend: dict[str, Any]
    domain_rule: str

    def _make_backend(self) -> Backend:
        spec = self.backend
        return make_backend(str(spec["name"]), dict(spec.get("params", {})), self.seed)

    def _embed(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float32]:
        if len(features) == 0:  # no clips: no scores (found 2026-12-07: np.stack raised)
            return np.zeros((0, len(self.mean_)), np.float32)
        emb = pool_features(features, self.pooling)
        if self.standardize:
            emb = ((emb - self.mean_) / self.scale_).astype(np.float32)
        return emb

    def fit(self, train: TrainSet) -> Self:
        if len(train) == 0:
            raise ValueError(f"{self.name}: no training clips")
        raw = pool_features(train.features, self.pooling)
        if self.standardize and len(raw) > 1:
            self.mean_ = raw.mean(axis=0).astype(np.float32)
            # Floor keeps constant dimensions (e.g. silent bands) from exploding.
            self.scale_ = np.maximum(raw.std(axis=0), 1e-3 * float(raw.std()) + 1e-8).astype(
                np.float32
            )
            emb = ((raw - self.mean_) / self.scale_).astype(np.float32)
        else:
            self.mean_ = np.zeros(raw.shape[1], np.float32)
            self.scale_ = np.ones(raw.shape[1], np.float32)
            emb = raw
        domains = np.asarray(train.domains).astype(str)
        self.backend_ = self._make_backend().fit(emb, domains)
        self.train_embeddings_ = emb
        self.train_domains_ = domains
        self.fitted_ = True
        return self

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        self._check_fitted()
        return np.asarray(self.backend_.score(self._embed(features)), dtype=np.float64)

    def self_scores(self, train: TrainSet) -> NDArray[np.float64]:
        """Backend's out-of-sample self-scores when ``train`` is the fitted set."""
        self._check_fitted()
        if len(train) == len(self.train_embeddings_):
            try:
                return np.asarray(self.backend_.self_scores(), dtype=np.float64)
            except NotImplementedError:
                logger.warning(
                    "backend %s has no self_scores(); using in-sample scores", self.backend_.name
                )
        return self.score_samples(train.features)

    def nearest_domain(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.str_]:
        """Per ``domain_rule``: the backend's domain (``backend``, when it has one) or the
        domain of the nearest training embedding (Euclidean, in the standardised space)."""
        self._check_fitted()
        if not (self.train_domains_ == "target").any():
            return np.full(len(features), "source")
        return self._domain_of(self._embed(features))

    def score_with_domain(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
        """Scores and nearest domains from one pooling of the clips."""
        self._check_fitted()
        emb = self._embed(features)
        scores = np.asarray(self.backend_.score(emb), dtype=np.float64)
        if not (self.train_domains_ == "target").any():
            return scores, np.full(len(features), "source")
        return scores, self._domain_of(emb)

    def _domain_of(self, emb: NDArray[np.float32]) -> NDArray[np.str_]:
        if self.domain_rule == "backend":
            own = self.backend_.nearest_domain(emb)
            if own is not None:
                return np.asarray(own, dtype=np.str_)

        d = pairwise_distances(emb, self.train_embeddings_, "euclidean")
        return np.asarray(self.train_domains_[d.argmin(axis=1)], dtype=np.str_)

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        state: dict[str, NDArray[Any]] = {
            "mean": self.mean_.copy(),
            "scale": self.scale_.copy(),
            "train_embeddings": self.train_embeddings_.copy(),
            "train_domains": self.train_domains_.astype(str),
        }
        for key, value in self.backend_.get_state().items():
            state[f"backend.{key}"] = value
        return state

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.mean_ = np.asarray(state["mean"], dtype=np.float32)
        self.scale_ = np.asarray(state["scale"], dtype=np.float32)
        self.train_embeddings_ = np.asarray(state["train_embeddings"], dtype=np.float32)
        self.train_domains_ = np.asarray(state["train_domains"]).astype(str)
        prefix = "backend."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        self.backend_ = self._make_backend().set_state(sub)
        self.fitted_ = True
        return self
