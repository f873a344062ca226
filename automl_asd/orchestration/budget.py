"""The search's time budget as a Tune stopper whose deadline each invocation sets, and a search
generator that a resume does not find finished.

Tune's own ``TuneConfig(time_budget_s=...)`` is saved with the experiment and restored by
``Tuner.restore``: a search stopped by its budget came back with the budget already spent, so
``search --resume`` finished at once, whatever ``--time-budget`` it was given, and the search
could never be continued. :class:`BudgetStopper` holds no deadline of its own: it reads the
one the current process set (:func:`set_deadline`, called before every fit), so a resumed
search runs under the budget it is resumed with (none without ``--time-budget``).

When the deadline passes, the stopper ends the run the way Ctrl+C does: through Tune's
graceful stop (the handler Tune installs for SIGUSR1 during ``fit()``). Running and waiting
trials are saved unfinished with the experiment, and ``--resume`` continues each from its last
checkpoint (its next fidelity rung), as after an interrupt. Stopping them as finished instead
(a stopper's ``stop_all``) would keep a trial stopped after its first rung at that rung's Ω for
good: it would read as stopped by ASHA (found 2026-12-07).

Where Tune's handler is not installed (``fit()`` outside the main thread), the stopper falls
back to ``stop_all``. Tune then marks its search generator finished and saves that, and ends
the running trials without telling the searcher: :class:`ResumableSearchGenerator` mends both.
A trial stopped before its first report is run again by a resume, as one trial more than
``--trials``; one stopped later keeps its last rung. The same re-run queue serves searches
saved by versions before the graceful stop, and the reference trial its cap (half the budget)
stopped below full fidelity: a resume without a budget runs it again at full fidelity
(:func:`set_run_again`), as one trial more.

Imports Ray: import this module only where Ray is used anyway. The stopper runs in the
driver, where Tune's controller runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ray import tune
from ray.tune.search import ConcurrencyLimiter, SearchGenerator

__all__ = ["BudgetStopper", "ResumableSearchGenerator", "UnfinishedAtStop", "budget_spent",
           "budget_left_s", "set_deadline", "set_run_again", "stopped_by_budget",
           "unfinished_at_stop"]

logger = logging.getLogger(__name__)

#: ``time.monotonic()`` at which the running search stops (``None``: no budget)
_deadline: float | None = None
_budget_s: float | None = None


_announced = False
#: whether the budget ended the running ``fit()`` through Tune's graceful stop
_stopped = False
#: ids of the trials running or waiting at the end of Tune's last step (:class:`UnfinishedAtStop`)
_unfinished: frozenset[str] = frozenset()


def set_deadline(budget_s: float | None) -> None:
    """Start this process's search budget: ``budget_s`` seconds from now (``None``: none)."""
    global _deadline, _budget_s, _announced, _stopped, _unfinished
    _budget_s, _announced, _stopped, _unfinished = budget_s, False, False, frozenset()
    _deadline = None if budget_s is None else time.monotonic() + budget_s


#: configs a restored search launches again first (:func:`set_run_again`)
_run_again: tuple[dict[str, Any], ...] = ()


def set_run_again(configs: Sequence[Mapping[str, Any]]) -> None:
    """Configs the search this process restores next launches again first, each as one trial
    more than asked for (unless its recipe finished at full fidelity, runs, or is queued)."""
    global _run_again
    _run_again = tuple(dict(c) for c in configs)


def stopped_by_budget() -> bool:
    """Whether the budget set last ended its search through Tune's graceful stop (its running
    and waiting trials were saved unfinished: ``--resume`` continues them)."""
    return _stopped


def unfinished_at_stop() -> frozenset[str]:
    """Ids of the trials running or waiting at the end of the last step of the search this
    process ran (:func:`set_deadline` clears them): after a run the budget or a signal
    stopped, the trials Tune saved unfinished, which ``--resume`` continues (empty after a
    run that finished, or one restored from a version without :class:`UnfinishedAtStop`)."""
    return _unfinished


class UnfinishedAtStop(tune.Callback):  # type: ignore[misc]
    """Notes the unfinished trials at the end of every step of Tune's loop: the last step's
    are the ones a stopped run saved unfinished. (Tune's clean-up afterwards marks the running
    ones terminated in memory; the saved state keeps them running, and a resume continues
    them.)"""

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        global _unfinished
        _unfinished = frozenset(str(t.trial_id) for t in trials
                                if t.status in ("PENDING", "RUNNING", "PAUSED"))


def budget_left_s() -> float | None:
    """Seconds until this process's search budget runs out (0 once spent; ``None``: none)."""
    return None if _deadline is None else max(0.0, _deadline - time.monotonic())


def budget_spent() -> bool:
    """Whether this process's search budget has run out."""
    return _deadline is not None and time.monotonic() >= _deadline


class BudgetStopper(tune.Stopper):  # type: ignore[misc]
    """Stops every trial once the deadline :func:`set_deadline` set has passed."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        global _announced, _stopped
        if _stopped or not budget_spent():
            return False
        if not _announced:  # Tune asks at every step until the trials have stopped
            _announced = True
            logger.info("time budget of %.3g s spent: stopping the search (the best finished "
                        "trial is frozen; running trials are saved for --resume)", _budget_s)
        if _graceful_stop():
            _stopped = True
            return False
        return True  # no graceful stop here: end the trials (ResumableSearchGenerator)


#: Ray's own warning when its stop handler runs: it names Ctrl+C, not a budget
_RAY_STOP_WARNING = "Stop signal received"


class _WithoutRayStopWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_RAY_STOP_WARNING)


def _graceful_stop() -> bool:
    """Run Tune's graceful-stop handler (what SIGUSR1 or Ctrl+C run during ``fit()``, Ray
    2.60's ``ray.tune.tune._setup_signal_catching``): the run ends after this step, with every
    unfinished trial saved as it is. False when it is not installed (not the main thread)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal,
                                                                                 "SIGUSR1"):
        return False
    handler = signal.getsignal(signal.SIGUSR1)
    if not callable(handler) or "signal_interrupt_tune_run" not in getattr(
            handler, "__qualname__", ""):
        return False
    ray_logger = logging.getLogger("ray.tune.tune")
    quiet = _WithoutRayStopWarning()
    sigint = signal.getsignal(signal.SIGINT)
    ray_logger.addFilter(quiet)
    try:
        handler(signal.SIGUSR1, None)
    finally:
        ray_logger.removeFilter(quiet)
    if sigint is handler:
        # Tune's handler puts back the SIGINT handler it found, as after a first Ctrl+C: a
        # Ctrl+C in the seconds Tune takes to end its trials would then abort at once, before
        # the report and the recipe are written (found 2026-12-07). The user's first Ctrl+C
        # is still a graceful one; a second aborts.
        signal.signal(signal.SIGINT, handler)
    return True


class ResumableSearchGenerator(SearchGenerator):  # type: ignore[misc]
    """Tune's :class:`SearchGenerator`, made resumable after a time budget stopped the search
    through ``stop_all`` (the fallback of :class:`BudgetStopper`; before it, every budget stop).

    - Restored, it is finished only when every trial was created (``is_finished`` still
      compares the count with the trials asked for): Tune saves the budget stop's "finished".
    - When the budget stops the search, Tune terminates the running and waiting trials without
      telling the searcher: the concurrency limiter would hold them as live for ever (a resume
      then waits for them) and TPE as running. They are reported to the searcher chain as
      ended without a result (TPE: pruned). Those that had not reported yet are kept by the
      chain's ``requeue_unreported`` (:class:`~automl_asd.orchestration.dedup.DedupSearcher`)
      and run again on ``--resume``, each as one trial more than asked for. An interrupt
      (Ctrl-C, SIGTERM) is left alone: its running trials run again on ``--resume`` and report
      then."""

    def __init__(self, searcher: Any) -> None:
        super().__init__(searcher)
        #: trials added to ``num_samples`` for the re-runs of budget-stopped trials
        self._extra_samples = 0

    def set_finished(self) -> None:
        super().set_finished()  # type: ignore[no-untyped-call]
        if budget_spent() and not _stopped:
            limiter = _in_chain(self.searcher, lambda s: isinstance(s, ConcurrencyLimiter))
            requeuer = _in_chain(self.searcher, lambda s: hasattr(s, "requeue_unreported"))
            if limiter is not None:
                live = sorted(limiter.live_trials)
                if requeuer is not None:
                    self._extra_samples += requeuer.requeue_unreported(live)
                for trial_id in live:
                    self.searcher.on_trial_complete(trial_id, result=None, error=False)

    def is_finished(self) -> bool:
        return bool(self._counter >= self.total_samples or self._finished)

    @property
    def total_samples(self) -> int:
        """Trials asked for plus the re-runs: what Tune's callbacks count to (the progress
        line read "6/6", then "7/7", when one re-run was added)."""
        extra = getattr(self, "_extra_samples", 0)  # a generator pickled before re-runs existed
        return int(self._total_samples) + int(extra)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "extra_samples": getattr(self, "_extra_samples", 0)}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._extra_samples = int(state.get("extra_samples", 0))

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        self._finished = False
        # a reference its cap stopped at a lower rung, resumed without a cap: one trial more
        # runs it at full fidelity (found 2026-12-07: it stayed stopped, "did not finish")
        requeuer = _in_chain(self.searcher, lambda s: hasattr(s, "queue_again"))
        for config in _run_again if requeuer is not None else ():
            if requeuer.queue_again(config):
                self._extra_samples += 1
                logger.info("the reference, stopped by its time cap before full fidelity, "
                            "runs again at full fidelity (one trial more than asked for)")


def _in_chain(searcher: Any, match: Any) -> Any:
    """The first searcher in ``searcher``'s wrapper chain (itself, then each ``.searcher``)
    for which ``match`` is true, else ``None``."""
    while searcher is not None and not match(searcher):
        searcher = getattr(searcher, "searcher", None)
    return searcher
