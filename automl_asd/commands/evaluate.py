"""``automl-asd evaluate``: official DCASE metrics of a folder of submission CSVs."""

from __future__ import annotations

import argparse
import sys

from automl_asd.commands.args import path_arg
from automl_asd.errors import UsageError
from automl_asd.evaluation.evaluate import evaluate_submission
from automl_asd.io.official_table import write_official_csv, write_official_markdown
from automl_asd.io.results import read_machine_summary, recipe_of_run, write_evaluation_json
from automl_asd.io.run_folder import check_report_file

HELP = "score submission CSVs against ground truth with the official DCASE metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scores", type=path_arg, required=True, metavar="DIR",
        help="folder with anomaly_score_<mt>_section_<ss>_test.csv and decision_result_...csv",
    )
    parser.add_argument(
        "--ground-truth", type=path_arg, required=True, metavar="DIR",
        help="the official evaluator's folder (ground_truth_data/, ground_truth_domain/, "
        "optional ground_truth_attributes/) or a DCASE data root with labelled test names",
    )
    parser.add_argument(
        "--machine-types", nargs="+", default=None, metavar="MT",
        help="evaluate only these machine types of the ground truth (default: all)",
    )
    parser.add_argument("--json", type=path_arg, default=None, metavar="FILE",
                        help="also write {official_score, machine_types: {...}} as JSON")
    parser.add_argument("--out", type=path_arg, default=None, metavar="FILE",
                        help="also write the official result columns per machine type and "
                             "section (the results.csv layout), or Markdown if FILE ends in .md")


def run(args: argparse.Namespace) -> int:
    import pandas as pd  # noqa: PLC0415  (heavy third-party, loaded when used)

    if args.json is not None and args.out is not None \
            and args.json.expanduser().resolve() == args.out.expanduser().resolve():
        # found 2026-12-07: the Markdown or CSV table silently replaced the JSON
        raise UsageError(f"--json {args.json} and --out {args.out}: the same file; give two "
                         "different files")
    for option, path in (("--json", args.json), ("--out", args.out)):
        if path is not None:  # before any work, never over an input or a run's file
            check_report_file(path, option, inputs=[("--ground-truth", args.ground_truth)])
    result = evaluate_submission(
        args.scores, args.ground_truth, machine_types=args.machine_types
    )
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(result.table.to_string(float_format=lambda x: f"{x:.4f}", na_rep="-"))
    print(f"\nofficial score (Ω): {result.official_score:.6f}   "
          f"a-mean: {result.table.attrs['amean_score']:.6f}   "
          f"({len(result.per_section)} machine type/section(s))")
    if args.json is not None:
        print(f"wrote {write_evaluation_json(result.to_json_dict(), args.json)}", file=sys.stderr)
    if args.out is not None:
        if args.out.suffix.lower() == ".md":
            # An apply output folder names its recipe in <mt>.summary.json.
            mts = sorted({mt for mt, _ in result.per_section})
            summaries = {mt: s for mt in mts
                         if (s := read_machine_summary(args.scores, mt)) is not None}
            path = write_official_markdown(args.out, result.per_section,
                                           recipe=recipe_of_run(summaries))
        else:
            path = write_official_csv(args.out, result.per_section)
        print(f"wrote {path}", file=sys.stderr)
    return 0
