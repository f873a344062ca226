"""``automl-asd score``: score new recordings with a saved model bundle (no retraining).

Batch mode scores wav files and folders (recursively, sorted) and writes a CSV with the header
``name,score,decision`` (to ``--out`` or stdout). ``--watch DIR`` scores wav files as they
appear in ``DIR`` (a file is taken once its size is unchanged between two polls), appends rows
to the CSV as it goes, logs and skips malformed files, and stops on Ctrl-C, ``--max-files`` or
``--timeout``. Writers should drop clips atomically (write ``.name.wav.part``, then rename):
names starting with ``.`` and files not ending in ``.wav`` are ignored. The work is in
:mod:`automl_asd.serve` (and :mod:`automl_asd.orchestration.score` for ``--address``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automl_asd.bundle.model import BundleScores, check_finite_scores, load_bundle
from automl_asd.commands.args import path_arg
from automl_asd.environment import require_torchaudio
from automl_asd.errors import UsageError
from automl_asd.serve import (
    check_out,
    collect_wavs,
    csv_lock,
    emit_rows,
    record_scored_by,
    warn_other_machine_type,
    watch_folder,
)

HELP = "score wav files (or watch a folder) with a saved model bundle from `apply`"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=path_arg, metavar="PATH",
                        help="wav files and/or folders (searched recursively for *.wav)")
    parser.add_argument("--model", required=True, type=path_arg, metavar="BUNDLE",
                        help="bundle folder (<apply out>/models/<machine type>) or its .tar")
    parser.add_argument("--out", type=path_arg, default=None, metavar="CSV",
                        help="CSV to write (batch: replaced; --watch: appended); default (or "
                             "'-') stdout. Never an input wav or the model; an existing file "
                             "that is not a score CSV is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="batch mode: allow --out to replace a file that is not a score CSV")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="score file chunks as Ray tasks on this cluster ('auto', "
                             "'ray://host:10001'; 'local' = a local Ray); default: in process")
    parser.add_argument("--chunk-size", type=int, default=None, metavar="N",
                        help="files per Ray task with --address (default 256)")
    parser.add_argument("--resample", action="store_true",
                        help="resample/downmix clips whose rate/channels differ from the "
                             "bundle's feature spec (default: refuse them)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="clips per scoring batch (default 1024; one batch over a machine "
                             "type's test clips reproduces apply's scores bit for bit)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="decode/feature threads (default: usable cores, at most 8)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="torch device for neural detectors (default auto: CUDA if visible)")
    parser.add_argument("--allow-version-mismatch", action="store_true",
                        help="accept a bundle made with another automl-asd/torch version "
                             "(scores may differ slightly); checksums are still enforced")
    parser.add_argument("--watch", type=path_arg, default=None, metavar="DIR",
                        help="score new wav files as they appear in DIR (Ctrl-C stops); "
                             "write them elsewhere and move them in (a rename is atomic)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="S",
                        help="--watch poll interval in seconds (default 2)")
    parser.add_argument("--max-files", type=int, default=None, metavar="N",
                        help="--watch: stop after N files (scored or skipped)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="--watch: stop after S seconds (at least --poll: a file is "
                             "scored once it holds still between two polls)")


def _rows(names: Sequence[str], result: BundleScores) -> list[tuple[str, float, int]]:
    return [(n, float(s), int(d)) for n, s, d in
            zip(names, result.scores, result.decisions, strict=True)]


def run(args: argparse.Namespace) -> int:
    require_torchaudio()  # a broken torch/torchaudio pair: one line and the fix

    if not args.paths and args.watch is None:
        raise UsageError("give wav files/folders (PATH...) or --watch DIR")
    if args.paths and args.watch is not None:
        raise UsageError("give either PATH... or --watch DIR, not both")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size {args.batch_size}: must be >= 1")
    if args.chunk_size is not None and args.chunk_size < 1:  # --address: files per Ray task
        raise UsageError(f"--chunk-size {args.chunk_size}: must be >= 1")
    if args.watch is None and (args.max_files is not None or args.timeout is not None):
        raise UsageError("--max-files and --timeout apply to --watch only")
    if args.max_files is not None and args.max_files < 1:
        raise UsageError(f"--max-files {args.max_files}: must be >= 1")
    if args.timeout is not None and not args.timeout >= args.poll:
        raise UsageError(f"--timeout {args.timeout:g}: must be at least --poll ({args.poll:g} "
                         "s): a file is scored once it holds still between two polls")
    if args.watch is not None:  # watch mode scores in this process, file by file
        given = [option for option, value in (
            ("--address", args.address), ("--workers", args.workers),
            ("--batch-size", args.batch_size), ("--chunk-size", args.chunk_size))
            if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: batch mode only; --watch scores each "
                             "file as it arrives, in this process")
    if args.out is not None and str(args.out) == "-":  # the usual name of stdout (it wrote ./-)
        args.out = None
    strict = not args.allow_version_mismatch
    items = collect_wavs(args.paths) if args.paths else []  # fail fast on missing paths
    if args.out is not None:
        check_out(args.out, [p for _, p in items], args.model, watch=args.watch,
                  overwrite=args.overwrite)
    t0 = time.perf_counter()
    bundle = load_bundle(args.model, device=args.device, strict_versions=strict)
    t_load = time.perf_counter() - t0
    if args.watch is not None:
        with csv_lock(args.out):
            stats = watch_folder(bundle, args.watch, args.out, poll=args.poll,
                                 max_files=args.max_files, timeout=args.timeout,
                                 resample=args.resample)
        print(f"watch stopped ({stats.reason}): {stats.scored} scored, {len(stats.skipped)} "
              f"skipped in {stats.seconds:.1f} s" + (f" -> {args.out}" if args.out else ""),
              file=sys.stderr)
        return 0
    with csv_lock(args.out, "score"):  # before any work: never under a watcher's CSV
        return _score_batch(args, bundle, items, strict, t_load)


def _score_batch(args: argparse.Namespace, bundle: Any, items: list[tuple[str, Path]],
                 strict: bool, t_load: float) -> int:
    names = [n for n, _ in items]
    paths = [p for _, p in items]
    for p in paths:  # refuse wrong rate/channels before any work, naming the file
        bundle.check_wav(p, resample=args.resample)
    warn_other_machine_type([p.resolve().parent for p in paths], bundle.machine_type)
    # the sizes given on the command line; the others keep the library's defaults
    given = {k: v for k, v in (("batch_size", args.batch_size),
                               ("chunk_size", args.chunk_size)) if v is not None}
    t1 = time.perf_counter()
    if args.address:
        from automl_asd.orchestration.score import score_paths_ray  # noqa: PLC0415 (Ray: only with --address)

        result = score_paths_ray(args.model, paths, address=args.address,
                                 verbose=int(getattr(args, "verbose", 0)),
                                 resample=args.resample,
                                 device="cuda" if args.device == "cuda" else "cpu",
                                 strict_versions=strict, **given)
    else:
        given.pop("chunk_size", None)  # files per Ray task: --address only
        result = bundle.score(paths, resample=args.resample, workers=args.workers, **given)
    dt = time.perf_counter() - t1
    check_finite_scores(names, result.scores, args.model)
    emit_rows(_rows(names, result), args.out, append=False)
    if args.out is not None:  # a watch that goes on with this CSV checks it is the same bundle
        record_scored_by(args.out, bundle)
    n_anom = int(result.decisions.sum())
    print(f"scored {len(result)} clip(s) with bundle {bundle.machine_type} "
          f"({bundle.recipe.name}): {n_anom} anomalous (threshold {bundle.threshold:.4g}); "
          f"load {t_load:.2f} s, scoring {dt:.2f} s ({len(result) / max(dt, 1e-9):.1f} clips/s)"
          + (f" -> {args.out}" if args.out else ""), file=sys.stderr)
    return 0
