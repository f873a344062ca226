"""End to end: ``automl-asd apply`` on a tiny synthetic tree with the real pipeline, in Ray tasks.

Checks the issue asks for: files exist and are headerless, ``automl-asd evaluate`` reads them,
identical score files across runs (determinism, Ray vs serial), a corrupt wav fails only its
machine type (non-zero exit, error saved), Ray retries, and ``--resume``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from automl_asd.apply import ApplyConfig, SerialRunner, apply_recipe
from automl_asd.cli import main
from automl_asd.data import MachineData
from automl_asd.pipeline import MachineResult, SharedStates, run_machine
from automl_asd.recipe import Recipe, load_recipe

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RECIPE = "fast_default"


@pytest.fixture(scope="module")
def novel_root(tiny_novel_root: Path) -> Path:
    """The shared tiny tree of two novel synthetic types (tests/conftest.py)."""
    return tiny_novel_root


def _types(root: Path) -> list[str]:
    from automl_asd.data import find_machine_dirs

    return sorted(find_machine_dirs(root))


def _score_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("anomaly_score_*.csv"))}


def test_cli_apply_evaluate_resume_and_determinism(
    ray_session: None, novel_root: Path, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    mts = _types(novel_root)
    args = ["apply", "--frozen", RECIPE, "--data", str(novel_root), "--out", str(out),
            "--cache-dir", str(cache)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "official score Ω = " in printed and str(out) in printed

    for mt in mts:
        for kind in ("anomaly_score", "decision_result"):
            lines = (out / f"{kind}_{mt}_section_00_test.csv").read_text().splitlines()
            first_name, first_value = lines[0].split(",")
            assert first_name.endswith(".wav") and float(first_value) == float(first_value)
            assert all(len(ln.split(",")) == 2 for ln in lines)
        summary = json.loads((out / f"{mt}.summary.json").read_text())
        assert summary["recipe_name"] == RECIPE and summary["counts"]
        assert set(summary["timings"]) and summary["seconds"] > 0
        assert (out / f"roc_{mt}.png").is_file() and (out / f"hist_{mt}.png").is_file()
    assert (out / "results.csv").is_file() and (out / "results.md").is_file()
    # Ray tasks journal what they write: the run manifest lists every file, with its sha256
    from automl_asd.io.results import sha256_file
    from automl_asd.io.run_folder import RUN_MANIFEST

    listed = json.loads((out / RUN_MANIFEST).read_text())["files"]
    written = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and not p.name.startswith(".automl-asd-run")}
    assert set(listed) == written and all(sha256_file(out / r) == h for r, h in listed.items())

    # the official-layout evaluation reads the files unchanged and agrees with apply
    assert main(["evaluate", "--scores", str(out), "--ground-truth", str(novel_root),
                 "--json", str(tmp_path / "eval.json")]) == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    applied = json.loads((out / "metrics.json").read_text())
    assert evaluated["official_score"] == pytest.approx(applied["official_score"], abs=1e-12)
    assert set(evaluated["machine_types"]) == set(mts)

    # determinism: a second Ray run with a cold cache and a serial run give identical bytes
    first = _score_files(out)
    assert len(first) == len(mts)
    out2 = tmp_path / "out2"
    assert main(["apply", "--frozen", RECIPE, "--data", str(novel_root), "--out", str(out2),
                 "--cache-dir", str(tmp_path / "cache2"), "--no-plots"]) == 0
    assert _score_files(out2) == first
    out3 = tmp_path / "out3"
    apply_recipe(ApplyConfig(load_recipe(RECIPE), novel_root, out3, cache_dir=cache,
                             evaluate=False), runner=SerialRunner())
    assert _score_files(out3) == first

    # --resume: nothing recomputed, outputs untouched
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*_section_*_test.csv")}
    capsys.readouterr()
    assert main(args + ["--resume", "--no-plots"]) == 0
    assert f"0 machine type(s) applied, {len(mts)} resumed" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_section_*_test.csv")} == mtimes


def test_corrupt_wav_fails_only_its_machine_type(
    ray_session: None, novel_root: Path, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    shutil.copytree(novel_root, data, ignore=shutil.ignore_patterns("ground_truth_*"))
    mts = _types(data)
    bad, good = mts[0], mts[1:]
    victim = sorted((data / bad / "test").glob("*.wav"))[0]
    victim.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + b"\x00" * 7)
    out = tmp_path / "out"
    assert main(["apply", "--frozen", RECIPE, "--data", str(data), "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-plots"]) == 1
    printed = capsys.readouterr().out
    assert f"FAILED {bad}" in printed
    error = (out / f"{bad}.error.txt").read_text()
    assert victim.name in error
    assert not list(out.glob(f"*_{bad}_section_*"))
    for mt in good:
        assert (out / f"anomaly_score_{mt}_section_00_test.csv").is_file()
        assert (out / f"{mt}.summary.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["machine_types"]) == set(good)


class _FlakyRun:
    """Fails the first attempt of each machine type (marker file), then runs the pipeline."""

    def __init__(self, marker_dir: Path) -> None:
        self.marker_dir = marker_dir

    def __call__(self, recipe: Recipe, machine: MachineData, *, cache_dir: Path | None,
                 device: str, num_threads: int | None,
                 shared: SharedStates | None) -> MachineResult:
        marker = self.marker_dir / f"{machine.machine_type}.attempted"
        if not marker.exists():
            marker.write_text("1")
            raise RuntimeError(f"transient failure in {machine.machine_type}")
        return run_machine(recipe, machine, cache_dir=cache_dir, device=device,
                           num_threads=num_threads, shared=shared)


def test_ray_retries_transient_failures(
    ray_session: None, novel_root: Path, tmp_path: Path,  # noqa: F811
) -> None:
    from ray import cloudpickle

    from automl_asd.orchestration.ray_runner import RayRunner

    # The stand-in lives in this test module, which Ray workers cannot import by name.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    mt = _types(novel_root)[0]
    markers = tmp_path / "markers"
    markers.mkdir()
    common: dict[str, Any] = {"machine_types": (mt,), "cache_dir": tmp_path / "cache",
                              "evaluate": False}
    recipe = load_recipe(RECIPE)
    report = apply_recipe(ApplyConfig(recipe, novel_root, tmp_path / "retried", **common),
                          runner=RayRunner(max_retries=1, run_fn=_FlakyRun(markers)))
    assert report.ok and (tmp_path / "retried" / f"{mt}.summary.json").is_file()

    (markers / f"{mt}.attempted").unlink()
    report = apply_recipe(ApplyConfig(recipe, novel_root, tmp_path / "no_retry", **common),
                          runner=RayRunner(max_retries=0, run_fn=_FlakyRun(markers)))
    assert report.failed == (mt,)
    assert "transient failure" in (tmp_path / "no_retry" / f"{mt}.error.txt").read_text()
