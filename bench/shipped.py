"""Every shipped recipe on the family-held-out bench draws' novel machine types.

The draws are ``bench/draws.py``'s (the same ones ``bench/selection.py --split families``
uses; pass the same ``--work`` to reuse its data and feature cache): each draw has its own
seed and holds whole machine families out; the recipes are applied unchanged to the novel
types (random types of the held-out families) exactly as ``automl-asd apply`` would, and the
official Ω is computed per draw. The table gives, per recipe, Ω per draw, mean ± std and
min..max over draws, and the regret against the best shipped recipe of each draw (mean and
max): a recipe that is never far from the best of the shipped ones has a small max regret.

A recipe searched on development data that held every family (e.g. one shipped from a search
on ``synth --random-types``) has seen other instances of the held-out families, so its numbers
here are "unseen machines", not "unseen families"; ``bench/selection.py`` measures the latter.

Usage::

    nice -n 15 .venv/bin/python bench/shipped.py --work /tmp/sel --draws 4
    nice -n 15 .venv/bin/python bench/shipped.py --work /tmp/sel --networks   # + network recipes
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from draws import add_draw_args, draws_from_args, make_data

from automl_asd.data import scan
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.recipe import load_recipe, shipped_recipe_names

#: Network families (trained per type; minutes per type on CPU): only with ``--networks``.
NETWORK_PREFIXES = ("baseline_ae_", "margin_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser, draws=4)
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="recipe names or files (default: every shipped recipe without a "
                             "network; --networks adds those)")
    parser.add_argument("--networks", action="store_true",
                        help="also the network recipes (baseline_ae_*, margin_*)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = args.recipes or [n for n in shipped_recipe_names()
                             if args.networks or not n.startswith(NETWORK_PREFIXES)]
    draws = draws_from_args(args)
    cache = args.work / "cache"
    omega: dict[str, list[float]] = {n: [] for n in names}
    t0 = time.perf_counter()
    for draw in draws:
        print(draw.describe(), flush=True)
        _, novel_root = make_data(draw, args.work, size=args.size)
        novel = scan(novel_root)
        for name in names:
            t1 = time.perf_counter()
            res = evaluate_recipe(load_recipe(name), novel, cache_dir=cache, device="cpu")
            omega[name].append(res.omega)
            print(f"  {name:<32} Ω {res.omega:.4f} ({time.perf_counter() - t1:.0f} s)",
                  flush=True)
    table = np.array([omega[n] for n in names])  # recipes x draws
    regret = table.max(axis=0, keepdims=True) - table
    print(f"\n== novel Ω of every shipped recipe on {len(draws)} family-held-out draws "
          f"(size {args.size}, {time.perf_counter() - t0:.0f} s)")
    heads = " ".join(f"{'d' + str(d.index) + ' ' + '+'.join(d.novel_families):>13}"
                     for d in draws)
    print(f"| {'recipe':<28} | {heads} | mean Ω ± std  | min..max    | regret mean | max  |")
    order = np.argsort(-table.mean(axis=1))
    for i in order:
        per = " ".join(f"{v:13.3f}" for v in table[i])
        print(f"| {names[i]:<28} | {per} | {table[i].mean():.3f} ± {table[i].std():.3f} | "
              f"{table[i].min():.3f}..{table[i].max():.3f} | {regret[i].mean():11.3f} | "
              f"{regret[i].max():.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"draws": [d.describe() for d in draws],
                                         "omega": omega}, indent=2))


if __name__ == "__main__":
    main()
