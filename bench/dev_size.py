"""Does a choice made on DCASE-size development data carry better than one made on small data?

``bench/full_size.py`` scores every candidate on novel machines rendered at the DCASE size, but
its selection rules still choose from development types at the ``small`` size (200 training
clips of 6 s per type). A user searches on their own development data, usually DCASE-sized
(990 + 10 training clips of 10 s, 200 test clips). This bench renders each draw's development
types at ``--dev-size`` too (the same machines: a random type depends only on (seed, name)),
scores the same candidates there, lets every selection rule choose from those numbers, and
compares, on the same DCASE-size novel machines:

* the pick from small development data (what ``full_size.py --all-candidates`` reports) and
  the pick from ``--dev-size`` development data: novel Ω, regret (best candidate − pick), ρ
  between the rule's objective and the novel Ω, how often both pick the same candidate;
* ρ between the two development objectives over the candidates (does the small development
  set rank the candidates as the big one does?);
* the ranking reliability of each development side (the share of the candidates' spread in
  the default rule's objective that is more than test-clip noise,
  :func:`~automl_asd.search.selection.ranking_variances`), per draw and pooled over draws: how
  much of ρ the development test clips allow at each size; and the novel side's (official Ω
  on the DCASE-size novel machines; needs their per-clip scores, kept by ``stored_omega`` since
  2026-12-06), with ``sqrt(dev × novel)``, about the highest mean ρ that test-clip noise
  allows on average over draws (``bench/selection.py`` measures the same for its own draws).

``--dev-only`` skips the novel side (no DCASE-size novel trees, rules or regret): it renders
and scores the development types at ``--dev-size`` and prints the two reliabilities only.

It reuses what the other benches stored: the small candidate table under ``--work``
(``bench/selection.py``) and the DCASE-size novel Ω under ``--full-work``
(``bench/full_size.py --all-candidates``); whatever is missing there is computed and stored.
A draw's DCASE-size novel tree is rendered only when one of its candidates' novel Ω is missing,
so once all are stored the tree can be deleted and the numbers still read back.
The DCASE-size development tree and its feature cache (~3 GB per draw) go under ``--dev-work``
and are deleted after each draw unless ``--keep``; the development scores are kept
(``<dev-work>/draw<d>/candidates/``), so a re-run only reads them back.

Usage::

    nice -n 5 .venv/bin/python bench/dev_size.py --work /tmp/small --full-work /tmp/full \\
        --dev-work /tmp/fulldev --draws 16 --draw-ids 0 1 2 3 --candidates 12
    nice -n 5 .venv/bin/python bench/dev_size.py --work /tmp/small --full-work /tmp/full \\
        --dev-work /tmp/fulldev --draws 6 --candidates 12 --dev-only
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
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
    ceiling_line,
    dev_scores,
    dev_variances,
    draws_from_args,
    has_table,
    make_data,
    make_novel,
    novel_variances,
    rule_name,
    rule_picks,
    spearman,
    stored_omega,
    ties_line,
)

from automl_asd import synth
from automl_asd.data import scan
from automl_asd.search.selection import SelectionRule, pooled_reliability
from automl_asd.search.space import load_space

SIDES = ("small", "big")  # where the development numbers come from


def _side(picks: dict[str, tuple[dict[str, Any], list[float], int]],
          cands: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per rule: the pick, its novel Ω at the DCASE size, regret, ρ(objective, novel Ω), ties."""
    oracle = max(c["novel_omega"] for c in cands)
    return {name: {"pick": c["trial_id"], "novel": c["novel_omega"],
                   "regret": oracle - c["novel_omega"], "ties": ties, "objectives": objs,
                   "rho": spearman(objs, [x["novel_omega"] for x in cands])}
            for name, (c, objs, ties) in picks.items()}


def _draw(draw: Any, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    small_dev_root, small_novel_root = make_data(draw, args.work, size=args.size)
    # rendered only if some candidate's novel Ω is not stored yet (a read-back needs no tree)
    big_novel = None if args.dev_only else Lazy(lambda: scan(make_novel(
        draw, args.full_work, size=args.novel_size, workers=args.workers)))
    big_dev_root = args.dev_work / f"draw{draw.index}" / "dev"
    store = args.dev_work / f"draw{draw.index}" / "candidates"
    space = load_space(args.space)
    recipes = candidate_recipes(space, draw.index, draw.seed, args.candidates)
    missing = not all(has_table(r, store) for r in recipes)
    if missing:
        synth.generate(big_dev_root, machine_types=list(draw.dev_types), size=args.dev_size,
                       seed=draw.seed, workers=args.workers)
    t_data = time.perf_counter() - t0
    small_dev, small_novel = scan(small_dev_root), scan(small_novel_root)
    big_dev = scan(big_dev_root) if missing else None
    small_cache, big_cache = args.work / "cache", args.full_work / "cache"
    dev_cache = args.dev_work / "cache"
    novel_store = args.full_work / f"draw{draw.index}" / "candidates"
    t0 = time.perf_counter()
    tables: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for i, recipe in enumerate(recipes):
        small = candidate_scores(recipe, small_dev, small_novel, small_cache,
                                 args.work / f"draw{draw.index}" / "candidates")
        novel = (math.nan if big_novel is None else
                 stored_omega(recipe, big_novel, big_cache, novel_store))
        big = dev_scores(recipe, big_dev, dev_cache, store)
        for side, table in (("small", small), ("big", big)):
            tables[side].append({"trial_id": f"c{i}", "order": i, **table,
                                 "novel_omega": novel})
        novel_part = "" if big_novel is None else f"; novel Ω {args.novel_size} {novel:.4f}"
        print(f"  draw {draw.index} c{i}: dev Ω {args.size} {small['dev_omega']:.4f} / "
              f"{args.dev_size} {big['dev_omega']:.4f}{novel_part} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    t_eval = time.perf_counter() - t0
    if big_novel is not None:  # rendering the novel tree is data preparation, not scoring
        t_data, t_eval = t_data + big_novel.seconds, t_eval - big_novel.seconds
    if not args.keep:
        shutil.rmtree(big_dev_root, ignore_errors=True)
        shutil.rmtree(dev_cache, ignore_errors=True)
    variances = {side: dev_variances(tables[side]) for side in SIDES}
    rel = {side: pooled_reliability([variances[side]]) for side in SIDES}
    rho_dev = spearman([c["dev_omega"] for c in tables["small"]],
                       [c["dev_omega"] for c in tables["big"]])
    if args.dev_only:
        print(f"draw {draw.index} (data {t_data:.0f} s, scoring {t_eval:.0f} s): development "
              f"reliability {args.size} {rel['small']:.3f}, {args.dev_size} {rel['big']:.3f}; "
              f"ρ of the two dev Ω {rho_dev:.3f}", flush=True)
        return {"draw": draw.index, "seed": draw.seed, "dev": list(draw.dev_types),
                "variances": variances, "rho_dev_small_big": rho_dev,
                "seconds_data": t_data, "seconds_eval": t_eval}
    variances["novel"] = novel_variances({f"c{i}": r for i, r in enumerate(recipes)},
                                         novel_store)
    rules = {side: _side(rule_picks(tables[side], draw.seed), tables[side]) for side in SIDES}
    default = rule_name(SelectionRule())
    out = {"draw": draw.index, "seed": draw.seed, "held_out": list(draw.novel_families),
           "dev": list(draw.dev_types), "novel": list(draw.novel_types),
           "oracle": max(c["novel_omega"] for c in tables["big"]),
           "rho_dev_small_big": rho_dev, "variances": variances,
           "rules": rules, "seconds_data": t_data, "seconds_eval": t_eval}
    s, b = rules["small"][default], rules["big"][default]
    print(f"draw {draw.index} ({'+'.join(draw.novel_families)} held out; data {t_data:.0f} s, "
          f"scoring {t_eval:.0f} s): default rule picks {s['pick']} from {args.size} dev "
          f"(novel Ω {s['novel']:.4f}, regret {s['regret']:.4f}) and {b['pick']} from "
          f"{args.dev_size} dev (novel Ω {b['novel']:.4f}, regret {b['regret']:.4f}); ρ of the "
          f"two dev Ω {out['rho_dev_small_big']:.3f}; reliability: development "
          f"{rel['small']:.3f} / {rel['big']:.3f}, novel "
          f"{pooled_reliability([variances['novel']]):.3f}", flush=True)
    return out


def _reliability_lines(draws: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The reliability of each development side (and of the novel side, when its per-clip
    scores are kept), per draw and pooled over the draws; with the novel side, the ceiling on
    the mean ρ that test-clip noise allows, ``sqrt(dev × novel)``, for each development size."""
    pooled, parts = {}, {}
    sides = [("small", f"development at {args.size}"), ("big", f"development at {args.dev_size}")]
    if not args.dev_only:
        sides.append(("novel", f"novel at {args.novel_size}"))
    for side, what in sides:
        parts[side] = [tuple(d["variances"][side]) for d in draws]
        per = [pooled_reliability([p]) for p in parts[side]]
        pooled[side] = pooled_reliability(parts[side])
        known = [x for x in per if math.isfinite(x)]
        spread = (f"per draw mean {np.mean(known):.3f} (min {min(known):.3f}, max "
                  f"{max(known):.3f})" if known else "per draw")
        print(f"reliability, {what}: pooled over {len(draws)} draws {pooled[side]:.3f}; "
              f"{spread}: " + ", ".join(f"{x:.2f}" for x in per))
    if "novel" in pooled:
        print("ceiling on the mean ρ that test-clip noise allows, sqrt(dev × novel): "
              f"development at {args.size} {math.sqrt(pooled['small'] * pooled['novel']):.3f}, "
              f"at {args.dev_size} {math.sqrt(pooled['big'] * pooled['novel']):.3f}")
        default = rule_name(SelectionRule())
        for side, size in (("small", args.size), ("big", args.dev_size)):
            line = ceiling_line(parts[side], parts["novel"],
                                [d["rules"][side][default]["rho"] for d in draws])
            print(f"development at {size}, {line}")


def _ms(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return "n/a"
    se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return f"{v.mean():.4f} (SE {se:.4f}, max {v.max():.4f})"


def _paired(a: list[float], b: list[float]) -> str:
    """Mean of ``a - b`` and the standard error of that paired difference."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    return f"{d.mean():+.4f} (SE {se:.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser, draws=4)
    parser.add_argument("--full-work", type=Path, required=True,
                        help="the novel types at --dev-size and their stored scores "
                             "(bench/full_size.py's --full-work)")
    parser.add_argument("--dev-work", type=Path, required=True,
                        help="scratch dir for the development types at --dev-size")
    parser.add_argument("--dev-size", default="full", choices=tuple(synth.SIZES),
                        help="size of the big development side (full)")
    parser.add_argument("--novel-size", default="full", choices=tuple(synth.SIZES),
                        help="size of the novel types under --full-work (full)")
    add_candidate_args(parser)
    parser.add_argument("--keep", action="store_true",
                        help="keep the big development trees and their feature cache")
    parser.add_argument("--dev-only", action="store_true",
                        help="only the development reliability at both sizes (no novel side)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    draws = [_draw(d, args) for d in draws_from_args(args)]
    s, b = args.size, args.dev_size
    ids = ", ".join(str(d["draw"]) for d in draws)
    if args.dev_only:
        print(f"\n== {len(draws)} family-held-out draws ({ids}): development at {s} and at {b} "
              f"({args.candidates} + 1 candidates of space {args.space}; "
              f"{time.perf_counter() - t0:.0f} s)")
        print("ρ between the dev Ω at the two sizes, per draw: "
              + ", ".join(f"{d['rho_dev_small_big']:.2f}" for d in draws))
        _reliability_lines(draws, args)
        if args.json:
            args.json.write_text(json.dumps(draws, indent=2))
        return
    print(f"\n== {len(draws)} family-held-out draws ({ids}): novel machines at "
          f"{args.novel_size}, development at {s} or at {b} ({args.candidates} + 1 candidates of "
          f"space {args.space}; {time.perf_counter() - t0:.0f} s)")
    print(f"best candidate (oracle) novel Ω {_ms([d['oracle'] for d in draws])}; ρ between the "
          f"dev Ω at {s} and at {b}, per draw: "
          + ", ".join(f"{d['rho_dev_small_big']:.2f}" for d in draws))
    default = rule_name(SelectionRule())
    base = {side: [d["rules"][side][default]["regret"] for d in draws] for side in SIDES}
    print(f"| rule | novel Ω, dev {s} | novel Ω, dev {b} | regret, dev {s} | regret, dev {b} | "
          f"vs default, dev {b} | ρ, dev {s} | ρ, dev {b} | same pick |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in draws[0]["rules"]["small"]:
        rs = {side: [d["rules"][side][name] for d in draws] for side in SIDES}
        same = sum(x["pick"] == y["pick"] for x, y in zip(rs["small"], rs["big"], strict=True))
        print(f"| {name} | {np.mean([r['novel'] for r in rs['small']]):.4f} | "
              f"{np.mean([r['novel'] for r in rs['big']]):.4f} | "
              f"{_ms([r['regret'] for r in rs['small']])} | "
              f"{_ms([r['regret'] for r in rs['big']])} | "
              f"{_paired([r['regret'] for r in rs['big']], base['big'])} | "
              f"{np.nanmean([r['rho'] for r in rs['small']]):.2f} | "
              f"{np.nanmean([r['rho'] for r in rs['big']]):.2f} | {same}/{len(draws)} |")
    print(f"default rule ({default}): regret with {b} dev − with {s} dev, per draw: "
          + ", ".join(f"{x - y:+.4f}" for x, y in zip(base["big"], base["small"], strict=True))
          + f"; mean {_paired(base['big'], base['small'])}")
    for side, size in (("small", s), ("big", b)):
        print(f"dev at {size}: " + ties_line(default, [(d["rules"][side][default]["ties"],
                                                         d["rules"][side][default]["regret"])
                                                        for d in draws]))
    _reliability_lines(draws, args)
    if args.json:
        args.json.write_text(json.dumps(draws, indent=2))


if __name__ == "__main__":
    main()
