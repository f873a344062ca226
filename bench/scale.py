"""What a real search costs: per-trial cost by family and fidelity, and a projection.

Measured here (CPU; one trial = ``objective.evaluate_recipe`` over the given types, exactly
what a search trial runs, each in a fresh subprocess so its peak RSS is its own):

1. the small proxy (``synth --size small``: 200 train + 100 test clips of 6 s per type) at
   every fidelity rung of the shipped ``default`` space (0.25, 0.5, 1.0);
2. one full-size type (``synth --size full --machine-types pump``: 1000 train + 200 test +
   100 supplemental clips of 10 s, i.e. one 2025 development type's volume) at fidelity 1.0;
3. the feature cache: bytes per clip of the baseline log-mel, cold extraction time per clip.

Neural families are measured with few epochs (``--epochs-measured``) and their training time
is scaled linearly to the shipped recipe's epochs (``margin_knn`` 28, ``baseline_ae_mse``
100); the table says which numbers are scaled. The projection then prices a search of the
full 2025 development set (7 types x 1000 train + 200 test clips of 10 s + 100 supplemental
each, assumed) on the shipped ``cluster.yaml`` (g5.xlarge workers, one trial per GPU):

* trials: ``--trials`` (default 200) with ASHA (rungs 0.25/0.5/1.0, reduction 3: every trial
  runs rung 1, a third rung 2, a ninth rung 3), families drawn in equal shares;
* one trial over 7 types = 7 x the measured full-size-type cost (the per-type work is
  independent; the shared network of ``margin_cnn`` sees 7x the clips);
* GPU speed-up of the neural families over one CPU core: ``--gpu-speedup`` (default 2.5,
  measured on 2026-12-04: ``bench/gpu_check.sh`` on one H200 timed ``baseline_ae_mse`` at
  6.9 s per epoch and ``margin_knn`` at 30.9 s on the full-size pump type, against 17.1 s per
  epoch and 84 s of one CPU core in this bench's table: x2.5 and x2.7; the two numbers come
  from different machines, and an A10G is slower than an H200 at large work but these small
  networks are bound by per-step overhead, not arithmetic); pooled_stats (CPU-bound) and
  feature extraction are not sped up.

Usage::

    nice -n 10 .venv/bin/python bench/scale.py --root /tmp/scale  # 11 min on 2 busy cores
                                                                  # (+3 min synth, first run)
    nice -n 10 .venv/bin/python bench/scale.py --quick        # small proxy + fewer rungs (7 min)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FAMILIES = {"pooled_stats": "searched_pooled_logz", "margin_cnn": "margin_knn",
            "dcase_ae": "baseline_ae_mse"}
RUNGS = (0.25, 0.5, 1.0)
DEV_2025 = {"types": 7, "train": 1000, "test": 200, "supplemental": 100, "seconds": 10.0}


def _worker(args: argparse.Namespace) -> None:
    """One trial in this (fresh) process: prints its cost as JSON on the last line."""
    import torch

    from automl_asd.data import scan
    from automl_asd.evaluation.objective import evaluate_recipe
    from automl_asd.recipe import load_recipe

    torch.set_num_threads(args.threads)
    rec = load_recipe(args.recipe)
    params = dict(rec.detector.params)
    shipped_epochs = params.get("epochs")
    if shipped_epochs is not None and args.epochs:
        params["epochs"] = args.epochs
        rec = rec.replace(detector={"name": rec.detector.name, "params": params})
    machines = scan(Path(args.data), machine_types=args.machine_types)
    if args.warm_only:  # fill the feature cache for this recipe's spec (as earlier trials do)
        from automl_asd.features import extract

        extract([c for m in machines.values() for c in m.clips], rec.features,
                cache_dir=args.cache, progress=False)
        print(json.dumps({}))
        return
    t0, c0 = time.perf_counter(), time.process_time()
    res = evaluate_recipe(rec, machines, cache_dir=args.cache, device="cpu",
                          fidelity=args.fidelity)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"wall": wall, "cpu": cpu, "timings": res.timings, "omega": res.omega,
                      "shipped_epochs": shipped_epochs, "epochs": params.get("epochs"),
                      "peak_rss_mb": _vm_hwm_mb()}))


def _vm_hwm_mb() -> float:
    """This process's peak resident memory (``VmHWM``; not inherited from the parent, unlike
    ``ru_maxrss`` across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def _trial(recipe: str, data: Path, mts: list[str], fidelity: float, cache: Path,
           epochs: int, threads: int, warm_only: bool = False) -> dict[str, Any]:
    """Run one trial in a fresh subprocess; its result (with its own peak RSS)."""
    cmd = [sys.executable, __file__, "--_worker", "--recipe", recipe, "--data", str(data),
           "--fidelity", str(fidelity), "--cache", str(cache), "--epochs", str(epochs),
           "--threads", str(threads), "--machine-types", *mts]
    if warm_only:
        cmd.append("--warm-only")
    # every math library single-threaded, like torch (no CPU time burnt spinning at barriers)
    env = {**os.environ, **{k: str(threads) for k in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()[-3000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _scaled(res: dict[str, Any], family: str) -> tuple[float, bool]:
    """Trial CPU-seconds with training scaled to the shipped epochs (and whether it was).

    CPU time, not wall time: on a shared machine a trial's wall time mostly measures the other
    processes; its CPU time does not (on an idle core, wall ~ CPU-s / threads kept busy). The
    training stage's share of CPU time is taken from its share of wall time."""
    cpu = float(res["cpu"])
    shipped, used = res.get("shipped_epochs"), res.get("epochs")
    if not shipped or not used or shipped == used:
        return cpu, False
    t = res["timings"]
    train = float(t.get("shared", 0.0)) if family == "margin_cnn" else float(t.get("fit", 0.0))
    train_cpu = cpu * min(1.0, train / max(float(res["wall"]), 1e-9))
    return cpu + train_cpu * (shipped / used - 1.0), True


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _feature_cache(data: Path, mt: str, work: Path) -> tuple[float, float, int]:
    """(bytes per clip, cold seconds per clip, clips) of the baseline log-mel spec."""
    from automl_asd.data import scan
    from automl_asd.features import extract
    from automl_asd.recipe import load_recipe

    clips = list(scan(data, machine_types=[mt])[mt].clips)
    cache = work / "featcache"
    t0 = time.perf_counter()
    extract(clips, load_recipe("searched_pooled_logz").features, cache_dir=cache,
            progress=False)
    seconds = time.perf_counter() - t0
    return _dir_bytes(cache) / len(clips), seconds / len(clips), len(clips)


def _projection(per_type_s: dict[str, float], speedup: float, trials: int,
                cache_bytes_per_clip: float) -> list[str]:
    n_types = DEV_2025["types"]
    clips = n_types * (DEV_2025["train"] + DEV_2025["test"] + DEV_2025["supplemental"])
    # ASHA work per trial in units of a full-fidelity trial: all do rung 1, 1/3 rung 2, 1/9 3.
    rung_share = {0.25: 1.0, 0.5: 1 / 3, 1.0: 1 / 9}
    lines = ["", f"Projection: search of the 2025 dev set ({n_types} types x "
             f"{DEV_2025['train']}+{DEV_2025['test']}+{DEV_2025['supplemental']} clips of "
             f"{DEV_2025['seconds']:.0f} s = {clips} clips), {trials} trials, ASHA 0.25/0.5/1.0 "
             f"x3, families in equal shares, one trial per g5.xlarge worker (1 GPU), trial "
             f"time = CPU-seconds measured here, neural ones divided by {speedup:g} (GPU "
             "speed-up over one CPU core; 2.5 was measured by bench/gpu_check.sh on one "
             "H200, 2026-12-04):", ""]
    hours_total = 0.0
    rows = []
    for family, seconds in per_type_s.items():
        trial_full = n_types * seconds / (speedup if family != "pooled_stats" else 1.0)
        # cost at fidelity f ~ f x full for training, features are cached: use f linearly
        per_trial = sum(share * f * trial_full for f, share in rung_share.items())
        hours = per_trial * trials / len(per_type_s) / 3600
        hours_total += hours
        rows.append(f"| {family} | {trial_full:,.0f} s | {per_trial:,.0f} s | {hours:,.1f} |")
    lines += ["| family | one full-fidelity trial (7 types, on a worker) | mean ASHA trial | "
              "worker-hours |", "|---|---|---|---|", *rows, ""]
    cache_gb = cache_bytes_per_clip * clips / 1e9
    lines.append(f"Total: {hours_total:,.1f} GPU-hours (one worker = one GPU); wall time "
                 + ", ".join(f"{w} worker(s) {hours_total / w:,.1f} h" for w in (1, 4, 16))
                 + "; feature cache per node and per feature spec: "
                 f"{cache_bytes_per_clip / 1e3:,.0f} KB/clip x {clips} clips = "
                 f"{cache_gb:,.2f} GB.")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None, help="data/work folder (default tmp)")
    p.add_argument("--quick", action="store_true",
                   help="small proxy only at rungs 0.25 and 1.0; full size: pooled only")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per trial (default 1: CPU time is then not inflated by "
                        "threads spinning at barriers on a busy machine)")
    p.add_argument("--epochs-measured", type=int, default=2,
                   help="epochs used for the neural families (scaled to the shipped ones)")
    p.add_argument("--gpu-speedup", type=float, default=2.5,
                   help="GPU speed-up of neural training over one CPU core (default 2.5, "
                        "measured on one H200 by bench/gpu_check.sh)")
    p.add_argument("--trials", type=int, default=200, help="trials of the projected search")
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--recipe", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--fidelity", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--machine-types", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--warm-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        _worker(args)
        return 0

    from automl_asd.synth import generate

    t_start = time.perf_counter()
    work = args.root or Path(tempfile.mkdtemp(prefix="automl-asd-scale-"))
    small, full = work / "small", work / "full"
    t0 = time.perf_counter()
    for root, mt, size in ((small, "fan", "small"), (full, "pump", "full")):
        if not (root / mt).is_dir():  # same seed, same files: reuse a --root of an earlier run
            generate(root, machine_types=[mt], size=size, seed=0)
    print(f"data: {work} (synth {time.perf_counter() - t0:.0f} s)", flush=True)
    per_clip_bytes, per_clip_s, n_clips = _feature_cache(full, "pump", work)
    print(f"feature cache (baseline log-mel, full-size clips): {per_clip_bytes / 1e3:.0f} KB "
          f"per clip, cold extraction {per_clip_s * 1e3:.1f} ms per clip ({n_clips} clips)",
          flush=True)

    rows = ["| data | family (recipe) | fidelity | trial wall s | trial CPU s | CPU s at shipped "
            "epochs | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    full_cost: dict[str, float] = {}
    rungs = (0.25, 1.0) if args.quick else RUNGS
    plan = [("small (fan)", small, ["fan"], fam, f) for fam in FAMILIES for f in rungs]
    plan += [("full (pump)", full, ["pump"], fam, 1.0) for fam in FAMILIES
             if not args.quick or fam == "pooled_stats"]
    rss_pooled: list[float] = []
    warmed: set[tuple[str, str]] = set()
    for label, data, mts, family, fid in plan:
        cache = work / f"cache_{label.split()[0]}"
        recipe = FAMILIES[family]
        if (label, recipe) not in warmed:  # features cached first, as a search reuses them
            _trial(recipe, data, mts, fid, cache, 1, args.threads, warm_only=True)
            warmed.add((label, recipe))
        res = _trial(recipe, data, mts, fid, cache, args.epochs_measured, args.threads)
        seconds, scaled = _scaled(res, family)
        if family == "pooled_stats":
            rss_pooled.append(res["peak_rss_mb"])
        if label.startswith("full"):
            full_cost[family] = seconds
        rows.append(f"| {label} | {family} ({recipe}) | {fid:g} | {res['wall']:.1f} | "
                    f"{res['cpu']:.1f} | "
                    + (f"{seconds:.1f} (x{res['shipped_epochs']}/{res['epochs']} ep)"
                       if scaled else "-")
                    + f" | {res['peak_rss_mb']:.0f} |")
        print(rows[-1], flush=True)
    print("\nPer-trial cost (one trial = evaluate_recipe over the type(s); features cached; "
          f"{args.threads} torch threads, CPU; the projection uses CPU seconds):\n")
    print("\n".join(rows))
    if rss_pooled:
        peak = max(rss_pooled)
        print(f"\nPeak RSS per task, pooled_stats: {peak:.0f} MB "
              f"({'within' if peak <= 2048 else 'ABOVE'} the 2 GB target)")
    if args.quick:
        # quick mode: scale the small proxy to full size by clip-seconds (labelled as such)
        ratio = (1300 * 10.0) / (320 * 6.0)
        print(f"(--quick: neural full-size costs scaled from the small proxy x{ratio:.1f} "
              "by clip-seconds)")
        for family in FAMILIES:
            if family not in full_cost:
                line = [r for r in rows if f"| {family} (" in r and "| 1 |" in r][0]
                cells = [c.strip() for c in line.split("|")]
                val = cells[6] if cells[6] != "-" else cells[5]
                full_cost[family] = float(val.split()[0]) * ratio
    print("\n".join(_projection(full_cost, args.gpu_speedup, args.trials, per_clip_bytes)))
    print(f"\nbench/scale.py total {time.perf_counter() - t_start:.0f} s; load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
