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
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "sha256_file",
    "summary_path",
    "error_path",
    "write_machine_summary",
    "read_machine_summary",
    "write_error",
    "write_results_table",
]

logger = logging.getLogger(__name__)

def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Atomic UTF-8 text write (``\\n`` line ends on every platform)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Atomic, stable JSON (sorted keys, 2-space indent, trailing newline; NaN becomes null)."""
    return atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True) + "\n")


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


def write_results_table(
    out_dir: Path,
    table: pd.DataFrame,
    *,
    seconds: Mapping[str, float] | None = None,
) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.md`` into ``out_dir``; returns both paths.

    ``table`` is ``metrics.summary_table(...)`` (rows per machine type, then ``h-mean`` and
    ``a-mean``; ``attrs["official_score"]`` = Ω). ``seconds`` adds the apply wall time per
    machine type as a last column (its ``a-mean`` row is the mean). Both files use the format
    of ``automl-asd evaluate --out``; the Markdown ends with the Ω line.
    """
    from automl_asd.io.submission import write_evaluation_table

    table = table.copy()
    if seconds is not None:
        col = [float(seconds.get(str(label).split("_section_")[0], math.nan))
               for label in table.index]
        per_mt = [v for label, v in zip(table.index, col, strict=True)
                  if label not in ("h-mean", "a-mean") and math.isfinite(v)]
        for i, label in enumerate(table.index):
            if label == "a-mean":
                col[i] = sum(per_mt) / len(per_mt) if per_mt else math.nan
            elif label == "h-mean":
                col[i] = math.nan
        table["seconds"] = col
    omega = float(table.attrs.get("official_score", math.nan))
    csv_path = write_evaluation_table(table, Path(out_dir) / "results.csv", official_score=omega)
    md_path = write_evaluation_table(table, Path(out_dir) / "results.md", official_score=omega)
    return csv_path, md_path
