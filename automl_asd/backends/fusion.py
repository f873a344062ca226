"""Label-free fusion of several backends (``fusion``).

Each member backend (default parameters, seed derived from the fusion's seed) is fitted on the
same embeddings; its scores are z-normalised by the mean and standard deviation of its own
training self-scores (leave-one-out or cross-fitted, so they look like scores of unseen normal
clips); the z-scores are combined by a fixed rule (``min``, ``mean`` or ``max``). No labels and
no per-machine choice are involved (arXiv 2606.19269 reports ``min`` close to a per-machine
oracle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.base import Backend, ParamSpec
from automl_asd.backends.registry import make_backend, register_backend
from automl_asd.calibration import spread_scale

__all__ = ["FusionBackend", "MEMBER_SETS"]

#: allowed member sets ("+"-joined registry names)
MEMBER_SETS = (
    "knn+mahalanobis+local_density",
    "knn+mahalanobis",
    "knn+local_density",
    "knn+gmm+local_density",
    "knn_smote+mahalanobis+local_density",
    "knn_smote+mahalanobis",
    "knn_smote+local_density",
    "mahalanobis+local_density",
)


def member_states(members: Sequence[Any]) -> dict[str, NDArray[Any]]:
    """The states of fitted ``members`` under ``m<i>.`` prefixes (one flat bundle dict)."""
    state: dict[str, NDArray[Any]] = {}
    for i, m in enumerate(members):
        state.update({f"m{i}.{key}": value for key, value in m.get_state().items()})
    return state


def set_member_states(members: Sequence[Any], state: dict[str, NDArray[Any]]) -> None:
    """Restore each of ``members`` from its ``m<i>.``-prefixed part of ``state``."""
    for i, m in enumerate(members):
        prefix = f"m{i}."
        m.set_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def combine_members(z: NDArray[np.float64], rule: str) -> NDArray[np.float64]:
    """Combine z-normalised member scores ``z`` (n_clips, n_members) by ``rule``
    (``mean``, ``median``, ``min`` or ``max``) -> (n_clips,). Shared with the ``hedge`` family."""
    if rule == "median":
        return np.asarray(np.median(z, axis=1), dtype=np.float64)
    if rule == "min":
        return np.asarray(z.min(axis=1), dtype=np.float64)
    if rule == "max":
        return np.asarray(z.max(axis=1), dtype=np.float64)
    if rule != "mean":
        raise ValueError(f"combine rule {rule!r}: must be mean, median, min or max")
    return np.asarray(z.mean(axis=1), dtype=np.float64)


@register_backend
class FusionBackend(Backend):
    """z-normalised (by training self-scores) member backends combined by a fixed rule."""

    name = "fusion"
    params = {
        "members": ParamSpec("str", MEMBER_SETS[0], choices=MEMBER_SETS,
                             help="member backends, '+'-joined"),
        "combine": ParamSpec("str", "min", choices=("min", "mean", "max"),
                             help="rule combining the members' z-scores"),
    }
    members: str
    combine: str

    def _member_names(self) -> list[str]:
        return self.members.split("+")

    def _make_members(self) -> list[Backend]:
        return [make_backend(name, {}, self.seed + 7919 * i)
                for i, name in enumerate(self._member_names())]

    def fit(self, emb: NDArray[np.float32], domains: NDArray[np.str_]) -> Self:
        emb, domains = self._fit_input(emb, domains)
        self.members_ = [m.fit(emb, domains) for m in self._make_members()]
        self_scores = np.stack([m.self_scores() for m in self.members_], axis=1)
        self.mean_ = self_scores.mean(axis=0)
        self.std_ = spread_scale(self.mean_, self_scores.std(axis=0))
        self.self_scores_ = combine_members((self_scores - self.mean_) / self.std_, self.combine)
        self.fitted_ = True
        return self

    def score(self, emb: NDArray[np.float32]) -> NDArray[np.float64]:
        self._check_fitted()
        emb = self._score_input(emb)
        raw = np.stack([m.score(emb) for m in self.members_], axis=1)
        return combine_members((raw - self.mean_) / self.std_, self.combine)

    def self_scores(self) -> NDArray[np.float64]:
        self._check_fitted()
        return np.asarray(self.self_scores_, dtype=np.float64)

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        return {"mean": self.mean_, "std": self.std_, "self_scores": self.self_scores_,
                **member_states(self.members_)}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.members_ = self._make_members()
        set_member_states(self.members_, state)
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.std_ = np.asarray(state["std"], dtype=np.float64)
        self.self_scores_ = np.asarray(state["self_scores"], dtype=np.float64)
        self.n_features_in_ = (getattr(self.members_[0], "n_features_in_", None)
                               if self.members_ else None)
        self.fitted_ = True
        return self
