"""Argument types and checks every sub-command shares (argparse level: a bad value is a usage
error, exit status 2, before any work)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from automl_asd.data import non_utf8_problem

#: options whose number must be > 0 (attribute names of the parsed arguments; the commands
#: check their other options themselves, with their own messages)
POSITIVE = ("max_cache_gb", "max_member_epochs", "max_train_flops", "cpus_per_task",
            "retries", "poll", "trials", "max_concurrent", "workers", "anomaly_gain",
            "novel_top_k")
#: options whose number must be >= 0
NON_NEGATIVE = ("gpus_per_task", "max_retries", "random_types", "seed")
#: at most this many random machine types (``synth --random-types``)
MAX_RANDOM_TYPES = 10_000


def path_arg(text: str) -> Path:
    """A path option's value, ``~`` expanded; an empty string (``--out "$UNSET"``) is refused
    instead of silently meaning the current folder.

    Found 2026-12-07: no shell expands ``~`` in ``--out=~/runs`` or ``--out "~/runs"``;
    ``synth`` then wrote a folder named ``~`` into the current one, which ``apply`` and
    ``search`` (expanding it) did not read."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    problem = non_utf8_problem(text)
    if problem is not None:  # refused here, before any work (it fails late and namelessly)
        raise argparse.ArgumentTypeError(problem)
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~name of an unknown user, or no home folder to expand to
        raise argparse.ArgumentTypeError(f"{text}: cannot expand '~' (no such user or home "
                                         "folder); give the full path") from None


def seconds_arg(text: str) -> float:
    """A duration option's value in seconds; zero or negative is refused (found 2026-12-07:
    ``download --timeout 0`` failed every request after all its retries, ``--timeout -1`` with
    "Timeout value out of range"). NaN and inf pass here and are refused by
    :func:`check_numbers` with its own message."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``parser.error`` (exit 2) for a NaN or infinite number in any option, and for values
    out of range in :data:`POSITIVE` / :data:`NON_NEGATIVE`."""
    for name, value in sorted(vars(args).items()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        option = "--" + name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            parser.error(f"{option}: {value} is not a finite number")
        if name in POSITIVE and value <= 0:
            parser.error(f"{option}: must be positive, got {value:g}")
        if name in NON_NEGATIVE and value < 0:
            parser.error(f"{option}: must not be negative, got {value:g}")
    if (getattr(args, "random_types", None) or 0) > MAX_RANDOM_TYPES:
        parser.error(f"--random-types: at most {MAX_RANDOM_TYPES}, got {args.random_types}")
