"""Start-up cost of the quick CLI commands: wall time and peak RSS of a fresh process.

Each command runs ``--repeat`` times (default 5) as ``<python> -m automl_asd.cli ...`` in a new
process; the table shows the median wall time and the median peak resident set size
(``ru_maxrss`` of the finished child, from ``os.wait4``) next to the targets (1.5 s, 150 MB),
and the median CPU time (user + system), which a loaded machine does not inflate.
``info`` reads a tiny synthetic tree written once to a temporary folder.

    .venv/bin/python bench/cli_startup.py [--repeat 5] [--python .venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.5
TARGET_MB = 150.0


def measure(python: str, args: list[str]) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS in MB, exit code, CPU seconds) of one fresh ``automl_asd.cli``
    process. CPU time (user + system) does not grow with the machine's load as wall time does."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "automl_asd.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024.0, proc.returncode, cpu  # ru_maxrss: KiB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command (median; default 5)")
    ap.add_argument("--python", default=sys.executable, help="interpreter with automl-asd")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([args.python, "-m", "automl_asd.cli", "synth", "--size", "tiny",
                        "--machine-types", "fan", "valve", "--out", str(data)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        commands = [
            ["--help"],
            ["recipe", "list"],
            ["recipe", "show", "baseline_ae_mse"],
            ["recipe", "validate", "margin_knn", "baseline_ae_mse", "fast_default"],
            ["info", "--data", str(data)],
            ["search", "--help"],
        ]
        rows = []
        for cmd in commands:
            runs = [measure(args.python, cmd) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            rss = statistics.median(r[1] for r in runs)
            codes = {r[2] for r in runs}
            cpu = statistics.median(r[3] for r in runs)
            label = " ".join("DATA" if c == str(data) else c for c in cmd)
            ok = wall <= TARGET_S and rss <= TARGET_MB and codes == {0}
            rows.append((label, wall, rss, codes, ok, cpu))

    print(f"automl-asd CLI start-up, median of {args.repeat} fresh processes "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    print(f"{'command':<58} {'wall s':>7} {'CPU s':>6} {'RSS MB':>7}  target (<= {TARGET_S} s, "
          f"<= {TARGET_MB:.0f} MB)")
    for label, wall, rss, codes, ok, cpu in rows:
        note = "" if codes == {0} else f" exit {sorted(codes)}"
        print(f"{label:<58} {wall:7.2f} {cpu:6.2f} {rss:7.0f}  {'met' if ok else 'MISSED'}{note}")
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
