"""``automl-asd summarize``: several apply runs side by side."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from automl_asd.commands.args import path_arg
from automl_asd.components.files import atomic_write_text
from automl_asd.io.run_folder import check_report_file
from automl_asd.io.run_summary import read_apply_run, summary_csv, summary_markdown

logger = logging.getLogger(__name__)

HELP = ("put several apply runs side by side: official score per machine type and overall, "
        "recipe name and hash")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=path_arg, metavar="RUN_DIR",
                        help="--out folders of `automl-asd apply` (with <mt>.summary.json and, "
                             "when labels existed, metrics.json)")
    parser.add_argument("--out", type=path_arg, default=None, metavar="FILE",
                        help="also write the table: Markdown, or CSV if FILE ends in .csv")


def run(args: argparse.Namespace) -> int:
    if args.out is not None:  # before any work, never over a run's own file
        check_report_file(args.out, "--out")
    runs = [read_apply_run(path) for path in distinct_folders(args.runs)]
    text = summary_markdown(runs)
    print(text, end="")
    if args.out is not None:
        body = summary_csv(runs) if args.out.suffix.lower() == ".csv" else text
        print(f"wrote {atomic_write_text(args.out, body)}", file=sys.stderr)
    return 0


def distinct_folders(folders: list[Path]) -> list[Path]:
    """``folders`` without repeats of one folder (the same resolved path: given twice, or
    once through a symbolic link), each repeat dropped with a warning naming both. Found
    2026-12-07: `summarize out1 out1` listed the run twice, as if two runs agreed."""
    seen: dict[Path, Path] = {}
    for folder in folders:
        key = folder.expanduser().resolve()
        if key in seen:
            logger.warning("%s: the same folder as %s; listed once", folder, seen[key])
            continue
        seen[key] = folder
    return list(seen.values())
