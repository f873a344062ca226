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
from automl_asd.search.config import SearchConfig, SearchOutcome
from automl_asd.search.space import SearchSpace
from automl_asd.search.trials import TrialRecord, rank_key, table, trial_recipe

if TYPE_CHECKING:
    from automl_asd.recipe import DataFingerprint, Recipe

__all__ = ["FreezeError", "SearchProvenance", "Pick", "complete", "ranked", "best_record",
           "reference_omega", "freeze", "freeze_search"]

logger = logging.getLogger(__name__)

#: The final pick: complete records -> the chosen trial id (:mod:`automl_asd.search.selection`).
Pick = Callable[[Sequence[TrialRecord]], str]


class FreezeError(AutomlAsdError, ValueError):
    """No trial can be frozen: none finished at full fidelity, or the chosen trial's recipe
    cannot be rebuilt as it ran."""


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
        raise FreezeError(f"no trial finished at full fidelity ({len(records)} trials; "
                          f"errors: {errors[:3]}); if the search was interrupted, continue "
                          "it with --resume")
    if pick is None:
        return done[0]
    chosen = pick(sorted(complete(records), key=lambda r: r.order))
    for record in done:
        if record.trial_id == chosen:
            return record
    raise FreezeError(f"the final pick chose trial {chosen!r}, which is not a complete trial")


def freeze(records: Sequence[TrialRecord], space: SearchSpace, provenance: SearchProvenance,
           *, pick: Pick | None = None) -> Recipe:
    """The frozen recipe of the best (or picked) trial, with its description and provenance.

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
    description = (f"Best of {len(records)} trials of search space {space.name!r} "
                   f"(seed {provenance.seed}) on development types "
                   f"{', '.join(provenance.machine_types)}: Ω={best.omega:.4f}"
                   + (f" (reference recipe {space.reference_name} {ref:.4f})"
                      if ref is not None else "")
                   + f"; versions {json.dumps(versions, sort_keys=True)}")
    named = dataclasses.replace(ran, name=f"search_{space.name}", description=description)
    return named.with_provenance(
        source="search", space_name=space.name, space_sha256=space.sha256,
        dev_machine_types=list(provenance.machine_types), objective=best.omega,
        trial_id=best.trial_id, created=provenance.created, versions=versions,
        dev_data=None if provenance.dev_data is None
        else dataclasses.asdict(provenance.dev_data))


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
        recipe = freeze(records, space, provenance, pick=lambda _: best.trial_id)
    except FreezeError as exc:
        io.write_trials(out, df)
        raise FreezeError(f"{out}: {exc}") from None
    best_id, best_omega = best.trial_id, best.omega
    ref = reference_omega(records)
    files = {"recipe": io.write_recipe(out, recipe), "trials": io.write_trials(out, df),
             "plot": io.plot_omega(out, df, reference_name=space.reference_name)}
    files["report"] = io.write_search_report(
        out, df, recipe=recipe, best_trial_id=best_id,
        meta={**(io.read_search_meta(out) or {}), "finished": finished},
        reference_omega=ref, reference=space.describe_reference(), plot=files["plot"])
    logger.info("best trial %s: Ω=%.4f (%s: %s); recipe written to %s", best_id, best_omega,
                space.describe_reference(), ref, files["recipe"])
    return SearchOutcome(run_dir=out, recipe=recipe, best_omega=best_omega,
                         best_trial_id=best_id, reference_omega=ref, trials=df,
                         machine_types=provenance.machine_types, files=files,
                         reference=space.describe_reference(), records=tuple(records))

