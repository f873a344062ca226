"""Selection rules on hand-made trial tables: each objective and pick chooses the expected trial."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_asd.evaluation.metrics import floored_hmean, machine_metrics, official_score
from automl_asd.search.selection import (
    OBJECTIVES,
    PICKS,
    SelectionRule,
    bootstrap_lower_bound,
    bootstrap_table,
    distinct_key,
    objective_from_row,
    objective_value,
    parse_selection,
    pick_margins,
    pick_trial,
    ranked_distinct,
)
from automl_asd.search.space import SpaceError, load_space
from tests.fixtures.paths import REPO_ROOT


def _row(trial_id: str, order: int, aucs: dict[str, tuple[float, float, float]]
         ) -> dict[str, Any]:
    row: dict[str, Any] = {"trial_id": trial_id, "order": order}
    for t, (s, tt, p) in aucs.items():
        row[f"{t}/auc_source"], row[f"{t}/auc_target"], row[f"{t}/pauc"] = s, tt, p
    row["omega"] = floored_hmean([v for a in aucs.values() for v in a])
    return row


# Trial "peaky": best pooled Ω, but one type is poor. "even": every type decent, lower Ω.
# "spread": excellent on two types, mediocre on two (high mean, high std). "lucky": its Ω rests
# on one type's near-perfect values.
TABLE = [
    _row("peaky", 0, {"a": (0.95, 0.95, 0.90), "b": (0.95, 0.95, 0.90),
                      "c": (0.95, 0.95, 0.90), "d": (0.62, 0.60, 0.55)}),
    _row("even", 1, {"a": (0.80, 0.80, 0.70), "b": (0.80, 0.80, 0.70),
                     "c": (0.80, 0.80, 0.70), "d": (0.80, 0.80, 0.70)}),
    _row("spread", 2, {"a": (0.99, 0.99, 0.95), "b": (0.99, 0.99, 0.95),
                       "c": (0.70, 0.70, 0.60), "d": (0.70, 0.70, 0.60)}),
]


def _pick(objective: str, table: list[dict[str, Any]] = TABLE) -> str:
    rows = [{**r, "objective": objective_from_row(objective, r)} for r in table]
    return pick_trial(rows, SelectionRule(objective=objective))[0]


def test_mean_is_the_official_omega() -> None:
    rng = np.random.default_rng(0)
    per: dict[str, Any] = {}
    aucs: dict[str, tuple[float, float, float]] = {}
    for t in ("x", "y"):
        y = np.r_[np.zeros(20), np.ones(20), np.zeros(20), np.ones(20)]
        dom = np.array(["source"] * 40 + ["target"] * 40)
        m = machine_metrics(y, dom, y + rng.normal(0, 0.8, 80))
        per[t] = m
        aucs[t] = (m.auc_source, m.auc_target, m.pauc)
    assert objective_value("mean", aucs) == pytest.approx(official_score(per), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_section_aucs_match_the_official_metrics(seed: int) -> None:
    from automl_asd.search.selection import section_aucs

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 90)
    y[:2] = [0, 1]
    dom = np.where(rng.random(90) < 0.5, "source", "target")
    dom[:4] = ["source", "source", "target", "target"]
    y[2:4] = [0, 0]
    scores = np.round(rng.normal(size=90) + y, 1)  # rounding makes ties
    m = machine_metrics(y, dom, scores)
    assert section_aucs(y, dom, scores) == pytest.approx(
        (m.auc_source, m.auc_target, m.pauc), abs=1e-12)


def test_each_objective_picks_the_expected_trial() -> None:
    assert _pick("mean") == "peaky"
    assert _pick("worst_type") == "even"
    assert _pick("mean_minus_std") == "even"
    # Mean of the per-type Ω: peaky (3 x 0.93 + 0.59) beats spread (2 x 0.98 + 2 x 0.66).
    assert _pick("leave_one_type_out") == "peaky"


def test_objective_values_by_hand() -> None:
    even = TABLE[1]
    per_type = floored_hmean([0.8, 0.8, 0.7])
    assert objective_from_row("worst_type", even) == pytest.approx(per_type)
    assert objective_from_row("mean_minus_std", even) == pytest.approx(per_type)
    spread = TABLE[2]
    hi, lo = floored_hmean([0.99, 0.99, 0.95]), floored_hmean([0.7, 0.7, 0.6])
    assert objective_from_row("mean_minus_std", spread) == pytest.approx(
        (hi + lo) / 2 - abs(hi - lo) / 2)
    assert objective_from_row("leave_one_type_out", spread) == pytest.approx((hi + lo) / 2)


def test_a_row_missing_a_metric_scores_nan() -> None:
    """A row that lost its worst type's metric must not outrank a complete one."""
    full = {"a/auc_source": 0.9, "a/auc_target": 0.9, "a/pauc": 0.9,
            "b/auc_source": 0.5, "b/auc_target": 0.5, "b/pauc": 0.5}
    missing = {**full, "b/auc_source": math.nan}
    for objective in ("mean", "worst_type", "mean_minus_std", "leave_one_type_out"):
        assert objective_from_row(objective, full) <= 0.9
        assert math.isnan(objective_from_row(objective, missing)), objective
    assert math.isnan(objective_from_row("mean", {"trial_id": "t0"}))


def test_leave_one_type_out_scores_each_held_out_type() -> None:
    # A fixed recipe is not refitted per fold: fold k's score is type k's own Ω.
    table = [
        _row("lucky", 0, {"a": (1.0, 1.0, 1.0), "b": (0.74, 0.74, 0.66),
                          "c": (0.74, 0.74, 0.66)}),
        _row("steady", 1, {"a": (0.8, 0.8, 0.7), "b": (0.8, 0.8, 0.7), "c": (0.8, 0.8, 0.7)}),
    ]
    weak = floored_hmean([0.74, 0.74, 0.66])
    assert objective_from_row("leave_one_type_out", table[0]) == pytest.approx(
        (1.0 + 2 * weak) / 3)
    assert objective_from_row("leave_one_type_out", table[1]) == pytest.approx(
        floored_hmean([0.8, 0.8, 0.7]))
    assert _pick("leave_one_type_out", table) == "lucky"
    assert _pick("worst_type", table) == "steady"


def test_ties_go_to_the_earliest_trial() -> None:
    rows = [{"trial_id": "late", "order": 5, "objective": 0.8},
            {"trial_id": "early", "order": 1, "objective": 0.8},
            {"trial_id": "nan", "order": 0, "objective": math.nan}]
    assert pick_trial(rows, SelectionRule())[0] == "early"


def _clips(rng: np.random.Generator, *, sep: float = 0.8, false_alarms: int = 0
           ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = {}
    for t in ("a", "b"):
        y = np.array([0] * 20 + [1] * 20 + [0] * 20 + [1] * 20)
        dom = np.array(["source"] * 40 + ["target"] * 40)
        if false_alarms:
            # Perfect separation except a few normal clips scored above every anomaly: a high
            # point estimate that rests on which of those clips a test set happens to hold.
            s = np.where(y == 1, 5.0, 0.0) + rng.normal(0, 0.1, len(y))
            s[np.flatnonzero(y == 0)[::40 // false_alarms][:false_alarms]] = 10.0
        else:
            s = np.where(y == 1, sep, 0.0) + rng.normal(0, 0.5, len(y))
        out[t] = (y, dom, s)
    return out


def test_bootstrap_lower_bound_prefers_the_stable_trial() -> None:
    fragile = _clips(np.random.default_rng(0), false_alarms=2)
    stable = _clips(np.random.default_rng(10), sep=0.8)
    from automl_asd.search.selection import _aucs_of

    point = {k: objective_value("mean", _aucs_of(c))
             for k, c in (("fragile", fragile), ("stable", stable))}
    assert point["fragile"] > point["stable"]
    rows = [{"trial_id": "fragile", "order": 1, "objective": point["fragile"]},
            {"trial_id": "stable", "order": 2, "objective": point["stable"]}]
    rule = SelectionRule(objective="mean", pick="bootstrap_lower_bound", top=2, n_boot=100)
    chosen, bounds = pick_trial(rows, rule, clip_scores={"fragile": fragile, "stable": stable})
    assert chosen == "stable"
    assert bounds["stable"] > bounds["fragile"]
    assert bounds["fragile"] < point["fragile"]
    # Deterministic for a seed; "best" ignores the clip scores.
    assert bootstrap_lower_bound("mean", stable, n_boot=100) == bounds["stable"]
    best = SelectionRule(pick="best")
    assert pick_trial(rows, best, clip_scores={"stable": stable})[0] == "fragile"
    # Only the top trials are candidates.
    top1 = SelectionRule(pick="bootstrap_lower_bound", top=1, n_boot=50)
    assert pick_trial(rows, top1, clip_scores={"fragile": fragile, "stable": stable})[0] \
        == "fragile"


def test_pick_margins_tell_near_ties_from_clear_wins() -> None:
    # "near": the same recipe's scores with a little noise (two close recipes); "weak" barely
    # separates; "copy" has the same scores as "strong" under another hash.
    strong = _clips(np.random.default_rng(10), sep=0.8)
    rng = np.random.default_rng(104)
    near = {k: (y, d, s + rng.normal(0, 0.2, len(s))) for k, (y, d, s) in strong.items()}
    clips = {"strong": strong, "near": near, "copy": strong,
             "weak": _clips(np.random.default_rng(3), sep=0.1)}
    from automl_asd.search.selection import _aucs_of

    rows = [{"trial_id": t, "order": i, "recipe_hash": f"h{t}",
             "objective": objective_value("mean", _aucs_of(c))}
            for i, (t, c) in enumerate(clips.items())]
    rule = SelectionRule(top=4, n_boot=200)
    table = bootstrap_table(rows, rule, clips, seed=0)
    assert list(table) == ["strong", "copy", "near", "weak"]  # ranked by objective
    chosen = pick_trial(rows, rule)[0]
    assert chosen == "strong"
    margins = pick_margins(table, chosen, rule.quantile)
    assert "beats_chosen" not in margins["strong"]
    assert margins["copy"]["beats_chosen"] == 0.0  # equal is not better ...
    assert margins["copy"]["ties_chosen"] == 1.0  # ... it is a twin
    assert margins["near"]["ties_chosen"] < 0.5 and margins["weak"]["ties_chosen"] == 0.0
    assert margins["weak"]["beats_chosen"] == 0.0
    assert margins["weak"]["high"] < margins["strong"]["low"]
    # A close recipe wins on a good share of the resamples: a near tie.
    assert 0.25 <= margins["near"]["beats_chosen"] <= 0.75
    for t, m in margins.items():
        assert m["low"] == bootstrap_lower_bound("mean", clips[t], n_boot=200, seed=0)
        assert m["low"] < m["high"]
    # The chosen trial outside the table (no clip scores): nothing to say.
    assert pick_margins(table, "other") == {}
    # The bootstrap pick reads the same table whether given it or the clip scores.
    boot = SelectionRule(pick="bootstrap_lower_bound", top=4, n_boot=200)
    assert (pick_trial(rows, boot, table=bootstrap_table(rows, boot, clips, seed=3))
            == pick_trial(rows, boot, clip_scores=clips, seed=3))
    # Only the top distinct candidates with clip scores are in the table.
    assert list(bootstrap_table(rows, SelectionRule(top=2, n_boot=20), {"copy": strong})) \
        == ["copy"]


def test_bootstrap_candidates_are_distinct_recipes() -> None:
    # Issue 15: TPE re-ran one recipe; its copies must not crowd the other recipes out of the
    # top candidates. Each recipe counts once, through its best-ranked trial.
    stable = _clips(np.random.default_rng(10), sep=0.8)
    other = _clips(np.random.default_rng(11), sep=0.8)
    rows = [{"trial_id": "a1", "order": 1, "objective": 0.90, "recipe_hash": "A"},
            {"trial_id": "a2", "order": 2, "objective": 0.91, "recipe_hash": "A"},
            {"trial_id": "a3", "order": 3, "objective": 0.90, "recipe_hash": "A"},
            {"trial_id": "b", "order": 4, "objective": 0.85, "recipe_hash": "B"},
            {"trial_id": "old", "order": 5, "objective": 0.80, "recipe_hash": None},
            {"trial_id": "old2", "order": 6, "objective": 0.79},
            {"trial_id": "nan", "order": 7, "objective": 0.78, "recipe_hash": math.nan}]
    assert [r["trial_id"] for r in ranked_distinct(rows)] == ["a2", "b", "old", "old2", "nan"]
    rule = SelectionRule(pick="bootstrap_lower_bound", top=2, n_boot=20)
    scores = {"a1": stable, "a2": stable, "a3": stable, "b": other}
    chosen, bounds = pick_trial(rows, rule, clip_scores=scores)
    assert set(bounds) == {"a2", "b"}
    assert chosen in bounds
    # "best" still returns the best-ranked trial.
    assert pick_trial(rows, SelectionRule())[0] == "a2"


@pytest.mark.parametrize(("raw", "message"), [
    ({"objective": "median"}, "selection.objective"),
    ({"pick": "worst"}, "selection.pick"),
    ({"top": 0}, "selection.top"),
    ({"top": True}, "selection.top"),
    ({"quantile": 0.7}, "selection.quantile"),
    ({"n_boot": 5}, "selection.n_boot"),
    ({"objectiv": "mean"}, "unknown key"),
    ("mean", "expected a mapping"),
])
def test_parse_selection_is_strict(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_selection(raw, "space.yaml")


def test_space_file_declares_selection(tmp_path: Path) -> None:
    text = Path(load_space("smoke").path).read_text()
    good = tmp_path / "sel.yaml"
    good.write_text(text + "selection: {objective: worst_type, pick: bootstrap_lower_bound, "
                           "top: 3}\n")
    space = load_space(good)
    assert space.selection == SelectionRule(objective="worst_type",
                                            pick="bootstrap_lower_bound", top=3)
    assert load_space("smoke").selection == SelectionRule()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "selection: {objective: best_type}\n")
    with pytest.raises(SpaceError, match="bad.yaml: selection.objective"):
        load_space(bad)


def test_measured_default_rule_is_mean_with_best_pick() -> None:
    """The default is the rule with the lowest mean regret over the bench draws measured after
    the self-score fix (README, docs/benchmarks.md): objective ``mean`` (the official Ω), pick
    ``best``; the bootstrap pick, when chosen, still looks at the top 5 distinct recipes."""
    rule = parse_selection(None, "x.yaml")
    assert rule == SelectionRule()
    assert (rule.objective, rule.pick, rule.top) == ("mean", "best", 5)
    assert parse_selection({"top": 3}, "x.yaml").pick == "best"
    assert parse_selection({"pick": "bootstrap_lower_bound"}, "x.yaml").top == 5


def test_behavioural_twins_count_once() -> None:
    # Two trials whose recipes differ only in an inert parameter (e.g. a two-member hedge's
    # mean vs median: same scores) have different content hashes but one behaviour hash.
    rows = [{"trial_id": "mean", "order": 1, "objective": 0.70, "recipe_hash": "C1",
             "behaviour_hash": "B"},
            {"trial_id": "median", "order": 2, "objective": 0.71, "recipe_hash": "C2",
             "behaviour_hash": "B"},
            {"trial_id": "other", "order": 3, "objective": 0.60, "recipe_hash": "C3",
             "behaviour_hash": "D"},
            {"trial_id": "old", "order": 4, "objective": 0.65, "recipe_hash": "C4",
             "behaviour_hash": None}]
    assert [r["trial_id"] for r in ranked_distinct(rows)] == ["median", "old", "other"]
    assert distinct_key(rows[0]) == "B" and distinct_key(rows[3]) == "C4"
    assert distinct_key({"recipe_hash": math.nan}) is None


def test_the_docs_name_the_default_rule_as_the_code_has_it() -> None:
    """Found 2026-12-07 (docs/help probe): docs/benchmarks.md's description of the selection
    rules still called `leave_one_type_out` and `bootstrap_lower_bound` the defaults, two
    days after `mean` / `best` became `SelectionRule()`'s. Wherever the docs or this module
    mark an objective or a pick "(default" (not "the default then/before"), it is the code's."""
    default = SelectionRule()
    wrong = []
    for doc in ("README.md", "docs/benchmarks.md", "automl_asd/search/selection.py"):
        text = (REPO_ROOT / doc).read_text(encoding="utf-8")
        for m in re.finditer(r"`?\b(\w+)`? \((?:the )?default[;:),]", text):
            name = m.group(1)
            if name in OBJECTIVES + PICKS and name not in (default.objective, default.pick):
                wrong.append(f"{doc}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}")
    assert not wrong, "\n".join(wrong)
