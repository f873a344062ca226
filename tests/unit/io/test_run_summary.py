"""``summarize`` input: reading apply run folders (multi-section types, older summaries without
the official_baseline key, folders that are not one apply run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_asd.io.run_summary import RunError, read_apply_run, summary_markdown
from automl_asd.recipe import load_recipe


def _summary(folder: Path, mt: str, name: str, rhash: str, **extra: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{mt}.summary.json").write_text(json.dumps(
        {"machine_type": mt, "recipe_name": name, "recipe_hash": rhash, **extra}))


def test_multi_section_type_and_old_summary_of_the_official_baseline(tmp_path: Path) -> None:
    run = tmp_path / "run"
    rhash = load_recipe("baseline_ae_mahalanobis").content_hash()
    for mt in ("fan", "valve"):
        _summary(run, mt, "baseline_ae_mahalanobis", rhash)  # no official_baseline key
    sections = {"00": {"auc_source": 0.8, "auc_target": 0.6, "pauc": 0.5},
                "01": {"auc_source": 0.7, "auc_target": 0.4, "pauc": 0.6}}
    (run / "metrics.json").write_text(json.dumps({"official_score": 0.55, "machine_types": {
        "fan": {"auc_source": 0.75, "auc_target": 0.5, "pauc": 0.55, "sections": sections},
        "valve": {"auc_source": 0.9, "auc_target": 0.5, "pauc": 0.5}}}))
    r = read_apply_run(run, label="mahala")
    assert r.official_baseline == "baseline_ae_mahalanobis"
    fan = [0.8, 0.6, 0.5, 0.7, 0.4, 0.6]
    assert r.machine_omega("fan") == pytest.approx(len(fan) / sum(1 / v for v in fan))
    assert r.column("auc_target") == {"fan": pytest.approx(0.5), "valve": 0.5}
    md = summary_markdown([r])
    assert "| `mahala` | `baseline_ae_mahalanobis` | " in md
    assert "| baseline_ae_mahalanobis | 0.5500 |" in md  # official baseline column, then Ω


def test_folders_that_are_not_one_apply_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no such folder"):
        read_apply_run(tmp_path / "missing")
    with pytest.raises(RunError, match="not an apply run"):
        read_apply_run(tmp_path)
    mixed = tmp_path / "mixed"
    _summary(mixed, "fan", "a", "1" * 64, official_baseline=None)
    _summary(mixed, "valve", "b", "2" * 64, official_baseline=None)
    with pytest.raises(RunError, match="different recipes .*fresh --out"):
        read_apply_run(mixed)
    bad = tmp_path / "bad"
    _summary(bad, "fan", "a", "1" * 64, official_baseline=None)
    (bad / "metrics.json").write_text('{"machine_types": {}}')
    with pytest.raises(RunError, match="metrics.json: not the metrics.json of an apply run"):
        read_apply_run(bad)


def test_a_failed_type_is_shown_and_its_run_s_omega_marked_partial(tmp_path: Path) -> None:
    """Found 2026-12-06: a run whose fan job failed showed Ω over valve alone as if it were
    the whole run (and ranked above a complete run); fan read as "no labels"."""
    from automl_asd.io.run_summary import summary_csv

    run = tmp_path / "run"
    _summary(run, "valve", "r", "1" * 64, official_baseline=None)
    (run / "fan.error.txt").write_text("Traceback ... truncated wav\n")
    (run / "metrics.json").write_text(json.dumps({"official_score": 0.7331, "machine_types": {
        "valve": {"auc_source": 0.8, "auc_target": 0.7, "pauc": 0.7}}}))
    r = read_apply_run(run, label="half")
    assert r.failed == ("fan",) and r.machine_types == ("fan", "valve")
    md = summary_markdown([r])
    assert "| 0.7331 (partial: 1 of 2 types) | FAILED | " in md
    assert "FAILED: the type's job failed" in md
    head, row = (line.split(",") for line in summary_csv([r]).splitlines())
    assert head[4:] == ["Ω", "fan", "valve", "failed"]
    assert row[4:6] == ["0.7331", ""] and float(row[6]) > 0 and row[7] == "fan"  # numeric


def test_many_machine_types_are_rows_not_columns(tmp_path: Path) -> None:
    """Found by a review (2026-12-07): 200 machine types made 205-column markdown tables with
    lines of 2,400 characters. Above MAX_TYPE_COLUMNS types they are rows, one column per
    run."""
    from automl_asd.io.run_summary import MAX_TYPE_COLUMNS

    runs = []
    n = MAX_TYPE_COLUMNS + 1
    for label, value in (("a", 0.6), ("b", 0.7)):
        run = tmp_path / label
        types = [f"t{i:02d}" for i in range(n)]
        for mt in types:
            _summary(run, mt, f"rec{label}", label * 64, official_baseline=None)
        (run / "metrics.json").write_text(json.dumps({"official_score": value, "machine_types": {
            mt: {"auc_source": value, "auc_target": value, "pauc": value} for mt in types}}))
        runs.append(read_apply_run(run, label=label))
    md = summary_markdown(runs)
    assert max(len(line) for line in md.splitlines() if line.startswith("|")) < 120
    assert "| machine type | `a` | `b` |" in md
    assert "| t00 | 0.6000 | 0.7000 |" in md and f"| t{n - 1:02d} | 0.6000 | 0.7000 |" in md
    assert "| `a` | `reca` | " in md and "| 0.6000 |" in md
    # at the limit the types stay columns (the baseline's layout)
    at_limit = tmp_path / "c"
    for i in range(MAX_TYPE_COLUMNS):
        _summary(at_limit, f"t{i:02d}", "recc", "c" * 64, official_baseline=None)
    few = summary_markdown([read_apply_run(at_limit, label="c")])
    assert "| machine type |" not in few
    assert "| Ω | t00 |" in few and f"t{MAX_TYPE_COLUMNS - 1:02d} |" in few
