"""Submission CSVs (golden format, round trip, errors), ground-truth readers, joining by name,
``evaluate_submission`` and the ``automl-asd evaluate`` command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from automl_asd.cli import main
from automl_asd.evaluation.evaluate import (
    SectionScores,
    evaluate_result,
    evaluate_scores,
    evaluate_submission,
)
from automl_asd.evaluation.metrics import METRIC_FIELDS, MachineMetrics, machine_metrics
from automl_asd.ground_truth import GroundTruthError, SectionTruth
from automl_asd.ground_truth import read as read_ground_truth
from automl_asd.io.official_table import OFFICIAL_COLUMNS
from automl_asd.io.submission import (
    SubmissionError,
    list_submission_sections,
    normalize_section,
    read_submission,
    write_submission,
)

# (name, label 1=anomaly, domain) of a small labelled dev-style test set: 3 clips per group.
DEV_CLIPS = [
    (f"section_00_{dom}_test_{lab}_{i:04d}_a_{i}.wav", int(lab == "anomaly"), dom)
    for dom in ("source", "target")
    for lab in ("normal", "anomaly")
    for i in range(3)
]


def _scores_for(clips: list[tuple[str, int, str]], seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {n: float(round(rng.normal() + 1.2 * y, 3)) for n, y, _ in clips}


def _decisions_for(scores: dict[str, float]) -> dict[str, int]:
    return {n: int(v > 0.6) for n, v in scores.items()}


def _write_official_gt(root: Path, mt: str, ss: str, clips: list[tuple[str, int, str]],
                       labelled: dict[str, str] | None = None) -> None:
    for sub, col in (("ground_truth_data", 1), ("ground_truth_domain", 2)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        rows = [f"{c[0]},{c[col] if col == 1 else int(c[2] == 'target')}\n" for c in clips]
        (root / sub / f"ground_truth_{mt}_section_{ss}_test.csv").write_text("".join(rows))
    if labelled is not None:
        (root / "ground_truth_attributes").mkdir(exist_ok=True)
        rows = [f"{eval_name},{lab_name}\n" for eval_name, lab_name in labelled.items()]
        (root / "ground_truth_attributes" / f"ground_truth_{mt}_section_{ss}_test.csv"
         ).write_text("".join(rows))


def _write_sub(out: Path, mt: str, ss: str, scores: dict[str, float],
               decisions: dict[str, int] | None = None, *, reverse: bool = True) -> None:
    names = sorted(scores, reverse=reverse)  # row order differs from the ground truth's
    decisions = decisions if decisions is not None else _decisions_for(scores)
    write_submission(out, mt, ss, names, [scores[n] for n in names],
                     [decisions[n] for n in names])


def _expected(clips: list[tuple[str, int, str]], scores: dict[str, float],
              decisions: dict[str, int]) -> MachineMetrics:
    return machine_metrics([c[1] for c in clips], [c[2] for c in clips],
                           [scores[c[0]] for c in clips], [decisions[c[0]] for c in clips])


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# --------------------------------------------------------------------------- submission CSVs


def test_golden_submission_byte_format(tmp_path: Path) -> None:
    paths = write_submission(
        tmp_path / "out", "fan", "00",
        ["section_00_0001.wav", Path("/x/section_00_0000.wav"), "c.wav"],
        np.array([0.5, 1e-05, -2.25], dtype=np.float64), [1, 0, True],
    )
    assert [p.name for p in paths] == ["anomaly_score_fan_section_00_test.csv",
                                       "decision_result_fan_section_00_test.csv"]
    # Headerless, no quoting, '\n' line ends, rows in the given order, shortest float repr.
    assert paths[0].read_bytes() == (
        b"section_00_0001.wav,0.5\nsection_00_0000.wav,1e-05\nc.wav,-2.25\n")
    assert paths[1].read_bytes() == b"section_00_0001.wav,1\nsection_00_0000.wav,0\nc.wav,1\n"


def test_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(size=20) * 1e3, [1e-300, -0.0, 123456789.125],
                             rng.normal(size=5).astype(np.float32)])
    names = [f"c{i}.wav" for i in range(len(scores))]
    write_submission(tmp_path, "valve", 1, names, scores, np.zeros(len(names), dtype=int))
    sub = read_submission(tmp_path, "valve", "section_01")
    assert list(sub.scores) == names
    assert np.array_equal(np.array(list(sub.scores.values())), scores.astype(np.float64))
    assert sub.decisions is not None and set(sub.decisions.values()) == {0}
    assert list_submission_sections(tmp_path) == [("valve", "01")]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"names": ["a.wav", "a.wav"]}, "duplicate clip names a.wav"),
        ({"scores": [0.1, math.nan]}, "non-finite scores for b.wav"),
        ({"decisions": [0, 2]}, "decisions must be 0 or 1, not for b.wav"),
        ({"names": ["a,1.wav", "b.wav"]}, "without commas"),
        ({"scores": [0.1]}, "differ in length"),
        ({"machine_type": "my_fan"}, "without '_'"),
        ({"section": "0"}, "two-digit section"),
    ],
)
def test_write_submission_rejects_bad_input(tmp_path: Path, kwargs: dict[str, object],
                                            match: str) -> None:
    args: dict[str, object] = {"out_dir": tmp_path, "machine_type": "fan", "section": "00",
                               "names": ["a.wav", "b.wav"], "scores": [0.1, 0.2],
                               "decisions": [0, 1]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        write_submission(**args)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize(
    ("score_text", "decision_text", "match"),
    [
        ("name,score\na.wav,0.1\n", "a.wav,0\n", r"line 1: value 'score'.*no header row"),
        ("a.wav,0.1\na.wav,0.2\n", "a.wav,0\n", "duplicate rows for a.wav"),
        ("a.wav,abc\n", "a.wav,0\n", "line 1: value 'abc' for 'a.wav' is not a number"),
        ("a.wav,nan\n", "a.wav,0\n", "non-finite value 'nan'"),
        ("a.wav,0.1\n", "a.wav,0.5\n", "decision '0.5' for 'a.wav' must be 0 or 1"),
        ("", "a.wav,0\n", "file is empty"),
        ("a.wav,0.1\n\nb.wav,0.2\n", "a.wav,0\n", "line 2: expected 'name,value'.*empty line"),
        ("a.wav\n", "a.wav,0\n", "line 1: expected 'name,value'"),
    ],
)
def test_read_submission_errors_name_file_and_line(
    tmp_path: Path, score_text: str, decision_text: str, match: str
) -> None:
    (tmp_path / "anomaly_score_fan_section_00_test.csv").write_text(score_text)
    (tmp_path / "decision_result_fan_section_00_test.csv").write_text(decision_text)
    with pytest.raises(SubmissionError, match=match) as exc:
        read_submission(tmp_path, "fan", "00")
    assert "_fan_section_00_test.csv" in str(exc.value)


def test_read_submission_missing_files(tmp_path: Path) -> None:
    (tmp_path / "anomaly_score_fan_section_00_test.csv").write_text("a.wav,0.1\n")
    with pytest.raises(SubmissionError, match="decision_result_fan_section_00_test.csv"):
        read_submission(tmp_path, "fan", "00")
    sub = read_submission(tmp_path, "fan", "00", require_decisions=False)
    assert sub.decisions is None and dict(sub.scores) == {"a.wav": 0.1}
    with pytest.raises(SubmissionError, match="anomaly_score_pump_section_00_test.csv"):
        read_submission(tmp_path, "pump", "00")


def test_read_submission_takes_the_official_baseline_names(tmp_path: Path) -> None:
    """Found 2026-12-07: the official evaluator reads the baseline's own output names
    (``anomaly_score_DCASE2025T2<mt>_section_<ss>_test_seed<seed><tag>_Eval.csv``) when the plain
    ones are absent; evaluate said "missing submission file(s)" beside them."""
    tag = "_seed13711_id(0_)_Eval.csv"
    (tmp_path / f"anomaly_score_DCASE2025T2ToyPet_section_00_test{tag}").write_text("a.wav,0.5\n")
    (tmp_path / f"decision_result_DCASE2025T2ToyPet_section_00_test{tag}").write_text("a.wav,1\n")
    sub = read_submission(tmp_path, "ToyPet", "00")
    assert dict(sub.scores) == {"a.wav": 0.5} and dict(sub.decisions or {}) == {"a.wav": 1}
    assert sub.score_path.name == f"anomaly_score_DCASE2025T2ToyPet_section_00_test{tag}"
    assert list_submission_sections(tmp_path) == [("ToyPet", "00")]
    # the plain name wins; two baseline-named files of one kind are refused, naming them
    (tmp_path / "anomaly_score_ToyPet_section_00_test.csv").write_text("a.wav,0.25\n")
    assert dict(read_submission(tmp_path, "ToyPet", "00").scores) == {"a.wav": 0.25}
    (tmp_path / "anomaly_score_ToyPet_section_00_test.csv").unlink()
    (tmp_path / "anomaly_score_DCASE2025T2ToyPet_section_00_test_seed1_Eval.csv").write_text(
        "a.wav,0.1\n")
    with pytest.raises(SubmissionError, match=r"2 files in the official baseline's naming for "
                                              r"ToyPet section 00 .*seed1_Eval.csv.*keep one"):
        read_submission(tmp_path, "ToyPet", "00")
    with pytest.raises(SubmissionError, match="missing submission file"):
        read_submission(tmp_path, "ToyCar", "00")  # another type's baseline names do not count


def test_normalize_section() -> None:
    assert [normalize_section(s) for s in ("00", "section_03", 7)] == ["00", "03", "07"]
    for bad in ("3", "section_3", 100, "abc"):
        with pytest.raises(ValueError, match="two-digit"):
            normalize_section(bad)


# --------------------------------------------------------------------------- evaluation


def test_evaluate_official_layout_joins_by_name(tmp_path: Path) -> None:
    gt, sub = tmp_path / "gt", tmp_path / "sub"
    expected: dict[object, MachineMetrics] = {}
    for i, (mt, ss) in enumerate([("fan", "00"), ("fan", "01"), ("valve", "00")]):
        scores = _scores_for(DEV_CLIPS, seed=i)
        decisions = _decisions_for(scores)
        _write_official_gt(gt, mt, ss, DEV_CLIPS)
        _write_sub(sub, mt, ss, scores, decisions)
        expected[(mt, ss)] = _expected(DEV_CLIPS, scores, decisions)
    result = evaluate_submission(sub, gt)
    assert dict(result.per_section) == expected
    assert list(result.table.index) == ["fan_section_00", "fan_section_01", "valve",
                                        "h-mean", "a-mean"]
    vals = [v for m in expected.values() for v in (m.auc_source, m.auc_target, m.pauc)]
    assert result.official_score == pytest.approx(len(vals) / sum(1 / v for v in vals))
    # JSON: the shape; a multi-section type gets its section mean + per-section values.
    payload = result.to_json_dict()
    assert set(payload) == {"official_score", "machine_types"}
    assert set(payload["machine_types"]["valve"]) == set(METRIC_FIELDS)
    fan = payload["machine_types"]["fan"]
    assert set(fan["sections"]) == {"00", "01"}
    assert fan["auc_source"] == pytest.approx(
        (expected[("fan", "00")].auc_source + expected[("fan", "01")].auc_source) / 2)
    # machine_types filter
    only = evaluate_submission(sub, gt, machine_types=["valve"])
    assert list(only.per_section) == [("valve", "00")]
    with pytest.raises(GroundTruthError,
                       match=r"\['pump'\] have no ground truth; available: \['fan', 'valve'\]"):
        evaluate_submission(sub, gt, machine_types=["pump"])


def test_evaluate_accepts_labelled_names_via_ground_truth_attributes(tmp_path: Path) -> None:
    gt, sub = tmp_path / "gt", tmp_path / "sub"
    anon = [(f"section_00_{i:04d}.wav", y, d) for i, (_, y, d) in enumerate(DEV_CLIPS)]
    labelled = {a[0]: c[0][:-4] for a, c in zip(anon, DEV_CLIPS, strict=True)}
    _write_official_gt(gt, "ToyPet", "00", anon, labelled)
    scores = _scores_for(DEV_CLIPS, seed=5)  # keyed by the labelled names
    _write_sub(sub, "ToyPet", "00", scores)
    result = evaluate_submission(sub, gt)
    by_anon = {a[0]: scores[c[0]] for a, c in zip(anon, DEV_CLIPS, strict=True)}
    assert result.per_section[("ToyPet", "00")] == _expected(anon, by_anon,
                                                             _decisions_for(by_anon))
    # The same clip under both names is a duplicate.
    both = dict(scores, **{anon[0][0]: 0.0})
    _write_sub(sub, "ToyPet", "00", both)
    with pytest.raises(SubmissionError, match="given twice.*section_00_0000.wav"):
        evaluate_submission(sub, gt)


def test_evaluate_lists_every_problem(tmp_path: Path) -> None:
    gt, sub = tmp_path / "gt", tmp_path / "sub"
    for mt in ("fan", "gearbox", "valve"):
        _write_official_gt(gt, mt, "00", DEV_CLIPS)
    scores = _scores_for(DEV_CLIPS, seed=1)
    missing = dict(scores)
    del missing[DEV_CLIPS[0][0]], missing[DEV_CLIPS[5][0]]
    _write_sub(sub, "fan", "00", missing)
    _write_sub(sub, "gearbox", "00", dict(scores, **{"stray.wav": 0.3}))
    with pytest.raises(SubmissionError) as exc:  # valve: no files at all
        evaluate_submission(sub, gt)
    msg = str(exc.value)
    assert f"2 missing clip(s): {DEV_CLIPS[5][0]}, {DEV_CLIPS[0][0]}" in msg
    assert "anomaly_score_gearbox_section_00_test.csv: 1 extra row(s) not in the ground " \
           "truth: stray.wav" in msg
    assert "missing submission file(s)" in msg and "anomaly_score_valve_section_00" in msg
    assert "decision_result_valve_section_00" in msg


def test_types_without_any_submission_file_name_the_machine_types_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: the evaluator's repository holds every machine type of the year; a
    submission of some of them only named the missing files, not how to score the others."""
    gt, sub = tmp_path / "gt", tmp_path / "sub"
    for mt in ("fan", "gearbox", "valve"):
        _write_official_gt(gt, mt, "00", DEV_CLIPS)
    for mt in ("fan", "valve"):
        _write_sub(sub, mt, "00", _scores_for(DEV_CLIPS, seed=1))
    with pytest.raises(SubmissionError, match=r"no submission files at all for machine type\(s\) "
                                              r"gearbox; to evaluate only the others, add "
                                              r"--machine-types fan valve"):
        evaluate_submission(sub, gt)
    assert main(["evaluate", "--scores", str(sub), "--ground-truth", str(gt)]) == 1
    assert "--machine-types fan valve" in capsys.readouterr().err
    assert main(["evaluate", "--scores", str(sub), "--ground-truth", str(gt),
                 "--machine-types", "fan", "valve"]) == 0


def test_official_ground_truth_errors(tmp_path: Path) -> None:
    _write_official_gt(tmp_path, "fan", "00", DEV_CLIPS)
    dom = tmp_path / "ground_truth_domain" / "ground_truth_fan_section_00_test.csv"
    dom.write_text(dom.read_text().replace(DEV_CLIPS[0][0], "other.wav"))
    with pytest.raises(GroundTruthError, match=r"names differ.*only in labels: \[section_00_"):
        read_ground_truth(tmp_path)
    dom.unlink()
    with pytest.raises(GroundTruthError, match="ground_truth_domain.*missing"):
        read_ground_truth(tmp_path)
    with pytest.raises(GroundTruthError, match="ground-truth folder not found"):
        read_ground_truth(tmp_path / "nope")


def _dev_tree(root: Path, mt: str, test_names: list[str]) -> None:
    _touch(root / mt / "train" / "section_00_source_train_normal_0000_a_1.wav")
    _touch(root / mt / "train" / "section_00_target_train_normal_0000_a_2.wav")
    for name in test_names:
        _touch(root / mt / "test" / name)


def test_evaluate_against_labelled_data_root(tmp_path: Path) -> None:
    data, sub = tmp_path / "dev", tmp_path / "sub"
    for mt in ("fan", "slider"):
        _dev_tree(data, mt, [c[0] for c in DEV_CLIPS])
    scores = {mt: _scores_for(DEV_CLIPS, seed=i) for i, mt in enumerate(("fan", "slider"))}
    for mt, sc in scores.items():
        _write_sub(sub, mt, "00", sc)
    result = evaluate_submission(sub, data)
    assert result.per_section == {
        (mt, "00"): _expected(DEV_CLIPS, sc, _decisions_for(sc)) for mt, sc in scores.items()}
    # Same answer from the official layout of the same labels.
    gt = tmp_path / "gt"
    for mt in scores:
        _write_official_gt(gt, mt, "00", DEV_CLIPS)
    assert evaluate_submission(sub, gt).official_score == result.official_score


def test_data_root_with_anonymised_test_names_is_rejected(tmp_path: Path) -> None:
    _dev_tree(tmp_path, "ToyPet", ["section_00_0000.wav", "section_00_0001.wav"])
    with pytest.raises(GroundTruthError, match="section_00_0000.wav: test clip without label"):
        read_ground_truth(tmp_path)


# --------------------------------------------------------------------------- CLI


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt, sub = tmp_path / "gt", tmp_path / "sub"
    expected: dict[object, MachineMetrics] = {}
    for i, mt in enumerate(("ToyCar", "fan")):
        scores = _scores_for(DEV_CLIPS, seed=10 + i)
        _write_official_gt(gt, mt, "00", DEV_CLIPS)
        _write_sub(sub, mt, "00", scores)
        expected[mt] = _expected(DEV_CLIPS, scores, _decisions_for(scores))
    js, csv_out, md_out = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.md"
    argv = ["evaluate", "--scores", str(sub), "--ground-truth", str(gt)]
    assert main([*argv, "--json", str(js), "--out", str(csv_out)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    # stdout holds the table alone (found 2026-12-06: "wrote FILE" lines were mixed into it)
    assert "wrote" not in out and f"wrote {js}" in captured.err
    omega = evaluate_submission(sub, gt).official_score
    assert f"official score (Ω): {omega:.6f}" in out
    assert "ToyCar" in out and "h-mean" in out and "a-mean" in out

    payload = json.loads(js.read_text())
    assert payload["official_score"] == omega
    assert payload["machine_types"] == {mt: m.as_dict() for mt, m in expected.items()}

    lines = csv_out.read_text().splitlines()
    header = ",".join(OFFICIAL_COLUMNS)
    assert lines[:3] == ["ToyCar", header, "00," + ",".join(
        f"{getattr(expected['ToyCar'], f):.4f}" for f in (
            "auc_source", "auc_target", "pauc", "pauc_source", "pauc_target",
            "precision_source", "precision_target", "recall_source", "recall_target",
            "f1_source", "f1_target"))]
    assert lines[-1] == f"official score,{omega:.4f}"

    assert main([*argv, "--out", str(md_out)]) == 0
    md = md_out.read_text()
    assert f"Official score (Ω): {omega:.4f}" in md
    assert f"| ToyCar | 00 | {expected['ToyCar'].auc_source:.4f} |" in md
    assert "recipe:" not in md  # a folder of CSVs without apply summaries names no recipe


def test_cli_reports_errors_without_traceback(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt"
    _write_official_gt(gt, "fan", "00", DEV_CLIPS)
    (tmp_path / "sub").mkdir()
    rc = main(["evaluate", "--scores", str(tmp_path / "sub"), "--ground-truth", str(gt)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "automl-asd evaluate: error:" in err
    assert "anomaly_score_fan_section_00_test.csv" in err
    rc = main(["evaluate", "--scores", str(tmp_path / "nope"), "--ground-truth", str(gt)])
    assert rc == 1
    assert "nope: submission folder not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- synthetic trees


@pytest.mark.slow
def test_synth_dev_names_and_eval_ground_truth_agree(tmp_path: Path) -> None:
    """One synthetic machine type written twice (labelled dev names; anonymised eval names with
    the evaluator's ground truth): the same scores give the same metrics through the data-root
    reader, through the official reader with labelled row names, and with anonymised names."""
    from automl_asd.synth import generate

    generate(tmp_path / "dev", machine_types=["fan"], size="tiny", seed=3)
    generate(tmp_path / "eval", machine_types=["fan"], size="tiny", seed=3, eval_layout=True)
    labelled = sorted(p.name for p in (tmp_path / "dev" / "fan" / "test").glob("*.wav"))
    rng = np.random.default_rng(0)
    scores = {n: float(rng.normal() + ("_anomaly_" in n)) for n in labelled}
    _write_sub(tmp_path / "sub_dev", "fan", "00", scores)
    from_dev = evaluate_submission(tmp_path / "sub_dev", tmp_path / "dev")
    from_eval = evaluate_submission(tmp_path / "sub_dev", tmp_path / "eval")
    assert from_dev.per_section == from_eval.per_section
    assert from_dev.official_score == from_eval.official_score

    attr = tmp_path / "eval" / "ground_truth_attributes" / "ground_truth_fan_section_00_test.csv"
    to_anon = {f"{lab}.wav": anon for anon, lab in (r.split(",")[:2] for r in
                                                   attr.read_text().splitlines())}
    assert sorted(to_anon) == labelled
    _write_sub(tmp_path / "sub_eval", "fan", "00", {to_anon[n]: v for n, v in scores.items()})
    anon_result = evaluate_submission(tmp_path / "sub_eval", tmp_path / "eval")
    assert anon_result.per_section == from_dev.per_section
    m = from_dev.per_section[("fan", "00")]
    assert 0.5 < m.auc_source <= 1.0 and 0.5 < m.auc_all <= 1.0  # scores carry the labels


# --------------------------------------------------------------------------- evaluate_scores


def _truth(mt: str, ss: str, rows: list[tuple[str, int, str]]) -> SectionTruth:
    return SectionTruth(mt, ss, tuple(r[0] for r in rows),
                        np.array([r[1] for r in rows], dtype=np.int8), tuple(r[2] for r in rows))


def test_evaluate_scores_hand_made_matches_sklearn() -> None:
    # fan/00: 3 source normals, 2 target normals, 2 source + 1 target anomalies, one tie.
    fan = [("n0.wav", 0, "source"), ("n1.wav", 0, "source"), ("n2.wav", 0, "source"),
           ("t0.wav", 0, "target"), ("t1.wav", 0, "target"),
           ("a0.wav", 1, "source"), ("a1.wav", 1, "source"), ("a2.wav", 1, "target")]
    fan_scores = {"n0.wav": 0.1, "n1.wav": 0.4, "n2.wav": 0.35, "t0.wav": 0.8, "t1.wav": 0.2,
                  "a0.wav": 0.9, "a1.wav": 0.4, "a2.wav": 0.5}
    # valve/01 (row order of the scores differs from the ground truth's)
    valve = [(f"v{i}.wav", int(i >= 6), "source" if i % 2 else "target") for i in range(10)]
    valve_scores = {f"v{i}.wav": s for i, s in enumerate(
        [0.3, 0.1, 0.6, 0.2, 0.05, 0.5, 0.7, 0.9, 0.4, 0.65])}
    truth = {("fan", "00"): _truth("fan", "00", fan), ("valve", "01"): _truth("valve", "01", valve)}
    scores = {
        ("fan", "00"): SectionScores(tuple(fan_scores), np.array(list(fan_scores.values()))),
        ("valve", "01"): SectionScores(tuple(reversed(valve_scores)),
                                       np.array(list(reversed(valve_scores.values())))),
        ("pump", "00"): SectionScores(("x.wav",), np.array([0.0])),  # no ground truth: ignored
    }
    result = evaluate_scores(truth, scores)
    assert list(result.per_section) == [("fan", "00"), ("valve", "01")]
    expected_values: list[float] = []
    for key, rows, by_name in ((("fan", "00"), fan, fan_scores),
                               (("valve", "01"), valve, valve_scores)):
        y = np.array([r[1] for r in rows])
        target = np.array([r[2] == "target" for r in rows])
        s = np.array([by_name[r[0]] for r in rows])
        m = result.per_section[key]
        # AUC per domain: that domain's normals against every anomaly of the section.
        auc_s = roc_auc_score(y[~target | (y == 1)], s[~target | (y == 1)])
        auc_t = roc_auc_score(y[target | (y == 1)], s[target | (y == 1)])
        pauc = roc_auc_score(y, s, max_fpr=0.1)
        assert (m.auc_source, m.auc_target, m.pauc) == (auc_s, auc_t, pauc)
        assert m.auc_all == roc_auc_score(y, s) and m.precision_source is None
        np.testing.assert_array_equal(result.scores[key], s)  # in the ground truth's order
        expected_values += [auc_s, auc_t, pauc]
    # Hand check of fan's AUC (source): normals {.1,.4,.35} vs anomalies {.9,.4,.5}:
    # 9 pairs, 8 won, 1 tie (0.4 vs 0.4) -> 8.5 / 9.
    assert result.per_section[("fan", "00")].auc_source == pytest.approx(8.5 / 9)
    omega = len(expected_values) / sum(1 / v for v in expected_values)
    assert result.official_score == pytest.approx(omega, rel=1e-12)
    assert result.table.attrs["official_score"] == result.official_score


def test_evaluate_scores_lists_every_problem() -> None:
    rows = [("a.wav", 0, "source"), ("b.wav", 1, "source"), ("c.wav", 0, "target")]
    truth = {("fan", "00"): _truth("fan", "00", rows), ("fan", "01"): _truth("fan", "01", rows),
             ("gearbox", "00"): _truth("gearbox", "00", rows)}
    scores = {("fan", "00"): SectionScores(("a.wav", "b.wav"), np.array([0.1, 0.2]),
                                           score_path="fan.csv"),
              ("gearbox", "00"): SectionScores(("a.wav", "b.wav", "c.wav", "z.wav"),
                                               np.zeros(4))}
    with pytest.raises(SubmissionError) as exc:
        evaluate_scores(truth, scores, what="trial 7")
    assert str(exc.value).splitlines() == [
        "trial 7 cannot be evaluated:",
        "  - fan.csv: 1 missing clip(s): c.wav",
        "  - no scores for fan section 01",
        "  - gearbox section 00: 1 extra row(s) not in the ground truth: z.wav",
    ]


def test_sections_with_undefined_metrics_are_listed_by_name(tmp_path: Path) -> None:
    """No anomalies in one section, no source normals in another: both named in one error
    (it used to stop at the first, naming neither); apply's labelled truth leaves them out."""
    ok = [("a.wav", 0, "source"), ("b.wav", 1, "source"), ("c.wav", 0, "target")]
    normal_only = [("a.wav", 0, "source"), ("c.wav", 0, "target")]
    no_source = [("b.wav", 1, "source"), ("c.wav", 0, "target")]
    truth = {("fan", "00"): _truth("fan", "00", ok),
             ("fan", "01"): _truth("fan", "01", no_source),
             ("ToyCar", "00"): _truth("ToyCar", "00", normal_only)}
    scores = {k: SectionScores(tuple(t.names), np.arange(len(t.names), dtype=float))
              for k, t in truth.items()}
    with pytest.raises(SubmissionError) as exc:
        evaluate_scores(truth, scores)
    assert str(exc.value).splitlines()[1:] == [
        "  - ToyCar section 00: no anomalous clips; AUC and pAUC are undefined",
        "  - fan section 01: no source-domain normal clips; AUC (source) is undefined",
    ]
    # A labelled data root whose valve type has normal test clips only: left out with a
    # warning, the other types keep their metrics.
    root = tmp_path / "root"
    for mt in ("fan", "valve"):
        test = root / mt / "test"
        test.mkdir(parents=True)
        for name in ("section_00_source_test_normal_0000.wav",
                     "section_00_target_test_normal_0001.wav",
                     "section_00_source_test_anomaly_0002.wav"):
            if mt == "valve" and "anomaly" in name:
                continue
            (test / name).write_bytes(b"")
        (root / mt / "train").mkdir()
        (root / mt / "train" / "section_00_source_train_normal_0000.wav").write_bytes(b"")
    from automl_asd.evaluation.evaluate import labelled_truth
    assert sorted(labelled_truth(root, ["fan", "valve"], None)) == [("fan", "00")]


def test_labelled_truth_refuses_ground_truth_of_other_clips(tmp_path: Path) -> None:
    """Found 2026-12-07: `apply --ground-truth` with an evaluator folder whose rows did not
    name the data's test clips (one row fewer, one more) trained every machine type, wrote
    the CSVs and then failed with "submission ... cannot be evaluated"; it fails first now,
    naming the ground-truth file."""
    from automl_asd.evaluation.evaluate import labelled_truth

    data, gt = tmp_path / "eval", tmp_path / "gt"
    anon = [(f"section_00_{i:04d}.wav", c[1], c[2]) for i, c in enumerate(DEV_CLIPS)]
    _dev_tree(data, "ToyPet", [c[0] for c in anon])
    _write_official_gt(gt, "ToyPet", "00", anon)
    assert sorted(labelled_truth(data, ["ToyPet"], gt)) == [("ToyPet", "00")]
    _write_official_gt(gt, "ToyPet", "00", anon[:-1])
    with pytest.raises(GroundTruthError, match=r"ground_truth_ToyPet_section_00_test.csv: 1 test "
                                               r"clip\(s\) without a row \(section_00_0011.wav\); "
                                               r"is this the ground truth of this data set"):
        labelled_truth(data, ["ToyPet"], gt)
    _write_official_gt(gt, "ToyPet", "00", [*anon, ("section_00_0012.wav", 1, "source")])
    with pytest.raises(GroundTruthError, match=r"1 row\(s\) naming no clip of .*ToyPet/test "
                                               r"\(section_00_0012.wav\)"):
        labelled_truth(data, ["ToyPet"], gt)
    _write_official_gt(gt, "ToyPet", "00", anon)
    _write_official_gt(gt, "ToyPet", "01", anon)
    with pytest.raises(GroundTruthError, match=r"section_01_test.csv: rows of section 01, which "
                                               r".*ToyPet/test lacks"):
        labelled_truth(data, ["ToyPet"], gt)
    # labelled test names are joined through ground_truth_attributes, as evaluate does
    labelled = {a[0]: d[0].removesuffix(".wav") for a, d in zip(anon, DEV_CLIPS, strict=True)}
    (gt / "ground_truth_data" / "ground_truth_ToyPet_section_01_test.csv").unlink()
    (gt / "ground_truth_domain" / "ground_truth_ToyPet_section_01_test.csv").unlink()
    _write_official_gt(gt, "ToyPet", "00", anon, labelled)
    dev = tmp_path / "dev"
    _dev_tree(dev, "ToyPet", [c[0] for c in DEV_CLIPS])
    assert sorted(labelled_truth(dev, ["ToyPet"], gt)) == [("ToyPet", "00")]
    # no test clips yet (the test zip not extracted): not blamed on the ground truth (review)
    for wav in (data / "ToyPet" / "test").glob("*.wav"):
        wav.unlink()
    assert sorted(labelled_truth(data, ["ToyPet"], gt)) == [("ToyPet", "00")]


def test_evaluate_result_equals_machine_metrics_of_the_clips() -> None:
    from types import SimpleNamespace

    from automl_asd.data import Clip, Domain, Label, MachineData, Split

    def clip(name: str, domain: Domain, label: Label) -> Clip:
        return Clip(Path(f"/x/fan/test/{name}"), "fan", "00", Split.TEST, domain, label, 0, None)

    clips = (clip("x.wav", Domain.SOURCE, Label.NORMAL), clip("y.wav", Domain.TARGET,
             Label.NORMAL), clip("z.wav", Domain.TARGET, Label.ANOMALY))
    res = SimpleNamespace(names=["z.wav", "x.wav", "y.wav"], sections=["00"] * 3,
                          scores=np.array([0.3, 0.1, 0.5]), decisions=np.array([1, 0, 1]))
    got = evaluate_result(MachineData("fan", Path("/x/fan"), clips), res)
    assert got.per_section == {("fan", "00"): machine_metrics(
        [0, 0, 1], ["source", "target", "target"], [0.1, 0.5, 0.3], [0, 1, 1])}


def test_submission_files_the_ground_truth_lacks_are_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: files of machine types or sections not in the ground truth were
    dropped at INFO level, so `-q` hid that Ω covers a subset of the submission. Types left
    out with ``machine_types`` are the caller's choice: INFO."""
    import logging

    gt, sub = tmp_path / "gt", tmp_path / "sub"
    _write_official_gt(gt, "fan", "00", DEV_CLIPS)
    for i, (mt, ss) in enumerate([("fan", "00"), ("fan", "01"), ("valve", "00")]):
        scores = _scores_for(DEV_CLIPS, seed=i)
        _write_sub(sub, mt, ss, scores, _decisions_for(scores))
    with caplog.at_level(logging.INFO, logger="automl_asd.evaluation.evaluate"):
        result = evaluate_submission(sub, gt)
    assert list(result.per_section) == [("fan", "00")]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"{sub}: no ground truth for fan section 01, valve section 00; those "
                      "files are not evaluated (Ω covers the other sections only)"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="automl_asd.evaluation.evaluate"):
        evaluate_submission(sub, gt, machine_types=["fan"])
    by_level = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert (logging.WARNING, f"{sub}: no ground truth for fan section 01; those files are not "
            "evaluated (Ω covers the other sections only)") in by_level
    assert (logging.INFO, f"{sub}: not evaluated (machine types not asked for): valve section "
            "00") in by_level


def test_one_file_for_both_json_and_out_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `evaluate --out r.md --json r.md` wrote r.md twice, the Markdown
    silently replacing the JSON. The same file (also through a link) is a usage error before
    any work."""
    gt, sub = tmp_path / "gt", tmp_path / "sub"
    _write_official_gt(gt, "fan", "00", DEV_CLIPS)
    scores = _scores_for(DEV_CLIPS, seed=0)
    _write_sub(sub, "fan", "00", scores, _decisions_for(scores))
    reports = tmp_path / "reports"
    reports.mkdir()
    (tmp_path / "link").symlink_to(reports)
    base = ["evaluate", "--scores", str(sub), "--ground-truth", str(gt)]
    for json_path, out_path in ((reports / "r.md", reports / "r.md"),
                                (reports / "r.md", tmp_path / "link" / "r.md")):
        assert main([*base, "--json", str(json_path), "--out", str(out_path)]) == 2
        captured = capsys.readouterr()
        assert captured.err.strip() == (f"automl-asd evaluate: error: --json {json_path} and "
                                        f"--out {out_path}: the same file; give two different "
                                        "files")
        assert "official score" not in captured.out and not list(reports.iterdir())
    assert main([*base, "--json", str(reports / "r.json"), "--out", str(reports / "r.md")]) == 0
    assert json.loads((reports / "r.json").read_text())["official_score"] > 0
    assert (reports / "r.md").read_text().startswith("#")
