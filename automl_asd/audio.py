"""Load and validate wav files: mono float32 at the requested sample rate.

Every check raises :class:`AudioError` (a :class:`~automl_asd.data.DataError`) whose message
names the file and says how to fix it; nothing is silently padded, truncated or downmixed.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from automl_asd.data import DataError, refuse_non_utf8
from automl_asd.environment import require_torchaudio

__all__ = ["AudioError", "WavInfo", "load_wav", "read_wav", "wav_info", "load_downmixed",
           "downmix", "resample_wave", "pcm_to_float", "warn_beyond_full_scale"]

logger = logging.getLogger(__name__)

# libsndfile reports a data chunk longer than the file as "data : 320000 (should be 159978)".
_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = (0, 0xFFFFFFFF)  # writers that do not know the length up front


class AudioError(DataError):
    """A wav file that cannot be used as a clip; the message names the file and the fix."""


@dataclass(frozen=True)
class WavInfo:
    """Header facts of one wav file."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _unreadable(p: Path, exc: BaseException) -> AudioError | None:
    """The error for a clip this user may not read, or None when that is not why ``exc``
    came (found 2026-12-07: such a clip was called corrupt, with "re-download" advice)."""
    if isinstance(exc, PermissionError) or (p.is_file() and not os.access(p, os.R_OK)):
        return AudioError(f"{p}: cannot be read by this user (permission denied); fix its "
                          "permissions (e.g. chmod a+r)")
    return None


def wav_info(path: str | Path) -> WavInfo:
    """Read the header of ``path`` (no samples). Raises :class:`AudioError` if unreadable."""
    p = Path(path)
    refuse_non_utf8(p, AudioError)
    try:
        info = sf.info(str(p))
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        denied = _unreadable(p, exc)
        if denied is not None:
            raise denied from exc
        raise AudioError(f"{p}: cannot read wav header ({exc}); re-download or re-extract the "
                         "file") from exc
    return WavInfo(p, int(info.samplerate), int(info.channels), int(info.frames))


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` at its native rate and validate it.

    Returns ``(waveform, sample_rate)`` with ``waveform`` float32 of shape ``(n_samples,)``.
    Raises :class:`AudioError` for a missing, corrupt, truncated, multi-channel, empty or
    non-finite file.
    """
    p = Path(path)
    refuse_non_utf8(p, AudioError)
    try:
        fast = _read_plain_wav(p)
        if fast is not None:
            wave, rate, integer_pcm = fast
        else:
            wave, rate, integer_pcm = _read_soundfile(p)
    except AudioError:
        raise
    except (sf.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        if not p.is_file():
            raise AudioError(f"{p}: no such file; re-scan the data tree") from exc
        denied = _unreadable(p, exc)
        if denied is not None:
            raise denied from exc
        raise AudioError(f"{p}: corrupt or unsupported audio file ({exc}); re-download or "
                         "re-extract it") from exc
    if wave.size == 0:
        raise AudioError(f"{p}: empty wav (0 samples); re-download or remove the file")
    if not integer_pcm and not np.isfinite(wave).all():
        bad = int(np.count_nonzero(~np.isfinite(wave)))
        raise AudioError(f"{p}: {bad} NaN/inf samples; the file is damaged, re-download it")
    if not integer_pcm:
        warn_beyond_full_scale(wave, str(p))
    return wave, rate


def pcm_to_float(raw: np.ndarray) -> np.ndarray:
    """Integer PCM samples (8-bit unsigned, 16/24-in-32/32-bit signed, as wav files hold them)
    as float32 in [-1, 1]: divided by 2**(bits-1) after centring unsigned ones, exactly as a
    16-bit wav file is read (an in-memory int16 clip scores bit for bit like its file).
    :class:`AudioError` for wider integers: no wav holds 64-bit PCM, and such an array is
    almost always ``astype(int)`` of 16-bit samples, which scaled by 2**63 becomes silence
    (every clip alike, all flagged)."""
    if raw.dtype.itemsize > 4:
        raise AudioError(f"waveform of dtype {raw.dtype}: integer PCM must be 8, 16 or 32 "
                         "bit; convert it to float in [-1, 1] (e.g. x / 32768 for 16-bit "
                         "samples)")
    bits = 8 * raw.dtype.itemsize
    wave = raw.astype(np.float32)
    if raw.dtype.kind == "u":
        wave -= np.float32(1 << (bits - 1))
    wave *= np.float32(1.0 / (1 << (bits - 1)))
    return wave


def warn_beyond_full_scale(wave: np.ndarray, what: str) -> None:
    """Warn when float samples leave [-1, 1] (float audio's full scale): such a clip is scored
    as it is and ranks as anomalous for its loudness alone. ``what`` names it (a path)."""
    if not wave.size:
        return
    peak = float(np.max(np.abs(wave)))
    if peak > 1.0 + 1e-6:
        logger.warning("%s: float samples reach %.3g, beyond the [-1, 1] of float audio; "
                       "scored as they are (a clip so loud ranks as anomalous)", what, peak)


def _not_mono(p: Path, channels: int) -> AudioError:
    return AudioError(f"{p}: {channels} channels, DCASE clips are mono; convert it first, e.g. "
                      f"`sox {p.name} -c 1 mono_{p.name}`")


def _read_soundfile(p: Path) -> tuple[np.ndarray, int, bool]:
    """Any format libsndfile reads (the general path)."""
    with sf.SoundFile(str(p)) as f:
        _check_not_truncated(p, f.extra_info)
        if f.channels != 1:
            raise _not_mono(p, int(f.channels))
        data = f.read(dtype="float32", always_2d=True)
        return np.ascontiguousarray(data[:, 0]), int(f.samplerate), str(f.subtype).startswith(
            "PCM")


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def _read_plain_wav(p: Path) -> tuple[np.ndarray, int, bool] | None:
    """Fast path for RIFF wavs of 16/32-bit PCM or 32-bit float (DCASE clips are 16-bit PCM).

    libsndfile's float conversion costs several times the FFT work of a log-mel frame set;
    reading the data chunk with numpy gives the same values (int / 2**(bits-1)). Returns
    ``None`` for anything else, which then goes through libsndfile.
    """
    with p.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        fmt: tuple[int, int, int, int] | None = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None  # no data chunk: let libsndfile produce its error
            cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if cid == b"fmt ":
                body = f.read(size + (size & 1))
                if len(body) < 16:
                    return None
                code = int.from_bytes(body[0:2], "little")
                if code == _EXTENSIBLE and len(body) >= 26:
                    code = int.from_bytes(body[24:26], "little")  # sub-format GUID head
                fmt = (code, int.from_bytes(body[2:4], "little"),
                       int.from_bytes(body[4:8], "little"), int.from_bytes(body[14:16], "little"))
            elif cid == b"data":
                break
            else:
                f.seek(size + (size & 1), 1)
        if fmt is None:
            return None
        code, channels, rate, bits = fmt
        dtype = {(_PCM, 16): "<i2", (_PCM, 32): "<i4", (_FLOAT, 32): "<f4"}.get((code, bits))
        if dtype is None:
            return None
        available = os.fstat(f.fileno()).st_size - f.tell()
        if size in _STREAMING_SIZES:
            size = available
        if size > available:
            raise AudioError(f"{p}: truncated wav (header declares {size} data bytes, file "
                             f"holds {available}); re-download or re-extract the file")
        if channels != 1:
            raise _not_mono(p, channels)
        raw = np.fromfile(f, dtype=dtype, count=size // (bits // 8))
    if code == _FLOAT:
        return raw.astype(np.float32, copy=False), rate, False
    return pcm_to_float(raw), rate, True


def header_unfinished(path: str | Path) -> bool:
    """True when a RIFF/WAVE file's header still declares an unknown length (a RIFF or data
    size of 0 or 0xFFFFFFFF: what libsndfile and streaming recorders write until they close
    the file), i.e. it is probably still being written. False for anything else, unreadable
    files included (the decoder reports those)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    if int.from_bytes(head[4:8], "little") in _STREAMING_SIZES:
        return True
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"data":
            return size in _STREAMING_SIZES
        pos += 8 + size + (size & 1)
    return False


def load_wav(path: str | Path, *, sample_rate: int | None = None,
             resample: bool = False) -> np.ndarray:
    """Load a mono clip as float32 ``(n_samples,)``.

    Args:
        path: wav file.
        sample_rate: expected rate in Hz; ``None`` accepts the file's native rate.
        resample: if true, a file at another rate is resampled to ``sample_rate`` with
            ``torchaudio.functional.resample``; if false such a file raises :class:`AudioError`.
    """
    wave, rate = read_wav(path)
    if sample_rate is None or rate == sample_rate:
        return wave
    if not resample:
        raise AudioError(f"{path}: {rate} Hz, expected {sample_rate} Hz; resample the data set "
                         f"first, e.g. `sox {Path(path).name} -r {sample_rate} "
                         f"out_{Path(path).name}` (`score --resample` and load_wav(..., "
                         "resample=True) resample on the fly)")
    return resample_wave(wave, rate, sample_rate)


def load_downmixed(path: str | Path, sample_rate: int) -> np.ndarray:
    """Load any clip as mono float32 at ``sample_rate``: several channels are averaged, another
    rate is resampled (:func:`resample_wave`); a mono file goes through :func:`load_wav`'s
    validated path. For scoring foreign recordings with a bundle (``--resample``); training
    data is never downmixed."""
    refuse_non_utf8(Path(path), AudioError)
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
    return wave if int(sr) == sample_rate else resample_wave(wave, int(sr), sample_rate)


def downmix(wave: np.ndarray) -> np.ndarray:
    """Mono ``(n_samples,)`` of an ``(n_samples, channels...)`` waveform (channel mean)."""
    return np.ascontiguousarray(wave.reshape(wave.shape[0], -1).mean(axis=1))


def resample_wave(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a float32 ``(n_samples,)`` waveform."""
    import torch  # noqa: PLC0415

    require_torchaudio()  # a broken torch/torchaudio pair: one line and the fix
    import torchaudio.functional as taf  # noqa: PLC0415

    with torch.inference_mode():
        out = taf.resample(torch.from_numpy(wave), orig_rate, new_rate)
    result: np.ndarray = out.numpy().astype(np.float32, copy=False)
    return result


def _check_not_truncated(path: Path, extra_info: str) -> None:
    """libsndfile reads a truncated wav without complaint; its header log tells."""
    m = _TRUNCATED.search(extra_info)
    if m is None:
        return
    declared, actual = int(m.group(1)), int(m.group(2))
    if declared > actual and declared not in _STREAMING_SIZES:
        raise AudioError(f"{path}: truncated wav (header declares {declared} data bytes, file "
                         f"holds {actual}); re-download or re-extract the file")
