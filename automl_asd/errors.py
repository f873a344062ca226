"""The package's error classes share one base, :class:`AutomlAsdError`, so the CLI can turn
every expected error into one line (``automl-asd <command>: error: <message>``) without a
traceback. Each concrete class also keeps its historical builtin mixin (``ValueError`` for
bad inputs, ``RuntimeError`` for failed operations), so existing ``except ValueError`` code
keeps working.

Every domain error of the package derives from it, next to the module that raises it: e.g.
``data.DataError``, ``audio.AudioError``, ``recipe.RecipeError``, ``search_space.SpaceError``,
``bundle.format.BundleError``, ``io.submission.SubmissionError``, ``synth.SynthError``,
``download.DownloadError``, ``components.params.ParamError``, ``components.device.DeviceError``
(``tests/contracts/test_components.py`` checks that none is left out).

Errors a retry cannot fix (bad data, bad recipes, non-finite features) derive from
:class:`PermanentError`; the Ray runner reports them at once instead of retrying the task.
"""

from __future__ import annotations

import errno
import os

__all__ = ["AutomlAsdError", "PermanentError", "NonFiniteError", "ResourceLimitError",
           "UsageError", "disk_full", "disk_full_reason", "one_line"]


class AutomlAsdError(Exception):
    """Base of every expected automl-asd error; the message names the file/field and the fix."""


class PermanentError(AutomlAsdError):
    """An error that the same inputs will raise again: never retried by a runner."""


class NonFiniteError(PermanentError, ValueError):
    """Non-finite values (NaN/inf) where finite numbers are required (features, scores);
    the message names the clip or cache entry."""


class ResourceLimitError(PermanentError, ValueError):
    """A recipe whose estimated cost (cache bytes, training work) exceeds a configured limit;
    the message gives the estimate and the setting that raises the limit."""


class UsageError(AutomlAsdError, ValueError):
    """A request that cannot run as given: contradictory options, or a value out of range
    that argparse's types cannot see. The message names the options; the CLI exits with
    status 2, as argparse does for its own usage errors."""


#: the CLI's words for the writes that fail for lack of space (:func:`disk_full`)
_BY_ERRNO = {errno.ENOSPC: "no space left on the device; free space or write elsewhere",
             errno.EFBIG: "file too large for the file-size limit (`ulimit -f`) or the file "
                          "system",
             errno.EDQUOT: "disk quota exceeded; free space or write elsewhere"}


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for lack of space (a full disk, a quota, the
    file-size limit): a retry on the same storage fails the same way."""
    return isinstance(exc, OSError) and exc.errno in _BY_ERRNO


def disk_full_reason(exc: BaseException) -> str | None:
    """The CLI's words for why ``exc`` failed when it is :func:`disk_full` (``None`` when not),
    for a message that names its place itself."""
    if isinstance(exc, OSError) and exc.errno in _BY_ERRNO:
        return _BY_ERRNO[exc.errno]
    return None


def one_line(exc: BaseException) -> str:
    """The user-facing message of an expected error (no traceback); OS errors name their path
    (and a fix for the common ones)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
        hint = {IsADirectoryError: "is a folder; give a file path",
                NotADirectoryError: "a parent of this path is a file, not a folder",
                FileExistsError: "already exists as a file; choose another path",
                PermissionError: "permission denied; check the path's owner and mode"}
        text = f"{where}: {hint.get(type(exc)) or _BY_ERRNO.get(exc.errno or 0, exc.strerror)}"
        if isinstance(exc, FileExistsError) and exc.filename2 is None:
            path = os.fsdecode(exc.filename)
            if os.path.islink(path) and not os.path.exists(path):
                # found 2026-12-07: `--out LINK` to a folder not there yet read "already
                # exists as a file"
                text = (f"{where}: a link to {os.readlink(path)}, which does not exist; create "
                        "it or choose another path")
        if isinstance(exc, PermissionError) and exc.filename2 is None:
            path = os.fsdecode(exc.filename)
            if not os.path.lexists(path) and os.path.isdir(os.path.dirname(path) or "."):
                # a file the command creates (often a temporary or lock file next to the
                # output): the folder is the problem (found 2026-12-07: the line named only
                # "out/.r.md.eejivvaa.tmp")
                folder = os.path.dirname(path) or "."
                text = (f"{folder}: folder not writable (permission denied creating "
                        f"{os.path.basename(path)}); write elsewhere or check its owner and mode")
    elif isinstance(exc, RecursionError):
        text = f"input nested too deeply to process ({exc})"
    elif isinstance(exc, MemoryError):
        text = f"out of memory ({exc or 'allocation failed'}); an input declares a huge size"
    else:
        text = str(exc) or type(exc).__name__
    return text
