"""What a frame-level Gaussian fit costs by window size, beside the cost scale the search uses.

Random features (``--clips`` training clips of ``--frames`` frames, 100 source + the rest
target), ``frame_gaussian`` fit + cross-fitted self-scores + scoring 100 clips, timed at each
window shape; printed beside :meth:`FrameGaussianDetector.cost_scale` (relative to a 256-value
window), the model the search's cost estimate scales untimed points by
(:func:`automl_asd.search.budget.cost_scale`).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/frame_cost.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from automl_asd.detectors.base import TrainSet
from automl_asd.detectors.frame_gaussian import FrameGaussianDetector

#: (mel bins, context frames, band_pool): windows of 64 .. 2,048 values.
SHAPES = ((64, 4, 4), (64, 8, 4), (64, 16, 4), (128, 16, 4), (64, 16, 1), (128, 16, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=110)
    parser.add_argument("--frames", type=int, default=188, help="6 s at hop 512 and 16 kHz")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    feats = {nb: [rng.standard_normal((args.frames, nb)).astype(np.float32)
                  for _ in range(args.clips)] for nb in (64, 128)}
    n = args.clips
    dom = np.array(["source"] * min(n, 100) + ["target"] * max(0, n - 100))
    rows = []
    for nb, ctx, bp in SHAPES:
        ts = TrainSet(feats[nb], dom, np.array(["a"] * n), np.array(["00"] * n),
                      np.array(["m"] * n))
        t0 = time.perf_counter()
        det = FrameGaussianDetector(context=ctx, band_pool=bp, ridge=0.01).fit(ts)
        det.self_scores(ts)
        det.score_samples(feats[nb][:100])
        rows.append((ctx * (nb // bp), time.perf_counter() - t0,
                     FrameGaussianDetector.cost_scale({"context": ctx, "band_pool": bp}, nb)))
    unit = next(sec for dim, sec, _ in rows if dim == 256)
    print("| window values | seconds | measured / 256 values | cost_scale |")
    for dim, sec, scale in rows:
        print(f"| {dim} | {sec:.2f} | {sec / unit:.2f} | {scale:.2f} |")


if __name__ == "__main__":
    main()
