"""Writing a file so that a reader never sees it half-written: the data goes to a temporary
sibling (a unique name per writer, so threads and processes never share one), then
:func:`os.replace` swaps it in (atomic on POSIX file systems). Used for markers other
processes poll (the generator's ``.synth.json``), reports, submission CSVs, result tables and
the search trials' per-clip scores."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]


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
