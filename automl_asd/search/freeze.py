"""Freeze the best trial of a search into a recipe, and write the search's outputs.

:func:`freeze` rebuilds the recipe from the chosen record's NATIVE config (exactly as the
trial built it, :func:`automl_asd.search.trials.trial_recipe`) and checks its content hash
against the ``recipe_hash`` the trial reported: a mismatch (the space file or the recipe
schema changed since the trial ran) raises :class:`FreezeError` instead of freezing a recipe
that no trial evaluated. The trial table is written for reports only; nothing is read back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from automl_asd.errors import AutomlAsdError
from automl_asd.io import search_report as io
from automl_asd.io.trial_table import RAN_STATUSES
from automl_asd.search.config import SearchConfig, SearchOutcome
from automl_asd.search.selection import NEAR_TIE, near_ties
from automl_asd.search.space import SearchSpace
from automl_asd.search.trials import (
    TrialRecord,
    pending_reruns,
    rank_key,
    table,
    trial_recipe,
)

if TYPE_CHECKING:
    from automl_asd.recipe import DataFingerprint, Recipe

__all__ = ["FreezeError", "NothingFinishedError", "SearchProvenance", "Pick", "complete",
           "ranked", "best_record", "reference_omega", "freeze", "freeze_near_ties",
           "freeze_search"]

logger = logging.getLogger(__name__)

#: The final pick: complete records -> the chosen trial id (:mod:`automl_asd.search.selection`).
Pick = Callable[[Sequence[TrialRecord]], str]


class FreezeError(AutomlAsdError, ValueError):
    """No trial can be frozen: none finished at full fidelity, or the chosen trial's recipe
    cannot be rebuilt as it ran."""


class NothingFinishedError(FreezeError):
    """No trial finished at full fidelity (yet: an interrupt or the time budget came first)."""


@dataclass(frozen=True)
class SearchProvenance:
    """Where a frozen recipe comes from, besides the space and the chosen trial."""

    seed: int
    machine_types: tuple[str, ...]
    versions: Mapping[str, str]
    created: str
    dev_data: DataFingerprint | None = None


def complete(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The records that finished at full fidelity, in the order given."""
    return [r for r in records if r.status == "complete"]


def ranked(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Complete records, highest objective first; ties go to the earliest trial."""
    return sorted(complete(records), key=rank_key)


def reference_omega(records: Sequence[TrialRecord]) -> float | None:
    """Ω of the first complete reference trial (by creation order), else ``None``."""
    refs = sorted((r for r in complete(records) if r.is_reference), key=lambda r: r.order)
    return refs[0].omega if refs else None


def best_record(records: Sequence[TrialRecord], pick: Pick | None = None) -> TrialRecord:
    """The record to freeze: the best by objective, or the one ``pick`` chooses among the
    complete records. Raises :class:`FreezeError` when none is complete."""
    done = ranked(records)
    if not done:
        errors = list(dict.fromkeys(r.error for r in records if r.error is not None))
        listed = f"; errors: {errors[:3]}" if errors else ""
        raise NothingFinishedError(
            f"no trial finished at full fidelity ({len(records)} trial(s){listed}); if the "
            "search was interrupted or its time budget ran out, continue it with --resume "
            "(with a larger --time-budget, or none)")
    if pick is None:
        return done[0]
    chosen = pick(sorted(complete(records), key=lambda r: r.order))
    for record in done:
        if record.trial_id == chosen:
            return record
    raise FreezeError(f"the final pick chose trial {chosen!r}, which is not a complete trial")


def freeze(records: Sequence[TrialRecord], space: SearchSpace, provenance: SearchProvenance,
           *, pick: Pick | None = None, name: str | None = None, title: str | None = None
           ) -> Recipe:
    """The frozen recipe of the best (or picked) trial, with its description and provenance.

    ``name`` (default ``search_<space>``) and ``title`` (the description's opening, default
    "Best of N trials") serve the near ties frozen beside it (:func:`freeze_near_ties`).

    Raises :class:`FreezeError` when no trial is complete, or when the recipe rebuilt from the
    trial's config does not have the content hash the trial reported.
    """
    best = best_record(records, pick)
    ran = trial_recipe(space, best.config)
    if best.recipe_hash is None:
        logger.warning("trial %s reported no recipe_hash (a search from an older version): "
                       "the frozen recipe is not checked against it", best.trial_id)
    elif ran.content_hash() != best.recipe_hash:
        raise FreezeError(
            f"trial {best.trial_id}: the recipe rebuilt from its config has content hash "
            f"{ran.content_hash()[:12]}, but the trial ran {best.recipe_hash[:12]}; the "
            f"search space {space.path} or the recipe format changed since the trial ran. "
            "Freeze with the space file the search began with, or start a new search")
    ref = reference_omega(records)
    versions = dict(provenance.versions)
    description = ((title or f"Best of {_ran(records)} trials")
                   + f" of search space {space.name!r} "
                   f"(seed {provenance.seed}) on development types "
                   f"{', '.join(provenance.machine_types)}: Ω={best.omega:.4f}"
                   + (f" (selection objective {space.selection.objective} "
                      f"{best.objective:.4f})" if space.selection.objective != "mean" else "")
                   + (f" ({space.reference_label} {space.reference_name} {ref:.4f})"
                      if ref is not None else "")
                   + f"; versions {json.dumps(versions, sort_keys=True)}")
    named = dataclasses.replace(ran, name=name or f"search_{space.name}",
                                description=description)
    return named.with_provenance(
        source="search", space_name=space.name, space_sha256=space.sha256,
        dev_machine_types=list(provenance.machine_types), objective=best.omega,
        trial_id=best.trial_id, created=provenance.created, versions=versions,
        behaviour_sha256=named.behaviour_hash(),
        dev_data=None if provenance.dev_data is None
        else dataclasses.asdict(provenance.dev_data))


def _ran(records: Sequence[TrialRecord]) -> int:
    """Trials that ran (complete, stopped early or failed), as the report counts them
    ("after N of M trials"): a trial the time budget or an interrupt stopped before its first
    result (``not_run``) was never compared (found 2026-12-07: a search interrupted after 6 of
    20 trials froze a recipe described as "Best of 7 trials")."""
    return sum(r.status in RAN_STATUSES for r in records)


def _fixed(trial_id: str) -> Pick:
    """A final pick that was made already: ``trial_id`` whatever the records."""
    return lambda _: trial_id


def freeze_near_ties(records: Sequence[TrialRecord], space: SearchSpace,
                     provenance: SearchProvenance, out: Path, chosen: str) -> dict[str, str]:
    """Freeze the near ties of the chosen trial beside ``recipe.json``; ``{trial id: path}``.

    The ties are the recipes that beat the chosen trial on at least ``selection.near_tie`` of
    the bootstrap resamples (``selection.margins`` of ``<out>/search.json``,
    :func:`~automl_asd.search.selection.near_ties`): the development data do not separate
    them from the pick, so they are written as ``<out>/near_ties/<trial id>.json``, ready to be
    applied beside it on labelled machines the search did not see. Their paths (relative to
    ``out``) go to ``selection.tie_recipes``. Files of an earlier freeze of the run are removed
    first; nothing is written when the margins are not those of ``chosen``, the frozen trial
    (a ``search.json`` of an older version may hold another pick's), and a tie whose recipe no
    longer rebuilds as it ran is left out with a warning.
    """
    io.clear_tie_recipes(out)
    meta = io.read_search_meta(out) or {}
    sel = meta.get("selection")
    if not isinstance(sel, Mapping) or sel.get("chosen") != chosen:
        return {}
    margins = sel.get("margins")
    margins = margins if isinstance(margins, Mapping) else {}
    written: dict[str, str] = {}
    for tid in near_ties(margins, float(sel.get("near_tie", NEAR_TIE))):
        share = 100 * float(margins[tid]["beats_chosen"])
        try:
            recipe = freeze(records, space, provenance, pick=_fixed(tid),
                            name=f"search_{space.name}_tie_{tid}",
                            title=(f"Near tie of the frozen trial {chosen} (above it on "
                                   f"{share:.0f} % of bootstrap resamples of the development "
                                   f"clips) among {_ran(records)} trials"))
        except FreezeError as exc:
            logger.warning("near tie %s not written: %s", tid, exc)
            continue
        written[tid] = io.write_tie_recipe(out, tid, recipe)
    io.write_search_meta(out, {**meta, "selection": {**sel, "tie_recipes": written}})
    return written


def freeze_search(cfg: SearchConfig, out: Path, records: Sequence[TrialRecord],
                  provenance: SearchProvenance, *, finished: str,
                  pick: Pick | None = None) -> SearchOutcome:
    """Freeze ``records`` and write ``recipe.json``, ``trials.parquet``/``.csv``, the Ω plot
    and ``search_report.md`` to ``out``. Without a complete trial only the trial table is
    written and :class:`FreezeError` is raised (naming ``out``)."""
    space = cfg.space
    df = table(records, space)
    try:
        best = best_record(records, pick)  # the pick (it may re-score trials) runs once
        recipe = freeze(records, space, provenance, pick=_fixed(best.trial_id))
    except FreezeError as exc:
        io.write_trials(out, df)
        raise type(exc)(f"{out}: {exc}") from None  # NothingFinishedError stays one
    best_id, best_omega = best.trial_id, best.omega
    ref = reference_omega(records)
    files = {"recipe": io.write_recipe(out, recipe), "trials": io.write_trials(out, df),
             "plot": io.plot_omega(
                 out, df, reference_label=f"{space.reference_label} ({space.reference_name})")}
    try:
        if freeze_near_ties(records, space, provenance, out, best_id):
            files["near_ties"] = out / io.NEAR_TIES_DIR
    except Exception as exc:  # written beside the pick: it never fails a finished search
        logger.warning("the near ties of trial %s could not be written (%s)", best_id, exc)
    files["report"] = io.write_search_report(
        out, df, recipe=recipe, best_trial_id=best_id,
        meta={**(io.read_search_meta(out) or {}), "finished": finished},
        reference_omega=ref, reference=space.describe_reference(), plot=files["plot"],
        pending_reruns=pending_reruns(records))
    logger.info("best trial %s: Ω=%.4f (%s: %s); recipe written to %s", best_id, best_omega,
                space.describe_reference(),
                "did not finish" if ref is None else f"Ω={ref:.4f}", files["recipe"])
    return SearchOutcome(run_dir=out, recipe=recipe, best_omega=best_omega,
                         best_trial_id=best_id, reference_omega=ref, trials=df,
                         machine_types=provenance.machine_types, files=files,
                         reference=space.describe_reference(), records=tuple(records))

