"""Per-domain Mahalanobis distance, minimum over domains (``mahalanobis``).

For each domain present in training, a mean and a (shrunk) covariance are fitted; the score is
``min_d (x - mu_d)^T Sigma_d^-1 (x - mu_d)``, as in the official baseline's selective
Mahalanobis mode. With ~10 target clips in a 128-d space the target covariance cannot be
estimated on its own, so ``target_covariance`` picks a fixed rule: ``"own"`` (Ledoit-Wolf
shrinkage of the target clips), ``"source"`` (the source covariance around the target mean, the
baseline's fallback) or ``"pooled"`` (within-domain scatter of all clips). A small ridge
``ridge * trace(Sigma)/d`` keeps every covariance invertible; a covariance without spread (one
clip per domain, identical clips) is replaced by the identity (squared Euclidean distance).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.base import Backend, ParamSpec
from automl_asd.backends.registry import register_backend

__all__ = ["MAX_FOLDS", "MahalanobisBackend", "domain_folds"]

_DOMAINS = ("source", "target")
#: Folds of a cross-fitted self-score for a domain of more clips (fewer: leave-one-out). With
#: 5 folds each held-out clip was scored by statistics from 80 % of the clips while a test clip
#: meets those of all of them: a covariance of hundreds of dimensions from 20 % fewer clips
#: inflates the held-out distances, so the source domain's normaliser sat above its test
#: normals (by 0.05 in log distance, a third of their spread, on the `small` bench draws) and
#: target normals scored above source normals. 20 folds (95 %) remove that offset; exact
#: leave-one-out scores the same (docs/benchmarks.md, "Cross-fitted on 20 folds").
MAX_FOLDS = 20


def domain_folds(domains: NDArray[np.str_], order: Sequence[str]
                 ) -> Iterator[tuple[str, NDArray[np.intp], bool]]:
    """The held-out folds of a cross-fitted self-score, domain by domain in ``order``:
    leave-one-out for up to :data:`MAX_FOLDS` clips of a domain, else that many folds in a
    fixed order. Yields
    ``(domain, held indices, refit)``; ``refit`` is False for a domain of fewer than 3 clips,
    too few to leave any out (its clips are scored by the full fit)."""
    for d in order:
        idx = np.flatnonzero(domains == d)
        if len(idx) == 0:
            continue
        n_folds = min(len(idx), MAX_FOLDS)
        folds = np.arange(len(idx)) % n_folds
        for f in range(n_folds):
            yield d, idx[folds == f], len(idx) >= 3


def _covariance(x: NDArray[np.float64], method: str) -> NDArray[np.float64]:
    if x.shape[0] < 2:
        return np.zeros((x.shape[1], x.shape[1]))
    if method == "ledoit_wolf":
        from sklearn.covariance import ledoit_wolf  # noqa: PLC0415

        cov, _ = ledoit_wolf(x)
        return np.asarray(cov, dtype=np.float64)
    return np.asarray(np.cov(x, rowvar=False, bias=False), dtype=np.float64).reshape(
        x.shape[1], x.shape[1]
    )


@register_backend
class MahalanobisBackend(Backend):
    """Per-domain mean + shrunk covariance; score = min over domains of the squared distance."""

    name = "mahalanobis"
    params = {
        "covariance": ParamSpec("str", "ledoit_wolf", choices=("ledoit_wolf", "empirical"),
                                help="covariance estimator"),
        "target_covariance": ParamSpec("str", "source", choices=("own", "source", "pooled"),
                                       help="rule for the covariance of the target domain"),
        "ridge": ParamSpec("float", 1e-3, 0.0, 10.0,
                           help="ridge added to the diagonal, relative to the mean variance"),
    }
    covariance: str
    target_covariance: str
    ridge: float

    def _fit_stats(
        self, emb: NDArray[np.float64], domains: NDArray[np.str_],
        base_precision: NDArray[np.float64] | None = None,
    ) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
        """Domains, means and precisions of ``emb``. ``base_precision``: the base domain's
        precision when the caller knows it (a cross-fitting fold that holds out only clips of
        another domain: the base clips, hence their covariance, are those of the full fit);
        a precision is computed once per distinct covariance (the ``source`` rule shares one)."""
        present = [d for d in _DOMAINS if np.any(domains == d)]
        if not present:
            raise ValueError(f"backend {self.name}: domains must be 'source' or 'target'")
        means = {d: emb[domains == d].mean(axis=0) for d in present}
        covs: dict[str, NDArray[np.float64]] = {}
        base = "source" if "source" in present else present[0]
        if base_precision is None or self.target_covariance == "source":
            covs[base] = _covariance(emb[domains == base], self.covariance)
        for d in present:
            if d == base:
                continue
            if self.target_covariance == "own":
                covs[d] = _covariance(emb[domains == d], "ledoit_wolf")
            elif self.target_covariance == "source":
                covs[d] = covs[base]
            else:
                centred = np.concatenate([emb[domains == e] - means[e] for e in present])
                covs[d] = _covariance(centred, self.covariance)
        base_prec = (base_precision if base_precision is not None
                     and self.target_covariance != "source" else self._precision(covs[base]))
        # the same covariance (the ``source`` rule) gives the same precision: computed once
        precs = [base_prec if d == base or covs[d] is covs.get(base) else self._precision(covs[d])
                 for d in present]
        return present, np.stack([means[d] for d in present]), np.stack(precs)

    def _precision(self, cov: NDArray[np.float64]) -> NDArray[np.float64]:
        dim = cov.shape[0]
        if not np.trace(cov) / dim > 1e-12:
            # no spread (one clip per domain, or identical clips): no shape to learn, and the
            # ridge's floor alone sent distances to ~1e13; the Euclidean distance instead
            return np.eye(dim)
        c = cov + np.eye(dim) * (self.ridge * np.trace(cov) / dim + 1e-9)
        return np.asarray(np.linalg.pinv(c, hermitian=True), dtype=np.float64)

    @staticmethod
    def _per_domain(
        emb: NDArray[np.float64], means: NDArray[np.float64], precs: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        out = np.empty((emb.shape[0], means.shape[0]))
        for j in range(means.shape[0]):
            diff = emb - means[j]
            out[:, j] = np.einsum("nd,de,ne->n", diff, precs[j], diff)
        return out

    @classmethod
    def _distances(
        cls, emb: NDArray[np.float64], means: NDArray[np.float64], precs: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return np.asarray(cls._per_domain(emb, means, precs).min(axis=1), dtype=np.float64)

    def nearest_domain(self, emb: NDArray[np.float32]) -> NDArray[np.str_]:
        """The domain whose distance is the minimum (the one the score is taken from)."""
        self._check_fitted()
        d = self._per_domain(np.asarray(emb, dtype=np.float64), self.means_, self.precisions_)
        return np.asarray(np.array(self.domains_)[d.argmin(axis=1)], dtype=np.str_)

    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        emb, dom = self._fit_input(emb, domains)
        x = np.asarray(emb, dtype=np.float64)
        self.domains_, self.means_, self.precisions_ = self._fit_stats(x, dom)
        self.train_emb_, self.train_domains_ = x, dom
        self.fitted_ = True
        return self

    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        self._check_fitted()
        emb = self._score_input(emb)
        return self._distances(np.asarray(emb, dtype=np.float64), self.means_, self.precisions_)

    def self_scores(self) -> NDArray[np.float64]:
        """Cross-fitted scores: each clip is scored by statistics fitted without its fold
        (:func:`domain_folds`: leave-one-out for a domain of up to :data:`MAX_FOLDS` clips,
        else that many folds). Only the statistics that depend on the held-out clips are
        refitted."""
        self._check_fitted()
        x, dom = self.train_emb_, self.train_domains_
        out = np.empty(x.shape[0])
        base = self.domains_[0]
        for d, held, refit in domain_folds(dom, self.domains_):
            if not refit:
                out[held] = self._distances(x[held], self.means_, self.precisions_)
                continue
            keep = np.ones(x.shape[0], dtype=bool)
            keep[held] = False
            if d != base and self.target_covariance != "pooled":
                # only this domain's mean (and its own covariance) change
                j = self.domains_.index(d)
                means, precs = self.means_.copy(), self.precisions_.copy()
                rest = x[keep & (dom == d)]
                means[j] = rest.mean(axis=0)
                if self.target_covariance == "own":
                    precs[j] = self._precision(_covariance(rest, "ledoit_wolf"))
            elif d != base:
                # pooled: the held clips are not base clips, so the base covariance is that
                # of the full fit (same rows, same order): only the pooled one is refitted
                _, means, precs = self._fit_stats(x[keep], dom[keep],
                                                  base_precision=self.precisions_[0])
            else:
                _, means, precs = self._fit_stats(x[keep], dom[keep])
            out[held] = self._distances(x[held], means, precs)
        return out

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {"domains": np.array(self.domains_), "means": self.means_,
                "precisions": self.precisions_, "train_emb": self.train_emb_,
                "train_domains": self.train_domains_}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.domains_ = [str(d) for d in state["domains"]]
        self.means_ = np.asarray(state["means"], dtype=np.float64)
        self.precisions_ = np.asarray(state["precisions"], dtype=np.float64)
        self.train_emb_ = np.asarray(state["train_emb"], dtype=np.float64)
        self.train_domains_ = np.asarray(state["train_domains"]).astype(str)
        self.n_features_in_ = int(self.means_.shape[-1])
        self.fitted_ = True
        return self
