"""The search objective: labels are joined to scores by (section, name) after scoring, and Ω
equals the metrics module's official score over every type."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from automl_asd import ground_truth
from automl_asd.data import Clip, Domain, Label, MachineData, Split
from automl_asd.evaluation import objective
from automl_asd.evaluation.metrics import machine_metrics, official_score
from automl_asd.recipe import load_recipe


def _machine(mt: str, n: int = 40) -> MachineData:
    clips = []
    for i in range(n):
        domain = Domain.SOURCE if i % 2 == 0 else Domain.TARGET
        label = Label.ANOMALY if (i // 2) % 2 else Label.NORMAL
        clips.append(Clip(path=Path(f"/x/{mt}/test/section_00_{domain}_test_{label}_{i:04d}.wav"),
                          machine_type=mt, section="00", split=Split.TEST, domain=domain,
                          label=label, index=i, attributes=None))
    return MachineData(machine_type=mt, root=Path(f"/x/{mt}"), clips=tuple(clips))


def _fake_run(scores_for: Any) -> Any:
    def run_machine(recipe: Any, machine: MachineData, **kwargs: Any) -> Any:
        test = list(reversed(machine.test))  # any order: the objective joins by name
        return SimpleNamespace(names=[c.name for c in test], sections=[c.section for c in test],
                               scores=scores_for(test), decisions=np.zeros(len(test), int),
                               timings={"features": 0.5, "fit": 1.0})
    return run_machine


def test_omega_matches_official_score(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    noise = {f"{mt}{i}": rng.normal() for mt in ("a", "b") for i in range(40)}

    def scores(test: list[Clip]) -> np.ndarray:
        return np.array([(c.label is Label.ANOMALY) * 0.8 + noise[f"{c.machine_type}{c.index}"]
                         for c in test])

    import automl_asd.pipeline

    monkeypatch.setattr(automl_asd.pipeline, "run_machine", _fake_run(scores))
    machines = {"a": _machine("a"), "b": _machine("b")}
    res = objective.evaluate_recipe(load_recipe("fast_default"), machines, fidelity=0.5)
    expected = {}
    for mt, m in machines.items():
        y = np.array([c.label is Label.ANOMALY for c in m.test], int)
        d = np.array([str(c.domain) for c in m.test])
        expected[mt] = machine_metrics(y, d, scores(list(m.test)))
    assert res.omega == pytest.approx(official_score(expected), abs=1e-12)
    assert 0.5 < res.omega < 1.0
    assert res.per_type[("a", "00")].auc_source == pytest.approx(expected["a"].auc_source)
    assert res.per_type[("b", "00")].score == pytest.approx(official_score({"b": expected["b"]}))
    assert res.timings == {"features": 1.0, "fit": 2.0}
    flat = res.flat()
    assert flat["fidelity"] == 0.5 and flat["a/pauc"] == res.per_type[("a", "00")].pauc
    assert flat["time/fit"] == 2.0


def test_perfect_scores_give_omega_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import automl_asd.pipeline

    monkeypatch.setattr(automl_asd.pipeline, "run_machine", _fake_run(
        lambda test: np.array([float(c.label is Label.ANOMALY) for c in test])))
    res = objective.evaluate_recipe(load_recipe("fast_default"), {"a": _machine("a")})
    assert res.omega == pytest.approx(1.0)


def test_unlabelled_or_foreign_clips_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import automl_asd.pipeline

    m = _machine("a")
    unlabelled = replace(m, clips=tuple(replace(c, label=Label.UNKNOWN) for c in m.clips))
    with pytest.raises(ValueError, match="without label/domain"):
        ground_truth.from_clips(unlabelled)
    truth = ground_truth.from_clips(m)[("a", "00")]
    assert truth.labels.tolist()[:4] == [0, 0, 1, 1]
    assert list(truth.domains[:4]) == ["source", "target"] * 2
    # A scored clip that is not a test clip of the tree is an error naming it.
    fake = _fake_run(lambda test: np.zeros(len(test)))

    def foreign(recipe: Any, machine: MachineData, **kwargs: Any) -> Any:
        res = fake(recipe, machine, **kwargs)
        res.names[0] = "other.wav"
        return res

    monkeypatch.setattr(automl_asd.pipeline, "run_machine", foreign)
    with pytest.raises(ValueError, match="extra row.*other.wav"):
        objective.evaluate_recipe(load_recipe("fast_default"), {"a": m})
