"""Detection quality floors of the shipped searched recipe on the tiny synthetic types.

Measured when written (generator version 4, seed 0, all 5 tiny types, CPU): fast_default
Ω 0.588 (mean AUC-s 0.649, AUC-t 0.625); searched_pooled_logz Ω 0.643 (mean AUC-s 0.709,
AUC-t 0.677). The floors below leave a margin for BLAS differences between machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from automl_asd.data import scan
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.recipe import load_recipe


def test_searched_pooled_logz_beats_fast_default_and_keeps_domains_balanced(
    tiny_dev_root: Path, tiny_novel_root: Path
) -> None:
    machines = {**scan(tiny_dev_root), **scan(tiny_novel_root)}
    assert len(machines) == 5
    best = evaluate_recipe(load_recipe("searched_pooled_logz"), machines, device="cpu")
    ref = evaluate_recipe(load_recipe("fast_default"), machines, device="cpu")
    auc_s = np.mean([m.auc_source for m in best.per_type.values()])
    auc_t = np.mean([m.auc_target for m in best.per_type.values()])
    assert best.omega >= 0.61, best.omega
    assert best.omega >= ref.omega + 0.03, (best.omega, ref.omega)
    assert auc_t >= auc_s - 0.06, (auc_s, auc_t)
