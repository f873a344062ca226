"""Benchmark of ``automl-asd apply``, measured side by side in one run.

1. Stage wall times (features cold/warm, fit, score) of each shipped recipe on one synthetic
   machine type (``small`` by default), with that type's AUC-s/AUC-t/pAUC and h-mean.
2. Parallel apply on two machine types: in-process serial runner, Ray with one task at a time
   (2 CPUs per task) and Ray with two parallel tasks (1 CPU each) on the same 2-CPU Ray;
   prints the speed-up ratios. Feature caches and Ray workers are warmed first, so the
   comparison measures the tasks, not imports or feature extraction.

Usage::

    .venv/bin/python bench/apply.py                   # shipped recipes as shipped (slow: the
                                                      # official baseline AE: 100 epochs)
    .venv/bin/python bench/apply.py --epochs 10       # AE recipes shortened (labelled @10ep)
    .venv/bin/python bench/apply.py --data ROOT --machine-types pump compressor

``--epochs`` only exists here, to keep the benchmark short; ``apply`` itself takes no
hyperparameter overrides.

Caveat: Ray starts its worker processes niced, so on a machine busy with other work the Ray
columns lose CPU to other processes while the in-process ``serial`` column does not; a task
with 2 torch threads suffers most (its threads wait for each other at every barrier). Compare
ratios only on an otherwise idle machine (the load average is printed before and after).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from automl_asd.apply import ApplyConfig, SerialRunner, apply_recipe  # noqa: E402
from automl_asd.data import find_machine_dirs, scan  # noqa: E402
from automl_asd.recipe import Recipe, load_recipe, shipped_recipe_names  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _recipe(name: str, epochs: int | None) -> Recipe:
    rec = load_recipe(name)
    params = dict(rec.detector.params)
    if epochs is not None and "epochs" in params and params["epochs"] != epochs:
        params["epochs"] = epochs
        rec = rec.replace(name=f"{rec.name}@{epochs}ep",
                          detector={"name": rec.detector.name, "params": params})
    return rec


def _stage_table(recipes: Sequence[Recipe], data: Path, mt: str, work: Path,
                 device: str, threads: int | None) -> None:
    from automl_asd.evaluation.evaluate import evaluate_result
    from automl_asd.features import extract
    from automl_asd.pipeline import run_machine

    machine = scan(data, machine_types=[mt])[mt]
    clips = list(machine.train) + list(machine.test)
    print(f"\n== stages on {mt} ({len(machine.train)} train + {len(machine.test)} test clips, "
          f"device={device}, threads={threads or 'default'})")
    head = (f"{'recipe':<30} {'feat cold':>9} {'feat warm':>9} {'cold/warm':>9} {'fit':>8} "
            f"{'score':>7} {'total':>8} {'fit %':>6} {'AUC-s':>6} {'AUC-t':>6} {'pAUC':>6} "
            f"{'hmean':>6}")
    print(head)
    print("-" * len(head))
    for rec in recipes:
        cache = work / f"cache-{rec.content_hash()[:12]}"  # fresh: the first pass is cold
        res = run_machine(rec, machine, cache_dir=cache, device=device, num_threads=threads)
        t0 = time.perf_counter()
        extract(clips, rec.features, cache_dir=cache, progress=False)
        warm = time.perf_counter() - t0
        t = res.timings
        (m, *_) = evaluate_result(machine, res).per_section.values()  # the first section
        print(f"{rec.name:<30} {t['features']:9.2f} {warm:9.3f} {t['features'] / warm:8.0f}x "
              f"{t['fit']:8.2f} {t['score']:7.2f} {t['total']:8.2f} "
              f"{100 * t['fit'] / t['total']:5.0f}% {m.auc_source:6.3f} {m.auc_target:6.3f} "
              f"{m.pauc:6.3f} {m.score:6.3f}")


def _parallel(recipes: Sequence[Recipe], data: Path, mts: Sequence[str], work: Path,
              device: str) -> None:
    import ray

    from automl_asd.features import extract
    from automl_asd.orchestration.local_ray import init_local_ray
    from automl_asd.orchestration.ray_runner import RayRunner

    machines = scan(data, machine_types=list(mts))
    cache = work / "cache-parallel"
    for rec in recipes:  # warm the feature cache so all runners start equal
        for m in machines.values():
            extract(list(m.train) + list(m.test), rec.features, cache_dir=cache, progress=False)
    init_local_ray(num_cpus=2, log_to_driver=False)  # 127.0.0.1 only
    try:
        # Warm two Ray workers (imports of torch & co. happen once per worker process).
        apply_recipe(ApplyConfig(recipes[0], data, work / "warmup", machine_types=tuple(mts),
                                 cache_dir=cache, device=device, evaluate=False),
                     runner=RayRunner(cpus_per_task=1))
        print(f"\n== parallel apply on {', '.join(mts)} (2-CPU Ray; warm caches and workers)")
        head = (f"{'recipe':<30} {'serial':>8} {'ray 1x2cpu':>10} {'ray 2x1cpu':>10} "
                f"{'1x/2x':>6} {'serial/2x':>9}  per-type seconds (2x1cpu)")
        print(head)
        print("-" * len(head))
        for rec in recipes:
            walls: dict[str, float] = {}
            per_type: dict[str, float] = {}
            runs: list[tuple[str, Any]] = [
                ("serial", SerialRunner()),
                ("ray1", RayRunner(cpus_per_task=2)),
                ("ray2", RayRunner(cpus_per_task=1)),
            ]
            for key, runner in runs:
                t0 = time.perf_counter()
                report = apply_recipe(ApplyConfig(rec, data, work / f"out-{key}",
                                                  machine_types=tuple(mts), cache_dir=cache,
                                                  device=device, evaluate=False), runner=runner)
                walls[key] = time.perf_counter() - t0
                if not report.ok:
                    raise SystemExit(f"{rec.name} {key}: failed {report.failed}")
                if key == "ray2":
                    per_type = {o.machine_type: o.seconds for o in report.outcomes}
            types = ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_type.items()))
            print(f"{rec.name:<30} {walls['serial']:8.2f} {walls['ray1']:10.2f} "
                  f"{walls['ray2']:10.2f} {walls['ray1'] / walls['ray2']:5.2f}x "
                  f"{walls['serial'] / walls['ray2']:8.2f}x  {types}")
    finally:
        ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="data root (default: generate synthetic novel types)")
    parser.add_argument("--machine-types", nargs="+", default=None,
                        help="two machine types (default: the first two under --data)")
    parser.add_argument("--size", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="recipe names/paths (default: every shipped recipe)")
    parser.add_argument("--parallel-recipes", nargs="+", default=None,
                        help="recipes for the parallel part (default: same as --recipes)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="shorten epoch-based recipes to N epochs (bench only)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the stage runs (default: library default)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--skip-parallel", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-apply-"))
    work.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        from automl_asd.synth import NOVEL_MACHINE_TYPES, generate

        data = work / "data"
        t0 = time.perf_counter()
        generate(data, machine_types=list(args.machine_types or NOVEL_MACHINE_TYPES[:2]),
                 size=args.size, seed=0)
        print(f"generated {args.size} synthetic data in {time.perf_counter() - t0:.1f} s: {data}")
    mts = list(args.machine_types or sorted(find_machine_dirs(data))[:2])
    names = args.recipes or shipped_recipe_names()
    recipes = [_recipe(n, args.epochs) for n in names]
    par = [_recipe(n, args.epochs) for n in args.parallel_recipes] if args.parallel_recipes \
        else recipes
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, work folder {work}")
    print(f"load average before: {_load()}  (other processes on the machine skew timings)")
    if not args.skip_stages:
        _stage_table(recipes, data, mts[0], work, args.device, args.threads)
    if not args.skip_parallel:
        if len(mts) < 2:
            raise SystemExit("the parallel part needs two machine types")
        _parallel(par, data, mts[:2], work, args.device)
    print(f"\nload average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
