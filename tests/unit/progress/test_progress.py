"""Progress on long steps, quiet otherwise: epoch lines of the neural families, one line per
finished search trial and per applied machine type, and no Ray/Tune/Optuna chatter without -v."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from automl_asd.progress import EpochLog, format_seconds, types_label

#: What Ray, Tune and Optuna print unless told not to.
NOISE = ("Token authentication", "Started a local Ray instance", "Configuration for experiment",
         "TensorBoard", "Trial status", "pid=", "A new study created", "Wrote the latest version",
         "View detailed results", "Trial trainable")


def test_epoch_log_throttles_to_about_ten_lines_plus_the_last(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.epochs")
    for epochs, expected in ((100, [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]), (2, [1, 2]),
                             (1, [1]), (25, [1, 3, 6, 9, 12, 15, 18, 21, 24, 25])):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="test.epochs"):
            progress = EpochLog(log, "ae (fan)", epochs)
            for epoch in range(1, epochs + 1):
                progress.log(epoch, 1.0 / epoch)
        logged = [int(m.group(1)) for r in caplog.records
                  if (m := re.search(r"epoch (\d+)/", r.getMessage()))]
        assert logged == expected
        last = caplog.records[-1].getMessage()
        assert last.startswith(f"ae (fan): epoch {epochs}/{epochs} loss {1.0 / epochs:.4f} (")
        assert "ETA" not in last  # nothing left after the last epoch
    assert "ETA" in caplog.records[0].getMessage() or expected == [1]


def test_format_seconds_and_types_label() -> None:
    assert [format_seconds(s) for s in (0.4, 59, 61, 3725, float("nan"))] == [
        "0 s", "59 s", "1 min 01 s", "1 h 02 min", "?"]
    assert types_label(np.array(["fan", "fan"])) == "fan"
    assert types_label(["fan", "pump", "fan"]) == "2 machine types"


@pytest.mark.parametrize("family,params", [
    ("dcase_ae", {"epochs": 30, "batch_size": 32}),
    ("margin_cnn", {"size": "tiny", "crop_frames": 16, "emb_dim": 16, "epochs": 4,
                    "batch_size": 16}),
])
def test_neural_families_log_their_epochs(caplog: pytest.LogCaptureFixture, family: str,
                                          params: dict[str, Any]) -> None:
    import torch

    from automl_asd.detectors import TrainSet, make_detector

    rng = np.random.default_rng(0)
    n = 24
    train = TrainSet(
        features=[rng.normal(size=(24, 16)).astype(np.float32) for _ in range(n)],
        domains=np.asarray(["source"] * (n - 4) + ["target"] * 4),
        attributes=np.asarray(["noAttribute"] * n), sections=np.asarray(["00"] * n),
        machine_types=np.asarray(["fan"] * n),
        names=np.asarray([f"c{i}.wav" for i in range(n)]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with caplog.at_level(logging.INFO):
            make_detector(family, params, seed=0).fit(train)
    finally:
        torch.set_num_threads(threads)
    epochs = params["epochs"]
    lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert lines[0].startswith(f"{family} (fan): epoch 1/{epochs} loss ")
    assert lines[-1].startswith(f"{family} (fan): epoch {epochs}/{epochs} loss ")
    assert len(lines) <= 11
    assert all(r.levelno == logging.INFO for r in caplog.records if " epoch " in r.getMessage())


def _trial(tid: str, status: str, **result: Any) -> Any:
    return SimpleNamespace(trial_id=tid, status=status, last_result=result, error_msg=None)


def test_trial_line_counts_statuses_and_the_best_complete_omega() -> None:
    from automl_asd.orchestration.progress import TrialProgress

    progress = TrialProgress(n_rungs=2, bar=False)
    progress.setup(total_num_samples=5)
    base = _trial("a", "TERMINATED", omega=0.6, rung=2, is_reference=1)
    early = _trial("b", "TERMINATED", omega=0.9, rung=1)  # stopped early: not a best
    running = _trial("c", "RUNNING", omega=0.7, rung=2)  # just finished, status not set yet
    trials = [base, early, running, _trial("d", "PENDING")]
    progress.session_done = 3
    line = progress.line(trials, running, error=False)
    assert line.startswith("search 3/5 trial c complete      Ω 0.7000 | best Ω 0.7000 | ")
    assert "elapsed, ETA" in line
    assert " stopped early Ω 0.9000 at rung 1/2 | best Ω 0.6000" in progress.line(
        [base, early], early, error=False)
    assert "(reference recipe)" in progress.line([base], base, error=False)
    failed = SimpleNamespace(trial_id="e", status="ERROR", last_result={},
                             error_msg="Traceback...\nValueError: bad recipe")
    assert "trial e ERROR: ValueError: bad recipe |" in progress.line([failed], failed,
                                                                     error=True)


def test_trial_line_eta_never_runs_past_the_time_budget() -> None:
    """Found 2026-12-07: with ``--time-budget 600`` the line said ``ETA 2h`` (trials left times
    the mean time per trial) although the search ends when the budget does."""
    from automl_asd.orchestration.budget import set_deadline
    from automl_asd.orchestration.progress import TrialProgress

    progress = TrialProgress(n_rungs=1, bar=False)
    progress.setup(total_num_samples=100)
    progress.t0 -= 120.0  # 2 minutes for the first trial: 99 more are ~3 h
    progress.session_done = 1
    done = _trial("a", "TERMINATED", omega=0.6, rung=1)
    try:
        set_deadline(None)
        assert progress.line([done], done, error=False).endswith(", ETA 3 h 18 min")
        set_deadline(600.0)
        line = progress.line([done], done, error=False)
        assert "ETA" not in line, line
        assert re.search(r", ends with the time budget in (9|10) min( \d\d s)?$", line), line
        set_deadline(10 * 3600.0)  # a budget longer than the trials need: the ETA again
        assert ", ETA " in progress.line([done], done, error=False)
    finally:
        set_deadline(None)


def _cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # the default notice
    env.pop("RAY_AIR_NEW_OUTPUT", None)
    return subprocess.run([sys.executable, "-m", "automl_asd.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.ray
@pytest.mark.slow
def test_search_prints_one_line_per_trial_and_no_ray_noise(tmp_path: Path,
                                                           tiny_dev_root: Path) -> None:
    res = _cli(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "3",
                "--machine-types", "fan", "gearbox", "--out", str(tmp_path / "run")], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    lines = re.findall(r"search (\d)/3 trial \w+ (complete|stopped early) +Ω (\d\.\d{4}).*"
                       r"\| best Ω (\d\.\d{4}|-) \| .* elapsed", out)
    assert [int(n) for n, *_ in lines] == [1, 2, 3], out
    assert "(reference point)" in out  # smoke's first point is not fast_default itself
    for noise in NOISE:
        assert noise not in out, f"{noise!r} in the output:\n{out}"


@pytest.mark.ray
@pytest.mark.slow
def test_apply_reports_each_machine_type_with_its_stages_and_no_ray_noise(
        tmp_path: Path, tiny_novel_root: Path) -> None:
    res = _cli(["apply", "--frozen", "fast_default", "--data", str(tiny_novel_root),
                "--out", str(tmp_path / "out"), "--no-plots"], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert re.search(r"apply: 2 Ray task\(s\) submitted \((compressor, grinder|grinder, "
                     r"compressor)\)", out), out
    done = re.findall(r"apply \[(\d)/2\] (\w+) done in [\d.]+ s \(features [\d.]+ s, fit "
                      r"[\d.]+ s, score [\d.]+ s", out)
    assert sorted(n for n, _ in done) == ["1", "2"], out
    assert sorted(mt for _, mt in done) == ["compressor", "grinder"]
    for noise in NOISE:
        assert noise not in out, f"{noise!r} in the output:\n{out}"


def test_a_file_that_could_not_be_created_names_its_folder(tmp_path: Path) -> None:
    """Found by probing (2026-12-07): an output folder that could not be written was named
    only through the temporary or lock file the command tried to create in it
    (`out/.r.md.eejivvaa.tmp: permission denied; check the path's owner and mode`)."""
    from automl_asd.errors import one_line

    missing = tmp_path / ".r.md.eejivvaa.tmp"
    assert one_line(PermissionError(13, "Permission denied", str(missing))) == (
        f"{tmp_path}: folder not writable (permission denied creating .r.md.eejivvaa.tmp); "
        "write elsewhere or check its owner and mode")
    there = tmp_path / "r.md"
    there.write_text("x")  # an existing file: the file is the problem
    assert one_line(PermissionError(13, "Permission denied", str(there))) == (
        f"{there}: permission denied; check the path's owner and mode")
    below = tmp_path / "gone" / "x"  # its folder is missing too: named as it was
    assert one_line(PermissionError(13, "Permission denied", str(below))).startswith(
        f"{below}: permission denied")


def test_a_link_to_a_missing_folder_is_named_as_such(tmp_path: Path) -> None:
    """Found by probing (2026-12-07): `apply --out LINK`, LINK pointing to a folder not made
    yet, stopped on "LINK: already exists as a file; choose another path"."""
    from automl_asd.errors import one_line

    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere" / "x")
    with pytest.raises(FileExistsError) as exc:
        link.mkdir(parents=True, exist_ok=True)
    assert one_line(exc.value) == (f"{link}: a link to {tmp_path / 'nowhere' / 'x'}, which "
                                   "does not exist; create it or choose another path")
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(FileExistsError) as exc:
        plain.mkdir()
    assert one_line(exc.value) == f"{plain}: already exists as a file; choose another path"
