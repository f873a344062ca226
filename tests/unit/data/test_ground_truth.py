"""Ground truth: the one reader of the evaluator's CSVs (hand-written files, every error
message), attaching it to anonymised eval clips, and labels from clip names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from automl_asd.data import Clip, DataError, Domain, Label, MachineData, Split, scan
from automl_asd.ground_truth import (
    GroundTruthError,
    attach,
    from_clips,
    read,
    read_official,
)

S, T = Domain.SOURCE, Domain.TARGET
N, A = Label.NORMAL, Label.ANOMALY
GT_NAME = "ground_truth_{mt}_section_{ss}_test.csv"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def _official(root: Path, mt: str = "fan", ss: str = "00", *, data: str | None = None,
              domain: str | None = None, attributes: str | None = None) -> Path:
    name = GT_NAME.format(mt=mt, ss=ss)
    _write(root / "ground_truth_data" / name,
           data if data is not None else "a.wav,0\nb.wav,1\nc.wav,0\nd.wav,1\n")
    if domain != "":
        _write(root / "ground_truth_domain" / name,
               domain if domain is not None else "a.wav,0\nb.wav,0\nc.wav,1\nd.wav,1\n")
    if attributes is not None:
        _write(root / "ground_truth_attributes" / name, attributes)
    return root / "ground_truth_data" / name


# --------------------------------------------------------------------------- read_official


def test_read_official_hand_written_files(tmp_path: Path) -> None:
    _official(tmp_path, "fan", "00",
              attributes="b.wav,section_00_source_test_anomaly_0001_noAttribute,"
                         "section_00_source_test_anomaly_0001_spd_9.wav\n")
    # BOM, CRLF line ends, blank lines at the end and spaces around fields are accepted.
    _official(tmp_path, "valve", "01", data="\ufeffx.wav , 1\r\ny.wav,0\r\nz.wav,0\r\n\r\n\n",
              domain="z.wav,1\ny.wav,0\nx.wav,0\n")
    truth = read_official(tmp_path)
    assert list(truth) == [("fan", "00"), ("valve", "01")]
    fan = truth[("fan", "00")]
    assert fan.key == ("fan", "00")
    assert fan.names == ("a.wav", "b.wav", "c.wav", "d.wav")
    assert fan.labels.dtype == np.int8 and fan.labels.tolist() == [0, 1, 0, 1]
    assert fan.domains == ("source", "source", "target", "target")
    assert dict(fan.aliases) == {"section_00_source_test_anomaly_0001_noAttribute.wav": "b.wav"}
    assert dict(fan.revealed) == {"b.wav": "section_00_source_test_anomaly_0001_spd_9"}
    valve = truth[("valve", "01")]
    assert valve.names == ("x.wav", "y.wav", "z.wav")  # the data file's order
    assert valve.labels.tolist() == [1, 0, 0] and valve.domains == ("source", "source", "target")
    assert list(read_official(tmp_path, machine_types=["valve"])) == [("valve", "01")]
    # read() picks the evaluator's layout when ground_truth_data/ exists.
    assert list(read(tmp_path)) == list(truth)


@pytest.mark.parametrize(
    ("data", "domain", "match"),
    [
        ("name,label\na.wav,0\n", None,
         r"ground_truth_data/ground_truth_fan_section_00_test.csv, line 1: label \(1 = anomaly\) "
         r"'label' for 'name' must be 0 or 1 \(ground-truth files have no header row\)"),
        ("a.wav,0\nb.wav,2\n", None,
         r"ground_truth_fan_section_00_test.csv, line 2: label \(1 = anomaly\) '2' for 'b.wav' "
         r"must be 0 or 1$"),
        ("a.wav,0\n\nb.wav,1\n", None,
         r"ground_truth_fan_section_00_test.csv, line 2: expected 'name,value', got '' "
         r"\(empty line\)"),
        ("a.wav\n", None, r"line 1: expected 'name,value', got 'a.wav'"),
        ("\n\n", None, r"ground_truth_fan_section_00_test.csv: file is empty"),
        ("a.wav,0\nb.wav,1\na.wav,1\n", None,
         r"ground_truth_data/ground_truth_fan_section_00_test.csv: duplicate rows for a.wav"),
        ("a.wav,0\nb.wav,1\n", "a.wav,0\nb.wav,0.5\n",
         r"ground_truth_domain/ground_truth_fan_section_00_test.csv, line 2: domain "
         r"\(1 = target\) '0.5' for 'b.wav' must be 0 or 1"),
        ("a.wav,0\nb.wav,1\n", "a.wav,0\nc.wav,1\n",
         r"ground_truth_domain/ground_truth_fan_section_00_test.csv: names differ from .*: "
         r"only in labels: \[b.wav\], only in domains: \[c.wav\]"),
        ("a.wav,0\nb.wav,1\n", "",
         r"ground_truth_domain/ground_truth_fan_section_00_test.csv: missing \(domain ground "
         r"truth for .*ground_truth_data/ground_truth_fan_section_00_test.csv\)"),
    ],
)
def test_read_official_bad_files_name_file_and_line(tmp_path: Path, data: str,
                                                    domain: str | None, match: str) -> None:
    _official(tmp_path, data=data, domain=domain)
    with pytest.raises(GroundTruthError, match=match):
        read_official(tmp_path)


def test_read_official_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match=r"no ground_truth_data/ folder; pass the "
                                               r"evaluator's folder"):
        read_official(tmp_path)
    _write(tmp_path / "ground_truth_data" / "notes.txt", "x")
    with pytest.raises(GroundTruthError, match=r"ground_truth_data: no ground_truth_<mt>_section_"
                                               r"<ss>_test.csv files"):
        read_official(tmp_path)
    _official(tmp_path, "fan")
    with pytest.raises(GroundTruthError, match=r"machine type\(s\) \['pump'\] have no ground "
                                               r"truth; available: \['fan'\]"):
        read_official(tmp_path, machine_types=["fan", "pump"])
    _write(tmp_path / "ground_truth_attributes" / GT_NAME.format(mt="fan", ss="00"),
           "a.wav,section_00_source_test_normal_0000_x_1\nq.wav,section_00_x\n")
    with pytest.raises(GroundTruthError, match=r"ground_truth_attributes/ground_truth_fan_"
                                               r"section_00_test.csv, line 2: 'q.wav' is not in"):
        read_official(tmp_path)
    with pytest.raises(GroundTruthError, match="nope: ground-truth folder not found"):
        read(tmp_path / "nope")
    # Every ground-truth error is a DataError (and so a ValueError the CLI prints in one line).
    assert issubclass(GroundTruthError, DataError) and issubclass(GroundTruthError, ValueError)


def test_read_of_an_evaluator_subfolder_names_the_folder_above(tmp_path: Path) -> None:
    """Found 2026-12-07: `evaluate --ground-truth EVALUATOR/ground_truth_data` scanned that
    folder as a data root and said "no machine-type folders found; expected
    <root>/<machine_type>/{train,test,supplemental}/*.wav", not where the ground truth is."""
    _official(tmp_path / "evaluator")
    for sub in ("ground_truth_data", "ground_truth_domain"):
        with pytest.raises(GroundTruthError, match=rf"{sub}: holds ground-truth files itself; "
                                                   r"pass the evaluator's folder above it.*"
                                                   r"\(.*evaluator\)"):
            read(tmp_path / "evaluator" / sub)
    assert set(read(tmp_path / "evaluator")) == {("fan", "00")}


# --------------------------------------------------------------------------- from_clips


def _clip(name: str, section: str = "00", domain: Domain = S, label: Label = N) -> Clip:
    return Clip(Path(f"/x/fan/test/{name}"), "fan", section, Split.TEST, domain, label, 0, None)


def test_from_clips_per_section_in_clip_order() -> None:
    clips = (_clip("s0_a.wav", "00", S, N), _clip("s1_a.wav", "01", T, A),
             _clip("s0_b.wav", "00", T, A), _clip("s1_b.wav", "01", S, N))
    truth = from_clips(MachineData("fan", Path("/x/fan"), clips))
    assert list(truth) == [("fan", "00"), ("fan", "01")]
    assert truth[("fan", "00")].names == ("s0_a.wav", "s0_b.wav")
    assert truth[("fan", "00")].labels.tolist() == [0, 1]
    assert truth[("fan", "00")].domains == ("source", "target")
    assert truth[("fan", "01")].names == ("s1_a.wav", "s1_b.wav")
    assert truth[("fan", "01")].labels.tolist() == [1, 0]
    unlabelled = (*clips, _clip("section_00_0007.wav", "00", Domain.UNKNOWN, Label.UNKNOWN))
    with pytest.raises(GroundTruthError, match=r"section_00_0007.wav: test clip without "
                                               r"label/domain"):
        from_clips(MachineData("fan", Path("/x/fan"), unlabelled))


# --------------------------------------------------------------------------- attach


def _eval_tree(root: Path) -> tuple[Path, Path]:
    mt = root / "data" / "eval_data" / "raw" / "ToyPet"
    _touch(mt / "train", "section_00_source_train_normal_0000_noAttribute.wav")
    _touch(mt / "test", *[f"section_00_{i:04d}.wav" for i in range(4)])
    gt = root / "evaluator"
    rows = {"data": [0, 1, 0, 1], "domain": [0, 0, 1, 1]}
    for kind, vals in rows.items():
        _write(gt / f"ground_truth_{kind}" / "ground_truth_ToyPet_section_00_test.csv",
               "".join(f"section_00_{i:04d}.wav,{v}\n" for i, v in enumerate(vals)))
    labelled = ["section_00_source_test_normal_0000_noAttribute",
                "section_00_source_test_anomaly_0000_noAttribute",
                "section_00_target_test_normal_0000_noAttribute",
                "section_00_target_test_anomaly_0000_noAttribute"]
    _write(gt / "ground_truth_attributes" / "ground_truth_ToyPet_section_00_test.csv",
           "".join(f"section_00_{i:04d}.wav,{n},{n.replace('noAttribute', f'pet_{i}')}.wav\n"
                   for i, n in enumerate(labelled)))
    return root / "data", gt


def test_attach_fills_labels_domains_attributes(tmp_path: Path) -> None:
    data, gt = _eval_tree(tmp_path)
    assert all(c.label is Label.UNKNOWN for c in scan(data)["ToyPet"].test)
    pet = attach(scan(data), gt)["ToyPet"]
    got = [(c.name, c.domain, c.label, c.attributes) for c in pet.test]
    assert got == [
        ("section_00_0000.wav", S, N, (("pet", "0"),)),
        ("section_00_0001.wav", S, A, (("pet", "1"),)),
        ("section_00_0002.wav", T, N, (("pet", "2"),)),
        ("section_00_0003.wav", T, A, (("pet", "3"),)),
    ]
    assert pet.train[0].attributes is None  # train clips untouched
    # The attached clips give the same ground truth as the evaluator's files.
    official = read_official(gt)[("ToyPet", "00")]
    mine = from_clips(pet)[("ToyPet", "00")]
    assert mine.names == official.names and mine.domains == official.domains
    assert mine.labels.tolist() == official.labels.tolist()


def test_attach_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data, gt = _eval_tree(tmp_path)
    with pytest.raises(GroundTruthError, match="no ground_truth_data/"):
        attach(scan(data), tmp_path)
    test_dir = data / "eval_data" / "raw" / "ToyPet" / "test"
    (test_dir / "section_00_0009.wav").write_bytes(b"")
    with pytest.raises(GroundTruthError, match="no row for 1 test clip.*section_00_0009.wav"):
        attach(scan(data), gt)
    (test_dir / "section_00_0009.wav").unlink()
    (test_dir / "section_00_0003.wav").unlink()
    pet = attach(scan(data), gt)["ToyPet"]
    assert len(pet.test) == 3 and "rows name clips not in" in caplog.text
    _write(gt / "ground_truth_domain" / "ground_truth_ToyPet_section_00_test.csv",
           "section_00_0000.wav,2\nsection_00_0001.wav,0\nsection_00_0002.wav,1\n"
           "section_00_0003.wav,1\n")
    with pytest.raises(GroundTruthError, match="must be 0 or 1"):
        attach(scan(data), gt)


def test_attach_contradicting_name_is_error(tmp_path: Path) -> None:
    names = ["section_00_source_test_normal_0000_a_1.wav",
             "section_00_target_test_anomaly_0000_a_1.wav"]
    mt = tmp_path / "data" / "fan"
    _touch(mt / "train", "section_00_source_train_normal_0000_a_1.wav")
    _touch(mt / "test", *names)
    gt = tmp_path / "gt"
    _official(gt, "fan", data="".join(f"{n},0\n" for n in names),
              domain="".join(f"{n},{int('target' in n)}\n" for n in names))
    with pytest.raises(GroundTruthError, match="is normal here but its name says anomaly"):
        attach(scan(tmp_path / "data"), gt)
    _official(gt, "fan", data="".join(f"{n},{int('anomaly' in n)}\n" for n in names),
              domain="".join(f"{n},1\n" for n in names))
    with pytest.raises(GroundTruthError, match=r"ground_truth_domain/.*section_00_source_test_"
                                               r"normal_0000_a_1.wav is target here but its name "
                                               r"says source"):
        attach(scan(tmp_path / "data"), gt)
    # A machine type or section without files is left as it is.
    machines = scan(tmp_path / "data")
    other = {"pump": replace(machines["fan"], machine_type="pump")}
    assert attach(other, gt) == other
