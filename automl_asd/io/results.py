"""Apply outputs other than the submission CSVs: per-machine JSON summaries, error reports,
the results table (CSV + Markdown) and JSON files such as ``metrics.json``.

Every file is written atomically (temporary name in the same folder, then ``os.replace``), so a
crash or a concurrent reader never sees half a file: ``--resume`` relies on this.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from automl_asd.components.files import atomic_write_text, file_identity
from automl_asd.recipe import OFFICIAL_BASELINES, shipped_recipe

__all__ = [
    "write_json",
    "write_evaluation_json",
    "files_fingerprint",
    "sha256_file",
    "summary_path",
    "error_path",
    "write_machine_summary",
    "read_machine_summary",
    "write_error",
    "recipe_of_run",
]

logger = logging.getLogger(__name__)


def write_json(path: Path, obj: Any) -> Path:
    """Atomic, stable JSON (sorted keys, 2-space indent, trailing newline; NaN becomes null)."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True) + "\n")


def write_evaluation_json(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Atomic strict JSON of ``automl-asd evaluate --json`` (indent 2, keys in the payload's
    order, NaN refused)."""
    return atomic_write_text(Path(path), json.dumps(payload, indent=2, allow_nan=False) + "\n")


def files_fingerprint(paths: Iterable[Path], *, root: Path | None = None,
                      missing_ok: bool = False, content: bool = False) -> str:
    """sha256 over the sorted ``(name, size, stamp)`` of ``paths``, the stamp being
    :func:`~automl_asd.components.files.file_identity`'s (``stat`` only; with ``content``, a
    digest of each file's bytes).

    ``name`` is the path relative to ``root`` (POSIX form) when given, else the resolved path.
    A file added, removed, renamed, resized or rewritten changes the result, also a same-size
    rewrite that restores the old mtime; so does a copy of the tree (new inodes) unless
    ``content``. With ``missing_ok`` a path that vanished is left out instead of raising.
    """
    rows: list[tuple[str, int, str]] = []
    for path in paths:
        try:
            size, stamp = file_identity(path, content=content)
        except OSError:
            if missing_ok:
                continue
            raise
        name = path.relative_to(root).as_posix() if root is not None else str(path.resolve())
        rows.append((name, size, stamp))
    digest = hashlib.sha256()
    for name, size, stamp in sorted(rows):
        # a name of another encoding (kept as surrogates) is hashed as its bytes: the scan
        # names it, this must not stop the run first
        digest.update(f"{name}\0{size}\0{stamp}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summary_path(out_dir: Path, machine_type: str) -> Path:
    """Where the per-machine summary JSON of ``machine_type`` lives."""
    return Path(out_dir) / f"{machine_type}.summary.json"


def error_path(out_dir: Path, machine_type: str) -> Path:
    """Where the traceback of a failed machine type is saved."""
    return Path(out_dir) / f"{machine_type}.error.txt"


def write_machine_summary(out_dir: Path, machine_type: str, summary: Mapping[str, Any]) -> Path:
    """Write ``<out_dir>/<machine_type>.summary.json`` atomically. Returns its path."""
    return write_json(summary_path(out_dir, machine_type), dict(summary))


def read_machine_summary(out_dir: Path, machine_type: str) -> dict[str, Any] | None:
    """The summary JSON of ``machine_type``, or ``None`` when missing or unreadable."""
    path = summary_path(out_dir, machine_type)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable summary (%s); the machine type will be rerun", path, exc)
        return None
    return data if isinstance(data, dict) else None


def write_error(out_dir: Path, machine_type: str, text: str) -> Path:
    """Save the traceback of a failed machine type to ``<out_dir>/<machine_type>.error.txt``."""
    return atomic_write_text(error_path(out_dir, machine_type), text.rstrip("\n") + "\n")


def _finite(obj: Any) -> Any:
    """Replace NaN/inf floats by ``None`` recursively (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def recipe_of_run(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """``{"name", "hash", "official_baseline"}`` of the recipe an apply run used, read from its
    per-machine summaries (``None`` when there are none). Summaries written before the
    ``official_baseline`` key existed are matched by hash against the shipped baselines."""
    if not summaries:
        return None
    first = summaries[sorted(summaries)[0]]
    rhash = str(first.get("recipe_hash", ""))
    if "official_baseline" in first:
        official = first.get("official_baseline")
    else:
        official = next((n for n in OFFICIAL_BASELINES
                         if shipped_recipe(n).content_hash() == rhash), None)
    return {"name": first.get("recipe_name"), "hash": rhash, "official_baseline": official}
