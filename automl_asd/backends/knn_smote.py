"""Cosine kNN with per-domain banks and SMOTE-style target augmentation (``knn_smote``).

Source bank: k-means centres of the source embeddings (``min(n_centres, n_source)`` centres;
``n_centres=0`` keeps every source embedding). Target bank: every target embedding as its own
reference, enlarged SMOTE-style to ``max(n_target, round(smote_ratio * n_source))`` points by
interpolating each target embedding with one of its ``smote_k`` nearest target neighbours
(``lambda ~ U(0, 1)``). Score = minimum over the two banks of the mean cosine distance to the
``k`` nearest bank points. Rules, not per-machine choices: everything follows from the counts.
Self-scores are cross-fitted (:func:`~automl_asd.backends.knn.crossfit_self_scores`): each
training clip is scored by banks built without it, as a new normal clip is.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.base import Backend, ParamSpec
from automl_asd.backends.knn import crossfit_self_scores
from automl_asd.backends.registry import register_backend

__all__ = ["KnnSmoteBackend", "l2_normalize", "cosine_knn", "kmeans_centres"]

_CHUNK = 1024


def l2_normalize(x: NDArray[Any]) -> NDArray[np.float64]:
    """Rows scaled to unit L2 norm (zero rows stay zero); float64 ``(n, d)``."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norm, 1e-12), dtype=np.float64)


def cosine_knn(
    query: NDArray[Any], bank: NDArray[Any], k: int, *, exclude: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The ``k`` smallest cosine distances ``(m, k)`` (ascending) and bank indices.

    ``exclude[i]`` (optional) is a bank index that query ``i`` must not match (leave-one-out),
    ``-1`` for none. Computed in row chunks so large banks do not need an ``m x n`` matrix.
    """
    q = l2_normalize(query)
    b = l2_normalize(bank)
    n = b.shape[0]
    k = min(k, n - (0 if exclude is None else 1))
    if k < 1:
        raise ValueError("cosine_knn: the bank is too small for leave-one-out scoring")
    dists = np.empty((q.shape[0], k))
    idxs = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], _CHUNK):
        d = 1.0 - q[start : start + _CHUNK] @ b.T
        if exclude is not None:
            rows = np.arange(d.shape[0])
            ex = exclude[start : start + _CHUNK]
            d[rows[ex >= 0], ex[ex >= 0]] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n),
                                                                                (d.shape[0], 1))
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        dists[start : start + _CHUNK] = np.take_along_axis(pd, order, axis=1)
        idxs[start : start + _CHUNK] = np.take_along_axis(part, order, axis=1)
    return np.maximum(dists, 0.0), idxs


def kmeans_centres(x: NDArray[Any], n_centres: int, seed: int) -> NDArray[np.float64]:
    """k-means centres ``(min(n_centres, n), d)`` of unit-norm rows (spherical: re-normalised)."""
    from sklearn.cluster import KMeans  # noqa: PLC0415

    x = l2_normalize(x)
    n = min(n_centres, x.shape[0])
    if n >= x.shape[0]:
        return x
    km = KMeans(n_clusters=n, n_init=3, random_state=seed).fit(x)
    return l2_normalize(km.cluster_centers_)


def smote(
    x: NDArray[Any], n_out: int, n_neighbours: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``n_out`` synthetic rows between random rows of ``x`` and one of their nearest neighbours.

    Returns the rows and their two parent indices ``(n_out, 2)``.
    """
    n = x.shape[0]
    if n < 2 or n_out <= 0:
        return np.empty((0, x.shape[1])), np.empty((0, 2), dtype=np.int64)
    _, nn = cosine_knn(x, x, n_neighbours, exclude=np.arange(n, dtype=np.int64))
    a = rng.integers(0, n, size=n_out)
    b = nn[a, rng.integers(0, nn.shape[1], size=n_out)]
    lam = rng.random(n_out)[:, None]
    rows = lam * x[a] + (1 - lam) * x[b]
    return rows, np.stack([a, b], axis=1)


@register_backend
class KnnSmoteBackend(Backend):
    """Per-domain cosine kNN; source k-means centres; SMOTE-augmented target bank."""

    name = "knn_smote"
    params = {
        "n_centres": ParamSpec("int", 16, 0, 1024,
                               help="k-means centres of the source bank (0 = all source clips)"),
        "k": ParamSpec("int", 1, 1, 64, help="neighbours averaged per bank"),
        "smote_ratio": ParamSpec("float", 0.05, 0.0, 1.0,
                                 help="target bank size as a fraction of the source count"),
        "smote_k": ParamSpec("int", 5, 1, 32, help="SMOTE neighbours among target clips"),
    }
    n_centres: int
    k: int
    smote_ratio: float
    smote_k: int

    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        emb, domains = self._fit_input(emb, domains)
        x = l2_normalize(emb)
        is_t = domains == "target"
        src, tgt = x[~is_t], x[is_t]
        if src.shape[0] == 0:  # no source clips: the target clips are the only reference
            src, tgt, is_t = tgt, tgt[:0], np.zeros_like(is_t)
        self.source_bank_ = (
            kmeans_centres(src, self.n_centres, self.seed) if self.n_centres > 0 else src
        )
        rng = np.random.default_rng(self.seed)
        n_extra = max(0, round(self.smote_ratio * src.shape[0]) - tgt.shape[0])
        synth, parents = smote(tgt, n_extra, self.smote_k, rng)
        self.target_bank_ = np.concatenate([tgt, synth]) if tgt.shape[0] else tgt
        self.parents_ = parents
        self.train_emb_ = x
        self.train_is_target_ = is_t
        self.self_scores_: NDArray[np.float64] | None = None  # made when first asked for
        self.fitted_ = True
        return self

    def _bank_score(
        self, emb: NDArray[Any], bank: NDArray[Any], exclude: NDArray[np.int64] | None = None
    ) -> NDArray[np.float64]:
        if bank.shape[0] == 0 or (exclude is not None and bank.shape[0] < 2):
            return np.full(emb.shape[0], np.inf)
        d, _ = cosine_knn(emb, bank, self.k, exclude=exclude)
        return np.asarray(d.mean(axis=1), dtype=np.float64)

    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        self._check_fitted()
        e = l2_normalize(self._score_input(emb))
        return np.minimum(self._bank_score(e, self.source_bank_),
                          self._bank_score(e, self.target_bank_))

    def self_scores(self) -> NDArray[np.float64]:
        """Out-of-fold scores of the training clips: banks refitted without each fold
        (source centres, SMOTE points and all) score it. Found 2026-12-07: scored against the
        banks built from the clips themselves, every source clip was its own k-means centre
        when there were no more source clips than centres (self-score 0), and at 990 clips a
        quarter of new normal clips still scored above the self-scores' 0.9 quantile (other
        backends: about a tenth), which biased thresholds and the domains' normalisers."""
        self._check_fitted()
        if self.self_scores_ is None:
            domains = np.where(self.train_is_target_, "target", "source")
            params = self.get_params()

            def fit_score(tr: NDArray[np.float32], dom: NDArray[np.str_],
                          held: NDArray[np.float32]) -> NDArray[np.float64]:
                return type(self)(**params).fit(tr, dom).score(held)

            self.self_scores_ = crossfit_self_scores(
                fit_score, self.train_emb_.astype(np.float32), domains, seed=self.seed)
        return np.asarray(self.self_scores_, dtype=np.float64).copy()

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {"source_bank": self.source_bank_, "target_bank": self.target_bank_,
                "parents": self.parents_, "train_emb": self.train_emb_,
                "train_is_target": self.train_is_target_, "self_scores": self.self_scores()}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.source_bank_ = np.asarray(state["source_bank"], dtype=np.float64)
        self.target_bank_ = np.asarray(state["target_bank"], dtype=np.float64)
        self.parents_ = np.asarray(state["parents"], dtype=np.int64)
        self.train_emb_ = np.asarray(state["train_emb"], dtype=np.float64)
        self.train_is_target_ = np.asarray(state["train_is_target"], dtype=bool)
        # a state saved before the self-scores were cross-fitted: made again from train_emb
        saved = state.get("self_scores")
        self.self_scores_ = None if saved is None else np.asarray(saved, dtype=np.float64)
        self.n_features_in_ = int(self.train_emb_.shape[1])
        self.fitted_ = True
        return self
