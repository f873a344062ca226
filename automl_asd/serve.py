"""Scoring new recordings outside ``apply``: the library behind ``automl-asd score``.

``collect_wavs`` names the wav files of file and folder arguments; ``check_out`` refuses an
output CSV that would destroy an input or the model; ``emit_rows`` writes score rows (stdout or a
CSV, atomically in batch mode); ``watch_folder`` scores wav files as they appear in a folder
(a file is taken once its size is unchanged between two polls), appending rows as it goes and
skipping malformed files; ``csv_lock`` keeps one watcher per CSV. The command module
(``automl_asd/commands/score.py``) only parses arguments, calls these and prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from automl_asd.audio import AudioError, header_unfinished
from automl_asd.components.files import atomic_write_text, naming_path
from automl_asd.data import SYNTH_MARKER
from automl_asd.io.results import sha256_file
from automl_asd.io.run_folder import FolderLock, OutputError, check_report_file
from automl_asd.io.score_csv import (
    SCORE_CSV_HEADER,
    append_score_rows,
    read_score_csv,
    write_score_rows,
)

if TYPE_CHECKING:
    from automl_asd.bundle.model import Bundle

__all__ = ["WatchStats", "bundle_identity", "check_out", "check_scored_by", "collect_wavs",
           "csv_lock", "emit_rows", "record_scored_by", "scored_by_path", "warn_other_machine_type",
           "watch_folder"]

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- inputs
def collect_wavs(paths: Sequence[Path]) -> list[tuple[str, Path]]:
    """``(name, path)`` per wav: a file argument keeps its base name, files found under a
    folder argument are named by their path relative to it. Duplicate names fall back to the
    full paths. Raises ``FileNotFoundError`` for a missing path or an empty folder."""
    found: list[tuple[str, Path]] = []
    for arg in paths:
        if arg.is_dir():
            wavs = sorted(p for p in arg.rglob("*") if p.is_file()
                          and p.suffix.lower() == ".wav" and not p.name.startswith("."))
            if not wavs:
                raise FileNotFoundError(f"{arg}: no .wav files in this folder")
            found.extend((p.relative_to(arg).as_posix(), p) for p in wavs)
        elif arg.is_file():
            found.append((arg.name, arg))
        else:
            raise FileNotFoundError(f"{arg}: no such file or folder")
    # one file given twice (as itself and in its folder, or through a link) is scored once
    # (found 2026-12-07: it was scored twice and every name became a full path)
    seen: dict[Path, str] = {}
    unique = []
    for name, path in found:
        real = path.resolve()
        if real in seen:
            logger.warning("%s: given more than once (as %s); scored once", path, seen[real])
            continue
        seen[real] = name
        unique.append((name, path))
    names = [n for n, _ in unique]
    if len(set(names)) != len(names):
        unique = [(str(p), p) for _, p in unique]
    return unique


def emit_rows(rows: Sequence[tuple[str, float, int]], out: Path | None, *,
              append: bool) -> None:
    """Write score rows ``(name, score, decision)``: to stdout (with the header unless
    ``append``) when ``out`` is ``None``; else appended to the CSV ``out`` (``append``) or
    written to a temporary file renamed over ``out`` (batch mode: all or nothing)."""
    if out is None:  # quoted as in the file: a clip name may hold a comma
        write_score_rows(sys.stdout, rows, header=not append)
        return
    # a full disk's failed write() names no file: the error names --out (found 2026-12-07)
    if append:
        with naming_path(out):
            append_score_rows(out, rows)
        return
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with naming_path(out):
            append_score_rows(tmp, rows)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _is_machine_folder(folder: Path) -> bool:
    """Whether ``folder`` is a machine type's folder of a DCASE data tree: ``train/`` and
    ``test/`` beside an ``attributes_*.csv`` or the generator's ``.synth.json``, or with
    DCASE-named clips (``section_XX_...wav``) in ``test/`` (not any project folder that
    happens to hold ``train/`` and ``test/``)."""
    if not ((folder / "train").is_dir() and (folder / "test").is_dir()):
        return False
    if any(folder.glob("attributes_*.csv")) or (folder / SYNTH_MARKER).is_file():
        return True
    return any(p.name.startswith("section_") for p in (folder / "test").glob("*.wav"))


#: the evaluator's ground-truth file of one machine type and section
_GROUND_TRUTH = re.compile(r"ground_truth_.+_section_\d{2}_test\.csv")


def warn_other_machine_type(folders: Sequence[Path], machine_type: str) -> None:
    """Warn when recordings lie in another machine type's DCASE folder
    (``<type>/{train,test,supplemental}/``) than the bundle's: ``folders`` hold them, one per
    recording (found 2026-12-07: the fan bundle scored pump/test without a word, calling 33 of
    40 clips anomalous)."""
    others: dict[str, int] = {}
    for given in folders:
        folder = given.resolve()
        if folder.name in ("train", "test", "supplemental") and \
                folder.parent.name != machine_type and _is_machine_folder(folder.parent):
            others[str(folder.parent)] = others.get(str(folder.parent), 0) + 1
    for where, n in sorted(others.items()):
        logger.warning("%d recording(s) are in %s, the folder of machine type %r, and are "
                       "scored with the %r bundle: is that the right model?", n, where,
                       Path(where).name, machine_type)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_out(out: Path, inputs: Sequence[Path], model: Path, *, watch: Path | None = None,
              overwrite: bool = False) -> None:
    """Refuse an ``--out`` that would destroy what the command reads or did not write: an
    input wav, the model (bundle folder, anything inside it, or its ``.tar``), a folder, a
    ``.wav`` name, or (unless ``overwrite``, batch mode) an existing file that is not a score
    CSV. Raises ``OutputError`` (one line naming the path)."""
    target = out.resolve()
    if out.is_dir():
        raise OutputError(f"--out {out}: is a folder; give the CSV file to write")
    for p in inputs:
        if _same(out, p) or target == p.resolve():
            raise OutputError(f"--out {out}: is one of the recordings to score; choose another "
                              "file for the scores")
    if out.suffix.lower() == ".wav":
        raise OutputError(f"--out {out}: a .wav name; give a .csv file (the scores would "
                          "replace a recording)")
    mroot = model.resolve()
    if _same(out, model) or target == mroot or (model.is_dir() and (
            target.is_relative_to(mroot) or any(_same(out, q) for q in model.rglob("*")))):
        raise OutputError(f"--out {out}: is the model bundle {model} or inside it; choose "
                          "another file for the scores")
    # never, even with --overwrite: a submission CSV's name, a file an automl-asd run wrote
    # (listed in its manifest) or a file of a DCASE machine folder (found 2026-12-07: all
    # three were replaced, e.g. attributes_00.csv of the data tree)
    check_report_file(out, "--out")
    if _GROUND_TRUTH.fullmatch(target.name):
        raise OutputError(f"--out {out}: a ground-truth file's name; choose another file")
    if _is_machine_folder(target.parent):
        raise OutputError(f"--out {out}: inside the machine folder {target.parent} of a data "
                          "tree; choose a file outside it")
    if watch is None and out.is_file() and not overwrite and out.stat().st_size > 0:
        with out.open("rb") as fh:
            first = fh.readline(4096).decode("utf-8-sig", "replace").strip()
        if first != ",".join(SCORE_CSV_HEADER):
            raise OutputError(f"--out {out}: exists and is not a score CSV written by "
                              "`automl-asd score`; choose another file or pass --overwrite")


# ----------------------------------------------------------------------------- scored by
def bundle_identity(bundle: Bundle) -> dict[str, str]:
    """What names the bundle that scored a CSV: its machine type and recipe, and a digest of
    what decides its scores (the recipe hash, the threshold and every file's checksum: the
    same training gives the same digest, whenever it was saved)."""
    manifest = bundle.manifest
    decisive = {k: manifest.get(k) for k in ("recipe_hash", "threshold", "files")}
    digest = hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode())
    return {"machine_type": bundle.machine_type, "recipe": bundle.recipe.name,
            "bundle_sha256": digest.hexdigest(), "model": str(bundle.path)}


def scored_by_path(out: Path) -> Path:
    """The hidden file beside a score CSV naming the bundle that scored its rows."""
    return out.with_name(f".{out.name}.bundle.json")


def check_scored_by(out: Path, bundle: Bundle, rows: int) -> None:
    """Before a watcher appends to ``out`` holding ``rows`` rows: refuse (``OutputError``)
    when another bundle scored them (found 2026-12-07: a watch with the pump bundle took the
    fan bundle's rows as its own and skipped those files); a CSV whose bundle is not recorded
    is named in a warning."""
    if rows == 0:
        return
    try:
        then = json.loads(scored_by_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        then = None
    now = bundle_identity(bundle)
    if not isinstance(then, dict) or "bundle_sha256" not in then:
        logger.warning("watch: %s holds %d row(s) from a run that did not record its bundle; "
                       "they are taken as scored by %s (%s) and those files are not scored "
                       "again (move the CSV away to score them anew)", out, rows,
                       now["model"], now["recipe"])
    elif then["bundle_sha256"] != now["bundle_sha256"]:
        raise OutputError(f"--out {out}: its {rows} row(s) were scored by another bundle "
                          f"({then.get('machine_type')}, {then.get('recipe')}, "
                          f"{then.get('model')}); this watch scores with "
                          f"{now['machine_type']} ({now['recipe']}, {now['model']}): choose "
                          "another --out, or move the CSV away to start it anew")


def record_scored_by(out: Path, bundle: Bundle) -> None:
    """Name ``bundle`` as the one that scored ``out``'s rows (:func:`scored_by_path`)."""
    atomic_write_text(scored_by_path(out), json.dumps(bundle_identity(bundle), indent=1) + "\n")


# ----------------------------------------------------------------------------- watch mode
@dataclass
class WatchStats:
    """What :func:`watch_folder` did."""

    scored: int = 0
    skipped: list[str] = field(default_factory=list)
    polls: int = 0
    seconds: float = 0.0
    reason: str = ""


def _list_wavs(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except FileNotFoundError:
        return []
    return [p for p in entries if p.suffix.lower() == ".wav" and not p.name.startswith(".")
            and p.is_file()]


#: polls a file whose wav header leaves its length unknown must hold still before it is scored
UNFINISHED_POLLS = 3


def _digest(path: Path) -> str:
    """sha256 of ``path``'s bytes ("" when it cannot be read: it vanished or is unreadable)."""
    try:
        return sha256_file(path)
    except OSError:
        return ""


def watch_folder(
    bundle: Bundle,
    folder: Path,
    out: Path | None,
    *,
    poll: float = 2.0,
    max_files: int | None = None,
    timeout: float | None = None,
    resample: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchStats:
    """Score wav files appearing in ``folder`` until Ctrl-C, ``max_files`` or ``timeout``
    seconds (its last poll falls on the deadline; give at least ``poll``: a file is scored
    once it holds still between two polls).

    A file is scored once its size and modification time are unchanged between two polls, its
    size is non-zero and its wav header declares its length (a writer that has not closed the
    file yet leaves it unknown; such a file is scored once it has held still for
    :data:`UNFINISHED_POLLS` polls); names already in ``out`` are skipped (a restarted watcher
    resumes). A scored file whose bytes change afterwards is not scored again: a WARNING
    names it (write recordings elsewhere and move them in, as a rename is atomic). Each poll's ready
    files are scored as one batch and their rows appended to ``out`` (or printed). A file
    that cannot be decoded or has the wrong format is logged and skipped; the watcher goes on,
    and tries it again only if its size or time stamp changes (or after a restart, since only
    scored rows are recorded).
    """
    if poll <= 0:
        raise ValueError(f"--poll {poll}: must be > 0 seconds")
    if not folder.is_dir():
        raise FileNotFoundError(f"--watch {folder}: no such folder")
    done = {name for name, _, _ in read_score_csv(out)} if out is not None else set()
    if out is not None:
        check_scored_by(out, bundle, len(done))
        record_scored_by(out, bundle)
    if done:
        logger.info("watch: %d file(s) already in %s are not scored again", len(done), out)
    if out is None:
        emit_rows([], None, append=False)  # header once
    stats = WatchStats()
    sizes: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) at the last poll
    still: dict[str, int] = {}  # name -> polls it has held still
    # name -> ((size, mtime_ns), sha256 of its bytes) when it was scored
    scored_as: dict[str, tuple[tuple[int, int], str]] = {}
    # skipped file -> (size, mtime_ns) when it was tried (retried if it changes)
    bad: dict[str, tuple[int, int]] = {}

    def skip(path: Path, sig: tuple[int, int]) -> None:
        """Count ``path`` as skipped (once, however often it is retried); retry it only once
        its size or time stamp differs from ``sig``, as it was when it was tried (found
        2026-12-07: a skipped stereo clip replaced by a mono one of the same size was never
        tried again, though the warning said it would be)."""
        if path.name not in stats.skipped:
            stats.skipped.append(path.name)
        done.discard(path.name)
        bad[path.name] = sig

    t0 = time.monotonic()
    logger.info("watching %s every %.3g s with bundle %s (Ctrl-C stops)", folder, poll,
                bundle.machine_type)
    warn_other_machine_type([folder], bundle.machine_type)
    gone = False  # the folder vanished (said once, and again when it is back)
    try:
        while True:
            stats.polls += 1
            if folder.is_dir() == gone:
                gone = not gone
                if gone:
                    logger.warning("watch: %s is gone; waiting for it to come back", folder)
                else:
                    logger.info("watch: %s is back", folder)
            ready: list[Path] = []
            for path in _list_wavs(folder):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                size, sig = st.st_size, (st.st_size, st.st_mtime_ns)
                if path.name in done:
                    then = scored_as.get(path.name)
                    if then is not None and then[0] != sig:
                        if _digest(path) != then[1]:
                            logger.warning("watch: %s changed after it was scored (was it "
                                           "still being written?); its row holds the earlier "
                                           "content: write recordings elsewhere and move "
                                           "them in", path.name)
                            del scored_as[path.name]
                        else:  # touched, same bytes
                            scored_as[path.name] = (sig, then[1])
                    continue
                if bad.get(path.name) == sig:
                    continue  # skipped before and unchanged since
                still[path.name] = still.get(path.name, 0) + 1 if sizes.get(path.name) == sig \
                    else 0
                # an unknown length in the header means a writer still has the file open,
                # unless the file holds still for UNFINISHED_POLLS polls (ffmpeg writing to a
                # pipe leaves such a header in a finished file)
                if size > 0 and still[path.name] >= 1 and (
                        still[path.name] >= UNFINISHED_POLLS or not header_unfinished(path)):
                    ready.append(path)
                elif size == 0 and still[path.name] >= UNFINISHED_POLLS:
                    # found 2026-12-07: an empty file was never scored, skipped or named
                    logger.warning("watch: skipping %s: an empty file (0 bytes) for %d polls; "
                                   "tried again if it changes", path.name, UNFINISHED_POLLS)
                    skip(path, sig)
                    continue
                sizes[path.name] = sig
            if max_files is not None:
                ready = ready[:max(0, max_files - stats.scored - len(stats.skipped))]
            good: list[Path] = []
            feats = []
            for path in ready:
                done.add(path.name)
                still.pop(path.name, None)
                scored_as[path.name] = (sizes.pop(path.name), _digest(path))  # ready: seen
                try:
                    feats.extend(bundle.features([path], resample=resample, workers=1))
                    good.append(path)
                except (AudioError, ValueError, OSError) as exc:
                    # tried again if it changes: a file still being copied is scored later
                    # (the summary then counts it scored, not skipped)
                    logger.warning("watch: skipping %s: %s (tried again if it changes)", path,
                                   exc)
                    skip(path, scored_as[path.name][0])
            if good:
                scores, decisions = bundle.score_features(feats)
                finite = np.isfinite(scores)
                for p, s in zip(good, scores, strict=True):
                    if not np.isfinite(s):
                        logger.error("watch: refusing %s: non-finite anomaly score (%r); its "
                                     "samples may be out of range (e.g. a float wav far beyond "
                                     "+-1) or the bundle is damaged; not written", p, float(s))
                        skip(p, scored_as[p.name][0])
                good = [p for p, ok in zip(good, finite, strict=True) if ok]
                scores, decisions = scores[finite], decisions[finite]
            if good:
                # a file skipped before (e.g. while being copied) and scored now is not skipped
                stats.skipped[:] = [n for n in stats.skipped if n not in {p.name for p in good}]
                rows = [(p.name, float(s), int(d))
                        for p, s, d in zip(good, scores, decisions, strict=True)]
                emit_rows(rows, out, append=True)
                stats.scored += len(rows)
                n_anom = int(np.sum(decisions))
                logger.info("watch: scored %d file(s) (%d anomalous)%s", len(rows), n_anom,
                            "".join(f"; ANOMALY {p.name}" for p, d in zip(good, decisions,
                                                                           strict=True) if d))
            if max_files is not None and stats.scored + len(stats.skipped) >= max_files:
                stats.reason = "max-files"
                break
            left = None if timeout is None else timeout - (time.monotonic() - t0)
            if left is not None and left <= 0:
                stats.reason = "timeout"
                break
            # the last poll falls on the deadline, not up to a whole poll after it
            sleep(poll if left is None else min(poll, left))
    except KeyboardInterrupt:
        stats.reason = "interrupted"
    stats.seconds = time.monotonic() - t0
    return stats


@contextlib.contextmanager
def csv_lock(out: Path | None, command: str = "score --watch") -> Iterator[None]:
    """Hold an advisory lock on a score CSV (one writer at a time: a watcher appending, or a
    batch run replacing it); a second writer fails at once naming the holder's command, pid
    and host. The lock file is ``.NAME.lock`` beside the CSV, removed when the command ends
    (found 2026-12-07: every run left one, also beside a CSV it never wrote)."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with FolderLock(out, f"{command} --out {out.name}",
                    lock_path=out.with_name(f".{out.name}.lock"), remove=True):
        yield
