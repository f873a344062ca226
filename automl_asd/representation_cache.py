"""Extract once, score many: a cache of the learned representation of a recipe.

Many search trials differ only in what happens *after* the expensive part of a recipe: the
scoring backend, the domain rule, the score normalisation, the threshold, the ensemble
combination. The expensive part — the *representation* — is the trained network of a network
family (``dcase_ae``: the autoencoder and its residual covariances; ``margin_cnn``: the
embedding network, per machine type or in the shared stage). It is stored on disk under
``<cache_dir>/representations/`` and keyed by a content hash of exactly what determines it:

* the representation parameters: the feature spec, the detector family and every detector
  parameter except the family's ``scoring_params`` (:attr:`Detector.scoring_params`), and the
  supplemental-data settings (they change the training clips and the noise mixing);
* the data fingerprint: ``(path, size, mtime_ns)`` of the training (and noise) clips used;
* the fidelity and the member's derived seed (``recipe.seed``, machine type, member index);
* the kind of device that trains it (``cpu`` or ``cuda``: a GPU trains with other kernels, in
  bf16 under ``amp``), so a CUDA run never reuses a network a CPU run trained, or the reverse.

Nothing else enters the key (normalisation, threshold, ensemble size/combine, backend, name,
description, provenance do not), so a trial that changes only those reuses the stored network
and costs seconds. A reused representation gives byte-identical scores to a cold one: the
stored arrays are the trained weights themselves
(``tests/unit/features/test_representation_cache.py``).
Families without a learned representation (``pooled_stats``: pooled statistics of cached
features) are not cached here; their features are cached by :mod:`automl_asd.features`.

:func:`at_fidelity` gives network families a cheap budget knob beside the clip fraction: at
fidelity ``f < 1`` (ASHA's lower rungs) a family with an ``epochs`` parameter trains
``max(1, round(f * epochs))`` epochs.

Pure library code (no Ray).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.caches import representation_file, representation_tmp_file
from automl_asd.components.files import mark_used
from automl_asd.detectors import get_detector_class
from automl_asd.environment import cache_write_failed, default_cache_dir, verify_audio_default
from automl_asd.io.results import files_fingerprint

if TYPE_CHECKING:
    from automl_asd.data import Clip
    from automl_asd.detectors import Detector, TrainSet
    from automl_asd.recipe import Recipe

__all__ = [
    "REPRESENTATION_VERSION",
    "CacheStats",
    "RepresentationCache",
    "at_fidelity",
    "data_fingerprint",
    "representation_fields",
    "representation_key",
    "shared_key",
    "device_kind",
    "caches_representation",
    "fit_member",
]

logger = logging.getLogger(__name__)

#: Bump when the stored state of a family changes meaning (old entries are then ignored).
REPRESENTATION_VERSION = 4  # 2: the device kind joined the key; 3: the CPU thread count;
# 4: that count sets BLAS's too (a version-3 entry of a Ray trial used 1 BLAS thread whatever it)


def at_fidelity(recipe: Recipe, fidelity: float) -> Recipe:
    """``recipe`` with ``epochs`` scaled to ``max(1, round(fidelity * epochs))`` for families
    that have an ``epochs`` parameter and ``fidelity < 1``; otherwise ``recipe`` itself."""
    epochs = recipe.detector.params.get("epochs")
    if fidelity >= 1.0 or not isinstance(epochs, int) or isinstance(epochs, bool):
        return recipe

    scaled = max(1, int(round(fidelity * epochs)))
    if scaled == epochs:
        return recipe
    params = {**dict(recipe.detector.params), "epochs": scaled}
    return replace(recipe, detector=replace(recipe.detector, params=params))


def caches_representation(recipe: Recipe) -> bool:
    """Whether the recipe's family declares a cacheable representation."""
    return get_detector_class(recipe.detector.name).scoring_params is not None


def data_fingerprint(clips: Sequence[Clip | Path | str]) -> str:
    """:func:`~automl_asd.io.results.files_fingerprint` of the clips' files, keyed like the
    feature cache (``stat`` with inode and ctime, or a digest of each clip's bytes under
    ``$AUTOML_ASD_VERIFY_AUDIO``): a changed file, or a different clip set, gives a different
    fingerprint."""
    return files_fingerprint(
        (Path(c) if isinstance(c, str | Path) else Path(c.path) for c in clips),
        content=verify_audio_default())


def representation_fields(recipe: Recipe) -> dict[str, Any]:
    """The recipe fields that determine the representation (see the module docstring)."""
    cls = get_detector_class(recipe.detector.name)
    skip = cls.scoring_params or frozenset()
    d = recipe.to_dict()
    return {
        "features": d["features"],
        "detector": {"name": d["detector"]["name"],
                     "params": {k: v for k, v in d["detector"]["params"].items()
                                if k not in skip}},
        # the noise SNR range is inert when no clip is mixed with noise
        "supplemental": asdict(recipe.supplemental.canonical()),
    }


def _digest(doc: Mapping[str, Any]) -> str:
    blob = json.dumps(dict(doc), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def device_kind(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` from a resolved device (``"cuda:1"`` -> ``"cuda"``)."""
    kind = device.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: expected cpu or cuda[:N] (resolve 'auto' first)")
    return kind


def training_threads(device: str, threads: int | None = None) -> int:
    """The torch intra-op thread count a representation is trained with on CPU (``threads``,
    default the current count; 0 on CUDA, where it does not apply): part of every key,
    because float sums taken in another order train another network (the official AE's
    scores moved by up to 6 % between 1 and 2 threads), so a network stored by a 1-CPU trial
    must not answer a 2-CPU one."""
    if device_kind(device) != "cpu":
        return 0
    if threads is not None:
        return int(threads)
    import torch  # noqa: PLC0415  (heavy third-party, loaded when used)

    return int(torch.get_num_threads())


def trained_on(recipe: Recipe, device: str) -> str:
    """The device ``recipe``'s network trains on when the caller resolved ``device``: a family
    whose ``device`` parameter fixes one (``margin_cnn``'s ``cpu`` / ``cuda``) trains there
    whatever the caller asked (found 2026-12-07: keyed by the caller's device, a network a
    recipe trained on CPU was stored as a GPU one, without its thread count)."""
    fixed = recipe.detector.params.get("device")
    return fixed if fixed in ("cpu", "cuda") else device


def representation_key(recipe: Recipe, *, member_seed: int, fingerprint: str,
                       fidelity: float, device: str = "cpu", threads: int | None = None) -> str:
    """Cache key of one ensemble member's per-machine representation (``threads``: the
    training thread count, default :func:`training_threads` now)."""
    device = trained_on(recipe, device)
    return _digest({"v": REPRESENTATION_VERSION, "kind": "member",
                    "fields": representation_fields(recipe), "seed": int(member_seed),
                    "data": fingerprint, "fidelity": float(fidelity),
                    "device": device_kind(device),
                    "threads": training_threads(device, threads)})


def shared_key(recipe: Recipe, *, fingerprint: str, fidelity: float,
               device: str = "cpu", threads: int | None = None) -> str:
    """Cache key of the shared stage (one network per member over every machine type). The
    stage trains every member at once, so the ensemble size is part of this key."""
    device = trained_on(recipe, device)
    return _digest({"v": REPRESENTATION_VERSION, "kind": "shared",
                    "fields": representation_fields(recipe), "seed": int(recipe.seed),
                    "size": int(recipe.ensemble.size), "data": fingerprint,
                    "fidelity": float(fidelity), "device": device_kind(device),
                    "threads": training_threads(device, threads)})


@dataclass
class CacheStats:
    """Hits, misses and seconds spent building representations (misses) in this process."""

    hits: int = 0
    misses: int = 0
    build_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"hits": float(self.hits), "misses": float(self.misses),
                "build_s": self.build_s}


@dataclass
class RepresentationCache:
    """Representations on disk (``<root>/representations/<family>/<key>.npz``, pickle-free,
    written atomically; a read sets the file's mtime, its last use for ``cache prune``) with a
    small in-process LRU in front.

    ``root``: the feature cache root (``None``: :func:`features.default_cache_dir`).
    ``device``: the resolved device the representations are trained on (part of every key).
    """

    root: Path | None = None
    device: str = "cpu"
    memory_items: int = 8
    stats: CacheStats = field(default_factory=CacheStats)
    _memory: OrderedDict[str, dict[str, NDArray[Any]]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = default_cache_dir()
        self.root = Path(self.root)
        self.device = device_kind(self.device)

    def _path(self, family: str, key: str) -> Path:
        assert self.root is not None
        return representation_file(self.root, family, key)

    def get(self, family: str, key: str) -> dict[str, NDArray[Any]] | None:
        """The stored state or ``None``; an unreadable entry is discarded with a warning."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        path = self._path(family, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                state = {name: np.array(npz[name]) for name in npz.files}
        except FileNotFoundError:  # removed since is_file() (`cache prune`): a plain miss
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            # a damaged entry (a torn write, a flipped byte: the zip's CRC catches it) is
            # discarded and rebuilt, never fatal to the evaluations that would use it
            logger.warning("representation cache entry %s is unusable (%s); retraining",
                           path, exc)
            path.unlink(missing_ok=True)
            return None
        mark_used(path)  # its last use, for `cache prune`
        self._remember(key, state)
        return state

    def put(self, family: str, key: str, state: Mapping[str, NDArray[Any]]) -> None:
        """Store ``state`` (best effort: a write failure is logged, never raised)."""
        plain = {k: np.asarray(v) for k, v in state.items()}
        self._remember(key, plain)
        path = self._path(family, key)
        tmp = representation_tmp_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                save: Any = np.savez  # numpy's stub types **kwds as allow_pickle's bool
                save(fh, **plain)
                fh.flush()
                os.fsync(fh.fileno())  # a crash leaves the old entry or the whole new one
            os.replace(tmp, path)
        except OSError as exc:
            assert self.root is not None
            tmp.unlink(missing_ok=True)  # first: the free space logged is what is left
            cache_write_failed(logger, self.root, "representation", path, exc)
        except BaseException:  # Ctrl+C mid-write: no stray temporary file left behind
            tmp.unlink(missing_ok=True)
            raise

    def _remember(self, key: str, state: dict[str, NDArray[Any]]) -> None:
        with self._lock:
            self._memory[key] = state
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    def shared(self, recipe: Recipe, fingerprint: str, fidelity: float,
               build: Callable[[], list[dict[str, NDArray[Any]]]], *,
               threads: int | None = None) -> list[dict[str, NDArray[Any]]]:
        """The shared-stage states for ``recipe`` (built by ``build`` on a miss); ``threads``:
        the torch threads ``build`` trains with (default: the caller's current count)."""
        key = shared_key(recipe, fingerprint=fingerprint, fidelity=fidelity,
                         device=self.device, threads=threads)
        family = recipe.detector.name
        stored = self.get(family, key)
        if stored is not None:
            self.stats.hits += 1
            n = int(stored["n_members"])
            return [{k.split(".", 1)[1]: v for k, v in stored.items()
                     if k.startswith(f"m{i}.")} for i in range(n)]
        t0 = time.perf_counter()
        states = build()
        self.stats.misses += 1
        self.stats.build_s += time.perf_counter() - t0
        flat: dict[str, NDArray[Any]] = {"n_members": np.asarray(len(states), dtype=np.int64)}
        for i, st in enumerate(states):
            flat.update({f"m{i}.{k}": v for k, v in st.items()})
        self.put(family, key, flat)
        return states


def fit_member(det: Detector, train: TrainSet, cache: RepresentationCache | None, *,
               recipe: Recipe, member_seed: int, clips: Sequence[Clip],
               fidelity: float) -> None:
    """``det.fit(train)``, reusing the member's stored representation when there is one.

    ``clips``: every clip the member's training data comes from (train + noise clips), for the
    data fingerprint. Without a cache, or for a family without a cacheable representation (or
    one whose representation comes from the shared stage), this is plain ``det.fit(train)``.
    """
    if cache is None or type(det).scoring_params is None or det.needs_shared():
        det.fit(train)
        return
    key = representation_key(recipe, member_seed=member_seed,
                             fingerprint=data_fingerprint(clips), fidelity=fidelity,
                             device=cache.device)
    state = cache.get(det.name, key)
    if state is not None:
        cache.stats.hits += 1
        det.fit_with_representation(state, train)
        return
    t0 = time.perf_counter()
    det.fit(train)
    cache.stats.misses += 1
    cache.stats.build_s += time.perf_counter() - t0
    cache.put(det.name, key, det.representation_state())
