"""``automl-asd download``: fetch, verify and unpack a DCASE Task 2 data set."""

from __future__ import annotations

import argparse
import sys

from automl_asd.commands.args import path_arg, seconds_arg
from automl_asd.download import (
    DEFAULT_BASE_URL,
    RECORDS,
    SPLITS,
    DownloadError,
    download_dataset,
    format_records,
)
from automl_asd.errors import one_line

HELP = "download, verify (md5) and unpack the DCASE Task 2 data sets (2023-2025)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    years = sorted({r.year for r in RECORDS})
    parser.add_argument("--list", action="store_true",
                        help="print the known records and their machine types, then exit")
    parser.add_argument("--year", type=int, default=2025, choices=years,
                        help="challenge year (default: 2025)")
    parser.add_argument("--split", choices=SPLITS,
                        help="dev: development data; add: additional training data of the "
                             "evaluation machine types; eval: evaluation test data (required "
                             "unless --list)")
    parser.add_argument("--dest", type=path_arg, metavar="ROOT",
                        help="data root; gets ROOT/<machine_type>/{train,test,...} "
                             "(required unless --list)")
    parser.add_argument("--machine-types", nargs="+", metavar="MT",
                        help="only these machine types (default: all of the record)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, metavar="URL",
                        help="records API or mirror; URL/<record id> must return the "
                             f"record JSON (default: {DEFAULT_BASE_URL})")
    parser.add_argument("--zip-dir", type=path_arg, metavar="DIR",
                        help="where zips and partial downloads are kept "
                             "(default: ROOT/.downloads)")
    parser.add_argument("--remove-zips", action="store_true",
                        help="delete each zip after it was verified and extracted, also the "
                             "zips an earlier run kept (a later run then verifies the "
                             "extracted files only)")
    parser.add_argument("--refresh-metadata", action="store_true",
                        help="read the record's file list again instead of the copy cached by "
                             "an earlier run, even when nothing is downloaded (a run that "
                             "downloads a file reads it again anyway)")
    parser.add_argument("--retries", type=int, default=5, metavar="N",
                        help="attempts per request, the first one included, on transient "
                             "errors; 1 = no retry (default: 5)")
    parser.add_argument("--timeout", type=seconds_arg, default=60.0, metavar="S",
                        help="socket timeout in seconds (default: 60)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(format_records())
        return 0
    if args.split is None or args.dest is None:
        print("automl-asd download: error: --split and --dest are required (or use --list)",
              file=sys.stderr)
        return 2
    try:
        results = download_dataset(
            args.year, args.split, args.dest, machine_types=args.machine_types,
            base_url=args.base_url, zip_dir=args.zip_dir, keep_zips=not args.remove_zips,
            refresh_metadata=args.refresh_metadata,
            timeout_s=args.timeout, retries=args.retries,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except (DownloadError, OSError) as exc:
        print(f"automl-asd download: error: {one_line(exc)}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.machine_type:<15} {r.key:<40} {r.status:<10} "
              f"{r.bytes_downloaded / 2**20:9.1f} MiB {r.n_members:6d} files")
    print(f"{len(results)} machine types ready under {args.dest}")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted ``download`` kept and how to go on (the CLI's last line)."""
    return (f"verified files and whole machine types are kept under {args.dest}; the same "
            "command resumes the rest (a partial file from where it stopped)")
