"""``automl-asd cache info|prune|clear``: see and bound what the feature and representation
caches hold (:mod:`automl_asd.caches`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from automl_asd.caches import KINDS, CacheSurvey, KindSummary, Removal, clear, prune, survey
from automl_asd.commands.args import path_arg
from automl_asd.environment import default_cache_dir
from automl_asd.errors import UsageError

HELP = ("show the feature and representation caches (size, entries, last use), prune the "
        "least recently used entries, or clear them")

_DAY = 86400.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="the cache folder, its size and, per kind and feature "
                                       "spec, the entries, bytes and oldest/newest last use")
    _add_dir(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    pr = sub.add_parser("prune", help="remove whole entries, least recently used first, until "
                                      "under --max-gb, and/or those unused for --older-than "
                                      "days")
    _add_dir(pr)
    pr.add_argument("--max-gb", type=float, default=None, metavar="GB",
                    help="keep the entries within this many GB (1e9 bytes)")
    pr.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                    help="remove entries not used for this many days")
    pr.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    pr.add_argument("--json", action="store_true", help="print JSON instead of text")
    cl = sub.add_parser("clear", help="remove every cache entry (or one kind's); asks first")
    _add_dir(cl)
    which = cl.add_mutually_exclusive_group()
    which.add_argument("--features", action="store_true", help="only the feature entries")
    which.add_argument("--representations", action="store_true",
                       help="only the trained representations")
    cl.add_argument("--yes", action="store_true",
                    help="do not ask (needed without a terminal, e.g. in CI)")


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=path_arg, default=None, metavar="DIR",
                        help="the cache (default: $AUTOML_ASD_CACHE or ~/.cache/automl-asd); "
                             "only cache entries are ever removed from it")


def _size(n: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _line(name: str, s: KindSummary) -> str:
    return (f"{name:<26} {s.entries:>7} {_size(s.bytes):>10}  {_when(s.oldest):<16}  "
            f"{_when(s.newest)}")


def _spec_words(spec: dict[str, object]) -> str:
    keys = ("n_mels", "n_fft", "hop_length", "win_length", "f_min", "f_max", "power")
    return " ".join(f"{k}={spec[k]}" for k in keys if spec.get(k) is not None
                    and not (k == "n_mels" and spec.get("kind") == "stft"))


def format_survey(found: CacheSurvey) -> str:
    """The text of ``cache info``."""
    if not found.root.is_dir():
        return f"{found.root}: no cache there yet (nothing stored)"
    lines = [f"{found.root}: {_size(found.bytes)} in {len(found.entries)} entries",
             f"{'kind':<26} {'entries':>7} {'size':>10}  {'oldest use':<16}  newest use"]
    for kind, total in found.by_kind().items():
        lines.append(_line(kind, total))
        for name, group in found.by_group(kind).items():
            spec = found.specs.get(name)
            lines.append(_line(f"  {name}", group)
                         + (f"  ({_spec_words(spec)})" if spec else ""))
    n, b = found.unfinished
    if n:
        lines.append(f"being written or removed: {n} ({_size(b)}; left alone)")
    if found.other is not None and found.other[0]:
        lines.append(f"not cache entries: {found.other[0]} files ({_size(found.other[1])}; "
                     "never removed by prune or clear)")
    return "\n".join(lines)


#: "3 feature entries", not "3 features entries"
_SINGULAR = {"features": "feature", "representations": "representation"}


def format_removal(result: Removal, root: Path) -> str:
    """The text of ``cache prune`` and ``cache clear``."""
    verb = "would remove" if result.dry_run else "removed"
    parts = []
    for kind in KINDS:
        chosen = [e for e in result.removed if e.kind == kind]
        size = _size(sum(e.bytes for e in chosen))
        parts.append(f"{len(chosen)} {_SINGULAR[kind]} entries ({size})")
    lines = [f"{root}: {verb} {', '.join(parts)}; kept {len(result.kept)} entries "
             f"({_size(sum(e.bytes for e in result.kept))})"]
    if result.leftovers[0]:
        lines.append(f"also removed {result.leftovers[0]} unfinished entries of killed writers "
                     f"({_size(result.leftovers[1])})")
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} entries in use (read or being computed "
                     "right now)")
    lines += [f"could not remove {p}: {reason}" for p, reason in result.failed]
    return "\n".join(lines)


def _confirm(question: str) -> bool:
    print(question + " [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:  # the CLI's "interrupted" on a line of its own, not the prompt's
        print(flush=True)
        raise
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    root = (args.cache_dir or default_cache_dir()).expanduser()
    if args.cache_action == "info":
        found = survey(root)
        print(json.dumps(found.to_dict(), indent=2) if args.json else format_survey(found))
        return 0
    if args.cache_action == "prune":
        if args.max_gb is None and args.older_than is None:
            raise UsageError("give --max-gb GB and/or --older-than DAYS")
        for option, value in (("--max-gb", args.max_gb), ("--older-than", args.older_than)):
            if value is not None and value < 0:
                raise UsageError(f"{option}: must not be negative, got {value:g}")
        result = prune(root, dry_run=args.dry_run,
                       max_bytes=None if args.max_gb is None else int(args.max_gb * 1e9),
                       older_than_s=None if args.older_than is None
                       else args.older_than * _DAY)
        print(json.dumps(result.to_dict(), indent=2) if args.json
              else format_removal(result, root))
        return 1 if result.failed else 0
    kinds = (("features",) if args.features else ("representations",) if args.representations
             else KINDS)
    planned = clear(root, kinds=kinds, dry_run=True)
    if not planned.removed:
        print(f"{root}: no {' or '.join(_SINGULAR[k] for k in kinds)} entries to remove")
        # what killed writers left still goes, unasked, as in prune (it is no entry)
        n, b = clear(root, kinds=kinds).leftovers
        if n:
            print(f"also removed {n} unfinished entries of killed writers ({_size(b)})")
        return 0
    if not args.yes:
        what = (f"{len(planned.removed)} {' and '.join(_SINGULAR[k] for k in kinds)} entries "
                f"({_size(sum(e.bytes for e in planned.removed))}) from {root}")
        if not sys.stdin or not sys.stdin.isatty():
            raise UsageError(f"cache clear: would remove {what}; no terminal to ask on, so "
                             "nothing was removed: pass --yes to remove them")
        if not _confirm(f"remove {what}?"):
            print("nothing removed")
            return 1
    result = clear(root, kinds=kinds)
    print(format_removal(result, root))
    return 1 if result.failed else 0
