"""Trial table and freezing of the best recipe, from a stand-in Tune result grid (no Ray)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from automl_asd.io import search_report
from automl_asd.orchestration.tune import SearchConfig, _freeze, trials_table
from automl_asd.recipe import load_recipe
from automl_asd.search.space import load_space


def _result(idx: int, trial_id: str, config: dict[str, Any], omega: float | None,
            fidelity: float = 1.0, error: str | None = None, reference: bool = False) -> Any:
    metrics: dict[str, Any] = {"trial_id": trial_id}
    if omega is not None:
        metrics.update({"omega": omega, "fidelity": fidelity, "rung": 1, "time_total_s": 2.5,
                        "timestamp": 1000 + idx, "is_reference": int(reference),
                        "fan/auc_source": 0.7, "fan/auc_target": 0.6, "fan/pauc": 0.55,
                        "fan/omega": omega, "recipe_hash": "h"})
    return SimpleNamespace(metrics=metrics, config=config,
                           error=RuntimeError(f"Traceback...\n{error}") if error else None,
                           path=f"/runs/tune/_trainable_{trial_id}_{idx}_cfg")


def test_trials_table_and_freeze_pick_best_full_fidelity_trial(tmp_path: Path) -> None:
    space = load_space("default")
    base = space.reference_point()
    knn = {"features.n_mels": 64, "features.n_fft": 1024, "features.hop_length": 512,
           "detector.name": "pooled_stats", "detector.pooled_stats.pooling": "mean_std",
           "detector.pooled_stats.standardize": True,
           "detector.pooled_stats.backend.name": "knn",
           "detector.pooled_stats.backend.knn.n_centers": 8,
           "detector.pooled_stats.backend.knn.k": 3,
           "detector.pooled_stats.backend.knn.metric": "cosine",
           "detector.pooled_stats.domain_rule": "nearest_clip",
           "normalization.method": "domain_zscore", "supplemental.clean_as_normal": False,
           "supplemental.noise_mix_prob": 0.0, "ensemble.size": 1}
    cnn = {**{k: v for k, v in knn.items() if not k.startswith("detector.")},
           "detector.name": "margin_cnn", "detector.margin_cnn.size": "tiny",
           "detector.margin_cnn.epochs": 5, "detector.margin_cnn.scope": "all"}
    grid = [_result(4, "dddd", knn, None, error="RuntimeError: boom"),
            _result(1, "aaaa", base, 0.60, reference=True),
            _result(3, "cccc", cnn, 0.95, fidelity=0.25),  # better, but stopped early
            _result(2, "bbbb", knn, 0.70)]
    table = trials_table(grid, space)
    assert table["trial_id"].tolist() == ["aaaa", "bbbb", "cccc", "dddd"]
    assert table["status"].tolist() == ["complete", "complete", "stopped_early", "error"]
    assert table["is_reference"].tolist() == [True, False, False, False]
    assert table.loc[3, "error"] == "RuntimeError: boom"
    assert str(table["param:detector.dcase_ae.epochs"].dtype) == "Int64"
    assert table.loc[1, "param:detector.dcase_ae.epochs"] is pd.NA

    out = tmp_path / "run"
    search_report.write_search_meta(out, {"space_name": space.name, "machine_types": ["fan"]})
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=4, seed=7)
    outcome = _freeze(cfg, out, table, ("fan",), search_report)
    assert outcome.best_trial_id == "bbbb" and outcome.best_omega == 0.70
    assert outcome.reference_omega == 0.60
    assert outcome.reference == ("reference recipe `baseline_ae_mse` (the official DCASE "
                                 "baseline)")
    recipe = load_recipe(out / "recipe.json")
    assert recipe.detector.name == "pooled_stats"
    backend = recipe.detector.params["backend"]
    assert backend == {"name": "knn", "params": {"n_centers": 8, "k": 3, "metric": "cosine"}}
    assert recipe.features.n_mels == 64 and recipe.normalization.method == "domain_zscore"
    prov = recipe.provenance
    assert (prov.source, prov.trial_id, prov.objective) == ("search", "bbbb", 0.70)
    assert prov.space_sha256 == space.sha256 and list(prov.dev_machine_types) == ["fan"]
    assert "seed 7" in recipe.description
    stored = pd.read_parquet(out / "trials.parquet")
    assert len(stored) == 4 and stored["omega"].iloc[1] == 0.70
    report = (out / "search_report.md").read_text()
    assert "Δ = +0.1000" in report and "Failed trials" in report and "boom" in report
    assert "- reference recipe `baseline_ae_mse` (the official DCASE baseline): the first " \
           "trial, Ω = 0.6000" in report
    assert "(reference recipe Ω = 0.6000, Δ = +0.1000)" in report
    # the trial table: one summary column instead of every parameter
    head = next(ln for ln in report.splitlines() if ln.startswith("| trial_id |"))
    assert head == "| trial_id | status | omega | fidelity | wall_s | recipe |"
    rows = {ln.split(" | ")[0][2:]: ln for ln in report.splitlines() if ln.startswith("| ")}
    assert rows["bbbb"].endswith(
        "| features(n_mels=64, n_fft=1024, hop_length=512) · pooled_stats(pooling=mean_std, "
        "standardize=true, domain_rule=nearest_clip) → knn(n_centers=8, k=3, metric=cosine) · "
        "domain_zscore · supplemental(clean_as_normal=false, noise_mix_prob=0) · "
        "ensemble(size=1) |")
    assert "| (reference) features(n_mels=128, n_fft=1024, hop_length=512) · dcase_ae(" \
        in rows["aaaa"]
    full = pd.read_csv(out / "trials.csv")
    assert "param:detector.pooled_stats.backend.knn.k" in full.columns and len(full) == 4


def test_freeze_without_a_full_fidelity_trial_is_an_error(tmp_path: Path) -> None:
    space = load_space("smoke")
    table = trials_table([_result(1, "aaaa", space.reference_point(), None, error="x")], space)
    assert table["is_reference"].tolist() == [True]  # known from its config without results
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path, trials=1)
    with pytest.raises(ValueError, match="no trial finished at full fidelity"):
        _freeze(cfg, tmp_path, table, ("fan",), search_report)
