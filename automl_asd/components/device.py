"""Torch thread counts, set explicitly per stage so results never depend on what ran before.

Rule (documented in the README): feature decoding runs in a thread pool whose threads use one
torch thread each; training and scoring (``pipeline.run_machine`` / ``fit_shared``) run with
``num_threads`` torch threads when the caller gives it (the Ray runner passes the task's
``--cpus-per-task``), else with :func:`automl_asd.features.default_workers` (the cores this
process may use: its CPU affinity, capped by ``OMP_NUM_THREADS``). The previous count is
restored after each stage. Float reductions depend on the thread count, so the same recipe on
the same data gives byte-identical scores for the same rule result, whatever the cache state.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

__all__ = ["keep_torch_threads", "torch_threads", "stage_threads"]


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
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[int]:
    """Run a block with exactly ``num_threads`` torch threads (``None``: the module's rule),
    restoring the previous count afterwards. Yields the count used."""
    import torch

    from automl_asd.features import default_workers

    n = num_threads if num_threads is not None else default_workers()
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
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
