"""A fitted machine <-> the bundle's files (``{relative path: bytes}``).

Every component gives and takes its own state as named plain arrays: detectors through
``get_state``/``set_state``, the member score statistics and the domain normaliser through
:meth:`~automl_asd.calibration.ScoreStats.get_state` /
:meth:`~automl_asd.calibration.DomainNormalizer.get_state` (and ``from_state``). This module
only decides where each array is stored and lists it in the manifest::

    members/<i>/<j>-<key>.npy          detector state key ``key`` of member i
    scoring/member_stats.npy           (n_members, 2) mean/std of each member's self-scores
    scoring/threshold.npy              the decision threshold (0-d)
    scoring/normalizer_<key>.npy       normaliser state key ``key`` (``global``, ``source``,
                                       ``target``, ``log_floor``)

The manifest's ``scoring`` section names these files (``normalizer_global``,
``normalizer_domains`` {domain: file}, ``normalizer_log_floor``); the layout is
:data:`~automl_asd.bundle.format.BUNDLE_VERSION` 1, unchanged since bundles were introduced.
Detectors are rebuilt by registry name (``make_detector(name, params, seed).set_state(...)``),
so a bundle from an untrusted source cannot run code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd._version import __version__
from automl_asd.bundle.format import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    MANIFEST,
    RECIPE_FILE,
    BundleError,
    json_bytes,
    load_npy,
    npy_bytes,
    sha256_bytes,
    state_file_name,
    torch_version,
)
from automl_asd.calibration import DomainNormalizer, ScoreStats
from automl_asd.components.device import resolve_device
from automl_asd.detectors import make_detector
from automl_asd.pipeline import FittedMachine
from automl_asd.recipe import Recipe, RecipeError, content_digest

__all__ = ["bundle_files", "fitted_from_files"]

_STATS = "scoring/member_stats.npy"
_THRESHOLD = "scoring/threshold.npy"
#: Manifest ``scoring`` entry of the normaliser's non-domain state keys.
_NORMALIZER_ENTRIES = {"global": "normalizer_global", "log_floor": "normalizer_log_floor"}


def _normalizer_file(key: str) -> str:
    return f"scoring/normalizer_{key}.npy"


def bundle_files(fitted: FittedMachine) -> dict[str, bytes]:
    """The bundle of a fitted machine as ``{relative path: bytes}`` (manifest included).

    Raises ``TypeError`` when a detector's state holds an object array (it would need pickle).
    """
    recipe = fitted.recipe
    files: dict[str, bytes] = {RECIPE_FILE: recipe.to_json().encode("utf-8")}
    members: list[dict[str, Any]] = []
    for i, det in enumerate(fitted.members):
        arrays: dict[str, str] = {}
        for j, (key, value) in enumerate(det.get_state().items()):
            rel = state_file_name(i, j, key)
            files[rel] = npy_bytes(value, f"{recipe.detector.name} member {i} state {key!r}")
            arrays[key] = rel
        members.append({"index": i, "seed": int(det.seed), "arrays": arrays})
    norm = fitted.normalizer
    norm_state = norm.get_state()
    scoring: dict[str, Any] = {
        "member_stats": _STATS,
        "threshold": _THRESHOLD,
        "normalizer_global": _normalizer_file("global"),
        "normalizer_domains": {d: _normalizer_file(d) for d in norm_state
                               if d not in _NORMALIZER_ENTRIES},
    }
    stats = np.asarray([s.get_state() for s in fitted.member_stats], dtype=np.float64)
    files[_STATS] = npy_bytes(stats, "member_stats")
    files[_THRESHOLD] = npy_bytes(np.asarray(fitted.threshold, np.float64), "threshold")
    for key, value in norm_state.items():
        what = "normalizer" if key == "global" else (
            "normalizer log floor" if key == "log_floor" else f"normalizer {key}")
        files[_normalizer_file(key)] = npy_bytes(value, what)
    if "log_floor" in norm_state:
        scoring["normalizer_log_floor"] = _normalizer_file("log_floor")
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
    files[MANIFEST] = json_bytes(manifest)
    return files


def _read_recipe(files: Mapping[str, bytes], manifest: Mapping[str, Any], root: Path) -> Recipe:
    try:
        recipe = Recipe.from_json(files[RECIPE_FILE].decode("utf-8"),
                                  source=str(root / RECIPE_FILE))
    except KeyError:
        raise BundleError(f"{root / RECIPE_FILE}: missing") from None
    except (RecipeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{root / RECIPE_FILE}: {exc}") from None
    if recipe.content_hash() != manifest.get("recipe_hash") \
            and _written_hash(files[RECIPE_FILE]) != manifest.get("recipe_hash"):
        raise BundleError(f"{root / RECIPE_FILE}: content hash {recipe.content_hash()[:12]} does "
                          f"not match the manifest's recipe_hash "
                          f"{str(manifest.get('recipe_hash'))[:12]}; refusing the bundle")
    if manifest.get("feature_spec") != recipe.features.to_dict():
        raise BundleError(f"{root / MANIFEST}: feature_spec differs from {RECIPE_FILE}'s "
                          "features; refusing the bundle")
    return recipe


def _written_hash(text: bytes) -> str | None:
    """The content hash of the recipe file as written, before reading normalised it: a bundle
    written when the reader still kept ``-0.0`` (before the search/recipe fix that reads it as
    ``0.0``) hashed the file's own values, so its recipe_hash matches this and not the read
    recipe's. The file is the writer's ``to_json``, so this is that writer's canonical form."""
    try:
        raw = json.loads(text)
        return content_digest(raw) if isinstance(raw, dict) else None
    except ValueError:
        return None


def _read_normalizer(files: Mapping[str, bytes], scoring: Mapping[str, Any], method: str,
                     root: Path) -> DomainNormalizer:
    """The normaliser from the files the manifest's ``scoring`` section names."""
    where = {"global": str(scoring["normalizer_global"])}
    where.update({str(d): str(f) for d, f in sorted(scoring["normalizer_domains"].items())})
    if method == "domain_log_zscore":
        where["log_floor"] = str(scoring["normalizer_log_floor"])
    state = {key: np.asarray(load_npy(files, rel, root), np.float64)
             for key, rel in where.items()}
    try:
        return DomainNormalizer.from_state(method, state)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        rel = where.get(key)
        if rel is None:
            raise BundleError(f"{root / MANIFEST}: normaliser: {exc}") from None
        raise BundleError(f"{root / rel}: {problem}; the bundle is damaged") from None


def _check_layout(scoring: Mapping[str, Any], members_doc: Any, root: Path) -> None:
    """The manifest names each array where :func:`bundle_files` puts it: the checksums cover
    the files, not which role the manifest gives them, so a swapped or re-pointed entry
    (another domain's normaliser, one state array read as another) is refused here."""
    expected = {"member_stats": _STATS, "threshold": _THRESHOLD,
                **{entry: _normalizer_file(key) for key, entry in _NORMALIZER_ENTRIES.items()}}
    for entry, rel in expected.items():
        if entry in scoring and scoring[entry] != rel:
            raise BundleError(f"{root / MANIFEST}: scoring.{entry} is {scoring[entry]!r}, "
                              f"not {rel!r}; the bundle is damaged")
    for domain, rel in dict(scoring["normalizer_domains"]).items():
        if rel != _normalizer_file(str(domain)):
            raise BundleError(f"{root / MANIFEST}: scoring.normalizer_domains.{domain} is "
                              f"{rel!r}, not {_normalizer_file(str(domain))!r}; the bundle is "
                              "damaged")
    for i, doc in enumerate(members_doc):
        for j, (key, rel) in enumerate(dict(doc["arrays"]).items()):
            if rel != state_file_name(i, j, str(key)):
                raise BundleError(f"{root / MANIFEST}: members[{i}].arrays.{key} is {rel!r}, "
                                  f"not {state_file_name(i, j, str(key))!r}; the bundle is "
                                  "damaged")


def fitted_from_files(
    files: Mapping[str, bytes], manifest: Mapping[str, Any], root: Path, device: str
) -> FittedMachine:
    """Rebuild the fitted machine of verified bundle files (``format.verify_bundle_files``);
    :class:`BundleError` naming the file for anything malformed."""
    recipe = _read_recipe(files, manifest, root)
    dev = resolve_device(device)
    try:
        scoring = manifest["scoring"]
        members_doc = manifest["members"]
        _check_layout(scoring, members_doc, root)
        stats_arr = np.asarray(load_npy(files, scoring["member_stats"], root), np.float64)
        threshold = float(load_npy(files, scoring["threshold"], root))
        normalizer = _read_normalizer(files, scoring, recipe.normalization.method, root)
        seed = int(manifest["seed"])
        counts = {str(k): int(v) for k, v in manifest.get("counts", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{root / MANIFEST}: malformed scoring/member section ({exc!r}); the "
                          "bundle is damaged") from None
    n = len(members_doc)
    if n != recipe.ensemble.size or stats_arr.shape != (n, 2):
        raise BundleError(f"{root / MANIFEST}: {n} members and member_stats of shape "
                          f"{stats_arr.shape} for an ensemble of {recipe.ensemble.size}")
    if not np.isfinite(threshold):
        raise BundleError(f"{root / scoring['threshold']}: threshold is not finite")
    if n and not np.all(stats_arr[:, 1] > 0):
        raise BundleError(f"{root / scoring['member_stats']}: a member score std is not positive "
                          "(zero variance would give infinite scores); the bundle is damaged")
    member_stats = [ScoreStats.from_state(row) for row in stats_arr]
    spec = recipe.detector
    members = []
    for i, doc in enumerate(members_doc):
        try:
            arrays, member_seed = dict(doc["arrays"]), int(doc["seed"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(f"{root / MANIFEST}: members[{i}] is malformed ({exc!r}); the "
                              "bundle is damaged") from None
        state: dict[str, NDArray[Any]] = {str(k): load_npy(files, str(f), root)
                                          for k, f in arrays.items()}
        det = make_detector(spec.name, dict(spec.params), member_seed)
        det.set_device(dev)
        try:
            det.set_state(state)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise BundleError(f"{root / 'members' / f'{i:03d}'}: {spec.name}.set_state failed "
                              f"({exc}); the bundle does not match this detector version") from exc
        members.append(det)
    return FittedMachine(recipe, str(manifest["machine_type"]), seed, members, member_stats,
                         normalizer, threshold, counts, {}, dev)
