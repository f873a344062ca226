"""The trial table's vocabulary, one home for its builder (:mod:`automl_asd.search.trials`)
and its report (:mod:`automl_asd.io.search_report`): the column prefix of sampled parameters
and the status values. Imports nothing (the CLI's light commands load it)."""

from __future__ import annotations

__all__ = ["PARAM_PREFIX", "RAN_STATUSES", "STATUSES"]

#: Column prefix of the sampled parameters (``param:detector.name``, ...).
PARAM_PREFIX = "param:"
#: The statuses of a trial that ran (spent time), finished or not: ``complete`` (full
#: fidelity), ``stopped_early`` (a scheduler stopped it at a cheaper rung), ``error``.
RAN_STATUSES: tuple[str, ...] = ("complete", "stopped_early", "error")
#: Every status: those that ran, and ``not_run`` (no result, e.g. the time budget ran out first).
STATUSES: tuple[str, ...] = (*RAN_STATUSES, "not_run")
