"""``bench/pseudo_weights.py``: perturbations, pseudo-AUCs, fusion rules, and the per-type
arrays against the pipeline's own score of the same hedge."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from automl_asd.data import scan
from automl_asd.evaluation.evaluate import evaluate_result
from automl_asd.pipeline import run_machine
from automl_asd.recipe import load_recipe
from tests.fixtures.bench import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("pseudo_weights")


def _clip(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(-40.0, 3.0, (60, 128)).astype(np.float32)


def test_perturbations_change_what_they_say(bench: ModuleType) -> None:
    x = _clip()
    for kind in bench.KINDS:
        a = bench.perturb(x, kind, 0.5, np.random.default_rng(1))
        b = bench.perturb(x, kind, 0.5, np.random.default_rng(1))
        assert a.shape == x.shape and a.dtype == np.float32
        assert np.array_equal(a, b)  # seeded
        assert not np.allclose(a, x, atol=1e-3)
    tone = bench.perturb(x, "tone", 1.0, np.random.default_rng(2)) - x
    raised = np.flatnonzero(np.abs(tone).max(axis=0) > 1e-3)
    assert len(raised) == 3 and np.all(np.diff(raised) == 1) and np.all(tone[:, raised] > 0)
    band = bench.perturb(x, "band", 1.0, np.random.default_rng(3)) - x
    cols = np.flatnonzero(np.abs(band).max(axis=0) > 1e-3)
    assert 8 <= len(cols) <= 24 and np.all(np.diff(cols) == 1)
    # a power factor of 1 + g is a constant 10 log10(2) dB on every frame of the range
    assert np.allclose(band[:, cols], 10 * np.log10(2.0), atol=1e-3)
    with pytest.raises(ValueError, match="perturbation"):
        bench.perturb(x, "nope", 1.0, np.random.default_rng(0))


def test_pseudo_aucs_and_fusion_rules(bench: ModuleType) -> None:
    clean = np.column_stack([np.arange(10.0), np.arange(10.0)])
    # member 0 ranks every perturbed clip above every clean one; member 1 sees no change
    arrays = {"clean": clean, **{f"p_{k}_{g}": np.column_stack([clean[:, 0] + 100, clean[:, 1]])
                                 for k in bench.KINDS for g in bench.LEVELS}}
    a = bench.pseudo_aucs(arrays, ["band", "am"], [0.5, 1.0])
    assert a == pytest.approx([1.0, 0.5])
    z = np.random.default_rng(0).normal(size=(30, 2))
    rules = bench.fused(z, a, [10.0, 1e6])
    assert np.allclose(rules["mean"], z.mean(axis=1)) and np.allclose(rules["max"], z.max(1))
    assert np.array_equal(rules["pick"], z[:, 0])
    assert np.allclose(rules["softmax1e+06"], z[:, 0])  # infinitely sharp: the pick
    w = np.exp(10 * np.array([0.0, -0.5]))
    assert np.allclose(rules["softmax10"], z @ (w / w.sum()))


def test_type_arrays_mean_rule_is_the_pipelines_hedge(bench: ModuleType, tiny_novel_root: Path,
                                                      tmp_path: Path) -> None:
    machine = scan(tiny_novel_root, machine_types=["compressor"])["compressor"]
    recipe = load_recipe("hedge_logz_frame")
    arrays = bench.type_arrays(recipe, machine, tmp_path / "cache")
    y, d, z = arrays["y"], arrays["d"], arrays["z"]
    assert z.shape == (40, 2) and int(y.sum()) == 20
    # the mean of the member z-scores is the shipped hedge, scored as the pipeline scores it
    official = evaluate_result(machine, run_machine(recipe, machine, cache_dir=tmp_path / "cache",
                                                    device="cpu")).official_score
    assert bench.set_omega({"0/compressor": (y, d, z.mean(axis=1))}) == pytest.approx(
        official, abs=1e-12)
    n_held = len(arrays["clean"])
    assert n_held == 27  # half of the 54 source training clips
    for kind in bench.KINDS:
        for g in bench.LEVELS:
            assert arrays[f"p_{kind}_{g}"].shape == (n_held, 2)
