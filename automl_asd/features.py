"""Spectral features with torchaudio, cached on disk once per (feature spec, file set).

Cache integrity (a cache must never serve wrong features silently):

- **Entry checksums.** Every entry's manifest holds a sha256 digest (128 bits) of each clip's
  stored rows and of ``offsets.npy``; a read verifies the digest of every row it uses (in the
  worker threads: hashlib releases the GIL) and that it is finite (rows are only written
  when finite: a NaN behind a valid digest means a forged entry). A mismatch discards the
  entry with a WARNING naming it and the clip, and the features are recomputed. Writes
  ``fsync`` the data files and the manifest before the atomic rename and ``fsync`` the folder
  after it, so a crash cannot leave a complete-looking entry with zero-filled data. Cost:
  hashing the stored bytes once per read (~0.15 ms of CPU per 10 s clip), measured in
  ``bench/features.py`` (cached vs cold with checksums verified); the finiteness check adds
  ~5 us per clip.
- **Clip identity.** A clip is keyed by its absolute path, size, ``mtime_ns``, inode and
  ``ctime_ns``. The ``ctime`` cannot be set back by a user (``touch -d``/``os.utime`` change it),
  so replacing a clip's content in place, even with the same size and a restored ``mtime``,
  changes the key; so does writing a new file over it (new inode). (``chmod``/``chown`` change
  the ctime too: such clips are recomputed once, which is safe.) Hashing every clip's audio
  on every run would double the bytes a cached run reads (audio is ~2x the size of its
  log-mel rows), so it is opt-in: ``verify_audio=True`` (CLI ``--verify-audio``, or
  ``AUTOML_ASD_VERIFY_AUDIO=1``) keys clips by a sha256 digest of their bytes instead of by
  ``stat``, for data on file systems whose timestamps cannot be trusted.
- **Non-finite features** (NaN/inf, e.g. from absurdly large float samples) raise
  :class:`~automl_asd.errors.NonFiniteError` naming the clip; it is a permanent error, never
  retried by the Ray runner.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, get_args

import numpy as np
from tqdm.auto import tqdm

from automl_asd.audio import AudioError, load_wav, pcm_to_float
from automl_asd.components.device import default_workers, keep_torch_threads, one_torch_thread
from automl_asd.components.files import file_identity, mark_used
from automl_asd.components.locks import file_lock
from automl_asd.data import Clip
from automl_asd.environment import (
    VERIFY_AUDIO_ENV,
    cache_write_failed,
    default_cache_dir,
    require_torchaudio,
    verify_audio_default,
)
from automl_asd.errors import NonFiniteError

if TYPE_CHECKING:
    import torch

__all__ = [
    "FeatureSpec", "ExtractStats", "extract", "compute", "default_cache_dir", "default_workers",
    "CACHE_VERSION", "VERIFY_AUDIO_ENV",
]

logger = logging.getLogger(__name__)

#: Bumped when the on-disk layout or the numerics of :func:`compute` change
#: (2: per-clip checksums, stat key with inode and ctime or an audio digest).
CACHE_VERSION = 2
#: Floor before the log, as the baseline (``sys.float_info.epsilon``).
LOG_EPS = sys.float_info.epsilon
#: Raw little-endian float32 rows of all clips of an entry, concatenated (no header).
_DATA = "data.f32"
#: The cache root's folder of feature entries: ``features/<kind>-<spec key>/<set key>/``.
FEATURES_SUBDIR = "features"
#: The files of one entry (a folder named by its set key); nothing else is ever in one.
ENTRY_FILES = (_DATA, "offsets.npy", "manifest.json")

FeatureKind = Literal["logmel", "stft"]


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute from a clip. Defaults are the official baseline's log-mel settings.

    ``kind="logmel"``: ``(n_frames, n_mels)`` log-mel in dB (``10*log10(max(mel, eps))`` for
    power 2, as the baseline's ``20/power*log10``). ``kind="stft"``: ``(n_frames, n_fft//2+1)``
    STFT magnitude (``power``=1) or power, log-compressed in dB when ``log`` is true.

    Frames are centred, and the clip's ends are padded by reflection (torchaudio's default).
    librosa 0.10 and later, which the baseline uses unpinned, pads with zeros, so the first
    and last frame of a clip differ from the baseline's (by a few dB); the other frames are
    the same.
    """

    kind: FeatureKind = "logmel"
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    win_length: int | None = None
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    power: float = 2.0
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney", "none"] = "slaney"
    log: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def n_bins(self) -> int:
        """Feature dimension per frame."""
        return self.n_mels if self.kind == "logmel" else self.n_fft // 2 + 1

    def key(self) -> str:
        """Stable short hash of the spec (part of the cache key)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- computation


@functools.lru_cache(maxsize=16)
def _transform(spec: FeatureSpec) -> torch.nn.Module:
    """The torchaudio transform for ``spec`` (stateless at call time, so shared by threads)."""
    require_torchaudio()  # a broken torch/torchaudio pair: one line and the fix
    import torchaudio.transforms as T  # noqa: PLC0415

    module: torch.nn.Module
    if spec.kind == "logmel":
        module = T.MelSpectrogram(
            sample_rate=spec.sample_rate, n_fft=spec.n_fft, win_length=spec.win_length,
            hop_length=spec.hop_length, f_min=spec.f_min, f_max=spec.f_max,
            n_mels=spec.n_mels, power=spec.power, mel_scale=spec.mel_scale,
            norm=None if spec.mel_norm == "none" else spec.mel_norm)
        return module
    if spec.kind == "stft":
        module = T.Spectrogram(n_fft=spec.n_fft, win_length=spec.win_length,
                               hop_length=spec.hop_length, power=spec.power)
        return module
    raise ValueError(f"FeatureSpec.kind={spec.kind!r}: expected 'logmel' or 'stft'")


def compute(waveform: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Features of one in-memory clip.

    Args:
        waveform: float ``(n_samples,)`` in [-1, 1] at ``spec.sample_rate``; integer PCM
            (8, 16 or 32 bit, as wav files hold it) is scaled to [-1, 1] first, as a wav file
            is read (found 2026-12-07: an int16 clip was taken unscaled, +90 dB).
        spec: what to compute.

    Returns:
        float32 ``(n_frames, spec.n_bins)`` with ``n_frames = 1 + n_samples // hop_length``;
        in dB (``20/power * log10(max(x, eps))``) when ``spec.log``.
    """
    import torch  # noqa: PLC0415

    raw = np.asarray(waveform)
    # integer PCM is an integer numpy array (a Python list of numbers is taken as floats)
    if isinstance(waveform, np.ndarray) and raw.dtype.kind in "iu":
        raw = pcm_to_float(raw)  # AudioError (a ValueError) for 64-bit integers
    wave = np.asarray(raw, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"waveform must be 1-D (n_samples,), got shape {wave.shape}")
    if wave.shape[0] <= spec.n_fft // 2:
        raise ValueError(f"waveform of {wave.shape[0]} samples is too short for n_fft="
                         f"{spec.n_fft} (needs more than {spec.n_fft // 2})")
    with torch.inference_mode():
        s = _transform(spec)(torch.from_numpy(wave))  # (n_bins, n_frames)
        if spec.log:
            s = s.clamp_(min=LOG_EPS).log10_().mul_(20.0 / spec.power)
        out: np.ndarray = s.T.contiguous().numpy()
    return out


def _load_and_compute(path: Path, spec: FeatureSpec, resample: bool) -> np.ndarray:
    wave = load_wav(path, sample_rate=spec.sample_rate, resample=resample)
    try:
        out = compute(wave, spec)
    except ValueError as exc:
        raise AudioError(f"{path}: {exc}; remove the clip or use a smaller n_fft") from exc
    if not np.isfinite(out).all():
        peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        raise NonFiniteError(
            f"{path}: {spec.kind} features contain NaN or infinite values (peak sample "
            f"magnitude {peak:.3g}; float wavs must hold samples in [-1, 1]); fix or remove "
            "the clip")
    return out


def _compute_many(paths: Sequence[Path], spec: FeatureSpec, *, workers: int, progress: bool,
                  resample: bool,
                  sink: Callable[[np.ndarray], None] | None = None) -> list[np.ndarray]:
    """Decode + features for ``paths`` in order, each clip wholly in one worker thread.

    ``sink`` is called with each result in order in the calling thread (the cache writer),
    so disk writes overlap with the workers' computation.
    """
    fn: Callable[[Path], np.ndarray] = functools.partial(
        _load_and_compute, spec=spec, resample=resample)
    bar = tqdm(total=len(paths), desc=f"features ({spec.kind})", unit="clip", leave=False,
               disable=not progress or len(paths) < 2, file=sys.stderr)
    out: list[np.ndarray] = []
    try:
        if workers <= 1:
            for p in paths:
                out.append(fn(p))
                if sink is not None:
                    sink(out[-1])
                bar.update()
        else:
            # Threads, not processes: soundfile (cffi) and torch release the GIL, so threads
            # scale across cores without pickling features or re-importing torch per process.
            with keep_torch_threads(), \
                    ThreadPoolExecutor(workers, initializer=one_torch_thread) as pool:
                try:
                    for arr in pool.map(fn, paths, chunksize=1):
                        out.append(arr)
                        if sink is not None:
                            sink(arr)
                        bar.update()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return out


# --------------------------------------------------------------------------- cache


@dataclass
class ExtractStats:
    """Counters filled by :func:`extract` (pass one in; they accumulate over calls)."""

    n_clips: int = 0
    n_cached: int = 0
    n_computed: int = 0
    entries_read: int = 0
    entries_written: int = 0
    seconds: float = 0.0
    written: list[Path] = field(default_factory=list)


#: (absolute path, size in bytes, stamp): the stamp is ``"<mtime_ns>.<inode>.<ctime_ns>"``,
#: or ``"sha256:<digest of the file's bytes>"`` with ``verify_audio`` (see the module docstring).
Ident = tuple[str, int, str]


def _digest(data: Any) -> str:
    """sha256 of a bytes-like object, first 128 bits in hex (checksums of cache entries).
    sha256 over blake2b: OpenSSL's SHA extensions make it the faster of the two here."""
    return hashlib.sha256(data).hexdigest()[:32]


def _ident(path: Path, verify_audio: bool = False) -> Ident:
    try:
        size, stamp = file_identity(path, content=verify_audio)
    except FileNotFoundError as exc:
        raise AudioError(f"{path}: no such file; re-scan the data tree") from exc
    return (os.path.abspath(path), size, stamp)


def _set_key(spec: FeatureSpec, idents: Sequence[Ident]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}:{spec.key()}".encode())
    for path, size, stamp in idents:  # idents are sorted
        h.update(f"\0{path}\0{size}\0{stamp}".encode())
    return h.hexdigest()[:32]


def _spec_dir(cache_dir: Path, spec: FeatureSpec) -> Path:
    return cache_dir / FEATURES_SUBDIR / f"{spec.kind}-{spec.key()}"


#: The name forms :func:`_spec_dir` and :func:`_set_key` write (``cache prune`` removes only
#: these): ``<kind>-<16 hex digits>`` and 32 hex digits.
SPEC_DIR_NAME = re.compile(rf"({'|'.join(get_args(FeatureKind))})-[0-9a-f]{{16}}")
SET_KEY_NAME = re.compile(r"[0-9a-f]{32}")


class _Manifest:
    """An entry's manifest: clip idents, per-clip row checksums, the offsets checksum."""

    def __init__(self, entry: Path) -> None:
        with (entry / "manifest.json").open() as f:
            doc = json.load(f)
        if not isinstance(doc, dict):  # valid JSON of another shape: an unusable entry
            raise ValueError(f"manifest is a JSON {type(doc).__name__}, not an object")
        if doc.get("cache_version") != CACHE_VERSION:
            raise ValueError(f"cache_version {doc.get('cache_version')} != {CACHE_VERSION}")
        self.idents: list[Ident] = [(str(p), int(s), str(m)) for p, s, m in doc["files"]]
        self.checksums: list[str] = [str(c) for c in doc["checksums"]]
        self.offsets_checksum = str(doc["offsets_checksum"])
        if len(self.checksums) != len(self.idents):
            raise ValueError("manifest lists a different number of checksums than files")


def _verified_rows(manifest: _Manifest, data: np.ndarray, offsets: np.ndarray,
                   index: Sequence[int]) -> list[np.ndarray]:
    """Rows of the clips ``index``, each checked against the manifest's checksum (hashed in
    up to :func:`default_workers` threads; hashlib releases the GIL on large buffers) and for
    finiteness (rows are written only when finite, so a non-finite row with a valid checksum
    comes from an entry written by something else)."""
    def one(i: int) -> np.ndarray:
        rows = data[offsets[i]:offsets[i + 1]]
        if _digest(np.ascontiguousarray(rows)) != manifest.checksums[i]:
            raise ValueError(f"checksum mismatch in the rows of {manifest.idents[i][0]}; the "
                             "entry was modified or damaged after it was written")
        if not np.isfinite(rows).all():  # never written so: a forged entry, not ours
            raise ValueError(f"non-finite values in the rows of {manifest.idents[i][0]}")
        return rows

    workers = min(default_workers(), len(index) // 8)
    if workers <= 1:
        return [one(i) for i in index]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, index, chunksize=8))


def _read_entry(entry: Path, n_bins: int) -> tuple[_Manifest, np.ndarray, np.ndarray]:
    """Manifest, data ``(total_frames, n_bins)`` (read fully) and offsets ``(n + 1,)``."""
    manifest = _Manifest(entry)
    offsets = _read_offsets(entry, manifest)
    data = np.fromfile(entry / _DATA, dtype="<f4")
    if data.size != int(offsets[-1]) * n_bins:
        raise ValueError(f"{_DATA} holds {data.size} values, manifest says "
                         f"{int(offsets[-1])} x {n_bins}")
    return manifest, data.reshape(-1, n_bins), offsets


def _read_offsets(entry: Path, manifest: _Manifest) -> np.ndarray:
    raw = (entry / "offsets.npy").read_bytes()
    if _digest(raw) != manifest.offsets_checksum:
        raise ValueError("offsets.npy checksum mismatch")
    offsets: np.ndarray = np.load(io.BytesIO(raw), allow_pickle=False)
    n = len(manifest.idents)
    if offsets.shape != (n + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets.npy does not match the manifest")
    return offsets


def _discard(entry: Path, exc: BaseException) -> None:
    """Drop an entry a read found unusable, with a WARNING; one that is simply gone (``cache
    prune`` or ``clear`` removed it meanwhile) is a plain miss, not a damaged entry."""
    if isinstance(exc, FileNotFoundError) and not entry.exists():
        logger.debug("feature cache entry %s was removed while read; recomputing", entry)
        return
    logger.warning("feature cache entry %s is unusable (%s); recomputing", entry, exc)
    with contextlib.suppress(OSError):
        remove_entry(entry)


#: Name prefixes of the housekeeping files beside the entries of a spec folder (never entries).
LOCK_PREFIX = ".lock-"
TRASH_PREFIX = ".trash-"


def remove_entry(entry: Path) -> None:
    """Remove a feature cache entry whole: renamed aside first (atomic), so a reader sees the
    entry or nothing, then deleted. Raises ``OSError`` when it cannot be renamed
    (``FileNotFoundError``: already gone)."""
    trash = entry.with_name(f"{TRASH_PREFIX}{entry.name}-{uuid.uuid4().hex[:8]}")
    os.rename(entry, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """fsync a folder so a rename into it survives a crash (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


TMP_PREFIX = ".tmp-"
_HOST = socket.gethostname().replace("/", "_") or "host"
#: An unfinished entry of another host is removed only after this long (its writer may live;
#: this host's are removed as soon as their process is gone).
STALE_TMP_SECONDS = 24 * 3600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def remove_stale_entries(spec_dir: Path, key: str) -> int:
    """Remove the unfinished entries (``.tmp-<key>-<host>-<pid>-<id>``) that writers of ``key``
    left when they were killed: this host's whose process is gone, and another host's once
    older than :data:`STALE_TMP_SECONDS`. Call it holding the key's lock. Returns the bytes
    freed."""
    freed = 0
    now = time.time()
    for tmp in spec_dir.glob(f"{TMP_PREFIX}{key}-*"):
        try:
            head, pid_text, _ = tmp.name.rsplit("-", 2)
            host = head[len(f"{TMP_PREFIX}{key}-"):] or _HOST
            pid = int(pid_text)
            age = now - tmp.stat().st_mtime
        except (ValueError, OSError):
            continue
        if host == _HOST:
            if pid == os.getpid() or _pid_alive(pid):
                continue  # a live writer here, however long it takes
        elif age < STALE_TMP_SECONDS:
            continue  # another host's: its process cannot be asked
        size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        shutil.rmtree(tmp, ignore_errors=True)
        if not tmp.exists():
            freed += size
            logger.info("feature cache: removed %s, an unfinished entry of a killed writer "
                        "(%.1f MB)", tmp, size / 1e6)
    return freed


class _EntryWriter:
    """Streams one cache entry into a temp folder; :meth:`commit` renames it into place.

    The rename is atomic, and a folder that already exists (a concurrent writer of the same
    key won) is left alone, so readers only ever see complete entries. Write errors disable
    the writer with a warning; the caller's results are unaffected.
    """

    def __init__(self, spec_dir: Path, key: str, spec: FeatureSpec) -> None:
        self.final = spec_dir / key
        self.tmp = spec_dir / f"{TMP_PREFIX}{key}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.spec = spec
        self.lengths: list[int] = []
        self.checksums: list[str] = []
        self.file: BinaryIO | None = None
        try:
            self.tmp.mkdir(parents=True)
            self.file = (self.tmp / _DATA).open("wb")
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.abort()  # first: the free space logged is what the run has left
        cache_write_failed(logger, self.final.parent.parent.parent, "feature cache entry",
                           self.final, exc)

    def add(self, arr: np.ndarray) -> None:
        if self.file is None:
            return
        try:
            rows = np.ascontiguousarray(arr, dtype="<f4")
            self.file.write(rows.data.cast("B"))
            self.lengths.append(arr.shape[0])
            self.checksums.append(_digest(rows))
        except OSError as exc:
            self._fail(exc)

    def abort(self) -> None:
        if self.file is not None:
            # closing flushes what a failed write left buffered, which fails the same way
            # (found with `ulimit -f`: the cache's EFBIG failed the whole machine type)
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def commit(self, idents: Sequence[Ident]) -> Path | None:
        if self.file is None:
            return None
        try:
            # Data on disk before the manifest, and everything before the rename: after a
            # crash an entry is either absent or whole (never zero-filled behind a manifest).
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            self.file = None
            if len(self.lengths) != len(idents):
                raise OSError(f"{len(self.lengths)} arrays written for {len(idents)} files")
            offsets = np.zeros(len(idents) + 1, np.int64)
            np.cumsum(self.lengths, out=offsets[1:])
            buf = io.BytesIO()
            np.save(buf, offsets)
            _write_synced(self.tmp / "offsets.npy", buf.getvalue())
            doc = {"cache_version": CACHE_VERSION, "spec": self.spec.to_dict(),
                   "spec_key": self.spec.key(), "n_bins": self.spec.n_bins,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "files": [list(i) for i in idents], "checksum": "sha256-128",
                   "checksums": self.checksums, "offsets_checksum": _digest(buf.getvalue())}
            _write_synced(self.tmp / "manifest.json", json.dumps(doc).encode())
            _fsync_dir(self.tmp)
            try:
                os.replace(self.tmp, self.final)
            except OSError:
                if (self.final / "manifest.json").is_file():
                    shutil.rmtree(self.tmp, ignore_errors=True)  # a concurrent writer won
                    return self.final
                if not self.final.is_dir():
                    raise
                # a folder without a manifest (lost or deleted) is no entry and was never
                # read: replaced, or every later run would recompute and fail to store it
                _discard(self.final, ValueError("no manifest.json"))
                os.replace(self.tmp, self.final)
            _fsync_dir(self.final.parent)
            return self.final
        except OSError as exc:
            self._fail(exc)
            return None


def _lookup_partial(spec_dir: Path, wanted: set[Ident], n_bins: int,
                    stats: ExtractStats) -> dict[Ident, np.ndarray]:
    """Rows for ``wanted`` clips found in any entry of this spec (e.g. a subset of a set)."""
    found: dict[Ident, np.ndarray] = {}
    if not spec_dir.is_dir():
        return found
    for entry in sorted(spec_dir.iterdir()):
        if entry.name.startswith(".") or not (entry / "manifest.json").is_file():
            continue
        try:
            manifest = _Manifest(entry)
            rows = [(i, ident) for i, ident in enumerate(manifest.idents)
                    if ident in wanted and ident not in found]
            if not rows:
                continue
            offsets = _read_offsets(entry, manifest)
            if (entry / _DATA).stat().st_size != int(offsets[-1]) * n_bins * 4:
                raise ValueError(f"{_DATA} size does not match the manifest")
            data = np.memmap(entry / _DATA, dtype="<f4", mode="r",
                             shape=(int(offsets[-1]), n_bins))
            arrays = _verified_rows(manifest, data, offsets, [i for i, _ in rows])
            got = {ident: np.array(arr, dtype=np.float32)
                   for (_, ident), arr in zip(rows, arrays, strict=True)}
            del data
            found.update(got)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _discard(entry, exc)
            continue
        mark_used(entry)
        stats.entries_read += 1
        if len(found) == len(wanted):
            break
    return found


def _read_exact(entry: Path, idents: Sequence[Ident],
                n_bins: int) -> dict[Ident, np.ndarray] | None:
    """All rows of ``entry`` if it exists and holds exactly ``idents`` (sorted), else None."""
    if not (entry / "manifest.json").is_file():
        return None
    try:
        manifest, data, offsets = _read_entry(entry, n_bins)
        if manifest.idents != list(idents):
            raise ValueError("manifest lists other files than its key")
        arrays = _verified_rows(manifest, data, offsets, range(len(manifest.idents)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _discard(entry, exc)
        return None
    mark_used(entry)
    return dict(zip(manifest.idents, arrays, strict=True))


@contextlib.contextmanager
def _file_lock(spec_dir: Path, key: str) -> Iterator[None]:
    """Exclusive lock on ``<spec_dir>/.lock-<key>`` (released if the holder dies; ``cache
    prune`` takes it too); unlocked where locking is unavailable (the atomic rename still keeps
    entries whole)."""
    with file_lock(spec_dir / f"{LOCK_PREFIX}{key}",
                   waiting=f"waiting for another process computing the same features ({key})"):
        yield


def extract(clips: Sequence[Clip | Path | str], spec: FeatureSpec, *,
            cache_dir: Path | str | None = None, workers: int | None = None,
            progress: bool = True, resample: bool = False,
            stats: ExtractStats | None = None,
            verify_audio: bool | None = None) -> list[np.ndarray]:
    """Features of many clips, cached on disk per (spec, file set).

    The cache key is the spec plus the sorted ``(path, size, mtime_ns, inode, ctime_ns)`` of
    the clips (or, with ``verify_audio``, a digest of each clip's bytes), so the same set in
    any order hits the cache, and a changed file is recomputed. Every row read is verified
    against its checksum (see the module docstring). A set not stored
    as such is assembled from the spec's other entries (e.g. a subset of ``machine.train``);
    only clips found nowhere are decoded and computed, in ``workers`` threads (default: all
    usable cores), and stored as a new entry written atomically.

    Args:
        clips: clips or wav paths.
        spec: what to compute.
        cache_dir: cache root (default :func:`default_cache_dir`).
        workers: decode+feature threads; 1 computes in the calling thread.
        progress: show a tqdm bar on stderr while computing.
        resample: resample clips whose rate differs from ``spec.sample_rate`` (else an error).
        stats: if given, updated with hit/compute counts.
        verify_audio: key clips by a digest of their bytes instead of by ``stat`` (reads
            every clip; default: ``$AUTOML_ASD_VERIFY_AUDIO``).

    Returns:
        One float32 ``(n_frames, spec.n_bins)`` array per clip, in input order.
    """
    t0 = time.perf_counter()
    st = stats if stats is not None else ExtractStats()
    paths = [c.path if isinstance(c, Clip) else Path(c) for c in clips]
    if verify_audio is None:
        verify_audio = verify_audio_default()
    if verify_audio and len(paths) > 8:  # hashing releases the GIL: use the cores
        with ThreadPoolExecutor(min(default_workers(), 8)) as pool:
            idents_in = list(pool.map(functools.partial(_ident, verify_audio=True), paths,
                                      chunksize=8))
    else:
        idents_in = [_ident(p, verify_audio) for p in paths]
    unique = sorted(set(idents_in))
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    spec_dir = _spec_dir(root, spec)
    key = _set_key(spec, unique)
    entry = spec_dir / key
    result: dict[Ident, np.ndarray] = {}
    if unique:
        result = _read_exact(entry, unique, spec.n_bins) or {}
        st.entries_read += bool(result)
    if unique and not result:
        result = _lookup_partial(spec_dir, set(unique), spec.n_bins, st)
    missing = [i for i in unique if i not in result]
    n_computed = 0
    if missing:
        missing_key = _set_key(spec, missing)
        # One process computes a set; others wanting it wait and then read its entry.
        with _file_lock(spec_dir, missing_key):
            done = _read_exact(spec_dir / missing_key, missing, spec.n_bins)
            if done is not None:
                result.update(done)
                st.entries_read += 1
            else:
                n_computed = len(missing)
                n_workers = min(workers if workers is not None else default_workers(),
                                len(missing))
                remove_stale_entries(spec_dir, missing_key)
                writer = _EntryWriter(spec_dir, missing_key, spec)
                try:
                    arrays = _compute_many([Path(i[0]) for i in missing], spec,
                                           workers=n_workers, progress=progress,
                                           resample=resample, sink=writer.add)
                except BaseException:
                    writer.abort()
                    raise
                result.update(zip(missing, arrays, strict=True))
                written = writer.commit(missing)
                if written is not None:
                    st.entries_written += 1
                    st.written.append(written)
    n_cached = len(unique) - n_computed
    st.n_clips += len(paths)
    st.n_cached += n_cached
    st.n_computed += n_computed
    dt = time.perf_counter() - t0
    st.seconds += dt
    logger.info("features %s: %d clips (%d cached, %d computed) in %.2f s", spec.kind,
                len(unique), n_cached, n_computed, dt)
    return [result[i] for i in idents_in]
