"""Benchmark of ``automl-asd search``, measured side by side in one run.

1. Feature extraction cold vs warm: ``features.extract`` of every clip of the dev set with an
   empty cache, then again warm; and the share of one trial's wall time spent in features
   (the smoke space's reference recipe evaluated serially, cold cache then warm cache).
2. Trials per hour for each space (smoke, default) with 1 and 2 concurrent trials (1 CPU each)
   on one local Ray, warm feature cache, each run capped by ``--trials`` and ``--time-budget``.
   Only trials that finished (complete, stopped early by ASHA, or failed) are counted;
   ``trials/h`` counts those, ``complete/h`` only trials that reached full fidelity. ``hit``
   is the representation-cache hit rate (trained networks reused by later trials), and the
   per-family lines give trials, mean seconds per trial and hits/misses of each family.

Usage::

    .venv/bin/python bench/search.py                          # small set, 3 dev types
    .venv/bin/python bench/search.py --spaces smoke --trials 12 --time-budget 300
    .venv/bin/python bench/search.py --data ROOT --machine-types fan valve

On CPU the default space is dominated by its first trial (the official baseline AE, 100
epochs); run it on a GPU cluster (``--gpus-per-trial``) for meaningful default-space rates.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from automl_asd.data import scan  # noqa: E402
from automl_asd.evaluation.objective import evaluate_recipe  # noqa: E402
from automl_asd.features import ExtractStats, extract  # noqa: E402
from automl_asd.io.search_report import family_costs, read_search_meta  # noqa: E402
from automl_asd.orchestration.tune import run_search  # noqa: E402
from automl_asd.search.config import SearchConfig  # noqa: E402
from automl_asd.search.space import load_space  # noqa: E402


def _feature_share(data: Path, types: list[str], work: Path) -> None:
    machines = scan(data, machine_types=types)
    clips = [c for m in machines.values() for c in m.clips]
    space = load_space("smoke")
    recipe = space.to_recipe(space.reference_point(), name="smoke_reference")
    cache = work / "cache_share"
    print(f"\n== feature extraction ({len(clips)} clips, {len(types)} types, spec "
          f"{recipe.features.kind}/{recipe.features.n_mels} mels)")
    for label in ("cold", "warm"):
        stats = ExtractStats()
        t0 = time.perf_counter()
        extract(clips, recipe.features, cache_dir=cache, progress=False, stats=stats)
        print(f"  extract {label}: {time.perf_counter() - t0:7.2f} s "
              f"({stats.n_computed} computed, {stats.n_cached} cached)")
    shutil.rmtree(cache)
    print("  one trial of the smoke reference recipe (serial, fidelity 1.0):")
    print(f"  {'cache':<6} {'total s':>8} {'features s':>11} {'share':>6} {'Ω':>7}")
    for label in ("cold", "warm"):
        res = evaluate_recipe(recipe, machines, cache_dir=cache, device="cpu")
        feat = res.timings.get("features", 0.0)
        print(f"  {label:<6} {res.wall_s:8.2f} {feat:11.2f} {feat / res.wall_s:6.1%} "
              f"{res.omega:7.4f}")


def _rates(data: Path, types: list[str], work: Path, spaces: list[str], concurrency: list[int],
           trials: int, budget: float, cache: Path) -> None:
    import ray

    from automl_asd.orchestration.local_ray import init_local_ray

    init_local_ray(num_cpus=max(concurrency), log_to_driver=False)  # 127.0.0.1 only
    try:
        print(f"\n== trials per hour ({len(types)} types, warm cache, <= {trials} trials or "
              f"{budget:.0f} s per run, 1 CPU per trial)")
        print(f"  {'space':<8} {'conc':>4} {'finished':>8} {'complete':>8} {'early':>6} "
              f"{'error':>6} {'wall s':>7} {'trials/h':>9} {'complete/h':>10} {'hit':>5} "
              f"{'best Ω':>7}")
        for name in spaces:
            space = load_space(name)
            for k in concurrency:
                out = work / f"run_{name}_{k}"
                cfg = SearchConfig(data=data, space=space, out=out, trials=trials,
                                   machine_types=tuple(types), max_concurrent=k,
                                   time_budget_s=budget, cache_dir=cache, seed=0,
                                   cpus_per_trial=1.0, device="cpu")
                t0 = time.perf_counter()
                try:
                    outcome = run_search(cfg)
                    table, best = outcome.trials, f"{outcome.best_omega:7.4f}"
                except ValueError as exc:  # no trial finished within the budget
                    import pandas as pd

                    table = pd.read_parquet(out / "trials.parquet") \
                        if (out / "trials.parquet").is_file() else pd.DataFrame(
                            {"status": []})
                    best = "   -   "
                    logging.getLogger(__name__).warning("%s", exc)
                wall = time.perf_counter() - t0
                st = table["status"].value_counts().to_dict()
                done = sum(st.get(s, 0) for s in ("complete", "stopped_early", "error"))
                fam = family_costs(table) if len(table) else None
                hits = float(fam["cache hits"].sum()) if fam is not None and len(fam) else 0.0
                tot = hits + (float(fam["cache misses"].sum())
                              if fam is not None and len(fam) else 0.0)
                rate = f"{hits / tot:5.0%}" if tot else "    -"
                print(f"  {name:<8} {k:>4} {done:>8} {st.get('complete', 0):>8} "
                      f"{st.get('stopped_early', 0):>6} {st.get('error', 0):>6} {wall:7.1f} "
                      f"{done / wall * 3600:9.0f} {st.get('complete', 0) / wall * 3600:10.0f} "
                      f"{rate} {best}")
                for _, f in (fam.iterrows() if fam is not None else iter(())):
                    print(f"      {f['family']:<14} {int(f['trials']):>3} trials "
                          f"({int(f['complete'])} complete), {f['mean s']:6.1f} s/trial, "
                          f"cache {int(f['cache hits'])} hits / {int(f['cache misses'])} misses")
                est = (read_search_meta(out) or {}).get("estimates")
                if est:
                    print(f"      estimate before the search: reference ~{est['reference_s']:.0f}"
                          f" s, average trial ~{est['mean_trial_s']:.0f} s; warnings: "
                          f"{est.get('warnings') or 'none'}")
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="dev tree (default: a synthetic one written to the work dir)")
    parser.add_argument("--size", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--machine-types", nargs="+", default=["fan", "gearbox", "bearing"])
    parser.add_argument("--spaces", nargs="+", default=["smoke", "default"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--time-budget", type=float, default=240.0)
    parser.add_argument("--work", type=Path, default=None, help="scratch dir (default: temp)")
    parser.add_argument("--skip-share", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_search_"))
    work.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        from automl_asd.synth import generate

        data = work / f"dev_{args.size}"
        t0 = time.perf_counter()
        generate(data, machine_types=args.machine_types, size=args.size, seed=0)
        print(f"synthetic {args.size} dev set: {data} ({time.perf_counter() - t0:.1f} s)")
    print(f"CPU cores visible: {os.cpu_count()}; work dir {work}")
    if not args.skip_share:
        _feature_share(data, args.machine_types, work)
    cache = work / "cache"
    for name in args.spaces:  # warm the cache for every space's reference feature spec
        space = load_space(name)
        spec = space.to_recipe(space.reference_point()).features
        machines = scan(data, machine_types=args.machine_types)
        extract([c for m in machines.values() for c in m.clips], spec, cache_dir=cache,
                progress=False)
    _rates(data, args.machine_types, work, args.spaces, args.concurrency, args.trials,
           args.time_budget, cache)


if __name__ == "__main__":
    main()
