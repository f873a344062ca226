"""Starting or resuming a search in a run folder (plain checks, no Ray)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from automl_asd.recipe import load_recipe
from automl_asd.search.config import SearchConfig, check_start, run_meta
from automl_asd.search.space import load_space


def test_start_and_resume_checks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    space = load_space("smoke")
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path, trials=4, seed=3)
    meta = run_meta(cfg, ("bearing", "fan"), {"numpy": "1"})
    assert (meta["space_sha256"], meta["machine_types"], meta["seed"], meta["trials"]) == (
        space.sha256, ["bearing", "fan"], 3, 4)
    check_start(cfg, tmp_path, "st", None, meta, can_restore=False)  # a fresh folder: fine
    with pytest.raises(ValueError, match="already holds a search; pass --resume"):
        check_start(cfg, tmp_path, "st", None, meta, can_restore=True)
    resume = replace(cfg, resume=True)
    with pytest.raises(ValueError, match="st: no search state to resume"):
        check_start(resume, tmp_path, "st", meta, meta, can_restore=False)
    changed = {**meta, "machine_types": ["fan"]}
    with pytest.raises(ValueError, match=r"cannot resume: machine_types \(the development "
                                         r"types\) changed"):
        check_start(resume, tmp_path, "st", changed, meta, can_restore=True)
    # a run folder moved or copied since it began: Tune's state names the first place, and
    # a resumed copy wrote its new trials there (found 2026-12-07)
    check_start(resume, tmp_path, "/a/run/tune", {**meta, "tune_state": "/a/run/tune"}, meta,
                can_restore=True)
    with pytest.raises(ValueError, match="keeps its Ray Tune state in /a/run/tune, not "
                                         "/b/run/tune .the run folder was moved or copied"):
        check_start(resume, tmp_path, "/b/run/tune", {**meta, "tune_state": "/a/run/tune"},
                    meta, can_restore=True)
    for same in ("/a/./run/tune", "/a//run/tune/", "file:///a/run/tune"):  # one place
        check_start(resume, tmp_path, same, {**meta, "tune_state": "/a/run/tune"}, meta,
                    can_restore=True)
    # other data or another seed: the trials would mix two searches (found 2026-12-06)
    with_data = run_meta(cfg, ("bearing", "fan"), {"numpy": "1"}, "a" * 64)
    assert with_data["dev_files_sha256"] == "a" * 64 and with_data["time_budget_s"] is None
    other = run_meta(cfg, ("bearing", "fan"), {"numpy": "1"}, "b" * 64)
    with pytest.raises(ValueError, match="dev_files_sha256 .the development data's files. "
                                         "changed"):
        check_start(resume, tmp_path, "st", with_data, other, can_restore=True)
    with pytest.raises(ValueError, match=r"seed \(--seed\) changed since the search began "
                                         r"\(3 -> 5\)"):
        check_start(replace(resume, seed=5), tmp_path, "st", with_data,
                    run_meta(replace(cfg, seed=5), ("bearing", "fan"), {}, "a" * 64),
                    can_restore=True)
    # an edited space file: the message says what counts as a change and names the file
    # (found by a probe 2026-12-07: two digests only)
    edited = {**with_data, "space_sha256": "c" * 64}
    with pytest.raises(ValueError, match=r"space_sha256 \(the space file\) changed .*; "
                       r".*smoke\.yaml: its bytes differ from the file the search began "
                       r"with \(any edit counts, a comment too\)"):
        check_start(resume, tmp_path, "st", edited, with_data, can_restore=True)
    # the reference recipe is a file of its own: edited since, it is named (review, 2026-12-06)
    ref_space = tmp_path / "s.yaml"
    (tmp_path / "myref.json").write_text(load_recipe("fast_default").to_json())
    ref_space.write_text("name: r\nreference: myref.json\nspace:\n  normalization: {method: "
                         "{choice: [none, domain_zscore]}}\n")
    before = run_meta(replace(cfg, space=load_space(ref_space)), ("fan",), {})
    edited = json.loads((tmp_path / "myref.json").read_text())
    edited["seed"] = 7
    (tmp_path / "myref.json").write_text(json.dumps(edited))
    after = run_meta(replace(cfg, space=load_space(ref_space)), ("fan",), {})
    assert before["space_sha256"] == after["space_sha256"]
    with pytest.raises(ValueError, match=r"reference_sha256 \(the space's reference recipe\) "
                                         "changed"):
        check_start(resume, tmp_path, "st", before, after, can_restore=True)
    check_start(resume, tmp_path, "st", meta, with_data, can_restore=True)  # older search.json
    with caplog.at_level("WARNING"):
        check_start(replace(resume, trials=9), tmp_path, "st", meta, meta, can_restore=True)
    assert "original 4 trials (--trials 9 is ignored" in caplog.text


@pytest.mark.parametrize(("setting", "message"), [
    ({"trials": 0}, r"--trials: 0; expected at least 1"),
    ({"max_concurrent": 0}, r"--max-concurrent: 0; expected at least 1"),
    ({"time_budget_s": 0.0}, r"--time-budget: 0.0; expected seconds > 0"),
    ({"time_budget_s": -5.0}, r"--time-budget: -5.0"),
    ({"time_budget_s": float("nan")}, r"--time-budget: nan"),
    ({"seed": -1}, r"--seed: -1; expected a non-negative integer"),
    ({"cpus_per_trial": 0.0}, r"--cpus-per-trial: 0.0; expected > 0"),
    ({"gpus_per_trial": -1.0}, r"--gpus-per-trial: -1.0; expected >= 0"),
    ({"novel_top_k": 0}, r"--novel-top-k: 0; expected at least 1"),
])
def test_settings_no_search_can_run_with_are_refused(tmp_path: Path, setting: dict[str, object],
                                                     message: str) -> None:
    """Found by probing the CLI (2026-12-03): `--seed -1` ended in a numpy traceback,
    `--cpus-per-trial 0` / `--gpus-per-trial -1` in Ray errors after the cost estimate,
    `--time-budget -5` in "no trial finished", and `--time-budget 0`, `--max-concurrent 0` and
    `--novel-top-k 0 / -3` were taken silently."""
    base = {"data": tmp_path, "space": load_space("smoke"), "out": tmp_path, "trials": 4}
    with pytest.raises(ValueError, match=message):
        SearchConfig(**{**base, **setting})  # type: ignore[arg-type]
    cfg = SearchConfig(**base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        replace(cfg, **setting)  # type: ignore[arg-type]
    # The boundary values themselves are fine (fractional CPUs share a core).
    SearchConfig(**{**base, "trials": 1, "max_concurrent": 1, "time_budget_s": 0.5, "seed": 0,
                    "cpus_per_trial": 0.5, "gpus_per_trial": 0.0, "novel_top_k": 1})


def test_cli_refuses_a_bad_setting_before_creating_the_run_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from automl_asd.cli import main

    out = tmp_path / "run"
    rc = main(["search", "--data", str(tmp_path), "--space", "smoke", "--trials", "2",
               "--out", str(out), "--time-budget", "-5"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--time-budget: -5.0; expected seconds > 0" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_rerun_into_its_own_search_folder_says_resume(
        tiny_dev_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-06: the search's own tune/ and near_ties/ files read as foreign, and the
    message offered --overwrite, which `search` does not have."""
    from automl_asd.cli import main
    from automl_asd.io.run_folder import RunFolder

    out = tmp_path / "run"
    with RunFolder.open(out, command="search") as folder:
        (out / "search.json").write_text("{}")
        (out / "tune").mkdir()
        (out / "tune" / "experiment_state-2026-12-06.json").write_text("{}")
        (out / "near_ties").mkdir()
        (out / "near_ties" / "t1.json").write_text("{}")
        folder.record(["search.json"])
    rc = main(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "already holds a search; pass --resume" in err and "--overwrite" not in err
    # an interrupted leave-one-out search: only its folders, recorded as the search's own
    loo = tmp_path / "loo_run"
    with RunFolder.open(loo, command="search") as folder:
        (loo / "loo" / "fan").mkdir(parents=True)
        (loo / "loo" / "fan" / "recipe.json").write_text("{}")
        folder.manifest["dirs"] = ["loo"]
        folder.save()
    rc = main(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
               "--out", str(loo), "--leave-one-out"])
    err = capsys.readouterr().err
    assert rc == 1 and "already holds a search; pass --resume" in err
    # a foreign file among a new search's names: the fixes offered exist for `search`
    other = tmp_path / "other"
    other.mkdir()
    (other / "recipe.json").write_text("mine")
    rc = main(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
               "--out", str(other)])
    err = capsys.readouterr().err
    assert rc == 1 and "recipe.json: exists and was not written by automl-asd" in err
    assert "move it away or choose another output folder" in err and "--overwrite" not in err


def test_a_search_claims_its_tune_folder_before_any_trial(
        tiny_dev_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found by probing (2026-12-06): a search SIGKILLed mid-trial never listed its files, so a
    rerun called its own search.json and tune/ foreign instead of saying --resume; and one
    stopped before Tune wrote any state must simply start again (neither a plain rerun nor
    --resume accepted it)."""
    import json

    import automl_asd.commands.search as command
    from automl_asd.cli import main
    from automl_asd.io.run_folder import RUN_MANIFEST

    out = tmp_path / "run"
    seen: list[list[str]] = []

    def killed(state: bool) -> Any:
        def run(args: object, cfg: object, data: object) -> int:
            seen.append(json.loads((out / RUN_MANIFEST).read_text())["dirs"])
            (out / "tune").mkdir(exist_ok=True)
            (out / "search.json").write_text("{}")
            if state:
                (out / "tune" / "experiment_state-x.json").write_text("{}")
            raise KeyboardInterrupt  # stands in for the kill: the manifest on disk counts
        return run

    argv = ["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
            "--out", str(out)]
    monkeypatch.setattr(command, "_run", killed(state=False))
    assert main(argv) == 130
    assert seen == [["tune"]]
    # nothing --resume could continue: a plain rerun starts again (reaches the search)
    assert main(argv) == 130 and len(seen) == 2
    monkeypatch.setattr(command, "_run", killed(state=True))
    assert main(argv) == 130
    capsys.readouterr()
    assert main(argv) == 1
    assert "already holds a search; pass --resume" in capsys.readouterr().err


def test_a_search_asks_no_more_trials_than_its_space_has_points(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: a one-point space ran its only recipe four times for --trials 4."""
    with caplog.at_level("WARNING"):
        cfg = SearchConfig(data=tmp_path, space=load_space("smoke"), out=tmp_path, trials=40)
    assert cfg.trials == 26
    assert "space smoke holds 26 distinct recipe(s): at most 26 trial(s), not --trials 40" \
        in caplog.text
    assert replace(cfg, trials=12).trials == 12
    assert replace(cfg, resume=True).trials == 26  # a resume's target is the capped count too
    # the report says what was asked and the cap (found 2026-12-07: "trials requested: 26"
    # for --trials 40); so do the folds of a leave-one-out search, never a count not capped
    assert cfg.trials_asked == replace(cfg, resume=True).trials_asked == 40
    assert replace(cfg, trials=12).trials_asked is None
    assert run_meta(cfg, ("fan",), {})["trials_asked"] == 40
    assert "trials_asked" not in run_meta(replace(cfg, trials=12), ("fan",), {})
    demo = SearchConfig(data=tmp_path, space=load_space("demo"), out=tmp_path, trials=40)
    assert demo.trials == 40  # continuous: no cap


def test_points_that_are_one_recipe_are_counted_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-08: a space whose points differ only in a parameter inert where it is set
    (a hedge's coarse_frames without a coarse view) was capped at its 4 points, ran its 2
    recipes and ended part-way."""
    space = tmp_path / "inert.yaml"
    space.write_text("name: inert\nreference: fast_default\nspace:\n  detector:\n"
                     "    choose:\n      pooled_stats: {pooling: mean_std}\n"
                     "      hedge: {views: fine, backends: knn+mahalanobis, combine: mean,\n"
                     "              coarse_frames: {choice: [4, 8, 16]}}\n")
    loaded = load_space(space)
    assert loaded.n_points() == 4 and loaded.n_recipes() == 2
    with caplog.at_level("WARNING"):
        cfg = SearchConfig(data=tmp_path, space=loaded, out=tmp_path / "o", trials=9)
    assert cfg.trials == 2 and cfg.trials_asked == 9
    assert ("space inert holds 2 distinct recipe(s) (4 points; those that differ only in "
            "parameters inert where they are set are one recipe): at most 2 trial(s), not "
            "--trials 9") in caplog.text
