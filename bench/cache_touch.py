"""Cost of recording a cache entry's last use on read (``components.files.mark_used``: one
``utime`` of the entry), measured side by side in one run.

* the ``utime`` call alone, per call (``--calls`` times on one entry folder);
* a cached ``features.extract`` of one synthetic machine type's train clips, with the touch and
  with it switched off, interleaved ``--repeat`` times each (median wall time and the ratio).

    .venv/bin/python bench/cache_touch.py [--size tiny|small] [--repeat 9] [--calls 20000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from automl_asd import features
from automl_asd.components.files import mark_used
from automl_asd.features import FeatureSpec, extract
from automl_asd.synth import generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=("tiny", "small"))
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cache-touch-") as tmp:
        data, cache = Path(tmp) / "data", Path(tmp) / "cache"
        generate(data, machine_types=("fan",), size=args.size, seed=0)
        clips = sorted((data / "fan" / "train").glob("*.wav"))
        spec = FeatureSpec()
        extract(clips, spec, cache_dir=cache, progress=False)  # cold: writes the entry
        (entry,) = [p for p in (cache / "features").glob("*/*") if not p.name.startswith(".")]
        t0 = time.perf_counter()
        for _ in range(args.calls):
            mark_used(entry)
        per_call_us = (time.perf_counter() - t0) / args.calls * 1e6

        def timed() -> float:
            t = time.perf_counter()
            extract(clips, spec, cache_dir=cache, progress=False)
            return time.perf_counter() - t

        with_touch, without = [], []
        for _ in range(args.repeat):
            with_touch.append(timed())
            features.mark_used = lambda path: None  # type: ignore[assignment]
            without.append(timed())
            features.mark_used = mark_used
        a, b = statistics.median(with_touch), statistics.median(without)
        print(f"mark_used (utime) per call: {per_call_us:.2f} us ({args.calls} calls)")
        print(f"cached extract of {len(clips)} clips ({args.size}), median of {args.repeat}: "
              f"with touch {a * 1e3:.2f} ms, without {b * 1e3:.2f} ms, ratio {a / b:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
