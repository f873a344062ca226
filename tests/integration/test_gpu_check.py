"""The prepared GPU check keeps working between the rare sessions that have a GPU.

``bench/gpu_check.sh`` runs only where a GPU is lent (once so far, 2026-12-04); its Python
drivers run here on the CPU at tiny size, so a change that breaks them fails CI instead of a
lease. (The whole script's CPU dry run, 2-5 min on 2 cores, is
``bash bench/gpu_check.sh --cpu-dry-run``.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

pytestmark = pytest.mark.slow

BENCH = REPO_ROOT / "bench"


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=REPO_ROOT)


def test_the_script_parses() -> None:
    done = subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_ae_step_times_the_eager_modes_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "ae_step.json"
    done = _run([str(BENCH / "ae_step.py"), "--device", "cpu", "--steps", "4", "--repeat", "1",
                 "--n-vec", "8192", "--threads", "1", "--json", str(out)])
    assert done.returncode == 0, done.stderr
    res = json.loads(out.read_text())
    assert res["errors"] == {}
    assert set(res["ms_per_256"]) == {"eager", "eager_nondet", "eager_b4096"}  # no graph on CPU
    assert all(v > 0 for v in res["ms_per_256"].values())
    assert res["ratios"]["eager/eager_b4096"] == pytest.approx(
        res["ms_per_256"]["eager"] / res["ms_per_256"]["eager_b4096"])
    assert "| eager |" in done.stdout and "ratios:" in done.stdout


def test_gpu_fit_runs_a_shortened_network_recipe_on_cpu(tiny_dev_root: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    done = _run([str(BENCH / "gpu_fit.py"), "--recipe", "margin_knn", "--data",
                 str(tiny_dev_root), "--device", "cpu", "--epochs", "1", "--threads", "1",
                 "--json", str(out)])
    assert done.returncode == 0, done.stderr
    row = json.loads(out.read_text())
    assert row["recipe"] == "margin_knn@1ep" and row["epochs"] == 1
    assert row["shipped_epochs"] == 28 and row["device"] == "cpu" and row["ok"] is True
    assert 0.0 < row["omega"] < 1.0 and row["seconds"] > 0 and row["peak_gpu_mib"] == 0.0


def test_cuda_asked_without_cuda_is_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for script in ("ae_step.py", "gpu_fit.py"):
        args = [str(BENCH / script), "--device", "cuda"]
        if script == "gpu_fit.py":
            args += ["--recipe", "fast_default", "--data", "."]
        done = _run(args, timeout=120)
        assert done.returncode == 2, (script, done.stderr)
        assert "torch sees no CUDA device" in done.stderr and "Traceback" not in done.stderr


def test_a_stopped_check_stops_its_step_and_still_writes_the_table(tmp_path: Path) -> None:
    """Found 2026-12-07: killing the script (a lent machine's command limit) left its running
    step behind, orphaned, and wrote no table. A SIGTERM now stops the step, skips the rest,
    writes the table of what finished and removes the work folder."""
    import os
    import signal
    import time

    res, tmp = tmp_path / "res", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "OUT": str(res), "TMPDIR": str(tmp), "PY": sys.executable}
    proc = subprocess.Popen(["bash", str(BENCH / "gpu_check.sh"), "--cpu-dry-run"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (res / "cuda_tests.log").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the first step (a pytest run) is under way
    steps_running = _descendants(proc.pid)
    assert steps_running, "no step was running"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    steps = [line.split()[:2] for line in (res / "steps.txt").read_text().splitlines()]
    assert steps[0] == ["cuda_tests", "stopped"]
    assert {s for _, s in steps[1:]} == {"skipped"} and len(steps) == 10
    table = (res / "results.md").read_text()
    assert "steps failed: none" in table and "cuda_tests" in table
    assert not list(tmp.glob("gpu-check-*"))  # the work folder is gone
    time.sleep(0.5)
    assert not [p for p in steps_running if _alive(p)], "a step outlived the script"


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now (from ``ps``)."""
    rows = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True,
                          check=True).stdout.split("\n")
    children: dict[int, list[int]] = {}
    for row in rows:
        if row.strip():
            child, parent = map(int, row.split())
            children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
