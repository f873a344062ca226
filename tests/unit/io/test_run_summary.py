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
    every = [0.8, 0.6, 0.5, 0.7, 0.4, 0.6, 0.9, 0.5, 0.5]
    omega = len(every) / sum(1 / v for v in every)  # what apply writes: ~0.5761
    (run / "metrics.json").write_text(json.dumps({"official_score": omega, "machine_types": {
        "fan": {"auc_source": 0.75, "auc_target": 0.5, "pauc": 0.55, "sections": sections},
        "valve": {"auc_source": 0.9, "auc_target": 0.5, "pauc": 0.5}}}))
    r = read_apply_run(run, label="mahala")
    assert r.official_baseline == "baseline_ae_mahalanobis"
    fan = [0.8, 0.6, 0.5, 0.7, 0.4, 0.6]
    assert r.machine_omega("fan") == pytest.approx(len(fan) / sum(1 / v for v in fan))
    assert r.column("auc_target") == {"fan": pytest.approx(0.5), "valve": 0.5}
    md = summary_markdown([r])
    assert "| `mahala` | `baseline_ae_mahalanobis` | " in md
    assert "| baseline_ae_mahalanobis | 0.5761 |" in md  # official baseline column, then Ω


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
        "valve": {"auc_source": 0.7331, "auc_target": 0.7331, "pauc": 0.7331}}}))
    r = read_apply_run(run, label="half")
    assert r.failed == ("fan",) and r.machine_types == ("fan", "valve")
    md = summary_markdown([r])
    assert "| 0.7331 (partial: 1 of 2 types) | FAILED | " in md
    assert "FAILED: the type's job failed" in md
    head, row = (line.split(",") for line in summary_csv([r]).splitlines())
    assert head[4:] == ["Ω", "fan", "valve", "failed"]
    assert row[4:] == ["0.7331", "", "0.7331", "fan"]  # numeric, an empty cell where failed


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


def _manifest(folder: Path, rhash: str, name: str, files: list[str]) -> None:
    """The run manifest apply writes: the recipe and each file's sha256."""
    import hashlib

    (folder / ".automl-asd-run.json").write_text(json.dumps({
        "format": "automl-asd-run", "version": 1, "command": "apply", "recipe_hash": rhash,
        "recipe_name": name, "files": {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
                                       for f in files}}))


def _labelled_run(folder: Path) -> None:
    """A two-type run with labels as apply leaves it (summaries, metrics.json, manifest)."""
    for mt in ("fan", "pump"):
        _summary(folder, mt, "fast_default", "f" * 64, official_baseline=None)
    values = {"fan": (0.8, 0.6, 0.5), "pump": (0.7, 0.6, 0.6)}
    every = [v for vs in values.values() for v in vs]
    (folder / "metrics.json").write_text(json.dumps({
        "official_score": len(every) / sum(1 / v for v in every), "machine_types": {
            mt: dict(zip(("auc_source", "auc_target", "pauc"), vs, strict=True))
            for mt, vs in values.items()}}))
    _manifest(folder, "f" * 64, "fast_default",
              ["fan.summary.json", "pump.summary.json", "metrics.json"])


def test_a_run_whose_every_type_failed_shows_its_failed_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `summarize out1 out5`, out5 an apply run whose every machine type
    failed (error reports and the run manifest only), stopped with "not an apply run" while a
    partly failed run showed its FAILED columns."""
    from automl_asd.cli import main
    from automl_asd.io.run_summary import summary_csv

    ok, failed = tmp_path / "out1", tmp_path / "out5"
    _labelled_run(ok)
    failed.mkdir()
    for mt in ("fan", "pump"):
        (failed / f"{mt}.error.txt").write_text(f"{mt}/train/x.wav: truncated\n")
    _manifest(failed, "f" * 64, "fast_default", ["fan.error.txt", "pump.error.txt"])
    r = read_apply_run(failed)
    assert (r.recipe_name, r.recipe_hash, r.official_baseline) == ("fast_default", "f" * 64,
                                                                    None)
    assert r.failed == r.machine_types == ("fan", "pump") and r.official_score is None
    assert main(["summarize", str(ok), str(failed)]) == 0
    md = capsys.readouterr().out
    assert f"| `{failed}` | `fast_default` | `ffffffffffff` | no | — | FAILED | FAILED |" in md
    assert f"| `{failed}` | (every type failed) | — | — | — | — |" in md
    assert f"| `{ok}` | `fast_default` | `ffffffffffff` | no | 0.6199 | 0.6102 | 0.6300 |" in md
    assert summary_csv([r]).splitlines()[1].split(",")[4:] == ["", "", "", "fan pump"]
    # error reports without a run manifest naming the recipe: still not an apply run
    (failed / ".automl-asd-run.json").unlink()
    with pytest.raises(RunError, match="not an apply run"):
        read_apply_run(failed)


def test_a_metrics_json_the_run_did_not_write_is_refused_or_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: a hand-edited metrics.json (AUC 1.7, an official_score of 0.99 that
    the per-type values do not give) was printed as the run's scores, and a deleted one read
    as "no labels". Values no run writes are refused; a file that is not the one the run
    wrote (its sha256 in the manifest) is shown with a warning; a deleted one is named."""
    import logging

    run = tmp_path / "run"
    _labelled_run(run)
    metrics = run / "metrics.json"
    original = metrics.read_text()
    with caplog.at_level(logging.WARNING):
        assert read_apply_run(run).official_score == pytest.approx(0.61993, abs=1e-5)
    assert not caplog.records  # the file the run wrote: nothing to say

    doc = json.loads(original)
    doc["machine_types"]["fan"]["auc_source"] = 1.7
    metrics.write_text(json.dumps(doc))
    with pytest.raises(RunError, match=r"metrics.json: fan auc_source = 1.7 is outside "
                                       r"\[0, 1\]; .*apply --resume"):
        read_apply_run(run)
    doc = json.loads(original)
    doc["official_score"] = 0.99
    metrics.write_text(json.dumps(doc))
    with pytest.raises(RunError, match=r"metrics.json: official_score 0.99 is not the harmonic "
                                       r"mean of its per-type .* \(0.6199\)"):
        read_apply_run(run)

    # edited consistently: shown, with a warning naming the file and the manifest
    doc = json.loads(original)
    doc["machine_types"]["fan"] = {"auc_source": 0.9, "auc_target": 0.9, "pauc": 0.9}
    doc["official_score"] = 6 / (3 / 0.9 + 1 / 0.7 + 2 / 0.6)
    metrics.write_text(json.dumps(doc))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        r = read_apply_run(run)
    assert r.machine_omega("fan") == pytest.approx(0.9)
    assert [rec.getMessage() for rec in caplog.records] == [
        f"{metrics}: edited since `automl-asd apply` wrote it (its sha256 is not the one in "
        f"{run / '.automl-asd-run.json'}); the scores shown are this file's: rerun "
        "`automl-asd apply --resume` with the run's arguments to write it again"]

    # deleted: said in the log and in both tables, not "no labels"
    metrics.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        r = read_apply_run(run, label="gone")
    assert r.metrics_missing and r.official_score is None
    assert caplog.records[0].getMessage().startswith(
        f"{metrics}: missing, although the run wrote it (listed in ")
    md = summary_markdown([r])
    assert "| `gone` | `fast_default` | `ffffffffffff` | no | — (metrics.json missing) | — | — |" \
        in md
    assert "| `gone` | (metrics.json missing) |" in md and "(no labels)" not in md

    # one the run never wrote (not in its manifest)
    _manifest(run, "f" * 64, "fast_default", ["fan.summary.json", "pump.summary.json"])
    metrics.write_text(original)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        read_apply_run(run)
    assert "metrics.json: not written by the run (not listed in " in caplog.text


def test_one_folder_given_twice_is_listed_once_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: `summarize out1 out1` (or out1 and a link to it) listed the run
    twice, as if two runs agreed."""
    import logging

    from automl_asd.cli import main

    run, other = tmp_path / "out1", tmp_path / "out2"
    _labelled_run(run)
    _labelled_run(other)
    link = tmp_path / "link"
    link.symlink_to(run)
    with caplog.at_level(logging.WARNING):
        assert main(["summarize", str(run), str(link), str(other), f"{run}/"]) == 0
    md = capsys.readouterr().out
    rows = [ln for ln in md.splitlines() if ln.startswith("| `") and "`fast_default`" in ln]
    assert [ln.split("`")[1] for ln in rows] == [str(run), str(other)]
    warned = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert warned == [f"{link}: the same folder as {run}; listed once",
                      f"{run}: the same folder as {run}; listed once"]
