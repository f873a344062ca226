"""Scoring throughput from a saved model bundle: cold start and warm, CPU (and GPU if present).

For each recipe (``fast_default`` and a small neural ``dcase_ae`` recipe) the script trains
one synthetic machine type (``automl_asd.synth``, size ``--size``), saves the bundle, writes
``--n`` new 10 s / 16 kHz clips, and measures on each device:

* cold, new process: ``python`` start -> imports -> ``load_bundle`` -> first batch scored;
* cold, in process: ``load_bundle`` + the first batch (imports already done);
* warm: all ``--n`` clips with the loaded bundle, best of ``--repeat`` (clips/s), split into
  decode+features and detector scoring.

    .venv/bin/python bench/score.py --n 200 --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SR = 16000

AE = {"name": "dcase_ae", "params": {"epochs": 5, "score": "mse"}}


def make_clips(folder: Path, n: int, seconds: float, seed: int) -> list[Path]:
    """``n`` clips of noise plus a hum (16-bit PCM), the size of DCASE clips."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        x = 0.05 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * rng.uniform(80, 900) * t)
        p = folder / f"clip_{i:05d}.wav"
        sf.write(p, x.astype(np.float32), SR, subtype="PCM_16")
        paths.append(p)
    return paths


def _cold_child(bundle: str, clips: list[str], device: str, batch: int, threads: int) -> None:
    """Runs in a fresh interpreter: time to the first scored batch, printed as JSON."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    from automl_asd import load_bundle

    t_import = time.perf_counter() - t0
    b = load_bundle(bundle, device=device)
    t_load = time.perf_counter() - t0 - t_import
    b.score([Path(c) for c in clips[:batch]], workers=threads)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    print(json.dumps({"import": t_import, "load": t_load, "total": time.perf_counter() - t0}))


def bench_one(bundle_dir: Path, clips: list[Path], device: str, args: argparse.Namespace,
              ) -> dict[str, Any]:
    import torch

    from automl_asd import load_bundle

    child = subprocess.run(
        [sys.executable, __file__, "--_cold", str(bundle_dir), device, str(args.batch),
         str(args.threads), *map(str, clips[: args.batch])],
        capture_output=True, text=True, check=True)
    cold_proc = json.loads(child.stdout.strip().splitlines()[-1])

    t0 = time.perf_counter()
    b = load_bundle(bundle_dir, device=device)
    t_load = time.perf_counter() - t0
    b.score(clips[: args.batch], workers=args.threads)
    cold_in = time.perf_counter() - t0

    best = {"total": np.inf, "features": np.inf, "detector": np.inf}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        feats = b.features(clips, workers=args.threads)
        t1 = time.perf_counter()
        for i in range(0, len(feats), args.batch):
            b.score_features(feats[i:i + args.batch])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        best["features"] = min(best["features"], t1 - t0)
        best["detector"] = min(best["detector"], t2 - t1)
        best["total"] = min(best["total"], t2 - t0)
    n = len(clips)
    return {
        "device": device,
        "cold_process_s": cold_proc["total"],
        "cold_process_import_s": cold_proc["import"],
        "cold_process_load_s": cold_proc["load"],
        "cold_in_process_s": cold_in,
        "load_bundle_s": t_load,
        "warm_clips_per_s": n / best["total"],
        "features_clips_per_s": n / best["features"],
        "detector_clips_per_s": n / best["detector"],
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_cold":
        bundle, device, batch, threads, *clips = sys.argv[2:]
        _cold_child(bundle, clips, device, int(batch), int(threads))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="clips to score (default 200)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    ap.add_argument("--batch", type=int, default=64, help="clips per batch (default 64)")
    ap.add_argument("--threads", type=int, default=2, help="torch/decode threads (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="warm repeats, best taken")
    ap.add_argument("--size", default="tiny", help="synthetic training size (default tiny)")
    ap.add_argument("--recipes", nargs="+", default=["fast_default", "ae"],
                    help="fast_default and/or ae (dcase_ae, 5 epochs)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from automl_asd.bundle.files import save_bundle
    from automl_asd.data import scan
    from automl_asd.pipeline import fit_machine
    from automl_asd.recipe import load_recipe
    from automl_asd.synth import generate

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        root = Path(tmp)
        generate(root / "data", machine_types=["fan"], size=args.size, seed=0)
        machine = scan(root / "data")["fan"]
        clips = make_clips(root / "new", args.n, args.seconds, seed=1)
        for name in args.recipes:
            recipe = load_recipe("fast_default")
            if name == "ae":
                recipe = recipe.replace(name="bench_ae", detector=AE,
                                        normalization={"method": "none"})
            t0 = time.perf_counter()
            fitted = fit_machine(recipe, machine, cache_dir=root / "cache", device="cpu")
            t_fit = time.perf_counter() - t0
            bundle_dir = save_bundle(fitted, root / "models" / name)
            size_kib = sum(p.stat().st_size for p in bundle_dir.rglob("*") if p.is_file()) / 1024
            for dev in devices:
                row = {"recipe": name, "fit_s": t_fit, "bundle_kib": size_kib,
                       **bench_one(bundle_dir, clips, dev, args)}
                rows.append(row)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"# {args.n} clips x {args.seconds:g} s, batch {args.batch}, {args.threads} threads, "
          f"GPU: {gpu}")
    print(f"{'recipe':<13}{'dev':<6}{'bundle KiB':>11}{'cold proc s':>12}{'(import':>8}"
          f"{'load)':>7}{'cold s':>8}"
          f"{'load s':>8}{'warm clips/s':>13}{'feat c/s':>10}{'det c/s':>10}")
    for r in rows:
        print(f"{r['recipe']:<13}{r['device']:<6}{r['bundle_kib']:>11.0f}"
              f"{r['cold_process_s']:>12.2f}{r['cold_process_import_s']:>8.2f}"
              f"{r['cold_process_load_s']:>7.2f}{r['cold_in_process_s']:>8.2f}"
              f"{r['load_bundle_s']:>8.3f}{r['warm_clips_per_s']:>13.1f}"
              f"{r['features_clips_per_s']:>10.1f}{r['detector_clips_per_s']:>10.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
