"""Load a saved model bundle and score new recordings with it, without the training data.

A bundle is what ``apply`` leaves per machine type (``<out>/models/<mt>/``, written by
:func:`automl_asd.io.bundle.save_bundle`): a folder, or the same files in one ``.tar``::

    manifest.json             versions, recipe hash, machine type, feature spec, training clip
                              count, threshold, member layout, sha256 of every other file
    recipe.json               the frozen recipe (strict JSON)
    members/<i>/<j>-<key>.npy fitted state of ensemble member i, one plain array per state key
                              (network weights as named tensors, k-means centres, covariances,
                              GMM parameters, ...)
    scoring/*.npy             member score statistics, domain normaliser statistics, threshold

``save_bundle(..., archive=True)`` also writes ``<folder>.tar``; ``tar -cf fan.tar -C
out/models fan`` (one top folder) or ``-C out/models/fan .`` (flat) give loadable archives too.

Safety: nothing is unpickled. Arrays are read with ``np.load(..., allow_pickle=False)``, the
recipe and manifest with ``json``, and detectors are rebuilt by registry name
(``make_detector(name, params, seed).set_state(state)``), so a bundle from an untrusted source
cannot run code. Before anything is built, every file is checked against the manifest: a file
that is missing, has another sha256, is not listed, or is neither ``.json`` nor ``.npy``
(e.g. a dropped-in pickle) is refused with :class:`BundleError` naming it; so are a bundle
format, package version or torch version other than this installation's (unless
``strict_versions=False``). Arrays holding NaN/inf, zero-variance normalisers and ``.npy``
headers declaring more data than the file holds are refused too, and :meth:`Bundle.score`
raises :class:`NonFiniteScoreError` naming a clip that scores NaN/inf (never a silent "normal").
The checksums detect corruption and accidental edits; they are not
a signature (whoever can rewrite the manifest can rewrite the checksums), which is why loading
never executes stored content.

Example::

    from automl_asd import load_bundle
    bundle = load_bundle("out/models/fan")
    result = bundle.score(["new/clip_0001.wav", waveform])   # paths or float32 arrays
    result.scores, result.decisions
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.audio import AudioError
from automl_asd.errors import AutomlAsdError

if TYPE_CHECKING:
    from automl_asd.features import FeatureSpec
    from automl_asd.pipeline import FittedMachine
    from automl_asd.recipe import Recipe

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "MANIFEST",
    "RECIPE_FILE",
    "BundleError",
    "BundleScores",
    "Bundle",
    "NonFiniteScoreError",
    "check_finite_scores",
    "load_bundle",
    "read_bundle_files",
    "verify_bundle_files",
    "sha256_bytes",
    "torch_version",
]

logger = logging.getLogger(__name__)

#: ``manifest.json`` "format" value.
BUNDLE_FORMAT = "automl-asd-bundle"
#: Layout version of the bundle; a reader refuses any other.
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
RECIPE_FILE = "recipe.json"
#: The only file kinds a bundle may hold (no pickle, no code).
ALLOWED_SUFFIXES = (".json", ".npy")
#: Refuse archives/folders larger than this (a bundle is megabytes, not gigabytes).
MAX_BUNDLE_BYTES = 4 << 30


class BundleError(AutomlAsdError, ValueError):
    """A bundle that cannot be used; the message names the bundle file and the fix."""


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


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def torch_version() -> str:
    """The installed torch version (``""`` when torch is missing)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return ""
    return str(torch.__version__)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


# ----------------------------------------------------------------------------- reading files
def _check_relpath(name: str, where: Path) -> str:
    """A safe relative POSIX path inside the bundle, or :class:`BundleError`."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in name:
        raise BundleError(f"{where}: member {name!r} is not a plain relative path; refusing "
                          "the bundle (re-create it with save_bundle)")
    return str(p)


def _read_tar(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleError(f"{path}: member {member.name!r} is a link or special "
                                      "file; bundles hold regular files only")
                rel = _check_relpath(member.name, path)
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes unpacked; "
                                      "not a model bundle")
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    raise BundleError(f"{path}: cannot read member {member.name!r}")
                files[rel] = f.read()
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{path}: not a readable tar archive ({exc}); re-export the bundle") \
            from None
    # Accept one top-level folder (``tar -cf m.tar fan/``) as well as a flat archive.
    if MANIFEST not in files:
        tops = {PurePosixPath(k).parts[0] for k in files}
        if len(tops) == 1:
            top = tops.pop()
            files = {str(PurePosixPath(*PurePosixPath(k).parts[1:])): v
                     for k, v in files.items() if len(PurePosixPath(k).parts) > 1}
            logger.debug("%s: stripped top-level folder %s", path, top)
    return files


def _read_folder(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        base = Path(dirpath)
        for d in dirnames:
            if (base / d).is_symlink():
                raise BundleError(f"{base / d}: symbolic link inside a bundle; bundles hold "
                                  "regular files only")
        for name in filenames:
            full = base / name
            if full.is_symlink() or not full.is_file():
                raise BundleError(f"{full}: link or special file inside a bundle; bundles hold "
                                  "regular files only")
            rel = full.relative_to(path).as_posix()
            total += full.stat().st_size
            if total > MAX_BUNDLE_BYTES:
                raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes; not a model "
                                  "bundle")
            files[rel] = full.read_bytes()
    return files


def read_bundle_files(path: str | Path) -> dict[str, bytes]:
    """Every file of a bundle folder or ``.tar`` as ``{relative posix path: bytes}``
    (unverified; see :func:`verify_bundle_files`)."""
    p = Path(path)
    if p.is_dir():
        return _read_folder(p)
    if p.is_file():
        return _read_tar(p)
    raise BundleError(f"{p}: no such bundle folder or archive; pass the folder that holds "
                      f"{MANIFEST} (e.g. <apply out>/models/<machine type>)")


def verify_bundle_files(
    files: Mapping[str, bytes], where: str | Path, *, strict_versions: bool = True
) -> dict[str, Any]:
    """Check a bundle's files against its manifest and this installation; returns the manifest.

    Raises :class:`BundleError` naming the file: missing manifest, unknown format/version,
    a package/torch version other than the installed one (when ``strict_versions``), a listed
    file missing or with another sha256, or a file that the manifest does not list or whose
    kind is not allowed (only ``.json``/``.npy``).
    """
    from automl_asd import __version__

    root = Path(where)
    if MANIFEST not in files:
        raise BundleError(f"{root / MANIFEST}: missing; {root} is not a model bundle (bundles "
                          "are written by `automl-asd apply` under <out>/models/<machine type>)")
    try:
        manifest = json.loads(files[MANIFEST].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{root / MANIFEST}: not valid JSON ({exc}); the bundle is damaged")\
            from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{root / MANIFEST}: expected a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{root / MANIFEST}: format {manifest.get('format')!r} is not "
                          f"{BUNDLE_FORMAT!r}; not a model bundle")
    if manifest.get("bundle_version") != BUNDLE_VERSION:
        raise BundleError(f"{root / MANIFEST}: bundle_version {manifest.get('bundle_version')!r}"
                          f" is not supported (this installation reads {BUNDLE_VERSION}); "
                          "re-export the bundle with this version's `automl-asd apply`")
    pkg = str(manifest.get("package_version", ""))
    tv = str(manifest.get("torch_version", ""))
    mismatch = []
    if pkg != __version__:
        mismatch.append(f"package_version {pkg!r} != installed automl-asd {__version__!r}")
    if _major_minor(tv) != _major_minor(torch_version()):
        mismatch.append(f"torch_version {tv!r} != installed torch {torch_version()!r}")
    if mismatch:
        text = "; ".join(mismatch)
        if strict_versions:
            raise BundleError(f"{root / MANIFEST}: {text}; install the versions the bundle was "
                              "made with, re-export it, or load with strict_versions=False "
                              "(CLI: --allow-version-mismatch) to accept possibly different "
                              "scores")
        logger.warning("%s: %s (accepted: strict_versions=False)", root / MANIFEST, text)
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed:
        raise BundleError(f"{root / MANIFEST}: no 'files' checksum table; the bundle is damaged")
    for name in sorted(files):
        if name == MANIFEST:
            continue
        if not name.endswith(ALLOWED_SUFFIXES):
            raise BundleError(f"{root / name}: unexpected file kind in a bundle (only .json and "
                              ".npy are allowed; a pickle or code file may have been dropped "
                              "in); refusing the bundle")
        if name not in listed:
            raise BundleError(f"{root / name}: not listed in {MANIFEST}; a file was added to the "
                              "bundle after it was saved; refusing it")
    for name, digest in sorted(listed.items()):
        name = _check_relpath(str(name), root)
        if name not in files:
            raise BundleError(f"{root / name}: missing (listed in {MANIFEST}); the bundle is "
                              "incomplete, copy it again")
        if sha256_bytes(files[name]) != digest:
            raise BundleError(f"{root / name}: sha256 does not match {MANIFEST}; the file was "
                              "modified or damaged after saving; refusing the bundle")
    return manifest


def _check_npy_size(data: bytes, where: Path) -> None:
    """Refuse a ``.npy`` whose header declares more data than the file holds (before numpy
    would try to allocate it: a forged header could claim hundreds of GiB)."""
    buf = io.BytesIO(data)
    try:
        major, _ = np.lib.format.read_magic(buf)
        read = (np.lib.format.read_array_header_1_0 if major == 1
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(buf)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise BundleError(f"{where}: not a plain .npy array ({exc}); object/pickled arrays "
                          "are refused") from None
    if dtype.hasobject:
        return  # np.load(allow_pickle=False) refuses it with its own message
    need = math.prod(int(n) for n in shape) * dtype.itemsize
    have = len(data) - buf.tell()
    if need > have:
        raise BundleError(f"{where}: header declares shape {tuple(shape)} ({need} bytes) but "
                          f"the file holds {have}; the bundle is damaged")


def npy_from_bytes(data: bytes, where: Path) -> NDArray[Any]:
    """One ``.npy`` file's array: header size checked first (:func:`_check_npy_size`), then
    ``np.load`` without pickles. Raises :class:`BundleError` naming ``where``."""
    _check_npy_size(data, where)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{where}: not a plain .npy array ({exc}); object/pickled "
                          "arrays are refused") from None
    return np.asarray(arr)


def _load_npy(files: Mapping[str, bytes], name: str, root: Path) -> NDArray[Any]:
    try:
        data = files[name]
    except KeyError:
        raise BundleError(f"{root / name}: missing (named in {MANIFEST})") from None
    arr = npy_from_bytes(data, root / name)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise BundleError(f"{root / name}: holds {bad} non-finite value(s) (NaN/inf); the "
                          "bundle is damaged or its model diverged; refusing it")
    return arr


# ----------------------------------------------------------------------------- the bundle
def _domain_stats(arr: NDArray[Any], where: Path) -> tuple[float, float]:
    a = np.asarray(arr, dtype=np.float64)
    if a.shape != (2,):
        raise BundleError(f"{where}: expected (mean, std) of shape (2,), got {a.shape}")
    if not a[1] > 0:
        raise BundleError(f"{where}: normaliser std {float(a[1])!r} is not positive (zero variance "
                          "would give infinite scores); the bundle is damaged")
    return float(a[0]), float(a[1])


def _build_fitted(
    files: Mapping[str, bytes], manifest: Mapping[str, Any], root: Path, device: str
) -> FittedMachine:
    from automl_asd.detectors import make_detector
    from automl_asd.pipeline import FittedMachine, resolve_device
    from automl_asd.recipe import Recipe, RecipeError
    from automl_asd.scoring import DomainNormalizer, ScoreStats

    try:
        recipe = Recipe.from_json(files[RECIPE_FILE].decode("utf-8"),
                                  source=str(root / RECIPE_FILE))
    except KeyError:
        raise BundleError(f"{root / RECIPE_FILE}: missing") from None
    except (RecipeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{root / RECIPE_FILE}: {exc}") from None
    if recipe.content_hash() != manifest.get("recipe_hash"):
        raise BundleError(f"{root / RECIPE_FILE}: content hash {recipe.content_hash()[:12]} does "
                          f"not match the manifest's recipe_hash "
                          f"{str(manifest.get('recipe_hash'))[:12]}; refusing the bundle")
    if manifest.get("feature_spec") != recipe.features.to_dict():
        raise BundleError(f"{root / MANIFEST}: feature_spec differs from {RECIPE_FILE}'s "
                          "features; refusing the bundle")
    dev = resolve_device(device)
    try:
        scoring = manifest["scoring"]
        members_doc = manifest["members"]
        stats_arr = np.asarray(_load_npy(files, scoring["member_stats"], root), np.float64)
        threshold = float(_load_npy(files, scoring["threshold"], root))
        glob = _domain_stats(_load_npy(files, scoring["normalizer_global"], root),
                             root / scoring["normalizer_global"])
        dom = {d: _domain_stats(_load_npy(files, f, root), root / f)
               for d, f in sorted(scoring["normalizer_domains"].items())}
        log_floor = log_shift = 0.0
        if recipe.normalization.method == "domain_log_zscore":
            arr = np.asarray(_load_npy(files, scoring["normalizer_log_floor"], root), np.float64)
            if arr.shape != (2,) or not (np.all(np.isfinite(arr)) and arr[0] > 0):
                raise BundleError(f"{root / scoring['normalizer_log_floor']}: expected (floor > "
                                  f"0, shift), got {arr.tolist()}")
            log_floor, log_shift = float(arr[0]), float(arr[1])
        seed = int(manifest["seed"])
        counts = {str(k): int(v) for k, v in manifest.get("counts", {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{root / MANIFEST}: malformed scoring/member section ({exc!r}); the "
                          "bundle is damaged") from None
    n = len(members_doc)
    if n != recipe.ensemble.size or stats_arr.shape != (n, 2):
        raise BundleError(f"{root / MANIFEST}: {n} members and member_stats of shape "
                          f"{stats_arr.shape} for an ensemble of {recipe.ensemble.size}")
    if not np.isfinite(threshold):
        raise BundleError(f"{root / scoring['threshold']}: threshold is not finite")
    if n and not np.all(stats_arr[:, 1] > 0):
        raise BundleError(f"{root / scoring['member_stats']}: a member score std is not positive "
                          "(zero variance would give infinite scores); the bundle is damaged")
    spec = recipe.detector
    members = []
    for i, doc in enumerate(members_doc):
        try:
            arrays, member_seed = dict(doc["arrays"]), int(doc["seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{root / MANIFEST}: members[{i}] is malformed ({exc!r}); the "
                              "bundle is damaged") from None
        state = {str(k): _load_npy(files, str(f), root) for k, f in arrays.items()}
        det = make_detector(spec.name, dict(spec.params), member_seed)
        setter = getattr(det, "set_device", None)
        if callable(setter):
            setter(dev)
        try:
            det.set_state(state)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise BundleError(f"{root / 'members' / f'{i:03d}'}: {spec.name}.set_state failed "
                              f"({exc}); the bundle does not match this detector version") from exc
        members.append(det)
    member_stats = [ScoreStats(float(m), float(s)) for m, s in stats_arr]
    normalizer = DomainNormalizer(
        recipe.normalization.method, ScoreStats(*glob),
        {d: ScoreStats(*v) for d, v in dom.items()}, log_floor, log_shift,
    )
    return FittedMachine(recipe, str(manifest["machine_type"]), seed, members, member_stats,
                         normalizer, threshold, counts, {}, dev)


def _one_torch_thread() -> None:
    # Same threading as features.extract (one intra-op thread per decode worker), so a clip's
    # features are computed exactly as they were for apply.
    import torch

    torch.set_num_threads(1)


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
        fitted = _build_fitted(files, manifest, p, device)
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
        count differs from the bundle's feature spec (and ``resample`` is off)."""
        from automl_asd.audio import wav_info

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
        from automl_asd.audio import load_wav, resample_wave

        self.check_wav(path, resample=resample)
        rate = self.feature_spec.sample_rate
        if not resample:
            return load_wav(path, sample_rate=rate)
        import soundfile as sf

        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, OSError) as exc:
            raise AudioError(f"{path}: corrupt or unsupported audio file ({exc})") from exc
        if data.shape[1] == 1:
            wave = load_wav(path)  # the validated single-channel path (same numbers)
        else:
            wave = np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))
        if data.size == 0 or not np.isfinite(wave).all():
            raise AudioError(f"{path}: empty or non-finite samples; the file is damaged")
        return wave if int(sr) == rate else resample_wave(wave, int(sr), rate)

    def _features_one(self, item: str | Path | NDArray[Any], resample: bool,
                      sample_rate: int | None) -> NDArray[np.float32]:
        from automl_asd.audio import resample_wave
        from automl_asd.features import compute

        spec = self.feature_spec
        if isinstance(item, (str, Path)):
            path = Path(item)
            wave = self._load(path, resample)
            try:
                return compute(wave, spec)
            except ValueError as exc:
                raise AudioError(f"{path}: {exc}") from exc
        arr = np.asarray(item, dtype=np.float32)
        if arr.ndim != 1:
            if not resample:
                raise AudioError(f"waveform of shape {arr.shape}: expected mono (n_samples,) "
                                 f"at {spec.sample_rate} Hz; pass resample=True to downmix "
                                 "(n_samples, channels)")
            arr = np.ascontiguousarray(arr.reshape(arr.shape[0], -1).mean(axis=1))
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
        items = list(inputs)
        if not items:
            return []
        from automl_asd.features import default_workers

        n = workers if workers is not None else min(8, default_workers())
        n = max(1, min(n, len(items)))
        if n == 1:
            return [self._features_one(x, resample, sample_rate) for x in items]
        from automl_asd.threads import keep_torch_threads

        with keep_torch_threads(), ThreadPoolExecutor(n, initializer=_one_torch_thread) as pool:
            return list(pool.map(lambda x: self._features_one(x, resample, sample_rate), items))

    # -- scoring
    def score_features(
        self, features: Sequence[NDArray[np.float32]]
    ) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
        """Scores ``(n,)`` and decisions ``(n,)`` of precomputed feature matrices."""
        from automl_asd.pipeline import score_clips

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
        batch reproduces its scores bit for bit on CPU; other batchings agree to ~1e-15
        relative (BLAS blocking depends on the batch shape).
        """
        if isinstance(inputs, (str, Path)) or (isinstance(inputs, np.ndarray)
                                               and inputs.ndim == 1):
            items: list[str | Path | NDArray[Any]] = [inputs]
        else:
            items = list(inputs)
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
            s, d = self.score_features(feats)
            check_finite_scores(names[start:start + batch_size], s, self.path)
            scores.append(s)
            decisions.append(d)
        return BundleScores(
            names,
            np.concatenate(scores) if scores else np.zeros(0, np.float64),
            np.concatenate(decisions) if decisions else np.zeros(0, np.int8),
        )


class NonFiniteScoreError(ValueError):
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
