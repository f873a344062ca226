"""With Ray, no stage of ``apply`` or ``search`` trains or extracts features in the driver.

The driver's own training and feature entry points are replaced by functions that raise
(Ray workers are separate processes that import the real ones), so a stage that ran in the
driver fails the run; the pid and Ray node id every stage records must differ from the
driver's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.recipes import shared_margin_recipe

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _forbid_training_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import automl_asd.detectors.margin as margin
    import automl_asd.features as features
    import automl_asd.pipeline as pipeline

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a compute stage ran in the driver process")

    for module, name in ((pipeline, "fit_shared"), (pipeline, "run_machine"),
                         (pipeline, "fit_machine"), (features, "extract"),
                         (margin.MarginDetector, "fit")):
        monkeypatch.setattr(module, name, boom)


def test_apply_shared_stage_and_machine_tasks_run_in_ray_workers(
    ray_session: None,  # noqa: F811
    tiny_dev_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    from automl_asd.apply import ApplyConfig, apply_recipe
    from automl_asd.orchestration.ray_runner import RayRunner

    data = tmp_path / "data"
    for mt in ("gearbox", "bearing"):
        shutil.copytree(tiny_dev_root / mt, data / mt)
    _forbid_training_here(monkeypatch)
    rep = apply_recipe(ApplyConfig(shared_margin_recipe(), data, tmp_path / "out", plots=False,
                                   device="cpu"), runner=RayRunner())
    assert rep.ok, [o.error for o in rep.outcomes]
    node_ids = {n["NodeID"] for n in ray.nodes()}
    shared = json.loads((tmp_path / "out" / "shared" / "summary.json").read_text())
    assert shared["pid"] != os.getpid() and shared["node_id"] in node_ids
    for mt in ("gearbox", "bearing"):
        summary = json.loads((tmp_path / "out" / f"{mt}.summary.json").read_text())
        assert summary["pid"] != os.getpid() and summary["node_id"] in node_ids


def test_search_trials_and_prewarm_run_in_ray_workers(
    ray_session: None,  # noqa: F811
    tiny_dev_root: Path, tiny_novel_root: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Also the cost estimate (tiny timed fits) and the novel check (--novel): every stage that
    # fits or scores runs in a Ray worker.
    import ray

    from automl_asd.orchestration.tune import run_search
    from automl_asd.search.config import SearchConfig
    from automl_asd.search.space import load_space

    _forbid_training_here(monkeypatch)
    cfg = SearchConfig(data=tiny_dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=2, machine_types=("fan", "gearbox"), seed=1,
                       cache_dir=tmp_path / "cache", novel=tiny_novel_root)
    outcome = run_search(cfg)
    assert "novel" in outcome.files
    table = outcome.trials
    assert len(table) == 2 and (table["status"] == "complete").any()
    node_ids = {n["NodeID"] for n in ray.nodes()}
    assert set(table["node_id"]) <= node_ids
    assert os.getpid() not in set(table["pid"].astype(int))
    report = (tmp_path / "run" / "search_report.md").read_text()
    assert "## Ray nodes" in report and str(table["node_id"].iloc[0])[:12] in report
