"""Leave-one-out over the development types: one search per held-out type, each frozen recipe
then scored on the type its search never saw. The held-out Ω next to the in-search Ω is the
price of first shot.

The search and the held-out evaluation are handed in (:mod:`automl_asd.orchestration.tune`
passes Ray Tune and a Ray task), so this module runs no trial itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl_asd.components.files import atomic_write_text
from automl_asd.io import search_report as io
from automl_asd.provenance import data_fingerprint
from automl_asd.recipe import load_recipe
from automl_asd.search.config import (
    LeaveOneOutOutcome,
    SearchConfig,
    SearchOutcome,
    check_same_search,
    run_meta,
)
from automl_asd.search.freeze import NothingFinishedError
from automl_asd.search.trials import pending_reruns

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.evaluation.objective import ObjectiveResult
    from automl_asd.recipe import Recipe

__all__ = ["run_leave_one_out", "fold_dir", "fold_storage", "SearchFn", "EvaluateOnFn"]

logger = logging.getLogger(__name__)

#: Written into a fold's folder once its search finished uninterrupted (``--resume`` reuses
#: only such folds).
FOLD_DONE = "fold_done.json"

#: Runs (or resumes) one fold's search.
SearchFn = Callable[[SearchConfig], SearchOutcome]
#: Scores recipes (full fidelity) on one held-out type: ``(recipes, held-out data) -> results``.
EvaluateOnFn = Callable[[Sequence["Recipe"], Mapping[str, "MachineData"]],
                        list["ObjectiveResult"]]


def fold_dir(out: Path, held: str) -> Path:
    """``<out>/loo/<held-out type>``: one fold's run folder."""
    return out / "loo" / held


def fold_storage(storage: str | None, held: str) -> str | None:
    """The fold's search storage under ``--storage`` (``None``: the fold's run folder)."""
    return f"{storage.rstrip('/')}/loo/{held}" if storage else None


def trials_per_fold(table: Any) -> int | str:
    """The trials asked for per fold: one number, or e.g. "4 to 6" when a ``--resume`` with
    another ``--trials`` reused finished folds with their own count."""
    counts = sorted({int(n) for n in table["trials"]}) if len(table) else []
    if len(counts) == 1:
        return counts[0]
    return f"{counts[0]} to {counts[-1]}" if counts else 0


def run_leave_one_out(cfg: SearchConfig, machines: Mapping[str, MachineData], *,
                      search: SearchFn, evaluate_on: EvaluateOnFn,
                      has_state: Callable[[str, Path], bool]) -> LeaveOneOutOutcome:
    """One search per development type in ``machines`` with that type held out (``search``),
    then the fold's frozen recipe and the space's reference recipe scored on the held-out type
    (``evaluate_on``).

    Folds are written to ``<out>/loo/<held-out type>/``; with ``cfg.resume`` finished folds are
    read back and an interrupted fold is resumed when ``has_state(held, fold_dir)`` says the
    executor kept its state.
    """
    import pandas as pd  # noqa: PLC0415  (heavy: only when a table is built)


    out = cfg.out.expanduser().resolve()
    mtypes = tuple(sorted(machines))
    if len(mtypes) < 2:
        raise ValueError(f"--leave-one-out needs at least 2 development types, found {mtypes}")
    rows: list[dict[str, Any]] = []
    folds: dict[str, SearchOutcome] = {}
    reference = cfg.space.to_recipe(cfg.space.reference_point(), name=cfg.space.reference_name)
    for held in mtypes:
        fdir = fold_dir(out, held)
        others = tuple(m for m in mtypes if m != held)
        # an interrupted fold also wrote recipe.json and trials.parquet (its partial pick):
        # only the marker written after an uninterrupted search says the fold is finished
        done = all((fdir / name).is_file() for name in ("recipe.json", "trials.parquet",
                                                        FOLD_DONE))
        if cfg.resume and done:
            # a finished fold is reused only for the same search (space, seed, types, files)
            previous = io.read_search_meta(fdir) or {}
            digest = (data_fingerprint({mt: machines[mt] for mt in others}).files_sha256
                     if "dev_files_sha256" in previous else None)
            check_same_search(fdir, previous, run_meta(replace(cfg, machine_types=others),
                                                       others, {}, digest))
            ran = previous.get("trials")
            asked = int(ran) if isinstance(ran, int) else cfg.trials
            if ran is not None and ran != cfg.trials:
                logger.warning("fold %s: finished with %s trials, reused as it is (--trials %d "
                               "applies to folds searched now)", held, ran, cfg.trials)
            recipe = load_recipe(fdir / "recipe.json")
            outcome = SearchOutcome(run_dir=fdir, recipe=recipe,
                                    best_omega=float(recipe.provenance.objective or np.nan),
                                    best_trial_id=str(recipe.provenance.trial_id),
                                    reference_omega=None,
                                    trials=pd.read_parquet(fdir / "trials.parquet"),
                                    machine_types=others,
                                    reference=cfg.space.describe_reference())
            logger.info("fold %s: already finished, reusing %s", held, fdir)
        else:
            asked = cfg.trials
            fold_cfg = replace(cfg, out=fdir, machine_types=others, prewarm=False,
                               resume=cfg.resume and has_state(held, fdir),
                               storage=fold_storage(cfg.storage, held))
            logger.info("fold %s: searching on %s", held, ", ".join(others))
            try:
                outcome = search(fold_cfg)
            except NothingFinishedError as exc:
                if cfg.time_budget_s is None:
                    raise
                # the fold's budget ended before any trial finished: the other folds go on
                # (found 2026-12-07: one such fold ended the whole command)
                logger.warning("fold %s: %s", held, exc)
                rows.append({"held_out": held, "trials": asked, "finished": False,
                             "in_search_omega": np.nan, "held_out_omega": np.nan,
                             "gap": np.nan, "reference_held_out_omega": np.nan,
                             "detector": None, "trial_id": None})
                continue
        if outcome.interrupted:
            raise KeyboardInterrupt(f"leave-one-out fold {held} interrupted; continue with "
                                    "--resume")
        # a fold its time budget stopped short (trials not made, or made but stopped before
        # their first result) is not finished: --resume continues it, as it does a search
        made, again = len(outcome.trials), pending_reruns(outcome.records)
        partial = not done and ((cfg.time_budget_s is not None and made < cfg.trials) or again
                                or outcome.unfinished > 0)
        if partial:
            logger.info("fold %s: stopped by the time budget (%d of %d trials made%s); "
                        "--resume continues it", held, made, cfg.trials,
                        f", {outcome.unfinished} unfinished" if outcome.unfinished else
                        f", {again} to run again" if again else "")
        elif not done:
            atomic_write_text(fdir / FOLD_DONE, json.dumps(
                {"held_out": held, "trials": len(outcome.trials)}) + "\n")
        folds[held] = outcome
        held_result, ref_result = evaluate_on([outcome.recipe, reference],
                                              {held: machines[held]})
        rows.append({"held_out": held, "trials": asked, "finished": not partial,
                     "in_search_omega": outcome.best_omega,
                     "held_out_omega": held_result.omega,
                     "gap": outcome.best_omega - held_result.omega,
                     "reference_held_out_omega": ref_result.omega,
                     "detector": outcome.recipe.detector.name,
                     "trial_id": outcome.best_trial_id,
                     **{f"held_out/{k}": v for k, v in held_result.flat().items()
                        if "/" in k and not k.startswith("time/")}})
    table = pd.DataFrame(rows)
    files = dict(zip(("table", "report"), io.write_leave_one_out(out, table, meta={
        "space_name": cfg.space.name, "space_sha256": cfg.space.sha256, "seed": cfg.seed,
        "trials_per_fold": trials_per_fold(table), "machine_types": list(mtypes),
        "reference": cfg.space.describe_reference()}), strict=True))
    return LeaveOneOutOutcome(run_dir=out, table=table, folds=folds, files=files)
