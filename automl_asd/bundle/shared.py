"""The shared stage's saved states (``<out>/shared/``): one network state per ensemble member
learned over all machine types of a run (``pipeline.fit_shared``), loaded by every machine
type's job. Same codecs and atomic folder swap as the model bundle; ``shared.json`` lists the
recipe hash, the machine types and the sha256 of every file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from automl_asd._version import __version__
from automl_asd.bundle.files import foreign_files, swap_folder
from automl_asd.bundle.format import (
    BundleError,
    json_bytes,
    npy_bytes,
    npy_from_bytes,
    sha256_bytes,
    state_file_name,
)
from automl_asd.io.run_folder import OutputError

__all__ = ["SHARED_MANIFEST", "save_shared", "load_shared"]

logger = logging.getLogger(__name__)

SHARED_MANIFEST = "shared.json"


def save_shared(out_dir: str | Path, states: list[dict[str, NDArray[Any]]], *,
                recipe_hash: str, machine_types: list[str],
                fingerprints: Mapping[str, Any] | None = None,
                extra: Mapping[str, bytes] | None = None) -> Path:
    """Save the shared-stage states of a run (``pipeline.fit_shared``) as ``.npy`` files plus
    ``shared.json`` (recipe hash, machine types, sha256 per file, and ``fingerprints``: each
    machine type's input fingerprint as the run saw it), atomically. ``extra``
    (``{name: bytes}``, e.g. the stage's ``summary.json``) is saved and listed with them.

    Files already in ``out_dir`` that the previous ``shared.json`` does not list (not ours)
    are kept: they move into the new folder (``load_shared`` reads listed files only); one
    whose name collides with a new file is refused with ``OutputError``."""
    out = Path(out_dir)
    files: dict[str, bytes] = {}
    members = []
    for i, state in enumerate(states):
        arrays = {}
        for j, (key, value) in enumerate(state.items()):
            rel = state_file_name(i, j, key)
            files[rel] = npy_bytes(value, f"shared member {i} state {key!r}")
            arrays[key] = rel
        members.append({"index": i, "arrays": arrays})
    for name, data in dict(extra or {}).items():
        if name == SHARED_MANIFEST or name in files or ".." in Path(name).parts:
            raise ValueError(f"save_shared: extra file name {name!r} is reserved or unsafe")
        files[name] = data
    files[SHARED_MANIFEST] = json_bytes({
        "format": "automl-asd-shared", "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe_hash": recipe_hash, "machine_types": sorted(machine_types),
        **({} if fingerprints is None else
           {"data_fingerprints": {k: fingerprints[k] for k in sorted(fingerprints)}}),
        "members": members,
        "files": {name: sha256_bytes(data) for name, data in sorted(files.items())},
    })
    foreign = foreign_files(out, SHARED_MANIFEST)
    clash = sorted(set(foreign) & set(files))
    if clash or (foreign and not out.is_dir()):
        raise OutputError(f"{out / (clash or foreign)[0]}: exists and is not part of the shared "
                          "stage saved there; move it away or choose another output folder")
    old = swap_folder(files, out)
    if old is not None:
        for rel in foreign:  # keep what the stage did not write (an error leaves them in old)
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(old / rel, out / rel)
        shutil.rmtree(old)
    logger.info("saved shared stage %s (%d member(s), %.1f KiB)", out, len(states),
                sum(len(v) for v in files.values()) / 1024)
    return out


def load_shared(path: str | Path, *, recipe_hash: str,
                machine_types: list[str] | None = None,
                fingerprints: Mapping[str, Any] | None = None
                ) -> list[dict[str, NDArray[Any]]]:
    """Load states saved by :func:`save_shared`; ``BundleError`` when the folder is damaged,
    was made by another recipe, or (when given) for other machine types or from data with
    other ``fingerprints`` (a stage saved without them never matches given ones)."""
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
    if fingerprints is not None:
        stored = manifest.get("data_fingerprints")
        if not isinstance(stored, dict):
            raise BundleError(f"{root}: shared stage saved without the fingerprints of its "
                              "data, so it cannot be shown to match this data")
        changed = sorted(k for k in set(stored) | set(fingerprints)
                         if stored.get(k) != fingerprints.get(k))
        if changed:
            raise BundleError(f"{root}: shared stage trained on other data for "
                              f"{', '.join(changed)} (the files differ)")
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

