"""``bench/features.py`` runs end to end at a tiny size (its ratios are quoted in README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def test_runs_with_a_scratch_dir_that_does_not_exist_yet(tmp_path: Path) -> None:
    scratch = tmp_path / "not" / "yet"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "features.py"), "--n", "4",
                           "--seconds", "1", "--repeat", "1", "--workers", "1",
                           "--dir", str(scratch)],
                          capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert "c / min(a, b)" in done.stdout and "d / c" in done.stdout
    assert scratch.is_dir() and not any(scratch.iterdir())  # its temp folder is removed
