"""One recipe applied to one machine type on one device: wall time, peak GPU memory, Ω.

The small driver of ``bench/gpu_check.sh``: ``apply_recipe`` with the serial runner in this
process (so ``torch.cuda.max_memory_allocated`` sees every allocation of the run), features
cold (own cache) unless ``--cache`` is given. ``--epochs`` shortens a neural recipe (the
output says so). Prints one JSON line and, with ``--json``, writes it there.

Usage::

    .venv/bin/python bench/gpu_fit.py --recipe margin_knn --data ROOT --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", required=True)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--cache", type=Path, default=None, help="feature cache (default: fresh)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import torch

    from automl_asd.apply import ApplyConfig, SerialRunner, apply_recipe
    from automl_asd.recipe import load_recipe

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_fit: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    rec = load_recipe(args.recipe)
    params = dict(rec.detector.params)
    shipped = params.get("epochs")
    if args.epochs is not None and shipped is not None and args.epochs != shipped:
        params["epochs"] = args.epochs
        rec = rec.replace(name=f"{rec.name}@{args.epochs}ep",
                          detector={"name": rec.detector.name, "params": params})
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="gpu-fit-") as tmp:
        cache = args.cache or Path(tmp) / "cache"
        t0 = time.perf_counter()
        report = apply_recipe(ApplyConfig(rec, args.data, Path(tmp) / "out", cache_dir=cache,
                                          device=args.device, plots=False), runner=SerialRunner())
        wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else 0.0
    summary = report.outcomes[0].summary or {}
    row = {"recipe": rec.name, "device": args.device, "epochs": params.get("epochs"),
           "shipped_epochs": shipped, "seconds": round(wall, 2),
           "timings": summary.get("timings", {}), "peak_gpu_mib": round(peak, 1),
           "omega": report.official_score, "ok": report.ok,
           "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
           "torch": torch.__version__}
    line = json.dumps(row)
    print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(line + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
