"""Detection quality of recipes side by side: one table, same data, same run.

For every recipe and every set of machine types of a synthetic DCASE tree (generated if missing)
the recipe is evaluated exactly as the search does, with ``evaluation.objective.evaluate_recipe``
(train on train clips, score test clips, then the official metrics from the labelled test names;
no representation reuse). Printed: one row per (recipe, machine type; ``<type>/<section>`` for a
type with several sections) with AUC-s, AUC-t, pAUC, per-type h-mean and fit+score seconds,
then one summary row per (recipe, set) with the official score Omega (h-mean over all AUC-s,
AUC-t, pAUC of the set), the h-means of each metric, the plain means of AUC-s and AUC-t and
their difference, and the total time (including a shared stage: one network trained over the
set's machine types).
Sets: the dev types (those a search would see) and the held-out types (never searched on).

Recipes: shipped names (``baseline_ae_mse``, ``fast_default``, ...), paths to recipe JSON files,
or the built-in variants below (``fast_default`` with another backend, or the ``margin_cnn``
family), all with the seed of ``fast_default``.

    .venv/bin/python bench/quality.py --root /tmp/synth-small --size small \
        --csv /tmp/quality.csv    # default recipes: both official baselines,
                                  # fast_default, searched_pooled_logz, margin_knn
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl_asd.data import scan
from automl_asd.evaluation.metrics import MachineMetrics, floored_hmean, official_score
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.ground_truth import SectionKey
from automl_asd.recipe import Recipe, load_recipe, shipped_recipe_names

DEV_TYPES = ("fan", "gearbox", "bearing", "valve", "slider", "ToyCar", "ToyTrain")
HELDOUT_TYPES = ("pump", "compressor", "grinder", "conveyor")
DEFAULT_RECIPES = ("baseline_ae_mse", "baseline_ae_mahalanobis", "fast_default",
                   "searched_pooled_logz", "margin_knn")

_MARGIN = {"name": "margin_cnn", "params": {}}


def _variant(name: str) -> Recipe | None:
    """Built-in variants of ``fast_default`` (other backend / the margin family)."""
    base = load_recipe("fast_default").to_dict()
    d: dict[str, Any] = copy.deepcopy(base)
    det = d["detector"]
    backend = det["params"].get("backend")
    if name == "pooled_fusion":
        backend.clear()
        backend.update({"name": "fusion", "params": {}})
    elif name == "pooled_local_density":
        backend.clear()
        backend.update({"name": "local_density", "params": {}})
    elif name == "pooled_mahalanobis":
        backend.clear()
        backend.update({"name": "mahalanobis", "params": {}})
    elif name.startswith("margin_"):
        # margin_<backend>[_norm]: margin_cnn defaults, that backend, normalisation none unless
        # the name ends in _norm (domain z-score).
        rest = name[len("margin_"):]
        norm = rest.endswith("_norm")
        rest = rest.removesuffix("_norm")
        d["detector"] = copy.deepcopy(_MARGIN)
        d["detector"]["params"]["backend"] = {"name": rest, "params": {}}
        d["normalization"] = {"method": "domain_zscore" if norm else "none"}
    else:
        return None
    d["name"] = name
    d["description"] = f"bench/quality.py variant {name}"
    d["provenance"]["source"] = "manual"
    return Recipe.from_dict(d)


def resolve(name: str) -> Recipe:
    """A shipped recipe, a recipe JSON path, or a built-in variant (shipped names win)."""
    if name in shipped_recipe_names() or name.endswith(".json"):
        return load_recipe(name)
    variant = _variant(name)
    if variant is not None:
        return variant
    return load_recipe(name)


def ensure_data(root: Path, size: str, seed: int, types: list[str]) -> None:
    missing = [t for t in types if not (root / t / "test").is_dir()]
    if missing:
        from automl_asd.synth import generate

        logging.info("generating %s synthetic data for %s in %s", size, missing, root)
        generate(root, machine_types=missing, size=size, seed=seed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="synthetic tree (made if missing)")
    ap.add_argument("--size", default="small", choices=("tiny", "small", "full"))
    ap.add_argument("--seed", type=int, default=0, help="data generation seed")
    ap.add_argument("--dev", default=",".join(DEV_TYPES))
    ap.add_argument("--heldout", default=",".join(HELDOUT_TYPES))
    ap.add_argument("--recipes", default=",".join(DEFAULT_RECIPES))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--csv", type=Path, default=None, help="per-machine rows (appended live)")
    ap.add_argument("--json", type=Path, default=None, help="summary rows as JSON")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sets = {"dev": [t for t in args.dev.split(",") if t],
            "heldout": [t for t in args.heldout.split(",") if t]}
    sets = {name: types for name, types in sets.items() if types}  # --dev "" skips the set
    if not sets:
        ap.error("no machine types: give --dev and/or --heldout")
    all_types = [t for types in sets.values() for t in types]
    ensure_data(args.root, args.size, args.seed, all_types)
    machines = scan(args.root, machine_types=all_types)
    recipes = [resolve(r) for r in args.recipes.split(",") if r]

    rows: list[dict[str, Any]] = []
    per: dict[tuple[str, str], dict[SectionKey, MachineMetrics]] = {}
    shared_s: dict[tuple[str, str], float] = {}
    for recipe in recipes:
        for set_name, types in sets.items():
            # one shared network (if the recipe has one) over the set's machine types
            res = evaluate_recipe(recipe, {mt: machines[mt] for mt in types},
                                  cache_dir=args.cache_dir, device=args.device,
                                  reuse_representations=False, num_threads=args.threads)
            shared_s[(recipe.name, set_name)] = res.timings.get("shared", 0.0)
            if "shared" in res.timings:
                print(json.dumps({"recipe": recipe.name, "set": set_name,
                                  "shared_s": round(shared_s[(recipe.name, set_name)], 1)}),
                      flush=True)
            per[(recipe.name, set_name)] = dict(res.per_type)
            n_sections = Counter(mt for mt, _ in res.per_type)
            for (mt, ss), m in res.per_type.items():
                first = ss == min(s for t, s in res.per_type if t == mt)
                t = res.type_timings[mt] if first else {}  # a type's seconds on one row
                row = {"recipe": recipe.name, "set": set_name,
                       "machine_type": mt if n_sections[mt] == 1 else f"{mt}/{ss}",
                       "auc_s": m.auc_source, "auc_t": m.auc_target, "pauc": m.pauc,
                       "hmean": m.score, "fit_s": t.get("fit", 0.0),
                       "score_s": t.get("score", 0.0), "features_s": t.get("features", 0.0),
                       "wall_s": t.get("total", 0.0)}
                rows.append(row)
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                  for k, v in row.items()}), flush=True)
                if args.csv is not None:
                    pd.DataFrame([row]).to_csv(args.csv, mode="a", index=False,
                                               header=not args.csv.exists())
    table = pd.DataFrame(rows)
    summary = []
    for (rname, set_name), values in per.items():
        sub = table[(table.recipe == rname) & (table.set == set_name)]
        summary.append({
            "recipe": rname, "set": set_name, "omega": official_score(values),
            "auc_s": floored_hmean(v.auc_source for v in values.values()),
            "auc_t": floored_hmean(v.auc_target for v in values.values()),
            "pauc": floored_hmean(v.pauc for v in values.values()),
            "mean_auc_s": float(np.mean(sub.auc_s)),
            "mean_auc_t": float(np.mean(sub.auc_t)),
            "mean_t_minus_s": float(np.mean(sub.auc_t) - np.mean(sub.auc_s)),
            "shared_s": shared_s.get((rname, set_name), 0.0),
            "fit_score_s": float((sub.fit_s + sub.score_s).sum())
            + shared_s.get((rname, set_name), 0.0),
        })
    pd.set_option("display.width", 200)
    print("\nper machine type (h-mean = of AUC-s, AUC-t, pAUC; seconds = fit + score)")
    print(table.assign(fit_score_s=table.fit_s + table.score_s)
          .drop(columns=["fit_s", "score_s", "features_s", "wall_s"])
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nsummary (official score Omega and h-means per set)")
    print(pd.DataFrame(summary).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
