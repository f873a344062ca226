"""Selection rules of a search: the objective each trial is ranked by, and the final pick.

Both are fixed rules declared in the search-space file (``selection:``), so the frozen recipe
is chosen by a rule written down before the search, never by looking at novel machine types::

    selection:
      objective: mean            # mean (default) | leave_one_type_out | worst_type | mean_minus_std
      pick: best                 # best (default) | bootstrap_lower_bound
      top: 5                     # bootstrap_lower_bound: candidates = the top trials
      quantile: 0.1              # ... their Ω's lower bound = this bootstrap quantile
      n_boot: 100                # ... over this many resamples of the dev test clips

Objectives (from each development type's AUC-s, AUC-t and pAUC; a type with several sections
counts per section):

``mean``
    The official Ω: harmonic mean of every type's AUC-s, AUC-t and pAUC (the default: the
    lowest mean regret over the 18 bench draws measured after the self-score fix, see
    docs/benchmarks.md).
``worst_type``
    The lowest per-type Ω: a recipe is as good as the machine it serves worst.
``mean_minus_std``
    Mean of the per-type Ω minus their standard deviation: rewards recipes that are good on
    every type rather than excellent on a few.
``leave_one_type_out``
    Mean over folds; each fold holds one development type out and scores the recipe on it.
    A first-shot recipe has no per-type refitting of its hyper-parameters — every rule in it is
    fixed — so nothing is fitted on the kept types and a fold's score is simply the held-out
    type's own Ω: the objective is the arithmetic mean of the per-type Ω, each type standing
    for "a machine the recipe has never seen". (Dropping a type from the pooled Ω instead — a
    jackknife of Ω — only re-weights the same numbers and ranks like ``mean``.) Unlike the
    pooled harmonic mean it does not let one type's very low AUC dominate.

Default: ``mean`` / ``best``, the rule with the lowest mean regret over the 18
family-held-out bench draws measured after the self-scores were cross-fitted on 20 folds
(12 ``small`` with 13 candidates, 6 ``tiny`` with 9): 0.0157 against 0.0162 for ``mean`` /
``bootstrap_lower_bound`` and 0.022 for ``leave_one_type_out`` (the default before, chosen on
24 draws measured before that fix, where it led by 0.0013). On the ``small`` draws the two
freeze the same candidate on 11 of 12; on ``tiny`` ``mean`` is ahead. At the DCASE size (10
draws, ``bench/full_size.py``) its regret is 0.024 against 0.020 for ``mean`` /
``bootstrap_lower_bound``, a difference that rests on one pick whose sign flips between the
two sizes of the same draw, so the default was kept; there its regret is 0.009 on the draws
whose pick had no near tie (:func:`near_ties`) and 0.038 on those with one. See the README's
"Results" and ``docs/benchmarks.md``, "Search economics and selection rules". Every trial
still records the official Ω beside its objective.

Final pick:

``best``
    The trial with the highest objective (ties: the earliest trial).
``bootstrap_lower_bound``
    Among the ``top`` complete trials by objective (counting each recipe once: a recipe that
    ran in several trials is represented by its best-ranked one), the one whose objective has
    the highest lower bound (``quantile``) over ``n_boot`` bootstrap resamples of the
    development test clips. The resamples are drawn within each type and each (domain,
    label) group, so each keeps every group the metrics need, and they are the same for every
    candidate (paired).

Whatever the pick, :func:`pick_margins` says how sure it is: on the same paired resamples, how
often each top candidate's objective is above the chosen trial's (the search report's "How sure
is the pick?").

Pure: numpy only (the AUCs are recomputed here for speed; a test checks them against
:mod:`automl_asd.evaluation.metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.evaluation.metrics import MAX_FPR, floored_hmean
from automl_asd.io.clip_scores import ClipScores

__all__ = [
    "NEAR_TIE",
    "SMALL_TEST_GROUP",
    "OBJECTIVES",
    "PICKS",
    "SelectionRule",
    "parse_selection",
    "objective_value",
    "objective_from_row",
    "bootstrap_lower_bound",
    "bootstrap_table",
    "bootstrap_values",
    "near_ties",
    "pick_margins",
    "pick_trial",
    "ranked_distinct",
    "distinct_key",
    "section_aucs",
    "pooled_reliability",
    "ranking_reliability",
    "ranking_variances",
    "smallest_group",
]

OBJECTIVES = ("mean", "worst_type", "mean_minus_std", "leave_one_type_out")
#: A top recipe that beats the chosen one on at least this fraction of the paired bootstrap
#: resamples is a near tie (:func:`near_ties`): the development data cannot tell the two apart.
NEAR_TIE = 0.25
PICKS = ("best", "bootstrap_lower_bound")
#: Below this many test clips in a (domain, label) group of a development section the
#: bootstrap overstates Ω's noise near chance (its variance is 1.4-2.1x Ω's real one at 10
#: clips per group in simulation, 1.0-1.5x at 25, 0.9-1.2x at 40:
#: tests/unit/search/test_reliability.py and docs/benchmarks.md, "How much of ρ test-clip
#: noise allows"), so intervals read wide and near ties are over-counted; the search report
#: says so.
SMALL_TEST_GROUP = 25
_KEYS = {"objective", "pick", "top", "quantile", "n_boot"}

#: Per (machine type, section) key, or a trial table's ``<type>`` label: (AUC-s, AUC-t, pAUC).
TypeAucs = Mapping[Any, tuple[float, float, float]]


@dataclass(frozen=True)
class SelectionRule:
    """The search's objective and final pick (see the module docstring)."""

    objective: str = "mean"
    pick: str = "best"
    top: int = 5
    quantile: float = 0.1
    n_boot: int = 100

    def describe(self) -> str:
        extra = (f" among the top {self.top} (q{self.quantile:g} of {self.n_boot} bootstrap "
                 "resamples of the dev test clips)" if self.pick != "best" else "")
        return f"objective `{self.objective}`, pick `{self.pick}`{extra}"


def parse_selection(raw: Any, source: str) -> SelectionRule:
    """Strictly parse the ``selection:`` mapping of a space file; errors name ``source``."""
    if raw is None:
        return SelectionRule()
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: selection: expected a mapping with keys {sorted(_KEYS)}")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"{source}: selection: unknown key(s) {sorted(unknown)}; valid keys: "
                         f"{sorted(_KEYS)}")
    objective = raw.get("objective", SelectionRule.objective)
    if objective not in OBJECTIVES:
        raise ValueError(f"{source}: selection.objective: {objective!r}; expected one of "
                         f"{list(OBJECTIVES)}")
    pick = raw.get("pick", SelectionRule.pick)
    if pick not in PICKS:
        raise ValueError(f"{source}: selection.pick: {pick!r}; expected one of {list(PICKS)}")
    top = raw.get("top", SelectionRule.top)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 100:
        raise ValueError(f"{source}: selection.top: {top!r}; expected an integer in [1, 100]")
    quantile = raw.get("quantile", SelectionRule.quantile)
    if (isinstance(quantile, bool) or not isinstance(quantile, int | float)
            or not 0.0 < float(quantile) < 0.5):
        raise ValueError(f"{source}: selection.quantile: {quantile!r}; expected a number in "
                         "(0, 0.5)")
    n_boot = raw.get("n_boot", SelectionRule.n_boot)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or not 10 <= n_boot <= 10000:
        raise ValueError(f"{source}: selection.n_boot: {n_boot!r}; expected an integer in "
                         "[10, 10000]")
    return SelectionRule(objective=str(objective), pick=str(pick), top=int(top),
                         quantile=float(quantile), n_boot=int(n_boot))


def objective_value(objective: str, aucs: TypeAucs) -> float:
    """The objective of one trial from its per-type (AUC-s, AUC-t, pAUC)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: expected one of {list(OBJECTIVES)}")
    if not aucs:
        raise ValueError("objective_value: no per-type metrics")
    keys = sorted(aucs)
    if objective == "mean":
        return floored_hmean([v for k in keys for v in aucs[k]])
    per_type = np.array([floored_hmean(aucs[k]) for k in keys])
    if objective == "worst_type":
        return float(per_type.min())
    if objective == "mean_minus_std":
        return float(per_type.mean() - per_type.std())
    # leave_one_type_out: fold k scores the (fixed) recipe on held-out type k.
    return float(per_type.mean())


def objective_from_row(objective: str, row: Mapping[str, Any]) -> float:
    """The objective from a trial-table row (``<type>/auc_source``, ``/auc_target``, ``/pauc``
    columns); NaN when the row has none, or when any of its types lacks a metric (a row that
    misses its worst type must not outrank a complete one)."""
    types = sorted({str(k).rsplit("/", 1)[0] for k in row
                    if str(k).endswith("/auc_source") and not str(k).startswith("time/")})
    aucs: dict[str, tuple[float, float, float]] = {}
    for t in types:
        vals = tuple(float(row.get(f"{t}/{m}", math.nan))
                     for m in ("auc_source", "auc_target", "pauc"))
        if any(math.isnan(v) for v in vals):
            return math.nan
        aucs[t] = (vals[0], vals[1], vals[2])
    return objective_value(objective, aucs) if aucs else math.nan


def _roc(y: NDArray[np.bool_], s: NDArray[np.float64]
         ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ROC points (fpr, tpr) at every distinct score, from (0, 0) (as sklearn's roc_curve)."""
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    ends = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tps = np.cumsum(ys)[ends].astype(np.float64)
    fps = (ends + 1 - tps).astype(np.float64)
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def _auc(y: NDArray[np.bool_], s: NDArray[np.float64]) -> float:
    fpr, tpr = _roc(y, s)
    return float(np.trapezoid(tpr, fpr))


def _pauc(y: NDArray[np.bool_], s: NDArray[np.float64], max_fpr: float) -> float:
    """McClish-standardised partial AUC up to ``max_fpr`` (sklearn's ``max_fpr`` rule)."""
    fpr, tpr = _roc(y, s)
    stop = int(np.searchsorted(fpr, max_fpr, "right"))
    x = [fpr[stop - 1], fpr[stop]]
    t = [tpr[stop - 1], tpr[stop]]
    tpr_c = np.r_[tpr[:stop], np.interp(max_fpr, x, t)]
    fpr_c = np.r_[fpr[:stop], max_fpr]
    partial = float(np.trapezoid(tpr_c, fpr_c))
    lo, hi = 0.5 * max_fpr**2, max_fpr
    return 0.5 * (1 + (partial - lo) / (hi - lo))


def section_aucs(y_true: NDArray[Any], domains: NDArray[Any], scores: NDArray[Any]
                 ) -> tuple[float, float, float]:
    """(AUC-s, AUC-t, pAUC) of one section, as
    :func:`automl_asd.evaluation.metrics.machine_metrics`
    computes them, without its input checks (fast enough for bootstrap loops)."""

    y = np.asarray(y_true).astype(bool)
    target = np.asarray(domains).astype(str) == "target"
    s = np.asarray(scores, dtype=np.float64)
    out = [_auc(y[keep], s[keep]) for keep in (~target | y, target | y)]
    return out[0], out[1], _pauc(y, s, MAX_FPR)


def _aucs_of(clips: ClipScores, index: Mapping[Any, NDArray[np.int64]] | None = None
             ) -> dict[Any, tuple[float, float, float]]:
    out: dict[Any, tuple[float, float, float]] = {}
    for key in sorted(clips):
        y, dom, s = clips[key]
        if index is not None:
            y, dom, s = y[index[key]], dom[index[key]], s[index[key]]
        out[key] = section_aucs(y, dom, s)
    return out


def _strata(clips: ClipScores) -> dict[Any, list[NDArray[np.int64]]]:
    """Per section, the clip indices of each non-empty (domain, label) group."""
    groups: dict[Any, list[NDArray[np.int64]]] = {}
    for key in sorted(clips):
        y, dom, _ = clips[key]
        strata = [np.flatnonzero((np.asarray(dom).astype(str) == d) & (np.asarray(y) == lab))
                  for d in ("source", "target") for lab in (0, 1)]
        groups[key] = [g for g in strata if len(g)]
    return groups


def smallest_group(clips: ClipScores) -> int:
    """The fewest test clips of any (domain, label) group of any section of ``clips`` (what
    :data:`SMALL_TEST_GROUP` is compared with)."""
    sizes = [len(g) for groups in _strata(clips).values() for g in groups]
    if not sizes:
        raise ValueError("smallest_group: no test clips")
    return min(sizes)


def _resamples(clips: ClipScores, n_boot: int, seed: int
               ) -> list[dict[Any, NDArray[np.int64]]]:
    """Stratified (per type, domain, label) bootstrap indices, the same for every trial."""
    rng = np.random.default_rng(seed)
    out: list[dict[Any, NDArray[np.int64]]] = []
    groups = _strata(clips)
    for _ in range(n_boot):
        out.append({key: np.concatenate([rng.choice(g, size=len(g), replace=True)
                                         for g in groups[key]]) for key in sorted(groups)})
    return out


def bootstrap_values(objective: str, clips: ClipScores, *, n_boot: int = 100, seed: int = 0
                     ) -> NDArray[np.float64]:
    """The objective on each of ``n_boot`` stratified bootstrap resamples of the clips (the
    resamples depend only on ``seed`` and the clips' labels and domains, so two trials scored
    on the same development clips get the same resamples: paired)."""
    return np.array([objective_value(objective, _aucs_of(clips, idx))
                     for idx in _resamples(clips, n_boot, seed)], dtype=np.float64)


def ranking_variances(objective: str, clip_scores: Mapping[str, ClipScores], *,
                      n_boot: int = 100, seed: int = 0) -> tuple[float, float]:
    """``(total, noise)`` of :func:`ranking_reliability`: the variance of the trials'
    ``objective`` over the trials, and the mean over the trials of the variance of their
    objective minus the mean of all trials on the same paired bootstrap resample of the test
    clips. NaN, NaN with fewer than 3 trials. All trials must be scored on the same clips."""
    ids = sorted(clip_scores)
    if len(ids) < 3:
        return math.nan, math.nan
    first = clip_scores[ids[0]]
    for t in ids[1:]:
        other = clip_scores[t]
        if set(other) != set(first) or any(len(other[k][0]) != len(first[k][0]) for k in first):
            raise ValueError(f"ranking_variances: trial {t!r} was scored on other clips "
                             f"than trial {ids[0]!r}")
    point = np.array([objective_value(objective, _aucs_of(clip_scores[t])) for t in ids])
    boot = np.stack([bootstrap_values(objective, clip_scores[t], n_boot=n_boot, seed=seed)
                     for t in ids])  # (trials, resamples), paired: same seed, same clips
    # Centring on each resample removes the noise the trials share and 1/n of the rest; the
    # factor n/(n-1) puts the rest back, as the variance over trials (ddof=1) counts it.
    centred = boot - boot.mean(axis=0, keepdims=True)
    noise = float(np.mean(np.var(centred, axis=1, ddof=1))) * len(ids) / (len(ids) - 1)
    return float(np.var(point, ddof=1)), noise


def ranking_reliability(objective: str, clip_scores: Mapping[str, ClipScores], *,
                        n_boot: int = 100, seed: int = 0) -> float:
    """How much of the spread of the trials' ``objective`` is more than test-clip noise.

    ``max(0, 1 - noise / total)`` (:func:`ranking_variances`): ``total`` is the variance of
    the trials' objective over the trials; ``noise`` is what the test clips alone would
    spread them by, from ``n_boot`` paired stratified bootstrap resamples of the clips
    (:func:`bootstrap_values`); noise the trials share (a hard set of clips) does not change
    their order and is not counted. 1: the clips rank the trials as endless clips of the same
    machines would; 0: the spread is no larger than the noise, the order is noise. A ranking
    measured with reliability ``r_dev`` on development clips and ``r_novel`` on novel clips
    cannot correlate with the other better than about ``sqrt(r_dev * r_novel)`` on average
    over many such sets (attenuation by measurement noise), whatever the selection rule; one
    set's ρ can exceed it.

    With few trials the estimate is itself noisy (the variance of 8 values is uncertain by
    about half of itself): pool ``total`` and ``noise`` over several sets of trials to compare
    data sets. With about 10 test clips per (domain, label) group and AUCs near chance the
    bootstrap overstates Ω's noise (1.4-2x in simulation; 1.0-1.5x at 25 clips per group), so
    the value reads low on such small test sets. NaN with fewer than 3 trials or when every
    trial has the same value.
    """
    return pooled_reliability([ranking_variances(objective, clip_scores, n_boot=n_boot,
                                                 seed=seed)])


def pooled_reliability(parts: Iterable[tuple[float, float]]) -> float:
    """``max(0, 1 - sum(noise) / sum(total))`` over ``(total, noise)`` pairs of
    :func:`ranking_variances` (one set of trials, or several pooled: a few trials give a very
    uncertain variance each); NaN when the result is not finite or the total is 0."""
    pairs = list(parts)
    total = sum(t for t, _ in pairs)
    value = 1.0 - sum(n for _, n in pairs) / total if total else math.nan
    return max(0.0, value) if math.isfinite(value) else math.nan


def bootstrap_lower_bound(objective: str, clips: ClipScores, *, quantile: float = 0.1,
                          n_boot: int = 100, seed: int = 0) -> float:
    """The ``quantile`` of the objective over stratified bootstrap resamples of the clips."""
    return float(np.quantile(bootstrap_values(objective, clips, n_boot=n_boot, seed=seed),
                             quantile))


def bootstrap_table(candidates: Sequence[Mapping[str, Any]], rule: SelectionRule,
                    clip_scores: Mapping[str, ClipScores], *, seed: int = 0
                    ) -> dict[str, NDArray[np.float64]]:
    """The objective of each of the top ``rule.top`` distinct candidates
    (:func:`ranked_distinct`) that have clip scores, on each of ``rule.n_boot`` paired
    bootstrap resamples of the development test clips (:func:`bootstrap_values`); ranked
    order. What both :func:`pick_trial` and :func:`pick_margins` read."""
    out: dict[str, NDArray[np.float64]] = {}
    for row in ranked_distinct(candidates)[:rule.top]:
        tid = str(row["trial_id"])
        if tid in clip_scores:
            out[tid] = bootstrap_values(rule.objective, clip_scores[tid], n_boot=rule.n_boot,
                                        seed=seed)
    return out


def pick_trial(candidates: Sequence[Mapping[str, Any]], rule: SelectionRule, *,
               clip_scores: Mapping[str, ClipScores] | None = None, seed: int = 0,
               table: Mapping[str, NDArray[np.float64]] | None = None,
               ) -> tuple[str, dict[str, float]]:
    """The chosen trial id among complete ``candidates`` (rows with ``trial_id``, ``order``
    and ``objective``), and each considered trial's lower bound (empty for ``best``).

    The ``top`` candidates of ``bootstrap_lower_bound`` are distinct recipes
    (:func:`ranked_distinct`): copies of one recipe would only compare it with itself.

    ``clip_scores``: per trial id, its per-clip dev scores (``bootstrap_lower_bound`` only; a
    candidate without them is skipped; when none has them the pick falls back to ``best``).
    ``table``: their :func:`bootstrap_table`, when the caller has it already (then
    ``clip_scores`` and ``seed`` are not read).
    """
    if not candidates:
        raise ValueError("pick_trial: no complete trials to choose from")
    ranked = ranked_distinct(candidates)
    best = str(ranked[0]["trial_id"])
    if rule.pick == "best":
        return best, {}
    if table is None:
        table = bootstrap_table(ranked, rule, clip_scores or {}, seed=seed)
    bounds = {t: float(np.quantile(v, rule.quantile)) for t, v in table.items()}
    if not bounds:
        return best, {}
    order = {str(r["trial_id"]): i for i, r in enumerate(ranked)}
    chosen = max(bounds, key=lambda t: (bounds[t], -order[t]))
    return chosen, bounds


def pick_margins(table: Mapping[str, NDArray[np.float64]], chosen: str, quantile: float = 0.1
                 ) -> dict[str, dict[str, float]]:
    """How sure the final pick is, from the development clips alone (whatever the pick rule).

    ``table``: the top candidates' objective on the same paired bootstrap resamples
    (:func:`bootstrap_table`). Per trial: ``low`` / ``high``, the ``quantile`` and
    ``1 - quantile`` quantiles of its values, and, for every trial but the chosen one,
    ``beats_chosen``: the fraction of resamples on which its objective is strictly above the
    chosen trial's, and ``ties_chosen``: the fraction on which the two are exactly equal. A
    trial that beats the chosen one on a large fraction is a near tie: the development data
    cannot tell the two apart; one equal on every resample (``ties_chosen`` 1: it scores the
    clips like the chosen one, e.g. a recipe that differs only in its decision threshold) is
    the chosen one's twin on the development clips, neither beaten nor separated. Empty when
    ``chosen`` is not in ``table`` (no clip scores).
    """
    if chosen not in table:
        return {}
    ref = table[chosen]
    if any(len(v) != len(ref) for v in table.values()):
        raise ValueError("pick_margins: candidates with different numbers of resamples")
    out: dict[str, dict[str, float]] = {}
    for t, v in table.items():
        out[t] = {"low": float(np.quantile(v, quantile)),
                  "high": float(np.quantile(v, 1.0 - quantile))}
        if t != chosen:
            out[t]["beats_chosen"] = float(np.mean(v > ref))
            out[t]["ties_chosen"] = float(np.mean(v == ref))
    return out


def near_ties(margins: Mapping[str, Mapping[str, float]], threshold: float = NEAR_TIE
              ) -> list[str]:
    """The trials of :func:`pick_margins` that beat the chosen one on at least ``threshold``
    of the resamples."""
    return [t for t, m in margins.items() if m.get("beats_chosen", 0.0) >= threshold]


def ranked_distinct(candidates: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``candidates`` ranked by objective (highest first, NaN last; ties: the lowest
    ``order``), keeping only the best-ranked row of each recipe (:func:`distinct_key`).

    Rows with neither hash (missing, ``None`` or NaN: a trial from an older version) are all
    kept.
    """
    ranked = sorted(candidates, key=lambda r: (-_num(r["objective"]), int(r["order"])))
    seen: set[str] = set()
    out: list[Mapping[str, Any]] = []
    for row in ranked:
        key = distinct_key(row)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(row)
    return out


def distinct_key(row: Mapping[str, Any]) -> str | None:
    """What tells two trials' recipes apart: the ``behaviour_hash`` (two recipes that differ
    only in inert parameters, e.g. a two-member hedge's ``mean`` vs ``median``, are one) when
    the row has it, else the ``recipe_hash``; ``None`` without either."""
    for name in ("behaviour_hash", "recipe_hash"):
        key = row.get(name)
        if isinstance(key, str) and key:
            return key
    return None


def _num(value: Any) -> float:
    v = float(value)
    return -math.inf if math.isnan(v) else v
