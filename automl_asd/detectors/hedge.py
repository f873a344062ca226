"""Hedging family: label-free fusion of several backends over several views of the features.

The recipe's feature matrix ``(n_frames, n_bins)`` of a clip is turned into one or more
*views*, each a different time-frequency resolution or statistic of the same sound:

- ``fine``: the frames as computed (e.g. log-mel, n_fft 1024 / hop 512);
- ``coarse``: ``coarse_frames`` consecutive frames averaged and ``coarse_bands`` adjacent bins
  averaged (with 1024/512 log-mel and 8 frames: a 4096-sample hop, ~0.26 s at 16 kHz, and half
  the bands), so slow modulation (operating cycles, strokes) shapes its statistics;
- ``delta``: absolute frame-to-frame differences (how impulsive each band is).

Every (view, backend) pair is one member: pooled statistics of the view (``pooling``, unless
the member names its own), standardised on the training clips, scored by the backend with fixed
parameters (``MEMBER_BACKENDS``: the registry defaults, Euclidean kNN, or a Mahalanobis distance
with one covariance pooled over both domains; the same path as
:class:`~automl_asd.detectors.embedding.PooledStatsDetector`). Each member's scores are
z-normalised by the mean and standard deviation of its own out-of-sample training self-scores
and the z-scores are combined by a fixed rule (``mean``, ``median``, ``min`` or ``max``). No
labels and no per-machine choice: a hedge that is never far from its best member, whichever
member that is on a given machine.

A member of ``MEMBER_BACKENDS`` may also carry its own ``pooling``, ``standardize``,
``domain_rule`` and ``normalization`` (a :data:`~automl_asd.calibration.NORMALIZATION_METHODS`
method), or instead name another detector ``family`` with its ``params`` (the frame-level
Gaussian of :mod:`~automl_asd.detectors.frame_gaussian`): such a member is a whole
single-detector recipe — its scores are first normalised per
domain by its own self-scores (the test clip's domain from that member, as the pipeline does
for a single detector) and only then z-scored and combined. ``mahalanobis_logz`` +
``knn_detrended_z`` fuses the two families behind ``searched_pooled_logz`` and ``knn_detrended``
this way.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from automl_asd.backends.fusion import combine_members, member_states, set_member_states
from automl_asd.calibration import DomainNormalizer, spread_scale
from automl_asd.detectors.base import Detector, ParamSpec, TrainSet
from automl_asd.detectors.embedding import POOLINGS, PooledStatsDetector
from automl_asd.detectors.registry import get_detector_class, make_detector, register

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
    # Whole single-detector recipes as members, each normalised per domain before the fusion:
    # searched_pooled_logz's detector (raw pooled mean+std, pooled-covariance Mahalanobis,
    # domain from the backend, log z-scores per domain) and knn_detrended's.
    "mahalanobis_logz": {"name": "mahalanobis", "params": {
        "covariance": "empirical", "target_covariance": "pooled", "ridge": 0.008},
        "pooling": "mean_std", "standardize": False, "domain_rule": "backend",
        "normalization": "domain_log_zscore"},
    "knn_detrended_z": {"name": "knn", "params": {"n_centers": 16, "k": 1, "metric": "euclidean"},
                        "pooling": "detrended_mean_std_dstd", "normalization": "domain_zscore"},
    # fast_default's detector (kNN on pooled mean/std/max, z-scores per domain): the hand-set
    # recipe that led on real machine audio while the log-z Mahalanobis led on synthetic types.
    "knn_fast_z": {"name": "knn", "params": {"n_centers": 16, "k": 1, "metric": "euclidean"},
                   "pooling": "mean_std_max", "normalization": "domain_zscore"},
    # A member of another detector family (``family``: a registered detector, ``params`` its
    # parameters): the frame-level Gaussian on 16-frame windows of 4-bin bands, log z-scores
    # per domain.
    "frame_gaussian_logz": {"family": "frame_gaussian", "params": {
        "context": 16, "band_pool": 4, "ridge": 0.01}, "normalization": "domain_log_zscore"},
    # The modulation spectrum (how fast each band's level moves), pooled-covariance
    # Mahalanobis, log z-scores per domain.
    "modulation_logz": {"name": "mahalanobis", "params": {
        "covariance": "empirical", "target_covariance": "pooled", "ridge": 0.05},
        "pooling": "modulation", "standardize": True, "domain_rule": "backend",
        "normalization": "domain_log_zscore"},
}
#: Detector parameters a MEMBER_BACKENDS entry may set for its member (besides the backend's
#: ``name`` and ``params``, and its own ``normalization``); the hedge's ``pooling`` and
#: ``standardize: true`` otherwise.
_MEMBER_DETECTOR_KEYS = ("pooling", "standardize", "domain_rule")
#: Allowed member backend sets ("+"-joined keys of MEMBER_BACKENDS).
BACKEND_SETS = (
    "knn+mahalanobis+local_density",
    "mahalanobis+mahalanobis_pooled",
    "mahalanobis_logz+knn_detrended_z",
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
    "mahalanobis_logz",
    "knn_detrended_z",
    "mahalanobis_logz+frame_gaussian_logz",
    "mahalanobis_logz+knn_detrended_z+frame_gaussian_logz",
    "frame_gaussian_logz",
    "modulation_logz",
    "mahalanobis_logz+frame_gaussian_logz+modulation_logz",
    "mahalanobis_logz+modulation_logz",
    "mahalanobis_logz+frame_gaussian_logz+knn_fast_z",
    "mahalanobis_logz+knn_fast_z",
)
COMBINES = ("mean", "median", "min", "max")

#: Bytes of fitted members and member scores a search trial's process keeps
#: (:class:`_MemberMemo`, turned on by :func:`enable_member_memo`; off elsewhere: ``apply``
#: fits each member once). ``$AUTOML_ASD_HEDGE_MEMO_MB`` overrides it, 0 turns the memo off.
MEMO_BYTES = 256 * 2**20


class _MemberMemo:
    """Fitted hedge members and their scores, by content, in this process (an LRU bounded by
    bytes). Search trials that differ only in what follows a member (other views or members
    beside it, the combination rule, the score normalisation) rebuild the same member on the
    same clips: a frame-level Gaussian member costs most of such a trial. A member's result
    is a pure function of its class and parameters, its seed, and the exact bytes of its
    training view (and domains, names, ...) or of the clips it scores, and the key is a sha256
    of all of them, so a hit returns the very arrays a refit would compute (same process,
    same BLAS threads)."""

    def __init__(self, max_bytes: int) -> None:
        #: what :func:`enable_member_memo` set (0: off), unless the environment overrides it
        self.configured = max_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def limit(self) -> int:
        """The memo's size in bytes: ``$AUTOML_ASD_HEDGE_MEMO_MB`` when set (a bad value is
        ignored), else what :func:`enable_member_memo` set (0: off)."""
        env = os.environ.get("AUTOML_ASD_HEDGE_MEMO_MB", "").strip()
        try:
            return max(0, int(float(env) * 2**20)) if env else self.configured
        except ValueError:
            return self.configured

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, value: Any, nbytes: int) -> None:
        max_bytes = self.limit()
        if nbytes > max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > max_bytes:
                self._bytes -= self._items.popitem(last=False)[1][1]


_MEMO = _MemberMemo(0)


def enable_member_memo(max_bytes: int = MEMO_BYTES) -> None:
    """Keep fitted hedge members in this process (search trials: trials that differ only in
    what follows a member refit the same member on the same clips); 0 turns it off."""
    _MEMO.configured = max(0, int(max_bytes))


def _digest_arrays(h: Any, arrays: Sequence[Any]) -> None:
    """Feed each array's dtype, shape and bytes into the hash ``h``."""
    for a in arrays:
        x = np.ascontiguousarray(a)
        h.update(f"|{x.dtype.str}{x.shape}|".encode())
        h.update(x.data.cast("B") if x.size else b"")


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 64


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
    cost_params = ("backends",)
    views: str
    backends: str
    combine: str
    pooling: str
    coarse_frames: int
    coarse_bands: int

    @classmethod
    def canonical_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults for the parameters that cannot act: ``coarse_frames`` / ``coarse_bands``
        without a ``coarse`` view, ``pooling`` when every member brings its own (or is another
        family), ``combine`` with a single member; with two members ``median`` is written
        ``mean`` (the median of two values is their mean, bit for bit)."""
        out = super().canonical_params(params)
        views = str(out["views"]).split("+")
        backends = str(out["backends"]).split("+")
        inert = set()
        if "coarse" not in views:
            inert |= {"coarse_frames", "coarse_bands"}
        if all("pooling" in MEMBER_BACKENDS[b] or "family" in MEMBER_BACKENDS[b]
               for b in backends if b in MEMBER_BACKENDS):
            inert.add("pooling")
        n_members = len(views) * len(backends)
        if n_members == 1:
            inert.add("combine")
        out = {k: cls.params[k].default if k in inert else v for k, v in out.items()}
        if n_members == 2 and out["combine"] == "median":
            out["combine"] = "mean"
        return out

    @classmethod
    def cost_scale(cls, params: Mapping[str, Any], n_bins: int) -> float:
        """The summed cost scales of the members that are other detector families (e.g. the
        frame-level Gaussian, whose work grows faster than its window's size), each on its
        view's bins (a ``coarse`` view averages ``coarse_bands`` bins and ``coarse_frames``
        frames); 1.0 for a hedge of pooled-statistics members only (they cost about the same
        at any feature dimension the spaces use)."""
        p = cls.canonical_params(params)
        total = 0.0
        for view in str(p["views"]).split("+"):
            bins, frames = n_bins, 1.0
            if view == "coarse":
                bins = max(1, n_bins // int(p["coarse_bands"]))
                frames = 1.0 / int(p["coarse_frames"])
            for backend in str(p["backends"]).split("+"):
                spec = MEMBER_BACKENDS.get(backend, {})
                if "family" in spec:
                    member = get_detector_class(str(spec["family"]))
                    total += frames * member.cost_scale(spec["params"], bins)
        return total if total > 0.0 else 1.0

    def _pairs(self) -> list[tuple[str, str]]:
        return [(v, b) for v in self.views.split("+") for b in self.backends.split("+")]

    def _make_members(self) -> list[Detector]:
        out: list[Detector] = []
        for i, (_, backend) in enumerate(self._pairs()):
            spec = MEMBER_BACKENDS[backend]
            seed = self.seed + 7919 * i
            if "family" in spec:
                out.append(make_detector(str(spec["family"]), dict(spec["params"]), seed))
                continue
            own = {k: spec[k] for k in _MEMBER_DETECTOR_KEYS if k in spec}
            out.append(PooledStatsDetector(seed=seed,
                                           **{"pooling": self.pooling, "standardize": True,
                                              **own},
                                           backend={"name": spec["name"],
                                                    "params": dict(spec["params"])}))
        return out

    def _member_ids(self) -> list[str]:
        """Per member, what it is besides its data: its spec, the hedge's pooling it may use,
        its seed, its view (its parameters are in the view's bytes) and this module's memo
        layout."""
        out = []
        for i, (view, backend) in enumerate(self._pairs()):
            out.append(json.dumps({"memo": 1, "spec": MEMBER_BACKENDS[backend],
                                   "pooling": self.pooling, "seed": self.seed + 7919 * i,
                                   "view": view}, sort_keys=True, default=str))
        return out

    @staticmethod
    def _view_digests(views: Mapping[str, Sequence[NDArray[np.float32]]],
                      extra: Sequence[Any] = ()) -> dict[str, str]:
        """sha256 per view of its feature matrices (and of ``extra`` arrays)."""
        out = {}
        for v, feats in views.items():
            h = hashlib.sha256()
            _digest_arrays(h, feats)
            _digest_arrays(h, [np.asarray(e).astype(str) for e in extra])
            out[v] = h.hexdigest()
        return out

    def _member_norms(self) -> list[str | None]:
        """Per member, its own per-domain normalisation method (``None``: none)."""
        return [MEMBER_BACKENDS[b].get("normalization") for _, b in self._pairs()]

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
        self.norms_: list[DomainNormalizer | None] = []
        own = []
        domains = np.asarray(train.domains).astype(str)
        memo = _MEMO.limit() > 0
        digests = self._view_digests(views, [train.domains, train.attributes, train.sections,
                                             train.machine_types, train.names]) if memo else {}
        self.member_keys_: list[str | None] = []
        for (view, _), member, method, ident in zip(self._pairs(), self.members_,
                                                    self._member_norms(), self._member_ids(),
                                                    strict=True):
            key = (hashlib.sha256(f"fit\0{ident}\0{digests[view]}".encode()).hexdigest()
                   if memo else None)
            self.member_keys_.append(key)
            known = _MEMO.get(key) if key is not None else None
            if known is not None:
                state, known_scores = known
                member.set_state(dict(state))
                scores = np.array(known_scores)
            else:
                sub = TrainSet(views[view], train.domains, train.attributes, train.sections,
                               train.machine_types, train.names)
                member.fit(sub)
                scores = member.self_scores(sub)
                if key is not None:
                    value = (member.get_state(), np.array(scores))
                    _MEMO.put(key, value, _nbytes(value))
            norm = None if method is None else DomainNormalizer.fit(method, scores, domains)
            self.norms_.append(norm)
            own.append(scores if norm is None else norm.transform(scores, domains))
        raw = np.stack(own, axis=1)
        self.mean_ = raw.mean(axis=0)
        self.std_ = spread_scale(self.mean_, raw.std(axis=0))
        self.self_scores_ = combine_members((raw - self.mean_) / self.std_, self.combine)
        self.n_train_ = len(train)
        self.fitted_ = True
        return self

    def member_scores(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        """Member scores ``(n_clips, n_members)`` in member order (views outer, backends
        inner): raw, or normalised per domain for a member with its own ``normalization``."""
        return self._member_scores(features, first_domain=False)[0]

    def _member_scores(self, features: Sequence[NDArray[np.float32]], *, first_domain: bool
                       ) -> tuple[NDArray[np.float64], NDArray[np.str_] | None]:
        """Member scores and, with ``first_domain``, the first member's nearest domains; a
        member's score and domain come from one pass (``score_with_domain``) where both are
        needed."""
        self._check_fitted()
        if len(features) == 0:  # no clips: no scores (found 2026-12-07: np.stack raised)
            return np.zeros((0, len(self.members_))), (
                np.zeros(0, dtype=np.str_) if first_domain else None)
        views = self._views(features)
        keys: list[str | None] = list(getattr(self, "member_keys_", None)
                                      or [None] * len(self.members_))
        digests = self._view_digests(views) if any(k is not None for k in keys) else {}
        cols = []
        first: NDArray[np.str_] | None = None
        for i, ((v, _), m, norm, fit_key) in enumerate(zip(self._pairs(), self.members_,
                                                           self.norms_, keys, strict=True)):
            with_domain = not (norm is None and not (first_domain and i == 0))
            key = (None if fit_key is None else hashlib.sha256(
                f"score\0{fit_key}\0{int(with_domain)}\0{digests[v]}".encode()).hexdigest())
            known = _MEMO.get(key) if key is not None else None
            if known is not None:
                raw = np.array(known[0])
                domains = None if known[1] is None else np.array(known[1])
            elif not with_domain:
                raw, domains = m.score_samples(views[v]), None
            else:
                raw, domains = m.score_with_domain(views[v])
            if known is None and key is not None:
                value = (np.array(raw), None if domains is None else np.array(domains))
                _MEMO.put(key, value, _nbytes(value))
            if not with_domain:
                cols.append(raw)
                continue
            if i == 0:
                first = domains
            cols.append(raw if norm is None else norm.transform(raw, domains))
        return np.stack(cols, axis=1), first

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        raw = self.member_scores(features)
        return combine_members((raw - self.mean_) / self.std_, self.combine)

    def score_with_domain(self, features: Sequence[NDArray[np.float32]]
                          ) -> tuple[NDArray[np.float64], NDArray[np.str_] | None]:
        """Fused scores and the first member's nearest domains, every member scored once."""
        raw, first = self._member_scores(features, first_domain=True)
        return combine_members((raw - self.mean_) / self.std_, self.combine), first

    def self_scores(self, train: TrainSet) -> NDArray[np.float64]:
        """Fused out-of-sample self-scores when ``train`` is the fitted set."""
        self._check_fitted()
        if len(train) == self.n_train_:
            return np.asarray(self.self_scores_, dtype=np.float64)
        return self.score_samples(train.features)

    def nearest_domain(self, features: Sequence[NDArray[np.float32]]
                       ) -> NDArray[np.str_] | None:
        """Domain of the nearest training clip in the first member's embedding space."""
        self._check_fitted()
        first = self._pairs()[0][0]
        return self.members_[0].nearest_domain(self._view(features, first))

    def get_state(self) -> dict[str, NDArray[Any]]:
        self._check_fitted()
        state = {"mean": self.mean_, "std": self.std_, "self_scores": self.self_scores_,
                 "n_train": np.asarray(self.n_train_), **member_states(self.members_)}
        for i, norm in enumerate(self.norms_):
            if norm is not None:
                state.update({f"norm{i}.{k}": v for k, v in norm.get_state().items()})
        return state

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        self.member_keys_ = [None] * len(self._pairs())  # restored: scored without the memo
        self.members_ = self._make_members()
        set_member_states(self.members_, state)
        self.norms_ = []
        for i, method in enumerate(self._member_norms()):
            prefix = f"norm{i}."
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            self.norms_.append(None if method is None
                               else DomainNormalizer.from_state(method, sub))
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.std_ = np.asarray(state["std"], dtype=np.float64)
        self.self_scores_ = np.asarray(state["self_scores"], dtype=np.float64)
        self.n_train_ = int(state["n_train"])
        self.fitted_ = True
        return self
