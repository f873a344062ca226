"""``automl-asd doctor`` and the one-line torchaudio failure of every command.

The broken install is simulated as it happens in the field: a ``torchaudio`` package first on
``PYTHONPATH`` whose import raises the ``OSError`` of a torchaudio built for another torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl_asd.environment import pinned_versions

BROKEN = ("Could not load this library: /venv/lib/python3.11/site-packages/torchaudio/lib/"
          "libtorchaudio.so")


def _cli(args: list[str], cwd: Path, pythonpath: Path | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "automl_asd.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def broken_torchaudio(tmp_path: Path) -> Path:
    stub = tmp_path / "stub"
    (stub / "torchaudio").mkdir(parents=True)
    (stub / "torchaudio" / "__init__.py").write_text(f"raise OSError({BROKEN!r})\n")
    return stub


def test_pins_come_from_the_package_metadata() -> None:
    pins = pinned_versions()
    assert pins["torch"] == pins["torchaudio"] == "2.11.0"


@pytest.mark.slow
def test_doctor_passes_here_one_line_per_check(tmp_path: Path) -> None:
    res = _cli(["doctor"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    names = [line.split()[1] for line in lines[:-1]]
    assert names == ["python", "torch", "torchaudio", "ray", "optuna", "device", "cache"]
    assert all(line.startswith("ok ") for line in lines[:-1]), res.stdout
    assert "torch 2.11.0, torchaudio 2.11.0 (the locked pair)" in res.stdout
    assert "MelSpectrogram (1, 16, 13), resample 16->8 kHz (1, 800)" in res.stdout
    assert lines[-1].startswith("doctor: all 7 checks passed")
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.slow
def test_doctor_fails_with_the_pair_and_the_fix_when_torchaudio_cannot_load(
        tmp_path: Path, broken_torchaudio: Path) -> None:
    res = _cli(["doctor"], tmp_path, pythonpath=broken_torchaudio)
    assert res.returncode == 1
    fail = [line for line in res.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fail) == 1 and fail[0].split()[1] == "torchaudio", res.stdout
    assert "torch 2.11.0 with torchaudio 2.11.0: OSError: " + BROKEN in fail[0]
    assert "bash tools/install.sh .venv dev --editable" in fail[0]
    assert "pip install torch==2.11.0 torchaudio==2.11.0" in fail[0]
    assert res.stdout.strip().splitlines()[-1].startswith("doctor: 1 of 7 checks FAILED")
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["apply", "--frozen", "fast_default", "--serial", "--out", "OUT", "--data", "DATA"],
    ["search", "--space", "smoke", "--trials", "1", "--out", "OUT", "--data", "DATA"],
])
def test_commands_end_in_one_line_when_torchaudio_cannot_load(
        tmp_path: Path, broken_torchaudio: Path, tiny_novel_root: Path,
        command: list[str]) -> None:
    args = [str(tmp_path / "out") if a == "OUT" else str(tiny_novel_root) if a == "DATA" else a
            for a in command]
    res = _cli(args, tmp_path, pythonpath=broken_torchaudio)
    assert res.returncode == 1
    assert "Traceback" not in res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, res.stderr
    assert errors[0].startswith(f"automl-asd {command[0]}: error: torchaudio does not load "
                                "(torch 2.11.0 with torchaudio 2.11.0: OSError: ")
    assert "bash tools/install.sh .venv dev --editable" in errors[0]
    assert not (tmp_path / "out" / "tune").exists()  # stopped before Ray started


def test_require_torchaudio_converts_the_load_error(broken_torchaudio: Path) -> None:
    code = ("import sys\n"
            "from automl_asd.environment import EnvironmentProblem, require_torchaudio\n"
            "try:\n    require_torchaudio()\n"
            "except EnvironmentProblem as exc:\n    print('PROBLEM', exc); sys.exit(3)\n")
    env = {**os.environ, "PYTHONPATH": str(broken_torchaudio)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 3, res.stderr
    assert res.stdout.startswith("PROBLEM torchaudio does not load") and BROKEN in res.stdout
    assert "\n" not in res.stdout.strip()


def test_the_pair_is_checked_against_the_checkout_s_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-06: after a pull that moved the lock, doctor compared the pair with the
    editable install's old metadata and said OK."""
    from automl_asd import environment

    assert environment.lock_pins() == {"torch": "2.11.0", "torchaudio": "2.11.0"}  # this checkout
    assert environment._check_pair().ok
    moved = tmp_path / "constraints.txt"
    moved.write_text("numpy==2.0.0\ntorch==2.12.0\ntorchaudio==2.12.0\n")
    monkeypatch.setattr(environment, "checkout_lock", lambda: moved)
    check = environment._check_pair()
    assert not check.ok and "torch 2.11.0 (lock: 2.12.0)" in check.detail
    monkeypatch.setattr(environment, "checkout_lock", lambda: tmp_path / "none.txt")  # a wheel
    assert environment.lock_pins() == {} and environment._check_pair().ok
