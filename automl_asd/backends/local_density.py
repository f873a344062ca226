"""kNN cosine distance normalised by the local density of the bank (``local_density``).

Label-free domain handling (after arXiv 2509.10951): every training embedding is a bank point
``j`` with a local radius ``r_j`` = mean cosine distance to its ``k`` nearest other bank points.
A query's score is ``min_{j in NN_c(x)} d(x, j) / r_j`` over its ``candidates`` nearest bank
points. Sparse regions (the ~10 target clips) have large radii, so distances there are scaled
down, which removes the domain-dependent scale of plain kNN distances without domain labels.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.base import Backend, ParamSpec
from automl_asd.backends.knn_smote import cosine_knn, l2_normalize
from automl_asd.backends.registry import register_backend

__all__ = ["LocalDensityBackend"]


@register_backend
class LocalDensityBackend(Backend):
    """Cosine kNN over all training embeddings, each distance divided by the neighbour's radius."""

    name = "local_density"
    params = {
        "k": ParamSpec("int", 5, 1, 64, help="neighbours defining a bank point's radius"),
        "candidates": ParamSpec("int", 1, 1, 64,
                                help="nearest bank points considered per query"),
    }
    k: int
    candidates: int

    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        emb, domains = self._fit_input(emb, domains)
        bank = l2_normalize(emb)
        if bank.shape[0] < 2:
            raise ValueError(f"backend {self.name}: needs at least 2 training embeddings")
        n = bank.shape[0]
        d, _ = cosine_knn(bank, bank, self.k, exclude=np.arange(n, dtype=np.int64))
        self.radius_ = np.maximum(d.mean(axis=1), 1e-6)
        self.bank_ = bank
        self.fitted_ = True
        return self

    def _score(self, emb: NDArray[Any], exclude: NDArray[np.int64] | None) -> NDArray[np.float64]:
        d, idx = cosine_knn(emb, self.bank_, self.candidates, exclude=exclude)
        return np.asarray((d / self.radius_[idx]).min(axis=1), dtype=np.float64)

    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        self._check_fitted()
        return self._score(self._score_input(emb), None)

    def self_scores(self) -> NDArray[np.float64]:
        """Leave-one-out: a training clip never matches itself (the other points' radii are
        kept as fitted, i.e. they still count the clip as a neighbour)."""
        self._check_fitted()
        n = self.bank_.shape[0]
        return self._score(self.bank_, np.arange(n, dtype=np.int64))

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {"bank": self.bank_, "radius": self.radius_}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.bank_ = np.asarray(state["bank"], dtype=np.float64)
        self.radius_ = np.asarray(state["radius"], dtype=np.float64)
        self.n_features_in_ = int(self.bank_.shape[1])
        self.fitted_ = True
        return self
