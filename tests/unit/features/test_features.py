"""Features: numbers of log-mel/STFT on known signals, and the on-disk cache's behaviour."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from automl_asd.audio import AudioError
from automl_asd.data import Clip, Domain, Label, Split
from automl_asd.features import (
    ExtractStats,
    FeatureSpec,
    compute,
    default_cache_dir,
    default_workers,
    extract,
)

SR = 16000


def _tone(seconds: float, freq: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _clips(folder: Path, n: int, seconds: float = 0.5, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sec = seconds if i % 3 else seconds * 0.6  # mixed lengths
        x = 0.1 * rng.standard_normal(int(sec * SR)) + _tone(sec, 300.0 + 50 * i, 0.2)
        p = folder / f"section_00_source_train_normal_{i:04d}_a_{i}.wav"
        sf.write(p, x.astype(np.float32), SR, subtype="PCM_16")
        out.append(p)
    return out


def test_logmel_shape_and_defaults() -> None:
    spec = FeatureSpec()
    assert (spec.n_fft, spec.hop_length, spec.n_mels, spec.power) == (1024, 512, 128, 2.0)
    f = compute(_tone(10.0), spec)
    assert f.dtype == np.float32 and f.shape == (313, 128)  # 1 + 160000 // 512 frames
    assert compute(_tone(6.0), spec).shape == (188, 128)


def test_stft_power_db_of_a_sine() -> None:
    # A periodic-Hann frame of a sine at bin k has |X[k]| = amp * sum(w) / 2 = amp * n_fft / 4.
    spec = FeatureSpec(kind="stft")
    assert spec.n_bins == 513
    f = compute(_tone(1.0, freq=1000.0, amp=0.5), spec)
    mid = f[f.shape[0] // 2]
    assert int(np.argmax(mid)) == 64  # 1000 Hz / (16000 / 1024) Hz per bin
    assert mid[64] == pytest.approx(20 * np.log10(0.5 * 1024 / 4), abs=0.05)  # 42.14 dB
    mag = compute(_tone(1.0, freq=1000.0, amp=0.5), FeatureSpec(kind="stft", power=1.0))
    assert mag[mag.shape[0] // 2, 64] == pytest.approx(mid[64], abs=1e-3)  # same dB either way
    lin = compute(_tone(1.0, amp=0.5), FeatureSpec(kind="stft", power=1.0, log=False))
    assert lin[lin.shape[0] // 2, 64] == pytest.approx(128.0, rel=1e-3)


def test_logmel_peak_and_floor() -> None:
    f = compute(_tone(1.0, freq=1000.0), FeatureSpec())
    centre = f[f.shape[0] // 2]
    htk = compute(_tone(1.0, freq=1000.0), FeatureSpec(mel_scale="htk", mel_norm="none"))
    # slaney: 1 kHz = 15 mel, 8 kHz = 15 + 27 ln 8 / ln 6.4 = 45.25 mel; 130 edge points
    # spread evenly over [0, 45.25] put the filter centred on 1 kHz at index 15/45.25*129-1
    assert int(np.argmax(centre)) == round(15 / 45.25 * 129 - 1)  # 42
    assert not np.allclose(centre, htk[htk.shape[0] // 2])  # the option changes the features
    silent = compute(np.zeros(SR, np.float32), FeatureSpec())
    assert np.allclose(silent, 10 * np.log10(sys.float_info.epsilon), atol=1e-3)  # -156.5 dB


def _slaney_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27),
                    lin)


def _slaney_hz(m: np.ndarray) -> np.ndarray:
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27), m * 200.0 / 3)


def _reference_logmel(x: np.ndarray, n_fft: int = 1024, hop: int = 512, n_mels: int = 128,
                      sr: int = SR) -> np.ndarray:
    """The baseline's librosa log-mel written out in float64 numpy (slaney scale and norm,
    periodic Hann, centred frames, power 2, 10*log10(max(mel, eps)))."""
    pad = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    n_frames = 1 + (len(pad) - n_fft) // hop
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([pad[i * hop:i * hop + n_fft] * win for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (n_frames, n_fft//2+1)
    hz = _slaney_hz(np.linspace(_slaney_mel(np.array(0.0)), _slaney_mel(np.array(sr / 2)),
                                n_mels + 2))
    fft_f = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fdiff = np.diff(hz)
    ramps = hz[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    fb = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (hz[2:] - hz[:-2]))[:, None]
    mel = power @ fb.T
    return np.asarray(10 * np.log10(np.maximum(mel, sys.float_info.epsilon)))


def test_logmel_equals_reference_formula() -> None:
    rng = np.random.default_rng(5)
    x = (0.05 * rng.standard_normal(SR * 2) + _tone(2.0, 440.0, 0.3)).astype(np.float32)
    ours = compute(x, FeatureSpec())
    ref = _reference_logmel(x)
    assert ours.shape == ref.shape == (63, 128)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-3)  # dB; float32 vs float64


def test_compute_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        compute(np.zeros((2, 1000), np.float32), FeatureSpec())
    with pytest.raises(ValueError, match="too short"):
        compute(np.zeros(100, np.float32), FeatureSpec())


def test_extract_matches_compute_and_hits_cache(tmp_path: Path) -> None:
    paths = _clips(tmp_path / "wav", 7)
    spec = FeatureSpec()
    stats = ExtractStats()
    first = extract(paths, spec, cache_dir=tmp_path / "c", workers=2, progress=False,
                    stats=stats)
    assert (stats.n_computed, stats.n_cached, stats.entries_written) == (7, 0, 1)
    for p, f in zip(paths, first, strict=True):
        x, _ = sf.read(p, dtype="float32")
        # float32 sums may differ in the last bit between torch thread counts
        np.testing.assert_allclose(f, compute(x, spec), rtol=0, atol=1e-4)
    assert {f.shape[0] for f in first} == {16, 10}  # mixed lengths: 0.5 s and 0.3 s clips

    again = ExtractStats()
    second = extract(list(reversed(paths)), spec, cache_dir=tmp_path / "c", stats=again)
    assert (again.n_computed, again.n_cached, again.entries_written) == (0, 7, 0)
    for a, b in zip(first, reversed(second), strict=True):
        np.testing.assert_array_equal(a, b)
    second[0][0, 0] = 1.0  # returned arrays are writable

    clips = [Clip(p, "fan", "00", Split.TRAIN, Domain.SOURCE, Label.NORMAL, i, ())
             for i, p in enumerate(paths)]
    sub = ExtractStats()
    part = extract(clips[2:5], spec, cache_dir=tmp_path / "c", stats=sub)
    assert (sub.n_computed, sub.n_cached, sub.entries_written) == (0, 3, 0)
    np.testing.assert_array_equal(part[1], first[3])


def test_superset_computes_only_new_clips(tmp_path: Path) -> None:
    train = _clips(tmp_path / "train", 4)
    supp = _clips(tmp_path / "supp", 2, seed=1)
    spec = FeatureSpec(n_mels=64)
    extract(train, spec, cache_dir=tmp_path / "c", progress=False)
    stats = ExtractStats()
    both = extract(train + supp, spec, cache_dir=tmp_path / "c", progress=False, stats=stats)
    assert (stats.n_computed, stats.n_cached) == (2, 4)
    assert all(f.shape[1] == 64 for f in both)
    stats2 = ExtractStats()
    extract(supp + train, spec, cache_dir=tmp_path / "c", stats=stats2)
    assert stats2.n_computed == 0


def test_changed_file_or_spec_recomputes(tmp_path: Path) -> None:
    paths = _clips(tmp_path / "wav", 3)
    extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False)
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    stats = ExtractStats()
    extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=stats)
    assert (stats.n_computed, stats.n_cached) == (1, 2)
    stft = ExtractStats()
    out = extract(paths, FeatureSpec(kind="stft"), cache_dir=tmp_path / "c", progress=False,
                  stats=stft)
    assert stft.n_computed == 3 and out[0].shape[1] == 513


def test_workers_one_equals_threaded(tmp_path: Path) -> None:
    paths = _clips(tmp_path / "wav", 5)
    a = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c1", workers=1, progress=False)
    b = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c2", workers=2, progress=False)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-4)


def test_concurrent_writers_leave_one_complete_entry(tmp_path: Path) -> None:
    paths = _clips(tmp_path / "wav", 6)
    results: list[list[np.ndarray]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)
    stats = [ExtractStats() for _ in range(3)]

    def run(st: ExtractStats) -> None:
        try:
            barrier.wait()
            results.append(extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", workers=1,
                                   progress=False, stats=st))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(st,)) for st in stats]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    # the lock lets one caller compute; the others wait and read its entry
    assert sorted(st.n_computed for st in stats) == [0, 0, 6]
    assert sum(st.entries_written for st in stats) == 1
    for r in results[1:]:
        for x, y in zip(results[0], r, strict=True):
            np.testing.assert_array_equal(x, y)
    spec_dirs = list((tmp_path / "c" / "features").iterdir())
    assert len(spec_dirs) == 1
    names = [e.name for e in spec_dirs[0].iterdir() if not e.name.startswith(".lock-")]
    assert len(names) == 1 and not names[0].startswith(".")  # one entry, no temp folder left
    stats = ExtractStats()
    extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", stats=stats)
    assert stats.n_computed == 0


def test_corrupt_entry_is_recomputed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = _clips(tmp_path / "wav", 3)
    stats = ExtractStats()
    ref = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=stats)
    (stats.written[0] / "data.f32").write_bytes(b"garbage")
    again = ExtractStats()
    out = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=again)
    assert again.n_computed == 3 and "unusable" in caplog.text
    np.testing.assert_array_equal(out[2], ref[2])


@pytest.mark.parametrize("manifest", ["[]", "7", "null"])
def test_a_manifest_of_another_json_shape_is_an_unusable_entry(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, manifest: str) -> None:
    """Found 2026-12-06: valid JSON that is not an object raised AttributeError on every
    later extraction of the spec, exact or partial, and the entry was never discarded."""
    paths = _clips(tmp_path / "wav", 4)
    stats = ExtractStats()
    ref = extract(paths[:3], FeatureSpec(), cache_dir=tmp_path / "c", progress=False,
                  stats=stats)
    (stats.written[0] / "manifest.json").write_text(manifest)
    again = ExtractStats()
    out = extract(paths[:3], FeatureSpec(), cache_dir=tmp_path / "c", progress=False,
                  stats=again)
    assert again.n_computed == 3 and "unusable" in caplog.text
    np.testing.assert_array_equal(out[0], ref[0])
    (again.written[0] / "manifest.json").write_text(manifest)  # and a superset's lookup
    more = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False)
    np.testing.assert_array_equal(more[2], ref[2])


def test_an_entry_folder_without_its_manifest_is_written_again(tmp_path: Path) -> None:
    """Found by probing (2026-12-06): an entry whose manifest.json was lost was recomputed on
    every run and never stored again ("Directory not empty ... continuing uncached")."""
    paths = _clips(tmp_path / "wav", 4)
    stats = ExtractStats()
    ref = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=stats)
    (stats.written[0] / "manifest.json").unlink()
    again = ExtractStats()
    extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=again)
    assert (again.n_computed, again.entries_written) == (4, 1)
    third = ExtractStats()
    out = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=third)
    assert (third.n_computed, third.n_cached) == (0, 4)
    np.testing.assert_array_equal(out[3], ref[3])


def test_forged_non_finite_rows_are_recomputed(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """NaN rows behind a recomputed (forged) checksum are never served: the entry is discarded
    with a WARNING naming the clip and the features recomputed (before, the NaN reached the
    detector, which failed without naming a file, and Ray retried it)."""
    import json

    from automl_asd import features

    paths = _clips(tmp_path / "wav", 3)
    stats = ExtractStats()
    ref = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=stats)
    entry = stats.written[0]
    n_bins = FeatureSpec().n_bins
    data = np.fromfile(entry / "data.f32", dtype="<f4").reshape(-1, n_bins)
    rows = ref[1].shape[0]
    start = ref[0].shape[0]
    data[start:start + rows] = np.nan
    data.tofile(entry / "data.f32")
    doc = json.loads((entry / "manifest.json").read_text())
    doc["checksums"][1] = features._digest(np.ascontiguousarray(data[start:start + rows]))
    (entry / "manifest.json").write_text(json.dumps(doc))
    again = ExtractStats()
    out = extract(paths, FeatureSpec(), cache_dir=tmp_path / "c", progress=False, stats=again)
    assert again.n_computed == 3
    assert f"non-finite values in the rows of {os.path.abspath(paths[1])}" in caplog.text
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_extract_reports_bad_wav(tmp_path: Path) -> None:
    paths = _clips(tmp_path / "wav", 3)
    bad = tmp_path / "wav" / "stereo.wav"
    sf.write(bad, np.zeros((SR, 2), np.float32), SR)
    with pytest.raises(AudioError, match="2 channels") as exc:
        extract([*paths, bad], FeatureSpec(), cache_dir=tmp_path / "c", workers=2,
                progress=False)
    assert str(bad) in str(exc.value)
    slow = tmp_path / "slow.wav"
    sf.write(slow, _tone(1.0)[:8000], 8000)
    with pytest.raises(AudioError, match="8000 Hz"):
        extract([slow], FeatureSpec(), cache_dir=tmp_path / "c", progress=False)
    out = extract([slow], FeatureSpec(), cache_dir=tmp_path / "c", progress=False,
                  resample=True)
    assert out[0].shape == (32, 128)  # resampled to 16000 samples
    with pytest.raises(AudioError, match="no such file"):
        extract([tmp_path / "missing.wav"], FeatureSpec(), cache_dir=tmp_path / "c")


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOML_ASD_CACHE", str(tmp_path / "cc"))
    assert default_cache_dir() == tmp_path / "cc"
    monkeypatch.delenv("AUTOML_ASD_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "automl-asd"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_workers() == 1
    assert extract([], FeatureSpec(), cache_dir=tmp_path / "c") == []


def test_unfinished_entries_of_killed_writers_are_removed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A writer killed mid-entry leaves ``.tmp-<key>-<host>-<pid>-<id>``; the next writer of
    that key removes it when its process is gone (this host) or it is a day old (another
    host), and leaves live writers' and other keys' folders alone."""
    import socket
    import subprocess
    import time

    from automl_asd import features

    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    key, other = "a" * 32, "b" * 32
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    old = time.time() - features.STALE_TMP_SECONDS - 60
    made = {
        "dead_here": f".tmp-{key}-{host}-{dead.pid}-00000000",
        "dead_old_format": f".tmp-{key}-{dead.pid}-00000001",  # before hosts were named
        "alive_here": f".tmp-{key}-{host}-{os.getpid()}-00000002",
        "alive_here_old": f".tmp-{key}-{host}-{os.getpid()}-00000006",  # a long writer
        "other_host_fresh": f".tmp-{key}-other-host-{dead.pid}-00000003",
        "other_host_old": f".tmp-{key}-other-host-{dead.pid}-00000004",
        "other_key": f".tmp-{other}-{host}-{dead.pid}-00000005",
    }
    for name in made.values():
        (spec_dir / name).mkdir()
        (spec_dir / name / "data.f32").write_bytes(b"\0" * 1000)
    os.utime(spec_dir / made["other_host_old"], (old, old))
    os.utime(spec_dir / made["alive_here_old"], (old, old))
    with caplog.at_level("INFO", logger="automl_asd.features"):
        freed = features.remove_stale_entries(spec_dir, key)
    left = {p.name for p in spec_dir.iterdir()}
    assert left == {made["alive_here"], made["alive_here_old"], made["other_host_fresh"],
                    made["other_key"]}
    assert freed == 3000
    assert sum("unfinished entry of a killed writer" in r.getMessage()
               for r in caplog.records) == 3


def test_sigterm_during_extraction_leaves_no_unfinished_entry(tmp_path: Path) -> None:
    """``kill`` (SIGTERM) of a command while it writes a cache entry interrupts it like Ctrl-C:
    the entry's temporary folder is removed, nothing half-written is left. Runs in a child
    process (a regression would kill pytest itself)."""
    import subprocess

    clips = _clips(tmp_path / "wavs", 4)
    cache = tmp_path / "cache"
    script = f"""
import os, signal
from automl_asd import cli, features

real = features._EntryWriter.add
def add(self, arr):
    real(self, arr)
    assert list(self.tmp.iterdir()), "the entry is being written"
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` would, mid-entry
features._EntryWriter.add = add

cli._interrupt_on_sigterm()  # what cli.main does first
try:
    features.extract({[str(c) for c in clips]!r}, features.FeatureSpec(),
                     cache_dir={str(cache)!r}, progress=False, workers=1)
except KeyboardInterrupt:
    print("interrupted")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "interrupted"
    assert cache.is_dir() and not list(cache.rglob(".tmp-*"))


@pytest.mark.parametrize("limit_kb", [1, 12, 40])
def test_a_full_file_size_limit_while_caching_leaves_features_and_no_entry(
        tmp_path: Path, limit_kb: int) -> None:
    """Found with `ulimit -f` (2026-12-07): the cache writer's clean-up closed a file whose
    buffered write had failed, the close failed again (EFBIG), and a cache write that should
    only warn failed the whole machine type. Runs in a child process under RLIMIT_FSIZE."""
    import subprocess

    clips = _clips(tmp_path / "wavs", 6, seconds=1.0)
    cache = tmp_path / "cache"
    script = f"""
import resource
import numpy as np
from automl_asd import features

spec = features.FeatureSpec()
want = features.extract({[str(c) for c in clips]!r}, spec, cache_dir=None, progress=False,
                        workers=1)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_kb * 1024}, {limit_kb * 1024}))
got = features.extract({[str(c) for c in clips]!r}, spec, cache_dir={str(cache)!r},
                       progress=False, workers=1)
assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert "could not write feature cache entry" in proc.stderr
    assert not list(cache.rglob(".tmp-*"))  # nothing half-written left behind


def test_integer_pcm_is_scaled_as_a_wav_file_is_read() -> None:
    """Found by a library probe (2026-12-07): ``compute`` took an int16 clip unscaled (mean
    +70 dB against -20 dB for the same clip as float), where ``Bundle.score`` scaled it."""
    from automl_asd.features import FeatureSpec, compute

    rng = np.random.default_rng(0)
    pcm = (rng.normal(scale=0.1, size=16000) * 32767).astype(np.int16)
    spec = FeatureSpec()
    as_float = compute(pcm.astype(np.float32) / 32768, spec)
    np.testing.assert_array_equal(compute(pcm, spec), as_float)
    np.testing.assert_array_equal(compute(pcm.astype(np.int32) << 16, spec), as_float)
    with pytest.raises(ValueError, match="integer PCM must be 8, 16 or 32 bit"):
        compute(pcm.astype(np.int64), spec)
    # a Python list of numbers is float samples, as before (found by a review)
    samples = (pcm.astype(np.float32) / 32768).tolist()
    np.testing.assert_allclose(compute(samples, spec), as_float, rtol=1e-5, atol=1e-4)
    assert compute([0] * 16000, spec).shape == compute(np.zeros(16000), spec).shape


def test_a_full_cache_disk_warns_once_naming_the_folder_and_its_free_space(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found on a real full tmpfs (2026-12-07): every entry that could not be stored gave its
    own WARNING, with a bare `[Errno 28] No space left on device` and nothing about how full
    the cache folder was. Now: one WARNING per folder naming it and its free space, then INFO;
    the features are the uncached ones and no entry is left."""
    import errno
    import logging

    import automl_asd.features as features

    clips = _clips(tmp_path / "wavs", 4)
    spec = FeatureSpec()
    want = extract(clips, spec, cache_dir=tmp_path / "warm", progress=False, workers=1)
    cache = tmp_path / "cache"

    add = features._EntryWriter.add

    def add_or_full(self: features._EntryWriter, arr: np.ndarray) -> None:
        if self.file is not None:  # the data file's write() fails, naming no file
            self._fail(OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(features._EntryWriter, "add", add_or_full)
    with caplog.at_level(logging.INFO, logger="automl_asd.features"):
        got = [*extract(clips[:2], spec, cache_dir=cache, progress=False, workers=1),
               *extract(clips[2:], spec, cache_dir=cache, progress=False, workers=1)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    failed = [r for r in caplog.records if "could not write feature cache entry" in r.message]
    assert [r.levelno for r in failed] == [logging.WARNING, logging.INFO]
    assert f"cache folder {cache}: " in failed[0].message and "MB free" in failed[0].message
    assert "no space left on the device" in failed[0].message
    monkeypatch.setattr(features._EntryWriter, "add", add)
    assert not [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".lock")]
