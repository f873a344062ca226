"""Freeze one trial or fuse the top few? Novel Ω of a fused top-k, measured over draws.

The search freezes ONE trial. Whether the choice carries to unseen machines is limited by how
well the development objective ranks the candidates (``bench/selection.py``: regret). A common
AutoML answer is to freeze an ensemble of the best few instead of the single best. This bench
measures what that would give here, before any of it is built: on each family-held-out draw
(``bench/draws.py``; pass the same ``--work`` as the other benches to reuse data and features)
the space's reference point plus ``--candidates`` random points (the candidates of
``bench/selection.py``, same seeds) are scored on the development types (``--objective``:
``leave_one_type_out`` by default, the search's default when the figures in
docs/benchmarks.md were measured; the search's default is now ``mean``) and on the novel types
(per-clip scores). Then

* ``single``: the best candidate by the objective (the search's ``pick: best``);
* ``top-k``: the k best distinct candidates by the objective (distinct = behaviour hash),
  fused per (type, section): each member's novel scores are z-scored over that section's test
  clips (label-free, but *transductive*: it uses the test clips' score distribution, which a
  product would replace by each member's training self-scores, as the ``hedge`` family does),
  then averaged;
* ``oracle``: the best single candidate on the novel types (for the regret).

Per draw and as mean ± std over draws: novel Ω, regret (oracle − rule) and how often the fused
top-k is at least as good as the single pick. Candidates' scores are stored under
``<work>/draw<i>/ensemble_candidates/`` so a rerun reuses them.

Usage::

    nice -n 5 .venv/bin/python bench/ensemble_pick.py --work /tmp/small --draws 6
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from draws import add_draw_args, candidate_recipes, draws_from_args, make_data

from automl_asd.data import scan
from automl_asd.evaluation.metrics import machine_metrics, official_score
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.io.clip_scores import ClipScores, load_clip_scores, save_clip_scores
from automl_asd.search.selection import OBJECTIVES, objective_value, ranked_distinct
from automl_asd.search.space import load_space


def _scored(recipe: Any, dev: Any, novel: Any, cache: Path, store: Path) -> dict[str, Any]:
    """Dev per-section AUCs, novel per-clip scores and novel Ω of ``recipe``, kept under
    ``store/<content hash>/`` (the package's clip-score file + one JSON) for reruns."""
    folder = store / recipe.content_hash()[:16]
    meta_path = folder / "meta.json"
    clips = load_clip_scores(folder) if meta_path.is_file() else None
    if clips is not None:
        meta = json.loads(meta_path.read_text())
        return {"aucs": {k: tuple(v) for k, v in meta["aucs"].items()}, "clips": clips,
                "novel_omega": meta["novel_omega"]}
    d = evaluate_recipe(recipe, dev, cache_dir=cache, device="cpu")
    n = evaluate_recipe(recipe, novel, cache_dir=cache, device="cpu")
    aucs = {"/".join(k): (m.auc_source, m.auc_target, m.pauc) for k, m in d.per_type.items()}
    folder.mkdir(parents=True, exist_ok=True)
    save_clip_scores(folder, n.per_clip)
    meta_path.write_text(json.dumps({"aucs": aucs, "novel_omega": n.omega}))
    return {"aucs": aucs, "clips": n.per_clip, "novel_omega": n.omega}


def fused_omega(members: list[ClipScores]) -> float:
    """Official Ω of the mean of the members' per-section z-scored scores."""
    per = {}
    for key in members[0]:
        y, dom, _ = members[0][key]
        z = [(m[key][2] - m[key][2].mean()) / (m[key][2].std() + 1e-12) for m in members]
        per[key] = machine_metrics(y, dom, np.mean(z, axis=0))
    return float(official_score(per))


def rank(cands: list[dict[str, Any]], objective: str) -> list[Any]:
    """``cands`` (each with its development ``aucs``) ranked by ``objective``, one per recipe
    (the search's ``pick: best`` order)."""
    for c in cands:
        c["objective"] = objective_value(objective, c["aucs"])
    return ranked_distinct(cands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser)
    parser.add_argument("--space", default="demo")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 3, 5],
                        help="ensemble sizes to measure (default 2 3 5)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="leave_one_type_out",
                        help="development objective that ranks the candidates (default "
                             "leave_one_type_out, as in docs/benchmarks.md; the search's "
                             "default is mean)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    space = load_space(args.space)
    names = ["single", *(f"top-{k}" for k in args.ks), "oracle"]
    table: dict[str, list[float]] = {n: [] for n in names}
    t0 = time.perf_counter()
    for draw in draws_from_args(args):
        dev_root, novel_root = make_data(draw, args.work, size=args.size)
        dev, novel = scan(dev_root), scan(novel_root)
        cands = []
        for i, recipe in enumerate(candidate_recipes(space, draw.index, draw.seed,
                                                     args.candidates)):
            cands.append({"order": i, "behaviour_hash": recipe.behaviour_hash(),
                          **_scored(recipe, dev, novel, args.work / "cache",
                                    args.work / f"draw{draw.index}" / "ensemble_candidates")})
        ranked = rank(cands, args.objective)
        row = {"single": ranked[0]["novel_omega"],
               "oracle": max(c["novel_omega"] for c in cands)}
        for k in args.ks:
            row[f"top-{k}"] = fused_omega([c["clips"] for c in ranked[:k]])
        for n in names:
            table[n].append(row[n])
        print(f"draw {draw.index} ({'+'.join(draw.novel_families)} held out; "
              f"{len(ranked)} distinct of {len(cands)}; {time.perf_counter() - t0:.0f} s): "
              + ", ".join(f"{n} {row[n]:.4f}" for n in names), flush=True)
    oracle = np.array(table["oracle"])
    single = np.array(table["single"])
    print(f"\n== novel Ω over {args.draws} family-held-out draws (size {args.size}, space "
          f"{args.space}, {args.candidates} + 1 candidates; objective {args.objective})")
    print("| rule | novel Ω ± std | regret mean / max | draws >= single |")
    print("|---|---|---|---|")
    for n in names:
        v = np.array(table[n])
        regret = oracle - v
        print(f"| {n} | {v.mean():.4f} ± {v.std():.4f} | {regret.mean():.4f} / "
              f"{regret.max():.4f} | {int(np.sum(v >= single - 1e-12))} of {len(v)} |")


if __name__ == "__main__":
    main()
