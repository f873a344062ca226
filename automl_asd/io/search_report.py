"""Outputs of ``automl-asd search``: run metadata, ``recipe.json``, ``trials.parquet`` (+ the
same table as ``trials.csv``), ``search_report.md``, ``omega_over_trials.png`` and the
leave-one-out table.

"Baseline" in these reports means only the official DCASE autoencoder; a space's starting point
is its *reference recipe*, and each report names it and says whether it is the official
baseline."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from automl_asd.components.files import atomic_write_text, naming_path
from automl_asd.io.trial_table import PARAM_PREFIX, RAN_STATUSES

if TYPE_CHECKING:
    from automl_asd.recipe import Recipe

__all__ = [
    "META_NAME",
    "pick_certainty_line",
    "unfinished_folds",
    "read_search_meta",
    "write_search_meta",
    "DUPLICATES_NAME",
    "write_duplicates",
    "read_duplicates",
    "read_filled_in",
    "read_exhausted",
    "write_recipe",
    "NEAR_TIES_DIR",
    "clear_tie_recipes",
    "tie_recipes",
    "write_tie_recipe",
    "write_trials",
    "plot_omega",
    "write_search_report",
    "append_novel_failure",
    "write_leave_one_out",
    "append_novel_section",
    "family_costs",
]

META_NAME = "search.json"
#: Skipped duplicate proposals of the searcher (:func:`write_duplicates`).
DUPLICATES_NAME = "duplicates.json"
#: The near ties of the frozen trial, frozen beside ``recipe.json`` (:func:`write_tie_recipe`).
NEAR_TIES_DIR = "near_ties"


def read_search_meta(out_dir: Path) -> dict[str, Any] | None:
    """The run's ``search.json`` (space name/sha256, seed, dev types, versions) or ``None``."""
    path = out_dir / META_NAME
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def write_search_meta(out_dir: Path, meta: Mapping[str, Any]) -> Path:
    return atomic_write_text(out_dir / META_NAME, json.dumps(dict(meta), indent=2) + "\n")


def write_duplicates(out_dir: Path, skipped: int, filled: int = 0,
                     exhausted: int | None = None) -> Path:
    """``<out>/duplicates.json``: how many proposals of the search's searcher were not
    launched because they repeated a recipe already run or running, how many untried points
    of a finite space were launched in their stead (``filled``), and, when every recipe of
    the space had run so that the search ended, how many recipes that was (``exhausted``)."""
    doc: dict[str, int] = {"duplicates_skipped": int(skipped), "untried_filled_in": int(filled)}
    if exhausted is not None:
        doc["space_exhausted_after"] = int(exhausted)
    return atomic_write_text(out_dir / DUPLICATES_NAME, json.dumps(doc) + "\n")


def read_duplicates(out_dir: Path) -> int | None:
    """The skipped count :func:`write_duplicates` wrote, or ``None`` (a search without it)."""
    return _duplicates_field(out_dir, "duplicates_skipped")


def read_filled_in(out_dir: Path) -> int:
    """The untried points :func:`write_duplicates` counted (0: none, or an older search)."""
    return _duplicates_field(out_dir, "untried_filled_in") or 0


def read_exhausted(out_dir: Path) -> int | None:
    """The distinct recipes a search ran before every recipe of its space had run and it
    ended (:func:`write_duplicates`); ``None``: it did not end so."""
    return _duplicates_field(out_dir, "space_exhausted_after")


def _duplicates_field(out_dir: Path, name: str) -> int | None:
    path = out_dir / DUPLICATES_NAME
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    value = data.get(name) if isinstance(data, dict) else None
    return int(value) if isinstance(value, int) else None


def write_recipe(out_dir: Path, recipe: Recipe) -> Path:
    """``<out>/recipe.json``: the frozen best recipe."""
    return atomic_write_text(out_dir / "recipe.json", recipe.to_json())


def clear_tie_recipes(out_dir: Path) -> None:
    """Remove the near ties an earlier freeze of this run wrote (``<out>/near_ties/*.json``)."""
    for old in (out_dir / NEAR_TIES_DIR).glob("*.json"):
        old.unlink()


def write_tie_recipe(out_dir: Path, trial_id: str, recipe: Recipe) -> str:
    """``<out>/near_ties/<trial id>.json``: a near tie of the frozen trial, frozen beside it;
    returns its path relative to ``out_dir`` (as ``search.json`` records it)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in trial_id).lstrip(".")
    rel = f"{NEAR_TIES_DIR}/{safe or 'trial'}.json"
    (out_dir / NEAR_TIES_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / rel, recipe.to_json())
    return rel


def write_trials(out_dir: Path, table: pd.DataFrame) -> Path:
    """``<out>/trials.parquet`` (returned) and ``<out>/trials.csv``: one row per trial, every
    column (the report shows a summary)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "trials.parquet"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with naming_path(path):
            table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:  # a write stopped part-way (Ctrl+C, kill, a full disk) leaves no partial file
        tmp.unlink(missing_ok=True)
    atomic_write_text(out_dir / "trials.csv", table.to_csv(index=False, lineterminator="\n"))
    return path


def plot_omega(out_dir: Path, table: pd.DataFrame, *,
               reference_label: str = "reference recipe") -> Path:
    """``<out>/omega_over_trials.png``: Ω per trial (marker by status), the running best and
    the reference's Ω (``reference_label`` names it in the legend)."""
    import matplotlib  # noqa: PLC0415  (heavy third-party, loaded when used)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  (heavy third-party, loaded when used)

    path = out_dir / "omega_over_trials.png"
    fig = _omega_figure(table, reference_label)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _omega_figure(table: pd.DataFrame, reference_label: str) -> Any:
    """The figure of :func:`plot_omega` (a matplotlib ``Figure``, Agg backend set)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (heavy third-party, loaded when used)
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415  (heavy third-party, loaded when used)

    fig, ax = plt.subplots(figsize=(9.0, 4.0), dpi=110)
    if not table.empty:
        styles = {"complete": ("o", "tab:blue", "full fidelity"),
                  "stopped_early": ("x", "tab:gray", "stopped early (lower fidelity)")}
        for status, (marker, color, label) in styles.items():
            sel = table[table["status"] == status]
            if len(sel):
                ax.scatter(sel["order"], sel["omega"], marker=marker, color=color, label=label,
                           zorder=3)
        done = table[table["status"] == "complete"].sort_values("order")
        if len(done):
            ax.step(done["order"], done["omega"].cummax(), where="post", color="tab:orange",
                    label="best so far")
        ref = table[_reference_mask(table) & (table["status"] == "complete")]
        if len(ref):
            ax.axhline(float(ref["omega"].iloc[0]), color="tab:red", linestyle="--",
                       linewidth=1, label=reference_label)
        errors = table[table["status"] == "error"]
        if len(errors):
            ymin = float(table["omega"].min()) if table["omega"].notna().any() else 0.5
            ax.scatter(errors["order"], [ymin] * len(errors), marker="v", color="tab:red",
                       label="error")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("Ω (official score, dev types)")
    ax.set_title("Ω over trials")
    ax.grid(alpha=0.3)
    # beside the axes, not over them (found 2026-12-07: "lower right" hid the last stopped
    # trials, which sit low and late, so the plot showed 13 of the table's 14 trials)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def _rho(value: Any) -> str:
    """ρ, or why there is none (fewer than 3 trials, or all tied on one side)."""
    text = _fmt(value)
    return text or ("undefined (needs at least 3 complete trials whose in-search and novel Ω "
                    "are not all tied)")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines)


def _reference_mask(table: pd.DataFrame) -> pd.Series:
    """Rows of the reference trial (``is_baseline``: the column's name in older tables)."""
    col = "is_reference" if "is_reference" in table.columns else "is_baseline"
    if col not in table.columns:
        return pd.Series(False, index=table.index)
    return table[col].fillna(False).astype(bool)


def _requested(meta: Mapping[str, Any]) -> str:
    """``--trials`` as given, and the cap when the space holds fewer distinct recipes (found
    2026-12-07: ``--trials 30`` on the 26-point ``smoke`` space reported "trials requested:
    26")."""
    asked, trials = meta.get("trials_asked"), meta.get("trials")
    if asked is None or asked == trials:
        return str(trials)
    return f"{asked} (the space holds {trials} distinct recipes: at most {trials} trials)"


def _budget(seconds: Any) -> str:
    return "none" if seconds is None else f"{float(seconds):g} s"


def write_search_report(out_dir: Path, table: pd.DataFrame, *, recipe: Recipe,
                        best_trial_id: str, meta: Mapping[str, Any],
                        reference_omega: float | None, reference: str = "",
                        plot: Path | None = None, top: int = 10,
                        pending_reruns: int = 0) -> Path:
    """``<out>/search_report.md``: provenance, counts (with the skipped duplicate proposals
    of ``duplicates.json`` when the search wrote it; ``pending_reruns``: recipes of trials
    without a result that ``--resume`` runs again), the reference recipe (``reference``
    names it and says whether it is the official baseline), top trials with a one-line recipe
    summary each, per-type metrics of the best."""
    counts = table["status"].value_counts().to_dict() if not table.empty else {}
    skipped, filled = read_duplicates(out_dir), read_filled_in(out_dir)
    exhausted = read_exhausted(out_dir)
    best = table[table["trial_id"] == best_trial_id].iloc[0]
    lines = [f"# Search report: space `{meta.get('space_name')}`", "",
             f"- space file: `{meta.get('space_path')}` (sha256 `{meta.get('space_sha256')}`)",
             f"- development types: {', '.join(meta.get('machine_types', []))}",
             f"- seed: {meta.get('seed')}; trials requested: {_requested(meta)}; "
             f"time budget: {_budget(meta.get('time_budget_s'))}; "
             f"fidelity rungs: {meta.get('rungs')}",
             f"- started {meta.get('started', '?')}, "
             + (f"resumed {meta['resumed']} (time budget "
                f"{_budget(meta.get('resume_time_budget_s'))}), " if meta.get("resumed")
                else "")
             + f"finished {meta.get('finished', '?')}; "
             f"versions: {json.dumps(meta.get('versions', {}), sort_keys=True)}",
             "- trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
             + _not_run_note(counts.get("not_run", 0), pending_reruns,
                             budgeted=meta.get("time_budget_s") is not None
                             or meta.get("resume_time_budget_s") is not None),
             # found 2026-12-07: "already run" read as any recipe run, beside a table that
             # held one recipe ASHA had stopped three times (dedup ran those again then)
             *([f"- duplicate proposals skipped: {skipped} (proposals of a recipe already run "
                "— at full fidelity or stopped early — or running, not launched; a failed "
                "recipe may run again)" + (f"; {filled} untried point(s) of the space run in "
                                           "their stead (TPE kept proposing run recipes)"
                                           if filled else "")
                + (f"; every recipe of the space had run ({exhausted} distinct), so the "
                   "search ended" if exhausted is not None else "")]
               if skipped is not None else []),
             f"- {reference or 'reference recipe'}: queued first"
             + (f", Ω = {reference_omega:.4f}" if reference_omega is not None else
                " (did not finish)"),
             *_interrupted_note(meta.get("interrupted")),
             "", "## Best recipe", "",
             f"Trial `{best_trial_id}`: **Ω = {float(best['omega']):.4f}**"
             + (f" ({_reference_word(reference)} Ω = {reference_omega:.4f}, Δ = "
                f"{float(best['omega']) - reference_omega:+.4f})"
                if reference_omega is not None else "")
             + f"; detector `{recipe.detector.name}`; frozen to `recipe.json` "
             f"(content hash `{recipe.content_hash()[:16]}`).", ""]
    per_type = sorted({c.rsplit("/", 1)[0] for c in table.columns
                       if c.endswith("/auc_source") and not c.startswith("time/")})
    if per_type:
        rows = [{"type": t, "AUC-s": best.get(f"{t}/auc_source"),
                 "AUC-t": best.get(f"{t}/auc_target"), "pAUC": best.get(f"{t}/pauc"),
                 "Ω": best.get(f"{t}/omega")} for t in per_type]
        lines += [_md_table(pd.DataFrame(rows)), ""]
    done = table[table["status"].isin(["complete", "stopped_early"])]
    done = done.sort_values(["status", "omega"], ascending=[True, False]).head(top)
    if "recipe" in table.columns:
        top_df = done[["trial_id", "status", "omega", "fidelity", "wall_s", "recipe"]].copy()
        marks = _reference_mask(done)
        top_df["recipe"] = [("(reference) " if ref else "") + str(text)
                            for ref, text in zip(marks, top_df["recipe"], strict=True)]
        how = ("`recipe`: the trial's family → scoring backend · normalisation, with the "
               "parameters it searched; every column is in `trials.parquet` / `trials.csv`.")
    else:  # a table written before the summary column existed
        params = [c for c in table.columns if c.startswith(PARAM_PREFIX)]
        show = ["trial_id", "status", "omega", "fidelity", "wall_s", *params]
        top_df = done[show].rename(columns={c: c[len(PARAM_PREFIX):] for c in params})
        how = ""
    lines += [f"## Top {len(top_df)} trials", "",
              "Complete trials first (full fidelity), then trials stopped before full "
              "fidelity — by ASHA, or while running by the time budget or an interrupt (their "
              "Ω is at a lower fidelity). " + how, "", _md_table(top_df), ""]
    if "node_id" in table.columns and table["node_id"].notna().any():
        counts_by_node = table["node_id"].dropna().astype(str).value_counts().sort_index()
        lines += ["## Ray nodes", "", "Trials per Ray node (full ids in `trials.parquet`, "
                  "column `node_id`): " + ", ".join(f"`{n[:12]}` {c}"
                                                     for n, c in counts_by_node.items()), ""]
    errors = table[table["status"] == "error"]
    if len(errors):
        lines += ["## Failed trials", "",
                  _md_table(errors[["trial_id", "error"]]), ""]
    if plot is not None:
        lines += ["## Ω over trials", "", f"![Ω over trials]({plot.name})", ""]
    lines += _extra_sections(table, meta)
    return atomic_write_text(out_dir / "search_report.md", "\n".join(lines))


def family_costs(table: pd.DataFrame) -> pd.DataFrame:
    """Per detector family: trials, complete, mean/total seconds, representation cache hits,
    misses and hit rate (``cache/hits`` / ``cache/misses`` columns of the trial table)."""
    if table.empty:
        return pd.DataFrame()
    fam_col = PARAM_PREFIX + "detector.name"
    fam = table[fam_col] if fam_col in table.columns else pd.Series(["(fixed)"] * len(table))
    df = table.assign(family=fam.fillna("?").astype(str).values)
    ran = df[df["status"].isin(RAN_STATUSES)]
    rows = []
    for name, g in ran.groupby("family", sort=True):
        hits = float(g["cache/hits"].fillna(0).sum()) if "cache/hits" in g else 0.0
        misses = float(g["cache/misses"].fillna(0).sum()) if "cache/misses" in g else 0.0
        rows.append({"family": name, "trials": len(g),
                     "complete": int((g["status"] == "complete").sum()),
                     "mean s": float(g["wall_s"].mean()), "total s": float(g["wall_s"].sum()),
                     "cache hits": int(hits), "cache misses": int(misses),
                     "hit rate": hits / (hits + misses) if hits + misses else float("nan")})
    return pd.DataFrame(rows)


def _coverage(est: Mapping[str, Any]) -> str:
    """Which of the sampled cost classes the estimate timed ('' for an older search.json)."""
    sampled, uncovered = est.get("sampled_classes"), est.get("uncovered_classes")
    if not isinstance(sampled, int) or not isinstance(uncovered, int):
        return "one timed point per family misses a family's costly settings"
    if uncovered == 0:
        return f"its timed points covered all {sampled} cost classes sampled"
    return (f"its timed points covered {sampled - uncovered} of the {sampled} cost classes "
            "sampled, the others were costed at their family's mean")


def _measured_phases(table: pd.DataFrame, startup: int, coverage: str = "") -> str:
    """What the estimate predicts, as measured: the average trial is over random points of
    the space, i.e. TPE's random start-up (``startup`` trials, the reference among them);
    later trials follow the best-scoring families, whose cost a random point does not
    predict. Mean wall seconds per trial of both phases ('' when no start-up trial ran)."""
    need = {"order", "status", "wall_s", "is_reference"}
    if table.empty or not need <= set(table.columns):
        return ""
    ran = table[table["status"].isin(RAN_STATUSES)
                & ~table["is_reference"].astype(bool)].sort_values("order", kind="stable")
    n_random = max(0, startup - 1)
    first, later = ran.iloc[:n_random], ran.iloc[n_random:]
    # a trial that failed before its first report has no wall time
    wall = first["wall_s"].astype(float).dropna()
    if wall.empty:
        return ""
    first = first.loc[wall.index]
    slowest = f"slowest {float(wall.max()):.0f} s"
    fam_col = PARAM_PREFIX + "detector.name"
    family = first.at[wall.idxmax(), fam_col] if fam_col in first.columns else None
    if isinstance(family, str):
        slowest += f" ({family})"
    text = (f" Measured: the {len(first)} trial{'s' if len(first) != 1 else ''} of TPE's random "
            f"start-up after the reference averaged {float(wall.mean()):.0f} s (what the "
            f"average above estimates; median {float(wall.median()):.0f} s, {slowest}"
            + (f": {coverage})" if coverage else ")"))
    later_wall = later["wall_s"].astype(float).dropna()
    if not later_wall.empty:
        text += (f"; the {len(later_wall)} later trial{'s' if len(later_wall) != 1 else ''} "
                 f"{float(later_wall.mean()):.0f} s (TPE follows the best-scoring "
                 "families, whose cost a random point does not predict)")
    return text + "."


def _extra_sections(table: pd.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    costs = family_costs(table)
    if len(costs):
        lines += ["## Time and representation cache per family", "",
                  "Seconds per trial (all rungs it ran); cache hits = trained networks reused "
                  "from earlier trials with the same representation (pooled families have none "
                  "to cache: their features come from the feature cache).", "",
                  _md_table(costs), ""]
    est = meta.get("estimates")
    if isinstance(est, Mapping):
        fam = ", ".join(f"{k} ~{v:.0f} s" for k, v in dict(est.get("family_trial_s", {})).items())
        lines += ["## Cost estimate before the search", "",
                  f"Reference `{est.get('reference_family')}` ~{est.get('reference_s', 0):.0f} s "
                  f"at full fidelity; average trial ~{est.get('mean_trial_s', 0):.0f} s "
                  f"(per family: {fam}); measured in {est.get('estimate_s', 0):.1f} s."
                  + (f" Includes feature extraction of {est['new_specs']} new feature "
                     f"spec{'s' if est['new_specs'] != 1 else ''} among the sampled points "
                     f"(~{est.get('new_spec_s', 0):.0f} s each, paid by the first trial that "
                     "uses it)." if est.get("new_specs") else "")
                  + _measured_phases(table, int(est.get("tpe_startup", 10)),
                                     _coverage(est)), ""]
        lines += [f"- **warning**: {w}" for w in est.get("warnings", [])]
        lines += [""] if est.get("warnings") else []
    sel = meta.get("selection")
    if isinstance(sel, Mapping):
        bounds = dict(sel.get("lower_bounds", {}))
        lines += ["## Final pick", "", f"Rule: {sel.get('rule')}. Best by objective: "
                  f"`{sel.get('best_by_objective')}`; chosen: `{sel.get('chosen')}`.", ""]
        if sel.get("failed"):
            lines += [f"The {sel.get('rule')} pick failed ({sel['failed']}); the best trial by "
                      "the objective was frozen.", ""]
        rescored = sel.get("rescored")
        if bounds:
            if isinstance(rescored, list):  # a search.json from before the field has none
                lines += [("Per-clip scores: kept by every candidate's trial, nothing "
                           "re-scored." if not rescored else
                           "Per-clip scores: re-scored for "
                           f"{', '.join(f'`{t}`' for t in rescored)} (no scores kept by "
                           "their trial); the others' kept by their trial."), ""]
            lines += [_md_table(pd.DataFrame({"trial_id": list(bounds),
                                              "lower bound": list(bounds.values())})), ""]
        lines += _margin_lines(table, sel)
    return lines


def _tied(sel: Mapping[str, Any]) -> tuple[list[str], int, float] | None:
    """(near ties of the chosen trial, number of other candidates, the near-tie fraction)
    from ``selection`` of ``search.json`` (the search layer's ``selection.near_ties``, read
    back); None without margins for two or more candidates."""
    margins = sel.get("margins")
    if not isinstance(margins, Mapping) or len(margins) < 2:
        return None
    near = float(sel.get("near_tie", 0.25))
    return ([t for t, m in margins.items() if m.get("beats_chosen", 0.0) >= near],
            len(margins) - 1, near)


def _twins(sel: Mapping[str, Any]) -> list[str]:
    """The top recipes equal to the chosen one on every resample (``ties_chosen`` 1 in
    ``selection.margins``): they score the development clips like it."""
    margins = sel.get("margins")
    if not isinstance(margins, Mapping):
        return []
    return [str(t) for t, m in margins.items()
            if isinstance(m, Mapping) and m.get("ties_chosen", 0.0) == 1.0]


def pick_certainty_line(out_dir: Path) -> str | None:
    """One line for the terminal: how many of the top recipes are near ties of the frozen
    one (``search.json``'s ``selection.margins``); None when the search recorded none."""
    sel = (read_search_meta(out_dir) or {}).get("selection")
    if not isinstance(sel, Mapping):
        return None
    tied = _tied(sel)
    if tied is None:
        return None
    ties, others, near = tied
    written = tie_recipes(sel)
    where = (f"their recipes in {out_dir / NEAR_TIES_DIR}, " if written else "")
    small = _small_group(sel)
    twins = _twins(sel)
    return (f"how sure is the pick: {len(ties)} of the other {others} top recipes "
            f"{'beats' if len(ties) == 1 else 'beat'} it on "
            f">= {100 * near:.0f} % of bootstrap resamples of the development clips"
            + (f" (near ties: {where}see the search report)" if ties else "")
            + (f"; {len(twins)} {'scores' if len(twins) == 1 else 'score'} them exactly "
               "like it" if twins else "")
            + (f"; only {small[0]} test clips in some development (domain, label) group, "
               "where the bootstrap overstates the noise" if small else ""))


def _small_group(sel: Mapping[str, Any]) -> tuple[int, int] | None:
    """(fewest test clips of a development (domain, label) group, the threshold) when the
    picker recorded a group below ``small_group_below`` (the search layer's
    ``SMALL_TEST_GROUP``); None otherwise or for a search.json from before the fields."""
    small, below = sel.get("smallest_group"), sel.get("small_group_below")
    if isinstance(small, int) and isinstance(below, int) and small < below:
        return small, below
    return None


def tie_recipes(sel: Mapping[str, Any]) -> dict[str, str]:
    """``selection.tie_recipes`` of ``search.json``: near tie -> its recipe file, relative to
    the run folder (empty for a search that wrote none, or one from before the field)."""
    written = sel.get("tie_recipes")
    return {str(t): str(p) for t, p in written.items()} if isinstance(written, Mapping) else {}


def _margin_lines(table: pd.DataFrame, sel: Mapping[str, Any]) -> list[str]:
    """"How sure is the pick?": the top recipes' bootstrap interval and how often each beats
    the chosen trial (``selection.margins`` of ``search.json``; nothing without it)."""
    tied = _tied(sel)
    if tied is None:
        return []
    ties, others, near = tied
    margins = sel["margins"]
    chosen = str(sel.get("chosen"))
    objective = (dict(zip(table["trial_id"].astype(str), table["objective"], strict=True))
                 if {"trial_id", "objective"} <= set(table.columns) else {})
    rows = [{"trial_id": f"{t} (chosen)" if t == chosen else t,
             "objective": objective.get(t, math.nan), "low": m["low"], "high": m["high"],
             "beats chosen": ("same scores" if m.get("ties_chosen", 0.0) == 1.0
                              else f"{100 * m['beats_chosen']:.0f} %" if "beats_chosen" in m
                              else "—")}
            for t, m in margins.items()]
    twins = _twins(sel)
    separated = others - len(ties) - len(twins)
    twin_line = (f"{len(twins)} of the other {others} "
                 f"{'scores' if len(twins) == 1 else 'score'} every resample exactly like the "
                 "chosen trial: the development clips cannot tell them apart at all (a "
                 "recipe that differs from the pick only in its decision threshold is such a "
                 "twin everywhere: Ω does not depend on the threshold)." if twins else "")
    verdict = (f"**{len(ties)} of the other {others}** "
               f"{'beats' if len(ties) == 1 else 'beat'} the chosen trial on at "
               f"least {100 * near:.0f} % of the resamples: on these development clips they "
               "are near ties, and the development data do not decide which of them carries "
               "best to new machines (`search --novel` measures that on labelled machines "
               "the search never sees)." if ties else
               f"None of the other {separated} beats the chosen trial on "
               f"{100 * near:.0f} % of the resamples or more: the development clips separate "
               "the pick from them." if separated else "")
    small = _small_group(sel)
    caution = ([f"Caution: some development (domain, label) groups hold only {small[0]} test "
                f"clips. Below about {small[1]} per group the bootstrap overstates the noise "
                "of Ω near chance (up to about twice its variance in simulation), so these "
                "intervals read wide and near ties are over-counted; more development test "
                "clips make both sharper (docs/benchmarks.md, \"How much of ρ test-clip "
                "noise allows\").", ""] if small else [])
    written = tie_recipes(sel)
    files = ([f"Their recipes are frozen beside `recipe.json` (same provenance, their own "
              f"trial id): {', '.join(f'`{p}`' for p in written.values())}. To see which "
              "carries, apply each beside it to labelled machines of your own that the search "
              "did not see (`automl-asd apply --frozen RUN/<file> --data ROOT --out DIR`) and "
              "compare the runs (`automl-asd summarize DIR...`).", ""] if written else [])
    return ["### How sure is the pick?", "",
            "The top distinct recipes whose trials kept per-clip scores, each scored on the "
            "same bootstrap resamples of the development test clips (drawn within each type, "
            "domain and label): `low` / `high` are quantiles of the objective over the "
            "resamples (the rule's `quantile` and one minus it); `beats chosen` is how often "
            "the recipe's objective is above the chosen trial's on the same resample.", "",
            _md_table(pd.DataFrame(rows)), "",
            *([verdict, ""] if verdict else []), *([twin_line, ""] if twin_line else []),
            *caution, *files]


def _reference_word(reference: str) -> str:
    """"reference point" when ``reference`` (``SearchSpace.describe_reference``) says the first
    point is not the recipe itself, else "reference recipe"."""
    return "reference point" if reference.startswith("reference point") else "reference recipe"


def append_novel_section(out_dir: Path, df: pd.DataFrame, summary: Mapping[str, float], *,
                         novel_root: str, novel_types: list[str],
                         reference_label: str = "reference recipe") -> Path:
    """Append "does the choice carry?" (``search --novel``) to ``search_report.md``."""
    shown = df.drop(columns=["params"], errors="ignore")
    ref = summary.get("reference_novel_omega")
    lines = ["", "## Does the choice carry?", "",
             f"Novel types ({', '.join(novel_types)}) under `{novel_root}`: labelled, never seen "
             "by the search, scored only after `recipe.json` was written. Each row: a complete "
             "trial, its in-search Ω on the development types and its Ω on the novel types.", "",
             _md_table(shown), "",
             f"- Spearman ρ (in-search Ω vs novel Ω): {_rho(summary.get('spearman_rho'))}",
             f"- frozen recipe's novel Ω: {_fmt(summary.get('frozen_novel_omega'))}",
             f"- best novel Ω among these trials: {_fmt(summary.get('best_novel_omega'))}",
             f"- regret (best − frozen): {_fmt(summary.get('regret'))}"]
    if ref is not None:
        lines.append(f"- {reference_label}'s novel Ω: {_fmt(ref)}")
    tie = summary.get("best_near_tie_novel_omega")
    # found 2026-12-07: with --novel-top-k 2, one of the 3 near ties frozen was scored and the
    # line read as the best of all three
    n_frozen = int(summary.get("near_ties_frozen", 0))
    n_scored = int(df["near_tie"].sum()) if "near_tie" in df.columns else 0
    unscored = (f" ({n_scored} of the {n_frozen} near ties frozen: the others are not among the "
                "trials scored here, `--novel-top-k`; apply them to compare)"
                if n_scored < n_frozen else "")
    if tie is not None:
        gap = tie - summary.get("frozen_novel_omega", math.nan)
        side = ("the same as" if gap == 0 else
                f"{_fmt(abs(gap))} {'above' if gap > 0 else 'below'}")
        lines.append(f"- best novel Ω among the pick's near ties (`near_tie`, frozen in "
                     f"`{NEAR_TIES_DIR}/`): {_fmt(tie)}, {side} the frozen recipe's{unscored}")
    elif n_frozen:
        lines.append(f"- the pick's {n_frozen} near tie{'s' if n_frozen != 1 else ''} (frozen "
                     f"in `{NEAR_TIES_DIR}/`): none among the trials scored here "
                     "(`--novel-top-k`); apply them to compare")
    return _append_section(out_dir, lines)


def _not_run_note(n_not_run: int, pending: int, *, budgeted: bool = True) -> str:
    """What the trial counts say about trials without a result (``not_run``); ``budgeted``:
    the search (or a resume of it) had a time budget, else only an interrupt stopped them
    (found 2026-12-07: a search without a budget, stopped by Ctrl-C, blamed "the time
    budget or an interrupt")."""
    if not n_not_run:
        return ""
    if pending:
        what = "the time budget or an interrupt" if budgeted else "an interrupt"
        return (f"; `not_run`: ended before their first result ({what} stopped them): "
                f"`--resume` runs {pending} of them")
    return ("; `not_run`: ended before their first result (the time budget stopped them); "
            "each has run again since, as a later trial")


def _interrupted_note(mark: Any) -> list[str]:
    """The report's line for a search an interrupt or its time budget stopped with trials
    unfinished (search.json's "interrupted")."""
    if not isinstance(mark, Mapping):
        return []
    if mark.get("by") == "time budget":
        return [f"- **stopped by the time budget** after {mark.get('after', '?')} of "
                f"{mark.get('of', '?')} trials, with {mark.get('unfinished', '?')} trial(s) "
                "running or waiting: they are saved unfinished (any that had reported a "
                "rung is listed at it, as `stopped_early`); the same command with "
                "`--resume` continues each from its last rung"]
    return [f"- **interrupted** after {mark.get('after', '?')} of {mark.get('of', '?')} "
            "trials: this report holds the trials that ran (any running then is listed at "
            "its last rung, as `stopped_early`); the same command with `--resume` continues "
            "the search"]


def append_novel_failure(out_dir: Path, *, novel_root: str, message: str) -> Path:
    """Append "does the choice carry?" as failed (the recipe above it is unaffected)."""
    lines = ["", "## Does the choice carry?", "",
             f"**Not measured**: scoring the novel types under `{novel_root}` failed after "
             f"`recipe.json` was written (which it does not change): {message}. Fix it and "
             "run the same command with `--resume`: the finished trials are not run again."]
    return _append_section(out_dir, lines)


def _append_section(out_dir: Path, lines: list[str]) -> Path:
    """Append ``lines`` to ``<out_dir>/search_report.md`` (created if missing), atomically."""
    path = out_dir / "search_report.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return atomic_write_text(path, text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def unfinished_folds(table: Any) -> list[str]:
    """Held-out types whose fold the time budget stopped before it finished (a table written
    before the ``finished`` column: none)."""
    if "finished" not in getattr(table, "columns", ()):
        return []
    return [str(h) for h, ok in zip(table["held_out"], table["finished"], strict=True)
            if not bool(ok)]


def write_leave_one_out(out_dir: Path, table: pd.DataFrame,
                        meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """``<out>/leave_one_out.parquet`` and ``leave_one_out.md`` (held-out vs in-search Ω)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pq = out_dir / "leave_one_out.parquet"
    table.to_parquet(pq, index=False)
    cols = ["held_out", "in_search_omega", "held_out_omega", "gap", "reference_held_out_omega",
            "detector", "trial_id"]
    shown = table[[c for c in cols if c in table.columns]]
    lines = ["# Leave-one-out search: the price of first shot", "",
             f"Space `{meta.get('space_name')}` (sha256 `{meta.get('space_sha256')}`), "
             f"seed {meta.get('seed')}, {meta.get('trials_per_fold')} trials per fold.",
             "Each row: a search on every other development type (in-search Ω), then its frozen "
             "recipe applied to the held-out type (held-out Ω, a single type's h-mean of AUC-s, "
             "AUC-t, pAUC); `reference_held_out_omega` is the space's "
             f"{meta.get('reference') or 'reference recipe'} on that type.", "",
             _md_table(shown), ""]
    partial = unfinished_folds(table)
    if partial:
        lines += [f"**Stopped by the time budget before finishing**: fold(s) "
                  f"{', '.join(partial)} (their rows are from the trials that finished); the "
                  "same command with `--resume` continues them.", ""]
    if table["gap"].notna().any():  # a fold with nothing finished has no row numbers
        lines += [f"Mean in-search Ω {table['in_search_omega'].mean():.4f}; mean held-out Ω "
                  f"{table['held_out_omega'].mean():.4f}; mean gap {table['gap'].mean():+.4f}; "
                  f"mean {_reference_word(str(meta.get('reference') or ''))} held-out Ω "
                  f"{table['reference_held_out_omega'].mean():.4f}.", ""]
    md = atomic_write_text(out_dir / "leave_one_out.md", "\n".join(lines))
    return pq, md
