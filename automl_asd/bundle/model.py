"""Load a saved model bundle and score new recordings with it, without the training data.

The format (files, manifest, safety checks) is described in :mod:`automl_asd.bundle.format`;
:func:`load_bundle` reads the files (:mod:`.files`), verifies them against the manifest and
rebuilds the fitted machine (:mod:`.state`). Arrays holding NaN/inf, zero-variance normalisers
and ``.npy`` headers declaring more data than the file holds are refused, and
:meth:`Bundle.score` raises :class:`NonFiniteScoreError` naming a clip that scores NaN/inf
(never a silent "normal"). Clips are decoded by :mod:`automl_asd.audio` and turned into
features by :func:`automl_asd.features.compute`, exactly as ``apply`` did.

Example::

    from automl_asd import load_bundle
    bundle = load_bundle("out/models/fan")
    result = bundle.score(["new/clip_0001.wav", waveform])   # paths or float32 arrays
    result.scores, result.decisions
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.audio import (
    AudioError,
    downmix,
    load_downmixed,
    load_wav,
    pcm_to_float,
    resample_wave,
    warn_beyond_full_scale,
    wav_info,
)
from automl_asd.bundle.files import read_bundle_files
from automl_asd.bundle.format import BundleError, verify_bundle_files
from automl_asd.bundle.state import fitted_from_files
from automl_asd.components.device import default_workers, keep_torch_threads, one_torch_thread
from automl_asd.errors import AutomlAsdError
from automl_asd.features import FeatureSpec, compute
from automl_asd.pipeline import FittedMachine, check_clip_frames, score_clips
from automl_asd.recipe import Recipe

__all__ = [
    "BundleScores",
    "Bundle",
    "NonFiniteScoreError",
    "check_finite_scores",
    "load_bundle",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundleScores:
    """Scores of a batch of clips, aligned with ``names``.

    ``scores``: ``(n,)`` float64, higher = more anomalous (normalised as in ``apply``);
    ``decisions``: ``(n,)`` int8, 1 = anomaly (``score > threshold``).
    """

    names: tuple[str, ...]
    scores: NDArray[np.float64]
    decisions: NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.names)

    def rows(self) -> Iterator[tuple[str, float, int]]:
        """``(name, score, decision)`` per clip."""
        for n, s, d in zip(self.names, self.scores, self.decisions, strict=True):
            yield n, float(s), int(d)



class Bundle:
    """A loaded, verified model bundle of one machine type; see :func:`load_bundle`."""

    def __init__(self, path: Path, manifest: dict[str, Any], fitted: FittedMachine) -> None:
        self.path = path
        self.manifest = manifest
        self.fitted = fitted

    @classmethod
    def from_files(
        cls,
        files: Mapping[str, bytes],
        where: str | Path,
        *,
        device: str = "auto",
        strict_versions: bool = True,
    ) -> Bundle:
        """Verify and build a bundle from its files (``read_bundle_files``); ``where`` names
        it in messages. Used to ship a bundle to Ray workers as bytes."""
        p = Path(where)
        manifest = verify_bundle_files(files, p, strict_versions=strict_versions)
        fitted = fitted_from_files(files, manifest, p, device)
        _self_test(fitted, p)
        logger.info("loaded bundle %s: %s, recipe %s (%s), %d member(s) on %s", p,
                    fitted.machine_type, fitted.recipe.name, str(manifest["recipe_hash"])[:12],
                    len(fitted.members), fitted.device)
        return cls(p, manifest, fitted)

    # -- facts
    @property
    def recipe(self) -> Recipe:
        return self.fitted.recipe

    @property
    def feature_spec(self) -> FeatureSpec:
        return self.fitted.recipe.features

    @property
    def machine_type(self) -> str:
        return self.fitted.machine_type

    @property
    def threshold(self) -> float:
        return self.fitted.threshold

    @property
    def device(self) -> str:
        return self.fitted.device

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, machine_type={self.machine_type!r}, "
                f"recipe={self.recipe.name!r}, members={len(self.fitted.members)}, "
                f"device={self.device!r})")

    # -- inputs
    def check_wav(self, path: str | Path, *, resample: bool = False) -> None:
        """Raise :class:`~automl_asd.audio.AudioError` when ``path``'s sample rate or channel
        count differs from the bundle's feature spec (and ``resample`` is off);
        ``FileNotFoundError`` for a missing file (found 2026-12-07: a missing file and a folder
        both read "cannot read wav header ... re-download or re-extract the file")."""
        p = Path(path)
        if p.is_dir():
            raise AudioError(f"{path}: is a folder, not a wav file")
        if not p.exists():
            raise FileNotFoundError(f"{path}: no such file")
        info = wav_info(path)
        rate = self.feature_spec.sample_rate
        if resample:
            return
        if info.channels != 1:
            raise AudioError(f"{path}: {info.channels} channels; bundle {self.machine_type} "
                             f"expects mono {rate} Hz clips (feature spec); convert it or pass "
                             "--resample (resample=True) to downmix")
        if info.sample_rate != rate:
            raise AudioError(f"{path}: {info.sample_rate} Hz; bundle {self.machine_type} expects "
                             f"{rate} Hz (feature spec); resample it or pass --resample "
                             "(resample=True)")

    def _load(self, path: Path, resample: bool) -> NDArray[np.float32]:
        self.check_wav(path, resample=resample)
        rate = self.feature_spec.sample_rate
        if not resample:
            return load_wav(path, sample_rate=rate)
        return load_downmixed(path, rate)

    def _features_one(self, item: str | Path | NDArray[Any], resample: bool,
                      sample_rate: int | None, index: int = 0) -> NDArray[np.float32]:
        if isinstance(item, (str, Path)):
            return self._features_of(item, resample, sample_rate)
        try:
            return self._features_of(item, resample, sample_rate)
        except (AudioError, ValueError) as exc:
            # which waveform of a batch (found 2026-12-07: "waveform of 100 samples is too
            # short", naming none); a path's errors name the file already
            raise AudioError(f"waveform {index} of the inputs: {exc}") from exc

    def _features_of(self, item: str | Path | NDArray[Any], resample: bool,
                     sample_rate: int | None) -> NDArray[np.float32]:
        spec = self.feature_spec
        if isinstance(item, (str, Path)):
            path = Path(item)
            wave = self._load(path, resample)
            try:
                return compute(wave, spec)
            except ValueError as exc:
                raise AudioError(f"{path}: {exc}") from exc
        raw = np.asarray(item)
        if raw.dtype.kind in "iu":
            # integer PCM, as soundfile/wave/scipy read it: to [-1, 1) as the file loader does
            # (scored unscaled, an int16 clip came out about 1000x more anomalous); 64-bit
            # integers are refused there
            arr = pcm_to_float(raw)
        elif raw.dtype.kind == "f":
            arr = raw.astype(np.float32, copy=False)
            if arr.ndim >= 1:
                warn_beyond_full_scale(arr, "waveform")
        else:
            raise AudioError(f"waveform of dtype {raw.dtype}: expected float samples in [-1, 1] "
                             "or integer PCM")
        if arr.ndim != 1:
            if not resample:
                raise AudioError(f"waveform of shape {arr.shape}: expected mono (n_samples,) "
                                 f"at {spec.sample_rate} Hz; pass resample=True to downmix "
                                 "(n_samples, channels) or (channels, n_samples)")
            if arr.ndim == 2 and arr.shape[0] <= _MAX_CHANNELS < arr.shape[1]:
                # torchaudio's layout, (channels, n_samples) (found 2026-12-07: a stereo clip
                # so shaped was "a waveform of 2 samples")
                arr = arr.T
            arr = downmix(arr)
        if sample_rate is not None and sample_rate != spec.sample_rate:
            if not resample:
                raise AudioError(f"waveform at {sample_rate} Hz: bundle {self.machine_type} "
                                 f"expects {spec.sample_rate} Hz; pass resample=True")
            arr = resample_wave(arr, sample_rate, spec.sample_rate)
        return compute(arr, spec)

    def features(
        self,
        inputs: Sequence[str | Path | NDArray[Any]],
        *,
        resample: bool = False,
        sample_rate: int | None = None,
        workers: int | None = None,
    ) -> list[NDArray[np.float32]]:
        """Feature matrices ``(n_frames, n_bins)`` for wav paths or waveforms, in input order.

        ``sample_rate`` is the rate of in-memory waveforms (default: the feature spec's);
        ``workers`` decode threads (default: usable cores — the Ray task's CPUs inside a task —
        at most 8).
        """
        items = _as_items(inputs)
        if not items:
            return []
        n = workers if workers is not None else min(8, default_workers())
        n = max(1, min(n, len(items)))
        if n == 1:
            return [self._features_one(x, resample, sample_rate, i) for i, x in enumerate(items)]
        with keep_torch_threads(), ThreadPoolExecutor(n, initializer=one_torch_thread) as pool:
            return list(pool.map(lambda ix: self._features_one(ix[1], resample, sample_rate,
                                                               ix[0]), enumerate(items)))

    # -- scoring
    def score_features(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
        """Scores ``(n,)`` and decisions ``(n,)`` of precomputed feature matrices."""
        n_bins = self.feature_spec.n_bins
        for i, f in enumerate(features):
            if f.ndim != 2 or f.shape[1] != n_bins:
                raise ValueError(f"features[{i}]: shape {f.shape}, bundle expects "
                                 f"(n_frames, {n_bins})")
        return score_clips(self.fitted, list(features))

    def score(
        self,
        inputs: Sequence[str | Path | NDArray[Any]] | str | Path | NDArray[Any],
        *,
        resample: bool = False,
        sample_rate: int | None = None,
        batch_size: int = 1024,
        workers: int | None = None,
    ) -> BundleScores:
        """Score wav paths and/or float32 waveforms ``(n_samples,)``, ``batch_size`` at a time.

        A clip whose sample rate or channel count differs from the feature spec raises
        :class:`~automl_asd.audio.AudioError` naming it, unless ``resample``. Names are the
        paths as given (``"<array i>"`` for waveforms).

        Scoring the clips ``apply`` scored (a machine type's test clips, path order) in one
        batch reproduces its scores bit for bit on CPU; other batchings agree to ~1e-14
        relative for the pooled families and to float32 precision (~1e-6) for the network
        ones (BLAS blocking depends on the batch shape). A 2-D array is refused (clips or
        channels?); integer arrays are PCM, scaled to [-1, 1) like a wav file.
        """
        items = _as_items(inputs)
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: must be >= 1")
        names = tuple(str(x) if isinstance(x, (str, Path)) else f"<array {i}>"
                      for i, x in enumerate(items))
        scores: list[NDArray[np.float64]] = []
        decisions: list[NDArray[np.int8]] = []
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            feats = self.features(chunk, resample=resample, sample_rate=sample_rate,
                                  workers=workers)
            check_clip_frames(self.recipe, names[start:start + batch_size], feats)
            s, d = self.score_features(feats)
            check_finite_scores(names[start:start + batch_size], s, self.path)
            scores.append(s)
            decisions.append(d)
        return BundleScores(
            names,
            np.concatenate(scores) if scores else np.zeros(0, np.float64),
            np.concatenate(decisions) if decisions else np.zeros(0, np.int8),
        )


#: a 2-D waveform with at most this many rows (and more columns) is (channels, n_samples)
_MAX_CHANNELS = 8


def _as_items(inputs: Any) -> list[Any]:
    """The clips of ``inputs``: one path, one 1-D waveform (numpy array, torch tensor, ...) or
    a sequence of them. A bare array of more dimensions is refused: it could be clips or
    channels (torchaudio loads ``(channels, n)``)."""
    if isinstance(inputs, (str, Path)):
        return [inputs]
    ndim = getattr(inputs, "ndim", None)
    if ndim is not None:
        if ndim != 1:
            raise AudioError(f"an array of shape {tuple(inputs.shape)}: pass one waveform as a "
                             "1-D array, or several as a list (a 2-D array could be clips or "
                             "channels)")
        return [inputs]
    return list(inputs)


class NonFiniteScoreError(AutomlAsdError, ValueError):
    """A clip scored NaN or infinite; the message names the clip."""


def check_finite_scores(names: Sequence[str], scores: NDArray[Any], bundle: str | Path) -> None:
    """Raise :class:`NonFiniteScoreError` naming the first clip whose score is not finite
    (a NaN scored as "normal" would be a silent wrong answer)."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(scores, dtype=np.float64)))
    if bad.size:
        i = int(bad[0])
        more = f" (and {bad.size - 1} more clip(s))" if bad.size > 1 else ""
        raise NonFiniteScoreError(
            f"{names[i]}: non-finite anomaly score ({float(scores[i])!r}) with bundle "
            f"{bundle}{more}; the clip's samples may be out of range (e.g. a float wav far "
            "beyond +-1) or the bundle is damaged; nothing was written for it")


def _self_test(fitted: FittedMachine, where: Path) -> None:
    """Score one made-up clip (2 s of silence-level features of the spec's shape), so a bundle
    whose arrays pass their checksums but do not fit together (resealed by hand, or written by
    another version) fails here, naming the bundle, instead of at the first real clip with a
    bare numpy error."""
    spec = fitted.recipe.features
    probe = np.zeros((1 + 2 * spec.sample_rate // spec.hop_length, spec.n_bins), np.float32)
    try:
        score_clips(fitted, [probe])
    except AutomlAsdError:
        raise
    except (ValueError, IndexError, RuntimeError, TypeError) as exc:
        raise BundleError(f"{where}: its arrays do not fit together ({exc}); the bundle is "
                          "damaged or from another version") from exc


def load_bundle(
    path: str | Path, *, device: str = "auto", strict_versions: bool = True
) -> Bundle:
    """Verify and load a model bundle (folder or ``.tar``) saved by ``apply``.

    Args:
        path: the bundle folder (``<apply out>/models/<mt>``) or its ``.tar`` archive.
        device: ``"auto"`` (GPU if visible), ``"cpu"`` or ``"cuda[:N]"`` for neural members.
        strict_versions: refuse a bundle made with another automl-asd version or torch
            major.minor (default); if false, only warn.

    Raises:
        BundleError: naming the offending file (see the module docstring).
    """
    p = Path(path)
    return Bundle.from_files(read_bundle_files(p), p, device=device,
                             strict_versions=strict_versions)
