"""The bootstrap final pick uses the per-clip scores trials kept and re-scores only the others,
in one batch; the choice equals the one made from re-scoring every candidate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl_asd.search.config import one_by_one
from automl_asd.search.novel_check import make_picker
from automl_asd.search.selection import SelectionRule
from automl_asd.search.trials import TrialRecord


def _clips(strength: float, seed: int) -> dict[tuple[str, str], tuple[Any, Any, Any]]:
    rng = np.random.default_rng(seed)
    out = {}
    for mt in ("fan", "valve", "pump"):
        y = np.r_[np.zeros(30), np.ones(30), np.zeros(30), np.ones(30)].astype(np.int64)
        dom = np.array(["source"] * 60 + ["target"] * 60)
        out[(mt, "00")] = (y, dom, y * strength + rng.normal(size=120))
    return out


# Per trial: its objective (ranking) and how well its clip scores separate (the bootstrap).
# "b" ranks below "a" but its scores are far better: the bootstrap pick chooses it.
TRIALS = {"a": (0.80, 0.3), "b": (0.79, 2.0), "c": (0.78, 0.5), "d": (0.70, 3.0)}
#: The bootstrap pick among the top 3 (the default pick is ``best`` since 2026-12-04).
BOOT = SelectionRule(objective="mean", pick="bootstrap_lower_bound", top=3, n_boot=50)


@dataclass
class _Result:
    per_clip: Mapping[tuple[str, str], tuple[Any, Any, Any]]
    omega: float = 0.5
    wall_s: float = 0.0


@dataclass
class _Space:
    selection: SelectionRule

    def to_recipe(self, config: Mapping[str, Any], name: str) -> Any:
        return dict(config)


@dataclass
class _Cfg:
    space: _Space
    out: Path
    cache_dir: Path | None = None
    device: str = "cpu"
    seed: int = 0


def _records(keep: set[str]) -> list[TrialRecord]:
    return [TrialRecord(trial_id=t, order=i, status="complete", config={"trial": t},
                        metrics={"omega": obj, "objective": obj}, recipe_hash=f"h{t}",
                        clip_scores=_clips(strength, i) if t in keep else None)
            for i, (t, (obj, strength)) in enumerate(TRIALS.items())]


def _pick(keep: set[str], tmp_path: Path) -> tuple[str, list[str], dict[str, Any]]:
    calls: list[str] = []
    index = {t: i for i, t in enumerate(TRIALS)}

    def evaluator(recipe: Any, machines: Any, **kwargs: Any) -> _Result:
        calls.append(recipe["trial"])
        return _Result(_clips(TRIALS[recipe["trial"]][1], index[recipe["trial"]]))

    out = tmp_path / f"run_{''.join(sorted(keep))}"
    cfg = _Cfg(_Space(BOOT), out)
    chosen = make_picker(cfg, {"fan": object()}, one_by_one(evaluator))(_records(keep))
    meta = json.loads((out / "search.json").read_text())["selection"]
    return chosen, calls, meta


def test_kept_scores_are_not_rescored_and_the_pick_is_the_same(tmp_path: Path) -> None:
    every, calls_all, meta_all = _pick(set(), tmp_path)
    assert every == "b"  # the bootstrap overrules the objective's ranking
    assert calls_all == ["a", "b", "c"] and meta_all["rescored"] == ["a", "b", "c"]
    kept, calls_kept, meta_kept = _pick({"a", "b", "c", "d"}, tmp_path)
    assert calls_kept == [] and meta_kept["rescored"] == []
    some, calls_some, meta_some = _pick({"b"}, tmp_path)
    assert calls_some == ["a", "c"] and meta_some["rescored"] == ["a", "c"]
    assert every == kept == some
    assert meta_all["lower_bounds"] == meta_kept["lower_bounds"] == meta_some["lower_bounds"]
    assert set(meta_all["lower_bounds"]) == {"a", "b", "c"}  # "d" is outside the top 3


def test_only_the_candidates_kept_scores_are_read(tmp_path: Path) -> None:
    # Scores kept in (maybe remote) checkpoints are read lazily: the top-3 candidates' only.
    read: list[str] = []

    def loader(t: str, i: int) -> Any:
        def load() -> Any:
            read.append(t)
            return _clips(TRIALS[t][1], i)
        return load

    lazy = [replace(r, clip_scores_loader=loader(r.trial_id, i))
            for i, r in enumerate(_records(set()))]
    assert read == []  # building the records reads nothing
    cfg = _Cfg(_Space(BOOT), tmp_path)
    chosen = make_picker(cfg, {"fan": object()}, one_by_one(_never))(lazy)
    assert sorted(read) == ["a", "b", "c"]  # not "d", outside the top 3
    meta = json.loads((tmp_path / "search.json").read_text())["selection"]
    assert meta["rescored"] == []
    assert chosen == _pick({"a", "b", "c", "d"}, tmp_path)[0]


def _never(recipe: Any, machines: Any, **kwargs: Any) -> Any:
    raise AssertionError("nothing should be re-scored")


def test_a_best_pick_reports_how_sure_it_is_and_rescores_nothing(tmp_path: Path) -> None:
    # "best" freezes "a" (highest objective) though "b"'s kept scores separate far better:
    # the margins say so. Nothing is re-scored; "c" kept none and is left out; "d" is
    # outside the top 3.
    best = replace(BOOT, pick="best")
    cfg = _Cfg(_Space(best), tmp_path)
    chosen = make_picker(cfg, {"fan": object()}, one_by_one(_never))(_records({"a", "b", "d"}))
    assert chosen == "a"
    meta = json.loads((tmp_path / "search.json").read_text())["selection"]
    assert meta["chosen"] == meta["best_by_objective"] == "a"
    assert meta["lower_bounds"] == {} and meta["rescored"] == []
    assert set(meta["margins"]) == {"a", "b"}
    assert "beats_chosen" not in meta["margins"]["a"]
    assert meta["margins"]["b"]["beats_chosen"] == 1.0
    assert meta["margins"]["b"]["low"] > meta["margins"]["a"]["high"]
    # 30 clips in every (domain, label) group: not a small test set (the report adds no
    # caution; tests/unit/search/test_reliability.py checks the report's side).
    assert (meta["smallest_group"], meta["small_group_below"]) == (30, 25)
    # ... and `search` / `demo` print it in one line.
    from automl_asd.io.search_report import pick_certainty_line

    assert pick_certainty_line(tmp_path) == (
        "how sure is the pick: 1 of the other 1 top recipes beats it on >= 25 % of bootstrap "
        "resamples of the development clips (near ties: see the search report)")
    assert pick_certainty_line(tmp_path / "nowhere") is None
    # The bootstrap pick chooses "b"; then "a" never beats it.
    _, _, boot = _pick({"a", "b", "c", "d"}, tmp_path)
    assert boot["chosen"] == "b" and boot["margins"]["a"]["beats_chosen"] == 0.0
    assert set(boot["margins"]) == set(boot["lower_bounds"]) == {"a", "b", "c"}
    assert all(boot["margins"][t]["low"] == boot["lower_bounds"][t] for t in "abc")


def test_a_failing_margin_read_out_keeps_the_choice(tmp_path: Path, monkeypatch: Any) -> None:
    import automl_asd.search.novel_check as nc

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("resamples differ")

    monkeypatch.setattr(nc, "pick_margins", broken)
    chosen, calls, meta = _pick({"a", "b", "c", "d"}, tmp_path)
    assert chosen == "b" and calls == []  # the bootstrap pick as without the read-out
    assert meta["margins"] == {} and set(meta["lower_bounds"]) == {"a", "b", "c"}


def test_a_failing_rescore_freezes_the_best_trial(tmp_path: Path) -> None:
    def evaluator(recipe: Any, machines: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory")

    cfg = _Cfg(_Space(BOOT), tmp_path)
    pick = make_picker(cfg, {"fan": object()}, one_by_one(evaluator))
    # An earlier pick of the run (e.g. before --resume) left its figures in search.json.
    (tmp_path / "search.json").write_text(json.dumps({"seed": 3, "selection": {
        "chosen": "b", "margins": {"b": {}, "a": {"beats_chosen": 0.5}}}}))
    assert pick(_records({"b"})) == "a"
    meta = json.loads((tmp_path / "search.json").read_text())
    assert meta["seed"] == 3  # the rest of search.json is kept
    sel = meta["selection"]
    assert (sel["chosen"], sel["best_by_objective"], sel["margins"]) == ("a", "a", {})
    assert sel["failed"].startswith("RuntimeError: out of memory")
    from automl_asd.io.search_report import _extra_sections, pick_certainty_line

    assert pick_certainty_line(tmp_path) is None  # no stale near ties
    text = "\n".join(_extra_sections(pd.DataFrame(), meta))
    assert "pick failed (RuntimeError: out of memory" in text
    assert "the best trial by the objective was frozen." in text


def test_one_by_one_reports_each_recipe_in_order() -> None:
    seen: list[tuple[int, float]] = []

    def evaluator(recipe: Any, machines: Any, **kwargs: Any) -> _Result:
        return _Result({}, omega=float(recipe))

    results = one_by_one(evaluator)([0.1, 0.2, 0.3], {}, on_done=lambda i, r, s: seen.append(
        (i, r.omega)))
    assert [r.omega for r in results] == [0.1, 0.2, 0.3]
    assert seen == [(0, 0.1), (1, 0.2), (2, 0.3)]




def test_the_report_says_which_candidates_were_rescored() -> None:
    import pandas as pd

    from automl_asd.io.search_report import _extra_sections

    def section(rescored: list[str]) -> str:
        meta = {"selection": {"rule": "r", "best_by_objective": "a", "chosen": "b",
                              "lower_bounds": {"a": 0.6, "b": 0.7}, "rescored": rescored}}
        return "\n".join(_extra_sections(pd.DataFrame(), meta))

    assert "kept by every candidate's trial, nothing re-scored" in section([])
    assert "re-scored for `a` (no scores kept by their trial)" in section(["a"])
    old = {"selection": {"rule": "r", "best_by_objective": "a", "chosen": "a",
                         "lower_bounds": {"a": 0.6}}}  # a search.json from before the field
    assert "Per-clip scores" not in "\n".join(_extra_sections(pd.DataFrame(), old))


def test_the_report_says_how_sure_the_pick_is() -> None:
    import pandas as pd

    from automl_asd.io.search_report import _extra_sections, _margin_lines

    table = pd.DataFrame({"trial_id": ["a", "b", "c"], "objective": [0.71, 0.70, 0.65]})

    def selection(beats_b: float) -> dict[str, Any]:
        return {"rule": "r", "best_by_objective": "a", "chosen": "a", "lower_bounds": {},
                "rescored": [], "near_tie": 0.25,
                "margins": {"a": {"low": 0.68, "high": 0.74},
                            "b": {"low": 0.66, "high": 0.73, "beats_chosen": beats_b},
                            "c": {"low": 0.61, "high": 0.69, "beats_chosen": 0.02}}}

    tied = "\n".join(_margin_lines(table, selection(0.41)))
    assert "### How sure is the pick?" in tied
    assert "| a (chosen) | 0.7100" in tied and "| 41 % |" in tied and "| 2 % |" in tied
    assert "**1 of the other 2** beats the chosen trial on at least 25 %" in tied
    assert "**2 of the other 2** beat the chosen trial" in "\n".join(_margin_lines(table, {
        **selection(0.41), "margins": {**selection(0.41)["margins"], "c": {
            "low": 0.61, "high": 0.69, "beats_chosen": 0.3}}}))
    assert "None of the other 2 beats the chosen trial" in "\n".join(
        _margin_lines(table, selection(0.1)))
    # A twin (equal on every resample: e.g. another threshold) is neither beaten nor
    # "separated".
    twin = {**selection(0.0), "margins": {**selection(0.0)["margins"], "b": {
        "low": 0.68, "high": 0.74, "beats_chosen": 0.0, "ties_chosen": 1.0}}}
    text = "\n".join(_margin_lines(table, twin))
    assert "| same scores |" in text
    assert "None of the other 1 beats the chosen trial" in text
    assert "1 of the other 2 scores every resample exactly like the chosen trial" in text
    only_twins = {**twin, "margins": {k: v for k, v in twin["margins"].items() if k != "c"}}
    text = "\n".join(_margin_lines(table, only_twins))
    assert "separate" not in text and "1 of the other 1 scores every resample" in text
    # The final-pick section carries it (a best pick too) ...
    assert "How sure is the pick?" in "\n".join(
        _extra_sections(pd.DataFrame(), {"selection": selection(0.41)}))
    # ... but not from a search.json from before the field, nor with one candidate only.
    one = {**selection(0.41), "margins": {"a": {"low": 0.68, "high": 0.74}}}
    assert _margin_lines(table, one) == []
    assert "How sure" not in "\n".join(_extra_sections(pd.DataFrame(), {"selection": {
        "rule": "r", "best_by_objective": "a", "chosen": "a", "lower_bounds": {}}}))
