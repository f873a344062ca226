"""Run storage: where the tasks of a run put their outputs when they run on many nodes.

A storage is a local or shared path (``/nfs/runs/r1``) or a URI that
``pyarrow.fs.FileSystem.from_uri`` understands (``file:///nfs/runs/r1``, ``s3://bucket/r1``,
``gs://...``). A task writes its outputs into a local temporary folder and then uploads them
with :func:`upload_tree` (the summary files last, so a summary in storage means the files it
lists are there); the driver reads them back with :func:`download_tree`. Also here: the path
checks the pre-flight task runs on every node (:func:`check_paths`). No Ray in this module.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl_asd.data import DataError, find_machine_dirs
from automl_asd.environment import default_cache_dir
from automl_asd.errors import AutomlAsdError

__all__ = ["is_uri", "place", "check_location", "StorageError", "open_storage", "upload_tree",
           "download_tree", "delete_files", "check_paths", "where", "PathCheck",
           "PreflightError", "write_token"]

logger = logging.getLogger(__name__)

#: Files uploaded after every other one (their presence means the run's files are complete).
_LAST_SUFFIXES = (".summary.json", "summary.json")


def is_uri(location: str) -> bool:
    """True for ``scheme://...`` (anything pyarrow's filesystems resolve), False for paths."""
    return "://" in location


def place(location: str) -> str:
    """``location`` as one place: a local folder (``file://`` or not) as an absolute, resolved
    path (``./st``, ``st/``, ``//`` and ``file:///…/st`` name one folder; Ray Tune needs it
    absolute: a relative one failed in pyarrow with "URI has empty scheme"), a URI without a
    trailing ``/``."""
    if location.startswith("file://"):
        location = location[len("file://"):]
    elif is_uri(location):
        return location.rstrip("/")
    return str(Path(location).expanduser().resolve())


_SCHEME_TYPO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?!//)")


def check_location(location: str, option: str = "--storage") -> str:
    """``location`` unchanged if it is a path or a ``scheme://`` URI; a
    :class:`StorageError` for an empty value or a URI whose ``://`` is malformed
    (``s3:/bucket``, ``gs:bucket``: as a path it would silently become a local folder named
    ``s3:``)."""
    if not location.strip():
        raise StorageError(f"{option}: empty; give a shared path or a URI such as "
                           "s3://BUCKET/runs/r1")
    match = _SCHEME_TYPO.match(location)
    if match and not is_uri(location):
        scheme = match.group(1)
        rest = location[match.end():].lstrip("/")
        meant = f"{scheme}:///{rest}" if scheme.lower() == "file" else f"{scheme}://{rest}"
        raise StorageError(f"{option} {location}: looks like a {scheme} URI without '://' "
                           f"(as a path it would be a local folder named '{scheme}:'); did "
                           f"you mean {meant}? (a local folder of that name: "
                           f"./{location})")
    return location


def open_storage(location: str) -> tuple[Any, str]:
    """``(pyarrow.fs.FileSystem, base path inside it)`` for a path or URI."""
    from pyarrow import fs  # noqa: PLC0415  (heavy third-party, loaded when used)

    if is_uri(location) and not location.startswith("file://"):
        filesystem, base = fs.FileSystem.from_uri(location)
        return filesystem, base.rstrip("/")
    # a file:// URI is the folder :func:`place` names (as Tune and the storage lock see it;
    # found 2026-12-07: pyarrow refused `file:///tmp/st ü` with "Cannot parse URI", after
    # the lock had made that folder)
    return fs.LocalFileSystem(), place(location)


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if rel else base


def upload_tree(local: str | Path, location: str, sub: str = "") -> list[str]:
    """Copy every file under ``local`` to ``<location>/<sub>/``; summaries last. Returns the
    relative paths copied."""
    filesystem, base = open_storage(location)
    root = Path(local)
    files = sorted((p for p in root.rglob("*") if p.is_file()),
                   key=lambda p: (p.name.endswith(_LAST_SUFFIXES), str(p)))
    done = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        target = _join(_join(base, sub), rel)
        filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with path.open("rb") as src, filesystem.open_output_stream(target) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        done.append(rel)
    return done


def download_tree(location: str, local: str | Path, sub: str = "", *,
                  include: Callable[[str], bool] | None = None) -> list[str]:
    """Copy every file under ``<location>/<sub>/`` (or those whose relative path ``include``
    accepts) to ``local`` (created); ``[]`` when that folder does not exist. Returns the
    relative paths copied."""
    from pyarrow import fs  # noqa: PLC0415  (heavy third-party, loaded when used)

    filesystem, base = open_storage(location)
    src_root = _join(base, sub)
    info = filesystem.get_file_info(src_root)
    if info.type != fs.FileType.Directory:
        return []
    done = []
    for entry in filesystem.get_file_info(fs.FileSelector(src_root, recursive=True)):
        if entry.type != fs.FileType.File:
            continue
        rel = entry.path[len(src_root):].lstrip("/")
        if include is not None and not include(rel):
            continue
        target = Path(local) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            with filesystem.open_input_stream(entry.path) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, target)
        finally:
            # a copy stopped part-way (Ctrl+C, kill, a full disk) leaves no partial file in
            # the run folder, where nothing would ever remove it (found 2026-12-08)
            tmp.unlink(missing_ok=True)
        done.append(rel)
    return done


def delete_files(location: str, rels: Iterable[str]) -> None:
    """Delete ``<location>/<rel>`` files or folders that exist (others are ignored)."""
    from pyarrow import fs  # noqa: PLC0415  (heavy third-party, loaded when used)

    filesystem, base = open_storage(location)
    for rel in rels:
        path = _join(base, rel)
        kind = filesystem.get_file_info(path).type
        if kind == fs.FileType.File:
            filesystem.delete_file(path)
        elif kind == fs.FileType.Directory:
            filesystem.delete_dir(path)


def _probe_write(location: str, token: str | None = None) -> str | None:
    """``None`` when a probe file can be written to and deleted from ``location`` (and, with
    ``token``, the file of that name the driver wrote there is visible), else why."""
    from pyarrow import fs  # noqa: PLC0415  (heavy third-party, loaded when used)

    try:
        filesystem, base = open_storage(location)
        filesystem.create_dir(base, recursive=True)
        probe = f"{base}/.automl-asd-probe-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        with filesystem.open_output_stream(probe) as out:
            out.write(b"ok")
        filesystem.delete_file(probe)
        if token is not None and filesystem.get_file_info(f"{base}/{token}").type \
                != fs.FileType.File:
            return (f"not the storage the driver sees (its file {token} is missing here); "
                    "use a shared filesystem or a URI every node reaches (--storage)")
    except Exception as exc:  # any filesystem error is the answer
        text = (str(exc).splitlines() or [""])[0]
        detail = text.rsplit("Detail: ", 1)[-1]  # pyarrow repeats the path before "Detail:"
        return f"not writable ({type(exc).__name__}: {detail[:200]})"
    return None


def write_token(location: str, name: str | None = None) -> str:
    """Write a small marker file (``name``, default a new random one) into ``location``
    (created); returns its name. Nodes check they see it (:class:`PathCheck` ``token``): the
    storage is really shared."""
    filesystem, base = open_storage(location)
    filesystem.create_dir(base, recursive=True)
    name = name or f".automl-asd-preflight-{uuid.uuid4().hex[:12]}"
    with filesystem.open_output_stream(f"{base}/{name}") as out:
        out.write(b"automl-asd pre-flight marker\n")
    return name


def check_paths(*, data: str | None = None, machine_types: Sequence[str] = (),
                writable: Sequence[tuple[str, str]] = (), cache_dir: str | None = None,
                check_cache: bool = False, token: str | None = None) -> list[str]:
    """Problems with the run's paths as seen from this process's machine (``[]`` = fine).

    ``data`` must be a readable folder holding every machine type in ``machine_types`` where
    the data layer finds it (:func:`~automl_asd.data.find_machine_dirs`); each ``(option,
    location)`` in ``writable`` (a path or URI) must accept a probe file (and hold the file
    ``token`` the driver wrote there, when given: shared storage); with ``check_cache`` the
    feature cache (``cache_dir``, default ``$AUTOML_ASD_CACHE`` or ``~/.cache/automl-asd`` of
    this machine) too. Every problem is one
    line naming the option and the path.
    """
    problems: list[str] = []
    checks = [(option, location, token, "") for option, location in writable]
    if check_cache:
        checks.append((_cache_source(cache_dir), cache_dir or str(default_cache_dir()), None,
                       "; give --cache-dir a writable folder (or set AUTOML_ASD_CACHE)"))
    if data is not None:
        root = Path(data)
        if not root.is_dir():
            problems.append(f"--data {root}: no such folder")
        elif not os.access(root, os.R_OK | os.X_OK):
            problems.append(f"--data {root}: not readable")
        elif machine_types:
            # The folders as the data layer finds them: <data>/<mt>, the baseline's
            # <data>/{dev_data,eval_data}/raw/<mt>, or <data> itself as one machine's folder.
            try:
                found = find_machine_dirs(root)
            except DataError:
                found = {}
            missing = [mt for mt in machine_types if mt not in found]
            if missing:
                problems.append(f"--data {root}: machine type folder(s) {', '.join(missing)} "
                                "missing")
    for option, location, tok, fix in checks:
        why = _probe_write(location, tok)
        if why is not None:
            problems.append(f"{option} {location}: {why}{fix}")
    return problems


def _cache_source(cache_dir: str | None) -> str:
    """Where the feature cache's folder came from, as a problem line names it (found
    2026-12-07: an unwritable ``$AUTOML_ASD_CACHE`` was reported as ``--cache-dir``, an option
    the command had not been given)."""
    if cache_dir:
        return "--cache-dir"
    return "$AUTOML_ASD_CACHE" if os.environ.get("AUTOML_ASD_CACHE") else "feature cache"


def where(node_id: str | None = None) -> dict[str, Any]:
    """Where a stage ran: ``{"node_id", "host", "pid"}`` (``node_id`` is Ray's, ``None``
    without Ray)."""
    return {"node_id": node_id, "host": socket.gethostname(), "pid": os.getpid()}


@dataclass(frozen=True)
class PathCheck:
    """The pre-flight check of a run's paths (arguments of :func:`check_paths`); a runner
    runs it on every node that may run its jobs."""

    data: str | None = None
    machine_types: tuple[str, ...] = ()
    writable: tuple[tuple[str, str], ...] = ()
    cache_dir: str | None = None
    check_cache: bool = True
    #: Marker the driver wrote into every ``writable`` location (:func:`write_token`).
    token: str | None = None

    def problems(self) -> list[str]:
        """``check_paths`` of these paths on this machine."""
        return check_paths(data=self.data, machine_types=self.machine_types,
                           writable=self.writable, cache_dir=self.cache_dir,
                           check_cache=self.check_cache, token=self.token)


class StorageError(AutomlAsdError, ValueError):
    """A ``--storage`` value that cannot be what was meant (one line, with the fix)."""


class PreflightError(AutomlAsdError, ValueError):
    """A node cannot read the data or write the cache/outputs of a run (one line: node, path)."""
