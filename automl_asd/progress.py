"""Throttled progress lines for long loops (epochs of a network's training).

Training a baseline autoencoder takes minutes per machine type; a line per epoch would flood
tiny runs, none at all leaves a user staring at a silent terminal. :class:`EpochLog` logs at
INFO the first epoch, about every tenth of the run and the last one (at most ~11 lines per
fit), each with the loss, the elapsed time and an estimate of the time left.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["EpochLog", "few_names", "format_seconds", "kept_warnings", "types_label"]


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def types_label(machine_types: Iterable[Any]) -> str:
    """The machine types of a training set for a progress line: ``fan`` or ``3 machine types``."""
    types = sorted({str(t) for t in machine_types})
    if len(types) == 1:
        return types[0]
    return f"{len(types)} machine types"


class EpochLog:
    """Log ``<what>: epoch n/N loss L (elapsed, ETA)`` for about ``lines`` epochs of a fit.

    ``log(epoch, loss)`` takes the 1-based epoch number; epochs between the logged ones cost
    one integer comparison.
    """

    def __init__(self, logger: logging.Logger, what: str, epochs: int, *,
                 lines: int = 10) -> None:
        self.logger = logger
        self.what = what
        self.epochs = max(int(epochs), 1)
        self.every = max(1, math.ceil(self.epochs / max(lines, 1)))
        self.t0 = time.perf_counter()

    def due(self, epoch: int) -> bool:
        """Whether ``epoch`` (1-based) gets a line: the first, every ``every``-th, the last."""
        return epoch == 1 or epoch == self.epochs or epoch % self.every == 0

    def log(self, epoch: int, loss: float) -> None:
        if not self.due(epoch) or not self.logger.isEnabledFor(logging.INFO):
            return
        elapsed = time.perf_counter() - self.t0
        left = elapsed / epoch * (self.epochs - epoch)
        eta = "" if epoch == self.epochs else f", ETA {format_seconds(left)}"
        self.logger.info("%s: epoch %d/%d loss %.4f (%s%s)", self.what, epoch, self.epochs,
                         loss, format_seconds(elapsed), eta)


def few_names(names: Sequence[str], shown: int = 8) -> str:
    """``a, b, c`` or ``a, b, ... (N more)``: a list of names kept to one readable log line
    (a run over 200 machine types listed every one)."""
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head}, ... ({len(names) - shown} more)"


class _WarningLines(logging.Handler):
    """Collects the WARNING (and worse) messages of the package's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001  (a bad log call: reported as logging does, never raised)
            self.handleError(record)


@contextlib.contextmanager
def kept_warnings(keep: bool = True) -> Iterator[list[str]]:
    """``with kept_warnings() as lines:`` the package's WARNING messages logged inside go into
    ``lines`` too (a Ray task's or trial's log does not reach the driver's console: the task
    returns them, or the trial reports them, and the driver logs them again); ``keep=False``
    keeps none."""
    lines = _WarningLines()
    package = logging.getLogger("automl_asd")
    if keep:
        package.addHandler(lines)
    try:
        yield lines.lines
    finally:
        package.removeHandler(lines)
