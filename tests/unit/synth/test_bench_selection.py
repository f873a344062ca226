"""bench/selection.py's ranking reliability: candidates' development and novel per-clip scores
-> the variances it pools over draws, and the pooling itself."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from automl_asd.recipe import load_recipe
from automl_asd.search.selection import ranking_variances
from tests.fixtures.bench import load_bench
from tests.fixtures.scoring import gaussian_section


@pytest.fixture(scope="module")
def selection() -> ModuleType:
    return load_bench("selection")


def _clips(rng: np.random.Generator, sep: float) -> dict[str, tuple[object, object, object]]:
    return {"pump/00": gaussian_section(rng, sep, 30)}


def test_reliability_reads_both_sides_and_pools_over_draws(selection: ModuleType,
                                                           tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    draws = load_bench("draws")
    names = ["fast_default", "searched_pooled_logz", "hedge_pooled"]
    cands, novel = [], {}
    for i, name in enumerate(names):
        recipe = load_recipe(name)
        novel[name] = _clips(rng, 0.5 * i)
        draws._write_clips(novel[name], tmp_path / f"{recipe.content_hash()[:16]}.novel.npz")
        cands.append({"trial_id": f"c{i}", "recipe": recipe, "clips": _clips(rng, 1.0 * i)})
    rel = selection._reliability(cands, tmp_path, {"rho": 0.5})
    dev = ranking_variances("mean", {c["trial_id"]: c["clips"] for c in cands})
    nov = ranking_variances("mean", {f"c{i}": novel[n] for i, n in enumerate(names)})
    assert (rel["dev_total"], rel["dev_noise"]) == pytest.approx(dev)
    assert (rel["novel_total"], rel["novel_noise"]) == pytest.approx(nov)
    assert rel["rho"] == 0.5
    assert selection._pooled([rel], "dev") == pytest.approx(1 - dev[1] / dev[0])
    # Pooled as sums over draws, clipped at 0.
    two = [{"dev_total": 1.0, "dev_noise": 0.5}, {"dev_total": 3.0, "dev_noise": 0.5}]
    assert selection._pooled(two, "dev") == pytest.approx(0.75)
    assert selection._pooled([{"dev_total": 1.0, "dev_noise": 2.0}], "dev") == 0.0
    # A candidate whose novel per-clip scores were never kept: the novel side is unknown.
    (tmp_path / f"{load_recipe(names[0]).content_hash()[:16]}.novel.npz").unlink()
    rel = selection._reliability(cands, tmp_path, {"rho": 0.5})
    assert math.isnan(rel["novel_total"]) and not math.isnan(rel["dev_total"])
    assert math.isnan(selection._pooled([rel], "novel"))  # unknown, not "no reliability"
