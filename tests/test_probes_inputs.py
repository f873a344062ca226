"""The input-side reliability probes (feature cache, recipes, numerical failures, tracebacks,
download, submission formats, determinism), one test per probe row, so none can come back.

Each test states the probe it re-runs. Trees are copied before they are altered; every CLI
call goes through :func:`automl_asd.cli.main` (or a fresh interpreter where process-wide
state matters) and checks the exit code and the one-line message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from automl_asd.cli import main
from automl_asd.features import FeatureSpec, extract

SPEC = FeatureSpec(n_mels=32)


@pytest.fixture()
def fan(tiny_dev_root: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny ``fan`` machine type (``<tmp>/data/fan``)."""
    dst = tmp_path / "data" / "fan"
    shutil.copytree(tiny_dev_root / "fan", dst)
    return dst


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str, *needles: str) -> str:
    """The CLI's error line (no traceback) containing every needle."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- feature cache
def _entry(cache: Path) -> Path:
    (spec_dir,) = (cache / "features").iterdir()
    entries = [p for p in spec_dir.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1, entries
    return entries[0]


def _zero_middle(entry: Path) -> None:
    data = entry / "data.f32"
    raw = bytearray(data.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 4096] = bytes(4096)
    data.write_bytes(bytes(raw))


def _perturb_tenth(entry: Path) -> None:
    arr = np.fromfile(entry / "data.f32", dtype="<f4")
    arr[:: 10] += 1.0
    arr.tofile(entry / "data.f32")


def _all_nan(entry: Path) -> None:
    arr = np.fromfile(entry / "data.f32", dtype="<f4")
    arr[:] = np.nan
    arr.tofile(entry / "data.f32")


@pytest.mark.parametrize("corrupt", [_zero_middle, _perturb_tenth, _all_nan],
                         ids=["same-size zeroed", "10% values changed", "all NaN"])
def test_probe_cache_same_size_corruption_is_detected(
        fan: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        corrupt: Callable[[Path], None]) -> None:
    """Probe: data.f32 zeroed / 10% changed / all NaN in place (same size) was served
    silently (Ω 0.605 -> 0.248) or failed in KMeans naming nothing. Now: WARNING naming the
    entry, recomputed, identical features."""
    clips = sorted((fan / "train").glob("*.wav"))[:6]
    cache = tmp_path / "cache"
    clean = extract(clips, SPEC, cache_dir=cache, progress=False)
    entry = _entry(cache)
    corrupt(entry)
    with caplog.at_level("WARNING", logger="automl_asd.features"):
        again = extract(clips, SPEC, cache_dir=cache, progress=False)
    assert any(str(entry) in r.getMessage() and "checksum mismatch" in r.getMessage()
               for r in caplog.records), caplog.text
    for a, b in zip(clean, again, strict=True):
        assert np.array_equal(a, b)
    # the recomputed entry is clean again: a third read hits the cache without warnings
    caplog.clear()
    with caplog.at_level("WARNING", logger="automl_asd.features"):
        extract(clips, SPEC, cache_dir=cache, progress=False)
    assert not caplog.records


def test_probe_cache_partial_lookup_verifies_rows(fan: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A subset assembled from a larger entry checks the rows it uses as well."""
    clips = sorted((fan / "train").glob("*.wav"))[:6]
    cache = tmp_path / "cache"
    extract(clips, SPEC, cache_dir=cache, progress=False)
    _zero_middle(_entry(cache))
    with caplog.at_level("WARNING", logger="automl_asd.features"):
        sub = extract(clips[:5], SPEC, cache_dir=cache, progress=False)
    assert "checksum mismatch" in caplog.text
    ref = extract(clips[:5], SPEC, cache_dir=tmp_path / "fresh", progress=False)
    for a, b in zip(ref, sub, strict=True):
        assert np.array_equal(a, b)


def _replace_keep_mtime(clip: Path, donor: Path) -> None:
    st = clip.stat()
    assert donor.stat().st_size == st.st_size
    with open(clip, "r+b") as f:  # in place: same inode, same size
        f.write(donor.read_bytes())
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert clip.stat().st_mtime_ns == st.st_mtime_ns


@pytest.mark.parametrize("verify_audio", [False, True], ids=["stat key", "--verify-audio"])
def test_probe_same_size_clip_replacement_with_restored_mtime(
        fan: Path, tmp_path: Path, verify_audio: bool) -> None:
    """Probe: clip content replaced in place (same size), mtime restored -> stale features
    (score 0.102 instead of 2.119). Now recomputed: by default (the stat key includes ctime,
    which utime cannot restore) and with verify_audio (content digest)."""
    clips = sorted((fan / "train").glob("*.wav"))[:4]
    cache = tmp_path / "cache"
    before = extract(clips, SPEC, cache_dir=cache, progress=False, verify_audio=verify_audio)
    donor = sorted((fan / "test").glob("*anomaly*.wav"))[0]
    _replace_keep_mtime(clips[0], donor)
    after = extract(clips, SPEC, cache_dir=cache, progress=False, verify_audio=verify_audio)
    fresh = extract([donor], SPEC, cache_dir=tmp_path / "fresh", progress=False)[0]
    assert not np.array_equal(before[0], after[0])
    assert np.array_equal(after[0], fresh)


def test_probe_verify_audio_env_and_key(fan: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``AUTOML_ASD_VERIFY_AUDIO=1`` keys by content: a same-content touch is still a hit."""
    from automl_asd.features import ExtractStats

    clips = sorted((fan / "train").glob("*.wav"))[:3]
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUTOML_ASD_VERIFY_AUDIO", "1")
    extract(clips, SPEC, cache_dir=cache, progress=False)
    os.utime(clips[0], ns=(1, 1))  # metadata only
    st = ExtractStats()
    extract(clips, SPEC, cache_dir=cache, progress=False, stats=st)
    assert (st.n_cached, st.n_computed) == (3, 0)
    monkeypatch.delenv("AUTOML_ASD_VERIFY_AUDIO")
    st = ExtractStats()
    extract(clips, SPEC, cache_dir=cache, progress=False, stats=st)
    assert st.n_computed == 3  # the stat key is another key


def test_cache_entry_manifest_carries_checksums(fan: Path, tmp_path: Path) -> None:
    clips = sorted((fan / "train").glob("*.wav"))[:3]
    cache = tmp_path / "cache"
    feats = extract(clips, SPEC, cache_dir=cache, progress=False)
    doc = json.loads((_entry(cache) / "manifest.json").read_text())
    import hashlib

    assert doc["checksums"] == [hashlib.sha256(np.ascontiguousarray(f, "<f4")).hexdigest()[:32]
                                for f in feats]
    assert not list((cache / "features").glob("*/.tmp-*"))


def test_probe_huge_float_samples_name_the_clip(fan: Path, tmp_path: Path) -> None:
    """Probe: a finite but huge float wav (x1e30) gave NaN features and sklearn's KMeans
    message naming no file (retried twice under Ray). Now: NonFiniteError (permanent, so the
    Ray runner does not retry it) naming the clip."""
    import soundfile as sf

    from automl_asd.errors import NonFiniteError, PermanentError

    clip = sorted((fan / "train").glob("*.wav"))[0]
    wave, sr = sf.read(clip, dtype="float32")
    sf.write(clip, wave * np.float32(1e30), sr, subtype="FLOAT")
    with pytest.raises(NonFiniteError, match=str(clip)) as info:
        extract([clip], SPEC, cache_dir=tmp_path / "cache", progress=False)
    assert isinstance(info.value, PermanentError)
    assert not list((tmp_path / "cache").rglob("data.f32"))  # nothing cached


def test_probe_huge_float_samples_cli(fan: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import soundfile as sf

    clip = sorted((fan / "train").glob("*.wav"))[0]
    wave, sr = sf.read(clip, dtype="float32")
    sf.write(clip, wave * np.float32(1e30), sr, subtype="FLOAT")
    rc, _, err = _cli(capsys, "apply", "--frozen", "fast_default", "--data", str(fan.parent),
                      "--out", str(tmp_path / "out"), "--serial", "--no-plots",
                      "--cache-dir", str(tmp_path / "cache"))
    assert rc == 1
    log = (tmp_path / "out" / "fan.error.txt").read_text()
    assert "NonFiniteError" in log and clip.name in log


def test_permanent_errors_are_not_retried_by_ray_task(fan: Path, tmp_path: Path) -> None:
    """The Ray task body turns every PermanentError (data, recipe, non-finite) into a failed
    outcome at once instead of raising it into Ray's retries; other errors still propagate."""
    from automl_asd.apply import MachineJob
    from automl_asd.errors import NonFiniteError
    from automl_asd.orchestration.apply import _task
    from automl_asd.recipe import load_recipe

    def nonfinite(*args: object, **kwargs: object) -> object:
        raise NonFiniteError("clip.wav: features contain NaN")

    def crash(*args: object, **kwargs: object) -> object:
        raise RuntimeError("CUDA error: out of memory")

    job = MachineJob(recipe=load_recipe("fast_default").to_dict(), data_root=str(fan.parent),
                     machine_type="fan", out_dir=str(tmp_path / "out"))
    outcome = _task(job, nonfinite)  # type: ignore[arg-type]
    assert outcome.status == "failed"
    assert outcome.error is not None and "NonFiniteError: clip.wav" in outcome.error
    with pytest.raises(RuntimeError, match="CUDA"):
        _task(job, crash)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- determinism
_AE_TINY = {
    "schema_version": 1, "name": "ae_tiny",
    "features": {"n_mels": 64},
    "detector": {"name": "dcase_ae", "params": {"epochs": 4, "hidden": 64, "bottleneck": 8,
                                                "batch_size": 64}},
}


@pytest.mark.slow
def test_probe_serial_apply_cold_vs_warm_cache_byte_identical(tiny_dev_root: Path,
                                                              tmp_path: Path) -> None:
    """Probe: ``apply --serial`` of an AE recipe scored differently with a warm and a cold
    feature cache (the decode pool's ``torch.set_num_threads(1)`` leaked into the trainer:
    Ω 0.4724 vs 0.4683). Fresh interpreters, as a user runs it: cold then warm, same bytes."""
    recipe = tmp_path / "ae_tiny.json"
    recipe.write_text(json.dumps(_AE_TINY))
    env = {**os.environ, "AUTOML_ASD_CACHE": str(tmp_path / "cache")}
    env.pop("OMP_NUM_THREADS", None)
    outs = []
    for run in ("cold", "warm"):
        out = tmp_path / run
        proc = subprocess.run(
            [sys.executable, "-m", "automl_asd.cli", "apply", "--frozen", str(recipe), "--data",
             str(tiny_dev_root), "--machine-types", "fan", "--out", str(out), "--serial",
             "--no-plots"], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        computed = "(0 cached, " if run == "cold" else ", 0 computed)"
        assert computed in proc.stderr, proc.stderr[-3000:]
        outs.append(out)
    csvs = sorted(p.name for p in outs[0].glob("*.csv") if p.name.startswith(("anomaly_",
                                                                                "decision_")))
    assert csvs
    for name in csvs:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_decode_pool_does_not_change_callers_threads(tmp_path: Path, fan: Path) -> None:
    """Fresh interpreter: torch threads of the main thread are the same after a cold extract
    (decode pool with one thread each) as without it."""
    code = (
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from automl_asd.features import FeatureSpec, extract\n"
        "clips = sorted(Path(sys.argv[1]).glob('*.wav'))[:4]\n"
        "extract(clips, FeatureSpec(n_mels=32), cache_dir=sys.argv[2], workers=2,"
        " progress=False)\n"
        "print(torch.get_num_threads())\n")
    proc = subprocess.run([sys.executable, "-c", code, str(fan / "train"), str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    default = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                             capture_output=True, text=True, timeout=300,
                             env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert proc.stdout.strip() == default.stdout.strip()


def test_stage_threads_sets_and_restores() -> None:
    import torch

    from automl_asd.threads import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
