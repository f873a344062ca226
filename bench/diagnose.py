"""Where does a recipe lose on the bench draws' novel types? Per-domain and per-anomaly-kind AUCs.

For each recipe, over the novel types of the family-held-out draws (``bench/draws.py``; pass
the same ``--work`` as ``bench/shipped.py`` to reuse its data and feature cache), the mean of:

* ``AUC-s`` / ``AUC-t``: the official ones (that domain's normals vs ALL anomalies);
* ``within-s`` / ``within-t``: that domain's normals vs that domain's anomalies only — how well
  the detector separates anomalies from normals when the domain is known;
* ``tgtN/srcA``: target normals vs source anomalies — below 0.5 when the shifted target normals
  score above the source anomalies (a calibration loss across domains, not a detection loss);

then, per (family, anomaly kind), the AUC of that kind's anomalies vs the normals of the same
domain (the generator's plan names each test clip's kind). Low ``within-*`` with high
``tgtN/srcA`` means the representation misses the anomalies; the reverse means the domains are
not put on one scale.

Usage::

    nice -n 10 .venv/bin/python bench/diagnose.py --work /tmp/small --recipes searched_pooled_logz
"""

from __future__ import annotations

import argparse
import collections
import logging

import numpy as np
from draws import add_draw_args, draws_from_args, make_data
from sklearn.metrics import roc_auc_score

from automl_asd import synth
from automl_asd.data import scan
from automl_asd.pipeline import run_machine
from automl_asd.recipe import load_recipe


def _auc(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> float:
    return float(roc_auc_score(labels[mask], scores[mask]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["searched_pooled_logz"])
    add_draw_args(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    draws = draws_from_args(args)
    cache = args.work / "cache"
    for name in args.recipes:
        recipe = load_recipe(name)
        domain_rows: list[tuple[float, ...]] = []
        kinds: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        for draw in draws:
            _, novel_root = make_data(draw, args.work, size=args.size)
            for mt, md in scan(novel_root).items():
                scores = run_machine(recipe, md, cache_dir=cache, device="cpu").scores
                plans = {p.labelled_name: p for p in synth.plan_machine(mt, args.size, draw.seed)
                         if p.split == "test"}
                info = [plans[c.name] for c in md.test]
                anomalous = np.array([p.anomaly is not None for p in info])
                dom = np.array([p.domain for p in info])
                src, tgt = dom == "source", dom == "target"
                domain_rows.append((
                    _auc(anomalous, scores, src | anomalous),
                    _auc(anomalous, scores, tgt | anomalous),
                    _auc(anomalous, scores, src), _auc(anomalous, scores, tgt),
                    _auc(anomalous, scores, (tgt & ~anomalous) | (src & anomalous))))
                family = synth.family_of(mt) or "?"
                for d in ("source", "target"):
                    for kind in sorted({p.anomaly for p in info if p.anomaly}):
                        sel = (dom == d) & (~anomalous | np.array([p.anomaly == kind
                                                                   for p in info]))
                        if (sel & anomalous).sum() >= 2:
                            kinds[(family, kind)].append(_auc(anomalous, scores, sel))
        a = np.array(domain_rows)
        print(f"== {name}: {len(a)} novel types of {len(draws)} draws (size {args.size})")
        print("   AUC-s {:.3f}  AUC-t {:.3f} | within-s {:.3f}  within-t {:.3f} | "
              "tgtN/srcA {:.3f}".format(*a.mean(axis=0)))
        print(f"   {'family':<6} {'kind':<14} {'n':>3}  AUC vs same-domain normals")
        for (family, kind), vals in sorted(kinds.items(), key=lambda kv: np.mean(kv[1])):
            print(f"   {family:<6} {kind:<14} {len(vals):3d}  {np.mean(vals):.3f}")


if __name__ == "__main__":
    main()
