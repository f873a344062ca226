"""Reliability probes (issue 17): outputs never destroy what they did not write, honest resume,
no silent NaN. One test per probe row of the reliability probe table (output safety, resume,
missing test/, score/watch NaN, bundle rows), on a copy of one tiny synthetic machine type.

Every command runs through ``automl_asd.cli.main`` (what a user types), serially (no Ray);
each test copies the shared trees before altering them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from automl_asd.cli import main
from automl_asd.io.results import sha256_file
from automl_asd.io.run_folder import RUN_MANIFEST, FolderLock, OutputError, RunFolder, journal

MT = "fan"
TRAIN_CLIP = "train/section_00_source_train_normal_0000_spd_2_mic_1.wav"


def _apply(data: Path, out: Path, *extra: str, recipe: str = "fast_default") -> list[str]:
    return ["apply", "--frozen", recipe, "--data", str(data), "--out", str(out), "--serial",
            "--no-plots", "--machine-types", MT, *extra]


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_file(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tiny_dev_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/fan``: a copy of the tiny fan type (mtimes kept)."""
    root = tmp_path_factory.mktemp("probe_data")
    shutil.copytree(tiny_dev_root / MT, root / MT)
    return root


@pytest.fixture(scope="module")
def applied(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean ``apply --serial`` of fast_default on the fan copy (do not alter; copy it)."""
    out = tmp_path_factory.mktemp("probe_applied") / "out"
    assert main(_apply(data, out)) == 0
    return out


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Path, str], Path]:
    def copy(src: Path, name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst
    return copy


def _reseal(bundle: Path) -> None:
    """Recompute every sha256 of the bundle's manifest.json (what a forger would do)."""
    man = json.loads((bundle / "manifest.json").read_text())
    for name in man["files"]:
        man["files"][name] = sha256_file(bundle / name)
    (bundle / "manifest.json").write_text(json.dumps(man, indent=2))


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error printed"
    assert "Traceback" not in "\n".join(err)
    return err[-1]


# ============================================================================ data loss
def test_score_out_refuses_an_input_wav(applied: Path, data: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "clip.wav"
    shutil.copy(next((data / MT / "test").glob("*.wav")), wav)
    before = sha256_file(wav)
    assert main(["score", "--model", str(applied / "models" / MT), str(wav),
                 "--out", str(wav)]) == 1
    line = _err_line(capsys)
    assert "is one of the recordings to score" in line and str(wav) in line
    assert sha256_file(wav) == before


def test_score_out_refuses_the_model_tar_and_bundle_files(
        applied: Path, data: Path, copy_of: Callable[[Path, str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    bundle = copy_of(applied / "models" / MT, "bundle")
    tar = tmp_path / "good.tar"
    with tarfile.open(tar, "w") as t:
        for p in sorted(bundle.rglob("*")):
            if p.is_file():
                t.add(p, arcname=p.relative_to(bundle).as_posix())
    test_dir = str(data / MT / "test")
    for model, out in ((tar, tar), (bundle, bundle / "recipe.json"),
                       (bundle, bundle / "scores.csv")):
        before = _snapshot(bundle), sha256_file(tar)
        assert main(["score", "--model", str(model), test_dir, "--out", str(out)]) == 1
        assert "is the model bundle" in _err_line(capsys)
        assert (_snapshot(bundle), sha256_file(tar)) == before
    # an existing file that is not a score CSV is refused unless --overwrite
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own,data\n")
    assert main(["score", "--model", str(tar), test_dir, "--out", str(notes)]) == 1
    assert "not a score CSV" in _err_line(capsys)
    assert notes.read_text() == "my,own,data\n"
    assert main(["score", "--model", str(tar), test_dir, "--out", str(notes),
                 "--overwrite"]) == 0
    assert notes.read_text().startswith("name,score,decision\n")


def test_report_files_never_replace_inputs_or_a_runs_files(
        applied: Path, data: Path, copy_of: Callable[[Path, str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """evaluate --out/--json and summarize --out used to overwrite the submission CSVs, a
    training wav of the ground-truth tree and apply's own metrics.json (rc 0)."""
    run = copy_of(applied, "run")
    before = _snapshot(run)
    wav_before = _snapshot(data)
    cases = [
        (["evaluate", "--scores", str(run), "--ground-truth", str(data), "--out",
          str(run / f"anomaly_score_{MT}_section_00_test.csv")], "a submission CSV's name"),
        (["evaluate", "--scores", str(run), "--ground-truth", str(data), "--json",
          str(data / MT / TRAIN_CLIP)], "a .wav name"),
        (["evaluate", "--scores", str(run), "--ground-truth", str(data), "--json",
          str(data / MT / "x.json")], "inside --ground-truth"),
        (["evaluate", "--scores", str(run), "--ground-truth", str(data), "--json", str(run)],
         "is a folder"),
        (["summarize", str(run), "--out", str(run / f"{MT}.summary.json")],
         "written by an automl-asd run"),
    ]
    for argv, needle in cases:
        assert main(argv) == 1, argv
        out = capsys.readouterr()
        assert needle in out.err.strip().splitlines()[-1], (argv, out.err)
        assert "official score" not in out.out  # refused before any work
    assert _snapshot(run) == before and _snapshot(data) == wav_before
    # a report file of its own beside the run is fine
    assert main(["evaluate", "--scores", str(run), "--ground-truth", str(data), "--json",
                 str(run / "eval.json")]) == 0


def test_outputs_are_never_written_into_the_input_tree(
        data: Path, copy_of: Callable[[Path, str], Path], capsys: pytest.CaptureFixture[str]
        ) -> None:
    tree = copy_of(data, "tree")
    before = _snapshot(tree)
    for out, how in ((tree, "is"), (tree / "runs" / "x", "inside")):
        assert main(_apply(tree, out)) == 1
        assert f"--out {out}: {how} --data {tree}; outputs are never written into the input " \
            "tree" in _err_line(capsys)
        assert main(["search", "--data", str(tree), "--space", "smoke", "--trials", "1",
                     "--out", str(out)]) == 1
        assert f"--out {out}: {how} --data {tree}" in _err_line(capsys)
    assert _snapshot(tree) == before


def test_the_official_evaluator_layout_is_not_an_input_tree(tmp_path: Path) -> None:
    """Review of the checks above (2026-12-06): in an evaluator folder only its ground-truth
    folders are inputs; submissions go to its teams/, results to teams_result/."""
    from automl_asd.io.run_folder import check_apart, check_report_file

    ev = tmp_path / "evaluator"
    for sub in ("ground_truth_data", "ground_truth_domain"):
        (ev / sub).mkdir(parents=True)
    gt = [("--ground-truth", ev)]
    check_apart(ev / "teams" / "me" / "sys1", "--out", gt)
    check_report_file(ev / "teams_result" / "me.json", "--json", inputs=gt)
    with pytest.raises(OutputError, match="inside --ground-truth"):
        check_report_file(ev / "ground_truth_data" / "x.csv", "--out", inputs=gt)
    # a labelled data root given as --ground-truth stays an input as a whole
    with pytest.raises(OutputError, match="inside --ground-truth"):
        check_apart(tmp_path / "root" / "out", "--out", [("--ground-truth", tmp_path / "root")])


def test_an_output_inside_a_linked_machine_folder_is_refused(tmp_path: Path) -> None:
    """Found 2026-12-07: with `--data L`, where `L/pump` links to `T/pump`, `--out
    T/pump/train/out` was let through and the run was written into the recordings' folder."""
    from automl_asd.io.run_folder import check_apart

    real = tmp_path / "T" / "pump" / "train"
    real.mkdir(parents=True)
    (tmp_path / "L" / "nested").mkdir(parents=True)
    (tmp_path / "L" / "pump").symlink_to(tmp_path / "T" / "pump")
    (tmp_path / "L" / "nested" / "fan").symlink_to(tmp_path / "T")  # deeper in the tree
    data = [("--data", tmp_path / "L")]
    with pytest.raises(OutputError, match=r"inside --data .*L/pump; outputs are never"):
        check_apart(real / "out", "--out", data)
    with pytest.raises(OutputError, match=r"inside --data .*L/nested/fan"):
        check_apart(tmp_path / "T" / "x", "--out", data)
    check_apart(tmp_path / "out", "--out", data)  # beside both trees: fine


def test_apply_storage_inside_data_is_refused(
        data: Path, copy_of: Callable[[Path, str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    tree = copy_of(data, "tree_s")
    before = _snapshot(tree)
    for store in (str(tree / MT / "store"), f"file://{tree / MT / 'store'}"):
        assert main(_apply(tree, tmp_path / "o", "--storage", store)) == 1
        assert "--storage" in _err_line(capsys)
    assert _snapshot(tree) == before


@pytest.mark.parametrize("name", ["trials.csv", "duplicates.json", "novel_check.parquet"])
def test_search_refuses_a_foreign_file_among_its_names(
        data: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / name).write_text("my precious data")
    assert main(["search", "--data", str(data), "--space", "smoke", "--trials", "1",
                 "--out", str(out)]) == 1
    assert name in _err_line(capsys)
    assert (out / name).read_text() == "my precious data"


def test_a_refused_novel_root_creates_no_run_folder(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert main(["search", "--data", str(data), "--space", "smoke", "--trials", "1",
                 "--out", str(out), "--novel", str(data)]) == 1
    assert "is a development type of this search" in _err_line(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_demo_refuses_a_foreign_folder_and_keeps_its_search(tmp_path: Path) -> None:
    from automl_asd.orchestration.demo import run_demo

    d = tmp_path / "D"
    (d / "search" / "my_real_search").mkdir(parents=True)
    (d / "search" / "my_real_search" / "trials.parquet").write_bytes(b"precious")
    (d / "search" / "recipe.json").write_text("{}")
    before = _snapshot(d)
    with pytest.raises(OutputError, match="not the folder of an earlier `automl-asd demo`"):
        run_demo(d, size="tiny", space="smoke", trials=1, say=lambda _: None)
    assert _snapshot(d) == before and not (d / RUN_MANIFEST).exists()


def _foreign_files(out: Path) -> dict[str, str]:
    files = {
        "notes.txt": "mine", "results.csv": "my table", "results.md": "# mine",
        "metrics.json": "{}", f"models/{MT}/my_notes.txt": "mine",
        "models/other/file.txt": "mine", "shared/x.txt": "mine", "subdir/data.txt": "mine",
        f"anomaly_score_{MT}_section_07_test.csv": "a.wav,1\n", f"{MT}.error.txt": "old",
        "gearbox.summary.json": "{}",
    }
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return files


def test_apply_into_a_foreign_folder_is_refused_and_deletes_nothing(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    _foreign_files(out)
    before = _snapshot(out)
    assert main(_apply(data, out)) == 1
    line = _err_line(capsys)
    assert "exists and was not written by automl-asd into this folder" in line
    assert "--overwrite" in line
    assert _snapshot(out) == before  # nothing deleted, nothing written (not even a manifest)
    assert not (out / RUN_MANIFEST).exists()


@pytest.mark.slow
def test_apply_overwrite_replaces_only_colliding_names(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    files = _foreign_files(out)
    assert main(_apply(data, out, "--overwrite")) == 0
    # colliding names were replaced (the bundle folder as a whole); every other file is kept
    replaced = {"results.csv", "results.md", "metrics.json", f"models/{MT}/my_notes.txt"}
    for rel, text in files.items():
        if rel not in replaced:
            assert (out / rel).read_text() == text, rel
    assert not (out / f"models/{MT}/my_notes.txt").exists()
    assert json.loads((out / "metrics.json").read_text())["official_score"] > 0
    # the manifest lists what the run wrote, with the files' sha256, and nothing else
    manifest = json.loads((out / RUN_MANIFEST).read_text())
    assert manifest["command"] == "apply" and manifest["recipe_name"] == "fast_default"
    listed = manifest["files"]
    assert f"anomaly_score_{MT}_section_00_test.csv" in listed
    assert f"models/{MT}/manifest.json" in listed and f"{MT}.summary.json" in listed
    assert not set(listed) & (set(files) - replaced)
    assert all(sha256_file(out / rel) == digest for rel, digest in listed.items())


@pytest.mark.slow
def test_rerun_clears_only_its_own_files(applied: Path, data: Path,
                                         copy_of: Callable[[Path, str], Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = copy_of(applied, "out")
    (out / "notes.txt").write_text("mine")
    # a user file dropped into the run's own bundle folder is refused, not deleted
    (out / "models" / MT / "my_notes.txt").write_text("mine")
    assert main(_apply(data, out)) == 1
    assert f"models/{MT}/my_notes.txt: exists and was not written" in _err_line(capsys)
    assert (out / "models" / MT / "my_notes.txt").read_text() == "mine"
    (out / "models" / MT / "my_notes.txt").unlink()
    # a foreign file under a name the run writes (a plot of this run's type) is refused too
    (out / f"roc_{MT}.png").write_bytes(b"my plot")
    assert main(_apply(data, out)) == 1
    assert f"roc_{MT}.png: exists and was not written" in _err_line(capsys)
    (out / f"roc_{MT}.png").unlink()
    # a rerun replaces the run's own files and keeps foreign files under other names
    (out / f"anomaly_score_{MT}_section_07_test.csv").write_text("x.wav,1\n")
    assert main(_apply(data, out)) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / f"anomaly_score_{MT}_section_07_test.csv").read_text() == "x.wav,1\n"
    for name in (f"anomaly_score_{MT}_section_00_test.csv", "metrics.json"):
        assert sha256_file(out / name) == sha256_file(applied / name)


@pytest.mark.slow
def test_relative_out_lists_every_file_it_wrote(data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(_apply(data, Path("runs/rel"))) == 0
    out = tmp_path / "runs" / "rel"
    listed = json.loads((out / RUN_MANIFEST).read_text())["files"]
    written = {rel for rel in _snapshot(out) if not rel.startswith(".automl-asd-run")}
    assert set(listed) == written and "metrics.json" in written
    assert not list(out.glob(".automl-asd-run.journal-*"))


def test_save_shared_keeps_foreign_files(tmp_path: Path) -> None:
    from automl_asd.bundle.shared import load_shared, save_shared

    out = tmp_path / "shared"
    out.mkdir()
    (out / "important.txt").write_text("keep me")
    states = [{"w": np.arange(3.0)}]
    save_shared(out, states, recipe_hash="h", machine_types=["fan"])
    save_shared(out, [{"w": np.arange(4.0)}], recipe_hash="h", machine_types=["fan"])
    assert (out / "important.txt").read_text() == "keep me"
    np.testing.assert_array_equal(load_shared(out, recipe_hash="h")[0]["w"], np.arange(4.0))
    # apply lists only the stage's own files as the run's: the user's file stays foreign
    with RunFolder.open(tmp_path, command="apply") as folder:
        folder.record_tree("shared", listed_in="shared.json")
        assert {"shared/shared.json", "shared/members/000/000-w.npy"} <= set(folder.files)
        assert folder.foreign(["shared/*"]) == ["shared/important.txt"]
    # a foreign file under a name the stage writes is refused, not replaced
    other = tmp_path / "other"
    (other / "members" / "000").mkdir(parents=True)
    (other / "members/000/000-w.npy").write_bytes(b"user data")
    with pytest.raises(OutputError, match="000-w.npy: exists and is not part of the shared"):
        save_shared(other, states, recipe_hash="h", machine_types=["fan"])
    assert (other / "members/000/000-w.npy").read_bytes() == b"user data"


def test_a_command_refused_after_opening_its_folder_leaves_the_manifest_as_it_was(
        applied: Path, data: Path, copy_of: Callable[[Path, str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Stop 48's review: a refused command into a finished run folder rewrote its manifest's
    `updated` time (the only change)."""
    out = copy_of(applied, "out")
    (out / f"roc_{MT}.png").write_text("the user's own")  # a name apply with plots writes
    before = _snapshot(out)
    manifest = (out / RUN_MANIFEST).read_bytes()
    assert main([a for a in _apply(data, out, "--resume") if a != "--no-plots"]) == 1
    assert f"roc_{MT}.png" in _err_line(capsys)
    assert _snapshot(out) == before and (out / RUN_MANIFEST).read_bytes() == manifest
    # a change is still saved at once: --overwrite of another recipe drops the old run's files
    with RunFolder.open(out, command="apply", recipe_hash="other", recipe_name="x",
                        overwrite=True):
        pass
    assert json.loads((out / RUN_MANIFEST).read_text())["recipe_hash"] == "other"


def test_the_manifest_is_written_only_when_more_than_its_time_changes(tmp_path: Path) -> None:
    """The review of stop 49: a `search --resume` refused for a changed --seed rewrote the
    manifest's `updated` time (the command saves its folder list before and after)."""
    with RunFolder.open(tmp_path, command="search") as folder:
        (tmp_path / "search.json").write_text("{}")
        folder.manifest["dirs"] = ["near_ties", "tune"]
        folder.record(["search.json"])
    path = tmp_path / RUN_MANIFEST
    before = path.read_bytes()
    os.utime(path, ns=(1, 1))
    with RunFolder.open(tmp_path, command="search") as folder:
        folder.manifest["dirs"] = ["near_ties", "tune"]
        folder.save()
        folder.record(["search.json"])
    assert path.read_bytes() == before and path.stat().st_mtime_ns == 1
    with RunFolder.open(tmp_path, command="search") as folder:
        folder.manifest["dirs"] = ["loo"]
        folder.save()
    assert json.loads(path.read_text())["dirs"] == ["loo"]


def test_files_of_a_killed_run_are_still_its_own(tmp_path: Path) -> None:
    """A task journals each name before creating the file: after the driver died, the next
    run still knows the file is the tool's (and may replace it), not a user's."""
    out = tmp_path / "out"
    out.mkdir()
    journal(out, MT, [f"{MT}.summary.json", f"anomaly_score_{MT}_section_00_test.csv"])
    (out / f"{MT}.summary.json").write_text("{}")
    (out / "user.txt").write_text("mine")
    with RunFolder.open(out, command="apply") as folder:
        assert folder.owns(f"{MT}.summary.json") and not folder.owns("user.txt")
        assert not folder.owns(f"anomaly_score_{MT}_section_00_test.csv")  # never created
        assert folder.foreign(["*"]) == ["user.txt"]
        assert folder.remove_matching(["*"]) == [f"{MT}.summary.json"]
    assert (out / "user.txt").read_text() == "mine"
    assert not list(out.glob(".automl-asd-run.journal-*"))


def test_a_report_or_recipe_a_user_edited_is_kept_when_the_tool_replaces_it(
        applied: Path, data: Path, copy_of: Callable[[Path, str], Path],
        caplog: pytest.LogCaptureFixture) -> None:
    """Found by a probe (2026-12-07, F10): `--resume` rewrote results.md, recipe.json or
    search_report.md that a user had edited, silently. The edited version is now kept as
    `<name>.edited` (a file the run does not own: never replaced), with a warning; files
    nobody edited are replaced without one. A bundle's files are not documents: a bundle is
    saved whole (a file left in it would block that)."""
    out = copy_of(applied, "edited")
    (out / "results.md").write_text((out / "results.md").read_text() + "\nmy notes\n")
    os.remove(out / f"anomaly_score_{MT}_section_00_test.csv")  # the type runs again
    with caplog.at_level(logging.WARNING):
        assert main(_apply(data, out, "--resume")) == 0
    assert "my notes" in (out / "results.md.edited").read_text()
    assert "my notes" not in (out / "results.md").read_text()
    assert caplog.text.count("edited since automl-asd wrote it") == 1
    with RunFolder.open(out, command="apply") as folder:
        assert not folder.owns("results.md.edited")  # the user's: never replaced
        assert folder.stash_edited() == {}  # what the tool wrote is unedited
    caplog.clear()
    (out / "results.md").write_text("again\n")
    with caplog.at_level(logging.WARNING):
        assert main(_apply(data, out, "--resume")) == 0
    assert (out / "results.md.edited-2").read_text() == "again\n"
    assert "my notes" in (out / "results.md.edited").read_text()

    # search --resume: the edited report is set aside and kept only if the run writes it anew
    # (found by a probe: a refused resume kept a copy and then recorded the edit as the
    # tool's); a copy a killed run set aside is kept at the next start
    folder_dir = out.parent / "search_like"
    folder_dir.mkdir()
    with RunFolder.open(folder_dir, command="search") as folder:
        (folder_dir / "search_report.md").write_text("tool\n")
        (folder_dir / "trials.csv").write_text("a\n")
        folder.record(["search_report.md", "trials.csv"])
    (folder_dir / "search_report.md").write_text("tool\nmine\n")
    (folder_dir / "trials.csv").write_text("b\n")  # not a document people edit: no copy
    with RunFolder.open(folder_dir, command="search") as folder:
        stash = folder.stash_edited()
        assert list(stash) == ["search_report.md"]
        assert folder.settle_edited(stash, []) == []  # refused: nothing written anew
    assert sorted(p.name for p in folder_dir.iterdir() if "edited" in p.name) == []
    assert (folder_dir / "search_report.md").read_text() == "tool\nmine\n"
    with RunFolder.open(folder_dir, command="search") as folder:
        stash = folder.stash_edited()  # still edited: set aside again
        (folder_dir / "search_report.md").write_text("tool, again\n")
        assert folder.settle_edited(stash, ["search_report.md"]) == [
            "search_report.md.edited"]
        folder.record(["search_report.md"])
    assert (folder_dir / "search_report.md.edited").read_text() == "tool\nmine\n"
    (folder_dir / "search_report.md").write_text("mine too\n")
    with RunFolder.open(folder_dir, command="search") as folder:
        folder.stash_edited()
        journal(folder_dir, "search", ["search_report.md"])  # as the command does
        # ... then the run is killed: its pending copy and its journal stay
    with RunFolder.open(folder_dir, command="search") as folder:  # adopts the journal
        # the copy is kept now; what the killed run left is its own (found by a probe: a
        # SIGKILLed resume's own report was taken for a user's edit at the next start)
        assert folder.stash_edited() == {}
    assert (folder_dir / "search_report.md.edited-2").read_text() == "mine too\n"
    assert not (folder_dir / "trials.csv.edited").exists()
    assert not list(folder_dir.glob(".*edited-pending"))


def test_a_leave_one_out_fold_s_edited_documents_are_kept_too(tmp_path: Path) -> None:
    """Found by a probe (2026-12-07, stop 51's F3): the edit-keeping covered only the top of
    a search folder, so `search --leave-one-out --resume` rewrote a fold's recipe.json or
    search_report.md (`loo/<type>/`) that a user had edited, silently. The search now lists
    the folds' documents among its own (with their sha256) and keeps an edited one as
    `<name>.edited` when a resumed fold writes it anew."""
    from automl_asd.commands.search import _top_files
    from automl_asd.io.run_folder import editable

    assert editable("loo/pump/recipe.json") and editable("loo/pump/search_report.md")
    assert not editable("loo/pump/trials.csv") and not editable("loo/pump/tune/x.md")
    assert not editable("models/pump/recipe.json") and not editable("loo/recipe.json")
    out = tmp_path / "loo_search"
    fold = out / "loo" / "pump"
    fold.mkdir(parents=True)
    (fold / "search_report.md").write_text("tool\n")
    (fold / "recipe.json").write_text("{}\n")
    (fold / "trials.csv").write_text("a\n")
    (out / "leave_one_out.md").write_text("table\n")
    (out / "loo" / "loose.md").write_text("not a fold's\n")
    listed = _top_files(out)
    assert sorted(listed) == ["leave_one_out.md", "loo/pump/recipe.json",
                              "loo/pump/search_report.md"]
    with RunFolder.open(out, command="search") as folder:
        folder.record(listed)
    (fold / "search_report.md").write_text("tool\nmy notes\n")
    with RunFolder.open(out, command="search") as folder:
        stash = folder.stash_edited()
        assert list(stash) == ["loo/pump/search_report.md"]
        (fold / "search_report.md").write_text("tool, resumed\n")
        written = [rel for rel, st in _top_files(out).items() if listed[rel] != st]
        assert written == ["loo/pump/search_report.md"]
        assert folder.settle_edited(stash, written) == ["loo/pump/search_report.md.edited"]
        folder.record(written)
    assert (fold / "search_report.md.edited").read_text() == "tool\nmy notes\n"
    # a copy a killed resume set aside in the fold is kept at the next start
    (fold / "recipe.json").write_text('{"mine": 1}\n')
    with RunFolder.open(out, command="search") as folder:
        folder.stash_edited()
    with RunFolder.open(out, command="search") as folder:
        stash = folder.stash_edited()  # the killed run's copy is kept; still edited: again
        assert list(stash) == ["loo/pump/recipe.json"]
        assert folder.settle_edited(stash, []) == []  # not written anew: nothing kept
    assert (fold / "recipe.json.edited").read_text() == '{"mine": 1}\n'
    assert (fold / "recipe.json").read_text() == '{"mine": 1}\n'
    assert not list(fold.glob(".*edited-pending"))


# ============================================================================ concurrency
@pytest.mark.slow
def test_second_recipe_into_the_same_out_is_refused(applied: Path, data: Path,
                                                    copy_of: Callable[[Path, str], Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = copy_of(applied, "out")
    before = _snapshot(out)
    assert main(_apply(data, out, recipe="searched_pooled_logz")) == 1
    line = _err_line(capsys)
    assert "holds the outputs of recipe fast_default" in line and "--overwrite" in line
    assert _snapshot(out) == before
    # --overwrite replaces that run: no file of the first recipe is left
    assert main(_apply(data, out, "--overwrite", recipe="searched_pooled_logz")) == 0
    summary = json.loads((out / f"{MT}.summary.json").read_text())
    assert summary["recipe_name"] == "searched_pooled_logz"
    bundle = json.loads((out / "models" / MT / "manifest.json").read_text())
    assert bundle["recipe_name"] == "searched_pooled_logz"


@pytest.mark.parametrize("command", ["apply", "search", "demo", "watch"])
def test_a_second_writer_fails_at_once_naming_the_holder(
        command: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        applied: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out
    if command == "watch":
        target = out / "live.csv"
        lock = FolderLock(target, "test", lock_path=out / ".live.csv.lock")
    else:
        lock = FolderLock(out, "test")
    with lock:
        if command == "apply":
            rc = main(_apply(data, out))
        elif command == "search":
            rc = main(["search", "--data", str(data), "--space", "smoke", "--trials", "1",
                       "--out", str(out)])
        elif command == "watch":
            (tmp_path / "inbox").mkdir()
            rc = main(["score", "--model", str(applied / "models" / MT), "--watch",
                       str(tmp_path / "inbox"), "--out", str(target), "--timeout", "2"])
        else:
            from automl_asd.orchestration.demo import run_demo

            with pytest.raises(OutputError) as exc:
                run_demo(out, size="tiny", space="smoke", trials=1, say=lambda _: None)
            rc, line = 1, str(exc.value)
    assert rc == 1
    if command != "demo":
        line = _err_line(capsys)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in line
    assert "another automl-asd run is writing it" in line
    assert not (out / RUN_MANIFEST).exists()


# ============================================================================ resume
def _reasons(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _resume_rc(data: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(_apply(data, out, "--resume")) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_resume_keeps_intact_outputs(applied: Path, data: Path,
                                     copy_of: Callable[[Path, str], Path],
                                     capsys: pytest.CaptureFixture[str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    out = copy_of(applied, "out")
    before = _snapshot(out)
    assert "0 machine type(s) applied, 1 resumed" in _resume_rc(data, out, capsys)
    assert "rerunning" not in _reasons(caplog)
    after = _snapshot(out)
    for rel in before:
        if rel.endswith(".csv") or rel.startswith("models/"):
            assert after[rel] == before[rel], rel


@pytest.mark.slow
@pytest.mark.parametrize("case", ["other_data", "bundle_deleted", "threshold_tampered",
                                  "bundle_manifest_edited", "csv_tampered", "old_summary"])
def test_resume_reruns_what_changed_and_says_why(
        case: str, applied: Path, data: Path, copy_of: Callable[[Path, str], Path],
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    out = copy_of(applied, "out")
    root = data
    if case == "other_data":
        root = tmp_path / "silent"
        shutil.copytree(data / MT, root / MT)
        for wav in sorted((root / MT / "test").glob("*.wav"))[:5]:
            x, sr = sf.read(str(wav), dtype="int16")
            sf.write(str(wav), np.zeros_like(x), sr, subtype="PCM_16")  # same size, new mtime
        expect = f"{MT}: the files under {root / MT} differ from the run's"
    elif case == "bundle_deleted":
        shutil.rmtree(out / "models" / MT)
        expect = f"{MT}: models/{MT}/manifest.json is missing since the run; rerunning"
    elif case == "threshold_tampered":
        np.save(out / "models" / MT / "scoring" / "threshold.npy", np.float64(-1.0))
        expect = f"{MT}: models/{MT}/scoring/threshold.npy changed since the run; rerunning"
    elif case == "bundle_manifest_edited":
        np.save(out / "models" / MT / "scoring" / "threshold.npy", np.float64(-1.0))
        _reseal(out / "models" / MT)  # consistent bundle, but not what the run wrote
        expect = f"{MT}: models/{MT}/manifest.json changed since the run; rerunning"
    elif case == "csv_tampered":
        with open(out / f"anomaly_score_{MT}_section_00_test.csv", "a") as fh:
            fh.write("extra.wav,0.1\n")
        expect = f"{MT}: anomaly_score_{MT}_section_00_test.csv changed since the run"
    else:  # a summary written before the fingerprint said how it identifies the clips
        summary = json.loads((out / f"{MT}.summary.json").read_text())
        del summary["data_identity"]
        (out / f"{MT}.summary.json").write_text(json.dumps(summary))
        expect = f"{MT}: the run recorded its data fingerprint in an older form; rerunning"
    printed = _resume_rc(root, out, capsys)
    assert expect in _reasons(caplog)
    assert "1 machine type(s) applied, 0 resumed" in printed
    # the rerun restored a verified bundle and CSVs matching a fresh run on that data
    from automl_asd.bundle.model import load_bundle

    assert load_bundle(out / "models" / MT, device="cpu").machine_type == MT
    if case != "other_data":
        for name in (f"anomaly_score_{MT}_section_00_test.csv",
                     f"decision_result_{MT}_section_00_test.csv"):
            assert sha256_file(out / name) == sha256_file(applied / name)
    else:
        fresh = tmp_path / "fresh"
        assert main(_apply(root, fresh)) == 0
        assert (json.loads((out / "metrics.json").read_text())["official_score"]
                == json.loads((fresh / "metrics.json").read_text())["official_score"])


def _swap_in_place(root: Path, n: int = 5) -> None:
    """Overwrite ``n`` source anomaly test clips in place with a normal clip's bytes (same
    size) and put their old mtimes back: what neither size nor mtime can see."""
    test = root / MT / "test"
    normal = sorted(test.glob("*_normal_*.wav"))[0].read_bytes()
    for wav in sorted(test.glob("*source_test_anomaly_*.wav"))[:n]:
        st = wav.stat()
        assert len(normal) == st.st_size
        with open(wav, "r+b") as fh:  # same inode
            fh.write(normal)
        os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert wav.stat().st_mtime_ns == st.st_mtime_ns


def _score(out: Path) -> float:
    return float(json.loads((out / "metrics.json").read_text())["official_score"])


@pytest.mark.slow
def test_resume_sees_same_size_rewrites_with_restored_mtimes(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data"
    shutil.copytree(data / MT, root / MT)
    out = tmp_path / "out"
    assert main(_apply(root, out)) == 0
    before = _score(out)
    _swap_in_place(root)
    printed = _resume_rc(root, out, capsys)
    assert f"{MT}: the files under {root / MT} differ from the run's" in _reasons(caplog)
    assert "1 machine type(s) applied, 0 resumed" in printed
    fresh = tmp_path / "fresh"
    assert main(_apply(root, fresh)) == 0
    assert _score(out) == _score(fresh) != before  # the stale scores were not kept


@pytest.mark.slow
def test_resume_with_verify_audio_identifies_clips_by_content(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_asd.environment import VERIFY_AUDIO_ENV

    monkeypatch.setenv(VERIFY_AUDIO_ENV, "0")  # --verify-audio sets it; restored afterwards
    first = tmp_path / "a"
    shutil.copytree(data / MT, first / MT)
    out = tmp_path / "out"
    assert main(_apply(first, out, "--verify-audio")) == 0
    assert json.loads((out / f"{MT}.summary.json").read_text())["data_identity"] == "content"
    moved = tmp_path / "b"  # the same clips elsewhere (other inodes, same bytes)
    shutil.copytree(first / MT, moved / MT)
    assert "0 machine type(s) applied, 1 resumed" in _resume_rc(moved, out, capsys)

    monkeypatch.setenv(VERIFY_AUDIO_ENV, "0")
    assert "1 machine type(s) applied, 0 resumed" in _resume_rc(moved, out, capsys)
    assert (f"{MT}: the run identified its clips by content, this one by stat "
            "(--verify-audio)") in _reasons(caplog)

    assert main(_apply(moved, out, "--resume", "--verify-audio")) == 0
    _swap_in_place(moved)
    caplog.clear()
    capsys.readouterr()
    assert main(_apply(moved, out, "--resume", "--verify-audio")) == 0
    assert "1 machine type(s) applied, 0 resumed" in capsys.readouterr().out
    assert f"{MT}: the files under {moved / MT} differ from the run's" in _reasons(caplog)


# ============================================================================ inputs of apply
@pytest.mark.parametrize("case", ["missing", "empty"])
def test_apply_without_test_clips_fails_naming_the_folder(
        case: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    shutil.copytree(data / MT, root / MT)
    shutil.rmtree(root / MT / "test")
    if case == "empty":
        (root / MT / "test").mkdir()
    out = tmp_path / "out"
    assert main(_apply(root, out)) == 1
    captured = capsys.readouterr()
    assert f"FAILED {MT}" in captured.out
    what = "no such folder" if case == "missing" else "no test clips (*.wav)"
    text = (out / f"{MT}.error.txt").read_text()
    assert f"{root / MT / 'test'}: {what}" in text
    assert not list(out.glob("anomaly_score_*")) and not (out / f"{MT}.summary.json").exists()


@pytest.mark.parametrize("case", ["unknown_type", "empty_root", "out_is_file"])
def test_apply_argument_errors_leave_nothing_behind(
        case: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = _apply(data, out)
    if case == "unknown_type":
        argv[argv.index(MT)] = "pmup"
        expect = "machine type(s) pmup not found; available: fan"
    elif case == "empty_root":
        (tmp_path / "empty").mkdir()
        argv[argv.index(str(data))] = str(tmp_path / "empty")
        expect = "no machine-type folders found"
    else:
        out.write_text("a file")
        expect = "exists and is not a folder"
    assert main(argv) == 1
    assert expect in _err_line(capsys)
    if case == "out_is_file":
        assert out.read_text() == "a file"
    else:
        assert not out.exists()


# ============================================================================ NaN
def _loud_clip(data: Path, dst: Path) -> Path:
    x, sr = sf.read(str(data / MT / TRAIN_CLIP), dtype="float32")
    sf.write(str(dst), x * np.float32(1e30), sr, subtype="FLOAT")
    return dst


def test_score_refuses_nan_scores_naming_the_clip(applied: Path, data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    loud = _loud_clip(data, tmp_path / "loud.wav")
    good = sorted((data / MT / "test").glob("*.wav"))[:2]
    out = tmp_path / "s.csv"
    assert main(["score", "--model", str(applied / "models" / MT), *map(str, good), str(loud),
                 "--out", str(out)]) == 1
    line = _err_line(capsys)
    assert "loud.wav: non-finite anomaly score" in line and not out.exists()


@pytest.mark.ray
@pytest.mark.slow
def test_score_in_ray_tasks_refuses_nan_in_one_line(
        ray_session: None, applied: Path, data: Path, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    loud = _loud_clip(data, tmp_path / "loud.wav")
    out = tmp_path / "s.csv"
    assert main(["score", "--model", str(applied / "models" / MT), str(loud), "--address",
                 "local", "--out", str(out)]) == 1
    line = _err_line(capsys)
    assert line.startswith("automl-asd score: error: ") and "loud.wav: non-finite" in line
    assert not out.exists()


def test_watch_refuses_nan_scores_and_goes_on(applied: Path, data: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    from automl_asd.bundle.model import load_bundle
    from automl_asd.serve import watch_folder

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _loud_clip(data, inbox / "loud.wav")
    shutil.copy(sorted((data / MT / "test").glob("*.wav"))[0], inbox / "ok.wav")
    out = tmp_path / "live.csv"
    bundle = load_bundle(applied / "models" / MT, device="cpu")
    stats = watch_folder(bundle, inbox, out, poll=0.01, max_files=2, sleep=lambda _: None)
    assert stats.scored == 1 and stats.skipped == ["loud.wav"]
    rows = out.read_text().splitlines()
    assert rows[0] == "name,score,decision" and [r.split(",")[0] for r in rows[1:]] == ["ok.wav"]
    assert "nan" not in out.read_text()
    assert any("refusing" in r.getMessage() and "loud.wav" in r.getMessage()
               and r.levelno == logging.ERROR for r in caplog.records)


def _npy_with_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 16


def _float_member(bundle: Path) -> Path:
    for p in sorted((bundle / "members").rglob("*.npy")):
        if np.load(p).dtype.kind == "f" and np.load(p).size > 1:
            return p
    raise AssertionError("no float member array")


@pytest.mark.parametrize("case", ["nan_member", "nan_normalizer", "std0_normalizer",
                                  "std0_member_stats", "huge_header", "wrong_shape"])
def test_bundle_with_bad_arrays_is_refused_at_load(
        case: str, applied: Path, data: Path, copy_of: Callable[[Path, str], Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    bundle = copy_of(applied / "models" / MT, "bundle")
    if case == "nan_member":
        target = _float_member(bundle)
        arr = np.load(target)
        arr.flat[0] = np.nan
        np.save(target, arr)
        expect = "holds 1 non-finite value(s)"
    elif case == "nan_normalizer":
        target = bundle / "scoring" / "normalizer_global.npy"
        np.save(target, np.array([np.nan, 1.0]))
        expect = "holds 1 non-finite value(s)"
    elif case == "std0_normalizer":
        target = bundle / "scoring" / "normalizer_global.npy"
        np.save(target, np.array([0.5, 0.0]))
        expect = "normaliser std 0.0 is not positive"
    elif case == "std0_member_stats":
        target = bundle / "scoring" / "member_stats.npy"
        stats = np.load(target)
        stats[:, 1] = 0.0
        np.save(target, stats)
        expect = "a member score std is not positive"
    elif case == "huge_header":
        target = bundle / "scoring" / "threshold.npy"
        target.write_bytes(_npy_with_header((10**11,)))
        expect = "header declares shape (100000000000,) (800000000000 bytes)"
    else:  # finite, checksummed, but 7 columns where the detector has more (was: numpy's
        # "matmul: Input operand 1 has a mismatch in its core dimension", no file named)
        member = next(p for p in sorted((bundle / "members").rglob("*.npy"))
                      if np.load(p).ndim == 2 and np.load(p).shape[1] > 7)
        np.save(member, np.load(member)[:, :7])
        target = bundle
        expect = "its arrays do not fit together ("
    _reseal(bundle)
    out = bundle.parent / "s.csv"
    assert main(["score", "--model", str(bundle), str(data / MT / "test"),
                 "--out", str(out)]) == 1
    line = _err_line(capsys)
    assert f"{target}: {expect}" in line and not out.exists()
