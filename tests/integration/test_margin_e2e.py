"""margin_cnn through apply end to end: a noAttribute type without a supplemental folder and a
type whose noise supplemental clips are mixed in, with the fusion backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from automl_asd.apply import ApplyConfig, apply_recipe
from automl_asd.io.submission import read_submission
from automl_asd.recipe import Recipe, load_recipe


@pytest.mark.slow
def test_margin_recipe_applies_with_and_without_supplemental(
    tiny_dev_root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for mt in ("gearbox", "bearing"):  # gearbox: noise clips; bearing: noAttribute
        shutil.copytree(tiny_dev_root / mt, data / mt)
    shutil.rmtree(data / "bearing" / "supplemental")
    d = load_recipe("fast_default").to_dict()
    d["name"] = "margin_test"
    d["detector"] = {"name": "margin_cnn", "params": {
        "size": "tiny", "crop_frames": 16, "emb_dim": 16, "epochs": 1, "batch_size": 32,
        "n_subclusters": 2, "backend": {"name": "fusion", "params": {
            "members": "knn+mahalanobis+local_density"}}}}
    d["supplemental"] = {"clean_as_normal": True, "noise_mix_prob": 0.5,
                         "noise_snr_db": [0.0, 10.0]}
    recipe = Recipe.from_dict(d)
    report = apply_recipe(ApplyConfig(recipe, data, tmp_path / "out", plots=False))
    assert report.ok, report.outcomes
    assert report.official_score is not None and 0.0 < report.official_score <= 1.0
    for mt in ("gearbox", "bearing"):
        files = sorted((tmp_path / "out").rglob(f"anomaly_score_{mt}_section_00_test.csv"))
        assert len(files) == 1
        sub = read_submission(files[0].parent, mt, "00")
        values = np.array(list(sub.scores.values()), dtype=float)
        assert len(values) == 40 and np.all(np.isfinite(values))
        assert sub.decisions is not None and set(sub.decisions.values()) <= {0, 1}
