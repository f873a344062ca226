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
``--cache-dir`` (default: ``ROOT/cache``), so every recipe after the first reads them. Each
recipe's per-clip scores of each type are stored in ``ROOT/hedge_scores`` by the recipe's
behaviour hash, so a second hedge with the same members (``combine: max`` instead of ``mean``,
say) scores only itself, and a re-run reads everything back. The key is the recipe, the draw
(or seed) and the size, not the code: delete ``ROOT/hedge_scores`` after changing a detector
or the generator.

Per type, the gap's standard error comes from a paired, stratified bootstrap of the type's test
clips (``--n-boot``, the same resamples for the hedge and its members): with 100-200 test clips
a type's Ω moves by a few hundredths, so the summary also says how many types lie beyond 0.05
by more than two standard errors.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from draws import family_draws, gain_tag, make_novel
from numpy.typing import NDArray

from automl_asd import synth
from automl_asd.components.files import atomic_write_bytes
from automl_asd.data import MachineData, scan
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.recipe import Recipe, load_recipe
from automl_asd.search.selection import bootstrap_values, objective_value, section_aucs

#: One type's test clips: (labels 0/1, domains, scores), as the selection rules resample them.
Clips = tuple[NDArray[np.int64], NDArray[np.str_], NDArray[np.float64]]


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


def scored_clips(recipe: Recipe, machine: MachineData, cache: Path, store: Path | None,
                 group: str) -> Clips:
    """``recipe``'s per-clip scores of ``machine``'s test clips with their labels and domains,
    read from ``store`` when a recipe with the same behaviour hash stored them (``group``: the
    seed or draw the machine belongs to), else computed with :func:`evaluate_recipe` (the
    search's objective, one machine) and stored."""
    path = (None if store is None else
            store / group / f"{machine.machine_type}_{recipe.behaviour_hash()[:16]}.npz")
    stored = None if path is None else read_arrays(path)
    if stored is not None:
        return stored["y"], stored["d"], stored["s"]
    res = evaluate_recipe(recipe, {machine.machine_type: machine}, cache_dir=cache,
                          device="cpu", reuse_representations=False)
    ((y, d, s),) = res.per_clip.values()
    out: Clips = (np.asarray(y, dtype=np.int64), np.asarray(d).astype(str),
                  np.asarray(s, dtype=np.float64))
    if path is not None:
        write_arrays(path, {"y": out[0], "d": out[1], "s": out[2]})
    return out


def read_arrays(path: Path) -> dict[str, NDArray] | None:
    """The arrays of a stored ``.npz`` (no Python objects), or None when there is none."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def write_arrays(path: Path, arrays: dict[str, NDArray]) -> None:
    """Store ``arrays`` as one ``.npz``, whole or not at all (benches may share a store)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def set_omega(clips: dict[str, Clips]) -> float:
    """Official Ω over the types of ``clips`` (one section each)."""
    return objective_value("mean", {k: section_aucs(*v) for k, v in clips.items()})


def gap_se(best: Clips, hedge: Clips, n_boot: int) -> float:
    """Standard error of (best member's Ω - hedge's Ω) of one type over paired bootstrap
    resamples of its test clips (same labels and domains, so the same resamples)."""
    if n_boot <= 1:
        return float("nan")
    b = bootstrap_values("mean", {("t", "0"): best}, n_boot=n_boot, seed=0)
    h = bootstrap_values("mean", {("t", "0"): hedge}, n_boot=n_boot, seed=0)
    return float(np.std(b - h, ddof=1))


def noise_count(mean_gap: float, ses: NDArray[np.float64], limit: float
                ) -> tuple[float, float]:
    """How many types would show a gap above ``limit`` from test-clip noise alone if every
    type's true gap were ``mean_gap`` (the sum over the types of P(N(mean_gap, SE) > limit),
    each with its own standard error; normal approximation), and the chance that at least
    one would."""
    z = (limit - mean_gap) / np.asarray(ses, dtype=np.float64)
    p = np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in z])
    return float(p.sum()), float(1.0 - np.prod(1.0 - p))


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
    ap.add_argument("--anomaly-gain", type=float, default=1.0, metavar="G",
                    help="render the types' anomalies G times as strong (synth --anomaly-gain; "
                         "own trees and stored scores per gain)")
    ap.add_argument("--n-boot", type=int, default=200,
                    help="bootstrap resamples for each type's gap standard error (0: none)")
    ap.add_argument("--no-store", action="store_true",
                    help="do not read or write per-clip scores under ROOT/hedge_scores")
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
    store = None if args.no_store else args.root / "hedge_scores"
    names = list(recipes)
    per: dict[str, dict[str, Clips]] = {n: {} for n in names}  # key: seed/type
    gaps: list[float] = []
    ses: list[float] = []
    t_all = time.process_time()
    groups = (list(range(args.family_draws)) if args.family_draws
              else list(args.seeds))
    draws = family_draws(args.family_draws) if args.family_draws else []
    tag = gain_tag(args.anomaly_gain)
    gain = f"_{tag}" if tag else ""
    for seed in groups:
        t0 = time.perf_counter()
        if args.family_draws:
            root = make_novel(draws[seed], args.root, size=args.size,
                              anomaly_gain=args.anomaly_gain)
            types = list(draws[seed].novel_types)
            group = f"draw{seed}_{args.size}{gain}"
        else:
            root = args.root / f"seed{seed}{gain}"
            types = [t for t in args.named.split(",") if t]
            types += synth.random_type_names(args.random_types, seed)
            synth.generate(root, machine_types=types, size=args.size, seed=seed,
                           anomaly_gain=args.anomaly_gain)
            group = f"seed{seed}_{args.size}{gain}"
        print(f"{'draw' if args.family_draws else 'seed'} {seed}: data for {len(types)} types "
              f"ready in {time.perf_counter() - t0:.0f} s", flush=True)
        machines = scan(root, machine_types=types)
        head = f"{'seed/type':<16} {'hedge':>6} | " + " ".join(f"{_short(m):>16}" for m in members)
        print(head + f" | {'best':>6} {'gap':>6} {'SE':>6}")
        for mt in types:
            key = f"{seed}/{mt}"
            for n, r in recipes.items():
                per[n][key] = scored_clips(r, machines[mt], cache, store, group)
            h = set_omega({key: per["hedge"][key]})
            ms = [set_omega({key: per[m][key]}) for m in members]
            best = list(members)[int(np.argmax(ms))]
            gap = max(ms) - h
            se = gap_se(per[best][key], per["hedge"][key], args.n_boot)
            gaps.append(gap)
            ses.append(se)
            print(f"{key:<16} {h:6.3f} | " + " ".join(f"{v:16.3f}" for v in ms)
                  + f" | {max(ms):6.3f} {gap:+6.3f} {se:6.3f}", flush=True)
        sub = {n: {k: v for k, v in d.items() if k.startswith(f"{seed}/")} for n, d in
               per.items()}
        print(f"{'seed ' + str(seed) + ' set Ω':<16} {set_omega(sub['hedge']):6.3f} | "
              + " ".join(f"{set_omega(sub[m]):16.3f}" for m in members) + "\n")
    print(f"all seeds: set Ω hedge {set_omega(per['hedge']):.3f}; members "
          + ", ".join(f"{_short(m)} {set_omega(per[m]):.3f}" for m in members))

    def type_omegas(n: str) -> list[float]:
        return [set_omega({k: v}) for k, v in per[n].items()]

    best_mean = max(float(np.mean(type_omegas(m))) for m in members)
    print(f"mean per-type Ω: hedge {np.mean(type_omegas('hedge')):.3f}, "
          f"best single member {best_mean:.3f}")
    g, e = np.asarray(gaps), np.asarray(ses)
    print(f"gap to the best member per type: mean {g.mean():+.3f} (target <= 0.02: "
          f"{'OK' if g.mean() <= 0.02 else 'FAIL'}), worst {g.max():+.3f} (target <= 0.05: "
          f"{'OK' if g.max() <= 0.05 else 'FAIL'}), types >0.05 below: {int((g > 0.05).sum())}"
          f"/{g.size}")
    if args.n_boot > 1:
        print(f"per-type gap standard error (paired bootstrap, {args.n_boot} resamples): "
              f"median {np.median(e):.3f}, max {e.max():.3f}; types beyond 0.05 by more than "
              f"2 SE: {int((g - 2 * e > 0.05).sum())}/{g.size}")
        count, some = noise_count(g.mean(), e, 0.05)
        print(f"if every type's true gap were the mean gap, test-clip noise alone would put "
              f"{count:.1f}/{g.size} types >0.05 below (at least one: {100 * some:.0f} %)")
    print(f"CPU {time.process_time() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
