"""What ``apply`` may write, and when ``--resume`` may trust what it wrote before.

Used by :func:`automl_asd.apply.apply_recipe` around its runner (see
:mod:`automl_asd.io.run_folder` for the manifest, lock and journal):

* :func:`open_apply_folder` locks ``--out`` and refuses a folder of another recipe;
* :func:`claim` refuses, before any work, foreign files among the names the run will write;
* :func:`clear_machine` removes a machine type's previous outputs — only the run's own files;
* :func:`resume_status` decides whether a machine type can be skipped on ``--resume``: same
  recipe hash, same data fingerprint (clip names, sizes, mtimes), every file the run recorded
  for it unchanged (CSVs, summary, bundle manifest), and the bundle's sha256 manifest verified.
  Otherwise it says why, and the type is rerun.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_asd.io.results import read_machine_summary, sha256_file
from automl_asd.io.run_folder import (
    REPORT_PATTERNS,
    RunFolder,
    data_fingerprint,
    machine_patterns,
)

if TYPE_CHECKING:
    from automl_asd.recipe import Recipe

__all__ = ["open_apply_folder", "claim", "clear_machine", "resume_status", "machine_dir",
           "SHARED_PATTERNS"]

logger = logging.getLogger(__name__)

#: The shared stage of ``scope: all`` recipes.
SHARED_PATTERNS = ("shared/shared.json", "shared/members/*")


def open_apply_folder(out: Path, rec: Recipe, *, overwrite: bool = False) -> RunFolder:
    """Create and lock ``out`` for an apply of ``rec`` (see :meth:`RunFolder.open`)."""
    return RunFolder.open(out, command="apply", recipe_hash=rec.content_hash(),
                          recipe_name=rec.name, overwrite=overwrite)


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
          report: bool) -> None:
    """Refuse foreign files among the names the run will write for ``machine_types`` (their
    test sections' CSVs and plots, summary, error report, bundle folder; plus the shared stage
    and the report files when asked), unless the folder allows overwriting. Foreign files
    under other names (e.g. another section's CSV) are kept and not refused."""
    patterns: list[str] = []
    for mt in machine_types:
        patterns.extend(machine_patterns(mt, test_sections(data_root, mt) or None))
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


def machine_dir(data_root: Path, machine_type: str) -> Path | None:
    """The data folder of ``machine_type`` under ``data_root`` (``None`` if not found)."""
    from automl_asd.data import DataError, find_machine_dirs

    try:
        return find_machine_dirs(data_root).get(machine_type)
    except DataError:
        return None


def _bundle_problem(out: Path, rel: str, recipe_hash: str) -> str | None:
    from automl_asd.bundle import BundleError, read_bundle_files, verify_bundle_files

    try:
        manifest = verify_bundle_files(read_bundle_files(out / rel), out / rel)
    except BundleError as exc:
        return str(exc)
    if manifest.get("recipe_hash") != recipe_hash:
        return f"made by recipe {str(manifest.get('recipe_hash'))[:12]}"
    return None


def resume_status(folder: RunFolder, data_root: Path, machine_type: str,
                  recipe_hash: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(summary, None)`` when ``machine_type``'s outputs can be kept on ``--resume``;
    ``(None, reason)`` when it must be rerun (``reason`` is ``None`` when it never ran)."""
    out = folder.path
    summary = read_machine_summary(out, machine_type)
    if summary is None:
        return None, None
    if summary.get("recipe_hash") != recipe_hash:
        return None, f"outputs are from recipe {str(summary.get('recipe_hash'))[:12]}"
    directory = machine_dir(data_root, machine_type)
    if directory is None:
        return None, f"no data folder under {data_root}"
    recorded = summary.get("data_fingerprint")
    if recorded is None:
        return None, "the run recorded no data fingerprint"
    if recorded != data_fingerprint(directory):
        return None, (f"the clips under {directory} differ from the run's (names, sizes or "
                      "modification times)")
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
              recipe_hash: str) -> dict[str, dict[str, Any]]:
    """``{machine type: summary}`` of the types ``--resume`` may skip; every other type that
    ran before is logged with the reason it is rerun."""
    keep: dict[str, dict[str, Any]] = {}
    for mt in machine_types:
        summary, reason = resume_status(folder, data_root, mt, recipe_hash)
        if summary is not None:
            keep[mt] = summary
        elif reason is not None:
            logger.warning("%s: %s; rerunning", mt, reason)
    return keep


def record_outcome(folder: RunFolder, outcome: Any) -> None:
    """Fold the journal of a finished task (``MachineOutcome``) into the run manifest."""
    folder.adopt_journals([str(outcome.machine_type)])


def require_test_clips(machine: Any) -> None:
    """Raise ``DataError`` naming ``<mt>/test`` when a machine type has no test clips: there
    is nothing to score, and a run without submission files must not look successful."""
    from automl_asd.data import DataError

    if machine.test:
        return
    folder = Path(machine.root) / "test"
    what = "no such folder" if not folder.is_dir() else "no test clips (*.wav)"
    raise DataError(f"{folder}: {what}; machine type {machine.machine_type!r} has nothing to "
                    "score; extract its test zip there or leave it out (--machine-types)")
