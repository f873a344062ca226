"""Gaussian-mixture backend: score = negative log-likelihood under a GMM of the train clips.

The GMM is fitted on every training embedding (source and target). The number of components
follows a fixed rule, ``max(1, min(n_components, n_source // min_per_component))``, so small
training sets get fewer components; it is never chosen per machine type. Self-scores are
cross-fitted over domain-stratified folds.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.base import Backend, ParamSpec
from automl_asd.backends.knn import crossfit_self_scores
from automl_asd.backends.registry import register_backend

__all__ = ["GmmBackend"]

logger = logging.getLogger(__name__)

_STATE_KEYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


@register_backend
class GmmBackend(Backend):
    """sklearn GaussianMixture on all train embeddings; score = -log p(x)."""

    name = "gmm"
    params = {
        "n_components": ParamSpec("int", 8, low=1, high=256, help="upper bound on components"),
        "min_per_component": ParamSpec(
            "int", 20, low=1, high=10000,
            help="components = max(1, min(n_components, n_source // min_per_component))",
        ),
        "covariance_type": ParamSpec(
            "str", "diag", choices=("full", "diag", "tied", "spherical")
        ),
        "reg_covar": ParamSpec("float", 1e-3, low=1e-8, high=10.0, help="added to variances"),
    }

    n_components: int
    min_per_component: int
    covariance_type: str
    reg_covar: float

    def _n_components(self, domains: NDArray[np.str_], n_rows: int) -> int:
        n_source = int((domains != "target").sum())
        return max(1, min(self.n_components, n_source // self.min_per_component, n_rows))

    def _fit_gmm(self, emb: NDArray[np.float64], domains: NDArray[np.str_]) -> Any:
        from sklearn.mixture import GaussianMixture  # noqa: PLC0415

        gmm = GaussianMixture(
            n_components=self._n_components(domains, len(emb)),
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            random_state=self.seed,
            max_iter=200,
        )
        with warnings.catch_warnings():
            # Non-convergence on tiny sets is expected; the fit is still usable.
            warnings.simplefilter("ignore")
            gmm.fit(emb)
        return gmm

    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        emb, domains = self._fit_input(emb, domains)
        if len(emb) < 2:  # a Gaussian needs two points
            raise ValueError(f"backend {self.name}: needs at least 2 training embeddings, "
                             f"got {len(emb)}")
        emb64 = np.asarray(emb, dtype=np.float64)
        domains = np.asarray(domains).astype(str)

        def fit_score(
            tr: NDArray[np.float32], dom: NDArray[np.str_], held: NDArray[np.float32]
        ) -> NDArray[np.float64]:
            g = self._fit_gmm(np.asarray(tr, dtype=np.float64), dom)
            return -np.asarray(g.score_samples(np.asarray(held, dtype=np.float64)), np.float64)

        self.self_scores_ = crossfit_self_scores(fit_score, emb, domains, seed=self.seed,
                                                 min_train=2)
        self.gmm_ = self._fit_gmm(emb64, domains)
        self.fitted_ = True
        return self

    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        self._check_fitted()
        x = np.asarray(self._score_input(emb), dtype=np.float64)
        finite = np.isfinite(x).all(axis=1)
        if finite.all():
            return -np.asarray(self.gmm_.score_samples(x), np.float64)
        # a non-finite row scores NaN, as in the other backends (scikit-learn refuses it)
        out = np.full(len(x), np.nan)
        if finite.any():
            out[finite] = -np.asarray(self.gmm_.score_samples(x[finite]), np.float64)
        return out

    def self_scores(self) -> NDArray[np.float64]:
        self._check_fitted()
        return np.asarray(self.self_scores_, dtype=np.float64).copy()

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        state = {k: np.asarray(getattr(self.gmm_, k)).copy() for k in _STATE_KEYS}
        state["self_scores"] = self.self_scores_.copy()
        return state

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        from sklearn.mixture import GaussianMixture  # noqa: PLC0415

        weights = np.asarray(state["weights_"])
        gmm = GaussianMixture(n_components=len(weights), covariance_type=self.covariance_type)
        for key in _STATE_KEYS:
            setattr(gmm, key, np.asarray(state[key], dtype=np.float64))
        gmm.n_features_in_ = int(np.asarray(state["means_"]).shape[1])
        gmm.converged_ = True
        gmm.n_iter_ = 0
        gmm.lower_bound_ = 0.0
        self.gmm_ = gmm
        self.self_scores_ = np.asarray(state["self_scores"], dtype=np.float64)
        self.n_features_in_ = int(np.asarray(state["means_"]).shape[1])
        self.fitted_ = True
        return self
