"""Does a choice made on small development data carry to novel machines at the DCASE size?

The other benches score novel machine types at the ``small`` size (200 training clips of 6 s
per type) to stay within minutes on 2 cores. The product's real setting is the DCASE one: 990
source + 10 target training clips of 10 s, 200 test clips (``synth --size full``). This bench
keeps each family-held-out draw's development side and candidate table exactly as
``bench/selection.py --split families`` builds them (same seeds, same ``--work``, same stored
candidate scores), and additionally scores every candidate on the SAME novel machines rendered
at ``--novel-size`` (a random type's machine depends only on (seed, name), not on the size).

Per draw and as mean ± std over draws:

* the default rule's frozen candidate (``SelectionRule()``: ``mean`` / ``best`` since
  2026-12-04, ``leave_one_type_out`` / ``bootstrap_lower_bound`` before), its novel Ω at the
  small size and at ``--novel-size``;
* the space's reference point and the shipped recipes (``--recipes``) at both sizes;
* ρ between the small-size and the ``--novel-size`` novel Ω of every distinct recipe scored
  at both (does the small bench rank recipes the way the DCASE-sized data does?);
* regret and ρ(objective, novel Ω) at the small size; with ``--all-candidates`` (every
  candidate at ``--novel-size``: a frame-level hedge member costs minutes per full-size type
  on 2 cores) also the oracle, regret and ρ at ``--novel-size``;
* the same for every selection rule (objective × pick) in one closing table (the ``--novel-size``
  columns with ``--all-candidates`` only).

Full-size candidate results are stored under ``<full-work>/draw<d>/candidates/`` by content hash,
so a rerun only adds what is missing.

Usage::

    nice -n 5 .venv/bin/python bench/full_size.py --work /tmp/small --full-work /tmp/full \\
        --draws 4 --candidates 12
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from draws import (
    Lazy,
    add_candidate_args,
    add_draw_args,
    candidate_recipes,
    candidate_scores,
    draws_from_args,
    make_data,
    make_novel,
    rule_name,
    rule_picks,
    spearman,
    stored_omega,
    ties_line,
)

from automl_asd.data import scan
from automl_asd.recipe import load_recipe
from automl_asd.search.selection import SelectionRule
from automl_asd.search.space import load_space

RECIPES = ("hedge_logz_frame", "searched_pooled_logz", "searched_random_types_hedge",
           "fast_default")


def _rules(picks: dict[str, tuple[dict[str, Any], list[float], int]],
           cands: list[dict[str, Any]], big: bool) -> dict[str, dict[str, float]]:
    """Every selection rule's pick (:func:`draws.rule_picks`), scored on the novel types at the
    small size and (``big``: every candidate has ``big_omega``) at the big one."""
    out: dict[str, dict[str, float]] = {}
    for name, (c, objs, ties) in picks.items():
        r = {"small": c["novel_omega"], "ties": ties,
             "regret_small": max(x["novel_omega"] for x in cands) - c["novel_omega"],
             "rho_small": spearman(objs, [x["novel_omega"] for x in cands])}
        if big:
            r.update(big=c["big_omega"],
                     regret_big=max(x["big_omega"] for x in cands) - c["big_omega"],
                     rho_big=spearman(objs, [x["big_omega"] for x in cands]))
        out[name] = r
    return out


def _draw(draw: Any, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    dev_root, novel_root = make_data(draw, args.work, size=args.size)
    # the big tree is rendered only if some recipe's Ω on it is not stored yet
    big = Lazy(lambda: scan(make_novel(draw, args.full_work, size=args.novel_size,
                                       workers=args.workers)))
    t_data = time.perf_counter() - t0
    dev, novel = scan(dev_root), scan(novel_root)
    space = load_space(args.space)
    small_cache, big_cache = args.work / "cache", args.full_work / "cache"
    big_store = args.full_work / f"draw{draw.index}" / "candidates"
    cands: list[dict[str, Any]] = []
    recipes = {}
    t0 = time.perf_counter()
    for i, recipe in enumerate(candidate_recipes(space, draw.index, draw.seed,
                                                 args.candidates)):
        recipes[f"c{i}"] = recipe
        scores = candidate_scores(recipe, dev, novel, small_cache,
                                  args.work / f"draw{draw.index}" / "candidates")
        cands.append({"trial_id": f"c{i}", "order": i, "recipe": recipe.name, **scores})
    picks = rule_picks(cands, draw.seed)
    frozen, objectives, _ = picks[rule_name(SelectionRule())]  # the default rule's
    for c, objective in zip(cands, objectives, strict=True):
        c["objective"] = objective
    # At the big size: the frozen candidate and the reference, every candidate only on request
    # (a frame-level hedge member costs minutes per full-size type on 2 cores).
    for c in cands if args.all_candidates else [frozen, cands[0]]:
        c["big_omega"] = stored_omega(recipes[c["trial_id"]], big, big_cache, big_store)
        print(f"  draw {draw.index} {c['recipe']}: objective {c['objective']:.4f}, novel Ω "
              f"{args.size} {c['novel_omega']:.4f} / {args.novel_size} {c['big_omega']:.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    named = {name: load_recipe(name) for name in args.recipes}
    small_store = args.work / f"draw{draw.index}" / "shipped"
    shipped = {name: (stored_omega(r, novel, small_cache, small_store),
                      stored_omega(r, big, big_cache, big_store))
               for name, r in named.items()}
    t_eval = time.perf_counter() - t0
    # every recipe scored at both sizes, each behaviour once (the reference point is
    # fast_default): does the small bench rank them as the big one does?
    both = {recipes[c["trial_id"]].behaviour_hash(): (c["novel_omega"], c["big_omega"])
            for c in cands if "big_omega" in c}
    both.update({named[k].behaviour_hash(): v for k, v in shipped.items()})
    pairs = list(both.values())
    out: dict[str, Any] = {
        "draw": draw.index, "seed": draw.seed, "held_out": list(draw.novel_families),
        "novel": list(draw.novel_types), "frozen": frozen["recipe"],
        "frozen_small": frozen["novel_omega"], "frozen_big": frozen["big_omega"],
        "reference_small": cands[0]["novel_omega"], "reference_big": cands[0]["big_omega"],
        "oracle_small": max(c["novel_omega"] for c in cands),
        "rho_objective_small": spearman([c["objective"] for c in cands],
                                        [c["novel_omega"] for c in cands]),
        "rho_small_big": spearman([a for a, _ in pairs], [b for _, b in pairs]),
        "n_rho_small_big": len(pairs),
        "shipped": shipped, "seconds_data": t_data, "seconds_eval": t_eval,
    }
    out["regret_small"] = out["oracle_small"] - out["frozen_small"]
    out["rules"] = _rules(picks, cands, big=args.all_candidates)
    if args.all_candidates:
        out["oracle_big"] = max(c["big_omega"] for c in cands)
        out["regret_big"] = out["oracle_big"] - out["frozen_big"]
        out["rho_objective_big"] = spearman([c["objective"] for c in cands],
                                            [c["big_omega"] for c in cands])
    print(f"draw {draw.index} ({'+'.join(draw.novel_families)} held out; data {t_data:.0f} s, "
          f"scoring {t_eval:.0f} s): frozen {frozen['recipe']} novel Ω {args.size} "
          f"{out['frozen_small']:.4f} / {args.novel_size} {out['frozen_big']:.4f}; ρ({args.size}, "
          f"{args.novel_size}) over {len(pairs)} recipes {out['rho_small_big']:.3f}; shipped "
          + ", ".join(f"{k} {a:.4f}/{b:.4f}" for k, (a, b) in shipped.items()), flush=True)
    return out


def _ms(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return f"{v.mean():.4f} ± {v.std():.4f}" if v.size else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser, draws=4)
    parser.add_argument("--full-work", type=Path, required=True,
                        help="scratch dir for the novel types at --novel-size (+ their cache)")
    parser.add_argument("--novel-size", default="full", help="size of the novel types (full)")
    add_candidate_args(parser)
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES),
                        help="shipped recipes to score at both sizes")
    parser.add_argument("--all-candidates", action="store_true",
                        help="score every candidate at --novel-size (oracle, regret, ρ there)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    draws = [_draw(d, args) for d in draws_from_args(args)]
    s, b = args.size, args.novel_size
    print(f"\n== {len(draws)} family-held-out draws: development at {s}, novel machines at "
          f"{s} and {b} ({args.candidates} + 1 candidates of space {args.space}, rule "
          f"{SelectionRule().describe()}; {time.perf_counter() - t0:.0f} s)")
    print(f"| | novel Ω at {s} | novel Ω at {b} |")
    print("|---|---|---|")
    table = [("frozen by the default rule", "frozen_small", "frozen_big"),
             ("reference point of the space", "reference_small", "reference_big"),
             ("best candidate (oracle)", "oracle_small", "oracle_big"),
             ("regret (oracle − frozen)", "regret_small", "regret_big"),
             ("ρ(objective, novel Ω)", "rho_objective_small", "rho_objective_big")]
    for label, small_key, big_key in table:
        print(f"| {label} | {_ms([d[small_key] for d in draws])} | "
              f"{_ms([d[big_key] for d in draws if big_key in d])} |")
    for name in args.recipes:
        print(f"| shipped `{name}` | {_ms([d['shipped'][name][0] for d in draws])} | "
              f"{_ms([d['shipped'][name][1] for d in draws])} |")
    print(f"ρ between the novel Ω at {s} and at {b} of the recipes scored at both, per draw: "
          + ", ".join(f"{d['rho_small_big']:.3f} (n={d['n_rho_small_big']})" for d in draws))
    print(f"\nEvery selection rule (mean over the draws; at {b} with --all-candidates only):")
    print(f"| rule | novel Ω {s} | regret {s} | ρ {s} | novel Ω {b} | regret {b} | ρ {b} |")
    print("|---|---|---|---|---|---|---|")
    for name in draws[0]["rules"]:
        rs = [d["rules"][name] for d in draws]
        print(f"| {name} | " + " | ".join(
            _ms([r[k] for r in rs if k in r])
            for k in ("small", "regret_small", "rho_small", "big", "regret_big", "rho_big"))
            + " |")
    default = rule_name(SelectionRule())
    for key, size in (("regret_small", s), ("regret_big", b)):
        if all(key in d["rules"][default] for d in draws):
            print(f"at {size}: " + ties_line(default, [(d["rules"][default].get("ties"),
                                                        d["rules"][default][key])
                                                       for d in draws]))
    if args.json:
        args.json.write_text(json.dumps(draws, indent=2))


if __name__ == "__main__":
    main()
