"""One advisory inter-process lock (``fcntl.flock`` on a lock file) for every writer that two
processes may run on the same folder: the feature cache, the synthetic generator, downloads.

The lock is released when the ``with`` block ends or when its holder dies (the kernel drops a
dead process's ``flock``), so a crash never leaves a stale lock behind. Where locking is not
available (not POSIX, or the lock file cannot be created) the block runs unlocked and the
context value is ``False``: callers keep their own atomic writes as the safety net.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_lock"]

logger = logging.getLogger(__name__)


@contextmanager
def file_lock(path: Path, *, wait: bool = True, waiting: str | None = None) -> Iterator[bool]:
    """Hold an exclusive advisory lock on ``path`` (created, parents too) for the block.

    Args:
        path: the lock file.
        wait: block until the lock is free; ``False``: raise :class:`BlockingIOError` at once
            when another process holds it.
        waiting: logged (INFO) once when the lock is held elsewhere and this call waits.

    Yields:
        ``True`` when locked, ``False`` when locking is unavailable here.
    """
    try:
        import fcntl  # noqa: PLC0415 (POSIX only)
    except ImportError:  # not POSIX
        yield False
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        logger.debug("lock %s unavailable (%s)", path, exc)
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            if not wait:
                raise
            if waiting:
                logger.info("%s", waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError as exc:  # e.g. a file system without flock (ENOLCK, EOPNOTSUPP)
            logger.debug("lock %s unavailable (%s)", path, exc)
            locked = False
        yield locked
    finally:
        os.close(fd)  # releases the lock
