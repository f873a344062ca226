"""Scoring backends: turn clip embeddings into anomaly scores.

A backend is fitted on the embeddings of normal training clips with their domains and scores
new embeddings (higher = more anomalous). Backends are shared by every embedding family
(pooled log-mel statistics, margin-trained CNN embeddings, ...): extract once, score many.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.components.params import Parameterized, ParamSpec
from automl_asd.progress import few_names

__all__ = ["Backend", "ParamSpec"]


def _check_finite(name: str, emb: NDArray[Any], what: str) -> None:
    """ValueError naming the rows of ``emb`` that hold NaN or inf."""
    if emb.size and not np.isfinite(emb).all():
        rows = np.flatnonzero(~np.isfinite(emb).all(axis=1))
        raise ValueError(f"backend {name}: {len(rows)} of {len(emb)} {what} hold NaN or inf "
                         f"values (row(s) {few_names([str(i) for i in rows], 5)})")


class Backend(Parameterized, ABC):
    """``fit(emb (n, d), domains (n,) of "source"/"target")`` then ``score(emb (m, d)) -> (m,)``.
    ``name``, ``params``, ``__init__`` and ``get_params``: see
    :class:`~automl_asd.components.params.Parameterized`."""

    _label: ClassVar[str] = "backend "
    #: the embedding width seen in ``fit`` (or restored by ``set_state``): what ``score`` takes
    n_features_in_: int | None = None

    @abstractmethod
    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        """Fit on normal training embeddings. Returns ``self``."""

    @abstractmethod
    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        """Anomaly score per row, shape ``(m,)``; higher = more anomalous."""

    def _fit_input(self, emb: NDArray[Any], domains: Any) -> tuple[NDArray[Any], NDArray[np.str_]]:
        """``emb`` and ``domains`` as the backends read them, or ValueError naming what is
        wrong. Found 2026-12-07: a domain other than "source"/"target" (``"Source"``,
        ``"unknown"``) was left out by ``mahalanobis`` (its self-scores: uninitialised memory)
        and counted as source by ``knn``; a NaN or inf row gave NaN scores or self-scores."""
        emb = np.asarray(emb)
        if emb.ndim != 2 or emb.shape[0] < 1 or emb.shape[1] < 1:
            raise ValueError(f"backend {self.name}: training embeddings must be a 2-D "
                             f"(clips, dimensions) array with at least one clip, got shape "
                             f"{emb.shape}")
        dom = np.asarray(domains).astype(str)
        if dom.shape != (emb.shape[0],):
            raise ValueError(f"backend {self.name}: {dom.size} domain(s) for {emb.shape[0]} "
                             "training embeddings")
        unknown = sorted(set(dom.tolist()) - {"source", "target"})
        if unknown:
            raise ValueError(f"backend {self.name}: domains must be 'source' or 'target', got "
                             f"{', '.join(map(repr, unknown[:5]))}")
        _check_finite(self.name, emb, "training embeddings")
        self.n_features_in_ = int(emb.shape[1])
        return emb, dom

    def _score_input(self, emb: NDArray[Any]) -> NDArray[Any]:
        """``emb`` to score, or ValueError for a wrong shape. A row holding NaN or inf scores
        NaN (that row alone): the pipeline refuses a non-finite score naming its clip."""
        emb = np.asarray(emb)
        if emb.ndim != 2:
            raise ValueError(f"backend {self.name}: embeddings to score must be a 2-D "
                             f"(clips, dimensions) array, got shape {emb.shape}")
        width = getattr(self, "n_features_in_", None)
        if width is not None and emb.shape[1] != width:
            # found 2026-12-07: numpy's "matmul: Input operand 1 has a mismatch in its core
            # dimension" or a broadcast error, naming neither the backend nor the widths
            raise ValueError(f"backend {self.name}: embeddings to score have {emb.shape[1]} "
                             f"dimensions; it was fitted on {width}")
        return emb

    def self_scores(self) -> NDArray[np.float64]:
        """Scores of the training embeddings without self-matching (leave-one-out or
        equivalent), shape ``(n,)``; used for normalisation, fusion and thresholds."""
        raise NotImplementedError(f"backend {self.name} has no self_scores()")

    def nearest_domain(self, emb: NDArray[np.float32]) -> NDArray[np.str_] | None:
        """The training domain (``"source"``/``"target"``) each row is scored against, by the
        backend's own geometry, shape ``(m,)``; ``None``: not supported (families then fall
        back to the domain of the nearest training embedding)."""
        del emb
        return None

    @abstractmethod
    def get_state(self) -> dict[str, NDArray[Any]]:
        """Fitted state as named plain arrays (no pickle)."""

    @abstractmethod
    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        """Restore a state produced by ``get_state``."""
