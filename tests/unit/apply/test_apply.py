"""Apply driver with the Ray-free serial runner and a stand-in model (fast, no Ray, no audio).

The stand-in ``run_fn`` replaces ``pipeline.run_machine``: it returns deterministic label-free
scores from the clip names, so these tests exercise the orchestration only — outputs, resume,
failure isolation, evaluation after the fact. The real pipeline runs in ``test_apply_e2e.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_asd.apply import (
    ApplyConfig,
    MachineJob,
    SerialRunner,
    apply_recipe,
    is_complete,
    run_job,
)
from automl_asd.data import DataError, Domain, Label, MachineData
from automl_asd.evaluation.evaluate import evaluate_submission
from automl_asd.ground_truth import GroundTruthError
from automl_asd.io.official_table import OFFICIAL_COLUMNS
from automl_asd.io.results import sha256_file
from automl_asd.io.submission import read_submission
from automl_asd.pipeline import MachineResult, SharedStates
from automl_asd.recipe import Recipe

MTS = ("alpha", "beta", "gamma")


def _recipe(seed: int = 7) -> Recipe:
    from automl_asd.detectors import REGISTRY

    name = sorted(REGISTRY)[0]  # any registered family: the stand-in ignores it
    return Recipe.from_dict(
        {"schema_version": 1, "name": "standin", "detector": {"name": name}, "seed": seed}
    )


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # scan reads names only; the stand-in never opens the files


def _make_tree(root: Path, mts: Sequence[str] = MTS, *, anonymised: bool = False) -> Path:
    """Tiny DCASE tree of empty files: 4+2 train clips, 3 clips per test group."""
    for mt in mts:
        for dom, n in (("source", 4), ("target", 2)):
            for i in range(n):
                name = f"section_00_{dom}_train_normal_{i:04d}_noAttribute.wav"
                _touch(root / mt / "train" / name)
        k = 0
        gt_rows: list[tuple[str, int, int]] = []
        for dom in ("source", "target"):
            for lab in ("normal", "anomaly"):
                for _ in range(3):
                    if anonymised:
                        name = f"section_00_{k:04d}.wav"
                    else:
                        name = f"section_00_{dom}_test_{lab}_{k:04d}_noAttribute.wav"
                    _touch(root / mt / "test" / name)
                    gt_rows.append((name, int(lab == "anomaly"), int(dom == "target")))
                    k += 1
        if anonymised:
            for sub, col in (("ground_truth_data", 1), ("ground_truth_domain", 2)):
                path = root.parent / "gt" / sub / f"ground_truth_{mt}_section_00_test.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"{r[0]},{r[col]}\n" for r in gt_rows))
    return root


class FakeRun:
    """Stand-in for ``pipeline.run_machine``; counts calls and can fail chosen machine types."""

    def __init__(self, fail: Sequence[str] = ()) -> None:
        self.calls: list[str] = []
        self.fail = set(fail)

    def __call__(self, recipe: Recipe, machine: MachineData, *, cache_dir: Path | None = None,
                 device: str = "auto", num_threads: int | None = None,
                 shared: SharedStates | None = None) -> MachineResult:
        self.calls.append(machine.machine_type)
        if machine.machine_type in self.fail:
            raise RuntimeError(f"boom in {machine.machine_type}")
        test = machine.test
        # first-shot integrity: the model never sees test labels, domains or attributes
        assert test and all(
            c.label is Label.UNKNOWN and c.domain is Domain.UNKNOWN and c.attributes is None
            for c in test)
        assert any(c.domain is Domain.TARGET for c in machine.train)
        names = [c.name for c in test]
        scores = np.array([
            int(hashlib.sha256(f"{recipe.seed}/{n}".encode()).hexdigest()[:8], 16) / 2**32
            for n in names
        ])
        return MachineResult(
            machine_type=machine.machine_type,
            recipe_hash=recipe.content_hash(),
            seed=recipe.seed,
            names=tuple(names),
            sections=tuple(c.section for c in test),
            scores=scores,
            decisions=(scores > 0.5).astype(np.int8),
            threshold=0.5,
            timings={"fit": 0.01, "score": 0.01},
            counts={"train": len(machine.train), "test": len(test)},
        )


@pytest.mark.slow
def test_serial_apply_writes_submission_summary_and_reports(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    fake = FakeRun()
    recipe = _recipe()
    report = apply_recipe(ApplyConfig(recipe, data, out), runner=SerialRunner(run_fn=fake))

    assert report.ok and [o.status for o in report.outcomes] == ["ok"] * 3
    assert sorted(fake.calls) == list(MTS)
    for mt in MTS:
        score_csv = out / f"anomaly_score_{mt}_section_00_test.csv"
        lines = score_csv.read_text().splitlines()
        assert len(lines) == 12 and not lines[0].startswith("file")  # headerless, all clips
        assert [ln.split(",")[0] for ln in lines] == sorted(ln.split(",")[0] for ln in lines)
        dec = (out / f"decision_result_{mt}_section_00_test.csv").read_text().splitlines()
        assert {ln.split(",")[1] for ln in dec} <= {"0", "1"}
        summary = json.loads((out / f"{mt}.summary.json").read_text())
        assert summary["recipe_hash"] == recipe.content_hash() == report.recipe_hash
        assert summary["counts"] == {"train": 6, "test": 12}
        assert summary["threshold"] == 0.5
        assert summary["files"][score_csv.name] == sha256_file(score_csv)
        assert (out / f"roc_{mt}.png").stat().st_size > 1000
        assert (out / f"hist_{mt}.png").read_bytes()[:4] == b"\x89PNG"

    # metrics.json == what `automl-asd evaluate --json` computes from the same files
    expected = evaluate_submission(out, data)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == expected.to_json_dict()
    assert report.official_score == pytest.approx(expected.official_score)
    assert 0.0 < report.official_score < 1.0  # type: ignore[operator]
    md = (out / "results.md").read_text()
    assert f"official score Ω = {report.official_score:.4f}" in md and "seconds" in md
    assert f"`standin` (content hash `{recipe.content_hash()[:16]}`)" in md
    assert "not the official DCASE baseline" in md
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[:2] == ["alpha", ",".join(OFFICIAL_COLUMNS)]
    assert lines[-1] == f"official score,{report.official_score:.4f}"


def test_failure_is_isolated_and_reported(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    report = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                          runner=SerialRunner(run_fn=FakeRun(["beta"])))

    assert report.failed == ("beta",) and not report.ok
    assert "boom in beta" in (out / "beta.error.txt").read_text()
    assert not (out / "beta.summary.json").exists()
    assert not list(out.glob("*_beta_section_*"))
    for mt in ("alpha", "gamma"):
        assert is_complete(out, mt, report.recipe_hash) is not None
    # Ω over the machine types that succeeded
    assert set(json.loads((out / "metrics.json").read_text())["machine_types"]) == {
        "alpha", "gamma"}
    # A rerun where every type fails leaves no report of the outputs it deleted.
    again = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                         runner=SerialRunner(run_fn=FakeRun(MTS)))
    assert again.failed == MTS and again.official_score is None
    assert not [p.name for p in out.iterdir()
                if p.name in ("results.csv", "results.md", "metrics.json")]
    assert sorted(p.name for p in out.glob("*.error.txt")) == [f"{mt}.error.txt" for mt in MTS]


def test_a_type_name_too_long_for_its_files_stops_before_anything_is_written(
        tmp_path: Path) -> None:
    """Found by probing (2026-12-07): a 240-byte machine-type folder stopped `apply` on
    "<out>/.automl-asd-run.journal-<type>: File name too long", without the fix `info`
    gives; it is now that line, naming the folder, before --out is made."""
    long = "m" * 240
    data = _make_tree(tmp_path / "data", ("alpha", long))
    out = tmp_path / "out"
    fake = FakeRun()
    with pytest.raises(DataError, match=f"{long}: machine type name of 240 bytes; at most "
                                        "200 .*rename the folder"):
        apply_recipe(ApplyConfig(_recipe(), data, out), runner=SerialRunner(run_fn=fake))
    assert fake.calls == [] and not out.exists()


def test_overwrite_stopped_part_way_leaves_no_report_of_deleted_outputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-07): `apply --overwrite` into a folder whose models/ could not
    be written deleted the CSVs and stopped on the bundle, leaving the old run's results.md
    and metrics.json (Ω of every type) and a manifest that still listed the deleted files."""
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                 runner=SerialRunner(run_fn=FakeRun()))
    assert (out / "results.md").is_file() and (out / "metrics.json").is_file()
    unlink = Path.unlink

    def refuse_gamma(self: Path, missing_ok: bool = False) -> None:
        if "gamma" in self.name:  # as a bundle folder of gamma's that cannot be written
            raise PermissionError(13, "Permission denied", str(self))
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse_gamma)
    with pytest.raises(PermissionError):
        apply_recipe(ApplyConfig(_recipe(seed=8), data, out, overwrite=True, plots=False),
                     runner=SerialRunner(run_fn=FakeRun()))
    for report in ("results.md", "results.csv", "metrics.json"):
        assert not (out / report).exists()
    listed = json.loads((out / ".automl-asd-run.json").read_text())["files"]
    assert listed and all((out / rel).is_file() for rel in listed)


def test_a_clip_name_of_another_encoding_fails_its_type_alone(tmp_path: Path) -> None:
    """Found by probing (2026-12-07): one Latin-1 clip name stopped the whole run while
    fingerprinting the data, on "'utf-8' codec can't encode character '\\udce9'"."""
    data = _make_tree(tmp_path / "data")
    (data / "beta" / "train" / "section_00_source_train_normal_0099_x\udce9.wav").touch()
    out = tmp_path / "out"
    report = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                          runner=SerialRunner(run_fn=FakeRun()))
    assert report.failed == ("beta",)
    assert "x\\xe9.wav: not a UTF-8 name" in (out / "beta.error.txt").read_text()


def test_a_link_to_one_machine_folder_is_that_type_under_the_links_name(
        tmp_path: Path) -> None:
    """Found by probing (2026-12-07): `--data LINK`, a link to one machine type's folder, was
    refused by the pre-flight ("machine type folder(s) LINK missing"): the discovery named the
    type after the link, the pre-flight and the jobs after the resolved folder."""
    data = _make_tree(tmp_path / "data", ("alpha",))
    link = tmp_path / "mylink"
    link.symlink_to(data / "alpha")
    fake = FakeRun()
    report = apply_recipe(ApplyConfig(_recipe(), link, tmp_path / "out", plots=False),
                          runner=SerialRunner(run_fn=fake))
    assert report.ok and fake.calls == ["mylink"]
    assert (tmp_path / "out" / "anomaly_score_mylink_section_00_test.csv").is_file()


def test_resume_skips_done_types_and_reruns_changed_ones(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    recipe = _recipe()
    first = FakeRun(["gamma"])
    apply_recipe(ApplyConfig(recipe, data, out, plots=False), runner=SerialRunner(run_fn=first))
    before = (out / "anomaly_score_alpha_section_00_test.csv").stat().st_mtime_ns

    # gamma failed -> rerun; a tampered CSV of beta -> rerun; alpha intact -> skipped
    with open(out / "anomaly_score_beta_section_00_test.csv", "a") as fh:
        fh.write("extra.wav,0.1\n")
    second = FakeRun()
    report = apply_recipe(ApplyConfig(recipe, data, out, resume=True, plots=False),
                          runner=SerialRunner(run_fn=second))
    assert sorted(second.calls) == ["beta", "gamma"]
    assert {o.machine_type: o.status for o in report.outcomes} == {
        "alpha": "skipped", "beta": "ok", "gamma": "ok"}
    assert report.ok and not (out / "gamma.error.txt").exists()
    assert (out / "anomaly_score_alpha_section_00_test.csv").stat().st_mtime_ns == before
    assert len(report.metrics) == 3

    # nothing left to do
    third = FakeRun()
    apply_recipe(ApplyConfig(recipe, data, out, resume=True, evaluate=False),
                 runner=SerialRunner(run_fn=third))
    assert third.calls == []

    # another recipe (different hash) is refused: the folder would mix two recipes
    fourth = FakeRun()
    with pytest.raises(ValueError, match=r"holds the outputs of recipe standin .*--overwrite"):
        apply_recipe(ApplyConfig(_recipe(seed=8), data, out, resume=True, evaluate=False),
                     runner=SerialRunner(run_fn=fourth))
    assert fourth.calls == []
    # the same recipe with another description (a search frozen again by --resume) scores
    # the same: the refusal says so and how to continue (found 2026-12-07: it said only
    # "another recipe")
    import dataclasses

    same = dataclasses.replace(recipe, description="Best of 6 trials")
    assert same.behaviour_hash() == recipe.behaviour_hash()
    with pytest.raises(ValueError, match=r"which scores exactly as standin .*recipe\.json in "
                                         r"any bundle under models/.*--overwrite"):
        apply_recipe(ApplyConfig(same, data, out, resume=True, evaluate=False),
                     runner=SerialRunner(run_fn=fourth))
    assert fourth.calls == []
    # --overwrite replaces that run (everything reruns); without --resume everything reruns
    apply_recipe(ApplyConfig(_recipe(seed=8), data, out, resume=True, evaluate=False,
                             overwrite=True), runner=SerialRunner(run_fn=fourth))
    assert sorted(fourth.calls) == list(MTS)
    fifth = FakeRun()
    apply_recipe(ApplyConfig(_recipe(seed=8), data, out, evaluate=False),
                 runner=SerialRunner(run_fn=fifth))
    assert sorted(fifth.calls) == list(MTS)


def test_anonymised_test_names_use_official_ground_truth(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data", ("alpha", "beta"), anonymised=True)
    out = tmp_path / "out"
    report = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                          runner=SerialRunner(run_fn=FakeRun()))
    assert report.ok and report.official_score is None and report.metrics == {}
    assert not (out / "metrics.json").exists()
    assert (out / "anomaly_score_alpha_section_00_test.csv").read_text().startswith(
        "section_00_0000.wav,")

    report = apply_recipe(ApplyConfig(_recipe(), data, out, resume=True,
                                      ground_truth=tmp_path / "gt", plots=False),
                          runner=SerialRunner(run_fn=FakeRun()))
    expected = evaluate_submission(out, tmp_path / "gt")
    assert report.official_score == pytest.approx(expected.official_score)
    assert set(json.loads((out / "metrics.json").read_text())["machine_types"]) == {
        "alpha", "beta"}


def test_ground_truth_covers_its_types_and_labelled_names_the_rest(tmp_path: Path) -> None:
    """--ground-truth for the anonymised types, labelled test names for a dev type beside
    them (its metrics used to be dropped); another type's broken file in the evaluator folder
    does not matter, a broken file of a run type fails before any type is trained."""
    data = _make_tree(tmp_path / "data", ("alpha", "beta"), anonymised=True)
    _make_tree(tmp_path / "dev", ("gamma",))
    (tmp_path / "dev" / "gamma").rename(data / "gamma")
    gt = tmp_path / "gt"
    # a type that is not part of the run, with its domain file missing
    (gt / "ground_truth_data" / "ground_truth_delta_section_00_test.csv").write_text("x.wav,0\n")
    out = tmp_path / "out"
    report = apply_recipe(ApplyConfig(_recipe(), data, out, ground_truth=gt, plots=False),
                          runner=SerialRunner(run_fn=FakeRun()))
    assert report.ok
    assert sorted(json.loads((out / "metrics.json").read_text())["machine_types"]) == [
        "alpha", "beta", "gamma"]

    bad = gt / "ground_truth_domain" / "ground_truth_beta_section_00_test.csv"
    bad.write_text("name,domain\n" + bad.read_text())  # a header row
    fake = FakeRun()
    with pytest.raises(GroundTruthError, match="ground_truth_beta_section_00_test.csv"):
        apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "out2", ground_truth=gt,
                                 plots=False), runner=SerialRunner(run_fn=fake))
    assert fake.calls == []


def test_a_type_that_fails_after_its_csvs_leaves_only_its_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-06): a bundle save that hit a full disk left the type's
    submission CSVs, and `evaluate` scored them as a complete run."""
    import errno

    import automl_asd.apply.runners as runners

    def full_disk(out: Path, machine_type: str, *args: object) -> None:
        if machine_type == "beta":
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "models"))
    monkeypatch.setattr(runners, "save_model_bundle", full_disk)
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    report = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                          runner=SerialRunner(run_fn=FakeRun()))
    assert list(report.failed) == ["beta"]
    assert sorted(p.name for p in out.glob("*beta*")) == ["beta.error.txt"]
    assert (out / "anomaly_score_alpha_section_00_test.csv").is_file()
    assert sorted(json.loads((out / "metrics.json").read_text())["machine_types"]) == [
        "alpha", "gamma"]


def test_machine_type_selection_and_errors(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    fake = FakeRun()
    report = apply_recipe(ApplyConfig(_recipe(), data, out, machine_types=("gamma",), plots=False),
                          runner=SerialRunner(run_fn=fake))
    assert fake.calls == ["gamma"] and [o.machine_type for o in report.outcomes] == ["gamma"]
    assert not list(out.glob("*.png"))
    with pytest.raises(ValueError, match="delta.*not found.*available: alpha, beta, gamma"):
        apply_recipe(ApplyConfig(_recipe(), data, out, machine_types=("delta",)),
                     runner=SerialRunner(run_fn=fake))


def test_run_job_reports_traceback_and_mismatched_results(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data", ("alpha",))

    def short(recipe: Recipe, machine: MachineData, *, cache_dir: Path | None, device: str,
              num_threads: int | None, shared: SharedStates | None) -> MachineResult:
        res = FakeRun()(recipe, machine)
        return replace(res, scores=res.scores[:-1])

    job = MachineJob(_recipe(), str(data), "alpha", str(tmp_path / "out"))
    outcome = run_job(job, run_fn=short)
    assert outcome.status == "failed" and outcome.summary is None
    assert "12 names, 12 sections, 11 scores" in (outcome.error or "")
    assert not list((tmp_path / "out").glob("anomaly_score_*"))  # nothing half written
    assert not list((tmp_path / "out").glob(".staging-*"))
    # exceptions outside `catch` propagate (the Ray runner leaves them to Ray's retries)
    with pytest.raises(RuntimeError, match="boom"):
        run_job(job, run_fn=FakeRun(["alpha"]), catch=(KeyError,))


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT", "EFBIG", "EIO"])
def test_a_full_disk_fails_a_job_at_once_other_os_errors_reach_the_retries(
        tmp_path: Path, code: str) -> None:
    """Found on a real full tmpfs (2026-12-07): `apply` on Ray retried a type whose --out was
    full (Ray's retries of the same write), printing Ray's traceback of the task each time."""
    import errno

    from automl_asd.errors import PermanentError

    data = _make_tree(tmp_path / "data", ("alpha",))
    where = tmp_path / "out" / "models" / "x.npy"

    def full(recipe: Recipe, machine: MachineData, **kwargs: Any) -> MachineResult:
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(where))

    job = MachineJob(_recipe(), str(data), "alpha", str(tmp_path / "out"))
    if code == "EIO":
        with pytest.raises(OSError):
            run_job(job, run_fn=full, catch=(PermanentError,))
        return
    outcome = run_job(job, run_fn=full, catch=(PermanentError,))
    assert outcome.status == "failed" and (outcome.message or "").startswith(f"{where}: ")


def test_warnings_of_a_task_elsewhere_reach_the_driver(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: `apply` (Ray, the default) never showed the pipeline's warnings about
    the data (no target-domain training clips, silent clips, ...): a Ray worker's log does not
    reach the console without -v. The task returns them and the driver logs them."""
    import logging

    data = _make_tree(tmp_path / "data", ("alpha", "beta"))

    def warns(recipe: Recipe, machine: MachineData, **kw: Any) -> MachineResult:
        logging.getLogger("automl_asd.pipeline").warning("%s: thin data", machine.machine_type)
        return FakeRun()(recipe, machine, **kw)

    job = MachineJob(_recipe(), str(data), "alpha", str(tmp_path / "o1"))
    assert run_job(job, run_fn=warns, keep_warnings=True).warnings == ("alpha: thin data",)
    assert run_job(replace(job, out_dir=str(tmp_path / "o2")), run_fn=warns).warnings == ()

    driver_lines: list[tuple[str, str]] = []

    class Elsewhere(SerialRunner):  # as the Ray runner: the task's log is not this process's
        def run(self, jobs: Sequence[MachineJob], on_done: Any = None) -> list[Any]:
            outcomes = []
            for job in jobs:
                outcome = run_job(job, run_fn=warns, keep_warnings=True)
                outcomes.append(outcome)
                caplog.clear()  # what the task logged stays in the task's process
                if on_done is not None:
                    on_done(outcome)
                driver_lines.extend((r.name, r.getMessage()) for r in caplog.records
                                    if "thin data" in r.getMessage())
            return outcomes

    caplog.set_level(logging.WARNING)
    apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "o3", plots=False), runner=Elsewhere())
    assert driver_lines == [("automl_asd.apply.driver", "alpha: thin data"),
                            ("automl_asd.apply.driver", "beta: thin data")]


def test_summary_seconds_reach_results_table(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data", ("alpha", "beta"))
    out = tmp_path / "out"
    apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                 runner=SerialRunner(run_fn=FakeRun()))
    md = (out / "results.md").read_text()
    for mt in ("alpha", "beta"):
        summary = json.loads((out / f"{mt}.summary.json").read_text())
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| {mt} | 0."))
        assert [c.strip() for c in row.split("|")][4] == f"{summary['seconds']:.1f}"
        assert summary["official_baseline"] is None
    sub = read_submission(out, "alpha", "00")
    assert len(sub.scores) == 12 and sub.decisions is not None


@pytest.mark.slow
def test_cli_serial_real_pipeline_and_bad_recipe(
    tiny_novel_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from automl_asd.cli import main

    out = tmp_path / "out"
    base = ["apply", "--data", str(tiny_novel_root), "--out", str(out), "--serial",
            "--no-plots", "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "--frozen", "fast_default"]) == 0
    printed = capsys.readouterr().out
    omega = json.loads((out / "metrics.json").read_text())["official_score"]
    assert f"official score Ω = {omega:.4f}" in printed
    assert 0.5 < omega <= 1.0  # synthetic anomalies are detectable by the fast default

    assert main([*base, "--frozen", "no_such_recipe"]) == 1
    err = capsys.readouterr().err
    assert "no_such_recipe" in err and "fast_default" in err  # lists the shipped recipes
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "name": "x",
                               "detector": {"name": "nope"}}))
    assert main([*base, "--frozen", str(bad)]) == 1
    assert "detector.name" in capsys.readouterr().err


def test_summarize_puts_runs_side_by_side(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from automl_asd.cli import main
    from automl_asd.evaluation.metrics import official_score

    data = _make_tree(tmp_path / "data")
    reports = {}
    for seed in (7, 8):
        reports[seed] = apply_recipe(ApplyConfig(_recipe(seed=seed), data, tmp_path / f"run{seed}",
                                                 plots=False),
                                     runner=SerialRunner(run_fn=FakeRun()))
    apply_recipe(ApplyConfig(_recipe(seed=9), data, tmp_path / "nolabels", evaluate=False),
                 runner=SerialRunner(run_fn=FakeRun()))
    table = tmp_path / "table.md"
    runs = [str(tmp_path / "run7"), str(tmp_path / "run8"), str(tmp_path / "nolabels")]
    assert main(["summarize", *runs, "--out", str(table)]) == 0
    printed = capsys.readouterr().out
    md = table.read_text()
    assert md in printed
    head = next(ln for ln in md.splitlines() if ln.startswith("| run |"))
    assert head == "| run | recipe | hash | official baseline | Ω | alpha | beta | gamma |"
    for seed, rep in reports.items():
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| `{tmp_path}/run{seed}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:4] == ["`standin`", f"`{rep.recipe_hash[:12]}`", "no"]
        assert cells[4] == f"{rep.official_score:.4f}"
        for i, mt in enumerate(MTS):
            omega_mt = official_score({k: v for k, v in rep.metrics.items() if k[0] == mt})
            assert cells[5 + i] == f"{omega_mt:.4f}"
        total = next(ln for ln in md.splitlines()
                     if ln.startswith(f"| `{tmp_path}/run{seed}` | TOTAL score |"))
        assert f"| {rep.official_score:.4f} |" in total
    row = next(ln for ln in md.splitlines() if ln.startswith(f"| `{tmp_path}/nolabels` |"))
    assert row.endswith("| no | — | — | — | — |")

    csv_out = tmp_path / "table.csv"
    assert main(["summarize", *runs[:2], "--out", str(csv_out)]) == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "run,recipe,hash,official baseline,Ω,alpha,beta,gamma,failed"
    assert lines[1].split(",")[4] == f"{reports[7].official_score:.4f}"

    capsys.readouterr()
    assert main(["summarize", runs[0], str(data)]) == 1
    err = capsys.readouterr().err
    assert f"{data}: not an apply run (no <machine type>.summary.json)" in err


def test_jobs_carry_the_frozen_recipe_without_a_dict_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Recipe dataclass itself reaches the model step (and pickles for Ray workers): no job
    rebuilds it from a dict."""
    import pickle

    data = _make_tree(tmp_path / "data", ("alpha", "beta"))
    recipe = _recipe()
    job = MachineJob(recipe, str(data), "alpha", str(tmp_path / "out"))
    assert pickle.loads(pickle.dumps(job)) == job

    def no_round_trip(*args: Any, **kwargs: Any) -> Recipe:
        raise AssertionError("a job rebuilt the recipe from a dict")

    monkeypatch.setattr(Recipe, "from_dict", no_round_trip)
    seen: list[Recipe] = []
    fake = FakeRun()

    def spy(recipe: Recipe, machine: MachineData, *, cache_dir: Path | None, device: str,
            num_threads: int | None, shared: SharedStates | None) -> MachineResult:
        seen.append(recipe)
        return fake(recipe, machine)

    report = apply_recipe(ApplyConfig(recipe, data, tmp_path / "out", plots=False),
                          runner=SerialRunner(run_fn=spy))
    assert report.ok and [r is recipe for r in seen] == [True, True]
    summary = json.loads((tmp_path / "out" / "alpha.summary.json").read_text())
    assert summary["recipe_hash"] == recipe.content_hash()
    assert summary["counts"] == {"train": 6, "test": 12}


def test_development_types_of_the_recipes_search_are_flagged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by probing (2026-12-03): applying a searched recipe to the types its search
    developed on printed an Ω like any other, with nothing saying it is in-sample."""
    from automl_asd.data import scan
    from automl_asd.provenance import data_fingerprint, development_overlap
    from automl_asd.recipe import Provenance

    data = _make_tree(tmp_path / "data")
    seen = scan(data, machine_types=["alpha", "beta"])
    searched = replace(_recipe(), provenance=Provenance(
        source="search", dev_machine_types=("alpha", "beta", "zeta"),
        dev_data=data_fingerprint(seen)))
    assert development_overlap(searched, data, MTS) == (("alpha", "beta"), ("alpha", "beta"))
    # Same name, other clips: flagged by name only.
    (data / "beta" / "train" / "section_00_source_train_normal_0000_noAttribute.wav").unlink()
    assert development_overlap(searched, data, MTS) == (("alpha", "beta"), ("alpha",))
    # A hand-set recipe (no search) and a search without a data fingerprint.
    assert development_overlap(_recipe(), data, MTS) == ((), ())
    no_fp = replace(searched, provenance=replace(searched.provenance, dev_data=None))
    assert development_overlap(no_fp, data, MTS) == (("alpha", "beta"), ())

    with caplog.at_level("WARNING"):
        report = apply_recipe(ApplyConfig(searched, data, tmp_path / "out", plots=False),
                              runner=SerialRunner(run_fn=FakeRun()))
    assert (report.dev_types, report.dev_types_same_data) == (("alpha", "beta"), ("alpha",))
    text = caplog.text
    assert "alpha: the recipe was chosen by a search on these machine types" in text
    assert "beta: development type name(s) of the search that chose the recipe" in text
    assert "gamma" not in text
    plain = apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "out2", plots=False),
                         runner=SerialRunner(run_fn=FakeRun()))
    assert (plain.dev_types, plain.dev_types_same_data) == ((), ())


def test_a_rerun_with_other_types_names_the_earlier_runs_files(
        tiny_dev_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by a review (2026-12-07): a second apply into the same --out with other
    --machine-types rewrote results.md for its types only, silently leaving the first run's
    CSVs, which `evaluate` then scored with the rest."""
    import logging

    from automl_asd.cli import main

    out = tmp_path / "out"
    argv = ["apply", "--frozen", "fast_default", "--data", str(tiny_dev_root), "--out",
            str(out), "--serial", "--no-plots", "--machine-types"]
    assert main([*argv, "fan"]) == 0
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "gearbox"]) == 0
    assert ("also hold(s) submission files of 1 machine type(s) this run did not apply (fan)"
            in caplog.text)
    assert "this run's results cover gearbox only" in caplog.text


def test_few_names_keeps_a_long_list_to_one_line() -> None:
    from automl_asd.progress import few_names

    assert few_names(["a", "b"]) == "a, b"
    names = [f"t{i:03d}" for i in range(200)]
    assert few_names(names) == "t000, t001, t002, t003, t004, t005, t006, t007, ... (192 more)"


@pytest.mark.parametrize("full_at", ["error_file", "metrics"])
def test_files_written_before_a_full_disk_stay_the_runs_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full_at: str) -> None:
    """Found by probing a real full tmpfs (2026-12-07): a failed type's error file, or the
    results.csv / results.md written before metrics.json ran out of disk, were on disk but not
    in the run manifest (saving it failed too), so `apply --resume` after freeing space refused
    them as files automl-asd did not write."""
    import errno

    import automl_asd.apply.runners as runners
    import automl_asd.evaluation.evaluate as evaluate
    from automl_asd.io.run_folder import RunFolder

    def no_space(path: object) -> OSError:
        return OSError(errno.ENOSPC, "No space left on device", str(path))

    full = {"on": False}
    save = RunFolder.save

    def save_unless_full(self: RunFolder) -> None:
        if full["on"]:
            raise no_space(self.path / ".automl-asd-run.json")
        save(self)

    monkeypatch.setattr(RunFolder, "save", save_unless_full)
    if full_at == "error_file":
        import automl_asd.apply.driver as driver

        def bundle(out: Path, machine_type: str, *args: object) -> None:
            if machine_type == "beta":
                raise no_space(out / "models")
        write_error = driver.write_error

        def error_file(out: Path, machine_type: str, text: str) -> Path:
            full["on"] = True  # the error file still fits, the manifest no longer
            return write_error(out, machine_type, text)
        monkeypatch.setattr(runners, "save_model_bundle", bundle)
        monkeypatch.setattr(driver, "write_error", error_file)
    else:
        write_json = evaluate.write_json

        def metrics(path: Path, doc: Any) -> Path:
            if path.name == "metrics.json":
                full["on"] = True
                raise no_space(path)
            return write_json(path, doc)
        monkeypatch.setattr(evaluate, "write_json", metrics)
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                     runner=SerialRunner(run_fn=FakeRun()))
    monkeypatch.undo()  # space freed
    report = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False, resume=True),
                          runner=SerialRunner(run_fn=FakeRun()))
    assert report.ok and not list(out.glob("*.error.txt"))
    clean = tmp_path / "clean"
    apply_recipe(ApplyConfig(_recipe(), data, clean, plots=False),
                 runner=SerialRunner(run_fn=FakeRun()))
    for name in ("results.csv", "metrics.json", *(p.name for p in clean.glob("*_test.csv"))):
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name


def test_a_type_that_hits_a_full_disk_is_logged_in_the_cli_s_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Found on a real full tmpfs (2026-12-07): the failed type's line quoted the traceback's
    last line, `OSError: [Errno 28] No space left on device: '...'`, where every other path
    says `PATH: no space left on the device; free space or write elsewhere`."""
    import errno
    import logging

    import automl_asd.apply.runners as runners

    def full_disk(out: Path, machine_type: str, *args: object) -> None:
        if machine_type == "beta":
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "models" / "x.npy"))
    monkeypatch.setattr(runners, "save_model_bundle", full_disk)
    data = _make_tree(tmp_path / "data")
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR, logger="automl_asd.apply.driver"):
        report = apply_recipe(ApplyConfig(_recipe(), data, out, plots=False),
                              runner=SerialRunner(run_fn=FakeRun()))
    assert list(report.failed) == ["beta"]
    [line] = [r.getMessage() for r in caplog.records if "FAILED" in r.getMessage()]
    assert "beta FAILED after " in line, line
    assert (f": {out / 'models' / 'x.npy'}: no space left on the device; free space or write "
            "elsewhere (traceback: ") in line, line
