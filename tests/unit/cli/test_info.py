"""``automl-asd info`` prints the per machine type table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_asd.cli import main
from tests.unit.data.test_data import _dev_machine
from tests.unit.data.test_ground_truth import _eval_tree


def test_info_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _dev_machine(tmp_path / "dev_data" / "raw" / "ToyCar")
    _dev_machine(tmp_path / "dev_data" / "raw" / "bearing", attr="noAttribute")
    assert main(["info", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("2 machine type(s), 22 clips")
    header = out[1].split()
    assert header[:9] == ["machine", "sec", "train-S", "train-T", "test-S-n", "test-S-a",
                          "test-T-n", "test-T-a", "test-?"]
    car = out[3].split()
    assert car[:9] == ["ToyCar", "00", "3", "1", "1", "1", "1", "1", "0"]
    assert "3 (machine:1,noise:1,unknown:1)" in out[3] and "named (car,spd)" in out[3]
    assert out[4].split()[0] == "bearing" and out[4].rstrip().endswith("hidden")
    assert out[5].split()[:9] == ["TOTAL", "6", "2", "2", "2", "2", "2", "0", "6"]


def test_info_ground_truth_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, gt = _eval_tree(tmp_path)
    assert main(["info", "--data", str(data)]) == 0
    row = capsys.readouterr().out.splitlines()[3].split()
    assert row[:9] == ["ToyPet", "00", "1", "0", "0", "0", "0", "0", "4"]
    assert main(["info", "--data", str(data), "--ground-truth", str(gt), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["counts"] == {"test/source/anomaly": 1, "test/source/normal": 1,
                                "test/target/anomaly": 1, "test/target/normal": 1,
                                "train/source/normal": 1}


def test_info_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--data", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "automl-asd info: error:" in err and "does not exist" in err


def test_info_warns_about_a_type_without_test_clips(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The probes found `info` showing 0 test clips with rc 0 and no word (apply then fails)."""
    import shutil

    _dev_machine(tmp_path / "ToyCar")
    _dev_machine(tmp_path / "bearing", attr="noAttribute")
    assert main(["info", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
    shutil.rmtree(tmp_path / "bearing" / "test")
    assert main(["info", "--data", str(tmp_path)]) == 0  # still a report, not an error
    out, err = capsys.readouterr()
    assert out.splitlines()[4].split()[:9] == ["bearing", "00", "3", "1", "0", "0", "0", "0", "0"]
    assert err.splitlines() == [
        "automl-asd info: warning: bearing: no test clips; apply cannot score it and a search "
        "cannot measure it (extract its test zip, or leave it out with --machine-types)"]
