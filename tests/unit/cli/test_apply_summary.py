"""The lines ``automl-asd apply`` prints when it ends (``commands.apply.summary_lines``)."""

from __future__ import annotations

from pathlib import Path

from automl_asd.apply import ApplyReport, MachineOutcome
from automl_asd.commands.apply import summary_lines


def _report(statuses: dict[str, str], *, score: float | None = None,
            metrics: dict[tuple[str, str], object] | None = None) -> ApplyReport:
    return ApplyReport(out_dir=Path("/o"), recipe_name="r", recipe_hash="a" * 64,
                       outcomes=tuple(MachineOutcome(mt, st, 1.0)
                                      for mt, st in statuses.items()),
                       official_score=score, metrics=dict(metrics or {}), seconds=2.0)


def test_sections_are_not_counted_as_machine_types() -> None:
    two_sections = {("fan", "00"): None, ("fan", "01"): None}
    lines = summary_lines(_report({"fan": "ok"}, score=0.61412, metrics=two_sections))
    assert lines[-1] == "official score Ω = 0.6141 over 1 machine type(s) (2 sections)"
    lines = summary_lines(_report({"fan": "ok", "pump": "ok"}, score=0.6,
                                  metrics={("fan", "00"): None}))
    assert lines[-1] == "official score Ω = 0.6000 over 1 machine type(s) of 2"
    lines = summary_lines(_report({"fan": "ok", "pump": "skipped"}, score=0.6,
                                  metrics={("fan", "00"): None, ("pump", "00"): None}))
    assert lines[0] == "recipe r (aaaaaaaaaaaa): 1 machine type(s) applied, 1 resumed, " \
                       "0 failed, in 2.0 s"
    assert lines[-1] == "official score Ω = 0.6000 over 2 machine type(s)"


def test_no_metrics_says_why() -> None:
    failed = summary_lines(_report({"fan": "failed", "pump": "failed"}))
    assert "  FAILED pump: see /o/pump.error.txt" in failed
    assert failed[-1] == "every machine type failed: no metrics"
    unlabelled = summary_lines(_report({"fan": "ok", "pump": "failed"}))
    assert unlabelled[-1] == "no labels or ground truth: metrics not computed"


def test_pngs_are_named_only_when_written() -> None:
    from dataclasses import replace

    report = _report({"fan": "ok"}, score=0.6, metrics={("fan", "00"): None})
    assert summary_lines(report)[-2] == "results: /o/results.md (+ results.csv, metrics.json)"
    with_plots = replace(report, files=(Path("/o/results.md"), Path("/o/roc_fan.png")))
    assert summary_lines(with_plots)[-2].endswith("(+ results.csv, metrics.json, PNGs)")
