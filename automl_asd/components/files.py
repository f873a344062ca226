"""Files: writing one so that a reader never sees it half-written, and telling whether one
changed.

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: the data goes to a temporary sibling
  (a unique name per writer, so threads and processes never share one), then :func:`os.replace`
  swaps it in (atomic on POSIX file systems). Used for markers other processes poll (the
  generator's ``.synth.json``), reports, submission CSVs, result tables and the search trials'
  per-clip scores.
* :func:`file_identity`: the one definition of "the same file" behind every cache key and
  ``--resume`` check on input data (feature cache, representation cache, ``apply --resume``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "file_identity"]


def file_identity(path: Path | str, *, content: bool = False) -> tuple[int, str]:
    """``(size, stamp)`` of a file: the stamp changes whenever its bytes may have changed.

    By default the stamp is ``"<mtime_ns>.<inode>.<ctime_ns>"`` (``stat`` only, no read). The
    ``ctime`` cannot be set back by a user (``touch -r``/``os.utime`` change it), so rewriting a
    file in place, even with the same size and a restored ``mtime``, changes it; so does writing
    a new file over it (new inode). A copy of the file (another inode) has another stamp, and
    ``chmod``/``chown`` change the ``ctime``: both only cost a recomputation. With ``content``
    the stamp is ``"sha256:<hex digest of the bytes>"`` (reads the whole file), for file
    systems whose timestamps cannot be trusted.

    Raises:
        OSError: the file cannot be stat'ed or read (``FileNotFoundError`` when it is gone).
    """
    st = os.stat(path)
    if content:
        with open(path, "rb") as fh:
            return st.st_size, "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
    return st.st_size, f"{st.st_mtime_ns}.{st.st_ino}.{st.st_ctime_ns}"


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
        with os.fdopen(fd, "wb") as fh:
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
