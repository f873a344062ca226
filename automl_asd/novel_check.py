"""After a search: the final pick (:mod:`automl_asd.selection`) and "does the choice carry?".

:func:`make_picker` applies the space's final-pick rule to the complete trials; for
``bootstrap_lower_bound`` it re-scores the top trials on the development types (their trained
networks come from the representation cache) to get per-clip scores.

:func:`novel_check` runs only after ``recipe.json`` is written, on labelled novel machine types
that the search never sees (``search --novel ROOT``): the top-K complete trials, the frozen
recipe and the space's reference recipe are applied there. It reports each trial's in-search Ω
next to its novel Ω, the Spearman ρ between them, the frozen recipe's novel Ω, the best novel Ω
among those trials and the regret (best − frozen). Nothing it computes flows back into the
choice.

Pure library code (no Ray): the evaluator runs in the calling process.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from automl_asd.trials import is_missing, to_native

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.recipe import Recipe
    from automl_asd.search_space import SearchSpace

__all__ = ["trial_recipe", "make_picker", "novel_check", "carry_summary", "NOVEL_TABLE"]

logger = logging.getLogger(__name__)

NOVEL_TABLE = "novel_check.parquet"
_PARAM = "param:"



def trial_recipe(space: SearchSpace, row: Mapping[str, Any], name: str) -> Recipe:
    """The recipe of one trial-table row (its ``param:<dimension>`` columns)."""
    params = space.coerce_point({str(k)[len(_PARAM):]: to_native(v) for k, v in row.items()
                                 if str(k).startswith(_PARAM) and not is_missing(v)})
    return space.to_recipe(params, name=name)


def _ranked(done: pd.DataFrame) -> pd.DataFrame:
    key = "objective" if "objective" in done.columns else "omega"
    return done.sort_values([key, "order"], ascending=[False, True], kind="stable")


def top_distinct(done: pd.DataFrame, k: int, frozen_id: str
                 ) -> tuple[pd.DataFrame, str | None]:
    """The ``k`` best complete trials with distinct recipes, plus the frozen trial's recipe.

    TPE proposes the same point again once it has converged; re-scoring identical recipes on
    the novel types would only repeat rows and inflate Spearman's ρ. Trials are told apart by
    their recipe content hash (``recipe_hash``) where the table has it. Returns the rows and
    the frozen trial's recipe hash (None when the table has no hashes).
    """
    ranked = _ranked(done)
    frozen = ranked[ranked["trial_id"] == frozen_id]
    frozen_hash: str | None = None
    if "recipe_hash" in ranked.columns:
        if len(frozen):
            frozen_hash = str(frozen["recipe_hash"].iloc[0])
        ranked = ranked[~ranked["recipe_hash"].astype(str).duplicated(keep="first")]
    top = ranked.head(max(1, k))
    have = set(top["trial_id"])
    if frozen_hash is not None:
        have_frozen = frozen_hash in set(top["recipe_hash"].astype(str))
    else:
        have_frozen = frozen_id in have
    if not have_frozen:
        top = pd.concat([top, frozen])
    return top, frozen_hash


def make_picker(cfg: Any, machines: Mapping[str, MachineData], evaluator: Any
                ) -> Callable[[pd.DataFrame], str]:
    """The final-pick function ``complete trials -> trial id`` of ``cfg.space.selection``.

    Per-trial lower bounds of a bootstrap pick are added to ``<out>/search.json`` (the report
    shows them). A failure while re-scoring falls back to the best trial, with a warning.
    """
    from automl_asd.io import search_report as io
    from automl_asd.selection import pick_trial

    rule = cfg.space.selection
    out = Path(cfg.out).expanduser().resolve()

    def pick(done: pd.DataFrame) -> str:
        rows = []
        for _, r in done.iterrows():
            row = r.to_dict()
            row.setdefault("objective", row.get("omega"))
            rows.append(row)
        best, _ = pick_trial(rows, rule)
        if rule.pick == "best":
            return best
        scores: dict[str, Any] = {}
        try:
            for _, row in _ranked(done).head(rule.top).iterrows():
                recipe = trial_recipe(cfg.space, row.to_dict(), name="rescore")
                result = evaluator(recipe, machines, cache_dir=cfg.cache_dir,
                                   device=cfg.device, fidelity=1.0)
                if getattr(result, "per_clip", None):
                    scores[str(row["trial_id"])] = result.per_clip
            chosen, bounds = pick_trial(rows, rule, clip_scores=scores, seed=cfg.seed)
        except Exception as exc:  # the pick must not lose a finished search
            logger.warning("final pick %s failed (%s); freezing the best trial", rule.pick, exc)
            return best
        meta = io.read_search_meta(out) or {}
        io.write_search_meta(out, {**meta, "selection": {
            "rule": rule.describe(), "best_by_objective": best, "chosen": chosen,
            "lower_bounds": bounds}})
        logger.info("final pick %s: trial %s (best by objective: %s)", rule.pick, chosen, best)
        return chosen

    return pick


def _scan_novel(root: Path) -> dict[str, MachineData]:
    from automl_asd import ground_truth
    from automl_asd.data import scan

    machines = scan(root)
    return (ground_truth.attach(machines, root)
            if (root / ground_truth.GROUND_TRUTH_DATA_DIR).is_dir() else machines)


def novel_check(cfg: Any, outcome: Any, evaluator: Any) -> dict[str, Path]:
    """Apply the top ``cfg.novel_top_k`` complete trials, the frozen recipe and the reference
    recipe to the labelled novel types under ``cfg.novel``; write ``novel_check.parquet`` and
    append "does the choice carry?" to ``search_report.md``. Returns the written files."""
    from automl_asd.io import search_report as io

    space = cfg.space
    root = Path(cfg.novel).expanduser().resolve()
    novel = _scan_novel(root)
    table = outcome.trials
    done = table[table["status"] == "complete"]
    top, frozen_hash = top_distinct(done, int(cfg.novel_top_k), outcome.best_trial_id)
    rows: list[dict[str, Any]] = []
    for _, r in top.iterrows():
        row = r.to_dict()
        recipe = trial_recipe(space, row, name="novel_check")
        result = evaluator(recipe, novel, cache_dir=cfg.cache_dir, device=cfg.device,
                           fidelity=1.0)
        params = space.coerce_point({str(k)[len(_PARAM):]: v for k, v in row.items()
                                     if str(k).startswith(_PARAM) and not is_missing(v)})
        rows.append({"trial_id": str(row["trial_id"]), "detector": recipe.detector.name,
                     "in_search_omega": float(row["omega"]),
                     "in_search_objective": float(row.get("objective", row["omega"])),
                     "novel_omega": float(result.omega),
                     "frozen": (str(row["trial_id"]) == outcome.best_trial_id
                                or (frozen_hash is not None
                                    and row.get("recipe_hash") == frozen_hash)),
                     "is_reference": bool(row.get("is_reference", row.get("is_baseline", False))),
                     "params": str(params)})
    reference = space.to_recipe(space.reference_point(), name=space.reference_name)
    ref_omega = float(evaluator(reference, novel, cache_dir=cfg.cache_dir, device=cfg.device,
                                fidelity=1.0).omega)
    df = pd.DataFrame(rows)
    summary = carry_summary(df, reference_novel_omega=ref_omega)
    out = Path(outcome.run_dir)
    path = out / NOVEL_TABLE
    df.to_parquet(path, index=False)
    report = io.append_novel_section(out, df, summary, novel_root=str(root),
                                     novel_types=sorted(novel))
    logger.info("does the choice carry? frozen novel Ω %.4f, best %.4f, regret %.4f, ρ %.3f",
                summary["frozen_novel_omega"], summary["best_novel_omega"], summary["regret"],
                summary["spearman_rho"])
    return {"novel": path, "report": report}


def carry_summary(df: pd.DataFrame, *, reference_novel_omega: float | None = None
                  ) -> dict[str, float]:
    """ρ (Spearman, in-search Ω vs novel Ω), frozen / best novel Ω and regret of a
    ``novel_check`` table."""
    from scipy.stats import spearmanr

    frozen = df[df["frozen"]]
    frozen_omega = float(frozen["novel_omega"].iloc[0]) if len(frozen) else math.nan
    best = float(df["novel_omega"].max()) if len(df) else math.nan
    rho = math.nan
    if len(df) >= 3 and df["in_search_omega"].nunique() > 1 and df["novel_omega"].nunique() > 1:
        rho = float(spearmanr(df["in_search_omega"], df["novel_omega"]).statistic)
    out = {"frozen_novel_omega": frozen_omega, "best_novel_omega": best,
           "regret": best - frozen_omega, "spearman_rho": rho, "n_trials": float(len(df))}
    if reference_novel_omega is not None:
        out["reference_novel_omega"] = float(reference_novel_omega)
    return out
