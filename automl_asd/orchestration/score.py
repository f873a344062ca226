"""Score wav files with a model bundle in Ray tasks (``automl-asd score --address``).

The bundle's files are read once on the driver, verified, and put in the object store, so
workers need no access to the bundle folder (only to the wav paths, as for ``apply``). Each
task verifies the bundle again (the same no-pickle loader), scores one chunk of files and
returns plain arrays; chunks are reassembled in input order.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.bundle.files import read_bundle_files
from automl_asd.bundle.format import verify_bundle_files
from automl_asd.bundle.model import Bundle, BundleScores
from automl_asd.orchestration.session import init_ray, shutdown_ray

__all__ = ["score_paths_ray"]

logger = logging.getLogger(__name__)


def _score_chunk(
    files: Mapping[str, bytes],
    where: str,
    paths: Sequence[str],
    resample: bool,
    device: str,
    strict_versions: bool,
    batch_size: int,
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """Ray task body: rebuild the bundle from its bytes and score ``paths``."""
    bundle = Bundle.from_files(files, where, device=device, strict_versions=strict_versions)
    result = bundle.score(list(paths), resample=resample, batch_size=batch_size)
    return result.scores, result.decisions


def score_paths_ray(
    bundle_path: str | Path,
    paths: Sequence[str | Path],
    *,
    address: str | None = None,
    chunk_size: int = 256,
    resample: bool = False,
    device: str = "cpu",
    strict_versions: bool = True,
    batch_size: int = 1024,
    verbose: int = 0,
) -> BundleScores:
    """Score ``paths`` in Ray tasks of ``chunk_size`` files each (input order kept).

    ``address`` connects to a cluster (``"auto"``, ``ray://...``; default ``$RAY_ADDRESS`` or
    a local Ray). ``device="cuda"`` asks one GPU per task. Scores equal local scoring of the
    same chunks (see :meth:`automl_asd.bundle.Bundle.score`).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size {chunk_size}: must be >= 1")
    files = read_bundle_files(bundle_path)
    verify_bundle_files(files, bundle_path, strict_versions=strict_versions)  # fail fast here
    items = [str(p) for p in paths]
    if not items:
        return BundleScores((), np.zeros(0, np.float64), np.zeros(0, np.int8))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = init_ray(address, num_cpus=os.cpu_count() or 1, verbose=verbose)
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    t0 = time.perf_counter()
    try:
        ref = ray.put(dict(files))
        remote: Any = ray.remote(_score_chunk).options(
            num_cpus=1, num_gpus=1 if device.startswith("cuda") else 0, max_retries=1,
            name="automl-asd-score")
        chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
        refs = [remote.remote(ref, str(bundle_path), c, resample, device, strict_versions,
                              batch_size) for c in chunks]
        logger.info("score: %d file(s) in %d Ray task(s)", len(items), len(refs))
        try:
            outs: list[tuple[NDArray[np.float64], NDArray[np.int8]]] = ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ValueError):  # a bad clip or a NaN score: one line naming it
                raise cause from None
            raise
    finally:
        if started:
            shutdown_ray()
    logger.info("score: Ray scoring took %.2f s", time.perf_counter() - t0)
    return BundleScores(
        tuple(items),
        np.concatenate([np.asarray(s, np.float64) for s, _ in outs]),
        np.concatenate([np.asarray(d, np.int8) for _, d in outs]),
    )
