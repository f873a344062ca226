"""Which selection rule carries to unseen machine types? Measured over several synthetic draws.

Each draw has its own generator seed AND its own development / novel split:

* ``--split named`` (default): the 11 named synthetic types split into 7 development and 4
  novel types (draw 0 is the generator's own split);
* ``--split families``: whole machine FAMILIES are held out (``bench/draws.py``): development =
  random types (``synth --random-types``) of the other families, novel = random types of the
  held-out families only (``--named`` adds the named types on the matching side); the held-out
  families rotate so that 4 draws of 2 hold every one of the 8 families out once.

On each draw the same candidate trials — the space's
reference point plus ``--candidates`` random points of the search space (a random search, so
every rule chooses from the same table) — are evaluated on the development types (per-type
metrics and per-clip scores) and on the novel types. Every selection rule (objective x final
pick, :mod:`automl_asd.search.selection`) then freezes one candidate from the development numbers
only; we report:

* ``novel Ω``: the frozen candidate's Ω on the novel types;
* ``regret``: best novel Ω among all candidates − the frozen candidate's novel Ω;
* ``ρ``: Spearman correlation between the rule's objective and the novel Ω over all candidates;
* ``ties``: how many of the top candidates beat the frozen one on >= 25 % of paired bootstrap
  resamples of the development clips (near ties, what a search's report counts under "How
  sure is the pick?"); the summary splits the default rule's regret by draws with and without.
* ranking reliability: on each side (development: the default rule's objective; novel: the
  official Ω), the share of the candidates' variance that is more than test-clip noise
  (:func:`~automl_asd.search.selection.ranking_variances`), per draw and pooled over draws, and
  ``sqrt(dev * novel)``, about the highest mean ρ that noise allows whatever the rule. Needs the
  candidates' novel per-clip scores (kept beside their tables since 2026-12-06; NaN for
  tables stored before).

Per draw, then mean, standard deviation and min..max over draws; the rule with the lowest mean
regret is the measured default. The cheap shipped recipes are scored on each draw's novel types
for reference (``bench/shipped.py`` tabulates every shipped recipe on the same draws).

Usage::

    nice -n 10 .venv/bin/python bench/selection.py                     # 4 draws, tiny, demo
    nice -n 10 .venv/bin/python bench/selection.py --draws 6 --size small --candidates 40
    nice -n 15 .venv/bin/python bench/selection.py --split families --size small --draws 4 \
        --candidates 20 --work /tmp/sel                      # families held out of dev

Features are cached in ``<work>/cache`` (reruns on the same work dir reuse data and features;
candidates' and shipped recipes' scores are kept under ``<work>/draw<d>/``, so a re-run of a
draw only recomputes the rules).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from draws import (
    candidate_recipes,
    candidate_scores,
    ceiling_line,
    dev_variances,
    family_draws,
    gain_tag,
    make_data,
    novel_variances,
    rule_name,
    rule_picks,
    spearman,
    stored_omega,
    ties_line,
)

from automl_asd import synth
from automl_asd.data import scan
from automl_asd.recipe import load_recipe
from automl_asd.search.selection import (
    SelectionRule,
    pooled_reliability,
)
from automl_asd.search.space import load_space

ALL_TYPES = tuple(synth.DEV_MACHINE_TYPES) + tuple(synth.NOVEL_MACHINE_TYPES)
SHIPPED = ("searched_pooled_logz", "fast_default", "searched_pooled_mahalanobis", "hedge_pooled")


def _split(draw: int, n_novel: int) -> tuple[list[str], list[str]]:
    """Draw 0 is the generator's own split; later draws hold out other types."""
    if draw == 0:
        return list(synth.DEV_MACHINE_TYPES), list(synth.NOVEL_MACHINE_TYPES)
    rng = np.random.default_rng(1000 + draw)
    novel = sorted(rng.choice(ALL_TYPES, size=n_novel, replace=False).tolist())
    return [t for t in ALL_TYPES if t not in novel], novel


def _spread(values: list[float]) -> str:
    """``mean ± std [min..max]`` of finite values, 27 characters wide."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return f"{'n/a':>27}"
    return f"{v.mean():7.4f} ±{v.std():6.4f} [{v.min():.3f}..{v.max():.3f}]".rjust(27)


def _data(draw: int, args: argparse.Namespace,
          work: Path) -> tuple[int, list[str], list[str], Path, Path, str]:
    """Seed, dev and novel types, their roots, and a label for the draw's split."""
    if args.split == "families":
        fd = family_draws(draw + 1, seed0=args.seed0, holdout=args.holdout,
                          novel_per_family=args.novel_per_family, named=args.named)[draw]
        dev_root, novel_root = make_data(fd, work, size=args.size,
                                         anomaly_gain=args.anomaly_gain)
        return (fd.seed, list(fd.dev_types), list(fd.novel_types), dev_root, novel_root,
                f"held-out families {'+'.join(fd.novel_families)}")
    seed = args.seed0 + draw
    dev_types, novel_types = _split(draw, args.novel_types)
    root = work / f"draw{draw}"
    dev_root, novel_root = root / "dev", root / "novel"
    if not dev_root.is_dir():
        synth.generate(dev_root, machine_types=dev_types, size=args.size, seed=seed,
                       anomaly_gain=args.anomaly_gain)
    if not novel_root.is_dir():
        synth.generate(novel_root, machine_types=novel_types, size=args.size, seed=seed + 100,
                       anomaly_gain=args.anomaly_gain)
    return seed, dev_types, novel_types, dev_root, novel_root, "named types"


def _reliability(cands: list[dict[str, Any]], store: Path,
                 default: dict[str, float]) -> dict[str, float]:
    """How reliably the draw's development and novel test clips rank the candidates: the
    candidates' variance and the test-clip noise in it
    (:func:`draws.dev_variances`, :func:`draws.novel_variances`), and the default rule's ρ."""
    dev = dev_variances(cands)
    novel = novel_variances({str(c["trial_id"]): c["recipe"] for c in cands}, store)
    return {"dev_total": dev[0], "dev_noise": dev[1], "novel_total": novel[0],
            "novel_noise": novel[1], "rho": default["rho"]}


def _pooled(rel: list[dict[str, float]], side: str) -> float:
    """The reliability of a side pooled over draws
    (:func:`~automl_asd.search.selection.pooled_reliability`)."""
    return pooled_reliability((r[f"{side}_total"], r[f"{side}_noise"]) for r in rel)


def _draw(draw: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    seed, dev_types, novel_types, dev_root, novel_root, split = _data(draw, args, work)
    root = work / f"draw{draw}"
    t_data = time.perf_counter() - t0
    dev, novel = scan(dev_root), scan(novel_root)
    space = load_space(args.space)
    recipes = candidate_recipes(space, draw, seed, args.candidates)
    cache = work / "cache"
    cands: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    order = range(len(recipes) - 1, -1, -1) if args.reverse else range(len(recipes))
    for i in order:
        recipe = recipes[i]
        cands.append({"trial_id": f"c{i}", "order": i, "recipe": recipe,
                      **candidate_scores(recipe, dev, novel, cache, root / "candidates")})
    cands.sort(key=lambda c: int(c["order"]))
    t_eval = time.perf_counter() - t0
    best_novel = max(c["novel_omega"] for c in cands)
    results: dict[str, dict[str, float]] = {}
    picks = rule_picks(cands, seed, top=args.top, n_boot=args.n_boot)
    for name, (c, objs, ties) in picks.items():
        results[name] = {"novel": c["novel_omega"], "dev": c["dev_omega"],
                         "regret": best_novel - c["novel_omega"],
                         "rho": spearman(objs, [x["novel_omega"] for x in cands]),
                         "ties": ties}
        path = root / f"recipe_{name.replace('/', '_')}.json"
        path.write_text(c["recipe"].to_json())
    reliability = _reliability(cands, root / "candidates", results[rule_name(SelectionRule())])
    # kept by content hash where bench/full_size.py keeps them: a re-run reads them back
    shipped = {name: stored_omega(load_recipe(name), novel, cache, root / "shipped")
               for name in SHIPPED}
    print(f"\n== draw {draw}: seed {seed}, {split}; dev {', '.join(dev_types)}; novel "
          f"{', '.join(novel_types)} ({len(cands)} candidates; data {t_data:.0f} s, "
          f"evaluation {t_eval:.0f} s)")
    print(f"  best novel Ω among candidates {best_novel:.4f}; reference (candidate 0) novel Ω "
          f"{cands[0]['novel_omega']:.4f}; shipped: "
          + ", ".join(f"{k} {v:.4f}" for k, v in shipped.items()))
    print(f"  {'rule':<40} {'dev Ω':>7} {'novel Ω':>8} {'regret':>7} {'ρ':>6} {'ties':>5}")
    for name, r in results.items():
        print(f"  {name:<40} {r['dev']:7.4f} {r['novel']:8.4f} {r['regret']:7.4f} "
              f"{r['rho']:6.3f} {r['ties']:5d}")
    dev_r, novel_r = _pooled([reliability], "dev"), _pooled([reliability], "novel")
    print(f"  ranking reliability (bootstrap of the test clips): dev {dev_r:.3f}, novel "
          f"{novel_r:.3f}; ceiling on ρ {math.sqrt(dev_r * novel_r):.3f}; default's ρ "
          f"{reliability['rho']:.3f}")
    out = {"draw": draw, "seed": seed, "split": split, "dev": dev_types, "novel": novel_types,
           "results": results, "shipped": shipped, "best_novel": best_novel,
           "reference_novel": cands[0]["novel_omega"], "reliability": reliability}
    (root / "result.json").write_text(json.dumps(out, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--seed0", type=int, default=0)
    parser.add_argument("--size", default="tiny", choices=("tiny", "small", "full"))
    parser.add_argument("--space", default="demo")
    parser.add_argument("--candidates", type=int, default=30,
                        help="random points of the space per draw (plus its reference)")
    parser.add_argument("--novel-types", type=int, default=4,
                        help="--split named: novel types per draw")
    parser.add_argument("--split", default="named", choices=("named", "families"),
                        help="named: split the 11 named types; families: hold whole machine "
                             "families out (random types, bench/draws.py)")
    parser.add_argument("--holdout", type=int, default=2,
                        help="--split families: families held out per draw")
    parser.add_argument("--novel-per-family", type=int, default=2,
                        help="--split families: random novel types per held-out family")
    parser.add_argument("--named", action="store_true",
                        help="--split families: add the named types (by family) to each side")
    parser.add_argument("--top", type=int, default=5, help="bootstrap pick: candidates")
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--work", type=Path, default=None, help="scratch dir (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--draw-ids", type=int, nargs="+", default=None,
                        help="run only these draws (e.g. in several processes on one --work)")
    parser.add_argument("--reverse", action="store_true",
                        help="evaluate the candidates last to first (a second process on the "
                             "same --work and draw then shares the work; same results)")
    parser.add_argument("--anomaly-gain", type=float, default=1.0, metavar="G",
                        help="render every draw's anomalies G times as strong (development and "
                             "novel; synth --anomaly-gain); everything of a gain other than 1 "
                             "lives under <work>/gain<G>/, so stored tables never mix gains")
    parser.add_argument("--summarize", action="store_true",
                        help="only print the mean table of every <work>/draw*/result.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_selection_"))
    if tag := gain_tag(args.anomaly_gain):
        work = work / tag
    work.mkdir(parents=True, exist_ok=True)
    gain = "" if args.anomaly_gain == 1.0 else f", anomaly gain {args.anomaly_gain:g}"
    print(f"space {args.space}, size {args.size}{gain}, {args.draws} draws, {args.candidates}+1 "
          f"candidates per draw; work dir {work}")
    t0 = time.perf_counter()
    if args.summarize:
        draws = [json.loads(p.read_text()) for p in sorted(work.glob("draw*/result.json"))]
    else:
        ids = args.draw_ids if args.draw_ids is not None else list(range(args.draws))
        draws = [_draw(d, args, work) for d in ids]
    rules = list(draws[0]["results"])
    print(f"\n== over {len(draws)} draws ({time.perf_counter() - t0:.0f} s): mean ± std "
          "[min..max]")
    print(f"  {'rule':<42} {'novel Ω':>27} {'regret':>27} {'ρ':>27}")
    means = {}
    for name in rules:
        nov = [d["results"][name]["novel"] for d in draws]
        reg = [d["results"][name]["regret"] for d in draws]
        rho = [d["results"][name]["rho"] for d in draws]
        means[name] = (float(np.mean(nov)), float(np.mean(reg)), float(np.max(reg)),
                       float(np.nanmean(rho)))
        print(f"  {name:<42} {_spread(nov)} {_spread(reg)} {_spread(rho)}")
    print(f"  {'best candidate (oracle)':<42} {_spread([d['best_novel'] for d in draws])}")
    print(f"  {'reference point of the space':<42} "
          f"{_spread([d['reference_novel'] for d in draws])}")
    for name in SHIPPED:
        if all(name in d["shipped"] for d in draws):
            print(f"  {'shipped ' + name:<42} {_spread([d['shipped'][name] for d in draws])}")
    rel = [d["reliability"] for d in draws if "reliability" in d]
    if rel:
        dev_r, novel_r = _pooled(rel, "dev"), _pooled(rel, "novel")
        print(f"  ranking reliability, pooled over {len(rel)} draws (bootstrap of the test "
              f"clips): development {dev_r:.3f}, novel {novel_r:.3f}; ceiling on ρ "
              f"sqrt(dev * novel) {math.sqrt(dev_r * novel_r):.3f}; default rule's ρ "
              f"{np.nanmean([r['rho'] for r in rel]):.3f}")
        parts = {side: [(r[f"{side}_total"], r[f"{side}_noise"]) for r in rel]
                 for side in ("dev", "novel")}
        each = {side: [pooled_reliability([p]) for p in parts[side]] for side in parts}
        print(f"  per draw: development {_spread(each['dev'])}, novel {_spread(each['novel'])}")
        print("  " + ceiling_line(parts["dev"], parts["novel"], [r["rho"] for r in rel]))
    default = rule_name(SelectionRule())
    print(ties_line(default, [(d["results"][default].get("ties"), d["results"][default]["regret"])
                              for d in draws]))
    winner = min(rules, key=lambda r: (means[r][1], -means[r][0]))
    print(f"\nlowest mean regret: {winner} (novel Ω {means[winner][0]:.4f}, regret "
          f"{means[winner][1]:.4f}, ρ {means[winner][3]:.3f})")
    if args.json:
        args.json.write_text(json.dumps({"draws": draws, "means": means, "winner": winner},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
