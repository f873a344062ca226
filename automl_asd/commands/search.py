"""``automl-asd search``: find one recipe on development machine types and freeze it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from automl_asd.commands.args import path_arg
from automl_asd.components.device import check_here
from automl_asd.environment import require_torchaudio
from automl_asd.io.run_folder import (
    OutputError,
    RunFolder,
    check_outputs_apart,
    editable,
    journal,
    storage_lock,
)
from automl_asd.search.config import SearchConfig
from automl_asd.search.space import SHIPPED_SPACES_DIR, load_space, shipped_space_names
from automl_asd.storage import check_location, place

if TYPE_CHECKING:
    from automl_asd.search.novel_check import SearchData

HELP = ("search recipes on development machine types (Ray Tune + Optuna TPE + ASHA) and "
        "freeze the best to RUN_DIR/recipe.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=path_arg, metavar="DEV_ROOT",
                        help="development data root (<DEV_ROOT>/<machine_type>/{train,test})")
    parser.add_argument("--space", required=True, metavar="SPACE",
                        help="search-space YAML file or shipped name: "
                             f"{', '.join(shipped_space_names()) or 'none found'} "
                             f"(in {SHIPPED_SPACES_DIR})")
    parser.add_argument("--trials", required=True, type=int, metavar="N",
                        help="number of trials (the space's reference recipe is the first)")
    parser.add_argument("--out", required=True, type=path_arg, metavar="RUN_DIR",
                        help="run folder: recipe.json, trials.parquet, search_report.md, "
                             "omega_over_trials.png, Tune state (for --resume)")
    parser.add_argument("--machine-types", nargs="+", metavar="MT", default=None,
                        help="only these development types (default: every one under DEV_ROOT)")
    parser.add_argument("--address", default=None, metavar="ADDRESS",
                        help="Ray cluster address ('auto' = the running cluster; default: "
                             "$RAY_ADDRESS, else a local Ray with the dashboard off)")
    parser.add_argument("--max-concurrent", type=int, default=1, metavar="K",
                        help="trials running at once (default 1)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="S",
                        help="end the search after S seconds (the best finished trial is "
                             "frozen; running trials are saved unfinished and --resume "
                             "continues them, under its own budget; with --leave-one-out: S "
                             "per fold)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the search in RUN_DIR that was stopped (Ctrl-C, kill, "
                             "--time-budget) or crashed: finished trials are kept, unfinished "
                             "ones continue; refused when the space file, development data or "
                             "--seed changed")
    parser.add_argument("--seed", type=int, default=0, metavar="SEED",
                        help="TPE sampler seed (default 0)")
    parser.add_argument("--leave-one-out", action="store_true",
                        help="one search per development type held out; apply each frozen "
                             "recipe to its held-out type (RUN_DIR/leave_one_out.md)")
    parser.add_argument("--verify-audio", action="store_true",
                        help="key the feature cache by a sha256 of each clip's bytes instead of "
                             "by size/mtime/inode/ctime (reads every clip; for file systems "
                             "whose timestamps cannot be trusted; $AUTOML_ASD_VERIFY_AUDIO=1)")
    parser.add_argument("--cache-dir", type=path_arg, default=None, metavar="DIR",
                        help="feature cache shared by all trials (default: $AUTOML_ASD_CACHE "
                             "or ~/.cache/automl-asd; on a cluster, each node's own)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="N",
                        help="CPUs per trial (default 1)")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="F",
                        help="GPUs per trial, fractions allowed (default 0)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="torch device inside each trial (default auto)")
    parser.add_argument("--storage", default=None, metavar="URI",
                        help="Tune storage shared by all nodes on a multi-node cluster "
                             "(NFS path or s3://...; default RUN_DIR)")
    parser.add_argument("--novel", type=path_arg, default=None, metavar="ROOT",
                        help="labelled novel machine types, never used to choose: after the "
                             "search the top trials and the reference recipe are scored there "
                             "(search_report.md: 'does the choice carry?')")
    parser.add_argument("--novel-top-k", type=int, default=10, metavar="K",
                        help="complete trials scored on --novel (default 10)")


#: What a search writes into its run folder (``tune/``: Ray Tune's state, ``loo/``: folds).
SEARCH_PATTERNS = ("search.json", "recipe.json", "trials.parquet", "trials.csv",
                   "duplicates.json", "novel_check.parquet", "omega_over_trials.png",
                   "search_report.md", "leave_one_out.parquet", "leave_one_out.md", "tune/*",
                   "loo/*", "near_ties/*")


def run(args: argparse.Namespace) -> int:
    """Lock ``--out`` (one writer), refuse foreign files among the names a new search writes,
    run the search, then list the files it wrote in the folder's run manifest."""
    cfg = _config(args)  # fail fast on a bad space or setting, before the folder is created
    require_torchaudio()  # and on a broken torch/torchaudio pair (one line, not per trial)
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such folder")
    if args.novel is not None and not args.novel.is_dir():
        raise FileNotFoundError(f"--novel {args.novel}: no such folder")
    if args.storage is not None:
        check_location(args.storage)
    # a wrong address (or $RAY_ADDRESS) fails in seconds, before the run folder is created
    from automl_asd.orchestration.session import check_address, is_local  # noqa: PLC0415  (the Ray layer, loaded when used)

    check_address(args.address)
    if is_local(args.address):  # the trials run on this machine
        check_here(args.device)
    check_outputs_apart(args.out, args.storage, [("--data", args.data), ("--novel", args.novel)])
    # the development and --novel data, checked (once) before the run folder is created
    from automl_asd.search.novel_check import check_search_data  # noqa: PLC0415  (loaded when used)

    data = check_search_data(args.data, args.machine_types, args.novel)
    if args.resume and args.storage is None and not _holds_state(args.out):
        # refused before the folder is claimed and Ray starts (found 2026-12-07: after 8-10 s,
        # leaving a manifest and a lock in any folder, the data root too, so that a later
        # `apply --out` there was refused as "the outputs of automl-asd search")
        raise OutputError(f"{args.out}: no search to resume there (no trials table, Tune "
                          "state or leave-one-out folds); run without --resume")
    with storage_lock(args.storage, "search"), \
            RunFolder.open(args.out, command="search") as folder:
        if not args.resume:
            # its tune/, near_ties/ and loo/ files are ours too (an interrupted leave-one-out
            # search has only its folders, recorded in the manifest)
            claimed = (folder.owns("search.json") or folder.owns("leave_one_out.parquet")
                       or {"tune", "loo"} & set(folder.manifest.get("dirs") or ()))
            # a search stopped before its first trial (refused, or killed at start-up) left
            # nothing --resume could continue: it simply starts again
            if claimed and (args.storage is not None or _holds_state(args.out)):
                raise OutputError(f"{args.out} already holds a search; pass --resume to "
                                  "continue it or choose a new --out")
            # what such a start left in the folders it claimed is its own, and Tune would
            # take the tuner.pkl left in tune/ for a search to resume: found 2026-12-07, a
            # search that hit a full disk before Tune saved its state could neither be
            # resumed nor started again there
            began = set(folder.manifest.get("dirs") or ())
            if args.storage is None and "tune" in began and (args.out / "tune").is_dir():
                shutil.rmtree(args.out / "tune")
            folder.check_free([p for p in SEARCH_PATTERNS if p.split("/")[0] not in began],
                              can_overwrite=False)
        # an edited report or recipe is set aside, and kept beside if the run writes it anew
        stash = folder.stash_edited()
        before = _top_files(args.out)
        # claimed before any trial: a search killed outright (SIGKILL, a node lost) never
        # reaches the listing below, and its folder must still read as a search to --resume
        # (and its journal says the documents it may have rewritten are its own)
        folder.manifest["dirs"] = sorted({*(folder.manifest.get("dirs") or ()),
                                          "loo" if args.leave_one_out else "tune"})
        folder.save()
        journal(args.out, _JOURNAL, [*_DOCUMENTS, *_TABLES, *(
            f"loo/{mt}/{name}" for mt in (data.machines if args.leave_one_out else ())
            for name in _FOLD_DOCUMENTS)])
        try:
            return _run(args, cfg, data)
        finally:
            folder.manifest["dirs"] = sorted(d for d in ("tune", "loo", "near_ties")
                                             if (args.out / d).is_dir())
            # only what this run wrote: a refused or failed resume leaves an edited file as
            # the user's (found 2026-12-07: it was recorded as the tool's)
            after = _top_files(args.out)
            written = [name for name in sorted(after) if before.get(name) != after[name]]
            folder.settle_edited(stash, written)
            folder.record(written)
            folder.drop_journal(_JOURNAL)


#: the search's journal in its run folder, and the documents it names (a run killed before
#: it lists its files still owns them at the next start; see io/run_folder.py)
_JOURNAL = "search"
_DOCUMENTS = ("recipe.json", "search_report.md", "leave_one_out.md")
#: the other files a search writes at the top of its folder (journaled too: a search whose
#: manifest could not be saved at its end, e.g. on a full disk, still owns its search.json)
_TABLES = tuple(p for p in SEARCH_PATTERNS if "/" not in p and p not in _DOCUMENTS)
#: the documents of each leave-one-out fold's folder (``loo/<held-out type>/``)
_FOLD_DOCUMENTS = ("recipe.json", "search_report.md")


def _top_files(out: Path) -> dict[str, tuple[int, int, int]]:
    """The search's own names among the files directly in ``out``, and the documents of its
    leave-one-out folds (``loo/<type>/recipe.json``, ``*.md``: :func:`editable`), by relative
    path, with what tells a rewrite (an atomic write gives a new inode)."""
    paths = [p for p in out.iterdir() if p.name in SEARCH_PATTERNS]
    loo = out / "loo"
    if loo.is_dir() and not loo.is_symlink():
        paths += [p for fold in loo.iterdir() if fold.is_dir() and not fold.is_symlink()
                  for p in fold.iterdir() if editable(f"loo/{fold.name}/{p.name}")]
    found = {}
    for p in paths:
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            found[p.relative_to(out).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found


def _holds_state(out: Path) -> bool:
    """Whether ``out`` holds what ``--resume`` continues: Tune's experiment state, the trial
    table, or leave-one-out folds."""
    return ((out / "trials.parquet").is_file()
            or any((out / "tune").rglob("experiment_state*.json"))
            or any(p.is_dir() and any(p.iterdir()) for p in (out / "loo").glob("*")))


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted ``search`` kept and how to go on (the CLI's last line): --resume
    only where there is a search to continue, as the command itself checks."""
    if args.storage is not None or _holds_state(args.out):
        return (f"what the search finished is kept in {args.out}; the same command with "
                "--resume continues it")
    return f"no trial had run: the same command (without --resume) starts it again in {args.out}"


def _config(args: argparse.Namespace) -> SearchConfig:
    """The search's settings from the command line (ValueError on a bad space or setting)."""
    return SearchConfig(
        data=args.data, space=load_space(args.space), out=args.out, trials=args.trials,
        machine_types=tuple(args.machine_types) if args.machine_types else None,
        max_concurrent=args.max_concurrent, time_budget_s=args.time_budget,
        resume=args.resume, seed=args.seed, cache_dir=args.cache_dir, address=args.address,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        device=args.device, storage=None if args.storage is None else place(args.storage),
        verbose=int(getattr(args, "verbose", 0)),
        novel=args.novel, novel_top_k=args.novel_top_k)


def _run(args: argparse.Namespace, cfg: SearchConfig, data: SearchData) -> int:
    space = cfg.space
    if args.verify_audio:  # read by features.extract here and in the (local) Ray workers
        os.environ["AUTOML_ASD_VERIFY_AUDIO"] = "1"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from automl_asd.io.search_report import pick_certainty_line, unfinished_folds  # noqa: PLC0415  (pandas)
    from automl_asd.orchestration.tune import run_leave_one_out, run_search  # noqa: PLC0415  (loads pandas and Ray only when a search runs)
    from automl_asd.search.loo import trials_per_fold  # noqa: PLC0415  (pandas)

    if args.leave_one_out:
        loo = run_leave_one_out(cfg, data=data)
        print(f"leave-one-out over {len(loo.table)} development types ({space.name}, "
              f"{trials_per_fold(loo.table)} trials per fold; {space.describe_reference()}):")
        for _, row in loo.table.iterrows():
            if row["in_search_omega"] != row["in_search_omega"]:  # NaN: nothing finished yet
                print(f"  held out {row['held_out']:<12} no trial finished within the time "
                      "budget yet")
                continue
            print(f"  held out {row['held_out']:<12} in-search Ω {row['in_search_omega']:.4f}  "
                  f"held-out Ω {row['held_out_omega']:.4f}  ({space.reference_label} "
                  f"{row['reference_held_out_omega']:.4f})")
        if loo.table["gap"].notna().any():
            print(f"mean gap (in-search - held-out): {loo.table['gap'].mean():+.4f}")
        print(f"table: {loo.files['report']}")
        if args.novel is not None:
            print(f"novel check (does the choice carry?) of each fold: "
                  f"{args.out / 'loo'}/<held-out type>/search_report.md")
        partial = unfinished_folds(loo.table)
        if partial:
            print(f"time budget spent before fold(s) {', '.join(partial)} finished (their rows "
                  "come from the trials that did): the same command with --resume continues "
                  "them")
        return 0
    outcome = run_search(cfg, data=data)
    counts = outcome.trials["status"].value_counts().to_dict()
    status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    n = len(outcome.trials)
    print(f"{n} trial{'' if n == 1 else 's'} ({status}) on {', '.join(outcome.machine_types)}")
    base = (f"; {outcome.reference}: Ω = {outcome.reference_omega:.4f}"
            if outcome.reference_omega is not None else "")
    print(f"best trial {outcome.best_trial_id}: Ω = {outcome.best_omega:.4f}{base}")
    certainty = pick_certainty_line(outcome.run_dir)
    if certainty:
        print(certainty)
    print(f"frozen recipe: {outcome.files['recipe']}")
    print(f"report: {outcome.files['report']}")
    if "novel" in outcome.files:
        print(f"novel check (does the choice carry?): {outcome.files['novel']}")
    if outcome.novel_error is not None:
        print(f"automl-asd search: error: the novel check (does the choice carry?) failed: "
              f"{outcome.novel_error}; the frozen recipe and the report above are unaffected "
              "(fix it and run the same command with --resume: finished trials are not run again)",
              file=sys.stderr)
    if outcome.interrupted:
        print("search interrupted before all trials ran: continue it with the same command "
              "and --resume")
        return 130
    if outcome.unfinished:
        print(f"time budget spent with {outcome.unfinished} trial(s) unfinished: the same "
              "command with --resume continues them (under the --time-budget it is given, "
              "none without)")
    return 1 if outcome.novel_error is not None else 0
