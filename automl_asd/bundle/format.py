"""The model-bundle format: constants, the manifest check, and the ``.npy``/JSON codecs.

A bundle is what ``apply`` leaves per machine type (``<out>/models/<mt>/``): a folder, or the
same files in one ``.tar``::

    manifest.json             versions, recipe hash, machine type, feature spec, training clip
                              count, threshold, member layout, sha256 of every other file
    recipe.json               the frozen recipe (strict JSON)
    members/<i>/<j>-<key>.npy fitted state of ensemble member i, one plain array per state key
                              (network weights as named tensors, k-means centres, covariances,
                              GMM parameters, ...)
    scoring/*.npy             member score statistics, domain normaliser statistics, threshold

Safety: nothing is unpickled. Arrays are read with ``np.load(..., allow_pickle=False)`` after
their header was checked against the file size, the recipe and manifest with ``json``. Every
file is checked against the manifest (:func:`verify_bundle_files`): a file that is missing, has
another sha256, is not listed, or is neither ``.json`` nor ``.npy`` (e.g. a dropped-in pickle)
is refused with :class:`BundleError` naming it; so are a bundle format, package version or
torch version other than this installation's (unless ``strict_versions=False``). The checksums
detect corruption and accidental edits; they are not a signature (whoever can rewrite the
manifest can rewrite the checksums), which is why loading never executes stored content.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd._version import __version__
from automl_asd.errors import AutomlAsdError
from automl_asd.progress import few_names

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "MANIFEST",
    "RECIPE_FILE",
    "ALLOWED_SUFFIXES",
    "MAX_BUNDLE_BYTES",
    "BundleError",
    "sha256_bytes",
    "torch_version",
    "check_relpath",
    "verify_bundle_files",
    "not_a_bundle",
    "npy_bytes",
    "npy_from_bytes",
    "load_npy",
    "json_bytes",
    "state_file_name",
]

logger = logging.getLogger(__name__)

#: ``manifest.json`` "format" value.
BUNDLE_FORMAT = "automl-asd-bundle"
#: Layout version of the bundle; a reader refuses any other.
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
RECIPE_FILE = "recipe.json"
#: The only file kinds a bundle may hold (no pickle, no code).
ALLOWED_SUFFIXES = (".json", ".npy")
#: Refuse archives/folders larger than this (a bundle is megabytes, not gigabytes).
MAX_BUNDLE_BYTES = 4 << 30


class BundleError(AutomlAsdError, ValueError):
    """A bundle that cannot be used; the message names the bundle file and the fix."""




def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def torch_version() -> str:
    """The installed torch version (``""`` when torch is missing)."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return ""
    return str(torch.__version__)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])



def check_relpath(name: str, where: Path) -> str:
    """A safe relative POSIX path inside the bundle, or :class:`BundleError`."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in name:
        raise BundleError(f"{where}: member {name!r} is not a plain relative path; refusing "
                          "the bundle (re-create it with save_bundle)")
    return str(p)



def not_a_bundle(root: Path, inner: Sequence[Path] = ()) -> BundleError:
    """The error for ``root`` without a manifest; ``inner`` names bundles found inside it (the
    user gave ``<apply out>`` or its ``models/`` folder)."""
    hint = (f"; it holds the bundles {few_names([str(p) for p in inner])}: pass one of them"
            if inner else "")
    return BundleError(f"{root / MANIFEST}: missing; {root} is not a model bundle (bundles are "
                       f"written by `automl-asd apply` under <out>/models/<machine type>){hint}")


def verify_bundle_files(
    files: Mapping[str, bytes], where: str | Path, *, strict_versions: bool = True
) -> dict[str, Any]:
    """Check a bundle's files against its manifest and this installation; returns the manifest.

    Raises :class:`BundleError` naming the file: missing manifest, unknown format/version,
    a package/torch version other than the installed one (when ``strict_versions``), a listed
    file missing or with another sha256, or a file that the manifest does not list or whose
    kind is not allowed (only ``.json``/``.npy``).
    """
    root = Path(where)
    if MANIFEST not in files:
        raise not_a_bundle(root)
    try:
        manifest = json.loads(files[MANIFEST].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{root / MANIFEST}: not valid JSON ({exc}); the bundle is damaged")\
            from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{root / MANIFEST}: expected a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{root / MANIFEST}: format {manifest.get('format')!r} is not "
                          f"{BUNDLE_FORMAT!r}; not a model bundle")
    if manifest.get("bundle_version") != BUNDLE_VERSION:
        raise BundleError(f"{root / MANIFEST}: bundle_version {manifest.get('bundle_version')!r}"
                          f" is not supported (this installation reads {BUNDLE_VERSION}); "
                          "re-export the bundle with this version's `automl-asd apply`")
    pkg = str(manifest.get("package_version", ""))
    tv = str(manifest.get("torch_version", ""))
    mismatch = []
    if pkg != __version__:
        mismatch.append(f"package_version {pkg!r} != installed automl-asd {__version__!r}")
    if _major_minor(tv) != _major_minor(torch_version()):
        mismatch.append(f"torch_version {tv!r} != installed torch {torch_version()!r}")
    if mismatch:
        text = "; ".join(mismatch)
        if strict_versions:
            raise BundleError(f"{root / MANIFEST}: {text}; install the versions the bundle was "
                              "made with, re-export it, or load with strict_versions=False "
                              "(CLI: --allow-version-mismatch) to accept possibly different "
                              "scores")
        logger.warning("%s: %s (accepted: strict_versions=False)", root / MANIFEST, text)
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed:
        raise BundleError(f"{root / MANIFEST}: no 'files' checksum table; the bundle is damaged")
    for name in sorted(files):
        if name == MANIFEST:
            continue
        if not name.endswith(ALLOWED_SUFFIXES):
            raise BundleError(f"{root / name}: unexpected file kind in a bundle (only .json and "
                              ".npy are allowed; a pickle or code file may have been dropped "
                              "in); refusing the bundle")
        if name not in listed:
            raise BundleError(f"{root / name}: not listed in {MANIFEST}; a file was added to the "
                              "bundle after it was saved; refusing it")
    for name, digest in sorted(listed.items()):
        name = check_relpath(str(name), root)
        if name not in files:
            raise BundleError(f"{root / name}: missing (listed in {MANIFEST}); the bundle is "
                              "incomplete, copy it again")
        if sha256_bytes(files[name]) != digest:
            raise BundleError(f"{root / name}: sha256 does not match {MANIFEST}; the file was "
                              "modified or damaged after saving; refusing the bundle")
    return manifest



def _check_npy_size(data: bytes, where: Path) -> None:
    """Refuse a ``.npy`` whose header declares more data than the file holds (before numpy
    would try to allocate it: a forged header could claim hundreds of GiB)."""
    buf = io.BytesIO(data)
    try:
        major, _ = np.lib.format.read_magic(buf)
        read = (np.lib.format.read_array_header_1_0 if major == 1
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(buf)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise BundleError(f"{where}: not a plain .npy array ({exc}); object/pickled arrays "
                          "are refused") from None
    if dtype.hasobject:
        return  # np.load(allow_pickle=False) refuses it with its own message
    need = math.prod(int(n) for n in shape) * dtype.itemsize
    have = len(data) - buf.tell()
    if need > have:
        raise BundleError(f"{where}: header declares shape {tuple(shape)} ({need} bytes) but "
                          f"the file holds {have}; the bundle is damaged")


def npy_from_bytes(data: bytes, where: Path) -> NDArray[Any]:
    """One ``.npy`` file's array: header size checked first (:func:`_check_npy_size`), then
    ``np.load`` without pickles. Raises :class:`BundleError` naming ``where``."""
    _check_npy_size(data, where)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{where}: not a plain .npy array ({exc}); object/pickled "
                          "arrays are refused") from None
    return np.asarray(arr)



def load_npy(files: Mapping[str, bytes], name: str, root: Path) -> NDArray[Any]:
    """The array stored as ``name``; :class:`BundleError` naming the file when it is missing,
    not a plain ``.npy``, or holds NaN/inf."""
    try:
        data = files[name]
    except KeyError:
        raise BundleError(f"{root / name}: missing (named in {MANIFEST})") from None
    arr = npy_from_bytes(data, root / name)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise BundleError(f"{root / name}: holds {bad} non-finite value(s) (NaN/inf); the "
                          "bundle is damaged or its model diverged; refusing it")
    return arr



def npy_bytes(arr: NDArray[Any], what: str) -> bytes:
    """``arr`` as ``.npy`` bytes (no pickle); ``TypeError`` naming ``what`` for an object array."""
    a = np.asarray(arr)
    if a.dtype.hasobject:
        raise TypeError(f"{what}: object arrays cannot be saved without pickle; the detector's "
                        "get_state() must return plain numeric/bool/str arrays")
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()



def json_bytes(obj: Any) -> bytes:
    """Strict, indented JSON (no NaN) with a trailing newline, as UTF-8."""
    return (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8")



_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def state_file_name(member: int, index: int, key: str) -> str:
    """Where state array ``index`` (key ``key``) of member ``member`` is stored:
    ``members/<member:03d>/<index:03d>-<key, made file-safe, at most 80 chars>.npy``."""
    return f"members/{member:03d}/{index:03d}-{_SAFE.sub('_', key)[:80]}.npy"
