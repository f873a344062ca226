"""Does the hedge stay close to its best member? Per novel machine type: Ω of a ``hedge``
recipe and of each of its members run alone (the same recipe with one view and one backend),
on synthetic novel types never used to build it: the named novel types and random types.

Per machine type the printed "Ω" is the h-mean of its AUC-s, AUC-t and pAUC (the official
score of that type alone); "gap" = best member's Ω - the hedge's Ω (positive: the hedge is
worse). Summary per data seed and over all: the hedge's set Ω vs each member's set Ω, mean gap
and worst gap. Targets (issue 15): mean gap <= 0.02 and worst gap <= 0.05.

    nice .venv/bin/python bench/hedge.py --root /tmp/hedge-bench --seeds 0 1 --random-types 8
    nice .venv/bin/python bench/hedge.py --recipe path/to/recipe.json ...   # another hedge
    nice .venv/bin/python bench/hedge.py --recipe hedge_logz_knn --family-draws 6 --root /tmp/small
        # the novel types of the family-held-out bench draws (bench/draws.py; the same
        # ROOT/draw<d>/novel trees bench/shipped.py and bench/selection.py write)

Data are generated under ``ROOT/seed<S>`` (reused when present); features are cached in
``--cache-dir`` (default: ``ROOT/cache``), so every recipe after the first reads them.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from draws import family_draws, make_data

from automl_asd import synth
from automl_asd.data import scan
from automl_asd.evaluation.evaluate import evaluate_result
from automl_asd.evaluation.metrics import MachineMetrics, official_score
from automl_asd.pipeline import run_machine
from automl_asd.recipe import Recipe, load_recipe


def member_recipes(hedge: Recipe) -> dict[str, Recipe]:
    """One recipe per (view, backend) member of ``hedge`` (same everything else)."""
    params = dict(hedge.detector.params)
    out = {}
    for view in str(params["views"]).split("+"):
        for backend in str(params["backends"]).split("+"):
            d = hedge.to_dict()
            d["name"] = f"{view}.{backend}"
            d["detector"]["params"].update(views=view, backends=backend)
            out[d["name"]] = Recipe.from_dict(d)
    return out


def _short(member: str) -> str:
    """Column label of a member: mahalanobis -> maha, local_density -> ld, ... (16 chars)."""
    for long, short in (("mahalanobis_pooled", "mahaP"), ("mahalanobis_logz", "mahaLogz"),
                        ("mahalanobis", "maha"), ("knn_detrended", "knnDetr"),
                        ("local_density", "ld"), ("knn_euclidean", "knnE")):
        member = member.replace(long, short)
    return member[:16]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--root", type=Path, required=True, help="data folder (made if missing)")
    ap.add_argument("--recipe", default="hedge_pooled", help="hedge recipe (name or JSON)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--size", default="small", choices=tuple(synth.SIZES))
    ap.add_argument("--named", default=",".join(synth.NOVEL_MACHINE_TYPES),
                    help="named novel types ('' for none)")
    ap.add_argument("--random-types", type=int, default=8)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--family-draws", type=int, default=0,
                    help="instead of --seeds/--named/--random-types: the novel types of this "
                         "many family-held-out bench draws (ROOT/draw<d>/novel)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    hedge = load_recipe(args.recipe)
    if hedge.detector.name != "hedge":
        ap.error(f"--recipe {args.recipe}: detector is {hedge.detector.name}, not hedge")
    members = member_recipes(hedge)
    recipes = {"hedge": hedge, **members}
    cache = args.cache_dir or args.root / "cache"
    names = list(recipes)
    per: dict[str, dict[str, MachineMetrics]] = {n: {} for n in names}  # key: seed/type
    gaps: list[float] = []
    t_all = time.process_time()
    groups = (list(range(args.family_draws)) if args.family_draws
              else list(args.seeds))
    draws = family_draws(args.family_draws) if args.family_draws else []
    for seed in groups:
        t0 = time.perf_counter()
        if args.family_draws:
            _, root = make_data(draws[seed], args.root, size=args.size)
            types = list(draws[seed].novel_types)
        else:
            root = args.root / f"seed{seed}"
            types = [t for t in args.named.split(",") if t]
            types += synth.random_type_names(args.random_types, seed)
            synth.generate(root, machine_types=types, size=args.size, seed=seed)
        print(f"{'draw' if args.family_draws else 'seed'} {seed}: data for {len(types)} types "
              f"ready in {time.perf_counter() - t0:.0f} s", flush=True)
        machines = scan(root, machine_types=types)
        head = f"{'seed/type':<16} {'hedge':>6} | " + " ".join(f"{_short(m):>16}" for m in members)
        print(head + f" | {'best':>6} {'gap':>6}")
        for mt in types:
            key = f"{seed}/{mt}"
            for n, r in recipes.items():
                res = run_machine(r, machines[mt], cache_dir=cache, device="cpu")
                (per[n][key],) = evaluate_result(machines[mt], res).per_section.values()
            h = per["hedge"][key].score
            ms = [per[m][key].score for m in members]
            gap = max(ms) - h
            gaps.append(gap)
            print(f"{key:<16} {h:6.3f} | " + " ".join(f"{v:16.3f}" for v in ms)
                  + f" | {max(ms):6.3f} {gap:+6.3f}", flush=True)
        sub = {n: {k: v for k, v in d.items() if k.startswith(f"{seed}/")} for n, d in
               per.items()}
        print(f"{'seed ' + str(seed) + ' set Ω':<16} {official_score(sub['hedge']):6.3f} | "
              + " ".join(f"{official_score(sub[m]):16.3f}" for m in members) + "\n")
    print(f"all seeds: set Ω hedge {official_score(per['hedge']):.3f}; members "
          + ", ".join(f"{_short(m)} {official_score(per[m]):.3f}" for m in members))
    best_mean = max(float(np.mean([v.score for v in per[m].values()])) for m in members)
    print(f"mean per-type Ω: hedge {np.mean([v.score for v in per['hedge'].values()]):.3f}, "
          f"best single member {best_mean:.3f}")
    g = np.asarray(gaps)
    print(f"gap to the best member per type: mean {g.mean():+.3f} (target <= 0.02: "
          f"{'OK' if g.mean() <= 0.02 else 'FAIL'}), worst {g.max():+.3f} (target <= 0.05: "
          f"{'OK' if g.max() <= 0.05 else 'FAIL'}), types >0.05 below: {int((g > 0.05).sum())}"
          f"/{g.size}")
    print(f"CPU {time.process_time() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
