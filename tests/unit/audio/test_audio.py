"""Audio loading: valid clips of mixed lengths, and every promised error naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from automl_asd.audio import AudioError, load_wav, read_wav, wav_info
from automl_asd.data import DataError


def _wav(path: Path, seconds: float = 0.5, rate: int = 16000, channels: int = 1,
         subtype: str = "PCM_16", value: float | None = None) -> Path:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    if value is not None:
        x[n // 2] = value
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    sf.write(path, data.astype(np.float32), rate, subtype=subtype)
    return path


@pytest.mark.parametrize("seconds", [6.0, 10.0])
def test_load_valid_clip(tmp_path: Path, seconds: float) -> None:
    p = _wav(tmp_path / "a.wav", seconds=seconds)
    x = load_wav(p, sample_rate=16000)
    assert x.dtype == np.float32 and x.shape == (int(seconds * 16000),)
    assert x.flags.c_contiguous
    assert abs(float(np.max(x)) - 0.5) < 1e-3  # 16-bit PCM scaled to [-1, 1]
    info = wav_info(p)
    assert (info.sample_rate, info.channels, info.frames) == (16000, 1, int(seconds * 16000))
    assert info.duration == pytest.approx(seconds)


def test_native_rate_when_not_requested(tmp_path: Path) -> None:
    x, rate = read_wav(_wav(tmp_path / "a.wav", rate=8000))
    assert rate == 8000 and x.shape == (4000,)
    assert load_wav(tmp_path / "a.wav").shape == (4000,)


def test_wrong_rate_errors_unless_resample(tmp_path: Path) -> None:
    p = _wav(tmp_path / "slow.wav", seconds=0.5, rate=8000)
    with pytest.raises(AudioError, match="8000 Hz, expected 16000 Hz") as exc:
        load_wav(p, sample_rate=16000)
    assert str(p) in str(exc.value)
    assert "`sox slow.wav -r 16000 out_slow.wav`" in str(exc.value)  # a fix a CLI user can run
    y = load_wav(p, sample_rate=16000, resample=True)
    assert y.dtype == np.float32 and y.shape == (8000,)
    # the 440 Hz tone survives: spectral peak at 440 Hz at the new rate
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 440.0) < 4.0


def _error(p: Path) -> str:
    with pytest.raises(AudioError) as exc:
        load_wav(p, sample_rate=16000)
    assert isinstance(exc.value, DataError)  # callers may catch the data-layer error
    msg = str(exc.value)
    assert str(p) in msg
    return msg


def test_stereo(tmp_path: Path) -> None:
    assert "2 channels" in _error(_wav(tmp_path / "st.wav", channels=2))


def test_empty(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    assert "empty wav" in _error(p)


def test_truncated(tmp_path: Path) -> None:
    p = _wav(tmp_path / "full.wav", seconds=1.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    assert "truncated wav" in _error(cut)


def test_corrupt_header(tmp_path: Path) -> None:
    p = _wav(tmp_path / "full.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(p.read_bytes()[:30])
    assert "corrupt" in _error(bad)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    assert "corrupt" in _error(junk)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite(tmp_path: Path, value: float) -> None:
    p = _wav(tmp_path / "nan.wav", subtype="FLOAT", value=value)
    assert "1 NaN/inf samples" in _error(p)


def test_missing(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "gone.wav")


def test_a_clip_this_user_may_not_read_says_so(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-07: a chmod 000 clip was called corrupt, with "re-download" advice. The
    suite may run as root (who reads it anyway): the permission check is stood in for."""
    import os

    p = _wav(tmp_path / "locked.wav")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == p
                        else real_access(path, mode))
    monkeypatch.setattr(sf, "info", lambda *a, **k: (_ for _ in ()).throw(
        sf.LibsndfileError(2, "Error opening: Permission denied")))
    import automl_asd.audio as audio

    def denied(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(audio, "_read_plain_wav", denied)
    for read in (read_wav, wav_info):
        with pytest.raises(AudioError) as exc:
            read(p)
        assert "cannot be read by this user (permission denied)" in str(exc.value)
        assert "corrupt" not in str(exc.value) and "re-download" not in str(exc.value)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_fast_path_equals_libsndfile(tmp_path: Path, subtype: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 16001).astype(np.float32)
    p = tmp_path / "x.wav"
    sf.write(p, x, 16000, subtype=subtype)
    ours, rate = read_wav(p)
    ref, ref_rate = sf.read(p, dtype="float32")
    assert rate == ref_rate == 16000 and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)
    if subtype == "PCM_16":  # 16-bit values are k / 32768
        np.testing.assert_array_equal(ours * 32768, np.round(ours * 32768))


def test_truncated_non_pcm16(tmp_path: Path) -> None:
    p = _wav(tmp_path / "full.wav", seconds=1.0, subtype="PCM_24")  # libsndfile path
    cut = tmp_path / "cut24.wav"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    assert "truncated wav" in _error(cut)


def test_float_samples_beyond_full_scale_are_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by probing (2026-12-06): a float wav at 50x full scale was scored without a word."""
    import soundfile as sf

    loud = tmp_path / "loud.wav"
    sf.write(loud, np.full(1600, 50.0, np.float32), 16000, subtype="FLOAT")
    wave, _ = read_wav(loud)
    assert float(wave.max()) == 50.0
    assert "loud.wav: float samples reach 50" in caplog.text
    caplog.clear()
    sf.write(loud, np.full(1600, 0.5, np.float32), 16000, subtype="FLOAT")
    read_wav(loud)
    assert caplog.text == ""


@pytest.mark.parametrize("subtype,dtype", [("PCM_U8", np.uint8), ("PCM_16", np.int16),
                                           ("PCM_32", np.int32)])
def test_pcm_to_float_matches_what_the_file_reader_gives(tmp_path: Path, subtype: str,
                                                         dtype: type) -> None:
    """One helper scales integer PCM for files and for in-memory arrays (Bundle.score):
    the same samples give the same floats both ways, and libsndfile agrees."""
    from automl_asd.audio import pcm_to_float

    info = np.iinfo(dtype)
    raw = np.array([info.min, info.min + 1, (int(info.min) + int(info.max)) // 2, info.max - 1,
                    info.max], dtype=dtype)
    path = tmp_path / "pcm.wav"
    # soundfile writes no uint8 array: 8-bit clips are written from their exact float values
    sf.write(path, (raw.astype(np.float64) - 128) / 128 if dtype is np.uint8 else raw, 16000,
             subtype=subtype)
    from_file, _ = read_wav(path)
    np.testing.assert_array_equal(pcm_to_float(raw), from_file)
    np.testing.assert_allclose(pcm_to_float(raw), sf.read(path, dtype="float64")[0], atol=1e-7)
    assert pcm_to_float(raw).dtype == np.float32
    assert pcm_to_float(raw)[0] == -1.0 and pcm_to_float(raw)[-1] <= 1.0
