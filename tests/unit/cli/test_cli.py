from __future__ import annotations

import pytest

from automl_asd import __version__
from automl_asd.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: automl-asd" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module",
    ["automl_asd.backends", "automl_asd.detectors", "automl_asd.recipe", "automl_asd.bundle"],
)
def test_each_package_imports_on_its_own(module: str) -> None:
    """No import cycle: every public module imports first in a fresh interpreter."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
