"""Frame-level Gaussian family (``frame_gaussian``): no pooling, no training loop.

Every clip's feature matrix ``(n_frames, n_bins)`` (optionally ``band_pool`` adjacent bins
averaged into one band) is cut into overlapping windows of ``context`` consecutive frames,
each flattened to one vector of ``context * n_bands`` values (the input of the official
baseline's autoencoder, which with a linear code is a Gaussian on these vectors). One
Gaussian per training domain: its own mean, and one covariance pooled over both domains (the
within-domain scatter; 10 target clips cannot give their own), plus a ridge
``ridge * trace / dim``. A clip's distance to a domain is the mean over its windows of the
squared Mahalanobis distance; its score is the smaller of the two (the domain it is scored in
is the one returned by :meth:`FrameGaussianDetector.nearest_domain`). With ``top_fraction`` < 1
the mean runs over the clip's farthest windows only (the top ``top_fraction`` of them, at least
one): a fault that lives in a few frames (an impact, a missed stroke) is not averaged away by
the normal frames around it.

Unlike :class:`~automl_asd.detectors.embedding.PooledStatsDetector` (one pooled vector per
clip), the covariance here is estimated from tens of thousands of windows, so it captures how
neighbouring frames move together (strokes, impulses, modulation) at a dimension pooled
statistics over 200 clips cannot afford. Self-scores (for per-domain normalisation and the
threshold) are cross-fitted on the folds of the ``mahalanobis`` backend
(:func:`~automl_asd.backends.mahalanobis.domain_folds`: leave-one-clip-out for a domain of up
to 20 clips, else 20 folds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.mahalanobis import MAX_FOLDS, domain_folds
from automl_asd.detectors.base import Detector, ParamSpec, TrainSet
from automl_asd.detectors.embedding import pool_bands
from automl_asd.detectors.registry import register
from automl_asd.progress import few_names

__all__ = ["FrameGaussianDetector", "context_windows", "top_mean"]

_DOMAINS = ("source", "target")


def context_windows(feat: NDArray[np.float32], context: int,
                    band_pool: int = 1) -> NDArray[np.float64]:
    """``(n_windows, context * n_bands)`` float64: every run of ``context`` consecutive frames,
    flattened frame after frame, after averaging each group of ``band_pool`` adjacent bins
    (``n_bands = n_bins // band_pool``, trailing bins dropped; at least one band). A clip
    shorter than ``context`` is padded by repeating its last frame (one window)."""
    x = np.asarray(feat, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a (n_frames>0, n_bins) matrix, got {x.shape}")
    if band_pool > 1:
        x = pool_bands(x, band_pool)
    if x.shape[0] < context:
        x = np.concatenate([x, np.repeat(x[-1:], context - x.shape[0], axis=0)])
    n = x.shape[0] - context + 1
    return np.concatenate([x[i:i + n] for i in range(context)], axis=1)


def top_mean(values: NDArray[np.float64], fraction: float) -> float:
    """Mean of the largest ``ceil(fraction * n)`` of ``values`` (at least one); the plain mean
    for ``fraction`` >= 1."""
    v = np.asarray(values, dtype=np.float64)
    if fraction >= 1.0:
        return float(v.mean())
    k = max(1, int(np.ceil(fraction * len(v))))
    return float(np.partition(v, len(v) - k)[len(v) - k:].mean())


@dataclass(frozen=True)
class _Moments:
    """Per training clip: window count and window sum; per domain: the scatter ``sum x x^T``
    of its windows. Enough to refit the means and the pooled covariance without any subset of
    clips (the clips' windows are not kept: recomputed when needed)."""

    count: NDArray[np.float64]
    sums: NDArray[np.float64]
    domains: NDArray[np.str_]
    scatters: dict[str, NDArray[np.float64]]


def _scatter(windows: Sequence[NDArray[np.float64]], dim: int) -> NDArray[np.float64]:
    out = np.zeros((dim, dim))
    for w in windows:
        out += w.T @ w
    return out


@register
class FrameGaussianDetector(Detector):
    """Per-domain mean + pooled covariance of ``context``-frame windows; clip score = mean
    squared Mahalanobis distance of its windows to the nearer domain."""

    name = "frame_gaussian"
    params = {
        "context": ParamSpec("int", 10, low=1, high=64,
                             help="consecutive frames per window (window = context x bins)"),
        "ridge": ParamSpec("float", 0.01, low=0.0, high=10.0,
                           help="ridge added to the covariance diagonal, relative to the mean "
                                "variance"),
        "band_pool": ParamSpec("int", 1, low=1, high=16,
                               help="adjacent bins averaged into one band before windowing"),
        "top_fraction": ParamSpec("float", 1.0, low=0.01, high=1.0,
                                  help="a clip's distance is the mean over this fraction of "
                                       "its farthest windows (1 = all windows)"),
    }
    test_params = {"context": 3}
    context: int
    ridge: float
    band_pool: int
    top_fraction: float

    #: Window dimension the cost scale is relative to (16 frames x 16 bands).
    COST_REFERENCE_DIM = 256

    #: Largest window (``context x n_bands`` values). A fit holds the scatter of each refitted
    #: fold (up to ``MAX_FOLDS`` per domain) besides the model's own: about
    #: ``2 * MAX_FOLDS + 5`` matrices of ``dim**2`` float64, ~6 GB at 4,096 values (and
    #: minutes per inversion); found 2026-12-07: 65,600 passed ``recipe validate`` and
    #: asked for 32 GiB at the first step of its fit.
    MAX_WINDOW_DIM = 4096

    @classmethod
    def recipe_errors(cls, params: Mapping[str, Any], n_bins: int,
                      path: str = "detector.params") -> list[str]:
        p = cls.canonical_params(params)
        bands = max(1, n_bins // max(1, int(p["band_pool"])))
        dim = int(p["context"]) * bands
        if dim <= cls.MAX_WINDOW_DIM:
            return []
        gb = (2 * MAX_FOLDS + 5) * dim * dim * 8 / 1e9
        return [f"{path}.context: windows of context x bands = {p['context']} x {bands} = "
                f"{dim:,} values (features of {n_bins} bins, band_pool {p['band_pool']}); at "
                f"most {cls.MAX_WINDOW_DIM:,}: fitting would hold ~{gb:,.0f} GB of covariance "
                "matrices. Lower context or the feature bins (n_mels, n_fft), or raise "
                "band_pool"]

    @staticmethod
    def _work(r: float) -> float:
        """Work of a fit at window dimension ``r x 256``: a fixed part, the ``n_windows x dim**2``
        of the scatter, distances and refits, and the cross-fitted inversions' ``dim**3``."""
        return 0.05 + r ** 2 + r ** 3 / 8

    @classmethod
    def cost_scale(cls, params: Mapping[str, Any], n_bins: int) -> float:
        """Work relative to a 256-value window (:meth:`_work`). Fitted to fit + self-scores +
        scoring 100 clips (110 training clips of 188 frames, one thread): 0.08 / 0.19 / 0.60 /
        2.66 / 12.7 / 84.5 s at windows of 64 / 128 / 256 / 512 / 1,024 / 2,048 values; the
        model gives 0.10 / 0.27 / 1 / 4.3 / 20.5 / 109 times the 256-value cost (measured 0.13 /
        0.32 / 1 / 4.4 / 21 / 141)."""
        p = cls.canonical_params(params)
        dim = int(p["context"]) * max(1, n_bins // max(1, int(p["band_pool"])))
        return cls._work(dim / cls.COST_REFERENCE_DIM) / cls._work(1.0)

    # ------------------------------------------------------------------ statistics
    def _stats(self, moments: _Moments, keep: NDArray[np.bool_],
               scatters: dict[str, NDArray[np.float64]],
               ) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
        """Domains, means and precision from the clips in ``keep``; ``scatters`` holds the
        scatter of each domain's kept clips."""
        domains = moments.domains
        present = [d for d in _DOMAINS if np.any(keep & (domains == d))]
        dim = moments.sums.shape[1]
        within = np.zeros((dim, dim))
        means, n_total = [], 0.0
        for d in present:
            sel = keep & (domains == d)
            n = float(moments.count[sel].sum())
            mu = moments.sums[sel].sum(axis=0) / n
            within += scatters[d] - n * np.outer(mu, mu)
            means.append(mu)
            n_total += n
        cov = within / max(n_total - len(present), 1.0)
        cov += np.eye(dim) * (self.ridge * max(float(np.trace(cov)) / dim, 1e-12) + 1e-9)
        precision = np.asarray(np.linalg.pinv(cov, hermitian=True), dtype=np.float64)
        return present, np.stack(means), precision

    def _distances(self, windows: Sequence[NDArray[np.float64]], means: NDArray[np.float64],
                   precision: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n_clips, n_domains)``: mean squared Mahalanobis distance of each clip's windows
        (of its farthest ``top_fraction`` of them)."""
        out = np.empty((len(windows), len(means)))
        for i, w in enumerate(windows):
            for j, mu in enumerate(means):
                diff = w - mu
                out[i, j] = top_mean(((diff @ precision) * diff).sum(axis=1),
                                     self.top_fraction)
        return out

    def _windows(self, features: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float64]]:
        return [context_windows(f, self.context, self.band_pool) for f in features]

    # ------------------------------------------------------------------ contract
    def fit(self, train: TrainSet) -> Self:
        if len(train) == 0:
            raise ValueError(f"{self.name}: no training clips")
        domains = np.asarray(train.domains).astype(str)
        if not np.isin(domains, _DOMAINS).all():
            raise ValueError(f"{self.name}: domains must be 'source' or 'target'")
        # Each refitted fold of the cross-fitted self-scores (self_scores) needs the scatter
        # of its held-out clips: summed here from the products the domain scatters need
        # anyway, clip by clip in the order self_scores would sum them (bit for bit the same).
        fold_of = np.full(len(domains), -1, dtype=np.intp)
        n_folds = 0
        for _, held, refit in domain_folds(domains, _DOMAINS):
            if refit:
                fold_of[held] = n_folds
                n_folds += 1
        count, sums, scatters = [], [], {}
        fold_scatters: list[NDArray[np.float64] | None] = [None] * n_folds
        for i, feat in enumerate(train.features):  # one clip's windows at a time
            w = context_windows(feat, self.context, self.band_pool)
            if i == 0:
                scatters = {d: np.zeros((w.shape[1], w.shape[1])) for d in _DOMAINS}
            count.append(float(len(w)))
            sums.append(w.sum(axis=0))
            product = w.T @ w
            scatters[str(domains[i])] += product
            k = int(fold_of[i])
            if k >= 0:
                acc = fold_scatters[k]
                if acc is None:
                    acc = fold_scatters[k] = np.zeros_like(product)
                acc += product
        clip_sums = np.stack(sums)
        bad = np.flatnonzero(~np.isfinite(clip_sums).all(axis=1))
        if len(bad):  # found 2026-12-07: one NaN made every score NaN
            raise ValueError(f"{self.name}: {len(bad)} training clip(s) hold NaN or inf "
                             f"features (clip(s) {few_names([str(i) for i in bad], 5)})")
        moments = _Moments(np.asarray(count), clip_sums, domains, scatters)
        keep = np.ones(len(domains), dtype=bool)
        self.domains_, self.means_, self.precision_ = self._stats(moments, keep, scatters)
        self._moments = moments
        # used (and released) by the first self_scores call
        self._fold_scatters: list[NDArray[np.float64] | None] | None = fold_scatters
        self.fitted_ = True
        return self

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        self._check_fitted()
        dist = self._distances(self._windows(features), self.means_, self.precision_)
        return np.asarray(dist.min(axis=1), dtype=np.float64)

    def nearest_domain(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.str_]:
        """The domain whose Gaussian gives the clip's score (the nearer one)."""
        self._check_fitted()
        dist = self._distances(self._windows(features), self.means_, self.precision_)
        return np.asarray(np.array(self.domains_)[dist.argmin(axis=1)], dtype=np.str_)

    def score_with_domain(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
        """Scores and nearest domains from one pass of the window distances."""
        self._check_fitted()
        dist = self._distances(self._windows(features), self.means_, self.precision_)
        return (np.asarray(dist.min(axis=1), dtype=np.float64),
                np.asarray(np.array(self.domains_)[dist.argmin(axis=1)], dtype=np.str_))

    def self_scores(self, train: TrainSet) -> NDArray[np.float64]:
        """Cross-fitted training scores (see the module docstring) when ``train`` is the fitted
        set; in-sample scores otherwise (e.g. after ``set_state``)."""
        self._check_fitted()
        moments: _Moments | None = getattr(self, "_moments", None)
        if moments is None or len(train) != len(moments.count):
            return self.score_samples(train.features)
        domains = moments.domains
        out = np.empty(len(domains))
        # the held-out scatters fit() summed (a second call recomputes them: same values)
        known = getattr(self, "_fold_scatters", None)
        self._fold_scatters = None
        k = 0
        for d, held, refit in domain_folds(domains, _DOMAINS):
            windows = self._windows([train.features[i] for i in held])
            if not refit:
                out[held] = self._distances(windows, self.means_, self.precision_).min(axis=1)
                continue
            keep = np.ones(len(domains), dtype=bool)
            keep[held] = False
            fold_scatters = dict(moments.scatters)
            held_scatter = known[k] if known is not None else None
            k += 1
            if held_scatter is None:
                held_scatter = _scatter(windows, moments.sums.shape[1])
            fold_scatters[d] = moments.scatters[d] - held_scatter
            _, means, precision = self._stats(moments, keep, fold_scatters)
            out[held] = self._distances(windows, means, precision).min(axis=1)
        return out

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {"domains": np.array(self.domains_), "means": self.means_.copy(),
                "precision": self.precision_.copy()}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.domains_ = [str(d) for d in state["domains"]]
        self.means_ = np.asarray(state["means"], dtype=np.float64)
        self.precision_ = np.asarray(state["precision"], dtype=np.float64)
        self.fitted_ = True
        return self
