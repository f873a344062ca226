"""``automl-asd cache info|prune|clear``: the numbers printed, dry runs, and ``clear`` refusing
to run unasked without a terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl_asd import features
from automl_asd.caches import survey
from automl_asd.cli import main
from tests.unit.features.test_caches import _DAY, _bytes, _make_cache


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_info_text_and_json(tmp_path: Path, tiny_dev_root: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    assert main(["cache", "info", "--cache-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for kind, paths in made.items():
        assert doc[kind]["entries"] == len(paths)
        assert doc[kind]["bytes"] == sum(_bytes(p) for p in paths)
    assert doc["bytes"] == sum(_bytes(p) for ps in made.values() for p in ps)
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path}: ") and out[0].endswith(" in 6 entries")
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert rows["features"][1] == "4" and rows["representations"][1] == "2"
    assert rows["dcase_ae"][1] == "1" and "(n_mels=16" in " ".join(out)


def test_prune_dry_run_then_real(tmp_path: Path, tiny_dev_root: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    now = time.time()
    old = made["representations"][0]
    os.utime(old, (now - 40 * _DAY, now - 40 * _DAY))
    argv = ["cache", "prune", "--cache-dir", str(tmp_path), "--older-than", "30"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove 0 feature entries (0 B), 1 representation entries" in out
    assert old.exists()
    assert main(argv) == 0
    assert "removed 0 feature entries (0 B), 1 representation entries" in \
        capsys.readouterr().out
    assert not old.exists() and len(survey(tmp_path).entries) == 5
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--max-gb", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["removed"]["features"]["entries"] == 4 and doc["kept"]["entries"] == 0


def test_ctrl_c_at_the_question_keeps_everything_and_ends_its_line(
        tmp_path: Path, tiny_dev_root: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-08 probing interrupts: Ctrl+C at `cache clear`'s question printed
    "... [y/N] ^Cinterrupted", the command's last line glued to the prompt."""
    _make_cache(tmp_path, tiny_dev_root)

    class _Stopped(_Terminal):
        def readline(self, size: int | None = -1) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr("sys.stdin", _Stopped(""))
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 130
    captured = capsys.readouterr()
    assert captured.out.endswith("[y/N] \n")
    assert captured.err.strip().splitlines()[-1].startswith("interrupted")
    assert len(survey(tmp_path).entries) == 6


def test_prune_needs_a_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 2
    assert "give --max-gb GB and/or --older-than DAYS" in capsys.readouterr().err
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--max-gb", "-1"]) == 2


def test_clear_refuses_without_yes_and_a_terminal(
        tmp_path: Path, tiny_dev_root: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # CI: stdin, but no terminal
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "would remove 6 feature and representation entries" in err
    assert "nothing was removed: pass --yes" in err
    assert len(survey(tmp_path).entries) == 6
    # at a terminal it asks; anything but yes keeps everything
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--features"]) == 1
    assert "remove 4 feature entries" in capsys.readouterr().out
    assert len(survey(tmp_path).entries) == 6
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--features"]) == 0
    assert "removed 4 feature entries" in capsys.readouterr().out
    assert [e.path for e in survey(tmp_path).entries] == made["representations"]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--yes"]) == 0
    assert survey(tmp_path).entries == []
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0  # nothing to ask about
    assert "no feature or representation entries to remove" in capsys.readouterr().out


def test_clear_with_no_entries_still_removes_what_killed_writers_left(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found in review (2026-12-07): `cache clear` of a cache holding only a killed writer's
    unfinished entry said there was nothing to remove and left it (`prune` removed it)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = (tmp_path / "features" / f"logmel-{'0' * 16}"
            / f".tmp-{'d' * 32}-{features._HOST}-{int(proc.stdout)}-0badf00d")
    left.mkdir(parents=True)
    (left / "data.f32").write_bytes(b"1234")
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "no feature or representation entries to remove" in out
    assert "also removed 1 unfinished entries of killed writers (4 B)" in out
    assert not left.exists()


def test_clear_of_a_home_folder_removes_nothing(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    keep = [home / ".bashrc", home / "features" / "my_features.csv",
            home / "representations" / "talk.pdf", home / "data" / "fan" / "x.wav"]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    empty = home / "representations" / "drafts"  # an empty folder of the user's stays too
    empty.mkdir()
    assert main(["cache", "clear", "--cache-dir", str(home), "--yes"]) == 0
    assert main(["cache", "prune", "--cache-dir", str(home), "--max-gb", "0"]) == 0
    assert all(p.read_text() == "mine" for p in keep)
    assert empty.is_dir()
    assert main(["cache", "info", "--cache-dir", str(home)]) == 0
    assert "not cache entries: 4 files" in capsys.readouterr().out
