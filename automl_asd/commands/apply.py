"""``automl-asd apply``: apply one frozen recipe to (novel) machine types in parallel Ray tasks."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from automl_asd.apply import (
    ApplyConfig,
    ApplyReport,
    Runner,
    SerialRunner,
    apply_recipe,
)
from automl_asd.commands.args import path_arg
from automl_asd.commands.recipe import add_cost_arguments
from automl_asd.components.device import check_here
from automl_asd.environment import require_torchaudio
from automl_asd.orchestration.ray_runner import RayRunner
from automl_asd.orchestration.session import check_address, is_local
from automl_asd.recipe import load_recipe
from automl_asd.recipe_checks import check_cost_for_data
from automl_asd.storage import check_location

logger = logging.getLogger(__name__)

HELP = "apply a frozen recipe to machine types (one Ray task each) and write submission files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frozen", required=True, metavar="RECIPE",
                        help="recipe.json path or shipped recipe name (e.g. baseline_ae_mse); "
                             "applied unchanged: no hyperparameter can be overridden")
    parser.add_argument("--data", required=True, type=path_arg, metavar="ROOT",
                        help="DCASE data root (<ROOT>/<machine_type>/{train,test,...})")
    parser.add_argument("--out", required=True, type=path_arg, metavar="DIR",
                        help="output folder for submission CSVs, summaries, tables and plots")
    parser.add_argument("--machine-types", nargs="+", metavar="MT", default=None,
                        help="only these machine types (default: every one under ROOT)")
    parser.add_argument("--address", default=None, metavar="ADDRESS",
                        help="Ray cluster address ('auto' = the running cluster; default: "
                             "$RAY_ADDRESS, else a local Ray on all cores)")
    parser.add_argument("--cpus-per-task", type=float, default=1.0, metavar="N",
                        help="CPUs requested by each task (a machine type, or the shared "
                             "stage of a scope: all recipe; default 1)")
    parser.add_argument("--gpus-per-task", type=float, default=None, metavar="F",
                        help="GPUs per task, fractions allowed (default: share the cluster's "
                             "GPUs between tasks, 0 when it has none)")
    parser.add_argument("--max-retries", type=int, default=2, metavar="N",
                        help="Ray retries of a crashed or failing task (default 2)")
    parser.add_argument("--resume", action="store_true",
                        help="skip machine types whose outputs are verifiably this recipe's on "
                             "this data (recipe hash, clip list, CSV and bundle checksums); "
                             "any mismatch reruns the type and says why")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow replacing files in --out that automl-asd did not write "
                             "there (and a previous run of another recipe); default: refuse")
    parser.add_argument("--ground-truth", type=path_arg, default=None, metavar="DIR",
                        help="official ground-truth folder (ground_truth_data/, "
                             "ground_truth_domain/) for metrics on anonymised test names; "
                             "types it does not cover use their labelled test names")
    parser.add_argument("--verify-audio", action="store_true",
                        help="key the feature cache by a sha256 of each clip's bytes instead of "
                             "by size/mtime/inode/ctime (reads every clip; for file systems "
                             "whose timestamps cannot be trusted; $AUTOML_ASD_VERIFY_AUDIO=1)")
    parser.add_argument("--cache-dir", type=path_arg, default=None, metavar="DIR",
                        help="feature cache (default: $AUTOML_ASD_CACHE or ~/.cache/automl-asd; "
                             "on a cluster, each node's own)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="torch device inside each task (default auto: CUDA when visible)")
    parser.add_argument("--storage", default=None, metavar="URI",
                        help="run storage every node writes its outputs to (a shared path, "
                             "file:// or s3://...; default: tasks write into --out, which must "
                             "then be shared by all nodes); copied into --out at the end")
    parser.add_argument("--serial", action="store_true",
                        help="run machine types one after another in this process, without Ray")
    parser.add_argument("--no-plots", action="store_true", help="skip the ROC/histogram PNGs")

    add_cost_arguments(parser)


def run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.frozen)  # fail fast on a bad recipe, before Ray starts
    require_torchaudio()  # and on a broken torch/torchaudio pair (one line, not per task)
    if args.verify_audio:  # read by features.extract here and in the (local) Ray workers
        os.environ["AUTOML_ASD_VERIFY_AUDIO"] = "1"
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder")
    if args.ground_truth is not None and not args.ground_truth.is_dir():
        raise FileNotFoundError(f"--ground-truth {args.ground_truth}: no such folder")
    if args.storage is not None:
        check_location(args.storage)
    if not args.serial:  # a wrong address (or $RAY_ADDRESS) fails in seconds, before any work
        check_address(args.address)
    if args.serial or is_local(args.address):  # the work runs on this machine
        check_here(args.device)

    # refuse absurd recipes (cache size, training work) before any work, with the estimate
    estimate = check_cost_for_data(recipe, args.data, args.machine_types,
                                   max_cache_gb=args.max_cache_gb,
                                   max_member_epochs=args.max_member_epochs,
                                   max_train_flops=args.max_train_flops,
                                   source=str(args.frozen))
    logger.info("estimated cost: %s", estimate.describe())
    runner: Runner
    if args.serial:
        runner = SerialRunner()
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

        runner = RayRunner(
            address=args.address,
            cpus_per_task=args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
            max_retries=args.max_retries,
            verbose=int(getattr(args, "verbose", 0)),
        )
    cfg = ApplyConfig(
        recipe=recipe,
        data=args.data,
        out=args.out,
        machine_types=None if args.machine_types is None else tuple(args.machine_types),
        resume=args.resume,
        cache_dir=args.cache_dir,
        device=args.device,
        ground_truth=args.ground_truth,
        plots=not args.no_plots,
        overwrite=args.overwrite,
        storage=args.storage,
    )
    report = apply_recipe(cfg, runner=runner)
    for line in summary_lines(report):
        print(line)
    return 1 if report.failed else 0


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted ``apply`` kept and how to go on (the CLI's last line)."""
    return (f"the machine types finished before the stop are kept in {args.out}; the same "
            "command with --resume runs the rest")


def summary_lines(report: ApplyReport) -> list[str]:
    """What ``apply`` prints when it ends: counts, where the outputs are, Ω over the machine
    types with labels (with their sections when there are more), and why there is none."""
    n = len(report.outcomes)
    n_ok = sum(o.status == "ok" for o in report.outcomes)
    n_skip = sum(o.status == "skipped" for o in report.outcomes)
    out = [f"recipe {report.recipe_name} ({report.recipe_hash[:12]}): {n_ok} machine type(s) "
           f"applied, {n_skip} resumed, {len(report.failed)} failed, in {report.seconds:.1f} s",
           f"outputs: {report.out_dir}"]
    out += [f"  FAILED {o.machine_type}: see {report.out_dir}/{o.machine_type}.error.txt"
            for o in report.outcomes if o.status == "failed"]
    if report.official_score is not None:
        scored = len({mt for mt, _ in report.metrics})
        sections = len(report.metrics)
        pngs = ", PNGs" if any(Path(f).suffix == ".png" for f in report.files) else ""
        out += [f"results: {report.out_dir / 'results.md'} (+ results.csv, metrics.json{pngs})",
                f"official score Ω = {report.official_score:.4f} over {scored} machine type(s)"
                + (f" of {n}" if scored != n else "")
                + (f" ({sections} sections)" if sections != scored else "")]
    elif n_ok + n_skip == 0:
        out.append("every machine type failed: no metrics")
    else:
        out.append("no labels or ground truth: metrics not computed")
    if report.dev_types_same_data:
        out.append(f"note: the recipe was chosen by a search on "
                   f"{', '.join(report.dev_types_same_data)} (same clip counts): in-sample "
                   "scores, not a figure for machines the search never saw")
    other = sorted(set(report.dev_types) - set(report.dev_types_same_data))
    if other:
        out.append(f"note: {', '.join(other)}: development type name(s) of the search that "
                   "chose the recipe, with other clips than it saw")
    return out
