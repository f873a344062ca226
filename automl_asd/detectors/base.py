"""The detector contract (scikit-learn style) and its parameter schema.

A detector learns from the features of normal training clips only and scores test clips:
higher score = more anomalous. ``__init__`` only stores parameters; ``fit`` returns ``self``;
learned attributes end in ``_``; scoring before ``fit`` raises ``NotFittedError``.
A fitted detector exposes its learned state as plain arrays (``get_state``/``set_state``) so
that it can be saved without pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.components.params import NotFittedError, Parameterized, ParamSpec

__all__ = ["ParamSpec", "TrainSet", "Detector", "NotFittedError"]


@dataclass(frozen=True)
class TrainSet:
    """Features and metadata of the clips a detector is fitted on.

    ``features[i]`` is the ``(n_frames_i, n_bins)`` float32 feature matrix of clip i (lengths may
    differ). ``domains[i]`` is ``"source"`` or ``"target"``; ``attributes[i]`` the attribute
    string (``"noAttribute"`` when hidden); ``sections[i]`` e.g. ``"00"``; ``machine_types[i]``
    the clip's machine type (several when a model is shared over machine types).
    """

    features: Sequence[NDArray[np.float32]]
    domains: NDArray[np.str_]
    attributes: NDArray[np.str_]
    sections: NDArray[np.str_]
    machine_types: NDArray[np.str_]
    names: NDArray[np.str_] = field(default_factory=lambda: np.array([], dtype=str))

    def __len__(self) -> int:
        return len(self.features)


class Detector(Parameterized, ABC):
    """Base class of every registered detector family. ``name``, ``params``, ``test_params``,
    ``__init__`` and ``get_params`` as in :class:`~automl_asd.components.params.Parameterized`."""

    #: Parameters that act only after the learned representation (e.g. the scoring backend);
    #: ``None``: the family has no cacheable learned representation
    #: (:mod:`automl_asd.representation_cache`).
    scoring_params: ClassVar[frozenset[str] | None] = None
    #: Parameters that change what a fit costs beyond its size (clips, epochs, members), e.g.
    #: which backends run: the search's cost estimate times one point per distinct setting of
    #: them before it times a setting twice (:func:`automl_asd.search.budget.cost_class`).
    cost_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def canonical_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with every schema parameter present (defaults filled in) and each one
        that cannot change this family's scores, given the others, set to its default.

        Two parameter sets with the same canonical form give the same scores: the search uses
        it to recognise a proposal it has already run (:meth:`Recipe.behaviour_hash`). The base
        class knows no inert parameter; a family with conditional parameters overrides it."""
        return {key: params.get(key, spec.default) for key, spec in cls.params.items()}

    @classmethod
    def min_frames(cls, params: Mapping[str, Any]) -> int:
        """Fewest feature frames a clip needs to be fitted on or scored with ``params``
        (checked for every clip before any fit, naming the short ones)."""
        del params
        return 1

    @classmethod
    def recipe_errors(cls, params: Mapping[str, Any], n_bins: int,
                      path: str = "detector.params") -> list[str]:
        """Problems of ``params`` given features of ``n_bins`` bins per frame, each
        ``"json.path: message"`` (the recipe parser raises them with its own); none here."""
        del params, n_bins, path
        return []

    @classmethod
    def cost_scale(cls, params: Mapping[str, Any], n_bins: int) -> float:
        """Relative work of a fit with ``params`` on features of ``n_bins`` bins per frame,
        against other points of the same cost class (:func:`automl_asd.search.budget.cost_class`):
        the search's cost estimate divides a timed point's constants by its scale and multiplies
        them by the scale of each point it costs. ``1.0`` (the base class): what a fit costs does
        not grow with the feature dimension beyond what the timed fits already see; a family
        whose work grows with it (a covariance over windows of frames) overrides this."""
        del params, n_bins
        return 1.0

    @abstractmethod
    def fit(self, train: TrainSet) -> Self:
        """Learn from normal training clips. Returns ``self``."""

    @abstractmethod
    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        """Anomaly score per clip, shape ``(n_clips,)``; higher = more anomalous."""

    # ------------------------------------------------------------------ optional hooks
    def set_device(self, device: str) -> None:
        """Run on ``device`` (resolved by the caller, ``"cpu"`` or ``"cuda[:N]"``). No-op for
        families that do not use torch; neural families override it."""
        del device

    def nearest_domain(
        self, features: Sequence[NDArray[np.float32]]
    ) -> NDArray[np.str_] | None:
        """The training domain (``"source"``/``"target"``) each clip is closest to, shape
        ``(n,)``, for per-domain score normalisation; ``None``: the family does not support it
        (clips are normalised with the global statistics)."""
        del features
        return None

    def score_with_domain(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_] | None]:
        """``(score_samples(features), nearest_domain(features))`` in one call.

        The same two arrays as the two methods; families whose domain comes from the same
        representation or distances as the score override it to compute them once (extract
        once, score many)."""
        return self.score_samples(features), self.nearest_domain(features)

    def self_scores(self, train: TrainSet) -> NDArray[np.float64]:
        """Scores of the training clips themselves, used for normalisation and thresholds.

        Families whose plain training scores are biased (e.g. kNN, where a clip is its own
        neighbour) override this with a leave-one-out or held-out variant.
        """
        return self.score_samples(train.features)

    # ------------------------------------------------------------------ shared stage
    # A family may learn part of its model once over all machine types of a run (e.g. one
    # embedding network trained on every type's training clips). ``pipeline.fit_shared`` then
    # calls ``fit_shared`` once per ensemble member on the pooled TrainSet, and every machine
    # type's detector receives that state through ``use_shared`` before its own ``fit``.

    def needs_shared(self) -> bool:
        """Whether ``fit`` needs a state from :meth:`fit_shared` (``use_shared``) first."""
        return False

    def fit_shared(self, train: TrainSet) -> dict[str, NDArray[Any]]:
        """Learn the shared part on the training clips of several machine types; return it as
        named plain arrays."""
        raise NotImplementedError(f"{self.name} has no shared stage")

    def use_shared(self, state: dict[str, NDArray[Any]]) -> None:
        """Adopt a state produced by :meth:`fit_shared` (before ``fit``)."""
        raise NotImplementedError(f"{self.name} has no shared stage")

    # ------------------------------------------------------------------ representation cache
    def representation_state(self) -> dict[str, NDArray[Any]]:
        """After ``fit``: the learned representation as named plain arrays (families with
        ``scoring_params`` only)."""
        raise NotImplementedError(f"{self.name} has no cacheable representation")

    def fit_with_representation(self, state: dict[str, NDArray[Any]], train: TrainSet) -> Self:
        """``fit`` with the representation taken from ``state`` instead of learned; must give
        byte-identical scores to a plain ``fit``."""
        raise NotImplementedError(f"{self.name} has no cacheable representation")

    @abstractmethod
    def get_state(self) -> dict[str, NDArray[Any]]:
        """Fitted state as named plain arrays (network weights flattened per tensor)."""

    @abstractmethod
    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        """Restore a state produced by ``get_state`` on an identically configured detector."""
