"""Trial records: what one search trial ran and reported, as plain Python.

An executor (today :mod:`automl_asd.orchestration.tune`) turns its own results into
:class:`TrialRecord` objects; freezing (:mod:`automl_asd.search.freeze`), the final pick and the
novel-type check read the records, never a table. :func:`table` turns records into the one-row-
per-trial ``DataFrame`` of ``trials.parquet`` and ``search_report.md`` -- for reporting only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from automl_asd.io.trial_table import PARAM_PREFIX, STATUSES
from automl_asd.recipe_summary import trial_summary

if TYPE_CHECKING:
    import pandas as pd

    from automl_asd.io.clip_scores import ClipScores
    from automl_asd.recipe import Recipe
    from automl_asd.search.space import SearchSpace

__all__ = [
    "pending_reruns",
    "reference_capped",
    "PARAM_PREFIX",
    "STATUSES",
    "TrialRecord",
    "record_from_result",
    "trial_recipe",
    "rank_key",
    "table",
    "is_missing",
]

_NAN = float("nan")


@dataclass(frozen=True)
class TrialRecord:
    """One trial: its sampled configuration (native Python values, as the trial received it),
    the metrics of its last report and where it stands.

    ``order`` is the creation index (the reference recipe is the first trial);
    ``recipe_hash`` is the content hash of the recipe the trial ran (:func:`trial_recipe`),
    ``None`` when it never reported; ``behaviour_hash`` is that recipe's
    :meth:`~automl_asd.recipe.Recipe.behaviour_hash` (inert parameters at their defaults: two
    trials with the same one score every clip the same), ``None`` when unknown.
    ``clip_scores``: per ``(machine type, section)`` the ``(y_true, domains, scores)`` of the
    development test clips at full fidelity, when the executor kept them (the bootstrap final
    pick then needs no re-scoring); ``None`` otherwise. ``clip_scores_loader``: instead, a
    function that reads them when asked (an executor whose scores sit in remote checkpoints:
    the final pick reads only its candidates'); :meth:`kept_clip_scores` gives either.
    """

    trial_id: str
    order: int
    status: str
    config: Mapping[str, Any]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    recipe_hash: str | None = None
    error: str | None = None
    behaviour_hash: str | None = None
    is_reference: bool = False
    clip_scores: ClipScores | None = field(
        default=None, repr=False, compare=False)
    clip_scores_loader: Callable[[], ClipScores | None] | None = field(
        default=None, repr=False, compare=False)

    def kept_clip_scores(self) -> ClipScores | None:
        """The per-clip dev scores the trial kept: :attr:`clip_scores`, else what
        :attr:`clip_scores_loader` reads (each call reads again), else ``None``."""
        if self.clip_scores is not None:
            return self.clip_scores
        return self.clip_scores_loader() if self.clip_scores_loader is not None else None

    @property
    def omega(self) -> float:
        """Ω over the development types at the last reported rung (NaN without a report)."""
        value = self.metrics.get("omega")
        return float(value) if value is not None else _NAN

    @property
    def objective(self) -> float:
        """The space's selection objective (Ω for ``mean``; Ω for searches that predate it)."""
        value = self.metrics.get("objective", self.metrics.get("omega"))
        return float(value) if value is not None else _NAN

    @property
    def fidelity(self) -> float:
        value = self.metrics.get("fidelity")
        return float(value) if value is not None else _NAN

    def row(self) -> dict[str, Any]:
        """The record as one reporting row (see :func:`table`), without the summary column."""
        m = self.metrics
        row: dict[str, Any] = {
            "trial_id": self.trial_id, "order": self.order, "status": self.status,
            "omega": self.omega, "objective": self.objective, "fidelity": self.fidelity,
            "rung": m.get("rung", 0), "is_reference": self.is_reference,
            "wall_s": float(m.get("time_total_s", np.nan)),
            "finished_at": float(m.get("timestamp", np.nan)),  # last report, epoch s
            "recipe_hash": self.recipe_hash, "behaviour_hash": self.behaviour_hash,
        }
        for key in ("node_id", "host", "pid"):  # where the trial's last result came from
            row[key] = m.get(key)
        row["error"] = self.error
        for key, value in m.items():
            if "/" in key and isinstance(value, int | float) and not key.startswith("config/"):
                row[key] = float(value)
        for key, value in self.config.items():
            row[PARAM_PREFIX + key] = value
        return row


def pending_reruns(records: Sequence[TrialRecord]) -> int:
    """How many recipes a ``--resume`` still has to run again: configs of trials that ended
    before their first result (``not_run``: the time budget stopped them, or an interrupt),
    with no later trial of the same config and none of it complete."""
    def key(r: TrialRecord) -> str:
        return json.dumps(dict(r.config), sort_keys=True, default=str)

    last = {key(r): r for r in sorted(records, key=lambda r: r.order)}
    complete = {key(r) for r in records if r.status == "complete"}
    return sum(r.status == "not_run" and k not in complete and bool(r.config)
               for k, r in last.items())


def reference_capped(records: Sequence[TrialRecord], open_ids: Collection[str]) -> bool:
    """Whether a resume without a budget should run the reference again at full fidelity: a
    reference trial stopped itself below full fidelity at its cap (Tune counts it done: not
    among ``open_ids``, the trials saved unfinished) and no reference trial finished, failed
    (a re-run that failed is not queued again) or is unfinished (Tune continues that one)."""
    refs = [r for r in records if r.is_reference]
    return (any(r.status == "stopped_early" and r.trial_id not in open_ids for r in refs)
            and not any(r.status in ("complete", "error") or r.trial_id in open_ids
                        for r in refs))


#: The key of a trial's reported result that carries the WARNING lines of its rung (a trial's
#: log stays in its worker without ``-v``): the search's progress callback logs each distinct
#: line once; it is not a metric and no record keeps it.
TRIAL_WARNINGS = "trial_warnings"


def record_from_result(trial_id: str, order: int, config: Mapping[str, Any] | None,
                       metrics: Mapping[str, Any] | None, error: str | None, *,
                       reference_point: Mapping[str, Any] | None = None,
                       max_fidelity: float = 1.0,
                       clip_scores: ClipScores | None = None,
                       behaviour_hash: str | None = None,
                       clip_scores_loader: Callable[[], ClipScores | None] | None = None
                       ) -> TrialRecord:
    """A :class:`TrialRecord` from one trial's config, last metrics and error message.

    The status follows from them: ``error`` when there is an error, ``not_run`` without an Ω,
    ``stopped_early`` below ``max_fidelity``, else ``complete``. A trial is the reference when
    it reported so, or (with ``reference_point``) when its config is the reference point.
    ``clip_scores`` (or ``clip_scores_loader``) are kept for complete trials only.
    ``behaviour_hash``: the one the trial
    reported, else the argument (e.g. computed from the config for a trial of an older
    version).
    """
    metrics = dict(metrics or {})
    metrics.pop(TRIAL_WARNINGS, None)  # logged by the driver as they came, not a metric
    config = dict(config or {})
    omega = metrics.get("omega")
    fidelity = metrics.get("fidelity")
    if error is not None:
        status = "error"
    elif omega is None:
        status = "not_run"
    elif fidelity is not None and float(fidelity) < max_fidelity:
        status = "stopped_early"
    else:
        status = "complete"
    # "is_baseline": the metric's name in searches started before the rename (--resume).
    is_reference = bool(metrics.get("is_reference", metrics.get("is_baseline", 0))) \
        or (reference_point is not None and config == dict(reference_point))
    recipe_hash = metrics.get("recipe_hash")
    reported = metrics.get("behaviour_hash")
    return TrialRecord(trial_id=trial_id, order=order, status=status, config=config,
                       metrics=metrics, recipe_hash=None if recipe_hash is None
                       else str(recipe_hash), error=error, is_reference=is_reference,
                       clip_scores=clip_scores if status == "complete" else None,
                       clip_scores_loader=(clip_scores_loader if status == "complete"
                                           else None),
                       behaviour_hash=str(reported) if reported else behaviour_hash)


def trial_recipe(space: SearchSpace, config: Mapping[str, Any], *, name: str | None = None
                 ) -> Recipe:
    """The recipe a trial with ``config`` runs (the trainable and freezing both build it here,
    so the frozen recipe's content can be checked against the trial's ``recipe_hash``)."""
    return space.to_recipe(dict(config), name=name or f"{space.name}_trial")


def rank_key(record: TrialRecord) -> tuple[float, int]:
    """Sort key: highest objective first (NaN last), ties to the earliest trial."""
    value = record.objective
    return (math.inf if math.isnan(value) else -value, record.order)


def table(records: Sequence[TrialRecord], space: SearchSpace | None = None) -> pd.DataFrame:
    """One row per trial, in creation order: id, order, status, Ω, objective, fidelity, rung,
    wall time, where it ran, per-type metrics, error, the sampled parameters as
    ``param:<name>`` columns and (with ``space``) ``recipe``, a one-line summary.

    For reports and ``trials.parquet`` only: nothing reads this table back to freeze. With
    ``space``, integer dimensions get a nullable integer column (inactive = missing); a column
    mixing types (e.g. a choice of int or str) is stored as strings (parquet holds one type).
    """
    import pandas as pd  # noqa: PLC0415  (heavy: only when a table is built)

    rows = []
    for record in records:
        row = record.row()
        if space is not None:
            row["recipe"] = trial_summary(space, dict(record.config))
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.sort_values("order", kind="stable").reset_index(drop=True)
    if space is not None:
        for dim in space.dimensions():
            col = PARAM_PREFIX + dim.name
            if dim.kind == "int" and col in df.columns:
                df[col] = df[col].astype("Int64")
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if not is_missing(v)}
            if len(kinds) > 1:
                df[col] = [None if is_missing(v) else str(v) for v in df[col]]
    return df


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (an inactive conditional parameter in a nullable column)."""
    if value is None:
        return True
    import pandas as pd  # noqa: PLC0415  (heavy: only when a table is built)

    if value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))

