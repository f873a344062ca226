"""components.files.atomic_write_bytes / atomic_write_text: whole file or old file, never a
partial one."""

from __future__ import annotations

import os
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


def test_file_identity_changes_with_a_same_size_rewrite_that_restores_mtime(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(b"a" * 64)
    before = files.file_identity(path)
    st = path.stat()
    path.write_bytes(b"b" * 64)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = files.file_identity(path)
    assert before[0] == after[0] == 64 and before[1] != after[1]


def test_digests_remembered_reads_each_file_once_per_scope(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(b"a" * 64)
    reads: list[str] = []
    real_open = open

    def counting_open(p, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(str(p))
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    digest_a = files.file_identity(path, content=True)
    assert files.file_identity(path, content=True) == digest_a and len(reads) == 2  # no scope
    reads.clear()
    with files.digests_remembered():
        assert files.file_identity(path, content=True) == digest_a
        with files.digests_remembered():  # nested: the same memory
            assert files.file_identity(path, content=True) == digest_a
        assert files.file_identity(path, content=True) == digest_a
        assert len(reads) == 1
        path.write_bytes(b"b" * 64)  # changed inside the scope: its stat changed, read again
        digest_b = files.file_identity(path, content=True)
        assert digest_b != digest_a and len(reads) == 2
    reads.clear()
    assert files.file_identity(path, content=True) == digest_b and len(reads) == 1  # forgotten
    assert files._remembered is None


def test_digests_remembered_as_a_decorator_scopes_each_call(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(b"a" * 64)

    @files.digests_remembered()
    def work() -> int:
        files.file_identity(path, content=True)
        assert files._remembered is not None
        return len(files._remembered)

    assert work() == 1 and work() == 1 and files._remembered is None


def test_files_get_the_mode_a_plain_open_would(tmp_path: Path) -> None:
    """mkstemp's 0600 used to stay on every output (submissions, recipe.json): unreadable to
    teammates on shared storage whatever the umask."""
    old = os.umask(0o022)
    try:
        new = atomic_write_text(tmp_path / "a.csv", "x\n")
        assert new.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert atomic_write_text(tmp_path / "b.csv", "x\n").stat().st_mode & 0o777 == 0o600
        # a replaced file keeps its mode
        os.chmod(new, 0o640)
        assert atomic_write_text(new, "y\n").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_a_write_error_without_a_file_name_names_the_output(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Found by a review (2026-12-06): EFBIG/ENOSPC from a write name no file, so the CLI's
    one-line error said only "[Errno 27] File too large"."""
    import errno
    import os

    from automl_asd.components.files import atomic_write_bytes, naming_path
    from automl_asd.errors import one_line

    with pytest.raises(OSError) as info, naming_path(tmp_path / "out.csv"):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    assert info.value.errno == errno.EFBIG and info.value.filename == str(tmp_path / "out.csv")
    assert one_line(info.value) == (f"{tmp_path / 'out.csv'}: file too large for the "
                                    "file-size limit (`ulimit -f`) or the file system")
    with pytest.raises(FileNotFoundError) as named, naming_path(tmp_path / "x"):
        open(tmp_path / "missing" / "y")  # already named: left as it is
    assert named.value.filename == str(tmp_path / "missing" / "y")

    real_fdopen = os.fdopen

    class Full:  # a file on a full disk
        def __init__(self, fd: int, mode: str) -> None:
            self.fh = real_fdopen(fd, mode)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", Full)
    with pytest.raises(OSError) as disk:
        atomic_write_bytes(tmp_path / "r.json", b"x" * 100)
    assert one_line(disk.value) == (f"{tmp_path / 'r.json'}: no space left on the device; "
                                    "free space or write elsewhere")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left
