"""Hedging family: label-free fusion of several backends over several views of the features.

The recipe's feature matrix ``(n_frames, n_bins)`` of a clip is turned into one or more
*views*, each a different time-frequency resolution or statistic of the same sound:

- ``fine``: the frames as computed (e.g. log-mel, n_fft 1024 / hop 512);
- ``coarse``: ``coarse_frames`` consecutive frames averaged and ``coarse_bands`` adjacent bins
  averaged (with 1024/512 log-mel and 8 frames: a 4096-sample hop, ~0.26 s at 16 kHz, and half
  the bands), so slow modulation (operating cycles, strokes) shapes its statistics;
- ``delta``: absolute frame-to-frame differences (how impulsive each band is).

Every (view, backend) pair is one member: pooled statistics of the view (``pooling``),
standardised on the training clips, scored by the backend with fixed parameters
(``MEMBER_BACKENDS``: the registry defaults, Euclidean kNN, or a Mahalanobis distance with one
covariance pooled over both domains; the same path as
:class:`~automl_asd.detectors.embedding.PooledStatsDetector`). Each member's scores are
z-normalised by the mean and standard deviation of its own out-of-sample training self-scores
and the z-scores are combined by a fixed rule (``mean``, ``median``, ``min`` or ``max``). No
labels and no per-machine choice: a hedge that is never far from its best member, whichever
member that is on a given machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.fusion import combine_members, member_states, set_member_states
from automl_asd.detectors.base import Detector, ParamSpec, TrainSet
from automl_asd.detectors.embedding import POOLINGS, PooledStatsDetector
from automl_asd.detectors.registry import register

__all__ = ["HedgeDetector", "make_view", "VIEW_SETS", "BACKEND_SETS", "MEMBER_BACKENDS",
           "COMBINES"]

#: Allowed view sets ("+"-joined).
VIEW_SETS = ("fine+coarse", "fine+coarse+delta", "fine+delta", "fine", "coarse", "delta")
#: Member backends: registry backends with fixed parameters (default ones unless named here).
MEMBER_BACKENDS: dict[str, dict[str, Any]] = {
    "knn": {"name": "knn", "params": {}},
    "knn_euclidean": {"name": "knn", "params": {"metric": "euclidean"}},
    "mahalanobis": {"name": "mahalanobis", "params": {}},
    # one covariance pooled over both domains, empirical + ridge (as searched_pooled_logz)
    "mahalanobis_pooled": {"name": "mahalanobis", "params": {
        "covariance": "empirical", "target_covariance": "pooled", "ridge": 0.008}},
    "local_density": {"name": "local_density", "params": {}},
}
#: Allowed member backend sets ("+"-joined keys of MEMBER_BACKENDS).
BACKEND_SETS = (
    "knn+mahalanobis+local_density",
    "mahalanobis+mahalanobis_pooled",
    "knn_euclidean+mahalanobis_pooled",
    "knn+mahalanobis",
    "knn+local_density",
    "mahalanobis+local_density",
    "knn_euclidean+mahalanobis+mahalanobis_pooled+local_density",
    "knn",
    "knn_euclidean",
    "mahalanobis",
    "mahalanobis_pooled",
    "local_density",
)
COMBINES = ("mean", "median", "min", "max")


def make_view(feat: NDArray[np.float32], view: str, coarse_frames: int = 8,
              coarse_bands: int = 2) -> NDArray[np.float32]:
    """One view of a clip's ``(n_frames, n_bins)`` feature matrix (see the module docstring).

    ``coarse`` keeps whole blocks only (at least one, the last partial block dropped when
    there is a full one); ``delta`` of a single frame is a zero row.
    """
    x = np.asarray(feat, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a (n_frames>0, n_bins) matrix, got {x.shape}")
    if view == "fine":
        return x
    if view == "delta":
        if x.shape[0] < 2:
            return np.zeros((1, x.shape[1]), np.float32)
        return np.abs(np.diff(x, axis=0))
    if view == "coarse":
        n_t = max(1, x.shape[0] // coarse_frames)
        t = min(coarse_frames, x.shape[0])
        n_f = max(1, x.shape[1] // coarse_bands)
        f = min(coarse_bands, x.shape[1])
        blocks = x[: n_t * t, : n_f * f].reshape(n_t, t, n_f, f)
        return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)
    raise ValueError(f"view {view!r}: must be fine, coarse or delta")


@register
class HedgeDetector(Detector):
    """z-normalised members (views x backends over pooled statistics) combined by a rule."""

    name = "hedge"
    params = {
        "views": ParamSpec("str", "fine+coarse", choices=VIEW_SETS,
                           help="views of the feature matrix, '+'-joined"),
        "backends": ParamSpec("str", BACKEND_SETS[0], choices=BACKEND_SETS,
                              help="member backends (MEMBER_BACKENDS keys), '+'-joined"),
        "combine": ParamSpec("str", "mean", choices=COMBINES,
                             help="rule combining the members' z-scores"),
        "pooling": ParamSpec("str", "mean_std", choices=POOLINGS,
                             help="pooled statistics per band of every view"),
        "coarse_frames": ParamSpec("int", 8, low=2, high=64,
                                   help="frames averaged per block in the coarse view"),
        "coarse_bands": ParamSpec("int", 2, low=1, high=16,
                                  help="adjacent bins averaged in the coarse view"),
    }
    views: str
    backends: str
    combine: str
    pooling: str
    coarse_frames: int
    coarse_bands: int

    def _pairs(self) -> list[tuple[str, str]]:
        return [(v, b) for v in self.views.split("+") for b in self.backends.split("+")]

    def _make_members(self) -> list[PooledStatsDetector]:
        out = []
        for i, (_, backend) in enumerate(self._pairs()):
            spec = MEMBER_BACKENDS[backend]
            det = PooledStatsDetector(seed=self.seed + 7919 * i, pooling=self.pooling,
                                      standardize=True,
                                      backend={"name": spec["name"],
                                               "params": dict(spec["params"])})
            out.append(det)
        return out

    def _view(self, features: Sequence[NDArray[np.float32]],
              view: str) -> list[NDArray[np.float32]]:
        return [make_view(f, view, self.coarse_frames, self.coarse_bands) for f in features]

    def _views(self, features: Sequence[NDArray[np.float32]]
               ) -> dict[str, list[NDArray[np.float32]]]:
        return {v: self._view(features, v) for v in self.views.split("+")}

    def fit(self, train: TrainSet) -> Self:
        if len(train) == 0:
            raise ValueError(f"{self.name}: no training clips")
        views = self._views(train.features)
        self.members_ = self._make_members()
        own = []
        for (view, _), member in zip(self._pairs(), self.members_, strict=True):
            sub = TrainSet(views[view], train.domains, train.attributes, train.sections,
                           train.machine_types, train.names)
            member.fit(sub)
            own.append(member.self_scores(sub))
        raw = np.stack(own, axis=1)
        self.mean_ = raw.mean(axis=0)
        self.std_ = np.maximum(raw.std(axis=0), 1e-12)
        self.self_scores_ = combine_members((raw - self.mean_) / self.std_, self.combine)
        self.n_train_ = len(train)
        self.fitted_ = True
        return self

    def member_scores(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        """Raw scores ``(n_clips, n_members)`` in member order (views outer, backends inner)."""
        self._check_fitted()
        views = self._views(features)
        cols = [m.score_samples(views[v])
                for (v, _), m in zip(self._pairs(), self.members_, strict=True)]
        return np.stack(cols, axis=1)

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        raw = self.member_scores(features)
        return combine_members((raw - self.mean_) / self.std_, self.combine)

    def self_scores(self, train: TrainSet) -> NDArray[np.float64]:
        """Fused out-of-sample self-scores when ``train`` is the fitted set."""
        self._check_fitted()
        if len(train) == self.n_train_:
            return np.asarray(self.self_scores_, dtype=np.float64)
        return self.score_samples(train.features)

    def nearest_domain(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.str_]:
        """Domain of the nearest training clip in the first member's embedding space."""
        self._check_fitted()
        first = self._pairs()[0][0]
        return self.members_[0].nearest_domain(self._view(features, first))

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {"mean": self.mean_, "std": self.std_, "self_scores": self.self_scores_,
                "n_train": np.asarray(self.n_train_), **member_states(self.members_)}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.members_ = self._make_members()
        set_member_states(self.members_, state)
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.std_ = np.asarray(state["std"], dtype=np.float64)
        self.self_scores_ = np.asarray(state["self_scores"], dtype=np.float64)
        self.n_train_ = int(state["n_train"])
        self.fitted_ = True
        return self
