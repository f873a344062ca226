"""``search --novel ROOT`` is checked before the search starts: a ROOT that cannot give a
"does the choice carry?" answer is refused in one line, before Ray starts or any trial runs.

Found by probing the CLI (2026-12-03): ``--novel`` pointing at the development data itself ran
and reported in-sample scores as "novel"; an unlabelled ROOT (eval layout without the
evaluator's files) ran the whole search and then failed with a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from automl_asd import ground_truth, synth
from automl_asd.data import DataError, Domain, Label
from automl_asd.search.config import SearchConfig
from automl_asd.search.novel_check import check_novel, check_search_data
from automl_asd.search.space import load_space


def _copy(src: Path, dst: Path, types: tuple[str, ...]) -> Path:
    for mt in types:
        shutil.copytree(src / mt, dst / mt)
    return dst


def test_labelled_novel_types_pass_with_every_test_clip_labelled(
        tiny_novel_root: Path, tiny_dev_types: tuple[str, ...],
        tiny_novel_types: tuple[str, ...]) -> None:
    machines = check_novel(tiny_novel_root, tiny_dev_types)
    assert sorted(machines) == sorted(tiny_novel_types)
    for machine in machines.values():
        assert machine.test
        assert {c.label for c in machine.test} == {Label.NORMAL, Label.ANOMALY}
        assert Domain.UNKNOWN not in {c.domain for c in machine.test}


def test_development_types_are_refused_by_name(tiny_dev_root: Path,
                                               tiny_dev_types: tuple[str, ...],
                                               tiny_novel_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"bearing, fan, gearbox are development types"):
        check_novel(tiny_dev_root, tiny_dev_types)
    # One shared type among novel ones is enough to refuse (singular wording).
    mixed = _copy(tiny_novel_root, tmp_path / "mixed", ("compressor",))
    _copy(tiny_dev_root, mixed, ("fan",))
    with pytest.raises(DataError, match=r"fan is a development type of this search"):
        check_novel(mixed, tiny_dev_types)
    # The same root with only other types searched is a valid novel set.
    assert sorted(check_novel(mixed, ("gearbox",))) == ["compressor", "fan"]


def test_anonymised_test_names_need_the_evaluator_files(tmp_path: Path) -> None:
    root = tmp_path / "eval"
    synth.generate(root, machine_types=["pump"], size="tiny", seed=3, eval_layout=True)
    machines = check_novel(root, ("fan",))  # labels attached from ground_truth_*/
    assert {c.label for c in machines["pump"].test} == {Label.NORMAL, Label.ANOMALY}
    for d in (ground_truth.GROUND_TRUTH_DATA_DIR, ground_truth.GROUND_TRUTH_DOMAIN_DIR,
              "ground_truth_attributes"):
        shutil.rmtree(root / d, ignore_errors=True)
    n_test = len(list((root / "pump" / "test").glob("*.wav")))
    with pytest.raises(DataError, match=(rf"--novel {root}: {n_test} test clip\(s\) of pump "
                                         r"without label or domain.*ground_truth_data/")):
        check_novel(root, ("fan",))
    # the same tree as development data: where each part goes
    with pytest.raises(DataError, match=(rf"--data {root}: {n_test} test clip\(s\) of pump "
                                         r"without label.*an evaluation set is not searched on: "
                                         r"search the development set and give labelled types "
                                         r"it does not hold to --novel")):
        check_search_data(root, None, None)


def test_a_type_without_both_labels_or_without_test_clips_is_refused(
        tiny_novel_root: Path, tmp_path: Path) -> None:
    root = _copy(tiny_novel_root, tmp_path / "normal_only", ("grinder",))
    for wav in (root / "grinder" / "test").glob("*anomaly*.wav"):
        wav.unlink()
    with pytest.raises(DataError, match="every test clip of grinder is normal"):
        check_novel(root, ("fan",))
    for wav in (root / "grinder" / "test").glob("*.wav"):
        wav.unlink()
    with pytest.raises(DataError, match="grinder has no test clips"):
        check_novel(root, ("fan",))
    # Both labels, but no target-domain normal clip: AUC (target) is undefined.
    root = _copy(tiny_novel_root, tmp_path / "no_target_normals", ("grinder",))
    for wav in (root / "grinder" / "test").glob("*_target_test_normal_*.wav"):
        wav.unlink()
    with pytest.raises(DataError, match="grinder section 00: no target-domain normal clips"):
        check_novel(root, ("fan",))


def test_an_empty_root_names_the_option(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"^--novel .*empty: .*no machine-type folders"):
        check_novel(empty, ())


def test_run_search_refuses_before_ray_starts(tiny_dev_root: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_asd.orchestration import tune

    def no_ray(*args: object, **kwargs: object) -> bool:
        raise AssertionError("Ray started although --novel is invalid")

    monkeypatch.setattr(tune, "init_ray", no_ray)
    cfg = SearchConfig(data=tiny_dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=2, novel=tiny_dev_root)
    with pytest.raises(DataError, match="development types of this search"):
        tune.run_search(cfg)
    assert not (tmp_path / "run").exists()


def test_run_search_refuses_development_types_it_cannot_score_before_ray_starts(
        tiny_dev_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-06: a development type without test clips started Ray, failed every
    trial with a traceback each, and ended in "no trial finished ... --resume"."""
    from automl_asd.orchestration import tune

    def no_ray(*args: object, **kwargs: object) -> bool:
        raise AssertionError("Ray started although --data cannot be scored")

    monkeypatch.setattr(tune, "init_ray", no_ray)
    root = _copy(tiny_dev_root, tmp_path / "dev", ("fan", "gearbox"))
    for wav in (root / "fan" / "test").glob("*.wav"):
        wav.unlink()
    cfg = SearchConfig(data=root, space=load_space("smoke"), out=tmp_path / "run", trials=2)
    with pytest.raises(DataError, match=rf"^--data {root}: fan has no test clips"):
        tune.run_search(cfg)
    assert not (tmp_path / "run").exists()


def test_the_search_command_scans_each_tree_once(tiny_dev_root: Path, tiny_novel_root: Path,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The command checks --data and --novel before it creates the run folder and hands the
    checked types to the search (until 2026-12-07 both were scanned and checked twice)."""
    from automl_asd import cli
    from automl_asd.orchestration import tune
    from automl_asd.search import novel_check

    scanned: list[Path] = []
    real_scan = novel_check.scan

    def counting_scan(root: Path, **kwargs: object) -> object:
        scanned.append(Path(root))
        return real_scan(root, **kwargs)  # type: ignore[arg-type]

    given: list[object] = []

    def stop(cfg: SearchConfig, **kwargs: object) -> object:
        given.append(kwargs.get("data"))
        raise KeyboardInterrupt  # stop here: the command's checks are done by now

    monkeypatch.setattr(novel_check, "scan", counting_scan)
    monkeypatch.setattr(tune, "run_search", stop)
    assert cli.main(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
                     "--novel", str(tiny_novel_root), "--out", str(tmp_path / "run")]) == 130
    assert sorted(scanned) == sorted([tiny_dev_root.resolve(), tiny_novel_root.resolve()])
    data = given[0]
    assert isinstance(data, novel_check.SearchData)
    assert sorted(data.machines) == ["bearing", "fan", "gearbox"]
    assert data.novel is not None and sorted(data.novel) == ["compressor", "grinder"]


def test_thin_development_training_data_is_warned_about_once_before_the_search(
        tiny_novel_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A trial's log stays in its Ray worker (found 2026-12-07: a development type without
    target-domain training clips was never mentioned by a search); the data check says it."""
    root = _copy(tiny_novel_root, tmp_path / "thin", ("grinder",))
    for wav in (root / "grinder" / "train").glob("*_target_*.wav"):
        wav.unlink()
    with caplog.at_level("WARNING"):
        check_search_data(root, None, None)
    assert [r.getMessage() for r in caplog.records] == [
        "grinder: no target-domain training clips: its target test clips are scored against "
        "the other domain only"]
