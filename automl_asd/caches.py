"""What the on-disk caches hold, and keeping them bounded (``automl-asd cache info|prune|clear``).

The cache root (``--cache-dir``, ``$AUTOML_ASD_CACHE`` or ``~/.cache/automl-asd``) holds two
kinds of *entries*, the unit everything here counts and removes:

* ``features/<kind>-<spec key>/<set key>/`` — one feature entry of :mod:`automl_asd.features`
  (the folder holds ``data.f32``, ``offsets.npy``, ``manifest.json``); beside them
  ``.lock-<set key>`` (the writers' lock files, empty), ``.tmp-<set key>-...`` (an entry being
  written) and ``.trash-...`` (one being deleted);
* ``representations/<family>/<key>.npz`` — one trained representation of
  :mod:`automl_asd.representation_cache` (``.<key>.tmp-....npz``: one being written).

Only names of exactly these forms (spec keys of 16 hex digits, set keys of 32, representation
keys of 64; an entry folder holding nothing but the entry's files, no links) are ever removed:
a ``--cache-dir`` pointed at a home or a data folder by mistake loses nothing. Entries being
written (``.tmp-``) are left alone; a feature entry whose writer holds its lock is skipped.
``prune`` and ``clear`` also remove what killed writers left (:func:`remove_stale_entries`'s
rule: a feature ``.tmp-`` entry of this host whose process is gone, or another host's after a
day; a representation's ``.tmp-`` file after a day) and ``.trash-`` folders (only ever made to
be deleted).

**Last use** is the entry's mtime: a writer creates the entry, and every read from disk sets
it to now (:func:`~automl_asd.components.files.mark_used`; best effort, so a read-only cache
still reads). Access times cannot serve: ``noatime`` mounts never set them.

**Removing while others run.** A feature entry is renamed aside (atomic) and then deleted, so a
reader sees it whole or not at all; a reader that finds it gone (or loses a file it had not
opened yet) treats it as a miss and recomputes, and an entry already open stays readable until
closed (POSIX). A representation is unlinked; a reader that loses it retrains. Scores do not
change: a recomputed entry is the same bytes as the removed one.

Pure library code (no Ray, no torch).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl_asd.components.locks import file_lock
from automl_asd.features import (
    ENTRY_FILES,
    FEATURES_SUBDIR,
    LOCK_PREFIX,
    SET_KEY_NAME,
    SPEC_DIR_NAME,
    STALE_TMP_SECONDS,
    TMP_PREFIX,
    TRASH_PREFIX,
    remove_entry,
    remove_stale_entries,
)

__all__ = ["KINDS", "REPRESENTATIONS_SUBDIR", "CacheSurvey", "Entry", "KindSummary",
           "Removal", "clear", "prune", "survey", "representation_file",
           "representation_tmp_file"]

#: The cache root's folder of trained representations: ``representations/<family>/<key>.npz``.
REPRESENTATIONS_SUBDIR = "representations"
#: The kinds of entries, in the order shown.
KINDS = (FEATURES_SUBDIR, REPRESENTATIONS_SUBDIR)

_SPEC_DIR = SPEC_DIR_NAME
_SET_KEY = SET_KEY_NAME
# The representation cache's name forms: the writer (layer 7) builds its names with the two
# functions below, so the forms `cache prune` matches are the forms written.
_FAMILY = re.compile(r"[a-z][a-z0-9_]*")  # a detector registry name
_REPRESENTATION = re.compile(r"[0-9a-f]{64}\.npz")  # a sha256 key
_REPRESENTATION_TMP = re.compile(r"\.[0-9a-f]{64}\.tmp-[0-9]+-[0-9]+\.npz")


def representation_file(root: Path, family: str, key: str) -> Path:
    """Where :mod:`automl_asd.representation_cache` keeps one representation:
    ``<root>/representations/<family>/<key>.npz`` (``key``: 64 hex digits)."""
    return root / REPRESENTATIONS_SUBDIR / family / f"{key}.npz"


def representation_tmp_file(path: Path) -> Path:
    """The file a representation is written to before it is renamed to ``path`` (unique per
    process and thread): ``.<key>.tmp-<pid>-<thread>.npz``."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}.npz")


@dataclass(frozen=True)
class Entry:
    """One cache entry: its kind (``features``/``representations``), group (the feature spec
    folder ``<kind>-<spec key>``, or the family), path, bytes (sum of its files' sizes) and
    last use (mtime, seconds since the epoch)."""

    kind: str
    group: str
    path: Path
    bytes: int
    last_used: float


@dataclass
class KindSummary:
    """Totals of some entries: count, bytes, oldest and newest last use (``None``: none)."""

    entries: int = 0
    bytes: int = 0
    oldest: float | None = None
    newest: float | None = None

    def add(self, entry: Entry) -> None:
        self.entries += 1
        self.bytes += entry.bytes
        self.oldest = entry.last_used if self.oldest is None else min(self.oldest,
                                                                      entry.last_used)
        self.newest = entry.last_used if self.newest is None else max(self.newest,
                                                                      entry.last_used)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "bytes": self.bytes,
                "oldest_use": _iso(self.oldest), "newest_use": _iso(self.newest)}


@dataclass
class CacheSurvey:
    """What a cache root holds (:func:`survey`).

    ``entries``: every entry, oldest last use first. ``unfinished``: entries being written or
    deleted (``.tmp-``/``.trash-``: count, bytes). ``other``: files that are no cache entry
    (count, bytes; never removed; ``None`` when not counted). ``specs``: a feature spec
    folder's spec (from one of its manifests) by folder name.
    """

    root: Path
    entries: list[Entry] = field(default_factory=list)
    unfinished: tuple[int, int] = (0, 0)
    other: tuple[int, int] | None = (0, 0)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        """Bytes of every entry and unfinished entry (foreign files not included)."""
        return sum(e.bytes for e in self.entries) + self.unfinished[1]

    def by_kind(self) -> dict[str, KindSummary]:
        out = {kind: KindSummary() for kind in KINDS}
        for e in self.entries:
            out[e.kind].add(e)
        return out

    def by_group(self, kind: str) -> dict[str, KindSummary]:
        out: dict[str, KindSummary] = {}
        for e in self.entries:
            if e.kind == kind:
                out.setdefault(e.group, KindSummary()).add(e)
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"root": str(self.root), "exists": self.root.is_dir(),
                               "bytes": self.bytes}
        for kind, total in self.by_kind().items():
            doc[kind] = {**total.to_dict(), "groups": {
                name: {**g.to_dict(), **({"spec": self.specs[name]}
                                         if name in self.specs else {})}
                for name, g in self.by_group(kind).items()}}
        doc["unfinished"] = {"entries": self.unfinished[0], "bytes": self.unfinished[1]}
        if self.other is not None:
            doc["other"] = {"files": self.other[0], "bytes": self.other[1]}
        return doc


@dataclass
class Removal:
    """What :func:`prune` / :func:`clear` removed (or, with ``dry_run``, would remove):
    ``removed`` entries; ``skipped``: entries in use (a writer holds the lock, or read since
    the survey); ``failed``: ``(path, reason)`` of entries that could not be removed;
    ``kept``: the entries left; ``leftovers``: (count, bytes) of unfinished entries of killed
    writers and half-deleted ones removed (none in a dry run)."""

    removed: list[Entry] = field(default_factory=list)
    skipped: list[Entry] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    kept: list[Entry] = field(default_factory=list)
    dry_run: bool = False
    leftovers: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run,
                "removed": {kind: _totals(e for e in self.removed if e.kind == kind)
                            for kind in KINDS},
                "skipped_in_use": len(self.skipped),
                "leftovers": {"entries": self.leftovers[0], "bytes": self.leftovers[1]},
                "failed": [{"path": str(p), "reason": r} for p, r in self.failed],
                "kept": _totals(self.kept)}


def _totals(entries: Iterable[Entry]) -> dict[str, int]:
    items = list(entries)
    return {"entries": len(items), "bytes": sum(e.bytes for e in items)}


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# ------------------------------------------------------------------------------ survey


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda d: d.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _tree_size(path: os.DirEntry[str] | Path) -> tuple[int, int]:
    """(files, bytes) under ``path`` (a file counts itself), links not followed."""
    p = Path(path)
    try:
        if not p.is_dir() or p.is_symlink():
            return 1, p.lstat().st_size
    except OSError:
        return 0, 0
    files = size = 0
    for top, _, names in os.walk(p):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(top, name)).st_size
                files += 1
    return files, size


def _feature_entry(d: os.DirEntry[str]) -> tuple[int, float] | None:
    """(bytes, mtime) of ``d`` if it is a feature entry folder: a set key's name, not a link,
    holding only regular files among :data:`ENTRY_FILES`; else ``None`` (also when it went
    away while counted: a concurrent prune)."""
    if not _SET_KEY.fullmatch(d.name) or not d.is_dir(follow_symlinks=False):
        return None
    size = 0
    try:
        for f in _scan(Path(d.path)):
            if f.name not in ENTRY_FILES or not f.is_file(follow_symlinks=False):
                return None
            size += f.stat(follow_symlinks=False).st_size
        return size, d.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return None


def _spec_of(entries: Sequence[Entry]) -> dict[str, Any] | None:
    """The feature spec one of the folder's manifests records (``None``: none readable)."""
    for e in entries:
        try:
            with (e.path / "manifest.json").open() as fh:
                doc = json.load(fh)
            spec = doc["spec"]
            if isinstance(spec, dict):
                return spec
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def survey(root: Path | str, *, count_other: bool = True) -> CacheSurvey:
    """Every entry under the cache ``root`` (a missing root: an empty survey).

    Args:
        root: the cache root (``features/`` and ``representations/`` below it).
        count_other: also count the files that are no cache entry (walks them all: ``False``
            where only the entries matter, e.g. before a prune).

    Returns:
        The :class:`CacheSurvey`; its ``entries`` sorted by last use, oldest first.
    """
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder (the cache root is a folder)")
    out = CacheSurvey(root=root, other=(0, 0) if count_other else None)
    other = [0, 0]
    unfinished = [0, 0]

    def foreign(d: os.DirEntry[str] | Path) -> None:
        if count_other:
            n, b = _tree_size(d)
            other[0] += n
            other[1] += b

    def in_progress(d: os.DirEntry[str]) -> None:
        _, b = _tree_size(d)
        unfinished[0] += 1
        unfinished[1] += b

    for top in _scan(root):
        # the kind folders may be links (a big cache moved to another disk: the writers
        # follow them too); below them, nothing is followed
        if top.name == FEATURES_SUBDIR and top.is_dir():
            for spec in _scan(Path(top.path)):
                if not (_SPEC_DIR.fullmatch(spec.name) and spec.is_dir(follow_symlinks=False)):
                    foreign(spec)
                    continue
                found: list[Entry] = []
                for d in _scan(Path(spec.path)):
                    got = _feature_entry(d)
                    if got is not None:
                        found.append(Entry(FEATURES_SUBDIR, spec.name, Path(d.path), *got))
                    elif d.name.startswith((TMP_PREFIX, TRASH_PREFIX)) and d.is_dir(
                            follow_symlinks=False):
                        in_progress(d)
                    elif not (d.name.startswith(LOCK_PREFIX)
                              and _SET_KEY.fullmatch(d.name[len(LOCK_PREFIX):])
                              and d.is_file(follow_symlinks=False)):
                        foreign(d)
                out.entries += found
                described = _spec_of(found)
                if described is not None:
                    out.specs[spec.name] = described
        elif top.name == REPRESENTATIONS_SUBDIR and top.is_dir():
            for fam in _scan(Path(top.path)):
                if not (_FAMILY.fullmatch(fam.name) and fam.is_dir(follow_symlinks=False)):
                    foreign(fam)
                    continue
                for f in _scan(Path(fam.path)):
                    if not f.is_file(follow_symlinks=False):
                        foreign(f)
                    elif _REPRESENTATION.fullmatch(f.name):
                        try:
                            st = f.stat(follow_symlinks=False)
                        except FileNotFoundError:  # removed meanwhile
                            continue
                        out.entries.append(Entry(REPRESENTATIONS_SUBDIR, fam.name, Path(f.path),
                                                 st.st_size, st.st_mtime))
                    elif _REPRESENTATION_TMP.fullmatch(f.name):
                        in_progress(f)
                    else:
                        foreign(f)
        else:
            foreign(top)
    out.entries.sort(key=lambda e: (e.last_used, str(e.path)))
    out.unfinished = (unfinished[0], unfinished[1])
    if count_other:
        out.other = (other[0], other[1])
    return out


# ------------------------------------------------------------------------------ removal


def _remove(entry: Entry) -> bool:
    """Remove one entry unless it is in use (``False``: skipped). A feature entry is removed
    holding its writers' lock (not waiting for it: a writer holding it is computing that very
    set), and its lock file with it. Raises ``OSError`` when it cannot be removed."""
    try:
        mtime = entry.path.stat().st_mtime
    except FileNotFoundError:
        return False  # another prune, or a reader that found it damaged, was first
    if mtime > entry.last_used:
        return False  # read since the survey: in use
    if entry.kind == REPRESENTATIONS_SUBDIR:
        entry.path.unlink()
        return True
    lock = entry.path.with_name(f"{LOCK_PREFIX}{entry.path.name}")
    try:
        with file_lock(lock, wait=False):
            remove_entry(entry.path)
            # Unlinked while held: a process that opened it before could then lock the old
            # file while a later one locks a new one; both would compute the same set, and the
            # atomic rename keeps the entry whole (the second writer's entry is dropped).
            lock.unlink(missing_ok=True)
    except BlockingIOError:
        return False
    return True


def _remove_all(chosen: Sequence[Entry], rest: Sequence[Entry], dry_run: bool) -> Removal:
    result = Removal(kept=list(rest), dry_run=dry_run)
    for entry in chosen:
        if dry_run:
            result.removed.append(entry)
            continue
        try:
            done = _remove(entry)
        except OSError as exc:
            result.failed.append((entry.path, f"{type(exc).__name__}: {exc.strerror or exc}"))
            result.kept.append(entry)
            continue
        (result.removed if done else result.skipped).append(entry)
        if not done:
            result.kept.append(entry)
    return result


def _leftovers(root: Path, kinds: Sequence[str] = KINDS) -> tuple[int, int]:
    """Remove what killed writers of ``kinds`` left, and half-deleted entries; returns
    (count, bytes)."""
    count = size = 0
    now = time.time()
    for spec in _scan(root / FEATURES_SUBDIR) if FEATURES_SUBDIR in kinds else []:
        if not (_SPEC_DIR.fullmatch(spec.name) and spec.is_dir(follow_symlinks=False)):
            continue
        keys: set[str] = set()
        for d in _scan(Path(spec.path)):
            if not d.is_dir(follow_symlinks=False):
                continue
            if d.name.startswith(TRASH_PREFIX) and _SET_KEY.fullmatch(
                    d.name[len(TRASH_PREFIX):].split("-", 1)[0]):
                _, b = _tree_size(d)
                shutil.rmtree(d.path, ignore_errors=True)
                if not os.path.lexists(d.path):
                    count, size = count + 1, size + b
            elif d.name.startswith(TMP_PREFIX):
                key = d.name[len(TMP_PREFIX):].split("-", 1)[0]
                if _SET_KEY.fullmatch(key):
                    keys.add(key)
        for key in sorted(keys):
            before = len(list(Path(spec.path).glob(f"{TMP_PREFIX}{key}-*")))
            with contextlib.suppress(BlockingIOError), \
                    file_lock(Path(spec.path) / f"{LOCK_PREFIX}{key}", wait=False):
                freed = remove_stale_entries(Path(spec.path), key)
                gone = before - len(list(Path(spec.path).glob(f"{TMP_PREFIX}{key}-*")))
                count, size = count + gone, size + freed
    for fam in _scan(root / REPRESENTATIONS_SUBDIR) if REPRESENTATIONS_SUBDIR in kinds else []:
        if not (_FAMILY.fullmatch(fam.name) and fam.is_dir(follow_symlinks=False)):
            continue
        for f in _scan(Path(fam.path)):
            if _REPRESENTATION_TMP.fullmatch(f.name) and f.is_file(follow_symlinks=False):
                st = f.stat(follow_symlinks=False)
                if now - st.st_mtime >= STALE_TMP_SECONDS:
                    with contextlib.suppress(OSError):
                        os.unlink(f.path)
                        count, size = count + 1, size + st.st_size
    return count, size


def _tidy(removed: Iterable[Entry]) -> None:
    """Remove the spec and family folders that ``removed`` left empty (``rmdir`` removes only
    an empty one); an empty folder that held no entry (a user's ``representations/notes/`` in a
    home given as the cache) stays."""
    for group in sorted({e.path.parent for e in removed}):
        with contextlib.suppress(OSError):
            os.rmdir(group)


def prune(root: Path | str, *, max_bytes: int | None = None,
          older_than_s: float | None = None, dry_run: bool = False,
          now: float | None = None) -> Removal:
    """Remove whole entries, least recently used first: every entry not used for
    ``older_than_s`` seconds, then more until the entries take at most ``max_bytes``.

    Args:
        root: the cache root.
        max_bytes: keep the entries (and unfinished ones, which are never removed) within this.
        older_than_s: remove entries whose last use is longer ago than this.
        dry_run: remove nothing; the result lists what would be removed.
        now: the current time (seconds since the epoch; default ``time.time()``).

    Returns:
        The :class:`Removal`.
    """
    if max_bytes is None and older_than_s is None:
        raise ValueError("prune needs a size limit or an age")
    root = Path(root).expanduser()
    found = survey(root, count_other=False)
    now = time.time() if now is None else now
    entries = found.entries  # oldest first
    old = [older_than_s is not None and now - e.last_used > older_than_s for e in entries]
    chosen = [e for e, o in zip(entries, old, strict=True) if o]
    kept = [e for e, o in zip(entries, old, strict=True) if not o]
    if max_bytes is not None:
        total = found.bytes - sum(e.bytes for e in chosen)
        n = 0
        while n < len(kept) and total > max_bytes:  # kept is oldest first
            total -= kept[n].bytes
            n += 1
        chosen, kept = chosen + kept[:n], kept[n:]
    result = _remove_all(chosen, kept, dry_run)
    if not dry_run:
        result.leftovers = _leftovers(root)
        _tidy(result.removed)
    return result


def clear(root: Path | str, *, kinds: Sequence[str] = KINDS, dry_run: bool = False) -> Removal:
    """Remove every entry of ``kinds`` (default: all) under ``root``; nothing else.

    Returns:
        The :class:`Removal` (``kept``: the entries of other kinds, and those in use).
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown cache kind(s) {unknown}; expected some of {list(KINDS)}")
    root = Path(root).expanduser()
    found = survey(root, count_other=False)
    chosen = [e for e in found.entries if e.kind in kinds]
    result = _remove_all(chosen, [e for e in found.entries if e.kind not in kinds], dry_run)
    if not dry_run:
        result.leftovers = _leftovers(root, kinds)
        _tidy(result.removed)
    return result
