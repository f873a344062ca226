"""components.files.atomic_write_bytes / atomic_write_text: whole file or old file, never a
partial one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from automl_asd.components import files
from automl_asd.components.files import atomic_write_bytes, atomic_write_text


def test_writes_creates_parent_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.json"
    assert atomic_write_text(path, "one\r\n") == path
    assert path.read_bytes() == b"one\r\n"  # newline untranslated
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.json"]  # no temp file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "marker.json"
    path.write_text("old")

    def boom(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker.json"]


def test_a_folder_in_the_way_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic_write_text(tmp_path / "x", "text")


def test_bytes_are_written_as_given_and_threads_never_share_a_temp(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    payloads = [bytes([i]) * 200_000 for i in range(8)]

    def write(data: bytes) -> None:
        for _ in range(5):
            atomic_write_bytes(path, data)

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        for done in [pool.submit(write, p) for p in payloads]:
            done.result()  # re-raises a writer's error here
    assert path.read_bytes() in payloads  # one writer's whole payload, never a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]
