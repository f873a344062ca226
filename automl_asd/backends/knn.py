"""Domain-aware nearest-neighbour backend (k-means source centres + every target clip).

References = k-means centres of the source embeddings (``min(n_centers, n_source)`` centres, a
fixed rule, never a per-machine value) plus every target embedding as its own reference.
Score = mean distance to the ``k`` nearest references (``k=1``: the minimum distance), cosine
or Euclidean. Self-scores are cross-fitted (see :func:`crossfit_self_scores`), so a training
clip is never scored against a reference built from itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.base import Backend, ParamSpec
from automl_asd.backends.registry import register_backend

__all__ = ["KnnBackend", "crossfit_self_scores", "fold_ids", "pairwise_distances"]

logger = logging.getLogger(__name__)


def fold_ids(domains: NDArray[np.str_], n_folds: int, seed: int) -> NDArray[np.int64]:
    """Deterministic fold id per row, stratified by domain (each domain dealt round-robin
    over the folds after a seeded shuffle). Shape ``(n,)``. When that puts every row in one
    fold (each domain holds a single row, e.g. 1 source + 1 target clip), the rows are dealt
    over the folds regardless of domain, so no fold is left to train on nothing."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(domains), dtype=np.int64)
    for dom in sorted(set(domains.tolist())):
        idx = np.flatnonzero(domains == dom)
        idx = idx[rng.permutation(len(idx))]
        out[idx] = np.arange(len(idx)) % n_folds
    if len(out) > 1 and n_folds > 1 and np.all(out == out[0]):
        out[rng.permutation(len(out))] = np.arange(len(out)) % n_folds
    return out


FitScore = Callable[
    [NDArray[np.float32], NDArray[np.str_], NDArray[np.float32]], NDArray[np.float64]
]


def crossfit_self_scores(
    fit_score: FitScore,
    emb: NDArray[np.float32],
    domains: NDArray[np.str_],
    *,
    n_folds: int = 5,
    seed: int = 0,
    min_train: int = 1,
) -> NDArray[np.float64]:
    """Out-of-fold scores of the training embeddings, shape ``(n,)``.

    ``fit_score(train_emb, train_domains, held_emb)`` fits a fresh model and scores
    ``held_emb``. It is called once per domain-stratified fold (``min(n_folds, n)`` folds), so
    no row is scored by a model that saw it. Rows whose fold would leave fewer than
    ``min_train`` rows to fit on (a single row; 2 rows for a model that needs 2) are scored
    in-sample, by a model fitted on every row.
    """
    n = len(emb)
    if n == 0:
        raise ValueError("crossfit_self_scores: no training embeddings")
    if n == 1 or n - 1 < min_train:
        return fit_score(emb, domains, emb)
    folds = fold_ids(domains, min(n_folds, n), seed)
    scores = np.empty(n, dtype=np.float64)
    in_sample = np.zeros(n, dtype=bool)
    for f in np.unique(folds):
        held = folds == f
        if int((~held).sum()) < min_train:
            in_sample |= held
            continue
        scores[held] = fit_score(emb[~held], domains[~held], emb[held])
    if in_sample.any():
        scores[in_sample] = fit_score(emb, domains, emb[in_sample])
    return scores


def pairwise_distances(
    a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]], metric: str
) -> NDArray[np.float64]:
    """Distances ``(len(a), len(b))``: ``cosine`` (1 - cos) or ``euclidean``."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if metric == "cosine":
        an = a64 / np.maximum(np.linalg.norm(a64, axis=1, keepdims=True), 1e-12)
        bn = b64 / np.maximum(np.linalg.norm(b64, axis=1, keepdims=True), 1e-12)
        return np.asarray(np.clip(1.0 - an @ bn.T, 0.0, 2.0), dtype=np.float64)
    sq = (a64**2).sum(1)[:, None] + (b64**2).sum(1)[None, :] - 2.0 * a64 @ b64.T
    return np.asarray(np.sqrt(np.maximum(sq, 0.0)), dtype=np.float64)


@register_backend
class KnnBackend(Backend):
    """k-means(source) + target references; mean distance to the k nearest references."""

    name = "knn"
    params = {
        "n_centers": ParamSpec(
            "int", 16, low=1, high=4096,
            help="k-means centres of the source embeddings (min(n_centers, n_source) used)",
        ),
        "k": ParamSpec("int", 1, low=1, high=64, help="score = mean over the k nearest refs"),
        "metric": ParamSpec("str", "cosine", choices=("cosine", "euclidean")),
    }

    n_centers: int
    k: int
    metric: str

    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        emb, domains = self._fit_input(emb, domains)
        emb64 = np.asarray(emb, dtype=np.float64)

        def fit_score(
            tr: NDArray[np.float32], dom: NDArray[np.str_], held: NDArray[np.float32]
        ) -> NDArray[np.float64]:
            refs, _ = self._references(np.asarray(tr, dtype=np.float64), dom)
            return self._distances(np.asarray(held, dtype=np.float64), refs)

        self.self_scores_ = crossfit_self_scores(fit_score, emb, domains, seed=self.seed)
        self.references_, self.reference_domains_ = self._references(emb64, domains)
        self.fitted_ = True
        return self

    def _references(
        self, emb: NDArray[np.float64], domains: NDArray[np.str_]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
        if len(emb) == 0:
            raise ValueError(f"backend {self.name}: no training embeddings")
        domains = np.asarray(domains).astype(str)
        src = emb[domains != "target"]
        tgt = emb[domains == "target"]
        if self.metric == "cosine":
            src = src / np.maximum(np.linalg.norm(src, axis=1, keepdims=True), 1e-12)
            tgt = tgt / np.maximum(np.linalg.norm(tgt, axis=1, keepdims=True), 1e-12)
        parts = [tgt]
        doms = [np.full(len(tgt), "target")]
        if len(src):
            n_centers = min(self.n_centers, len(src))
            if n_centers == len(src):
                centers = src
            elif len(distinct := np.unique(src, axis=0)) <= n_centers:
                # copies among the clips (identical recordings): no more centres than there
                # are distinct points (k-means warned, and its centres are those points)
                centers = distinct
            else:
                from sklearn.cluster import KMeans  # noqa: PLC0415

                km = KMeans(n_clusters=n_centers, n_init=1, random_state=self.seed)
                centers = km.fit(src).cluster_centers_.astype(np.float64)
            parts.insert(0, centers)
            doms.insert(0, np.full(len(centers), "source"))
        return np.concatenate(parts), np.concatenate(doms).astype(str)

    def _distances(
        self, emb: NDArray[np.float64], refs: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        d = pairwise_distances(emb, refs, self.metric)
        k = min(self.k, d.shape[1])
        if k == 1:
            return np.asarray(d.min(axis=1), dtype=np.float64)
        return np.asarray(np.sort(d, axis=1)[:, :k].mean(axis=1), dtype=np.float64)

    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        self._check_fitted()
        emb = self._score_input(emb)
        return self._distances(np.asarray(emb, dtype=np.float64), self.references_)

    def nearest_domain(self, emb: NDArray[np.float32]) -> NDArray[np.str_]:
        """Domain (``"source"``/``"target"``) of each row's nearest reference."""
        self._check_fitted()
        d = pairwise_distances(np.asarray(emb, dtype=np.float64), self.references_, self.metric)
        return np.asarray(self.reference_domains_[d.argmin(axis=1)], dtype=np.str_)

    def self_scores(self) -> NDArray[np.float64]:
        self._check_fitted()
        return self.self_scores_.copy()

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {
            "references": self.references_.copy(),
            "reference_domains": self.reference_domains_.astype(str),
            "self_scores": self.self_scores_.copy(),
        }

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.references_ = np.asarray(state["references"], dtype=np.float64)
        self.reference_domains_ = np.asarray(state["reference_domains"]).astype(str)
        self.self_scores_ = np.asarray(state["self_scores"], dtype=np.float64)
        self.n_features_in_ = int(self.references_.shape[1])
        self.fitted_ = True
        return self

