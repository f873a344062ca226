"""``automl-asd search`` end to end with Ray Tune on tiny synthetic trees.

* a real smoke search (CLI) whose frozen recipe reproduces its Ω with the serial ``apply``
  runner, then ``apply --frozen`` on other machine types and ``evaluate`` on the outputs;
* resume: a search interrupted (SIGINT) after two trials continues without rerunning them;
* a failing trial is recorded and the search goes on; leave-one-out (stand-in objective).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ray import tune

from automl_asd.cli import main
from automl_asd.data import MachineData
from automl_asd.evaluation.metrics import MachineMetrics
from automl_asd.evaluation.objective import ObjectiveResult
from automl_asd.orchestration.tune import run_leave_one_out, run_search
from automl_asd.recipe import Recipe, load_recipe
from automl_asd.search.config import SearchConfig
from automl_asd.search.space import SearchSpace, load_space

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def dev_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_dev_root`` from tests/conftest.py, else three tiny dev types written here."""
    try:
        return Path(request.getfixturevalue("tiny_dev_root"))
    except pytest.FixtureLookupError:
        from automl_asd.synth import DEV_MACHINE_TYPES, generate

        root = tmp_path_factory.mktemp("dev")
        generate(root, machine_types=list(DEV_MACHINE_TYPES[:3]), size="tiny", seed=0)
        return root


@pytest.fixture(scope="module")
def novel_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return Path(request.getfixturevalue("tiny_novel_root"))
    except pytest.FixtureLookupError:
        from automl_asd.synth import NOVEL_MACHINE_TYPES, generate

        root = tmp_path_factory.mktemp("novel")
        generate(root, machine_types=list(NOVEL_MACHINE_TYPES[:2]), size="tiny", seed=0)
        return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _types(root: Path) -> list[str]:
    from automl_asd.data import find_machine_dirs

    return sorted(find_machine_dirs(root))


def test_smoke_search_cli_end_to_end(
    ray_session: None, dev_root: Path, novel_root: Path, cache_dir: Path,  # noqa: F811
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from automl_asd.apply import ApplyConfig, SerialRunner, apply_recipe

    run = tmp_path / "run"
    # The smoke space with the bootstrap final pick (the default pick is `best`), so that the
    # pick's use of the trials' kept per-clip scores is exercised end to end.
    space_file = tmp_path / "smoke_boot.yaml"
    space_file.write_text(Path(load_space("smoke").path).read_text()
                          + "selection: {objective: mean, pick: bootstrap_lower_bound}\n")
    assert main(["search", "--data", str(dev_root), "--space", str(space_file), "--trials", "4",
                 "--max-concurrent", "2", "--seed", "3", "--out", str(run),
                 "--cache-dir", str(cache_dir)]) == 0
    printed = capsys.readouterr().out
    assert "best trial" in printed and "frozen recipe" in printed

    for name in ("recipe.json", "trials.parquet", "search_report.md", "omega_over_trials.png",
                 "search.json"):
        assert (run / name).is_file(), name
    trials = pd.read_parquet(run / "trials.parquet")
    assert len(trials) == 4
    assert trials["order"].tolist() == [1, 2, 3, 4]
    first = trials.iloc[0]
    assert bool(first["is_reference"]) and first["status"] == "complete"
    assert first["fidelity"] == 1.0
    assert set(trials["status"]) <= {"complete", "stopped_early", "error"}
    # Issue 15: the searcher does not launch a recipe that already ran or is running.
    complete_hashes = trials.loc[trials["status"] == "complete", "recipe_hash"]
    assert not complete_hashes.duplicated().any()
    mtypes = _types(dev_root)
    for mt in mtypes:
        assert trials[f"{mt}/auc_source"].notna().all()

    recipe = load_recipe(run / "recipe.json")
    prov = recipe.provenance
    space = load_space(space_file)
    assert space.selection.pick == "bootstrap_lower_bound"
    assert prov.source == "search" and prov.space_name == "smoke"
    assert prov.space_sha256 == space.sha256
    assert list(prov.dev_machine_types) == mtypes
    done = trials[trials["status"] == "complete"]
    assert prov.objective == pytest.approx(done["omega"].max())
    assert prov.objective is not None and prov.objective >= first["omega"]  # >= reference Ω
    assert prov.trial_id == done.loc[done["omega"].idxmax(), "trial_id"]
    assert prov.dev_data is not None and prov.dev_data.machine_types == tuple(mtypes)
    assert prov.dev_data.n_files == len(list(dev_root.rglob("*.wav")))
    assert set(prov.versions) >= {"automl-asd", "ray", "optuna", "torch", "numpy"}
    report = (run / "search_report.md").read_text()
    assert prov.trial_id in report
    assert "| trial_id | status | omega | fidelity | wall_s | recipe |" in report
    # the smoke space sets values of its own: its first point is not fast_default itself
    assert "reference point (`fast_default` as this space sets it: not the recipe itself)" \
        in report
    assert "baseline Ω" not in report
    assert "- duplicate proposals skipped: " in report
    assert (run / "omega_over_trials.png").stat().st_size > 5000

    # The final pick read each candidate's per-clip scores from its trial's last checkpoint
    # (nothing re-scored), and those stored scores are exactly what scoring the frozen recipe
    # again gives.
    selection = json.loads((run / "search.json").read_text())["selection"]
    assert selection["rescored"] == [] and prov.trial_id in selection["lower_bounds"]
    assert "Per-clip scores: kept by every candidate's trial, nothing re-scored." in report
    from automl_asd.data import scan
    from automl_asd.evaluation.objective import evaluate_recipe
    from automl_asd.io.clip_scores import load_clip_scores

    saved = sorted((run / "tune").glob(f"*{prov.trial_id}*/checkpoint_*/clip_scores.npz"))
    assert len(saved) == 1, saved  # only the full-fidelity rung keeps them
    stored = load_clip_scores(saved[0].parent)
    fresh = evaluate_recipe(recipe, scan(dev_root), cache_dir=cache_dir, device="cpu").per_clip
    assert stored is not None and list(stored) == list(fresh)
    for key, (y, domains, scores) in fresh.items():
        assert stored[key][0].tolist() == y.tolist()
        assert stored[key][1].tolist() == domains.tolist()
        assert stored[key][2].tobytes() == scores.astype("float64").tobytes()

    # the frozen recipe reproduces its reported Ω with the serial apply runner
    applied = apply_recipe(ApplyConfig(recipe, dev_root, tmp_path / "dev_apply",
                                       cache_dir=cache_dir, plots=False), runner=SerialRunner())
    assert applied.official_score == pytest.approx(prov.objective, abs=1e-6)

    # apply the frozen recipe to other machine types (Ray tasks), then evaluate the CSVs
    out = tmp_path / "novel_out"
    assert main(["apply", "--frozen", str(run / "recipe.json"), "--data", str(novel_root),
                 "--out", str(out), "--cache-dir", str(cache_dir), "--no-plots"]) == 0
    assert main(["evaluate", "--scores", str(out), "--ground-truth", str(novel_root),
                 "--json", str(tmp_path / "eval.json")]) == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert set(evaluated["machine_types"]) == set(_types(novel_root))
    assert 0.0 < evaluated["official_score"] <= 1.0


_INTERRUPTED: dict[str, bool] = {}


class _InterruptAfter(tune.Callback):
    """Tune callback sending SIGINT (like Ctrl+C) once ``n`` trials have finished; only once
    per ``key`` (Tune restores run callbacks on resume)."""

    def __init__(self, n: int, key: str) -> None:
        self.n, self.key = n, key

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        done = sum(t.status == "TERMINATED" for t in trials)
        if done >= self.n and not _INTERRUPTED.get(self.key):
            _INTERRUPTED[self.key] = True
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_search_resumes_without_rerunning_finished_trials(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    types = tuple(_types(dev_root)[:2])
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=4, machine_types=types, cache_dir=cache_dir, seed=5)
    with caplog.at_level(logging.INFO):
        first = run_search(cfg, callbacks=[_InterruptAfter(2, str(tmp_path))])
    assert first.interrupted
    # ours says how to continue; Ray's Tuner.restore(...) hint is for API users, not the CLI's
    assert "continue with --resume" in caplog.text and "Tuner.restore" not in caplog.text
    # the report says it is interim (found 2026-12-07: it read like a finished search)
    report = (cfg.out / "search_report.md").read_text()
    assert "**interrupted** after" in report and "`--resume` continues" in report
    finished = first.trials[first.trials["status"].isin(["complete", "stopped_early"])]
    assert 2 <= len(finished) < 4

    with pytest.raises(ValueError, match="already holds a search; pass --resume"):
        run_search(cfg)
    resumed_at = time.time()
    second = run_search(replace(cfg, resume=True))
    assert not second.interrupted
    table = second.trials.set_index("trial_id")
    assert len(table) == 4
    assert set(table["status"]) <= {"complete", "stopped_early"}
    for _, row in finished.iterrows():
        again = table.loc[row["trial_id"]]
        # same result, reported before the resume: the trial was not run again
        assert again["omega"] == row["omega"]
        assert again["finished_at"] == row["finished_at"] < resumed_at
    new = table.drop(index=finished["trial_id"])
    assert len(new) and (new["finished_at"] >= int(resumed_at)).all()
    assert load_recipe(cfg.out / "recipe.json").provenance.objective == second.best_omega
    assert "**interrupted**" not in (cfg.out / "search_report.md").read_text()


def _stand_in(recipe: Recipe, machines: Mapping[str, MachineData], *, cache_dir: Any = None,
              device: str = "auto", fidelity: float = 1.0) -> ObjectiveResult:
    """Cheap deterministic objective: Ω grows with kNN k; every AE trial fails."""
    if recipe.detector.name == "dcase_ae":
        raise RuntimeError("stand-in failure for dcase_ae")
    k = recipe.detector.params["backend"]["params"]["k"]
    value = 0.55 + 0.1 * k * fidelity + len(machines) * 0.001
    per_type = {(mt, "00"): MachineMetrics(value, value, value, value) for mt in machines}
    return ObjectiveResult(omega=value, per_type=per_type, fidelity=fidelity, wall_s=0.0)


def test_leave_one_out_records_failing_trials(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
) -> None:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "loo",
                       trials=3, machine_types=types, cache_dir=cache_dir, seed=0,
                       prewarm=False)
    loo = run_leave_one_out(cfg, evaluator=_stand_in)
    # failing trials are recorded with their message and the searches went on
    fold_tables = pd.concat([f.trials for f in loo.folds.values()])
    assert len(fold_tables) == 3 * len(types)
    errors = fold_tables.loc[fold_tables["status"] == "error", "error"]
    assert len(errors), "seed 0 samples the AE in a fold"
    assert errors.str.contains("stand-in failure for dcase_ae").all()
    assert all(f.recipe.detector.name == "pooled_stats" for f in loo.folds.values())
    reports = [(tmp_path / "loo" / "loo" / t / "search_report.md").read_text() for t in types]
    assert any("Failed trials" in r for r in reports)

    table = loo.table.set_index("held_out")
    assert sorted(table.index) == sorted(types)
    for held in types:
        fold = loo.folds[held]
        assert fold.machine_types == tuple(m for m in types if m != held)
        assert (tmp_path / "loo" / "loo" / held / "recipe.json").is_file()
        k = fold.recipe.detector.params["backend"]["params"]["k"]
        # in-search Ω on one type (the other), held-out Ω on the held-out type (stand-in)
        assert table.loc[held, "in_search_omega"] == pytest.approx(0.55 + 0.1 * k + 0.001)
        assert table.loc[held, "held_out_omega"] == pytest.approx(0.55 + 0.1 * k + 0.001)
        assert table.loc[held, "reference_held_out_omega"] == pytest.approx(0.651)
    md = (tmp_path / "loo" / "leave_one_out.md").read_text()
    assert "held_out_omega" in md and all(t in md for t in types)


def _constant(recipe: Recipe, machines: Mapping[str, MachineData], **kwargs: Any
              ) -> ObjectiveResult:
    fidelity = float(kwargs.get("fidelity", 1.0))
    per_type = {(mt, "00"): MachineMetrics(0.6, 0.6, 0.6, 0.6) for mt in machines}
    return ObjectiveResult(omega=0.6, per_type=per_type, fidelity=fidelity, wall_s=0.0)


_INERT_SPACE = """name: inert
description: four points, two recipes (coarse_frames is inert without a coarse view)
reference: fast_default
fidelity: {rungs: [0.5, 1.0], reduction_factor: 2}
space:
  features: {n_mels: 64}
  detector:
    choose:
      pooled_stats: {pooling: mean_std}
      hedge: {views: fine, backends: knn+mahalanobis, combine: mean,
              coarse_frames: {choice: [4, 8, 16]}}
"""


@pytest.mark.ray
def test_a_search_ends_when_every_recipe_of_its_space_has_run(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found 2026-12-08: once TPE proposed only run recipes, the duplicate was launched after
    25 proposals, again and again (smoke: 12 of 26 trials); a space whose every recipe ran
    then said "the run state may be damaged". It ends, and says why."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    space = tmp_path / "inert.yaml"
    space.write_text(_INERT_SPACE)
    loaded = load_space(space)
    assert SearchConfig(data=dev_root, space=loaded, out=tmp_path / "o", trials=9).trials == 2
    # a space too large to count its recipes (over POINTS_LIMIT) is capped at its points
    monkeypatch.setattr(SearchSpace, "n_recipes", lambda self, limit=0: None)
    cfg = SearchConfig(data=dev_root, space=loaded, out=tmp_path / "run", trials=9,
                       machine_types=tuple(_types(dev_root)[:1]), cache_dir=cache_dir,
                       seed=0, prewarm=False)
    assert cfg.trials == 4
    with caplog.at_level(logging.INFO):
        run_search(cfg, evaluator=_constant)
    table = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    assert len(table) == 2 and table["behaviour_hash"].nunique() == 2
    assert ("search ran 2 of 4 trials: every recipe of the space had run (2 distinct; points "
            "that differ only in parameters inert where they are set are one recipe), so it "
            "ended") in caplog.text
    assert "damaged" not in caplog.text
    assert "every recipe of the space had run (2 distinct), so the search ended" in (
        tmp_path / "run" / "search_report.md").read_text()


def _slow_stand_in(recipe: Recipe, machines: Mapping[str, MachineData], *,
                   cache_dir: Any = None, device: str = "auto",
                   fidelity: float = 1.0) -> ObjectiveResult:
    time.sleep(1.0)
    return _stand_in(recipe, machines, cache_dir=cache_dir, device=device, fidelity=fidelity)


def test_a_search_stopped_by_its_time_budget_resumes_under_the_new_budget(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by a review (2026-12-07): Tune keeps TuneConfig's time budget with its state, so a
    search stopped by its budget came back already over it: `--resume` (with any budget or
    none) finished at once with the same trials, and the remaining ones never ran."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=12, machine_types=types, cache_dir=cache_dir, seed=3,
                       prewarm=False, time_budget_s=15.0)
    first = run_search(cfg, evaluator=_slow_stand_in)
    ran = first.trials["status"].isin(["complete", "stopped_early", "error"])
    assert not first.interrupted and 1 <= int(ran.sum()) < 12
    # a slow first rung (a worker's start) may make the reference stop at its cap (half the
    # budget): the resume then runs it once more, at full fidelity, as one trial more
    capped = bool(json.loads((cfg.out / "search.json").read_text()).get("reference_capped"))
    with caplog.at_level(logging.WARNING):
        second = run_search(replace(cfg, resume=True, time_budget_s=None),
                            evaluator=_slow_stand_in)
    assert not second.interrupted and second.unfinished == 0
    # every trial ran, the ones the budget stopped continued (not run again as new trials)
    ran_now = second.trials["status"].isin(["complete", "stopped_early", "error"])
    assert len(second.trials) == 12 + capped
    assert int(ran_now.sum()) == 12 + capped and int(ran_now.sum()) > int(ran.sum())
    assert second.reference_omega is not None
    assert "without an interrupt or a time budget" not in caplog.text  # not "damaged"
    report = (cfg.out / "search_report.md").read_text()
    assert "time budget: 15 s" in report and "(time budget none)" in report


def _reference_outlasts_the_budget(recipe: Recipe, machines: Mapping[str, MachineData], *,
                                   cache_dir: Any = None, device: str = "auto",
                                   fidelity: float = 1.0) -> ObjectiveResult:
    from automl_asd.search.trials import trial_recipe

    space = load_space("smoke")
    if recipe.behaviour_hash() == trial_recipe(space, space.reference_point()).behaviour_hash():
        time.sleep(6.0)
    return _stand_in(recipe, machines, cache_dir=cache_dir, device=device, fidelity=fidelity)


def test_a_reference_the_budget_stopped_before_it_reported_runs_on_resume(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by a review (2026-12-07): a trial the time budget stopped before its first
    report was counted as made and a resume never ran it; when it was the reference trial,
    the resumed search froze without its reference ("did not finish")."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    space = load_space("smoke")
    cfg = SearchConfig(data=dev_root, space=space, out=tmp_path / "run", trials=3,
                       machine_types=types, cache_dir=cache_dir, seed=3, prewarm=False,
                       max_concurrent=1, time_budget_s=2.0)
    with caplog.at_level(logging.INFO):
        with pytest.raises(Exception, match="no trial finished"):
            run_search(cfg, evaluator=_reference_outlasts_the_budget)
    assert "1 trial(s) still running or waiting are saved unfinished" in caplog.text
    # the budget is no Ctrl+C: neither Ray's warning about one nor its Tuner.restore hint
    assert "Stop signal received" not in caplog.text
    assert "Tuner.restore" not in caplog.text and "Trials did not complete" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        second = run_search(replace(cfg, resume=True, time_budget_s=None),
                            evaluator=_stand_in)
    assert "ended without a result" not in caplog.text
    counts = re.findall(r"search (\d+)/(\d+) trial", caplog.text)
    assert counts and {total for _, total in counts} == {"3"}, counts
    table = second.trials
    refs = table[table["is_reference"]]
    assert list(refs["status"]) == ["complete"]
    assert list(table["order"]) == [1, 2, 3]
    assert int((table["status"] != "not_run").sum()) == 3
    assert second.reference_omega == pytest.approx(0.55 + 0.1 + 0.002)  # k = 1, two types
    assert "did not finish" not in (cfg.out / "search_report.md").read_text()


def _slow_reference(log: Path, recipe: Recipe, machines: Mapping[str, MachineData], *,
                    cache_dir: Any = None, device: str = "auto",
                    fidelity: float = 1.0) -> ObjectiveResult:
    """Logs the reference's calls, each of which takes 3 s; the other trials are instant and
    score 0.6 (none fails)."""
    from automl_asd.search.trials import trial_recipe

    space = load_space("smoke")
    if recipe.behaviour_hash() != trial_recipe(space, space.reference_point()).behaviour_hash():
        per_type = {(mt, "00"): MachineMetrics(0.6, 0.6, 0.6, 0.6) for mt in machines}
        return ObjectiveResult(omega=0.6, per_type=per_type, fidelity=fidelity, wall_s=0.0)
    with log.open("a") as f:
        f.write(f"{fidelity}\n")
    time.sleep(3.0)
    return _stand_in(recipe, machines, cache_dir=cache_dir, device=device, fidelity=fidelity)


def test_a_reference_its_cap_stopped_runs_at_full_fidelity_on_a_resume_without_budget(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by a probe (2026-12-07, stop 51's F8): under a time budget the reference stops
    before a rung projected past its cap (half the budget) and Tune counts it as done, so a
    resume without a budget never finished it: the search froze with its reference "did not
    finish" and the never-worse-than-the-reference guard off. The resume now runs it once
    more, at full fidelity, as one trial more than asked for; a later resume adds none."""
    import functools

    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    log = tmp_path / "reference_calls.txt"
    evaluator = functools.partial(_slow_reference, log)
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=3, machine_types=types, cache_dir=cache_dir, seed=3,
                       prewarm=False, max_concurrent=1, time_budget_s=14.0)
    first = run_search(cfg, evaluator=evaluator)
    refs = first.trials[first.trials["is_reference"]]
    assert list(refs["status"]) == ["stopped_early"] and first.reference_omega is None
    assert log.read_text().split() == ["0.5"]
    assert "did not finish" in (cfg.out / "search_report.md").read_text()

    log.unlink()
    with caplog.at_level(logging.INFO):
        second = run_search(replace(cfg, resume=True, time_budget_s=None), evaluator=evaluator)
    assert "the reference, stopped by its time cap before full fidelity, runs again" \
        in caplog.text
    refs = second.trials[second.trials["is_reference"]]
    assert list(refs["status"]) == ["stopped_early", "complete"]
    assert len(second.trials) == 4 and not second.unfinished
    assert second.reference_omega == pytest.approx(0.55 + 0.1 + 0.002)  # k = 1, two types
    assert log.read_text().split() == ["1.0"]  # uncapped, it runs its full rung only
    assert "did not finish" not in (cfg.out / "search_report.md").read_text()

    log.unlink()
    third = run_search(replace(cfg, resume=True, time_budget_s=None), evaluator=evaluator)
    assert len(third.trials) == 4 and not log.exists()  # nothing left to run again


def _stalls_at_full_fidelity(log: Path, stall: bool, recipe: Recipe,
                             machines: Mapping[str, MachineData], *, cache_dir: Any = None,
                             device: str = "auto", fidelity: float = 1.0) -> ObjectiveResult:
    """Logs each call; every trial but the reference stalls at full fidelity when ``stall``."""
    from automl_asd.search.trials import trial_recipe

    space = load_space("smoke")
    reference = (recipe.behaviour_hash()
                 == trial_recipe(space, space.reference_point()).behaviour_hash())
    with log.open("a") as f:
        f.write(f"{recipe.behaviour_hash()} {fidelity}\n")
    if stall and not reference and fidelity == 1.0:
        time.sleep(120.0)
    value = 0.6 + 0.05 * fidelity
    per_type = {(mt, "00"): MachineMetrics(value, value, value, value) for mt in machines}
    return ObjectiveResult(omega=value, per_type=per_type, fidelity=fidelity, wall_s=0.0)


def test_a_trial_the_budget_stopped_after_its_first_rung_continues_on_resume(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by a probe (2026-12-07, F2): the budget ended running trials as finished, so one
    stopped after its first rung kept that rung's Ω for good (listed as `stopped_early`, as if
    ASHA had stopped it) and `--resume` never continued it. The budget now stops the run as
    Ctrl+C does: the trial is saved unfinished and `--resume` runs only its missing rung."""
    import functools

    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    log = tmp_path / "calls.txt"
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=2, machine_types=types, cache_dir=cache_dir, seed=3,
                       prewarm=False, max_concurrent=1, time_budget_s=12.0)
    first = run_search(cfg, evaluator=functools.partial(_stalls_at_full_fidelity, log, True))
    table = first.trials.set_index("trial_id")
    assert not first.interrupted and first.unfinished == 1
    other = table[~table["is_reference"]]
    assert list(other["status"]) == ["stopped_early"] and list(other["fidelity"]) == [0.5]
    report = (cfg.out / "search_report.md").read_text()
    # the unfinished trial is not counted as done, though it reported a rung
    assert "stopped by the time budget** after 1 of 2 trials, with 1 trial(s)" in report
    calls = log.read_text().split()
    stalled = str(other["behaviour_hash"].iloc[0])
    assert calls.count(stalled) == 2  # rung 0.5, then the stalled rung 1.0

    log.unlink()
    second = run_search(replace(cfg, resume=True, time_budget_s=None),
                        evaluator=functools.partial(_stalls_at_full_fidelity, log, False))
    again = second.trials.set_index("trial_id")
    assert list(again.index) == list(table.index)  # the same two trials, no re-run added
    assert not second.unfinished and (again["status"] == "complete").all()
    assert float(again.loc[other.index[0], "fidelity"]) == 1.0
    # only the missing rung ran: continued from its checkpoint, not from the start
    assert log.read_text().split() == [stalled, "1.0"]
    assert "stopped by the time budget" not in (cfg.out / "search_report.md").read_text()


def _interrupted_after_one_trial(dev_root: Path, cache_dir: Path, tmp_path: Path) -> SearchConfig:
    """A 3-trial smoke search on two development types in ``tmp_path/run``, interrupted
    (Ctrl-C) after its first trial; its configuration."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=3, machine_types=types, cache_dir=cache_dir, seed=3,
                       prewarm=False)
    run_search(cfg, callbacks=[_InterruptAfter(1, str(tmp_path))], evaluator=_stand_in)
    return cfg


def test_a_copied_run_folder_is_not_resumed_into_the_original(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
) -> None:
    """Found by a probe (2026-12-07): Tune's saved state names the folder a run began in, so
    a resumed copy set its new trials up in the original (or failed once it was gone). The
    copy is refused, from Tune's own state (a search.json of an older version has no record
    of the place); the original resumes."""
    import shutil

    cfg = _interrupted_after_one_trial(dev_root, cache_dir, tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(cfg.out, copy)
    meta = json.loads((copy / "search.json").read_text())
    meta.pop("tune_state")
    (copy / "search.json").write_text(json.dumps(meta))
    before = sorted(p.name for p in (cfg.out / "tune").iterdir())
    with pytest.raises(ValueError, match="moved or copied since it began"):
        run_search(replace(cfg, out=copy, resume=True), evaluator=_stand_in)
    assert sorted(p.name for p in (cfg.out / "tune").iterdir()) == before
    assert len(run_search(replace(cfg, resume=True), evaluator=_stand_in).trials) == 3


@pytest.mark.parametrize("damaged", ["experiment_state-*.json", "searcher-state-*.pkl"])
def test_a_tune_state_cut_short_by_a_full_disk_is_not_resumed_from_nothing(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    damaged: str,
) -> None:
    """Found by probing a real full tmpfs (2026-12-07): Tune's experiment state was cut short
    when the disk ran full; `search --resume` after freeing space logged Tune's "Failed to
    restore the run state", ran the search again from nothing (1 trial of 3) and replaced the
    trial table and recipe with that one trial's, exit 0. The resume is refused, naming the
    damaged file, before anything is written."""
    cfg = _interrupted_after_one_trial(dev_root, cache_dir, tmp_path)
    state = max((cfg.out / "tune").glob(damaged))
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    table = (cfg.out / "trials.csv").read_bytes()
    with pytest.raises(ValueError, match=re.escape(state.name) + ".*damaged"):
        run_search(replace(cfg, resume=True), evaluator=_stand_in)
    assert (cfg.out / "trials.csv").read_bytes() == table


def test_a_search_that_hit_a_full_disk_before_tune_saved_its_state_starts_again(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by probing a real full tmpfs (2026-12-07): a search whose disk ran full after
    search.json and Tune's tuner.pkl were written, before Tune saved an experiment state,
    could then neither be resumed ("no search to resume there; run without --resume") nor
    started again ("search.json: exists and was not written by automl-asd", then Tune's
    tuner.pkl: "already holds a search; pass --resume")."""
    import errno

    import automl_asd.commands.search as command
    from automl_asd.io.run_folder import RunFolder
    from automl_asd.io.search_report import write_search_meta

    def no_space(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(run / ".automl-asd-run.json"))

    def starts_then_fills(args: Any, cfg: SearchConfig, data: Any) -> int:
        write_search_meta(args.out, {"trials": 1})
        (args.out / "tune").mkdir()
        (args.out / "tune" / "tuner.pkl").write_bytes(b"\x80\x05N.")
        no_space()
        return 0

    run = tmp_path / "run"
    argv = ["search", "--data", str(dev_root), "--space", "smoke", "--trials", "1",
            "--machine-types", *_types(dev_root)[:1], "--out", str(run),
            "--cache-dir", str(cache_dir)]
    monkeypatch.setattr(command, "_run", starts_then_fills)
    monkeypatch.setattr(RunFolder, "record", no_space)
    assert main(argv) == 1
    monkeypatch.undo()  # space freed
    assert main(argv) == 0
    assert len(pd.read_parquet(run / "trials.parquet")) == 1


def _fails_on_a_clip() -> None:
    raise ValueError("x.wav: corrupt or unsupported audio file")


def test_a_failed_search_task_raises_its_own_error_not_ray_s_wrapper(
    ray_session: None,  # noqa: F811
) -> None:
    """Found 2026-12-07: an empty wav in `search --data` printed the prewarm task's whole
    traceback (Ray's wrapper, with colour codes) instead of the one line naming the clip."""
    import ray

    from automl_asd.orchestration.tune import _task_result

    task = ray.remote(_fails_on_a_clip)
    with pytest.raises(ValueError) as exc:
        _task_result(task.remote())
    assert type(exc.value) is ValueError
    assert str(exc.value) == "x.wav: corrupt or unsupported audio file"


def _dies_once(marker: Path) -> Any:
    """A stand-in objective whose first call ends its worker process, as a lost node does."""

    def evaluate(recipe: Recipe, machines: Mapping[str, MachineData], **kwargs: Any
                 ) -> ObjectiveResult:
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the trial's worker dies: Ray reports the actor as lost
        value = 0.6 + 0.1 * float(kwargs.get("fidelity", 1.0))
        per_type = {(mt, "00"): MachineMetrics(value, value, value, value) for mt in machines}
        return ObjectiveResult(omega=value, per_type=per_type,
                               fidelity=float(kwargs.get("fidelity", 1.0)), wall_s=0.0)

    return evaluate


@pytest.mark.ray
@pytest.mark.slow
def test_a_trial_whose_worker_dies_runs_again(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
) -> None:
    """Found by a probe (2026-12-07): a trial whose node died stayed an error (the search kept
    one configuration fewer), and whether --resume ran it again depended on what Tune had
    saved last. Now Tune runs it once more, from its last rung."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=2, machine_types=types, cache_dir=cache_dir, seed=3,
                       prewarm=False)
    marker = tmp_path / "died"
    outcome = run_search(cfg, evaluator=_dies_once(marker))
    assert marker.exists()  # one worker did die
    assert len(outcome.trials) == 2
    assert set(outcome.trials["status"]) <= {"complete", "stopped_early"}  # no error


def _sleeps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.mark.ray
def test_only_unfinished_tasks_are_cancelled(ray_session: None,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a probe (2026-12-07): a SIGTERM just as a task finished force-cancelled it while
    it completed, and the driver crashed inside Ray ("Tried to complete task that was not
    pending"). A task whose result is in is not cancelled; a running one is."""
    import ray

    from automl_asd.orchestration.session import cancel_unfinished

    task = ray.remote(_sleeps)
    done, running = task.remote(0.0), task.remote(600.0)
    ray.wait([done], timeout=60)
    cancelled: list[Any] = []
    real = ray.cancel
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: (cancelled.append(ref),
                                                          real(ref, **kw)))
    assert cancel_unfinished([done, running]) == 0
    assert cancelled and all(ref == running for ref in cancelled)  # once, or again if lost
    assert ray.get(done) == 0.0
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(running, timeout=60)


@pytest.mark.ray
def test_a_cancel_ray_loses_is_sent_again(ray_session: None,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-08 (a red fresh-clone CI): Ray 2.60 drops about one force-cancel in ten
    sent as the task reaches its worker (4 of 40 in a loop), and the task ran on to its end.
    Here the first cancel is dropped on purpose: the task is still stopped."""
    import ray

    from automl_asd.orchestration.session import cancel_unfinished

    running = ray.remote(_sleeps).remote(600.0)
    ray.wait([running], timeout=2)  # it has started (or is about to)
    sent: list[Any] = []
    real = ray.cancel

    def drops_the_first(ref: Any, **kw: Any) -> None:
        sent.append(ref)
        if len(sent) > 1:
            real(ref, **kw)

    monkeypatch.setattr(ray, "cancel", drops_the_first)
    left = cancel_unfinished([running], grace_s=0.5)
    assert len(sent) == 2  # without the resend: 1, and the task ran its 600 s
    assert left == 0
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(running, timeout=30)


@pytest.mark.ray
def test_a_task_that_will_not_stop_is_counted_and_named(
        ray_session: None, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    """If every cancel is lost, the caller hears how many tasks run on (not a silent hang)."""
    import ray

    from automl_asd.orchestration.session import cancel_unfinished

    running = ray.remote(_sleeps).remote(600.0)
    real = ray.cancel
    sent: list[Any] = []
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: sent.append(ref))
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="automl_asd.orchestration.session"):
        assert cancel_unfinished([running], grace_s=0.2, tries=3) == 1
    assert len(sent) == 3
    assert 0.35 <= time.perf_counter() - t0 < 10
    assert "1 Ray task(s) did not stop when cancelled 3 times" in caplog.text
    real(running, force=True)


class _InterruptAtStart(tune.Callback):
    """SIGINT (like Ctrl+C) as soon as the first trial starts; once (a marker file: Tune
    restores its callbacks on resume, and pickled by value they hold their own globals)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        if not self.marker.exists():
            self.marker.write_text("sent")
            os.kill(os.getpid(), signal.SIGINT)


def _slow_stand_in(recipe: Recipe, machines: Mapping[str, MachineData], **kwargs: Any
                   ) -> ObjectiveResult:
    time.sleep(3.0)
    fidelity = float(kwargs.get("fidelity", 1.0))
    per_type = {(mt, "00"): MachineMetrics(0.6, 0.6, 0.6, 0.6) for mt in machines}
    return ObjectiveResult(omega=0.6, per_type=per_type, fidelity=fidelity, wall_s=0.0)


@pytest.mark.ray
@pytest.mark.slow
def test_an_interrupt_before_any_trial_finished_is_an_interrupt(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by a probe (2026-12-07): Ctrl+C while the first trials ran ended the command as
    an error (rc 1, "no trial finished"); it is an interrupt (rc 130), and --resume goes on."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    types = tuple(_types(dev_root)[:2])
    cfg = SearchConfig(data=dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=2, machine_types=types, cache_dir=cache_dir, seed=3,
                       prewarm=False)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        run_search(cfg, callbacks=[_InterruptAtStart(tmp_path / "sent")],
                   evaluator=_slow_stand_in)
    assert "interrupted before any trial finished at full fidelity: the same command with " \
        "--resume continues it" in caplog.text
    again = run_search(replace(cfg, resume=True), evaluator=_slow_stand_in)
    assert len(again.trials) == 2 and not again.interrupted


def test_a_resume_after_a_kill_prints_no_ray_fetch_warning(
    ray_session: None, dev_root: Path, cache_dir: Path, tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by the interrupts probe (2026-12-08): after a SIGKILLed search, `--resume`
    printed Ray's "Failed to fetch metrics for 1 trial(s): FileNotFoundError(...)" from inside
    Tuner.restore (a trial folder without its result file); the resume lists such trials
    itself."""
    cfg = _interrupted_after_one_trial(dev_root, cache_dir, tmp_path)
    for result in (cfg.out / "tune").rglob("result.json"):
        result.unlink()  # as after a kill before Ray wrote them
    for progress in (cfg.out / "tune").rglob("progress.csv"):
        progress.unlink()
    with caplog.at_level(logging.INFO):
        outcome = run_search(replace(cfg, resume=True), evaluator=_stand_in)
    assert len(outcome.trials) >= 1
    assert "Failed to fetch metrics" not in caplog.text
