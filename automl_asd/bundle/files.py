"""Write model bundles (the layout is described in :mod:`automl_asd.bundle`) and score CSVs.

:func:`save_bundle` writes every file into a temporary sibling folder and renames it into
place, so a reader sees either the previous bundle or the complete new one, never a half
written one. Nothing is pickled: arrays go through ``np.save(..., allow_pickle=False)``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    MANIFEST,
    RECIPE_FILE,
    BundleError,
    npy_from_bytes,
    sha256_bytes,
    torch_version,
)

if TYPE_CHECKING:
    from automl_asd.pipeline import FittedMachine

__all__ = ["save_bundle", "bundle_files", "write_bundle_tar", "SCORE_CSV_HEADER",
           "append_score_rows", "read_score_csv", "save_shared", "load_shared"]

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Header of the CSV written by ``automl-asd score``.
SCORE_CSV_HEADER = ("name", "score", "decision")


def _npy(arr: NDArray[Any], what: str) -> bytes:
    a = np.asarray(arr)
    if a.dtype.hasobject:
        raise TypeError(f"{what}: object arrays cannot be saved without pickle; the detector's "
                        "get_state() must return plain numeric/bool/str arrays")
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8")


def bundle_files(fitted: FittedMachine) -> dict[str, bytes]:
    """The bundle of a fitted machine as ``{relative path: bytes}`` (manifest included).

    Raises ``TypeError`` when a detector's state holds an object array (it would need pickle).
    """
    from automl_asd import __version__

    recipe = fitted.recipe
    files: dict[str, bytes] = {RECIPE_FILE: recipe.to_json().encode("utf-8")}
    members: list[dict[str, Any]] = []
    for i, det in enumerate(fitted.members):
        arrays: dict[str, str] = {}
        for j, (key, value) in enumerate(det.get_state().items()):
            rel = f"members/{i:03d}/{j:03d}-{_SAFE.sub('_', key)[:80]}.npy"
            files[rel] = _npy(value, f"{recipe.detector.name} member {i} state {key!r}")
            arrays[key] = rel
        members.append({"index": i, "seed": int(det.seed), "arrays": arrays})
    stats = np.asarray([[s.mean, s.std] for s in fitted.member_stats], dtype=np.float64)
    norm = fitted.normalizer
    scoring: dict[str, Any] = {
        "member_stats": "scoring/member_stats.npy",
        "threshold": "scoring/threshold.npy",
        "normalizer_global": "scoring/normalizer_global.npy",
        "normalizer_domains": {d: f"scoring/normalizer_{d}.npy" for d in sorted(norm.domain_stats)},
    }
    files["scoring/member_stats.npy"] = _npy(stats, "member_stats")
    files["scoring/threshold.npy"] = _npy(np.asarray(fitted.threshold, np.float64), "threshold")
    files["scoring/normalizer_global.npy"] = _npy(
        np.asarray([norm.global_stats.mean, norm.global_stats.std], np.float64), "normalizer")
    for d, st in sorted(norm.domain_stats.items()):
        files[f"scoring/normalizer_{d}.npy"] = _npy(
            np.asarray([st.mean, st.std], np.float64), f"normalizer {d}")
    if norm.method == "domain_log_zscore":
        scoring["normalizer_log_floor"] = "scoring/normalizer_log_floor.npy"
        files["scoring/normalizer_log_floor.npy"] = _npy(
            np.asarray([norm.log_floor, norm.log_shift], np.float64), "normalizer log floor")
    counts = {str(k): int(v) for k, v in fitted.counts.items()}
    manifest = {
        "format": BUNDLE_FORMAT,
        "bundle_version": BUNDLE_VERSION,
        "package_version": __version__,
        "torch_version": torch_version(),
        "numpy_version": np.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine_type": fitted.machine_type,
        "recipe_name": recipe.name,
        "recipe_hash": recipe.content_hash(),
        "detector": recipe.detector.name,
        "seed": int(fitted.seed),
        "feature_spec": recipe.features.to_dict(),
        "training_clips": counts.get("train_used", 0),
        "counts": counts,
        "threshold": float(fitted.threshold),
        "normalization": norm.method,
        "trained_on": fitted.device,
        "members": members,
        "scoring": scoring,
        "files": {name: sha256_bytes(data) for name, data in sorted(files.items())},
    }
    files[MANIFEST] = _json(manifest)
    return files


def _write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_bundle_tar(files: Mapping[str, bytes], path: Path) -> Path:
    """Write bundle files into one uncompressed ``.tar`` (flat, no top folder), atomically."""
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        with tarfile.open(tmp, "w") as tar:
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


def _foreign_files(folder: Path, manifest_name: str) -> list[str]:
    """Files inside an existing ``folder`` that its manifest does not list (not ours)."""
    if not folder.exists():
        return []
    if not folder.is_dir() or folder.is_symlink():
        return [folder.name]
    listed = _listed_files(folder, manifest_name)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if not p.is_dir() and p.relative_to(folder).as_posix() not in listed)


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
    from automl_asd.io.run_folder import OutputError

    out = Path(out_dir)
    files = bundle_files(fitted)
    foreign = _foreign_files(out, MANIFEST)
    if foreign and not replace_foreign:
        raise OutputError(f"{out / foreign[0]}: not part of the model bundle saved there "
                          f"({len(foreign)} such file(s)); saving the bundle replaces the whole "
                          "folder: move the file away or choose another folder (apply: "
                          "--overwrite)")
    if before_write is not None:
        before_write(sorted(files))
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.with_name(f".tmp-{out.name}-{tag}")
    old = out.with_name(f".old-{out.name}-{tag}")
    try:
        _write_tree(tmp, files)
        if out.exists():
            os.replace(out, old)  # rename (not delete) first: a crash keeps a bundle on disk
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    if archive:
        write_bundle_tar(files, out.with_name(out.name + ".tar"))
    logger.info("saved bundle %s (%s, %d files, %.1f KiB)", out, fitted.machine_type,
                len(files), sum(len(v) for v in files.values()) / 1024)
    return out


# ----------------------------------------------------------------------------- shared stage
SHARED_MANIFEST = "shared.json"


def save_shared(out_dir: str | Path, states: list[dict[str, NDArray[Any]]], *,
                recipe_hash: str, machine_types: list[str],
                extra: Mapping[str, bytes] | None = None) -> Path:
    """Save the shared-stage states of a run (``pipeline.fit_shared``) as ``.npy`` files plus
    ``shared.json`` (recipe hash, machine types, sha256 per file), atomically. ``extra``
    (``{name: bytes}``, e.g. the stage's ``summary.json``) is saved and listed with them.

    Files already in ``out_dir`` that the previous ``shared.json`` does not list (not ours)
    are kept: they move into the new folder (``load_shared`` reads listed files only); one
    whose name collides with a new file is refused with ``OutputError``."""
    from automl_asd.io.run_folder import OutputError

    out = Path(out_dir)
    files: dict[str, bytes] = {}
    members = []
    for i, state in enumerate(states):
        arrays = {}
        for j, (key, value) in enumerate(state.items()):
            rel = f"members/{i:03d}/{j:03d}-{_SAFE.sub('_', key)[:80]}.npy"
            files[rel] = _npy(value, f"shared member {i} state {key!r}")
            arrays[key] = rel
        members.append({"index": i, "arrays": arrays})
    for name, data in dict(extra or {}).items():
        if name == SHARED_MANIFEST or name in files or ".." in Path(name).parts:
            raise ValueError(f"save_shared: extra file name {name!r} is reserved or unsafe")
        files[name] = data
    from automl_asd import __version__

    files[SHARED_MANIFEST] = _json({
        "format": "automl-asd-shared", "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe_hash": recipe_hash, "machine_types": sorted(machine_types),
        "members": members,
        "files": {name: sha256_bytes(data) for name, data in sorted(files.items())},
    })
    foreign = _foreign_files(out, SHARED_MANIFEST)
    clash = sorted(set(foreign) & set(files))
    if clash or (foreign and not out.is_dir()):
        raise OutputError(f"{out / (clash or foreign)[0]}: exists and is not part of the shared "
                          "stage saved there; move it away or choose another output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.with_name(f".tmp-{out.name}-{tag}")
    old = out.with_name(f".old-{out.name}-{tag}")
    try:
        _write_tree(tmp, files)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # holds only new files until the swap
    if old.exists():
        for rel in foreign:  # keep what the stage did not write (an error leaves them in old)
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(old / rel, out / rel)
        shutil.rmtree(old)
    logger.info("saved shared stage %s (%d member(s), %.1f KiB)", out, len(states),
                sum(len(v) for v in files.values()) / 1024)
    return out


def load_shared(path: str | Path, *, recipe_hash: str,
                machine_types: list[str] | None = None) -> list[dict[str, NDArray[Any]]]:
    """Load states saved by :func:`save_shared`; ``BundleError`` when the folder is damaged,
    was made by another recipe, or (when given) for other machine types."""
    root = Path(path)
    man_path = root / SHARED_MANIFEST
    try:
        manifest = json.loads(man_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{man_path}: missing; the shared stage did not finish") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{man_path}: unreadable ({exc})") from None
    if manifest.get("recipe_hash") != recipe_hash:
        raise BundleError(f"{root}: shared stage of recipe {str(manifest.get('recipe_hash'))[:12]}"
                          f", not {recipe_hash[:12]}")
    if machine_types is not None and manifest.get("machine_types") != sorted(machine_types):
        raise BundleError(f"{root}: shared stage trained on {manifest.get('machine_types')}, "
                          f"this run has {sorted(machine_types)}")
    files: dict[str, bytes] = {}
    for name, digest in dict(manifest.get("files", {})).items():
        rel = Path(str(name))
        if rel.is_absolute() or ".." in rel.parts:
            raise BundleError(f"{man_path}: bad file name {name!r}")
        try:
            data = (root / rel).read_bytes()
        except OSError:
            raise BundleError(f"{root / rel}: missing; the shared stage is incomplete") from None
        if sha256_bytes(data) != digest:
            raise BundleError(f"{root / rel}: sha256 does not match {SHARED_MANIFEST}")
        files[str(name)] = data
    states = []
    for doc in manifest.get("members", []):
        states.append({str(k): npy_from_bytes(files[str(f)], root / str(f))
                       for k, f in dict(doc["arrays"]).items()})
    if not states:
        raise BundleError(f"{man_path}: no members")
    return states


# ----------------------------------------------------------------------------- score CSVs
def append_score_rows(path: str | Path, rows: Iterable[tuple[str, float, int]]) -> int:
    """Append ``name,score,decision`` rows to ``path`` (header written when the file is new
    or empty), flushed to disk; returns the number of rows. Scores use Python's shortest
    round-trip float form, so reading them back gives the identical float64."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    new = not p.exists() or p.stat().st_size == 0
    n = 0
    with p.open("a", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if new:
            writer.writerow(SCORE_CSV_HEADER)
        for name, score, decision in rows:
            writer.writerow((name, repr(float(score)), int(decision)))
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def read_score_csv(path: str | Path) -> list[tuple[str, float, int]]:
    """Rows of a score CSV written by :func:`append_score_rows` (``[]`` if it does not exist)."""
    p = Path(path)
    if not p.exists():
        return []
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return []
        if tuple(header) != SCORE_CSV_HEADER:
            raise ValueError(f"{p}: header {header} is not {list(SCORE_CSV_HEADER)}; not a "
                             "score CSV written by `automl-asd score`; pick another --out")
        return [(r[0], float(r[1]), int(r[2])) for r in reader if r]
