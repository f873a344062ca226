"""Console behaviour of the Ray commands: one line per finished trial, and no Ray chatter.

Without ``-v`` a search prints one line per finished trial (n/N, status, Ω, best so far,
elapsed, ETA) and, when stderr is a terminal, a tqdm bar; Ray's token-auth warning and start-up
lines, Tune's experiment box / TensorBoard hint / "Trial status" tables, Optuna's study lines
and the workers' log lines (prefixed ``(pid=...)``) stay hidden. ``-v`` shows them all again.

Imports Ray: import this module only where Ray is used anyway.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from ray import tune

from automl_asd.orchestration.budget import budget_left_s
from automl_asd.progress import format_seconds
from automl_asd.search.trials import TRIAL_WARNINGS

__all__ = ["quiet_ray", "ray_init_kwargs", "TrialProgress", "set_shown_before", "warning_kind"]

logger = logging.getLogger(__name__)

#: Loggers that print Ray's start-up and Tune's bookkeeping at INFO.
_RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air", "ray.data")
#: The token-auth notice of every local ``ray.init`` ("Token authentication is enabled ...").
_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def quiet_ray(verbose: int) -> None:
    """Hide Ray/Tune/Optuna console chatter unless ``verbose`` (call before ``ray.init``).

    Sets ``RAY_AIR_NEW_OUTPUT=0`` (unless set), which with ``RunConfig(verbose=0)`` turns off
    Tune's experiment box, TensorBoard hint and status tables; raises the Ray loggers to
    WARNING, the token-auth notice to ERROR and Optuna's logger to WARNING.
    """
    if verbose > 0:
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    for name in _RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(_AUTH_LOGGER).setLevel(logging.ERROR)
    try:
        import optuna  # noqa: PLC0415  (heavy third-party, loaded when used)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:  # pragma: no cover - optuna is a dependency
        pass


def ray_init_kwargs(verbose: int) -> dict[str, Any]:
    """Extra ``ray.init`` arguments: worker logs and Ray's INFO lines only with ``verbose``."""
    return {"log_to_driver": verbose > 0,
            "logging_level": logging.INFO if verbose > 0 else logging.WARNING}


#: Kinds of trial warnings a search logs before it says that -v shows the rest.
MAX_TRIAL_WARNINGS = 10
# a number standing alone ("3 clip(s)", "Ω 0.52"), not digits inside a name ("rndfan03",
# "section_00"): warnings about different machine types stay different kinds
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_shown_before: frozenset[str] = frozenset()


def warning_kind(line: str) -> str:
    """The kind of a warning line: the line with its standalone numbers replaced by ``#``."""
    return _NUMBER.sub("#", line)


def set_shown_before(lines: Sequence[str]) -> None:
    """Warnings this invocation logged before the search started (the development data's
    check): a trial that reports the same kind again (the same thin type, counted at its
    rung) is not logged a second time."""
    global _shown_before
    _shown_before = frozenset(warning_kind(line) for line in lines)


class TrialProgress(tune.Callback):  # type: ignore[misc]
    """Tune callback: one line per finished trial, and a tqdm bar when stderr is a terminal.

    ``n_rungs`` is the number of fidelity rungs (a trial that reported the last one is
    ``complete``, one stopped before it ``stopped early``). Counts and the best Ω are taken from
    Tune's trial list, so a resumed search continues the numbering.
    """

    def __init__(self, n_rungs: int, *, bar: bool | None = None,
                 reference_label: str = "reference recipe") -> None:
        self.n_rungs = n_rungs
        self.reference_label = reference_label
        self.bar_wanted = sys.stderr.isatty() if bar is None else bar
        self.total = 0
        self.t0 = time.perf_counter()
        self.session_done = 0
        self._bar: Any = None
        self._warned: set[str] = set()

    # Tune pickles the callbacks with the experiment state; a tqdm bar does not pickle.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bar": None}

    # -- the ray.tune.Callback hooks used -------------------------------------------------------
    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        self.total = int(total_num_samples or num_samples or 0)
        self.t0 = time.perf_counter()
        self.session_done = 0
        self._warned = set(_shown_before)  # a resumed run's console has shown none of its own
        if self.bar_wanted and self.total:
            from tqdm.auto import tqdm  # noqa: PLC0415  (heavy third-party, loaded when used)

            self._bar = tqdm(total=self.total, desc="search", unit="trial", file=sys.stderr,
                             dynamic_ncols=True, leave=False)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        """Log each kind of WARNING line the trials report (``TRIAL_WARNINGS``) once: a
        damaged cache entry, thin data, ... (a worker's own log is shown only with -v). Lines
        that differ only in their numbers are one kind; after ``MAX_TRIAL_WARNINGS`` kinds one
        line says that -v shows the rest. Kinds logged before the search
        (:func:`set_shown_before`) are not logged again."""
        for line in str(result.get(TRIAL_WARNINGS) or "").splitlines():
            kind = warning_kind(line)
            if not line or kind in self._warned:
                continue
            self._warned.add(kind)
            n_kinds = len(self._warned - _shown_before)
            if n_kinds <= MAX_TRIAL_WARNINGS:
                logger.warning("trial %s: %s", getattr(trial, "trial_id", "?"), line)
            elif n_kinds == MAX_TRIAL_WARNINGS + 1:
                logger.warning("trials report more kinds of warnings; -v shows every one")

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self._finished(trials, trial, error=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        self._finished(trials, trial, error=True)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- formatting ----------------------------------------------------------------------------
    def _complete(self, result: dict[str, Any]) -> bool:
        return result.get("omega") is not None and int(result.get("rung", 0)) >= self.n_rungs

    def line(self, trials: list[Any], trial: Any, *, error: bool) -> str:
        """The progress line of ``trial`` (just finished) given every trial of the run."""
        finished = {t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR")}
        finished.add(trial.trial_id)
        n_done = len(finished)
        total = max(self.total, len(trials), n_done)
        result = dict(trial.last_result or {})
        omega = result.get("omega")
        if error:
            err = str(getattr(trial, "error_msg", None) or "").strip().splitlines()
            status = "ERROR" + (f": {err[-1][:160]}" if err else "")
        elif omega is None:
            status = "not run"
        elif self._complete(result):
            status = f"{'complete':<13} Ω {float(omega):.4f}"
        else:
            status = (f"stopped early Ω {float(omega):.4f} at rung "
                      f"{int(result.get('rung', 0))}/{self.n_rungs}")
        if result.get("is_reference"):  # the space's starting point, queued first
            status += f" ({getattr(self, 'reference_label', 'reference recipe')})"
        best = [float(t.last_result["omega"]) for t in trials
                if (t.trial_id in finished and t.status != "ERROR" and t.last_result
                    and self._complete(dict(t.last_result)))]
        best_text = f"best Ω {max(best):.4f}" if best else "best Ω -"
        elapsed = time.perf_counter() - self.t0
        left = total - n_done
        eta = ""
        if left > 0 and self.session_done:
            eta_s = elapsed / self.session_done * left
            budget = budget_left_s()  # the search ends when its --time-budget does
            if budget is not None and budget < eta_s:
                eta = f", ends with the time budget in {format_seconds(budget)}"
            else:
                eta = f", ETA {format_seconds(eta_s)}"
        return (f"search {n_done}/{total} trial {trial.trial_id} {status} | {best_text} | "
                f"{format_seconds(elapsed)} elapsed{eta}")

    def _finished(self, trials: list[Any], trial: Any, *, error: bool) -> None:
        self.session_done += 1
        text = self.line(trials, trial, error=error)
        if self._bar is not None:
            self._bar.n = min(self._bar.total, int(text.split()[1].split("/")[0]))
            self._bar.refresh()
            self._bar.write(text, file=sys.stderr)
        else:
            logger.info("%s", text)

