"""After a search: the final pick (:mod:`automl_asd.search.selection`) and "does the choice carry?".

:func:`make_picker` applies the space's final-pick rule to the complete trials; for
``bootstrap_lower_bound`` it resamples the top trials' per-clip development scores, which each
trial keeps with its last checkpoint (only a trial without them is re-scored; trained networks
come from the representation cache). Whatever the rule, it also records how sure the pick is:
how often each top recipe beats the chosen one on the same resamples.

:func:`novel_check` runs only after ``recipe.json`` is written, on labelled novel machine types
that the search never sees (``search --novel ROOT``): the top-K complete trials, the frozen
recipe and the space's reference recipe are applied there. It reports each trial's in-search Ω
next to its novel Ω, the Spearman ρ between them, the frozen recipe's novel Ω, the best novel Ω
among those trials and the regret (best − frozen). Nothing it computes flows back into the
choice.

Pure library code (no Ray): both take a :class:`~automl_asd.search.config.BatchEvaluator`
(the Ray layer runs a batch as parallel tasks; :func:`~automl_asd.search.config.one_by_one`
runs it in the calling process). Both read the search's
:class:`~automl_asd.search.trials.TrialRecord` objects, never the trial table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from automl_asd import ground_truth
from automl_asd.data import DataError, Domain, Label, scan
from automl_asd.evaluation.metrics import undefined_reason
from automl_asd.io import search_report as io
from automl_asd.pipeline import warn_thin_training
from automl_asd.progress import kept_warnings
from automl_asd.search.config import BatchEvaluator
from automl_asd.search.selection import (
    NEAR_TIE,
    SMALL_TEST_GROUP,
    bootstrap_table,
    distinct_key,
    pick_margins,
    pick_trial,
    ranked_distinct,
    smallest_group,
)
from automl_asd.search.trials import TrialRecord, is_missing, trial_recipe

if TYPE_CHECKING:
    from automl_asd.data import MachineData

__all__ = ["make_picker", "check_novel", "check_scorable", "check_search_data", "SearchData",
           "novel_check", "carry_summary", "top_distinct", "NOVEL_TABLE"]

logger = logging.getLogger(__name__)

NOVEL_TABLE = "novel_check.parquet"


def top_distinct(done: Sequence[TrialRecord], k: int, frozen_id: str
                 ) -> tuple[list[TrialRecord], str | None]:
    """The ``k`` best complete trials with distinct recipes, plus the frozen trial's recipe.

    TPE proposes the same point again once it has converged; re-scoring identical recipes on
    the novel types would only repeat rows and inflate Spearman's ρ. Trials are told apart as
    in the final pick (:func:`~automl_asd.search.selection.ranked_distinct`: the best-ranked
    trial of each behaviour hash, else recipe hash; trials with neither, from an older
    version, are all kept). Returns the records and the frozen trial's key
    (:func:`~automl_asd.search.selection.distinct_key`; None when it has none).
    """
    rows = [{**_keys(r), "objective": r.objective, "order": r.order, "record": r}
            for r in done]
    ranked: list[TrialRecord] = [row["record"] for row in ranked_distinct(rows)]
    frozen = [r for r in done if r.trial_id == frozen_id]
    frozen_hash = distinct_key(_keys(frozen[0])) if frozen else None
    top = ranked[:max(1, k)]
    if frozen_hash is not None:
        have_frozen = frozen_hash in {distinct_key(_keys(r)) for r in top}
    else:
        have_frozen = frozen_id in {r.trial_id for r in top}
    if not have_frozen:
        top = [*top, *frozen]
    return top, frozen_hash


def _keys(record: TrialRecord) -> dict[str, str | None]:
    return {"recipe_hash": record.recipe_hash, "behaviour_hash": record.behaviour_hash}


def make_picker(cfg: Any, machines: Mapping[str, MachineData], evaluate: BatchEvaluator
                ) -> Callable[[Sequence[TrialRecord]], str]:
    """The final-pick function ``complete trials -> trial id`` of ``cfg.space.selection``.

    The top distinct candidates' per-clip development scores are those each trial kept with
    its last checkpoint (:meth:`TrialRecord.kept_clip_scores`, read for the candidates only).
    A ``bootstrap_lower_bound`` pick resamples them; only candidates without them (e.g. trials
    of an older version, resumed) are re-scored, all in one batch, and a failure while
    re-scoring falls back to the best trial, with a warning. Whatever the pick, the kept
    scores also tell how sure it is (:func:`~automl_asd.search.selection.pick_margins`: how
    often each candidate beats the chosen trial over paired bootstrap resamples); a ``best``
    pick re-scores nothing for that (a candidate without kept scores is left out). The rule,
    the choice, the lower bounds and the margins go to ``<out>/search.json`` (the report shows
    them).
    """

    rule = cfg.space.selection
    out = Path(cfg.out).expanduser().resolve()

    def pick(done: Sequence[TrialRecord]) -> str:
        rows = [{**r.row(), "objective": r.objective} for r in done]
        best, _ = pick_trial(rows, rule)

        def record(fields: Mapping[str, Any]) -> None:
            meta = io.read_search_meta(out) or {}
            io.write_search_meta(out, {**meta, "selection": {
                "rule": rule.describe(), "best_by_objective": best, **fields,
                "near_tie": NEAR_TIE}})
        by_id = {r.trial_id: r for r in done}
        missing: list[TrialRecord] = []
        try:
            # The candidates pick_trial considers: the top distinct recipes, not copies of one.
            candidates = [by_id[str(row["trial_id"])]
                          for row in ranked_distinct(rows)[:rule.top]]
            # Read only the candidates' kept scores (one checkpoint each, maybe remote).
            kept = {r.trial_id: r.kept_clip_scores() for r in candidates}
            scores: dict[str, Any] = {t: c for t, c in kept.items() if c}
            if rule.pick != "best":
                missing = [r for r in candidates if r.trial_id not in scores]
                logger.info("final pick %s among the top %d distinct recipes: %d with "
                            "per-clip scores kept by their trial, %d to re-score on the %d "
                            "development types", rule.pick, len(candidates), len(scores),
                            len(missing), len(machines))
                scores.update(_rescore(cfg, missing, machines, evaluate))
            table = bootstrap_table(rows, rule, scores, seed=cfg.seed)
            chosen, bounds = pick_trial(rows, rule, table=table)
        except Exception as exc:  # the pick must not lose a finished search
            logger.warning("final pick %s failed (%s); freezing the best trial", rule.pick, exc)
            # recorded, so that no earlier pick's figures in search.json stand for this one
            record({"chosen": best, "lower_bounds": {}, "rescored": [], "margins": {},
                    "failed": f"{type(exc).__name__}: {exc}"})
            return best
        try:
            margins = pick_margins(table, chosen, rule.quantile)
            smallest = min((smallest_group(c) for t, c in scores.items() if t in table),
                           default=None)
        except Exception as exc:  # a read-out only: it never changes or loses the choice
            logger.warning("how sure the final pick is could not be measured (%s)", exc)
            margins, smallest = {}, None
        record({"chosen": chosen, "lower_bounds": bounds,
                "rescored": [r.trial_id for r in missing], "margins": margins,
                "smallest_group": smallest, "small_group_below": SMALL_TEST_GROUP})
        logger.info("final pick %s: trial %s (best by objective: %s)", rule.pick, chosen, best)
        return chosen

    return pick


def _rescore(cfg: Any, missing: Sequence[TrialRecord], machines: Mapping[str, MachineData],
             evaluate: BatchEvaluator) -> dict[str, Any]:
    """Per-clip development scores of ``missing`` trials, re-scored in one batch."""
    if not missing:
        return {}

    def done_one(i: int, result: Any, seconds: float) -> None:
        logger.info("final pick: trial %s re-scored in %.0f s", missing[i].trial_id, seconds)

    results = evaluate([trial_recipe(cfg.space, r.config, name="rescore") for r in missing],
                       machines, cache_dir=cfg.cache_dir, device=cfg.device, fidelity=1.0,
                       on_done=done_one)
    return {record.trial_id: result.per_clip
            for record, result in zip(missing, results, strict=True)
            if getattr(result, "per_clip", None)}


def _scan_novel(root: Path) -> dict[str, MachineData]:
    """The novel types under ``root``, labelled from the evaluator's files when it has them."""
    machines = scan(root)
    return (ground_truth.attach(machines, root)
            if (root / ground_truth.GROUND_TRUTH_DATA_DIR).is_dir() else machines)


def check_scorable(machines: Mapping[str, MachineData], where: str, *,
                   evaluator_files: bool) -> None:
    """:class:`~automl_asd.data.DataError` (one line, starting with ``where``, e.g.
    ``--data ROOT``) unless every machine type has test clips, each with a label and a domain,
    and both normal and anomalous ones: what the official score needs. ``evaluator_files``:
    the evaluator's ground-truth folders are an accepted source of labels there."""
    for mt, machine in sorted(machines.items()):
        if not machine.test:
            raise DataError(f"{where}: {mt} has no test clips (the official score needs "
                            "labelled test clips)")
        unlabelled = [c for c in machine.test
                      if c.label is Label.UNKNOWN or c.domain is Domain.UNKNOWN]
        if unlabelled:
            raise DataError(
                f"{where}: {len(unlabelled)} test clip(s) of {mt} without label or domain "
                f"(e.g. {unlabelled[0].path.name}); scoring needs labelled test names "
                "(section_XX_<domain>_test_<label>_...)"
                + (f" or the evaluator's {ground_truth.GROUND_TRUTH_DATA_DIR}/ and "
                   f"{ground_truth.GROUND_TRUTH_DOMAIN_DIR}/ folders beside the machine types"
                   if evaluator_files else
                   # found 2026-12-07: an evaluation set given to search said nothing more
                   "; an evaluation set is not searched on: search the development set and "
                   "give labelled types it does not hold to --novel (which also reads the "
                   f"evaluator's {ground_truth.GROUND_TRUTH_DATA_DIR}/ folders), or score it "
                   "with apply"))
        labels = {c.label for c in machine.test}
        if labels != {Label.NORMAL, Label.ANOMALY}:
            only = next(iter(labels)).value
            raise DataError(f"{where}: every test clip of {mt} is {only}; AUC needs normal and "
                            "anomalous test clips")
        for section in sorted({c.section for c in machine.test}):
            clips = [c for c in machine.test if c.section == section]
            reason = undefined_reason([c.label is Label.ANOMALY for c in clips],
                                      [c.domain.value for c in clips])
            if reason is not None:
                raise DataError(f"{where}: {mt} section {section}: {reason}")


@dataclass(frozen=True)
class SearchData:
    """A search's development types and its ``--novel`` types (``None`` without
    ``--novel``), scanned and checked once: the command checks them before it creates the run
    folder and hands them on, so that the search does not scan both trees again."""

    machines: dict[str, MachineData]
    novel: dict[str, MachineData] | None = None
    #: the WARNING lines the check logged (thin training data): trials do not log them again
    warnings: tuple[str, ...] = ()

    def only(self, machine_types: Sequence[str]) -> SearchData:
        """These development types alone (a leave-one-out fold), with the same ``--novel``
        (checked against every development type, so against the fold's too)."""
        return SearchData({mt: self.machines[mt] for mt in machine_types}, self.novel,
                          self.warnings)


def check_search_data(data: str | Path, machine_types: Sequence[str] | None = None,
                      novel: str | Path | None = None) -> SearchData:
    """Scan the development root ``data`` (only ``machine_types`` when given) and ``novel``;
    :class:`~automl_asd.data.DataError` (one line) unless every development type can be
    scored (:func:`check_scorable`) and ``novel`` passes :func:`check_novel`. Paths are
    resolved: the clips' paths must hold in workers whose current folder differs."""
    machines = scan(Path(data).expanduser().resolve(),
                    machine_types=list(machine_types) if machine_types else None)
    if not machines:
        raise DataError(f"--data {data}: no machine types found (expected <type>/train, test)")
    check_scorable(machines, f"--data {data}", evaluator_files=False)
    with kept_warnings() as warned:  # once here; trials that report the same are not logged
        for mt, machine in sorted(machines.items()):
            warn_thin_training(mt, [c.domain for c in machine.train])
    checked_novel = check_novel(novel, tuple(sorted(machines))) if novel is not None else None
    return SearchData(machines, checked_novel, tuple(warned))


def check_novel(root: str | Path, dev_types: Sequence[str]) -> dict[str, MachineData]:
    """The labelled novel types under ``root`` (``search --novel``), checked before the search
    starts so that a bad ``--novel`` cannot cost a finished search its check.

    Raises :class:`~automl_asd.data.DataError` (one line, naming ``root``) when ``root`` holds
    no machine type, a type the search develops on (``dev_types``: the check would measure
    development performance and call it "novel"), a type without test clips, a test clip
    without label or domain (neither a labelled name nor the evaluator's
    ``ground_truth_data/`` + ``ground_truth_domain/`` under ``root``), or a type whose test
    clips are all normal or all anomalous (no AUC)."""
    where = Path(root).expanduser().resolve()
    try:
        machines = _scan_novel(where)
    except DataError as exc:  # an empty tree, a bad name, bad evaluator files
        raise DataError(f"--novel {root}: {exc}") from exc
    if not machines:
        raise DataError(f"--novel {root}: no machine types found (expected <type>/train, "
                        "test)")
    shared = sorted(set(machines) & set(dev_types))
    if shared:
        raise DataError(
            f"--novel {root}: {', '.join(shared)} {'is a' if len(shared) == 1 else 'are'} "
            f"development type{'' if len(shared) == 1 else 's'} of this search; 'does the "
            "choice carry?' needs machine types the search never sees")
    check_scorable(machines, f"--novel {root}", evaluator_files=True)
    return machines


def novel_check(cfg: Any, outcome: Any, evaluate: BatchEvaluator,
                novel: Mapping[str, MachineData] | None = None) -> dict[str, Path]:
    """Apply the top ``cfg.novel_top_k`` complete trials, the frozen recipe and the reference
    recipe to the labelled novel types under ``cfg.novel`` (one batch: an executor runs them
    at once); write ``novel_check.parquet`` and append "does the choice carry?" to
    ``search_report.md``. ``novel``: those types as :func:`check_novel` returned them before
    the search (default: checked here). Returns the written files."""

    space = cfg.space
    root = Path(cfg.novel).expanduser().resolve()
    if novel is None:
        novel = check_novel(root, outcome.machine_types)
    done = [r for r in outcome.records if r.status == "complete"]
    top, frozen_hash = top_distinct(done, int(cfg.novel_top_k), outcome.best_trial_id)
    recipes = [trial_recipe(space, record.config, name="novel_check") for record in top]
    reference = space.to_recipe(space.reference_point(), name=space.reference_name)
    # the reference among the top trials is not applied a second time (found 2026-12-07)
    ref_hash = reference.behaviour_hash()
    ref_at = next((i for i, r in enumerate(recipes) if r.behaviour_hash() == ref_hash), None)
    if ref_at is None:
        recipes.append(reference)
    logger.info("does the choice carry? applying the top %d distinct recipes%s to the %d "
                "novel types", len(top), "" if ref_at is not None else " and the reference",
                len(novel))
    finished = 0

    def done_one(i: int, result: Any, seconds: float) -> None:
        nonlocal finished
        finished += 1
        what = f"trial {top[i].trial_id}" if i < len(top) else "the reference"
        logger.info("does the choice carry? %d/%d %s: novel Ω %.4f (%.0f s)", finished,
                    len(recipes), what, float(result.omega), seconds)

    results = evaluate(recipes, novel, cache_dir=cfg.cache_dir, device=cfg.device,
                       fidelity=1.0, on_done=done_one)
    out = Path(outcome.run_dir)
    # the pick's near ties, as frozen beside it (search.json: selection.tie_recipes)
    selection = (io.read_search_meta(out) or {}).get("selection")
    ties = set(io.tie_recipes(selection)) if isinstance(selection, Mapping) else set()
    rows: list[dict[str, Any]] = []
    for record, recipe, result in zip(top, recipes, results, strict=False):
        rows.append({"trial_id": record.trial_id, "detector": recipe.detector.name,
                     "in_search_omega": record.omega,
                     "in_search_objective": record.objective,
                     "novel_omega": float(result.omega),
                     "frozen": (record.trial_id == outcome.best_trial_id
                                or (frozen_hash is not None
                                    and distinct_key(_keys(record)) == frozen_hash)),
                     "near_tie": record.trial_id in ties,
                     "is_reference": record.is_reference,
                     "params": str(space.coerce_point(
                         {k: v for k, v in record.config.items() if not is_missing(v)}))})
    ref_omega = float(results[-1 if ref_at is None else ref_at].omega)
    df = pd.DataFrame(rows)
    summary = carry_summary(df, reference_novel_omega=ref_omega)
    if ties:  # how many near ties were frozen: the top-K scored here may hold only some
        summary["near_ties_frozen"] = float(len(ties))
    path = out / NOVEL_TABLE
    df.to_parquet(path, index=False)
    report = io.append_novel_section(out, df, summary, novel_root=str(root),
                                     novel_types=sorted(novel),
                                     reference_label=space.reference_label)
    logger.info("does the choice carry? frozen novel Ω %.4f, best %.4f, regret %.4f, ρ %.3f",
                summary["frozen_novel_omega"], summary["best_novel_omega"], summary["regret"],
                summary["spearman_rho"])
    return {"novel": path, "report": report}


def carry_summary(df: pd.DataFrame, *, reference_novel_omega: float | None = None
                  ) -> dict[str, float]:
    """ρ (Spearman, in-search Ω vs novel Ω), frozen / best novel Ω and regret of a
    ``novel_check`` table."""
    from scipy.stats import spearmanr  # noqa: PLC0415  (heavy third-party)

    frozen = df[df["frozen"]]
    frozen_omega = float(frozen["novel_omega"].iloc[0]) if len(frozen) else math.nan
    best = float(df["novel_omega"].max()) if len(df) else math.nan
    rho = math.nan
    if len(df) >= 3 and df["in_search_omega"].nunique() > 1 and df["novel_omega"].nunique() > 1:
        rho = float(spearmanr(df["in_search_omega"], df["novel_omega"]).statistic)
    out = {"frozen_novel_omega": frozen_omega, "best_novel_omega": best,
           "regret": best - frozen_omega, "spearman_rho": rho, "n_trials": float(len(df))}
    if "near_tie" in df.columns and df["near_tie"].any():  # how did the pick's near ties do?
        out["best_near_tie_novel_omega"] = float(df.loc[df["near_tie"], "novel_omega"].max())
    if reference_novel_omega is not None:
        out["reference_novel_omega"] = float(reference_novel_omega)
    return out
