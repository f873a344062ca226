"""Spectral features with torchaudio, cached on disk once per (feature spec, file set)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np

from automl_asd.audio import AudioError, load_wav
from automl_asd.data import Clip

if TYPE_CHECKING:
    import torch

__all__ = [
    "FeatureSpec", "ExtractStats", "extract", "compute", "default_cache_dir", "default_workers",
    "CACHE_VERSION",
]

logger = logging.getLogger(__name__)

#: Bumped when the on-disk layout or the numerics of :func:`compute` change.
CACHE_VERSION = 1
#: Floor before the log, as the baseline (``sys.float_info.epsilon``).
LOG_EPS = sys.float_info.epsilon
#: Raw little-endian float32 rows of all clips of an entry, concatenated (no header).
_DATA = "data.f32"

FeatureKind = Literal["logmel", "stft"]


@dataclass(frozen=True)
class FeatureSpec:
    """What to compute from a clip. Defaults are the official baseline's log-mel settings.

    ``kind="logmel"``: ``(n_frames, n_mels)`` log-mel in dB (``10*log10(max(mel, eps))`` for
    power 2, as the baseline's ``20/power*log10``). ``kind="stft"``: ``(n_frames, n_fft//2+1)``
    STFT magnitude (``power``=1) or power, log-compressed in dB when ``log`` is true.
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
    from automl_asd.environment import require_torchaudio

    require_torchaudio()  # a broken torch/torchaudio pair: one line and the fix
    import torchaudio.transforms as T

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
        waveform: float32 ``(n_samples,)`` at ``spec.sample_rate``.
        spec: what to compute.

    Returns:
        float32 ``(n_frames, spec.n_bins)`` with ``n_frames = 1 + n_samples // hop_length``;
        in dB (``20/power * log10(max(x, eps))``) when ``spec.log``.
    """
    import torch

    wave = np.asarray(waveform, dtype=np.float32)
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
        return compute(wave, spec)
    except ValueError as exc:
        raise AudioError(f"{path}: {exc}; remove the clip or use a smaller n_fft") from exc


def _one_torch_thread() -> None:
    # With torch's OpenMP backend the thread count is per calling thread, so this limits the
    # pool's threads only (parallelism comes from the pool, not from intra-op threads).
    import torch

    torch.set_num_threads(1)


def default_workers() -> int:
    """CPU cores this process may use (affinity mask, capped by ``OMP_NUM_THREADS`` if set,
    which Ray sets to a task's ``num_cpus``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return max(1, n)


def _compute_many(paths: Sequence[Path], spec: FeatureSpec, *, workers: int, progress: bool,
                  resample: bool,
                  sink: Callable[[np.ndarray], None] | None = None) -> list[np.ndarray]:
    """Decode + features for ``paths`` in order, each clip wholly in one worker thread.

    ``sink`` is called with each result in order in the calling thread (the cache writer),
    so disk writes overlap with the workers' computation.
    """
    from tqdm.auto import tqdm

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
            with ThreadPoolExecutor(workers, initializer=_one_torch_thread) as pool:
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


def default_cache_dir() -> Path:
    """``$AUTOML_ASD_CACHE`` if set, else ``~/.cache/automl-asd``."""
    env = os.environ.get("AUTOML_ASD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "automl-asd"


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


Ident = tuple[str, int, int]  # (absolute path, size in bytes, mtime_ns)


def _ident(path: Path) -> Ident:
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise AudioError(f"{path}: no such file; re-scan the data tree") from exc
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def _set_key(spec: FeatureSpec, idents: Sequence[Ident]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}:{spec.key()}".encode())
    for path, size, mtime in idents:  # idents are sorted
        h.update(f"\0{path}\0{size}\0{mtime}".encode())
    return h.hexdigest()[:32]


def _spec_dir(cache_dir: Path, spec: FeatureSpec) -> Path:
    return cache_dir / "features" / f"{spec.kind}-{spec.key()}"


def _read_manifest(entry: Path) -> list[Ident]:
    with (entry / "manifest.json").open() as f:
        doc = json.load(f)
    if doc.get("cache_version") != CACHE_VERSION:
        raise ValueError(f"cache_version {doc.get('cache_version')} != {CACHE_VERSION}")
    return [(str(p), int(s), int(m)) for p, s, m in doc["files"]]


def _read_entry(entry: Path, n_bins: int) -> tuple[list[Ident], np.ndarray, np.ndarray]:
    """Manifest, data ``(total_frames, n_bins)`` (read fully) and offsets ``(n + 1,)``."""
    idents = _read_manifest(entry)
    offsets = _read_offsets(entry, len(idents))
    data = np.fromfile(entry / _DATA, dtype="<f4")
    if data.size != int(offsets[-1]) * n_bins:
        raise ValueError(f"{_DATA} holds {data.size} values, manifest says "
                         f"{int(offsets[-1])} x {n_bins}")
    return idents, data.reshape(-1, n_bins), offsets


def _read_offsets(entry: Path, n: int) -> np.ndarray:
    offsets: np.ndarray = np.load(entry / "offsets.npy")
    if offsets.shape != (n + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets.npy does not match the manifest")
    return offsets


def _discard(entry: Path, reason: str) -> None:
    logger.warning("feature cache entry %s is unusable (%s); recomputing", entry, reason)
    trash = entry.with_name(f".trash-{entry.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(entry, trash)
        shutil.rmtree(trash, ignore_errors=True)
    except OSError:
        pass


class _EntryWriter:
    """Streams one cache entry into a temp folder; :meth:`commit` renames it into place.

    The rename is atomic, and a folder that already exists (a concurrent writer of the same
    key won) is left alone, so readers only ever see complete entries. Write errors disable
    the writer with a warning; the caller's results are unaffected.
    """

    def __init__(self, spec_dir: Path, key: str, spec: FeatureSpec) -> None:
        self.final = spec_dir / key
        self.tmp = spec_dir / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.spec = spec
        self.lengths: list[int] = []
        self.file: BinaryIO | None = None
        try:
            self.tmp.mkdir(parents=True)
            self.file = (self.tmp / _DATA).open("wb")
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        logger.warning("could not write feature cache entry %s (%s); continuing uncached",
                       self.final, exc)
        self.abort()

    def add(self, arr: np.ndarray) -> None:
        if self.file is None:
            return
        try:
            self.file.write(np.ascontiguousarray(arr, dtype="<f4").data.cast("B"))
            self.lengths.append(arr.shape[0])
        except OSError as exc:
            self._fail(exc)

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def commit(self, idents: Sequence[Ident]) -> Path | None:
        if self.file is None:
            return None
        try:
            self.file.close()
            self.file = None
            if len(self.lengths) != len(idents):
                raise OSError(f"{len(self.lengths)} arrays written for {len(idents)} files")
            offsets = np.zeros(len(idents) + 1, np.int64)
            np.cumsum(self.lengths, out=offsets[1:])
            np.save(self.tmp / "offsets.npy", offsets)
            doc = {"cache_version": CACHE_VERSION, "spec": self.spec.to_dict(),
                   "spec_key": self.spec.key(), "n_bins": self.spec.n_bins,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "files": [list(i) for i in idents]}
            (self.tmp / "manifest.json").write_text(json.dumps(doc))
            try:
                os.replace(self.tmp, self.final)
            except OSError:
                if not (self.final / "manifest.json").is_file():
                    raise
                shutil.rmtree(self.tmp, ignore_errors=True)  # a concurrent writer won
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
            idents = _read_manifest(entry)
            rows = [(i, ident) for i, ident in enumerate(idents)
                    if ident in wanted and ident not in found]
            if not rows:
                continue
            offsets = _read_offsets(entry, len(idents))
            data = np.memmap(entry / _DATA, dtype="<f4", mode="r",
                             shape=(int(offsets[-1]), n_bins))
            for i, ident in rows:
                found[ident] = np.array(data[offsets[i]:offsets[i + 1]], dtype=np.float32)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _discard(entry, str(exc))
            continue
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
        stored, data, offsets = _read_entry(entry, n_bins)
        if stored != list(idents):
            raise ValueError("manifest lists other files than its key")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _discard(entry, str(exc))
        return None
    return {ident: data[offsets[i]:offsets[i + 1]] for i, ident in enumerate(stored)}


@contextlib.contextmanager
def _file_lock(spec_dir: Path, key: str) -> Iterator[None]:
    """Exclusive ``flock`` on ``<spec_dir>/.lock-<key>`` (released if the holder dies);
    a no-op where locking is unavailable (the atomic rename still keeps entries whole)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        spec_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(spec_dir / f".lock-{key}", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        logger.debug("feature cache lock unavailable (%s)", exc)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            logger.info("waiting for another process computing the same features (%s)", key)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def extract(clips: Sequence[Clip | Path | str], spec: FeatureSpec, *,
            cache_dir: Path | str | None = None, workers: int | None = None,
            progress: bool = True, resample: bool = False,
            stats: ExtractStats | None = None) -> list[np.ndarray]:
    """Features of many clips, cached on disk per (spec, file set).

    The cache key is the spec plus the sorted ``(path, size, mtime_ns)`` of the clips, so the
    same set in any order hits the cache, and a changed file is recomputed. A set not stored
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

    Returns:
        One float32 ``(n_frames, spec.n_bins)`` array per clip, in input order.
    """
    t0 = time.perf_counter()
    st = stats if stats is not None else ExtractStats()
    paths = [c.path if isinstance(c, Clip) else Path(c) for c in clips]
    idents_in = [_ident(p) for p in paths]
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
