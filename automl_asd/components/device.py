"""Torch device and thread settings shared by every stage and component.

Devices: :func:`resolve_device` is the one rule for ``"auto"``/``"cpu"``/``"cuda[:N]"``
(pipeline, detectors and bundles call it). :func:`deterministic_torch` switches torch to
deterministic algorithms for a block (bit-reproducible CPU training).

Torch (and BLAS) thread counts are set explicitly per stage so results never depend on what
ran before or on the runner.

Rule (documented in the README): feature decoding runs in a thread pool whose threads use one
torch thread each; training and scoring (``pipeline.run_machine`` / ``fit_shared``) run with
``num_threads`` torch and BLAS threads when the caller gives it (the Ray runner passes the
task's ``--cpus-per-task``), else with :func:`default_workers` (the cores this
process may use: its CPU affinity, capped by ``OMP_NUM_THREADS``). The previous counts are
restored after each stage. Float reductions depend on the thread count, so the same recipe on
the same data gives byte-identical scores for the same rule result, whatever the cache state
and whether a Ray task or this process runs it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

from automl_asd.errors import AutomlAsdError, UsageError

__all__ = ["DeviceError", "resolve_device", "deterministic_torch", "default_workers",
           "one_torch_thread", "keep_torch_threads", "torch_threads", "stage_threads"]


class DeviceError(AutomlAsdError, ValueError):
    """A requested torch device that this machine does not have."""


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` if a GPU is visible else ``"cpu"``; ``"cpu"`` passes (without
    importing torch); ``"cuda[:N]"`` passes when CUDA is available, else :class:`DeviceError`."""
    if device == "cpu":
        return device
    import torch  # noqa: PLC0415

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r}: CUDA is not available here; use 'cpu' or 'auto'")
    return device


def check_here(device: str) -> None:
    """:class:`~automl_asd.errors.UsageError` (``--device cuda: ...``) when ``device`` asks
    for CUDA and this machine has none: for commands whose work runs here (``--serial``, a
    local Ray), before any work (found 2026-12-07: `apply` failed each machine type in turn,
    leaving a run folder of error files; on a cluster the driver may rightly have no GPU)."""
    if device == "cpu" or device == "auto":
        return
    try:
        resolve_device(device)
    except DeviceError as exc:
        raise UsageError(f"--device {device}: {exc}") from None


@contextlib.contextmanager
def deterministic_torch(device: str) -> Iterator[None]:
    """Enable deterministic algorithms for the duration of the block, then restore."""
    import torch  # noqa: PLC0415

    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    # On CUDA some kernels lack deterministic variants (or need CUBLAS_WORKSPACE_CONFIG):
    # warn instead of failing; CPU runs are bit-reproducible.
    torch.use_deterministic_algorithms(True, warn_only=device != "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


def default_workers() -> int:
    """CPU cores this process may use (affinity mask, capped by ``OMP_NUM_THREADS`` if set,
    which Ray sets to a task's ``num_cpus``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return max(1, n)


def one_torch_thread() -> None:
    """Thread-pool initialiser: one torch intra-op thread in this (decode worker) thread.

    With torch's OpenMP backend the thread count is per calling thread, so this limits the
    pool's threads only (parallelism comes from the pool, not from intra-op threads); features
    are computed the same way in ``features.extract`` and in a loaded bundle."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)


@contextlib.contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Keep the calling thread's torch thread count across a block that starts threads which
    call ``torch.set_num_threads`` (a decode pool).

    ``torch.set_num_threads(1)`` in a pool thread also sets torch's process-wide default,
    which a thread that has not run a parallel op yet adopts on its first one: without this
    guard the main thread trained with 1 thread after a cold feature extraction and with all
    cores after a warm one, and the AE's scores depended on the cache state. Reading the count
    first initialises the caller's setting; it is restored afterwards.
    """
    import torch  # noqa: PLC0415

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[int]:
    """Run a block with exactly ``num_threads`` torch threads and as many BLAS threads
    (``None``: the module's rule), restoring the previous counts afterwards. Yields the count.

    BLAS (numpy's OpenBLAS, used by the covariance and distance backends) is set too: its
    reductions also depend on the thread count, and a Ray worker keeps the count it started
    with (1) whatever the task's ``num_cpus``, so ``--cpus-per-task 2`` scored otherwise than
    ``--serial`` on two cores (found 2026-12-08: ``hedge_logz_frame``'s scores moved ~1e-12).
    """
    import torch  # noqa: PLC0415

    n = num_threads if num_threads is not None else default_workers()
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield n
    finally:
        torch.set_num_threads(before)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def stage_threads(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: run ``fn`` under :func:`torch_threads` with its keyword ``num_threads``."""
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        requested = kwargs.get("num_threads")
        with torch_threads(requested if isinstance(requested, int) else None):
            return fn(*args, **kwargs)

    return wrapper
