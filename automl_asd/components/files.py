"""Files: writing one so that a reader never sees it half-written, and telling whether one
changed.

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: the data goes to a temporary sibling
  (a unique name per writer, so threads and processes never share one), then :func:`os.replace`
  swaps it in (atomic on POSIX file systems). Used for markers other processes poll (the
  generator's ``.synth.json``), reports, submission CSVs, result tables and the search trials'
  per-clip scores.
* :func:`file_identity`: the one definition of "the same file" behind every cache key and
  ``--resume`` check on input data (feature cache, representation cache, ``apply --resume``).
  :func:`digests_remembered` scopes one unit of work (a trial, a machine type) in which each
  file's bytes are hashed once, however many caches ask.
* :func:`mark_used`: the caches' record of an entry's last use (``automl-asd cache prune``
  removes the least recently used first).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "digests_remembered", "file_identity",
           "mark_used", "naming_path"]

#: The open :func:`digests_remembered` scope's digests by stat key (``None``: no scope open).
_remembered: dict[tuple[int, int, int, int, int], str] | None = None
_depth = 0
_scope_lock = threading.Lock()


@contextlib.contextmanager
def digests_remembered() -> Iterator[None]:
    """Inside this block, :func:`file_identity` with ``content`` reads each file once.

    A file hashed earlier in the block whose ``stat`` (device, inode, size, mtime, ctime) has
    not changed since gets the digest taken then. One trial keys its clips for the feature
    cache and again for the representation cache (and once more per ensemble member): with
    ``--verify-audio`` each key read every clip's bytes again. The memory lives only as long
    as the outermost block (one unit of work), so a file changed between two commands, or
    between two trials, is hashed afresh even where its timestamps cannot be trusted. Blocks
    nest; every thread of the process shares the open scope.
    """
    global _remembered, _depth
    with _scope_lock:
        _depth += 1
        if _remembered is None:
            _remembered = {}
    try:
        yield
    finally:
        with _scope_lock:
            _depth -= 1
            if _depth == 0:
                _remembered = None


def file_identity(path: Path | str, *, content: bool = False) -> tuple[int, str]:
    """``(size, stamp)`` of a file: the stamp changes whenever its bytes may have changed.

    By default the stamp is ``"<mtime_ns>.<inode>.<ctime_ns>"`` (``stat`` only, no read). The
    ``ctime`` cannot be set back by a user (``touch -r``/``os.utime`` change it), so rewriting a
    file in place, even with the same size and a restored ``mtime``, changes it; so does writing
    a new file over it (new inode). A copy of the file (another inode) has another stamp, and
    ``chmod``/``chown`` change the ``ctime``: both only cost a recomputation. With ``content``
    the stamp is ``"sha256:<hex digest of the bytes>"`` (reads the whole file, once per
    :func:`digests_remembered` scope), for file systems whose timestamps cannot be trusted.

    Raises:
        OSError: the file cannot be stat'ed or read (``FileNotFoundError`` when it is gone).
    """
    st = os.stat(path)
    if content:
        memo = _remembered
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if memo is not None and key in memo:
            return st.st_size, memo[key]
        with open(path, "rb") as fh:
            stamp = "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
        if memo is not None:
            memo[key] = stamp
        return st.st_size, stamp
    return st.st_size, f"{st.st_mtime_ns}.{st.st_ino}.{st.st_ctime_ns}"


def mark_used(path: Path | str) -> None:
    """Set ``path``'s mtime to now: a cache entry read records its last use so. The access time
    cannot serve (``noatime`` mounts never set it, ``relatime`` ones once a day at most), and
    entries are never rewritten, so their mtime is free for it. Best effort, never raises: a
    read-only cache, another user's entry or one removed meanwhile keeps its old time (the read
    itself succeeded). One ``utime`` call, ~3 us (``bench/cache_touch.py``)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` must set
    one to read one, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextlib.contextmanager
def naming_path(path: Path | str) -> Iterator[None]:
    """Give an ``OSError`` raised inside without a file name the ``path`` being written: a
    write that fails for lack of space or the file-size limit (ENOSPC, EFBIG) names no file,
    and the CLI's one-line error would not say which output failed."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``.

    A reader sees the old file or the new one, never a partial one; on any failure the temporary
    file is removed and the old file (if any) is left unchanged. The parent folder is created.

    Raises:
        IsADirectoryError: when ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (the old
        # file's, or 0666 less the umask) so teammates on shared storage can read it
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with naming_path(path), os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8, newlines untranslated (``\\n`` stays
    ``\\n`` on every platform)."""
    return atomic_write_bytes(path, text.encode("utf-8"))
