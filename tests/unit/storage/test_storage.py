"""Run storage (``--storage``, pyarrow filesystems) and the pre-flight path checks, without Ray.

``apply`` with a ``file://`` storage URI: the tasks write locally, upload their outputs, the
driver copies them into ``--out``; the CSVs are byte-identical to a run without storage. The
shared stage of a ``scope: all`` recipe goes through the storage too (real training).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from pyarrow import fs

from automl_asd.apply import ApplyConfig, SerialRunner, apply_recipe
from automl_asd.storage import (
    PathCheck,
    check_paths,
    delete_files,
    download_tree,
    open_storage,
    upload_tree,
    write_token,
)
from tests.unit.apply.test_apply import FakeRun, _make_tree, _recipe


def _csvs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*_section_*_test.csv"))}


def test_upload_download_round_trip_file_uri_and_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "models" / "alpha").mkdir(parents=True)
    (src / "models" / "alpha" / "a.npy").write_bytes(b"\x00\x01" * 100)
    (src / "alpha.summary.json").write_text("{}")
    (src / "anomaly_score_alpha_section_00_test.csv").write_text("x,1\n")
    for location in (f"file://{tmp_path / 'st_uri'}", str(tmp_path / "st_path")):
        sent = upload_tree(src, location)
        assert sent[-1] == "alpha.summary.json"  # the summary goes last
        assert sorted(sent) == sorted(["models/alpha/a.npy", "alpha.summary.json",
                                       "anomaly_score_alpha_section_00_test.csv"])
        back = tmp_path / f"back_{len(location)}"
        assert sorted(download_tree(location, back)) == sorted(sent)
        assert (back / "models" / "alpha" / "a.npy").read_bytes() == b"\x00\x01" * 100
        delete_files(location, ["models/alpha", "alpha.summary.json", "not-there"])
        filesystem, base = open_storage(location)
        assert isinstance(filesystem, fs.LocalFileSystem)
        left = [e.base_name for e in filesystem.get_file_info(fs.FileSelector(base))]
        assert sorted(left) == ["anomaly_score_alpha_section_00_test.csv", "models"]
    assert download_tree(str(tmp_path / "nowhere"), tmp_path / "x") == []


def test_a_local_storage_is_one_folder_however_it_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-07): `--storage "file:///…/st ü"` made the folder (its lock)
    and then failed in pyarrow ("Cannot parse URI ... character ' '"); `--storage "~/st"`
    stored into the home folder but locked `./~/st`."""
    from automl_asd.io.run_folder import local_storage

    odd = tmp_path / "st ü" / "a b"
    filesystem, base = open_storage(f"file://{odd}")
    assert isinstance(filesystem, fs.LocalFileSystem) and base == str(odd)
    src = tmp_path / "src"
    src.mkdir()
    (src / "alpha.summary.json").write_text("{}")
    assert upload_tree(src, f"file://{odd}") == ["alpha.summary.json"]
    assert (odd / "alpha.summary.json").is_file()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert local_storage("~/st") == tmp_path / "home" / "st"
    assert open_storage("~/st")[1] == str(tmp_path / "home" / "st")


def test_a_read_back_stopped_part_way_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-08 probing interrupts: Ctrl+C (or kill) while `apply --storage` copied
    a run back into --out left the file being copied as a hidden ``.NAME.<hex>`` there, half
    written, which no later run removes (it is not the tool's recorded output)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "anomaly_score_alpha_section_00_test.csv").write_text("x,1\n" * 1000)
    upload_tree(src, str(tmp_path / "store"))
    real = shutil.copyfileobj

    def stopped(fsrc: object, fdst: object, length: int = 0) -> None:
        fdst.write(b"x,1\n")  # type: ignore[attr-defined]  (part of it, then the signal)
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfileobj", stopped)
    back = tmp_path / "back"
    with pytest.raises(KeyboardInterrupt):
        download_tree(str(tmp_path / "store"), back)
    assert list(back.iterdir()) == []
    monkeypatch.setattr(shutil, "copyfileobj", real)
    assert download_tree(str(tmp_path / "store"), back) == [
        "anomaly_score_alpha_section_00_test.csv"]
    assert [p.name for p in back.iterdir()] == ["anomaly_score_alpha_section_00_test.csv"]


def test_check_paths_names_the_option_and_path(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data", ("alpha",))
    ok = check_paths(data=str(data), machine_types=["alpha"],
                     writable=[("--out", str(tmp_path / "out"))],
                     cache_dir=str(tmp_path / "cache"), check_cache=True)
    assert ok == []
    missing = check_paths(data=str(tmp_path / "nope"))
    assert missing == [f"--data {tmp_path / 'nope'}: no such folder"]
    no_type = check_paths(data=str(data), machine_types=["alpha", "beta"])
    assert no_type == [f"--data {data}: machine type folder(s) beta missing"]
    # The official baseline's ROOT/{dev_data,eval_data}/raw/<mt> form, as the data layer
    # reads it (it used to be refused here before a run started), and one machine's folder.
    base = tmp_path / "dcase2025t2"
    _make_tree(base / "dev_data" / "raw", ("alpha",))
    _make_tree(base / "eval_data" / "raw", ("beta",))
    for root in (base, base / "eval_data"):
        assert check_paths(data=str(root), machine_types=["beta"]) == []
    assert check_paths(data=str(base), machine_types=["alpha", "beta", "gamma"]) == [
        f"--data {base}: machine type folder(s) gamma missing"]
    assert check_paths(data=str(data / "alpha"), machine_types=["alpha"]) == []
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    bad = check_paths(writable=[("--storage", str(blocked / "sub"))],
                      cache_dir=str(blocked / "cache"), check_cache=True)
    assert len(bad) == 2
    assert bad[0].startswith(f"--storage {blocked / 'sub'}: not writable")
    assert bad[1].startswith(f"--cache-dir {blocked / 'cache'}: not writable")
    # the driver's marker must be visible: a node-local folder is not shared storage
    shared = tmp_path / "shared"
    token = write_token(str(shared))
    assert PathCheck(writable=(("--out", str(shared)),), token=token,
                     check_cache=False).problems() == []
    other = PathCheck(writable=(("--out", str(tmp_path / "local")),), token=token,
                      check_cache=False).problems()
    assert len(other) == 1 and "not the storage the driver sees" in other[0]


def test_serial_preflight_stops_before_any_job(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data", ("alpha",))
    blocked = tmp_path / "file"
    blocked.write_text("x")
    fake = FakeRun()
    with pytest.raises(ValueError, match=r"this machine: --cache-dir .*file/c: not writable"):
        apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "out", cache_dir=blocked / "c",
                                 plots=False), runner=SerialRunner(run_fn=fake))
    assert fake.calls == []


@pytest.mark.slow
def test_apply_through_file_uri_storage_matches_direct_outputs(tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data")
    direct = apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "direct", plots=False),
                          runner=SerialRunner(run_fn=FakeRun()))
    store = tmp_path / "store"
    via = apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "via", plots=False,
                                   storage=f"file://{store}"),
                       runner=SerialRunner(run_fn=FakeRun()))
    assert direct.ok and via.ok
    assert _csvs(tmp_path / "via") == _csvs(tmp_path / "direct") == _csvs(store)
    assert len(_csvs(store)) == 6
    for mt in ("alpha", "beta", "gamma"):
        summary = json.loads((store / f"{mt}.summary.json").read_text())
        assert summary["pid"] == os.getpid() and summary["node_id"] is None  # serial: here
        assert (tmp_path / "via" / f"{mt}.summary.json").read_bytes() == \
            (store / f"{mt}.summary.json").read_bytes()
    assert via.official_score == direct.official_score
    # resume reads the storage back: nothing reruns
    fake = FakeRun()
    again = apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "via2", plots=False,
                                     storage=f"file://{store}", resume=True),
                         runner=SerialRunner(run_fn=fake))
    assert fake.calls == [] and {o.status for o in again.outcomes} == {"skipped"}
    # another recipe: the stale outputs are cleared from the storage before the rerun
    fail = FakeRun(fail=["beta"])
    rerun = apply_recipe(ApplyConfig(_recipe(seed=9), data, tmp_path / "via3", plots=False,
                                     storage=f"file://{store}", resume=True),
                         runner=SerialRunner(run_fn=fail))
    assert rerun.failed == ("beta",)
    assert not (store / "beta.summary.json").exists()
    assert not list(store.glob("*_beta_section_*"))


def test_storage_read_back_copies_only_this_run_s_types_and_never_over_user_files(
        tmp_path: Path) -> None:
    data = _make_tree(tmp_path / "data")
    store = f"file://{tmp_path / 'store'}"
    first = apply_recipe(ApplyConfig(_recipe(), data, tmp_path / "o1", plots=False,
                                     storage=store), runner=SerialRunner(run_fn=FakeRun()))
    assert first.ok
    # another run on gamma alone: alpha's and beta's outputs in the storage stay there
    mine = tmp_path / "o2"
    mine.mkdir()
    (mine / "alpha.summary.json").write_text("my own notes")
    apply_recipe(ApplyConfig(_recipe(), data, mine, machine_types=("gamma",), plots=False,
                             storage=store), runner=SerialRunner(run_fn=FakeRun()))
    assert (mine / "alpha.summary.json").read_text() == "my own notes"
    assert not list(mine.glob("*_alpha_section_*")) and not (mine / "models" / "alpha").exists()
    assert not list(mine.glob("*beta*"))
    assert (mine / "gamma.summary.json").is_file()
    # --resume reads back this run's types, but refuses to copy over a user's file
    theirs = tmp_path / "o3"
    theirs.mkdir()
    (theirs / "beta.summary.json").write_text("my own notes")
    fake = FakeRun()
    with pytest.raises(ValueError, match="beta.summary.json: exists and was not written"):
        apply_recipe(ApplyConfig(_recipe(), data, theirs, plots=False, storage=store,
                                 resume=True), runner=SerialRunner(run_fn=fake))
    assert (theirs / "beta.summary.json").read_text() == "my own notes" and fake.calls == []


@pytest.mark.slow
def test_shared_stage_through_storage(tiny_dev_root: Path, tmp_path: Path) -> None:
    from tests.fixtures.recipes import shared_margin_recipe

    data = tmp_path / "data"
    for mt in ("gearbox", "bearing"):
        shutil.copytree(tiny_dev_root / mt, data / mt)
    store = tmp_path / "store"
    rep = apply_recipe(ApplyConfig(shared_margin_recipe(), data, tmp_path / "out", plots=False,
                                   device="cpu", storage=f"file://{store}"))
    ref = apply_recipe(ApplyConfig(shared_margin_recipe(), data, tmp_path / "ref", plots=False,
                                   device="cpu"))
    assert rep.ok and ref.ok
    summary = json.loads((store / "shared" / "summary.json").read_text())
    assert summary["stage"] == "shared" and summary["machine_types"] == ["bearing", "gearbox"]
    assert summary["pid"] == os.getpid()  # the serial runner runs it here, by design
    assert (tmp_path / "out" / "shared" / "shared.json").is_file()
    assert _csvs(tmp_path / "out") == _csvs(tmp_path / "ref")


def test_an_unwritable_cache_is_named_by_where_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-07): an unwritable $AUTOML_ASD_CACHE (or default cache) was
    reported as `--cache-dir X`, an option the command had not been given, without the fix."""
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    monkeypatch.setenv("AUTOML_ASD_CACHE", str(blocked / "env"))
    assert check_paths(check_cache=True) == [
        f"$AUTOML_ASD_CACHE {blocked / 'env'}: not writable (NotADirectoryError: "
        f"[errno 20] Not a directory); give --cache-dir a writable folder (or set "
        "AUTOML_ASD_CACHE)"]
    given = check_paths(cache_dir=str(blocked / "given"), check_cache=True)
    assert given[0].startswith(f"--cache-dir {blocked / 'given'}: not writable")
    monkeypatch.delenv("AUTOML_ASD_CACHE")
    monkeypatch.setenv("HOME", str(blocked))
    default = check_paths(check_cache=True)
    assert default[0].startswith(f"feature cache {blocked / '.cache' / 'automl-asd'}: not "
                                 "writable")
    assert default[0].endswith("; give --cache-dir a writable folder (or set AUTOML_ASD_CACHE)")
