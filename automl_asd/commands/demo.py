"""``automl-asd demo``: the whole flow on the embedded synthetic data set."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from automl_asd.commands.args import path_arg
from automl_asd.environment import require_torchaudio
from automl_asd.search.space import shipped_space_names

HELP = ("end-to-end demo on synthetic data: search on development types → recipe.json → "
        "apply on novel types → official scores and plots")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=path_arg, default=Path("demo_out"), metavar="DIR",
                        help="demo folder (default: demo_out)")
    parser.add_argument("--size", default="small", choices=("tiny", "small", "full"),
                        help="synthetic data set size (default: small)")
    parser.add_argument("--space", default="demo", metavar="SPACE",
                        help="search space, shipped name or YAML path (default: demo; "
                             f"shipped: {', '.join(shipped_space_names())})")
    parser.add_argument("--trials", type=int, default=40, metavar="N",
                        help="search trials (default 40)")
    parser.add_argument("--max-concurrent", type=int, default=2, metavar="K",
                        help="trials running at once (default 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="SEED",
                        help="data and sampler seed (default 0)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from automl_asd.io.search_report import NEAR_TIES_DIR  # noqa: PLC0415 (pandas: when run)
    from automl_asd.orchestration.demo import run_demo  # noqa: PLC0415 (orchestration: only when run)

    require_torchaudio()  # a broken torch/torchaudio pair: one line and the fix, before Ray

    t0 = time.perf_counter()
    res = run_demo(args.out, size=args.size, space=args.space, trials=args.trials,
                   max_concurrent=args.max_concurrent, seed=args.seed)
    total = time.perf_counter() - t0
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in res.stage_seconds.items())
    print()
    print(f"done in {total:.0f} s ({stages})")
    print(f"  in-search Ω on the development types:        {res.in_search_omega:.4f}")
    if res.novel_omega is not None:
        print(f"  Ω of the frozen recipe on the novel types:   {res.novel_omega:.4f}")
    if res.reference_omega is not None:
        print(f"  Ω of the {res.reference} on the novel types: {res.reference_omega:.4f}")
    print("results:")
    print(f"  frozen recipe        {res.recipe_path}")
    ties = res.recipe_path.parent / NEAR_TIES_DIR
    if any(ties.glob("*.json")):
        print(f"  its near ties        {ties}/*.json (apply them beside it: search report, "
              "'How sure is the pick?')")
    print(f"  search report        {res.search_report}")
    print(f"  novel-type results   {res.apply_dir / 'results.md'}")
    print(f"  submission CSVs      {res.apply_dir}/anomaly_score_*.csv, decision_result_*.csv")
    print(f"  ROC / histograms     {res.apply_dir}/roc_*.png, hist_*.png")
    print(f"  model bundles        {res.apply_dir / 'models'}")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted ``demo`` kept and how to go on (the CLI's last line)."""
    return (f"the data and the feature cache are kept in {args.out}; the same demo command "
            "goes on (its search starts afresh)")
