"""``automl-asd doctor``: check that this Python environment can run automl-asd."""

from __future__ import annotations

import argparse
import time

from automl_asd.environment import run_checks

HELP = ("check the environment: Python, the locked torch/torchaudio pair and its compiled ops, "
        "Ray, Optuna, torch devices, the feature cache (one line each; exit 1 on a failure)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    del args
    t0 = time.perf_counter()
    checks = run_checks(print)
    failed = [c.name for c in checks if not c.ok]
    seconds = time.perf_counter() - t0
    if failed:
        print(f"doctor: {len(failed)} of {len(checks)} checks FAILED ({', '.join(failed)}); "
              f"fix the lines marked FAIL above")
        return 1
    print(f"doctor: all {len(checks)} checks passed in {seconds:.1f} s: this environment can run "
          "automl-asd")
    return 0
