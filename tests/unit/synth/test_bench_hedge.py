"""``bench/hedge.py``: per-clip scores stored by behaviour hash, Ω and the gap's standard error."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from automl_asd.data import scan
from automl_asd.evaluation.evaluate import evaluate_result
from automl_asd.pipeline import run_machine
from automl_asd.recipe import Recipe, load_recipe
from tests.fixtures.bench import load_bench


@pytest.fixture(scope="module")
def hedge_bench() -> ModuleType:
    return load_bench("hedge")


def _renamed(recipe: Recipe, name: str) -> Recipe:
    d = recipe.to_dict()
    d["name"], d["description"] = name, "same behaviour, another name"
    return Recipe.from_dict(d)


def test_scores_are_stored_by_behaviour_and_omega_is_the_official_one(
        hedge_bench: ModuleType, tiny_novel_root: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    machine = scan(tiny_novel_root, machine_types=["compressor"])["compressor"]
    recipe = load_recipe("hedge_pooled")
    cache, store = tmp_path / "cache", tmp_path / "store"
    y, d, s = hedge_bench.scored_clips(recipe, machine, cache, store, "draw0_tiny")
    assert len(y) == len(d) == len(s) == 40 and int(y.sum()) == 20
    assert sorted(set(d.tolist())) == ["source", "target"]
    # Ω from the stored arrays is the official per-type score of the same run.
    official = evaluate_result(machine, run_machine(recipe, machine, cache_dir=cache,
                                                    device="cpu")).official_score
    assert hedge_bench.set_omega({"0/compressor": (y, d, s)}) == pytest.approx(official,
                                                                             abs=1e-12)
    assert len(list((store / "draw0_tiny").glob("compressor_*.npz"))) == 1

    # A recipe that scores the same (another name) is read back, not run again ...
    def no_run(*_: object, **__: object) -> None:
        raise AssertionError("evaluate_recipe called for a stored recipe")

    monkeypatch.setattr(hedge_bench, "evaluate_recipe", no_run)
    y2, d2, s2 = hedge_bench.scored_clips(_renamed(recipe, "other"), machine, cache, store,
                                          "draw0_tiny")
    assert np.array_equal(y2, y) and np.array_equal(d2, d) and np.array_equal(s2, s)
    # ... while one that scores otherwise, or the same recipe in another group, is run.
    other = recipe.to_dict()
    other["detector"]["params"]["combine"] = "max"
    with pytest.raises(AssertionError, match="stored recipe"):
        hedge_bench.scored_clips(Recipe.from_dict(other), machine, cache, store, "draw0_tiny")
    with pytest.raises(AssertionError, match="stored recipe"):
        hedge_bench.scored_clips(recipe, machine, cache, store, "draw1_tiny")
    with pytest.raises(AssertionError, match="stored recipe"):
        hedge_bench.scored_clips(recipe, machine, cache, None, "draw0_tiny")


def test_gap_standard_error_is_paired(hedge_bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 0, 1], 25)
    d = np.repeat(["source", "source", "target", "target"], 25)
    good = y * 1.0 + rng.normal(0, 1, y.size)
    # the same clips scored the same: no gap on any resample
    assert hedge_bench.gap_se((y, d, good), (y, d, good.copy()), 200) == 0.0
    # a monotone transform of the scores has the same AUCs on every resample
    assert hedge_bench.gap_se((y, d, good), (y, d, np.exp(good)), 200) == pytest.approx(0.0)
    noisy = good + rng.normal(0, 1.5, y.size)
    se = hedge_bench.gap_se((y, d, good), (y, d, noisy), 200)
    # of the order of an AUC's standard error on 100 clips
    assert 0.01 < se < 0.1
    assert np.isnan(hedge_bench.gap_se((y, d, good), (y, d, noisy), 0))


def test_noise_count_by_hand(hedge_bench: ModuleType) -> None:
    # gap limit 0.05, true gap 0, SE 0.05: z = 1, P(N > limit) = 0.158655 per type.
    count, some = hedge_bench.noise_count(0.0, np.array([0.05, 0.05]), 0.05)
    assert count == pytest.approx(2 * 0.158655, abs=1e-6)
    assert some == pytest.approx(1 - (1 - 0.158655) ** 2, abs=1e-6)
    # A tiny standard error: no type crosses from noise.
    assert hedge_bench.noise_count(0.012, np.array([0.001] * 24), 0.05)[0] < 1e-12


def test_a_gain_gets_its_own_trees_and_stored_scores(hedge_bench: ModuleType, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``--anomaly-gain``: the novel trees and the stored per-clip scores of a gain live apart
    from gain 1's, so a run at one gain never reads another gain's scores back; the louder
    faults are found better."""
    sets = {}
    for gain in ("1", "3"):
        assert hedge_bench.main(["--root", str(tmp_path), "--family-draws", "1", "--size",
                                 "tiny", "--recipe", "hedge_pooled", "--n-boot", "1",
                                 "--anomaly-gain", gain]) == 0
        out = capsys.readouterr().out
        sets[gain] = float(out.split("all seeds: set Ω hedge ")[1].split(";")[0])
    assert sorted(p.name for p in (tmp_path / "draw0").iterdir()) == ["novel", "novel_gain3"]
    stored = sorted(p.name for p in (tmp_path / "hedge_scores").iterdir())
    assert stored == ["draw0_tiny", "draw0_tiny_gain3"]
    n = len(list((tmp_path / "hedge_scores" / "draw0_tiny").iterdir()))
    assert n == len(list((tmp_path / "hedge_scores" / "draw0_tiny_gain3").iterdir())) > 0
    assert sets["3"] > sets["1"] + 0.05, sets
