"""Writing a small text file so that a reader never sees it half-written: the text goes to a
temporary sibling, then :func:`os.replace` swaps it in (atomic on POSIX file systems). Used for
markers other processes poll (the generator's ``.synth.json``), reports and submission CSVs."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines untranslated) to ``path`` atomically; return ``path``.

    A reader sees the old file or the new one, never a partial one; on any failure the temporary
    file is removed and the old file (if any) is left unchanged. The parent folder is created."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
