"""bench/dev_families.py: ρ of the default objective on k development families, from stored
tables, and the Spearman-Brown fit that extrapolates it."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from automl_asd.search.selection import (
    objective_value,
    pooled_reliability,
    ranking_variances,
    section_aucs,
)
from tests.fixtures.bench import load_bench
from tests.fixtures.scoring import gaussian_section


@pytest.fixture(scope="module")
def fam() -> ModuleType:
    return load_bench("dev_families")


def test_family_subsets_group_types_by_family(fam: ModuleType) -> None:
    # two random types of one family count as one family; a named type maps to its family
    types = ["rndfan00", "rndfan01", "rndgear00", "pump"]
    subsets = fam.family_subsets(types)
    assert sorted(subsets) == [1, 2, 3]
    assert {"rndfan00", "rndfan01"} in subsets[1] and len(subsets[1]) == 3
    assert subsets[3] == [set(types)]


def test_rho_by_families_is_the_mean_over_the_subsets(fam: ModuleType) -> None:
    """Three candidates, two families that order them differently: k=1 is the mean of the two
    single-family ρ, k=2 the ρ of the objective over both."""
    aucs = [  # per candidate: (source AUC, target AUC, pAUC) on each family's one section
        {"rndfan00/00": (0.9, 0.9, 0.9), "rndgear00/00": (0.5, 0.5, 0.5)},
        {"rndfan00/00": (0.7, 0.7, 0.7), "rndgear00/00": (0.8, 0.8, 0.8)},
        {"rndfan00/00": (0.5, 0.5, 0.5), "rndgear00/00": (0.6, 0.6, 0.6)},
    ]
    novel = [0.9, 0.6, 0.5]  # fan's order: ρ 1 on fan, -0.5 on gear
    out = fam.by_families([{"aucs": a} for a in aucs], novel)
    assert out[1]["rho"] == pytest.approx((1.0 - 0.5) / 2)
    both = [objective_value("mean", a) for a in aucs]
    assert out[2]["rho"] == pytest.approx(fam.spearman(both, novel))
    assert "reliability" not in out[1]


def test_reliability_is_pooled_over_the_subsets(fam: ModuleType) -> None:
    rng = np.random.default_rng(0)
    seps = [0.0, 0.6, 1.2]
    clips = [{f"rnd{f}00/00": gaussian_section(rng, s, 20) for f in ("fan", "gear")}
             for s in seps]
    tables = [{"clips": c, "aucs": {k: section_aucs(*v) for k, v in c.items()}} for c in clips]
    out = fam.by_families(tables, [0.5, 0.6, 0.7], reliability=True)
    one = [ranking_variances("mean", {f"c{i}": {k: v for k, v in c.items()
                                                if k.startswith(f"rnd{f}")}
                                      for i, c in enumerate(clips)}) for f in ("fan", "gear")]
    assert out[1]["reliability"] == pytest.approx(pooled_reliability(one))
    assert out[2]["reliability"] == pytest.approx(pooled_reliability(
        [ranking_variances("mean", {f"c{i}": c for i, c in enumerate(clips)})]))
    assert out[2]["rho"] == pytest.approx(1.0)  # well separated candidates, in novel's order


def test_fit_recovers_the_model_and_predicts_its_limit(fam: ModuleType) -> None:
    ks = [1, 2, 3, 4, 5, 6]
    rho = [fam.predict(0.4, 0.85, k) for k in ks]
    a, c = fam.fit(ks, rho)
    assert a == pytest.approx(0.4, abs=0.002) and c == pytest.approx(0.85, abs=0.002)
    assert fam.predict(a, c, math.inf) == c
    assert rho[0] == pytest.approx(0.85 * math.sqrt(0.4))  # one family: c·sqrt(a)
    assert fam.predict(a, c, 12) > rho[-1]  # more families, closer to the limit


def test_missing_scores_stop_with_a_message(fam: ModuleType, tmp_path: Path) -> None:
    args = argparse.Namespace(space="demo", candidates=1, work=tmp_path, dev_work=tmp_path,
                              full_work=tmp_path, reliability=False)
    draw = fam.draws_from_args(argparse.Namespace(draws=1, seed0=0, holdout=2,
                                                  novel_per_family=2, named=False,
                                                  draw_ids=None))[0]
    with pytest.raises(SystemExit, match="novel Ω of .* is not stored; run bench/dev_size.py"):
        fam._draw(draw, args)
