"""Leave-one-out with the search and the held-out evaluation handed in (no Ray, no Tune)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from automl_asd.data import MachineData
from automl_asd.evaluation.metrics import MachineMetrics
from automl_asd.evaluation.objective import ObjectiveResult
from automl_asd.recipe import Recipe
from automl_asd.search.config import SearchConfig, SearchOutcome
from automl_asd.search.loo import fold_dir, run_leave_one_out
from automl_asd.search.space import load_space


def _result(omega: float, types: Sequence[str]) -> ObjectiveResult:
    m = MachineMetrics(omega, omega, omega, omega)
    return ObjectiveResult(omega=omega, per_type={(t, "00"): m for t in types}, fidelity=1.0,
                           wall_s=0.0)


def _evaluate_on(recipes: Sequence[Recipe], data: Mapping[str, MachineData]
                 ) -> list[ObjectiveResult]:
    """The held-out evaluation: Ω 0.65 for the fold's recipe, 0.5 for the reference."""
    return [_result(0.65, list(data)), _result(0.5, list(data))]


def _fold_written(fold: SearchConfig, recipe: Recipe, trial_ids: Sequence[str],
                  **outcome: Any) -> SearchOutcome:
    """What a fold's search leaves: ``recipe.json`` and ``trials.parquet`` in its folder,
    and its outcome (best trial ``a``, Ω 0.7, reference 0.6; ``outcome``: other fields)."""
    fold.out.mkdir(parents=True, exist_ok=True)
    (fold.out / "recipe.json").write_text(recipe.to_json())
    trials = pd.DataFrame({"trial_id": list(trial_ids)})
    trials.to_parquet(fold.out / "trials.parquet")
    return SearchOutcome(run_dir=fold.out, recipe=recipe, best_omega=0.7, best_trial_id="a",
                         reference_omega=0.6, trials=trials,
                         machine_types=fold.machine_types or (), **outcome)


def test_one_fold_per_type_searches_the_others_and_scores_the_held_out_one(
    tmp_path: Path,
) -> None:
    space = load_space("smoke")
    machines: dict[str, Any] = {"fan": object(), "gearbox": object(), "bearing": object()}
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=3,
                       storage="s3://bucket/run", resume=True)
    other = {**space.reference_point(), "normalization.method": "none"}
    searched: list[SearchConfig] = []
    scored: list[tuple[list[str], list[str]]] = []

    def search(fold: SearchConfig) -> SearchOutcome:
        searched.append(fold)
        recipe = space.to_recipe(other, name="fold")
        fold.out.mkdir(parents=True)
        return SearchOutcome(run_dir=fold.out, recipe=recipe, best_omega=0.7,
                             best_trial_id=f"t-{fold.out.name}", reference_omega=0.6,
                             trials=pd.DataFrame(), machine_types=fold.machine_types or ())

    def evaluate_on(recipes: Sequence[Recipe], data: Mapping[str, MachineData]
                    ) -> list[ObjectiveResult]:
        assert all(data[t] is machines[t] for t in data)  # the driver's scan, not a rescan
        scored.append(([r.name for r in recipes], sorted(data)))
        return [_result(0.65, list(data)), _result(0.5, list(data))]

    loo = run_leave_one_out(cfg, machines, search=search, evaluate_on=evaluate_on,
                            has_state=lambda held, d: held == "gearbox")
    assert [f.machine_types for f in searched] == [("fan", "gearbox"), ("bearing", "gearbox"),
                                                   ("bearing", "fan")]
    assert [f.out for f in searched] == [fold_dir(cfg.out.resolve(), t)
                                         for t in ("bearing", "fan", "gearbox")]
    assert [f.storage for f in searched] == [f"s3://bucket/run/loo/{t}"
                                             for t in ("bearing", "fan", "gearbox")]
    assert [f.resume for f in searched] == [False, False, True]  # only where state was kept
    assert not any(f.prewarm for f in searched)
    assert scored == [(["fold", space.reference_name], [t])
                      for t in ("bearing", "fan", "gearbox")]
    table = loo.table.set_index("held_out")
    assert table["gap"].tolist() == pytest.approx([0.05] * 3)
    assert table["reference_held_out_omega"].tolist() == [0.5] * 3
    assert table.loc["fan", "trial_id"] == "t-fan"
    # smoke's first point is not fast_default itself (n_mels 64): the summary line calls it
    # what the table's caption does (found 2026-12-07: "mean reference-recipe held-out Ω")
    md = (cfg.out / "leave_one_out.md").read_text()
    assert "is the space's reference point (`fast_default` as this space sets it" in md
    assert "; mean reference point held-out Ω 0.5000." in md and "reference-recipe" not in md


def test_leave_one_out_needs_two_types(tmp_path: Path) -> None:
    cfg = SearchConfig(data=tmp_path, space=load_space("smoke"), out=tmp_path, trials=1)
    one: dict[str, Any] = {"fan": object()}

    def never(*args: Any) -> Any:
        raise AssertionError("no fold may run")

    with pytest.raises(ValueError, match="at least 2 development types"):
        run_leave_one_out(cfg, one, search=never, evaluate_on=never, has_state=never)


def test_resume_reuses_only_folds_that_finished(tmp_path: Path) -> None:
    """An interrupted fold leaves recipe.json and trials.parquet behind too (its partial
    pick); --resume searches it again instead of reusing that pick."""
    space = load_space("smoke")
    machines: dict[str, Any] = {"bearing": object(), "fan": object()}
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=3)
    searched: list[str] = []
    interrupt = {"fan"}

    def search(fold: SearchConfig) -> SearchOutcome:
        held = fold.out.name
        searched.append(held)
        return _fold_written(fold, space.to_recipe(space.reference_point(), name="fold"),
                             ["a", "b"], interrupted=held in interrupt)


    with pytest.raises(KeyboardInterrupt, match="fold fan interrupted"):
        run_leave_one_out(cfg, machines, search=search, evaluate_on=_evaluate_on,
                          has_state=lambda held, d: True)
    assert searched == ["bearing", "fan"]
    interrupt.clear()
    resumed = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=3,
                           resume=True)
    loo = run_leave_one_out(resumed, machines, search=search, evaluate_on=_evaluate_on,
                            has_state=lambda held, d: True)
    assert searched == ["bearing", "fan", "fan"]  # bearing finished: read back, not searched
    assert sorted(loo.table["held_out"]) == ["bearing", "fan"]
    assert loo.table["trials"].tolist() == [3, 3]


def test_trials_per_fold_says_when_reused_folds_asked_for_another_count() -> None:
    """Found 2026-12-07: `--leave-one-out --resume --trials 6` reused folds searched with 4
    and the summary and leave_one_out.md said "6 trials per fold"."""
    from automl_asd.search.loo import trials_per_fold

    assert trials_per_fold(pd.DataFrame({"trials": [4, 4, 4]})) == 4
    assert trials_per_fold(pd.DataFrame({"trials": [4, 6, 4]})) == "4 to 6"


def test_resume_refuses_a_finished_fold_of_another_search(tmp_path: Path) -> None:
    """Found by a review (2026-12-07): `--leave-one-out --resume` reused finished folds
    whatever changed (another space, seed or development types), and the table then named
    the new settings next to the old folds' results."""
    from dataclasses import replace

    from automl_asd.io import search_report as io
    from automl_asd.search.config import run_meta

    space = load_space("smoke")
    machines: dict[str, Any] = {"bearing": object(), "fan": object()}
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=3)

    def search(fold: SearchConfig) -> SearchOutcome:
        outcome = _fold_written(
            fold, fold.space.to_recipe(fold.space.reference_point(), name="fold"), ["a"])
        io.write_search_meta(fold.out, run_meta(fold, fold.machine_types or (), {}))
        return outcome


    def run(c: SearchConfig, types: Mapping[str, Any] = machines) -> Any:
        return run_leave_one_out(c, types, search=search, evaluate_on=_evaluate_on,
                                 has_state=lambda held, d: False)

    run(cfg)
    assert len(run(replace(cfg, resume=True)).table) == 2  # the same search: reused
    with pytest.raises(ValueError, match=r"loo/bearing: cannot resume: seed \(--seed\)"):
        run(replace(cfg, resume=True, seed=7))
    with pytest.raises(ValueError, match=r"space_sha256 \(the space file\)"):
        run(replace(cfg, resume=True, space=load_space("demo")))
    with pytest.raises(ValueError, match=r"machine_types \(the development types\)"):
        run(replace(cfg, resume=True), {**machines, "valve": object()})


def test_a_fold_its_time_budget_stopped_short_is_continued_by_resume(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by a review (2026-12-07): a fold its budget stopped with trials left, or with
    trials stopped before their first result, was marked finished, and --resume reused it
    although its log and report said --resume would run them."""
    import logging

    from automl_asd.io.search_report import unfinished_folds
    from automl_asd.search.trials import record_from_result

    space = load_space("smoke")
    machines: dict[str, Any] = {"bearing": object(), "fan": object()}
    ref = space.reference_point()
    other = {**ref, "normalization.method": "none"}
    done_metrics = {"omega": 0.7, "fidelity": 1.0}
    # per held-out type: what each of its searches ends with (records)
    plans = {
        "bearing": [[record_from_result("a", 1, ref, done_metrics, None)],  # 1 of 3 made
                    [record_from_result(t, i, c, done_metrics, None)
                     for i, (t, c) in enumerate([("a", ref), ("b", other), ("c", ref)], 1)]],
        # ASHA stopped the reference early, TPE proposed it again, the budget stopped that
        # trial before its first result: it runs again
        "fan": [[record_from_result("a", 1, ref, {"omega": 0.6, "fidelity": 0.5}, None),
                 record_from_result("b", 2, other, done_metrics, None),
                 record_from_result("c", 3, ref, None, None)],
                [record_from_result("a", 1, ref, {"omega": 0.6, "fidelity": 0.5}, None),
                 record_from_result("b", 2, other, done_metrics, None),
                 record_from_result("c", 3, ref, None, None),
                 record_from_result("d", 4, ref, done_metrics, None)]],
    }
    searched: list[tuple[str, bool]] = []

    def search(fold: SearchConfig) -> SearchOutcome:
        held = fold.out.name
        records = plans[held].pop(0)
        searched.append((held, fold.resume))
        return _fold_written(fold, space.to_recipe(ref, name="fold"),
                             [r.trial_id for r in records], records=tuple(records))


    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=3,
                       time_budget_s=10.0)
    with caplog.at_level(logging.INFO, logger="automl_asd.search.loo"):
        first = run_leave_one_out(cfg, machines, search=search, evaluate_on=_evaluate_on,
                                  has_state=lambda held, d: True)
    assert "fold bearing: stopped by the time budget (1 of 3 trials made)" in caplog.text
    assert "fold fan: stopped by the time budget (3 of 3 trials made, 1 to run again)" \
        in caplog.text
    assert not any((fold_dir(cfg.out, t) / "fold_done.json").exists() for t in machines)
    # the table and leave_one_out.md say so too (found by a probe: only an INFO line did)
    assert unfinished_folds(first.table) == ["bearing", "fan"]
    md = (cfg.out / "leave_one_out.md").read_text()
    assert "Stopped by the time budget before finishing**: fold(s) bearing, fan" in md
    again = run_leave_one_out(SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo",
                                           trials=3, resume=True), machines, search=search,
                              evaluate_on=_evaluate_on, has_state=lambda held, d: True)
    assert searched == [("bearing", False), ("fan", False), ("bearing", True), ("fan", True)]
    assert all((fold_dir(cfg.out, t) / "fold_done.json").exists() for t in machines)
    assert unfinished_folds(again.table) == []
    assert "Stopped by the time budget" not in (cfg.out / "leave_one_out.md").read_text()


def test_a_fold_its_budget_ended_before_any_trial_finished_leaves_the_others_going(
        tmp_path: Path) -> None:
    """Found by a probe (2026-12-07): under --time-budget, one fold without a finished trial
    ("no trial finished at full fidelity") ended the whole leave-one-out command, and the
    folds already searched were not reported. Without a budget it is still an error."""
    from dataclasses import replace

    from automl_asd.io.search_report import unfinished_folds
    from automl_asd.search.freeze import NothingFinishedError

    space = load_space("smoke")
    machines: dict[str, Any] = {"bearing": object(), "fan": object()}
    ref = space.reference_point()

    def search(fold: SearchConfig) -> SearchOutcome:
        if fold.out.name == "bearing":
            raise NothingFinishedError("no trial finished at full fidelity (2 trial(s))")
        return _fold_written(fold, space.to_recipe(ref, name="fold"), ["a", "b", "c"])


    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=3,
                       time_budget_s=5.0)
    out = run_leave_one_out(cfg, machines, search=search, evaluate_on=_evaluate_on,
                            has_state=lambda held, d: False)
    assert list(out.table["held_out"]) == ["bearing", "fan"]
    assert unfinished_folds(out.table) == ["bearing"]
    assert out.table.set_index("held_out").loc["fan", "held_out_omega"] == pytest.approx(0.65)
    assert "fold(s) bearing" in (cfg.out / "leave_one_out.md").read_text()
    with pytest.raises(NothingFinishedError):
        run_leave_one_out(replace(cfg, time_budget_s=None, out=tmp_path / "loo2"), machines,
                          search=search, evaluate_on=_evaluate_on,
                          has_state=lambda held, d: False)
    # no fold finished: the report has no means of nothing ("Mean in-search Ω nan")
    def nothing(fold: SearchConfig) -> SearchOutcome:
        raise NothingFinishedError("no trial finished at full fidelity (2 trial(s))")

    none = run_leave_one_out(replace(cfg, out=tmp_path / "loo3"), machines, search=nothing,
                             evaluate_on=_evaluate_on, has_state=lambda held, d: False)
    assert unfinished_folds(none.table) == ["bearing", "fan"]
    report = (tmp_path / "loo3" / "leave_one_out.md").read_text()
    assert "nan" not in report and "Mean in-search" not in report


def test_folds_of_a_space_smaller_than_trials_finish_at_the_space_s_count(
        tmp_path: Path) -> None:
    """Found by a review (2026-12-07): the search capped a fold at the space's 26 points but
    leave-one-out judged it against --trials 40, so with a time budget no fold ever finished
    (and --resume could not finish it). The configuration holds the capped count."""
    from automl_asd.io.search_report import unfinished_folds

    space = load_space("smoke")
    machines: dict[str, Any] = {"bearing": object(), "fan": object()}
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path / "loo", trials=40,
                       time_budget_s=3600.0)
    assert cfg.trials == 26

    def search(fold: SearchConfig) -> SearchOutcome:  # runs every trial it was given
        return _fold_written(fold, space.to_recipe(space.reference_point(), name="fold"),
                             [str(i) for i in range(fold.trials)])

    loo = run_leave_one_out(cfg, machines, search=search, evaluate_on=_evaluate_on,
                            has_state=lambda held, d: True)
    assert unfinished_folds(loo.table) == [] and list(loo.table["trials"]) == [26, 26]
    assert all((fold_dir(cfg.out, t) / "fold_done.json").exists() for t in machines)
