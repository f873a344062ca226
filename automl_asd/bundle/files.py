"""Bundle files on disk: read a bundle folder or ``.tar`` into ``{path: bytes}``, write one
atomically (:func:`save_bundle`), and pack one into a ``.tar``.

:func:`save_bundle` writes every file into a temporary sibling folder and renames it into
place, so a reader sees either the previous bundle or the complete new one, never a half
written one. ``save_bundle(..., archive=True)`` also writes ``<folder>.tar``; ``tar -cf fan.tar
-C out/models fan`` (one top folder) or ``-C out/models/fan .`` (flat) give loadable archives
too. Links, special files and archives larger than :data:`~.format.MAX_BUNDLE_BYTES` are
refused while reading.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from automl_asd.bundle.format import (
    MANIFEST,
    MAX_BUNDLE_BYTES,
    BundleError,
    check_relpath,
    not_a_bundle,
)
from automl_asd.bundle.state import bundle_files
from automl_asd.components.files import naming_path
from automl_asd.io.run_folder import OutputError
from automl_asd.pipeline import FittedMachine

__all__ = ["read_bundle_files", "save_bundle", "write_bundle_tar", "write_tree",
           "foreign_files", "swap_folder"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- reading
def _read_tar(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleError(f"{path}: member {member.name!r} is a link or special "
                                      "file; bundles hold regular files only")
                rel = check_relpath(member.name, path)
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes unpacked; "
                                      "not a model bundle")
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    raise BundleError(f"{path}: cannot read member {member.name!r}")
                files[rel] = f.read()
    except (tarfile.TarError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # tarfile: 5 lines
        raise BundleError(f"{path}: not a readable tar archive ({first}); re-export the bundle "
                          "or give its folder") from None
    # Accept one top-level folder (``tar -cf m.tar fan/``) as well as a flat archive.
    if MANIFEST not in files:
        tops = {PurePosixPath(k).parts[0] for k in files}
        if len(tops) == 1:
            top = tops.pop()
            files = {str(PurePosixPath(*PurePosixPath(k).parts[1:])): v
                     for k, v in files.items() if len(PurePosixPath(k).parts) > 1}
            logger.debug("%s: stripped top-level folder %s", path, top)
    return files


def _read_folder(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        base = Path(dirpath)
        for d in dirnames:
            if (base / d).is_symlink():
                raise BundleError(f"{base / d}: symbolic link inside a bundle; bundles hold "
                                  "regular files only")
        for name in filenames:
            full = base / name
            if full.is_symlink() or not full.is_file():
                raise BundleError(f"{full}: link or special file inside a bundle; bundles hold "
                                  "regular files only")
            rel = full.relative_to(path).as_posix()
            total += full.stat().st_size
            if total > MAX_BUNDLE_BYTES:
                raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes; not a model "
                                  "bundle")
            files[rel] = full.read_bytes()
    return files


def read_bundle_files(path: str | Path) -> dict[str, bytes]:
    """Every file of a bundle folder or ``.tar`` as ``{relative posix path: bytes}``
    (unverified; see :func:`verify_bundle_files`)."""
    p = Path(path)
    if p.is_dir():
        if not (p / MANIFEST).is_file():
            # found 2026-12-07: a folder without a manifest (a data root, an apply run) was
            # read whole into memory before it was refused (1.5 GB: 6 s and 2 GB of memory)
            inner = sorted(m.parent for pattern in (f"*/{MANIFEST}", f"models/*/{MANIFEST}")
                           for m in p.glob(pattern))
            raise not_a_bundle(p, inner)
        return _read_folder(p)
    if p.is_file():
        return _read_tar(p)
    raise BundleError(f"{p}: no such bundle folder or archive; pass the folder that holds "
                      f"{MANIFEST} (e.g. <apply out>/models/<machine type>)")



# ----------------------------------------------------------------------------- writing
def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    """Write ``{relative path: bytes}`` under ``root`` (parents created)."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with naming_path(path):
            path.write_bytes(data)


def write_bundle_tar(files: Mapping[str, bytes], path: Path) -> Path:
    """Write bundle files into one uncompressed ``.tar`` (flat, no top folder), atomically."""
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        with naming_path(path), tarfile.open(tmp, "w") as tar:
            for rel, data in sorted(files.items()):
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _listed_files(folder: Path, manifest_name: str) -> set[str]:
    """Relative paths a saved folder's own manifest lists (plus the manifest itself)."""
    try:
        doc = json.loads((folder / manifest_name).read_text(encoding="utf-8"))
        listed = {str(k) for k in dict(doc.get("files", {}))}
    except (OSError, ValueError, TypeError, AttributeError):
        return set()
    return listed | {manifest_name}


def foreign_files(folder: Path, manifest_name: str) -> list[str]:
    """Files inside an existing ``folder`` that its manifest does not list (not ours)."""
    if not folder.exists():
        return []
    if not folder.is_dir() or folder.is_symlink():
        return [folder.name]
    listed = _listed_files(folder, manifest_name)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if not p.is_dir() and p.relative_to(folder).as_posix() not in listed)



def swap_folder(files: Mapping[str, bytes], out: Path) -> Path | None:
    """Write ``files`` into a temporary sibling of ``out`` and rename it into place; the
    previous ``out`` is renamed (not deleted) first, so a crash keeps a complete folder on
    disk. Returns the previous folder's new name (the caller removes it) or ``None``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.with_name(f".tmp-{out.name}-{tag}")
    old = out.with_name(f".old-{out.name}-{tag}")
    try:
        write_tree(tmp, files)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # holds only new files until the swap
    return old if old.exists() else None


def save_bundle(fitted: FittedMachine, out_dir: str | Path, *, archive: bool = False,
                replace_foreign: bool = False,
                before_write: Callable[[list[str]], None] | None = None) -> Path:
    """Save a fitted machine as a bundle folder ``out_dir`` (replacing an old one atomically).

    Args:
        fitted: from ``pipeline.fit_machine``.
        out_dir: the bundle folder to create, e.g. ``<apply out>/models/<mt>``.
        archive: also write ``<out_dir>.tar`` holding the same files.
        replace_foreign: replace an existing ``out_dir`` even when it holds files that are not
            part of the bundle there (default: refuse with ``OutputError`` naming one, since
            the whole folder is replaced).
        before_write: called with the bundle's relative file names before anything is written
            (``apply`` journals them, see ``io.run_folder``).

    Returns:
        ``out_dir`` (the folder).
    """
    out = Path(out_dir)
    files = bundle_files(fitted)
    foreign = foreign_files(out, MANIFEST)
    if foreign and not replace_foreign:
        raise OutputError(f"{out / foreign[0]}: not part of the model bundle saved there "
                          f"({len(foreign)} such file(s)); saving the bundle replaces the whole "
                          "folder: move the file away or choose another folder (apply: "
                          "--overwrite)")
    if before_write is not None:
        before_write(sorted(files))
    old = swap_folder(files, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if archive:
        write_bundle_tar(files, out.with_name(out.name + ".tar"))
    logger.info("saved bundle %s (%s, %d files, %.1f KiB)", out, fitted.machine_type,
                len(files), sum(len(v) for v in files.values()) / 1024)
    return out

