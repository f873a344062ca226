"""The search's time budget as a Tune stopper whose deadline each invocation sets, and a search
generator that a resume does not find finished.

Tune's own ``TuneConfig(time_budget_s=...)`` is saved with the experiment and restored by
``Tuner.restore``: a search stopped by its budget came back with the budget already spent, so
``search --resume`` finished at once, whatever ``--time-budget`` it was given, and the search
could never be continued. :class:`BudgetStopper` holds no deadline of its own: it reads the
one the current process set (:func:`set_deadline`, called before every fit), so a resumed
search runs under the budget it is resumed with (none without ``--time-budget``).

When a stopper ends the experiment, Tune also marks its search generator finished and saves
that: restored, it would propose no further trial. :class:`ResumableSearchGenerator` comes back
finished only once it has created every trial the search asked for.

Imports Ray: import this module only where Ray is used anyway. The stopper runs in the
driver, where Tune's controller runs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ray import tune
from ray.tune.search import ConcurrencyLimiter, SearchGenerator

__all__ = ["BudgetStopper", "ResumableSearchGenerator", "set_deadline"]

logger = logging.getLogger(__name__)

#: ``time.monotonic()`` at which the running search stops (``None``: no budget)
_deadline: float | None = None
_budget_s: float | None = None


def set_deadline(budget_s: float | None) -> None:
    """Start this process's search budget: ``budget_s`` seconds from now (``None``: none)."""
    global _deadline, _budget_s
    _budget_s = budget_s
    _deadline = None if budget_s is None else time.monotonic() + budget_s


class BudgetStopper(tune.Stopper):  # type: ignore[misc]
    """Stops every trial once the deadline :func:`set_deadline` set has passed."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if _deadline is None or time.monotonic() < _deadline:
            return False
        logger.info("time budget of %.3g s spent: stopping the search (the best finished "
                    "trial is frozen)", _budget_s)
        return True


class ResumableSearchGenerator(SearchGenerator):  # type: ignore[misc]
    """Tune's :class:`SearchGenerator` whose restored state is finished only when every trial
    was created (``is_finished`` still compares the count with the trials asked for).

    Its concurrency limiter also forgets the trials it held as live: a trial the budget stopped
    before it started never reports back to the searcher, and the restored limiter would wait
    for it for ever. Restored unfinished trials run again without the limiter's count (Tune's
    resources still bound how many run at once)."""

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        self._finished = False
        searcher: Any = self.searcher
        while searcher is not None:
            if isinstance(searcher, ConcurrencyLimiter):
                searcher.live_trials = set()
                searcher.num_unfinished_live_trials = 0
            searcher = getattr(searcher, "searcher", None)
