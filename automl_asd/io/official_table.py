"""``results.csv`` / ``results.md`` in the layout DCASE participants already read.

Per machine type, the official baseline's result-CSV columns (``section, AUC (source),
AUC (target), pAUC, pAUC (source), pAUC (target), precision (source), precision (target),
recall (source), recall (target), F1 score (source), F1 score (target)``) with one row per
section followed by its ``arithmetic mean`` and ``harmonic mean`` rows, each block headed by the
machine type's name as the official evaluator's result file does; then the same two rows over
every machine type and section, and the official score Ω. Values have 4 decimals; an empty cell
is a value that does not exist (no decision files, or no anomalous clip in a domain for the
per-domain pAUC). Harmonic means floor each value at ``sys.float_info.epsilon`` as the
evaluator does. Only AUC (source), AUC (target) and pAUC enter Ω.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl_asd.components.files import atomic_write_text
from automl_asd.evaluation.metrics import MachineMetrics, amean_score, floored_hmean, official_score

__all__ = ["OFFICIAL_COLUMNS", "official_blocks", "write_official_csv",
           "write_official_markdown", "write_results_table"]

#: The official baseline's result-CSV header (``dcase2023_task2_baseline_ae``, source/target
#: form), i.e. the columns every DCASE Task 2 participant's tables use.
OFFICIAL_COLUMNS: tuple[str, ...] = (
    "section", "AUC (source)", "AUC (target)", "pAUC", "pAUC (source)", "pAUC (target)",
    "precision (source)", "precision (target)", "recall (source)", "recall (target)",
    "F1 score (source)", "F1 score (target)",
)
_FIELDS: tuple[str, ...] = (
    "auc_source", "auc_target", "pauc", "pauc_source", "pauc_target", "precision_source",
    "precision_target", "recall_source", "recall_target", "f1_source", "f1_target",
)
ALL_TYPES = "all machine types"


def _values(m: MachineMetrics) -> list[float]:
    out: list[float] = []
    for name in _FIELDS:
        v = getattr(m, name)
        out.append(math.nan if v is None else float(v))
    return out


def _means(rows: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Column arithmetic and (eps-floored) harmonic means; NaN where a value is missing."""
    arr = np.asarray(rows, dtype=np.float64)
    amean = [float(np.mean(col)) if not np.isnan(col).any() else math.nan for col in arr.T]
    hmean = [floored_hmean(col) for col in arr.T]
    return amean, hmean


def official_blocks(per_section: Mapping[tuple[str, str], MachineMetrics]
                    ) -> list[tuple[str, list[tuple[str, list[float]]]]]:
    """``[(machine type, [(row label, 11 values), ...]), ..., (ALL_TYPES, [...])]``.

    Each machine type's rows are its sections (``"00"``, ...) then ``arithmetic mean`` and
    ``harmonic mean`` over its sections; the last block holds the two means over every
    (machine type, section).
    """
    if not per_section:
        raise ValueError("official_blocks: no machine types/sections")
    by_mt: dict[str, list[tuple[str, MachineMetrics]]] = {}
    for (mt, section), m in sorted(per_section.items()):
        by_mt.setdefault(mt, []).append((section, m))
    blocks: list[tuple[str, list[tuple[str, list[float]]]]] = []
    every: list[list[float]] = []
    for mt, sections in by_mt.items():
        rows = [(section, _values(m)) for section, m in sections]
        every.extend(v for _, v in rows)
        amean, hmean = _means([v for _, v in rows])
        blocks.append((mt, [*rows, ("arithmetic mean", amean), ("harmonic mean", hmean)]))
    amean, hmean = _means(every)
    blocks.append((ALL_TYPES, [("arithmetic mean", amean), ("harmonic mean", hmean)]))
    return blocks


def _cell(v: float) -> str:
    return "" if math.isnan(v) else f"{v:.4f}"


def write_official_csv(path: str | Path,
                       per_section: Mapping[tuple[str, str], MachineMetrics]) -> Path:
    """Write the blocks of :func:`official_blocks`, a blank line after each, then
    ``official score,<Ω>`` (4 decimals)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for mt, rows in official_blocks(per_section):
        writer.writerow([mt])
        writer.writerow(OFFICIAL_COLUMNS)
        for label, values in rows:
            writer.writerow([label, *(_cell(v) for v in values)])
        writer.writerow([])
    writer.writerow(["official score", f"{official_score(per_section):.4f}"])
    return atomic_write_text(Path(path), buf.getvalue())


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def write_official_markdown(
    path: str | Path,
    per_section: Mapping[tuple[str, str], MachineMetrics],
    *,
    recipe: Mapping[str, Any] | None = None,
    seconds: Mapping[str, float] | None = None,
) -> Path:
    """``results.md``: which recipe, Ω, one line per machine type (its Ω, AUC (all), apply
    seconds), then the official columns per machine type and section.

    ``recipe``: ``{"name", "hash", "official_baseline"}`` (the shipped baseline's name, or
    ``None`` when the recipe is not the official baseline); omitted when unknown.
    """
    omega = official_score(per_section)
    n = len(per_section)
    lines = ["# Results", ""]
    if recipe:
        base = recipe.get("official_baseline")
        kind = (f"the official DCASE baseline (`{base}`)" if base
                else "not the official DCASE baseline")
        lines.append(f"- recipe: `{recipe.get('name')}` (content hash "
                     f"`{str(recipe.get('hash', ''))[:16]}`), {kind}")
    lines += [f"- **official score Ω = {omega:.4f}**: harmonic mean of AUC (source), "
              f"AUC (target) and pAUC over {n} machine type/section(s); arithmetic mean of the "
              f"same values {amean_score(per_section):.4f}",
              "- pAUC (source) / pAUC (target) are the baseline's per-domain columns (not part "
              "of Ω); precision, recall and F1 come from the decision files", "",
              "## Per machine type", ""]
    head = ["machine type", "Ω", "AUC (all)"] + (["seconds"] if seconds is not None else [])
    lines += [_md_row(head), "|" + "---|" * len(head)]
    by_mt: dict[str, list[MachineMetrics]] = {}
    for (mt, _), m in sorted(per_section.items()):
        by_mt.setdefault(mt, []).append(m)
    for mt, ms in by_mt.items():
        cells = [mt, f"{official_score(dict(enumerate(ms))):.4f}",
                 f"{float(np.mean([m.auc_all for m in ms])):.4f}"]
        if seconds is not None:
            sec = seconds.get(mt)
            cells.append("" if sec is None else f"{sec:.1f}")
        lines.append(_md_row(cells))
    lines += ["", "## Official columns per machine type and section", "",
              _md_row(["machine type", *OFFICIAL_COLUMNS]),
              "|" + "---|" * (len(OFFICIAL_COLUMNS) + 1)]
    for mt, rows in official_blocks(per_section):
        single = mt != ALL_TYPES and len(rows) == 3  # one section: its means repeat it
        for label, values in rows:
            if single and label != rows[0][0]:
                continue
            lines.append(_md_row([mt, label, *(_cell(v) for v in values)]))
    lines += ["", f"Official score (Ω): {omega:.4f}", ""]
    return atomic_write_text(Path(path), "\n".join(lines))


def write_results_table(
    out_dir: Path,
    per_section: Mapping[Any, Any],
    *,
    seconds: Mapping[str, float] | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.md`` into ``out_dir``; returns both paths.

    ``per_section`` maps ``(machine type, section)`` to ``metrics.MachineMetrics``. Both files
    carry the official result columns per machine type and section with the arithmetic- and
    harmonic-mean rows and Ω (:mod:`automl_asd.io.official_table`); the Markdown also names
    the recipe (``recipe``: name, hash, official_baseline) and the apply ``seconds`` per
    machine type.
    """
    csv_path = write_official_csv(Path(out_dir) / "results.csv", per_section)
    md_path = write_official_markdown(Path(out_dir) / "results.md", per_section,
                                      recipe=recipe, seconds=seconds)
    return csv_path, md_path
