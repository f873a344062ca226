"""What ``apply`` writes, what it may write, and when ``--resume`` may trust what it wrote.

Written by every machine job (:func:`automl_asd.apply.runners.apply_machine`):

* :func:`write_submission_atomic` stages a machine type's score/decision CSVs and moves them in;
* :func:`save_model_bundle` saves the fitted model as ``<out>/models/<mt>``;
* :func:`machine_summary` builds ``<mt>.summary.json`` (layout version :data:`SUMMARY_SCHEMA`).

Used by :func:`automl_asd.apply.apply_recipe` around its runner (see
:mod:`automl_asd.io.run_folder` for the manifest, lock and journal):

* :func:`open_apply_folder` locks ``--out`` and refuses a folder of another recipe;
* :func:`claim` refuses, before any work, foreign files among the names the run will write;
* :func:`clear_machine` removes a machine type's previous outputs — only the run's own files;
* :func:`resume_status` decides whether a machine type can be skipped on ``--resume``: same
  recipe hash, same data fingerprint (:func:`input_fingerprint`: every file's name, size and
  ``stat`` identity, or with ``--verify-audio`` a digest of its bytes), every file the run
  recorded for it unchanged (CSVs, summary, bundle manifest), and the bundle's sha256 manifest
  verified. Otherwise it says why, and the type is rerun. :func:`is_complete` is the
  storage-free check (recipe hash and CSV checksums only).

The data fingerprint a summary records is taken by the driver before it dispatches the type
(:class:`~automl_asd.apply.jobs.MachineJob`), and ``--resume`` compares it with the driver's
view now: on a cluster whose nodes hold their own copies of the data (other inodes), both sides
of the comparison are the same node's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl_asd._version import __version__
from automl_asd.apply.jobs import MachineOutcome
from automl_asd.bundle.files import read_bundle_files, save_bundle
from automl_asd.bundle.format import BundleError, verify_bundle_files
from automl_asd.data import DataError, MachineData, find_machine_dirs
from automl_asd.environment import verify_audio_default
from automl_asd.io.results import read_machine_summary, sha256_file
from automl_asd.io.run_folder import (
    JOURNAL_PREFIX,
    REPORT_PATTERNS,
    RunFolder,
    data_fingerprint,
    journal,
    machine_patterns,
    plot_patterns,
)
from automl_asd.io.submission import write_submission
from automl_asd.pipeline import MachineResult
from automl_asd.recipe import Recipe, official_baseline_name

__all__ = ["SUMMARY_SCHEMA", "write_submission_atomic", "save_model_bundle", "machine_summary",
           "is_complete", "open_apply_folder", "claim", "clear_machine", "resume_status",
           "resumable", "record_outcome", "require_test_clips", "machine_dir",
           "input_fingerprint", "SHARED_PATTERNS", "storage_patterns"]

logger = logging.getLogger(__name__)

#: The shared stage of ``scope: all`` recipes.
SHARED_PATTERNS = ("shared/shared.json", "shared/members/*")


def storage_patterns(machine_types: Sequence[str], *, shared: bool) -> tuple[str, ...]:
    """What ``apply --storage`` may copy back from the run storage into ``--out`` for
    ``machine_types``: each type's outputs and journal (plus the shared stage folder when
    ``shared``). Nothing of other machine types, nothing else."""
    per_type = [p for mt in machine_types
                for p in (*machine_patterns(mt), f"{JOURNAL_PREFIX}{mt}")]
    return (*per_type, *(("shared/*",) if shared else ()))


#: Version of the per-machine summary JSON layout.
SUMMARY_SCHEMA = 1


# ------------------------------------------------------------------ one machine type's outputs
def _group_by_section(
    names: Sequence[str], sections: Sequence[str]
) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, sec in enumerate(sections):
        groups.setdefault(str(sec), []).append(i)
    # Submission rows sorted by file name, as the official evaluator sorts them anyway.
    return {sec: sorted(idx, key=lambda i: names[i]) for sec, idx in sorted(groups.items())}


def write_submission_atomic(
    out_dir: Path, machine_type: str, result: MachineResult
) -> dict[str, str]:
    """Write every section's score/decision CSV into a staging folder, then move them in.

    Returns ``{file name: sha256}``. A crash leaves either the old file or the new one.
    """
    names = [str(n) for n in result.names]
    sections = [str(s) for s in result.sections]
    scores = np.asarray(result.scores, dtype=np.float64)
    decisions = np.asarray(result.decisions).astype(np.int64)
    if not (len(names) == len(sections) == len(scores) == len(decisions)):
        raise ValueError(
            f"{machine_type}: run_machine returned {len(names)} names, {len(sections)} sections,"
            f" {len(scores)} scores and {len(decisions)} decisions; they must match"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{machine_type}-", dir=out_dir))
    try:
        written: list[Path] = []
        for sec, idx in _group_by_section(names, sections).items():
            paths = write_submission(
                staging,
                machine_type,
                sec,
                [names[i] for i in idx],
                scores[idx],
                decisions[idx],
            )
            written.extend(Path(p) for p in paths)
        files: dict[str, str] = {}
        journal(out_dir, machine_type, [p.name for p in written])
        for path in written:
            files[path.name] = sha256_file(path)
            path.replace(out_dir / path.name)
        return files
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_model_bundle(out_dir: Path, machine_type: str, result: MachineResult,
                      overwrite: bool = False) -> str | None:
    """Save ``result.fitted`` (if the run kept it) as ``<out>/models/<mt>``; returns that
    path relative to ``out_dir`` (``None`` when there is no fitted model, e.g. a test stand-in).
    """
    if result.fitted is None:
        return None
    rel = f"models/{machine_type}"
    save_bundle(result.fitted, out_dir / rel, replace_foreign=overwrite,
                before_write=lambda names: journal(out_dir, machine_type,
                                                   [f"{rel}/{n}" for n in names]))
    return rel


def _plain_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): (float(v) if isinstance(v, np.floating) else
                     int(v) if isinstance(v, np.integer) else v) for k, v in value.items()}


def machine_summary(
    recipe: Recipe,
    machine: MachineData,
    result: MachineResult,
    *,
    data_root: Path,
    files: Mapping[str, str],
    bundle: str | None,
    started: str,
    where: Mapping[str, Any] | None = None,
    fingerprint: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The content of ``<mt>.summary.json`` (without ``seconds``, which the caller adds last):
    recipe hash, timings, counts, file hashes, bundle path, ``where`` the job ran (Ray node
    id, host, pid; this process when ``None``) and the data ``fingerprint`` the driver took
    (:func:`input_fingerprint`; taken here, after the run, when ``None``)."""
    return {
        "summary_schema": SUMMARY_SCHEMA,
        "machine_type": machine.machine_type,
        "recipe_name": recipe.name,
        "recipe_hash": recipe.content_hash(),
        "official_baseline": official_baseline_name(recipe),
        "package_version": __version__,
        "data_root": str(data_root.resolve()),
        **(fingerprint if fingerprint is not None else input_fingerprint(machine.root)),
        "sections": sorted({str(s) for s in result.sections}),
        "files": dict(files),
        "bundle": bundle,
        "threshold": float(result.threshold),
        "counts": _plain_mapping(result.counts),
        "timings": _plain_mapping(result.timings),
        "device": str(result.device),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "node_id": None,
        **(dict(where) if where is not None else {}),
        "started": started,
    }


def is_complete(out_dir: Path, machine_type: str, recipe_hash: str) -> dict[str, Any] | None:
    """The summary of ``machine_type`` when its outputs match ``recipe_hash`` and every listed
    CSV exists with the recorded sha256; otherwise ``None`` (the machine type must be rerun)."""
    summary = read_machine_summary(out_dir, machine_type)
    if summary is None or summary.get("recipe_hash") != recipe_hash:
        return None
    files = summary.get("files")
    if not isinstance(files, dict) or not files:
        return None
    for name, digest in files.items():
        path = Path(out_dir) / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return summary


# ------------------------------------------------------------------ the run folder and resume


def open_apply_folder(out: Path, rec: Recipe, *, overwrite: bool = False) -> RunFolder:
    """Create and lock ``out`` for an apply of ``rec`` (see :meth:`RunFolder.open`)."""
    return RunFolder.open(out, command="apply", recipe_hash=rec.content_hash(),
                          recipe_name=rec.name, overwrite=overwrite,
                          behaviour_hash=rec.behaviour_hash())


_SECTION = re.compile(r"^section_(\d+)_")


def test_sections(data_root: Path, machine_type: str) -> list[str]:
    """Section ids of ``machine_type``'s test clip names (``[]`` when none can be read; the
    task then reports the problem itself)."""
    directory = machine_dir(data_root, machine_type)
    folder = None if directory is None else directory / "test"
    if folder is None or not folder.is_dir():
        return []
    found = {m.group(1) for p in folder.iterdir()
             if p.suffix.lower() == ".wav" and (m := _SECTION.match(p.name))}
    return sorted(found)


def claim(folder: RunFolder, data_root: Path, machine_types: Sequence[str], *, shared: bool,
          report: bool, plots_of: Sequence[str] = ()) -> None:
    """Refuse foreign files among the names the run will write for ``machine_types`` (their
    test sections' CSVs and plots, summary, error report, bundle folder; plus the shared stage
    and the report files when asked) and the plots of ``plots_of`` (resumed types, whose plots
    the report draws again), unless the folder allows overwriting. Foreign files under other
    names (e.g. another section's CSV) are kept and not refused."""
    patterns: list[str] = []
    for mt in machine_types:
        patterns.extend(machine_patterns(mt, test_sections(data_root, mt) or None))
    for mt in plots_of:
        patterns.extend(plot_patterns(mt))
    if shared:
        patterns.extend(SHARED_PATTERNS)
    if report:
        patterns.extend(REPORT_PATTERNS)
    if patterns:
        folder.check_free(patterns)


def clear_machine(folder: RunFolder, machine_type: str) -> None:
    """Delete the run's own previous outputs of ``machine_type`` (never foreign files), so a
    failure cannot leave a stale result that looks current."""
    folder.remove_matching(machine_patterns(machine_type))


def input_fingerprint(directory: Path) -> dict[str, str]:
    """What a summary records of a machine type's input files (its data folder ``directory``)
    and ``--resume`` compares: ``{"data_fingerprint": ..., "data_identity": "stat" |
    "content"}`` (:func:`~automl_asd.io.run_folder.data_fingerprint`; by content under
    ``--verify-audio``, i.e. ``$AUTOML_ASD_VERIFY_AUDIO``)."""
    content = verify_audio_default()
    return {"data_fingerprint": data_fingerprint(directory, content=content),
            "data_identity": "content" if content else "stat"}


def machine_dir(data_root: Path, machine_type: str) -> Path | None:
    """The data folder of ``machine_type`` under ``data_root`` (``None`` if not found)."""
    try:
        return find_machine_dirs(data_root).get(machine_type)
    except DataError:
        return None


def _bundle_problem(out: Path, rel: str, recipe_hash: str) -> str | None:
    try:
        manifest = verify_bundle_files(read_bundle_files(out / rel), out / rel)
    except BundleError as exc:
        return str(exc)
    if manifest.get("recipe_hash") != recipe_hash:
        return f"made by recipe {str(manifest.get('recipe_hash'))[:12]}"
    return None


def resume_status(folder: RunFolder, data_root: Path, machine_type: str,
                  recipe_hash: str, now: Mapping[str, str] | None = None,
                  ) -> tuple[dict[str, Any] | None, str | None]:
    """``(summary, None)`` when ``machine_type``'s outputs can be kept on ``--resume``;
    ``(None, reason)`` when it must be rerun (``reason`` is ``None`` when it never ran).
    ``now``: the type's :func:`input_fingerprint` if the caller took it already."""
    out = folder.path
    summary = read_machine_summary(out, machine_type)
    if summary is None:
        return None, None
    if summary.get("recipe_hash") != recipe_hash:
        return None, f"outputs are from recipe {str(summary.get('recipe_hash'))[:12]}"
    directory = machine_dir(data_root, machine_type)
    if directory is None:
        return None, f"no data folder under {data_root}"
    if now is None:
        now = input_fingerprint(directory)
    recorded = summary.get("data_identity")
    if recorded is None or summary.get("data_fingerprint") is None:
        return None, "the run recorded its data fingerprint in an older form"
    if recorded != now["data_identity"]:
        return None, (f"the run identified its clips by {recorded}, this one by "
                      f"{now['data_identity']} (--verify-audio)")
    if summary["data_fingerprint"] != now["data_fingerprint"]:
        return None, (f"the files under {directory} differ from the run's (names, sizes or "
                      "contents)")
    files = summary.get("files")
    if not isinstance(files, dict) or not files:
        return None, "the run wrote no submission CSVs"
    for name, digest in files.items():
        path = out / name
        if not path.is_file() or sha256_file(path) != digest:
            return None, f"{name} changed since the run"
    problem = folder.changed(machine_patterns(machine_type))
    if problem is not None:
        return None, f"{problem} since the run"
    bundle = summary.get("bundle")
    if bundle is not None:
        trouble = _bundle_problem(out, str(bundle), recipe_hash)
        if trouble is not None:
            return None, f"bundle {bundle} changed since the run ({trouble})"
    return summary, None


def resumable(folder: RunFolder, data_root: Path, machine_types: Sequence[str],
              recipe_hash: str, fingerprints: Mapping[str, Mapping[str, str]] | None = None,
              ) -> dict[str, dict[str, Any]]:
    """``{machine type: summary}`` of the types ``--resume`` may skip; every other type that
    ran before is logged with the reason it is rerun. ``fingerprints``: the types'
    :func:`input_fingerprint` the caller took already (each is taken once per run)."""
    keep: dict[str, dict[str, Any]] = {}
    for mt in machine_types:
        summary, reason = resume_status(folder, data_root, mt, recipe_hash,
                                        (fingerprints or {}).get(mt))
        if summary is not None:
            keep[mt] = summary
        elif reason is not None:
            logger.warning("%s: %s; rerunning", mt, reason)
    return keep


def record_outcome(folder: RunFolder, outcome: MachineOutcome) -> None:
    """Fold the journal of a finished task into the run manifest."""
    folder.adopt_journals([outcome.machine_type])


def require_test_clips(machine: MachineData) -> None:
    """Raise ``DataError`` naming ``<mt>/test`` when a machine type has no test clips: there
    is nothing to score, and a run without submission files must not look successful."""
    if machine.test:
        return
    folder = Path(machine.root) / "test"
    what = "no such folder" if not folder.is_dir() else "no test clips (*.wav)"
    raise DataError(f"{folder}: {what}; machine type {machine.machine_type!r} has nothing to "
                    "score; extract its test zip there or leave it out (--machine-types)")
