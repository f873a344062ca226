"""Several ``apply`` runs side by side (``automl-asd summarize``), like the official baseline's
summarise script: the official score per machine type and overall, with the recipe each run
used (name, content hash, whether it is the official baseline).

Reads only what ``apply`` wrote: ``<mt>.summary.json`` (recipe), ``metrics.json`` (scores)
and the run manifest ``.automl-asd-run.json`` (the recipe of a run whose every machine type
failed; the sha256 of the metrics.json the run wrote, to tell an edited or deleted one).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl_asd.errors import AutomlAsdError
from automl_asd.evaluation.metrics import floored_hmean
from automl_asd.io.results import sha256_file
from automl_asd.io.run_folder import RUN_MANIFEST
from automl_asd.recipe import OFFICIAL_BASELINES, shipped_recipe

__all__ = ["RunError", "ApplyRun", "read_apply_run", "summary_markdown", "summary_csv"]

logger = logging.getLogger(__name__)

_OFFICIAL = ("auc_source", "auc_target", "pauc")
_LABELS = {"auc_source": "AUC (source)", "auc_target": "AUC (target)", "pauc": "pAUC"}


class RunError(AutomlAsdError, ValueError):
    """A folder that is not a readable ``apply`` run; the message names it and the fix."""


@dataclass(frozen=True)
class ApplyRun:
    """What one apply run scored. ``sections``: machine type -> list of its sections'
    ``{auc_source, auc_target, pauc}``; empty when the run had no labels."""

    label: str
    recipe_name: str
    recipe_hash: str
    official_baseline: str | None
    machine_types: tuple[str, ...]
    official_score: float | None
    sections: Mapping[str, list[dict[str, float]]] = field(default_factory=dict)
    #: Machine types whose job failed (``<type>.error.txt``): Ω covers the others only.
    failed: tuple[str, ...] = ()
    #: The run wrote a metrics.json (listed in its manifest) that is gone: no scores to show.
    metrics_missing: bool = False

    def machine_omega(self, mt: str) -> float | None:
        """Ω of one machine type: h-mean of its sections' AUC (source), AUC (target), pAUC."""
        secs = self.sections.get(mt)
        if not secs:
            return None
        return floored_hmean([s[k] for s in secs for k in _OFFICIAL])

    def column(self, metric: str) -> dict[str, float]:
        """Machine type -> the mean over its sections of ``metric`` (the baseline's table)."""
        return {mt: sum(s[metric] for s in secs) / len(secs)
                for mt, secs in self.sections.items() if secs}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None


def _run_manifest(root: Path) -> dict[str, Any] | None:
    """The folder's run manifest (``.automl-asd-run.json``) when it is a readable one that
    lists its files, else None (a run written before manifests, or a damaged one)."""
    try:
        data = json.loads((root / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def read_apply_run(folder: str | Path, label: str | None = None) -> ApplyRun:
    """Read one ``apply --out`` folder. Raises :class:`RunError` for a folder that is not an
    apply run (neither a ``<machine type>.summary.json`` nor, for a run whose every type
    failed, ``<type>.error.txt`` files with a run manifest naming the recipe), holds runs of
    several recipes, or whose metrics.json holds values no run writes (outside [0, 1], an Ω
    its per-type values do not give). Warns when metrics.json is not the file the run wrote
    (its sha256 in the manifest) or is missing although the run wrote one."""
    root = Path(folder)
    if not root.is_dir():
        raise RunError(f"{root}: no such folder; give the --out folder of `automl-asd apply`")
    summaries = sorted(root.glob("*.summary.json"))
    failed = tuple(sorted(p.name[: -len(".error.txt")] for p in root.glob("*.error.txt")))
    manifest = _run_manifest(root)
    if not summaries:
        if failed and manifest is not None and manifest.get("recipe_hash"):
            # found 2026-12-07: a run whose every type failed was "not an apply run", while
            # a partly failed one showed its FAILED columns
            rhash = str(manifest["recipe_hash"])
            return ApplyRun(label=label or str(folder),
                            recipe_name=str(manifest.get("recipe_name")), recipe_hash=rhash,
                            official_baseline=_official_of(rhash), machine_types=failed,
                            official_score=None, failed=failed)
        raise RunError(f"{root}: not an apply run (no <machine type>.summary.json); give the "
                       "--out folder of `automl-asd apply`")
    recipes: dict[str, dict[str, Any]] = {}
    types: list[str] = []
    for path in summaries:
        data = _read_json(path)
        if not isinstance(data, dict) or "recipe_hash" not in data:
            raise RunError(f"{path}: not an apply summary (no recipe_hash)")
        types.append(str(data.get("machine_type", path.name.split(".")[0])))
        recipes.setdefault(str(data["recipe_hash"]), data)
    if len(recipes) > 1:
        names = ", ".join(f"{d.get('recipe_name')} ({h[:12]})" for h, d in recipes.items())
        raise RunError(f"{root}: machine types were applied with different recipes ({names}); "
                       "rerun `automl-asd apply` into a fresh --out folder")
    rhash, first = next(iter(recipes.items()))
    if "official_baseline" in first:
        official = first["official_baseline"]
    else:  # summaries written before the key existed
        official = _official_of(rhash)
    sections: dict[str, list[dict[str, float]]] = {}
    omega: float | None = None
    metrics_path = root / "metrics.json"
    written = (manifest or {}).get("files", {}).get("metrics.json")
    if metrics_path.is_file():
        data = _read_json(metrics_path)
        try:
            omega = float(data["official_score"])
            for mt, m in data["machine_types"].items():
                secs = m["sections"].items() if "sections" in m else [("", m)]
                sections[str(mt)] = [{k: _metric(metrics_path, f"{mt}{' section ' if ss else ''}"
                                                 f"{ss} {k}", s[k]) for k in _OFFICIAL}
                                     for ss, s in secs]
        except RunError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"{metrics_path}: not the metrics.json of an apply run ({exc!r})") \
                from None
        # found 2026-12-07: a hand-edited metrics.json (AUC 1.7, an Ω of 0.99 its per-type
        # values do not give) was shown as the run's scores. Values no run writes are refused
        # (above); a file that is not the one the run wrote is shown with a warning.
        _check_omega(metrics_path, omega, sections)
        if manifest is not None and written != sha256_file(metrics_path):
            why = ("edited since `automl-asd apply` wrote it (its sha256 is not the one in %s)"
                   if written else "not written by the run (not listed in %s)")
            logger.warning("%s: " + why + "; the scores shown are this file's: rerun "
                           "`automl-asd apply --resume` with the run's arguments to write it "
                           "again", metrics_path, root / RUN_MANIFEST)
    elif written:  # found 2026-12-07: a deleted metrics.json read as "no labels"
        logger.warning("%s: missing, although the run wrote it (listed in %s); its scores are "
                       "not shown: rerun `automl-asd apply --resume` with the run's arguments "
                       "to write it again", metrics_path, root / RUN_MANIFEST)
    return ApplyRun(label=label or str(folder), recipe_name=str(first.get("recipe_name")),
                    recipe_hash=rhash, official_baseline=official,
                    machine_types=tuple(sorted(set(types) | set(sections) | set(failed))),
                    official_score=omega, sections=sections, failed=failed,
                    metrics_missing=bool(written) and not metrics_path.is_file())


def _official_of(rhash: str) -> str | None:
    """The shipped official baseline whose content hash is ``rhash``, else None."""
    return next((n for n in OFFICIAL_BASELINES if shipped_recipe(n).content_hash() == rhash),
                None)


def _metric(path: Path, what: str, value: Any) -> float:
    """One official metric of metrics.json: a number in [0, 1] (NaN where it is undefined);
    :class:`RunError` naming it otherwise."""
    v = float(value)
    if not math.isnan(v) and not 0.0 <= v <= 1.0:
        raise RunError(f"{path}: {what} = {value!r} is outside [0, 1]; not a metric "
                       "`automl-asd apply` writes: rerun `automl-asd apply --resume` with the "
                       "run's arguments to write metrics.json again")
    return v


def _check_omega(path: Path, omega: float, sections: Mapping[str, list[dict[str, float]]]
                 ) -> None:
    """Refuse an ``official_score`` that is not the h-mean of the file's own per-type values
    (what ``apply`` writes): one of the two was edited, and the table would contradict
    itself."""
    values = [s[k] for secs in sections.values() for s in secs for k in _OFFICIAL]
    expected = floored_hmean(values) if values else math.nan
    if math.isnan(omega) and math.isnan(expected):
        return
    if not math.isclose(omega, expected, rel_tol=1e-9, abs_tol=1e-9):
        raise RunError(f"{path}: official_score {omega!r} is not the harmonic mean of its "
                       f"per-type AUC (source), AUC (target) and pAUC ({_f(expected)}); the "
                       "file was edited: rerun `automl-asd apply --resume` with the run's "
                       "arguments to write it again")


def _f(v: float | None) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.4f}"


def _types(runs: Sequence[ApplyRun]) -> list[str]:
    return sorted({mt for r in runs for mt in r.machine_types})


#: above this many machine types the markdown lists them as rows (one column per run), not as
#: columns: 200 random types made every line of the tables 2,000+ characters wide
MAX_TYPE_COLUMNS = 12


def _overview_rows(runs: Sequence[ApplyRun], *, type_columns: bool = True
                   ) -> tuple[list[str], list[list[str]]]:
    types = _types(runs) if type_columns else []
    head = ["run", "recipe", "hash", "official baseline", "Ω", *types]
    rows = []
    for r in runs:
        omega = _f(r.official_score)
        if r.failed and r.official_score is not None:  # not comparable with a full run's
            omega += f" (partial: {len(r.machine_types) - len(r.failed)} of " \
                     f"{len(r.machine_types)} types)"
        elif r.metrics_missing:
            omega += " (metrics.json missing)"
        rows.append([r.label, r.recipe_name, r.recipe_hash[:12],
                     r.official_baseline or "no", omega,
                     *("FAILED" if mt in r.failed else _f(r.machine_omega(mt))
                       for mt in types)])
    return head, rows


def summary_markdown(runs: Sequence[ApplyRun]) -> str:
    """The overview table (Ω overall and per machine type, recipe) and the baseline-style
    detail table (h-mean, a-mean and per machine type of AUC (source), AUC (target), pAUC and
    the TOTAL score per run)."""
    wide = len(_types(runs)) > MAX_TYPE_COLUMNS
    if wide:
        return _summary_markdown_by_rows(runs)
    head, rows = _overview_rows(runs)
    md = ["# Apply runs side by side", "",
          "Ω: official score (harmonic mean of AUC (source), AUC (target) and pAUC over every "
          "machine type and section); per machine type: the same over that type's sections. "
          "— : no labels for that run or type (or not in it), or its metrics.json is missing "
          "(said in the Ω column); FAILED: the type's job failed (`<type>.error.txt`), and the "
          "run's Ω, marked partial, covers the other types only.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"`{row[0]}`", f"`{row[1]}`", f"`{row[2]}`", *row[3:]]
        md.append("| " + " | ".join(cells) + " |")
    types = _types(runs)
    dhead = ["run", "metric", "h-mean", "a-mean", *types]
    md += ["", "## Detail", "", "| " + " | ".join(dhead) + " |", "|" + "---|" * len(dhead)]
    for r in runs:
        if not r.sections:
            md.append("| " + " | ".join([f"`{r.label}`", _no_scores(r), *["—"] *
                                         (len(dhead) - 2)]) + " |")
            continue
        for metric in _OFFICIAL:
            vals = [s[metric] for secs in r.sections.values() for s in secs]
            col = r.column(metric)
            md.append("| " + " | ".join([f"`{r.label}`", _LABELS[metric], _f(floored_hmean(vals)),
                                         _f(sum(vals) / len(vals)),
                                         *(_f(col.get(mt)) for mt in types)]) + " |")
        every = [s[k] for secs in r.sections.values() for s in secs for k in _OFFICIAL]
        md.append("| " + " | ".join([f"`{r.label}`", "TOTAL score", _f(r.official_score),
                                     _f(sum(every) / len(every)),
                                     *(_f(r.machine_omega(mt)) for mt in types)]) + " |")
    return "\n".join(md) + "\n"


def _no_scores(run: ApplyRun) -> str:
    """Why the detail table has no scores for ``run``."""
    if run.metrics_missing:
        return "(metrics.json missing)"
    if run.failed and set(run.failed) == set(run.machine_types):
        return "(every type failed)"
    return "(no labels)"


def summary_csv(runs: Sequence[ApplyRun]) -> str:
    """The overview table as CSV: numbers with 4 decimals, an empty cell where there is none
    (no labels, or the type's job failed), and a last column ``failed`` naming the failed
    types (space-separated; the run's Ω then covers the others only)."""
    types = _types(runs)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "recipe", "hash", "official baseline", "Ω", *types, "failed"])
    for r in runs:
        cells = [_f(r.official_score), *(_f(r.machine_omega(mt)) for mt in types)]
        writer.writerow([r.label, r.recipe_name, r.recipe_hash[:12], r.official_baseline or "no",
                         *("" if c == "—" else c for c in cells), " ".join(r.failed)])
    return buf.getvalue()


def _summary_markdown_by_rows(runs: Sequence[ApplyRun]) -> str:
    """:func:`summary_markdown` for many machine types: the overview without type columns, then
    one row per machine type with each run's Ω (its AUC and pAUC: each run's results.md)."""
    head, rows = _overview_rows(runs, type_columns=False)
    types = _types(runs)
    md = ["# Apply runs side by side", "",
          "Ω: official score (harmonic mean of AUC (source), AUC (target) and pAUC over every "
          "machine type and section). Per machine type below: the same over that type's "
          f"sections ({len(types)} types: one row each; AUC and pAUC per type are in each "
          "run's results.md). — : no labels for that run or type (or not in it), or its "
          "metrics.json is missing (said in the Ω column); FAILED: the type's job failed "
          "(`<type>.error.txt`), and the run's Ω, marked partial, covers the other types "
          "only.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        md.append("| " + " | ".join([f"`{row[0]}`", f"`{row[1]}`", f"`{row[2]}`", *row[3:]])
                  + " |")
    thead = ["machine type", *(f"`{r.label}`" for r in runs)]
    md += ["", "## Per machine type (Ω)", "", "| " + " | ".join(thead) + " |",
           "|" + "---|" * len(thead)]
    for mt in types:
        md.append("| " + " | ".join([mt, *("FAILED" if mt in r.failed
                                            else _f(r.machine_omega(mt)) for r in runs)])
                  + " |")
    return "\n".join(md) + "\n"
