"""``components.locks.file_lock``: one advisory lock for every concurrent writer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl_asd.components.locks import file_lock


def test_a_held_lock_refuses_a_non_waiting_caller_and_frees_on_exit(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "x.lock"  # parents are created
    with file_lock(lock) as held:
        assert held is True and lock.is_file()
        with pytest.raises(BlockingIOError), file_lock(lock, wait=False):
            pass
    with file_lock(lock, wait=False) as again:  # released when the block ended
        assert again is True


def test_a_waiting_caller_gets_the_lock_when_the_holder_dies(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path\n"
         "from automl_asd.components.locks import file_lock\n"
         "with file_lock(Path(sys.argv[1])):\n"
         "    print('held', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BlockingIOError), file_lock(lock, wait=False):
            pass
        holder.kill()  # a crashed holder leaves no stale lock
        holder.wait(10)
        t0 = time.monotonic()
        with file_lock(lock) as held:
            assert held is True
        assert time.monotonic() - t0 < 10
    finally:
        holder.kill()


def test_an_unwritable_lock_runs_unlocked(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with file_lock(blocker / "x.lock") as held:  # the parent is a file: no lock possible
        assert held is False


def test_a_file_system_without_flock_runs_unlocked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with file_lock(tmp_path / "x.lock") as held:
        assert held is False
