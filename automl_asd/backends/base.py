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

__all__ = ["Backend", "ParamSpec"]


class Backend(Parameterized, ABC):
    """``fit(emb (n, d), domains (n,) of "source"/"target")`` then ``score(emb (m, d)) -> (m,)``.
    ``name``, ``params``, ``__init__`` and ``get_params``: see
    :class:`~automl_asd.components.params.Parameterized`."""

    _label: ClassVar[str] = "backend "

    @abstractmethod
    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        """Fit on normal training embeddings. Returns ``self``."""

    @abstractmethod
    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        """Anomaly score per row, shape ``(m,)``; higher = more anomalous."""

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
