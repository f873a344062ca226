"""Output folders that know what they wrote: a manifest, an advisory lock and a write journal.

Every command that writes a folder of results (``apply --out``, ``demo --out``) owns only the
files it wrote there, and never deletes or replaces anything else:

* ``<out>/.automl-asd-run.json`` (the *run manifest*): the command, the recipe name and hash,
  and ``files``: every file the runs of that folder wrote, as ``{relative path: sha256}``.
  A file whose name is listed is the run's own (a rerun may replace it; ``--resume`` reruns a
  machine type whose files no longer match; a report or the recipe a user edited since is
  first kept as ``<name>.edited``, :func:`editable`); any other file is *foreign*.
* ``<out>/.automl-asd-run.lock``: one advisory lock per folder (``fcntl.flock``, held for the
  whole command; the file holds the holder's pid, host and command). A second writer fails at
  once with a one-line error naming that pid and host.
* ``<out>/.automl-asd-run.journal-<tag>``: before a task (possibly a Ray worker) creates a
  file, it appends the file's relative path to its journal; the driver folds the journal into
  the manifest when the task reports back, or at the next start after a crash. So a file the
  tool created is never mistaken for a user's file, even when the driver was killed.

Before any work, a command lists the names it may write (:meth:`RunFolder.check_free`); an
existing foreign file among them is refused (:class:`OutputError`, one line naming it) unless
``overwrite``. Clearing before a rerun deletes only the run's own files
(:meth:`RunFolder.remove_owned`). :func:`data_fingerprint` gives the cheap clip-list hash
``apply --resume`` compares.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from automl_asd.components.files import atomic_write_text, naming_path
from automl_asd.errors import AutomlAsdError
from automl_asd.io.results import files_fingerprint, sha256_file

__all__ = [
    "RUN_MANIFEST",
    "LOCK_FILE",
    "JOURNAL_PREFIX",
    "DRIVER_JOURNAL",
    "OutputError",
    "FolderLock",
    "RunFolder",
    "journal",
    "data_fingerprint",
    "machine_patterns",
    "REPORT_PATTERNS",
    "editable",
    "plot_patterns",
    "matches",
    "check_report_file",
    "check_apart",
    "check_outputs_apart",
    "local_storage",
]

logger = logging.getLogger(__name__)

RUN_MANIFEST = ".automl-asd-run.json"
LOCK_FILE = ".automl-asd-run.lock"
JOURNAL_PREFIX = ".automl-asd-run.journal-"
#: the journal of the files a command writes itself (not a task's: those are journaled under
#: their machine type)
DRIVER_JOURNAL = ".driver"
MANIFEST_FORMAT = "automl-asd-run"
MANIFEST_VERSION = 1
#: Names the tool keeps for itself in any run folder (never user files, never listed).
_TOOL_NAMES = (RUN_MANIFEST, LOCK_FILE)

#: Files ``apply`` writes once per run when labels exist (metrics, tables).
REPORT_PATTERNS = ("results.csv", "results.md", "metrics.json")


#: suffix of the hidden copy of an edited file a command sets aside while it runs
_PENDING = ".edited-pending"


def _free_edited_name(path: Path) -> Path:
    """``<path>.edited``, or ``.edited-2``, ``-3``, … where that exists."""
    copy = path.with_name(path.name + ".edited")
    n = 1
    while copy.exists() or copy.is_symlink():
        n += 1
        copy = path.with_name(f"{path.name}.edited-{n}")
    return copy


def editable(rel: str) -> bool:
    """Whether the run's own file ``rel`` is one people edit: a report (``*.md``) or the
    recipe at the top of the folder or of a leave-one-out fold's folder (``loo/<type>/``).
    One edited since the tool wrote it is kept as ``<name>.edited`` before the tool replaces
    it (:meth:`RunFolder.remove_owned`, :meth:`RunFolder.stash_edited`). Files in
    model bundles are not: a bundle is saved as a whole, checked against its own manifest."""
    parts = rel.split("/")
    if len(parts) == 3 and parts[0] == "loo":  # a fold's documents (found 2026-12-07: F3)
        parts = parts[2:]
    return len(parts) == 1 and (rel.endswith(".md") or parts[0] == "recipe.json")


def matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether the relative path ``rel`` matches one of ``patterns`` (``fnmatch``, case
    sensitive; ``*`` crosses ``/``)."""
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


def machine_patterns(machine_type: str,
                     sections: Sequence[str] | None = None) -> tuple[str, ...]:
    """Relative-path patterns (``fnmatch``, ``*`` crosses ``/``) of what ``apply`` writes for one
    machine type: submission CSVs, summary, error report, plots and the model bundle (every
    section, or exactly ``sections``)."""
    mt = machine_type
    secs = list(sections) if sections else ["*"]
    per_section = [name for ss in secs for name in (
        f"anomaly_score_{mt}_section_{ss}_test.csv", f"decision_result_{mt}_section_{ss}_test.csv",
        f"roc_{mt}_section_{ss}.png", f"hist_{mt}_section_{ss}.png")]
    return (*per_section, f"{mt}.summary.json", f"{mt}.error.txt", f"roc_{mt}.png",
            f"hist_{mt}.png", f"models/{mt}/*")


def plot_patterns(machine_type: str) -> tuple[str, ...]:
    """The plots of one machine type among :func:`machine_patterns` (every section)."""
    return tuple(p for p in machine_patterns(machine_type)
                 if p.startswith(("roc_", "hist_")))


class OutputError(AutomlAsdError, ValueError):
    """An output folder or file that cannot be written safely; the message names it and the
    fix (the CLI prints it as one line)."""


#: the official evaluator's ground-truth folders: what ``--ground-truth`` protects in an
#: evaluator folder, whose teams/ and teams_result/ hold submissions and results
_GROUND_TRUTH_DIRS = ("ground_truth_data", "ground_truth_domain", "ground_truth_attributes")


def _input_trees(inputs: Iterable[tuple[str, Path | None]]) -> list[tuple[str, Path]]:
    """The folders ``inputs`` name that outputs must stay out of: each folder, except that an
    evaluator folder given as ``--ground-truth`` is only its ground-truth folders."""
    trees: list[tuple[str, Path]] = []
    for opt, folder in inputs:
        if folder is None:
            continue
        root = Path(folder)
        if opt == "--ground-truth" and (root / _GROUND_TRUTH_DIRS[0]).is_dir():
            parts = [root / sub for sub in _GROUND_TRUTH_DIRS]
        else:
            parts = [root]
        for part in parts:
            trees += [(opt, part)] + [(opt, link) for link in _linked_folders(part)]
    return trees


def _linked_folders(root: Path, depth: int = 4) -> list[Path]:
    """Symbolic links to folders within ``depth`` levels of ``root`` (a machine folder linked
    into a data tree): their targets are input too. Found 2026-12-07: with ``--data L`` where
    ``L/pump`` links to ``T/pump``, ``--out T/pump/train/out`` was let through."""
    found: list[Path] = []
    level = [root]
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if not entry.is_dir():  # follows a link: a linked folder is a folder
                        continue
                    (found if entry.is_symlink() else below).append(Path(entry.path))
                except OSError:
                    continue
        level = below
    return found


def _inside(target: Path, inputs: Iterable[tuple[str, Path | None]]
            ) -> tuple[str, Path, bool] | None:
    """The first input tree (:func:`_input_trees`) the resolved ``target`` is or lies in:
    ``(option, folder, target is the folder itself)``; None when it is outside all."""
    for opt, folder in _input_trees(inputs):
        root = folder.expanduser().resolve()
        if target == root or target.is_relative_to(root):
            return opt, folder, target == root
    return None


def check_report_file(out: Path, option: str, *,
                      inputs: Iterable[tuple[str, Path | None]] = ()
                      ) -> None:
    """Refuse a report file (``evaluate --json/--out``, ``summarize --out``) that would replace
    what the command reads or what a run wrote: a folder, a ``.wav`` name, a path inside a
    folder of ``inputs`` (``(option, folder)``: trees the command reads, e.g. the ground truth),
    a submission CSV's name, or a file listed in the run manifest of a folder above it.
    :class:`OutputError` (one line naming the path), before any work."""
    if out.is_dir():
        raise OutputError(f"{option} {out}: is a folder; give the file to write")
    if out.suffix.lower() == ".wav":
        raise OutputError(f"{option} {out}: a .wav name; choose another file (it would "
                          "replace a recording)")
    target = out.expanduser().resolve()
    if (hit := _inside(target, inputs)) is not None:
        raise OutputError(f"{option} {out}: inside {hit[0]} {hit[1]}, which this command "
                          "reads; choose a file outside it")
    if target.name.startswith(("anomaly_score_", "decision_result_")):
        raise OutputError(f"{option} {out}: a submission CSV's name; choose another file")
    for parent in target.parents:
        manifest = parent / RUN_MANIFEST
        if manifest.is_file():
            try:
                files = json.loads(manifest.read_text(encoding="utf-8")).get("files") or {}
            except (OSError, ValueError, AttributeError):
                files = {}
            if target.relative_to(parent).as_posix() in files:
                raise OutputError(f"{option} {out}: written by an automl-asd run (listed in "
                                  f"{manifest}); choose another file")
            break


def check_apart(out: Path, option: str, inputs: Iterable[tuple[str, Path | None]]) -> None:
    """Refuse an output folder ``out`` that is one of the input folders (``(option, path)``)
    or inside one: a run never writes into the tree it reads. :class:`OutputError`."""
    target = out.expanduser().resolve()
    if (hit := _inside(target, inputs)) is not None:
        opt, folder, same = hit
        raise OutputError(f"{option} {out}: {'is' if same else 'inside'} {opt} {folder}; "
                          f"outputs are never written into the input tree, choose another "
                          f"{option}")


def check_outputs_apart(out: Path, storage: str | None,
                        inputs: Iterable[tuple[str, Path | None]]) -> None:
    """:func:`check_apart` for a run's ``--out`` and, when it is a local folder, its
    ``--storage``."""
    inputs = list(inputs)
    check_apart(Path(out), "--out", inputs)
    if (store := local_storage(storage)) is not None:
        check_apart(store, "--storage", inputs)


def local_storage(location: str | None) -> Path | None:
    """The local folder a ``--storage`` value names (a path or ``file://`` URI), else None."""
    if not location:
        return None
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    # `~/st` is the folder the storage itself uses (found 2026-12-07: the lock was made in
    # a folder named `~` in the current one)
    return None if "://" in location else Path(location).expanduser()


#: lock file of a local ``--storage`` folder (apart from a run folder's own lock, so that
#: ``--storage`` may also be ``--out``)
STORAGE_LOCK = ".automl-asd-storage.lock"


@contextlib.contextmanager
def storage_lock(location: str | None, command: str) -> Iterator[None]:
    """Hold a lock on a local ``--storage`` folder while a run uses it: two runs sharing one
    storage at once read each other's uploads (``apply`` took another recipe's scores for its
    own) or run in one Tune experiment folder (``search``). A second run fails at once naming
    the holder. Remote storage (``s3://...``) cannot be locked from here: give each run its
    own."""
    store = local_storage(location)
    if store is None:
        yield
        return
    store.mkdir(parents=True, exist_ok=True)
    with FolderLock(store, f"{command} --storage", lock_path=store / STORAGE_LOCK,
                    other="--storage for this run"):
        yield


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- lock
class FolderLock:
    """Advisory exclusive lock on ``<folder>/.automl-asd-run.lock`` (``fcntl.flock``).

    ``acquire`` fails at once (no waiting) with :class:`OutputError` naming the holder's pid
    and host when another process holds it. The lock file stays after release (it is not a
    user file and never listed), unless ``remove``: then the holder deletes it before it
    unlocks, and a process that locked the deleted file meanwhile (it had opened it just
    before) sees that the path no longer names what it locked and takes the lock again.
    """

    def __init__(self, folder: Path, command: str, *, lock_path: Path | None = None,
                 other: str = "output", remove: bool = False) -> None:
        self.target = Path(folder)
        self.path = lock_path if lock_path is not None else self.target / LOCK_FILE
        self.command = command
        self.other = other  # what the refusal asks to choose instead
        self.remove = remove
        self._fh: IO[str] | None = None

    def acquire(self) -> FolderLock:
        for _ in range(100):  # a holder that removes its file on release: lock the new one
            fh = self._lock_once()
            try:
                same = os.path.samestat(os.fstat(fh.fileno()), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        else:
            raise OutputError(f"{self.path}: the lock file keeps being replaced; is another "
                              "program removing it?")
        try:
            # a full disk fails here first, in a write that names no file (found 2026-12-07)
            with naming_path(self.path):
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "command": self.command, "since": _now()}) + "\n")
                fh.flush()
        except BaseException:
            with contextlib.suppress(OSError):  # flushing what failed fails again
                fh.close()  # releases the lock
            raise
        self._fh = fh
        return self

    def _lock_once(self) -> IO[str]:
        """Open the lock file and take its lock, or raise :class:`OutputError` naming the
        holder."""
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputError(f"{self.path}: cannot lock the output folder ({exc})") from None
            try:
                info = json.loads(holder)
                who = (f"pid {info.get('pid')} on host {info.get('host')} "
                       f"({info.get('command')}, since {info.get('since')})")
            except ValueError:
                who = "another process"
            raise OutputError(f"{self.target}: another automl-asd run is writing it ({who}); "
                              f"wait for it to finish or choose another {self.other}") from None
        return fh

    def release(self) -> None:
        if self._fh is not None:
            try:
                self._fh.seek(0)
                self._fh.truncate()
                if self.remove:  # while still held: a waiting locker then sees it is gone
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


# ----------------------------------------------------------------------------- journal
def _journal_path(folder: Path, tag: str) -> Path:
    return Path(folder) / f"{JOURNAL_PREFIX}{tag}"


def journal(folder: str | Path, tag: str, relpaths: Iterable[str]) -> None:
    """Record, before creating them, that files ``relpaths`` (relative to ``folder``) are
    written by the tool; ``tag`` names the writer (e.g. the machine type). Flushed to disk."""
    lines = "".join(f"{Path(r).as_posix()}\n" for r in relpaths)
    if not lines:
        return
    with open(_journal_path(Path(folder), tag), "a", encoding="utf-8") as fh:
        fh.write(lines)
        fh.flush()
        os.fsync(fh.fileno())


# ----------------------------------------------------------------------------- fingerprint
def data_fingerprint(directory: str | Path, *, content: bool = False) -> str:
    """:func:`~automl_asd.io.results.files_fingerprint` of every file under ``directory``
    (relative paths). By ``stat`` (no audio read): any rewrite of a file changes it, also a
    same-size one that restores the old mtime, and so does a copy of the tree; with ``content``
    (``--verify-audio``) by a digest of every file's bytes."""
    root = Path(directory)
    files = [Path(dirpath) / name for dirpath, _, filenames in os.walk(root)
             for name in filenames]
    return files_fingerprint(files, root=root, missing_ok=True, content=content)


def _without_time(manifest: Mapping[str, Any]) -> str:
    """``manifest`` as canonical JSON without its ``updated`` time (to tell a change)."""
    return json.dumps({k: v for k, v in manifest.items() if k != "updated"}, sort_keys=True)


# ----------------------------------------------------------------------------- run folder
class RunFolder:
    """A locked output folder and its run manifest; open with :meth:`open`, then ``close``.

    ``overwrite`` lets the run replace foreign files whose names it writes (``--overwrite``).
    """

    def __init__(self, path: Path, command: str, manifest: dict[str, Any], lock: FolderLock,
                 *, overwrite: bool, created: bool = False) -> None:
        self.path = path
        self.command = command
        self.manifest = manifest
        self.overwrite = overwrite
        self._lock = lock
        self._created = created
        #: the manifest as last read or written, without its time (None: not on disk yet)
        self._saved = _without_time(manifest) if manifest else None

    # -- open / close
    @classmethod
    def open(cls, path: str | Path, *, command: str, recipe_hash: str | None = None,
             recipe_name: str | None = None, overwrite: bool = False,
             on_new: Callable[[Path], None] | None = None,
             behaviour_hash: str | None = None) -> RunFolder:
        """Create (if needed) and lock ``path``, read its manifest and fold in journals.

        Refuses (:class:`OutputError`) a path that is a file, a folder holding another
        command's run, and, unless ``overwrite``, a folder whose run used another recipe
        (``recipe_hash``); with ``overwrite`` that previous run's own files are removed first.
        ``on_new(path)`` is called when the folder has no manifest yet (e.g. to refuse a
        non-empty foreign folder), before anything is written.
        """
        out = Path(path)
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: exists and is not a folder; choose a folder for the "
                              "outputs")
        man_path = out / RUN_MANIFEST
        if on_new is not None and not man_path.exists():
            on_new(out)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out, command).acquire()
        try:
            manifest = cls._read(man_path, overwrite=overwrite)
            existed = bool(manifest)
            folder = cls(out, command, manifest, lock, overwrite=overwrite, created=created)
            folder.adopt_journals()
            prev_cmd = manifest.get("command")
            if prev_cmd not in (None, command):
                raise OutputError(f"{out}: holds the outputs of `automl-asd {prev_cmd}` "
                                  f"(see {RUN_MANIFEST}); choose another output folder")
            prev = manifest.get("recipe_hash")
            if recipe_hash is not None and prev not in (None, recipe_hash) and folder.files:
                if not overwrite and behaviour_hash is not None \
                        and manifest.get("behaviour_hash") == behaviour_hash:
                    raise OutputError(
                        f"{out}: holds the outputs of recipe {manifest.get('recipe_name')} "
                        f"({str(prev)[:12]}), which scores exactly as {recipe_name} "
                        f"({recipe_hash[:12]}) but differs in its name, description or "
                        "provenance (e.g. the same pick frozen again by `search --resume`); "
                        "to continue that run, apply the recipe that made it (a copy: "
                        "recipe.json in any bundle under models/ there), or pass --overwrite "
                        "to redo it under this one")
                if not overwrite:
                    raise OutputError(
                        f"{out}: holds the outputs of recipe {manifest.get('recipe_name')} "
                        f"({str(prev)[:12]}), not {recipe_name} ({recipe_hash[:12]}); mixing "
                        "two recipes in one folder would report a score of neither; choose "
                        "another output folder or pass --overwrite to replace that run")
                logger.warning("%s: replacing the outputs of recipe %s (%s) (--overwrite)", out,
                               manifest.get("recipe_name"), str(prev)[:12])
                folder.remove_owned(lambda _: True)
            if not manifest.get("format"):
                manifest.update({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                                 "created": _now(), "files": manifest.get("files", {})})
            manifest.update({"command": command, "updated": _now()})
            if recipe_hash is not None:
                manifest.update({"recipe_hash": recipe_hash, "recipe_name": recipe_name})
                if behaviour_hash is not None:
                    manifest["behaviour_hash"] = behaviour_hash
                else:
                    manifest.pop("behaviour_hash", None)
            if existed:
                folder.save()  # a new manifest is written with the run's first file
        except BaseException:
            lock.release()
            raise
        return folder

    @staticmethod
    def _read(man_path: Path, *, overwrite: bool) -> dict[str, Any]:
        try:
            data = json.loads(man_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            if overwrite:
                logger.warning("%s: unreadable (%s); starting a new manifest (--overwrite)",
                               man_path, exc)
                return {}
            raise OutputError(f"{man_path}: unreadable run manifest ({exc}); move the folder "
                              "away or pass --overwrite") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT \
                or not isinstance(data.get("files"), dict):
            if overwrite:
                return {}
            raise OutputError(f"{man_path}: not an automl-asd run manifest; move the folder "
                              "away or pass --overwrite")
        return data

    def close(self) -> None:
        """Release the lock (the manifest is saved on every change). A run that wrote nothing
        leaves nothing: no lock file, and no folder when it created it."""
        if not (self.path / RUN_MANIFEST).exists():
            self._lock.path.unlink(missing_ok=True)
            self._lock.release()
            if self._created and self.path.is_dir() and not any(self.path.iterdir()):
                self.path.rmdir()
            return
        self._lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- manifest
    @property
    def files(self) -> dict[str, str]:
        """``{relative path: sha256}`` of the files this folder's runs wrote."""
        files: dict[str, str] = self.manifest.setdefault("files", {})
        return files

    def save(self) -> None:
        """Write the manifest, with the time, when more than its time changed since it was
        read or last written: a command refused after opening its folder (or a resume that
        changed nothing) leaves the manifest as it was."""
        state = _without_time(self.manifest)
        if state == self._saved and (self.path / RUN_MANIFEST).exists():
            return
        self.manifest["updated"] = _now()
        atomic_write_text(self.path / RUN_MANIFEST,
                          json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        self._saved = state

    def owns(self, relpath: str) -> bool:
        return Path(relpath).as_posix() in self.files

    def record(self, relpaths: Iterable[str | Path], *, save: bool = True) -> None:
        """List files the run wrote (paths relative to the folder, or absolute paths inside it)
        with their current sha256; names that do not exist (any more) are dropped."""
        for rel in relpaths:
            p = Path(rel)
            p = p.relative_to(self.path.resolve()) if p.is_absolute() else p
            full = self.path / p
            if full.is_file() and not full.is_symlink():
                self.files[p.as_posix()] = sha256_file(full)
            else:
                self.files.pop(p.as_posix(), None)
        if save:
            self.save()

    def record_tree(self, reldir: str, *, listed_in: str) -> None:
        """List as the run's own the files of ``<folder>/<reldir>`` that its manifest file
        ``listed_in`` (JSON with a ``files`` table, e.g. ``shared.json``) names, plus that
        file; other files there (a user's) stay foreign."""
        root = self.path / reldir
        prefix = f"{reldir.rstrip('/')}/"
        for rel in [k for k in self.files if k.startswith(prefix)]:
            del self.files[rel]
        try:
            doc = json.loads((root / listed_in).read_text(encoding="utf-8"))
            names = [str(n) for n in dict(doc.get("files", {}))] + [listed_in]
        except (OSError, ValueError, TypeError, AttributeError):
            names = []
        self.record([f"{prefix}{n}" for n in names
                     if ".." not in Path(n).parts and not Path(n).is_absolute()])

    def adopt_journals(self, tags: Sequence[str] | None = None) -> None:
        """Fold writers' journals into the manifest (all of them, or those of ``tags``)."""
        paths = ([_journal_path(self.path, t) for t in tags] if tags is not None
                 else sorted(self.path.glob(f"{JOURNAL_PREFIX}*")))
        changed = False
        for jp in paths:
            try:
                names = [ln for ln in jp.read_text(encoding="utf-8").splitlines() if ln]
            except FileNotFoundError:
                continue
            self.record(names, save=False)
            changed = True
        if changed:
            self.save()
        for jp in paths:
            jp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def writing(self, relpaths: Iterable[str]) -> Iterator[None]:
        """Around the command's own writes of ``relpaths`` (those that exist afterwards are
        recorded, whether the block fails or not): they are journaled first, so a file written
        before the manifest could be saved (a full disk) is still the run's own at the next
        start, not a foreign file that refuses ``--resume`` (found 2026-12-07 on a full
        tmpfs: an ``<mt>.error.txt``, a ``results.csv``)."""
        journal(self.path, DRIVER_JOURNAL, relpaths)
        try:
            yield
        except BaseException:
            # the journal stays on disk when the manifest cannot be saved; the next start
            # folds it in
            with contextlib.suppress(OSError):
                self.adopt_journals([DRIVER_JOURNAL])
            raise
        self.adopt_journals([DRIVER_JOURNAL])

    def drop_journal(self, tag: str) -> None:
        """Delete writer ``tag``'s journal unread (the command recorded its files itself)."""
        _journal_path(self.path, tag).unlink(missing_ok=True)

    # -- checks and clearing
    def _existing(self, patterns: Sequence[str]) -> Iterator[str]:
        tops = {p.split("/", 1)[0] for p in patterns if "/" in p}
        seen: set[str] = set()
        for entry in sorted(self.path.iterdir()):
            if entry.is_file() or entry.is_symlink():
                seen.add(entry.name)
        for top in sorted(tops):
            base = self.path / top
            if base.is_dir() and not base.is_symlink():
                seen.update(p.relative_to(self.path).as_posix() for p in base.rglob("*")
                            if not p.is_dir() or p.is_symlink())
        for rel in sorted(seen):
            if rel in _TOOL_NAMES or rel.startswith(JOURNAL_PREFIX):
                continue
            if matches(rel, patterns):
                yield rel

    def foreign(self, patterns: Sequence[str]) -> list[str]:
        """Existing files matching ``patterns`` that the folder's runs did not write."""
        return [rel for rel in self._existing(patterns) if not self.owns(rel)]

    def check_free(self, patterns: Sequence[str], *, can_overwrite: bool = True) -> None:
        """Refuse (:class:`OutputError`) foreign files among the names a run may write, unless
        ``overwrite``. ``can_overwrite``: whether the command offers ``--overwrite`` (the
        message suggests it only then)."""
        found = self.foreign(patterns)
        if not found:
            return
        if self.overwrite:
            logger.warning("%s: may replace %d file(s) this tool did not write (--overwrite): "
                           "%s", self.path, len(found), ", ".join(found[:5]))
            return
        also = ""
        if len(found) > 1:
            more = f" and {len(found) - 3} more" if len(found) > 3 else ""
            also = f" (also {', '.join(found[1:3])}{more})"
        fixes = ("move it away, choose another output folder, or pass --overwrite"
                 if can_overwrite else "move it away or choose another output folder")
        raise OutputError(f"{self.path / found[0]}: exists and was not written by automl-asd "
                          f"into this folder{also}; the run would replace or mix with it: "
                          f"{fixes}")

    def stash_edited(self) -> dict[str, Path]:
        """Before a command that may write the run's own reports and recipe anew (``search
        --resume``): copy each one a user edited since the tool wrote it (:func:`editable`) to a
        hidden ``.<name>.edited-pending``; :meth:`settle_edited` keeps the copies of those the
        command then rewrote as ``<name>.edited`` and drops the others. Copies a killed command
        left are kept as ``<name>.edited`` now. Returns ``{name: pending copy}``."""
        for pending in sorted([*self.path.glob(f".*{_PENDING}"),  # an interrupted run's
                               *self.path.glob(f"loo/*/.*{_PENDING}")]):
            mine = pending.relative_to(self.path).with_name(pending.name[1:-len(_PENDING)])
            self._set_aside(mine.as_posix(), pending)
        stash = {}
        for rel in sorted(self.files):
            path = self.path / rel
            if editable(rel) and self._edited(rel):
                stash[rel] = path.with_name(f".{path.name}{_PENDING}")
                shutil.copy2(path, stash[rel])
        return stash

    def settle_edited(self, stash: Mapping[str, Path], rewritten: Iterable[str]) -> list[str]:
        """Keep the pending copies (:meth:`stash_edited`) of the files in ``rewritten`` as
        ``<name>.edited`` (``.edited-2``, …: files the folder does not own, never replaced),
        one warning each; drop the others (the edited file is still in place). Returns the
        copies kept."""
        done = set(rewritten)
        kept = []
        for rel, pending in stash.items():
            if rel in done:
                kept.append(self._set_aside(rel, pending))
            else:
                pending.unlink(missing_ok=True)
        return kept

    def _set_aside(self, rel: str, edited: Path) -> str:
        """Rename ``edited`` (the user's version of the run's own file ``rel``) to
        ``<rel>.edited`` (``.edited-2``, … where taken), with a warning; returns the new
        relative path."""
        copy = _free_edited_name(self.path / rel)
        edited.rename(copy)
        logger.warning("%s: edited since automl-asd wrote it; the edited version is kept as %s "
                       "(the run writes %s anew)", self.path / rel, copy.name, rel)
        return copy.relative_to(self.path).as_posix()

    def _edited(self, rel: str) -> bool:
        """Whether the run's own file ``rel`` is no longer what the tool wrote."""
        path, digest = self.path / rel, self.files.get(rel)
        return (digest is not None and path.is_file() and not path.is_symlink()
                and sha256_file(path) != digest)

    def remove_owned(self, keep_if_not: Callable[[str], bool]) -> list[str]:
        """Delete the run's own files whose relative path satisfies the predicate; foreign files
        are never touched, and a report or recipe a user edited since the tool wrote it is
        kept as ``<name>.edited``. Empty folders left behind are removed.
        Returns what was deleted."""
        # reports and recipes first, and the manifest saved however far it got: a removal
        # stopped part-way (found 2026-12-07: a bundle folder that could not be written, under
        # --overwrite) left results.md and metrics.json describing deleted outputs, and a
        # manifest listing them
        gone = sorted((rel for rel in self.files if keep_if_not(rel)),
                      key=lambda rel: (not (editable(rel) or matches(rel, REPORT_PATTERNS)),
                                       rel))
        for rel in gone:  # an edited report or recipe is renamed, not deleted
            if editable(rel) and self._edited(rel):
                self._set_aside(rel, self.path / rel)
        try:
            for rel in gone:
                path = self.path / rel
                if path.is_file() or path.is_symlink():
                    path.unlink()
                self.files.pop(rel, None)
                parent = path.parent
                while parent != self.path and parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
        finally:
            if gone:
                self.save()
        return gone

    def remove_matching(self, patterns: Sequence[str]) -> list[str]:
        """:meth:`remove_owned` of the files matching ``patterns``."""
        return self.remove_owned(lambda rel: matches(rel, patterns))

    def changed(self, patterns: Sequence[str]) -> str | None:
        """The first of the run's own files matching ``patterns`` that is missing or whose
        sha256 differs from the manifest (``None`` when all match)."""
        for rel, digest in sorted(self.files.items()):
            if not matches(rel, patterns):
                continue
            path = self.path / rel
            if not path.is_file():
                return f"{rel} is missing"
            if sha256_file(path) != digest:
                return f"{rel} changed"
        return None
