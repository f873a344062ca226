"""Official DCASE Task 2 metrics (2023-2025 evaluator semantics) and the official score.

Per machine type and section, as the official DCASE 2025 Task 2 evaluator computes them:

* AUC (source) / AUC (target): ``roc_auc_score`` on that domain's normal clips against *all*
  anomalous clips of the section (both domains);
* pAUC: ``roc_auc_score(max_fpr=0.1)`` (McClish-standardised) over all clips of the section;
* AUC (all): every clip of the section (reported, not ranked);
* precision / recall / F1 per domain from the 0/1 decisions on that domain's clips only, with
  the evaluator's ``max(., eps)`` guards;
* pAUC (source) / pAUC (target): the official baseline's per-domain columns,
  ``roc_auc_score(max_fpr=0.1)`` over that domain's clips only (reported, not ranked; ``None``
  when the domain has no anomalous clips).

The official score Omega is the harmonic mean over [all AUC-s] + [all AUC-t] + [all pAUC],
each value first floored at ``sys.float_info.epsilon``. scikit-learn is used on purpose: its tie
handling (one ROC threshold per tied score, half credit per tied pair) *is* the official one.

Arrays in, numbers out: no file access here (ground truth: :mod:`automl_asd.ground_truth`; the
scoring loop over sections and submission folders: :mod:`automl_asd.evaluation.evaluate`).
"""

from __future__ import annotations

import logging
import math
import sys
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EPS",
    "MAX_FPR",
    "METRIC_FIELDS",
    "MachineMetrics",
    "amean_score",
    "floored_hmean",
    "machine_metrics",
    "official_score",
    "summary_table",
]

logger = logging.getLogger(__name__)

#: The evaluator's floor / division guard (``sys.float_info.epsilon``).
EPS: float = sys.float_info.epsilon
#: The evaluator's pAUC range: false-positive rates in [0, 0.1].
MAX_FPR: float = 0.1

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class MachineMetrics:
    """Official metrics of one (machine type, section); all values are fractions in [0, 1].

    The decision fields are ``None`` when no 0/1 decisions were given; ``pauc_source`` /
    ``pauc_target`` (the baseline's per-domain pAUC, not part of Ω) are ``None`` when that
    domain holds no anomalous clip.
    """

    auc_source: float
    auc_target: float
    pauc: float
    auc_all: float
    precision_source: float | None = None
    recall_source: float | None = None
    f1_source: float | None = None
    precision_target: float | None = None
    recall_target: float | None = None
    f1_target: float | None = None
    pauc_source: float | None = None
    pauc_target: float | None = None

    @property
    def official_values(self) -> tuple[float, float, float]:
        """``(auc_source, auc_target, pauc)``: this section's three inputs to Omega."""
        return (self.auc_source, self.auc_target, self.pauc)

    @property
    def score(self) -> float:
        """Harmonic mean of this section's three official values (eps-floored)."""
        return floored_hmean(self.official_values)

    def as_dict(self) -> dict[str, float | None]:
        """Field name -> value, in declaration order."""
        return asdict(self)


#: Column order of :func:`summary_table` and of the JSON per machine type.
METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(MachineMetrics))


def floored_hmean(values: Iterable[float]) -> float:
    """Harmonic mean of ``values`` after flooring each at :data:`EPS` (the evaluator's rule).

    Returns NaN if any value is NaN; raises ``ValueError`` for an empty input.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("floored_hmean: no values (need at least one machine type/section)")
    if np.isnan(arr).any():
        return math.nan
    from scipy.stats import hmean  # noqa: PLC0415  (heavy; `--help` stays light)

    return float(hmean(np.maximum(arr, EPS)))


def undefined_reason(y_true: ArrayLike, domains: ArrayLike) -> str | None:
    """Why a section's official metrics are undefined (no anomalous clips, or no normal clips
    of a domain), or None when they are defined."""
    y, is_target = _as_labels(y_true), _as_is_target(domains)
    if not y.any():
        return "no anomalous clips; AUC and pAUC are undefined"
    for name, normal_mask in (("source", ~is_target & ~y), ("target", is_target & ~y)):
        if not normal_mask.any():
            return f"no {name}-domain normal clips; AUC ({name}) is undefined"
    return None


def _as_labels(y_true: ArrayLike, n: int | None = None) -> NDArray[np.bool_]:
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise ValueError(f"machine_metrics: y_true must be 1-D, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise ValueError(
            f"machine_metrics: y_true must be 0/1 (1 = anomaly), got dtype {arr.dtype}"
        )
    bad = sorted({float(v) for v in np.unique(arr)} - {0.0, 1.0})
    if bad:
        raise ValueError(f"machine_metrics: y_true must be 0/1 (1 = anomaly), found {bad[:5]}")
    return arr.astype(bool)


def _as_is_target(domains: ArrayLike) -> NDArray[np.bool_]:
    """``"source"``/``"target"`` (any case, or a Domain enum) or 0/1 (1 = target) -> bool."""
    arr = np.asarray(domains)
    if arr.ndim != 1:
        raise ValueError(f"machine_metrics: domains must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        bad_num = sorted({float(v) for v in np.unique(arr)} - {0.0, 1.0})
        if bad_num:
            raise ValueError(
                f"machine_metrics: numeric domains must be 0 (source) or 1 (target), "
                f"found {bad_num[:5]}"
            )
        return arr.astype(bool)
    text = np.array([str(d).lower() for d in arr.tolist()], dtype=object)
    bad = sorted(set(text.tolist()) - {"source", "target"})
    if bad:
        raise ValueError(
            f"machine_metrics: domains must be 'source' or 'target', found {bad[:5]}; "
            "only labelled test clips of a known domain can be evaluated"
        )
    return np.asarray(text == "target", dtype=bool)


def _decision_prf(
    y: NDArray[np.bool_], decided: NDArray[np.bool_]
) -> tuple[float, float, float]:
    from sklearn.metrics import confusion_matrix  # noqa: PLC0415  (heavy)

    # labels=[0, 1] keeps the 2x2 shape when a domain holds a single class.
    tn, fp, fn, tp = confusion_matrix(y, decided, labels=[False, True]).ravel()
    precision = float(tp / max(tp + fp, EPS))
    recall = float(tp / max(tp + fn, EPS))
    f1 = float(2.0 * precision * recall / max(precision + recall, EPS))
    return precision, recall, f1


def machine_metrics(
    y_true: ArrayLike,
    domains: ArrayLike,
    scores: ArrayLike,
    decisions: ArrayLike | None = None,
    *,
    max_fpr: float = MAX_FPR,
) -> MachineMetrics:
    """Official metrics of one machine type and section from in-memory arrays.

    Args:
        y_true: ``(n,)`` 0/1 or bool, 1 = anomaly.
        domains: ``(n,)`` ``"source"``/``"target"`` (or 0/1 with 1 = target).
        scores: ``(n,)`` finite anomaly scores, higher = more anomalous.
        decisions: optional ``(n,)`` 0/1 decisions (1 = anomaly) for precision/recall/F1.
        max_fpr: pAUC range (the official value is 0.1).

    Returns:
        The section's :class:`MachineMetrics`.

    Raises:
        ValueError: mismatched lengths, non-finite scores, invalid labels/domains/decisions, or
            a section without anomalies or without normal clips of a domain.
    """
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415  (heavy; `--help` stays light)

    y = _as_labels(y_true)
    is_target = _as_is_target(domains)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"machine_metrics: scores must be 1-D, got shape {s.shape}")
    if not (len(y) == len(is_target) == len(s)):
        raise ValueError(
            f"machine_metrics: y_true, domains and scores differ in length "
            f"({len(y)}, {len(is_target)}, {len(s)})"
        )
    if not np.isfinite(s).all():
        idx = np.flatnonzero(~np.isfinite(s))[:5].tolist()
        raise ValueError(f"machine_metrics: non-finite scores at positions {idx}")
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"machine_metrics: max_fpr must be in (0, 1], got {max_fpr}")
    reason = undefined_reason(y, is_target)
    if reason is not None:
        raise ValueError(f"machine_metrics: {reason}")

    auc: dict[str, float] = {}
    for name, in_domain in (("source", ~is_target), ("target", is_target)):
        # The domain's normals against ALL anomalies of the section (both domains).
        keep = in_domain | y
        auc[name] = float(roc_auc_score(y[keep], s[keep]))
    pauc = float(roc_auc_score(y, s, max_fpr=max_fpr))
    auc_all = float(roc_auc_score(y, s))
    pauc_domain: dict[str, float | None] = {}
    for name, in_domain in (("source", ~is_target), ("target", is_target)):
        # The baseline's dev-mode column: that domain's clips only (normals and anomalies).
        pauc_domain[name] = (float(roc_auc_score(y[in_domain], s[in_domain], max_fpr=max_fpr))
                             if y[in_domain].any() else None)
    per_domain = {"pauc_source": pauc_domain["source"], "pauc_target": pauc_domain["target"]}

    if decisions is None:
        return MachineMetrics(auc["source"], auc["target"], pauc, auc_all, **per_domain)

    d = np.asarray(decisions)
    if d.shape != y.shape:
        raise ValueError(
            f"machine_metrics: decisions have shape {d.shape}, expected {y.shape}"
        )
    if d.dtype != np.bool_:
        bad = sorted({float(v) for v in np.unique(d.astype(np.float64))} - {0.0, 1.0})
        if bad:
            raise ValueError(f"machine_metrics: decisions must be 0/1, found {bad[:5]}")
    decided = d.astype(bool)
    ps, rs, fs = _decision_prf(y[~is_target], decided[~is_target])
    pt, rt, ft = _decision_prf(y[is_target], decided[is_target])
    return MachineMetrics(auc["source"], auc["target"], pauc, auc_all, ps, rs, fs, pt, rt, ft,
                          **per_domain)


def _official_inputs(per_machine: Mapping[K, MachineMetrics]) -> list[float]:
    values = list(per_machine.values())
    if not values:
        raise ValueError("official_score: no machine types/sections to average")
    return (
        [m.auc_source for m in values]
        + [m.auc_target for m in values]
        + [m.pauc for m in values]
    )


def official_score(per_machine: Mapping[K, MachineMetrics]) -> float:
    """Omega: h-mean over [all AUC-s] + [all AUC-t] + [all pAUC], each floored at eps.

    ``per_machine`` is keyed by machine type or by ``(machine type, section)``; only the values
    are used, so every section of every machine type contributes three values.
    """
    return floored_hmean(_official_inputs(per_machine))


def amean_score(per_machine: Mapping[K, MachineMetrics]) -> float:
    """Arithmetic mean of the same 3N values as :func:`official_score` (unranked)."""
    return float(np.mean(_official_inputs(per_machine)))


def _row_labels(keys: Sequence[Hashable]) -> list[str]:
    """Machine type for single-section keys, ``<mt>_section_<ss>`` when a type has several."""
    sections_per_mt = Counter(k[0] for k in keys if isinstance(k, tuple))
    labels: list[str] = []
    for key in keys:
        if isinstance(key, tuple):
            mt, section = str(key[0]), str(key[1])
            labels.append(mt if sections_per_mt[key[0]] == 1 else f"{mt}_section_{section}")
        else:
            labels.append(str(key))
    if len(set(labels)) != len(labels):
        dup = sorted(lab for lab, c in Counter(labels).items() if c > 1)
        raise ValueError(f"summary_table: duplicate row labels {dup}")
    return labels


def summary_table(per_machine: Mapping[K, MachineMetrics]) -> pd.DataFrame:
    """One row per machine type (or ``<mt>_section_<ss>``), then ``h-mean`` and ``a-mean`` rows.

    Columns: ``auc_source, auc_target, pauc, score`` and the remaining :data:`METRIC_FIELDS`.
    ``score`` is the row's h-mean of (AUC-s, AUC-t, pAUC); on the ``h-mean`` row it equals the
    official score Omega (the h-mean of the column h-means over equal-sized groups is the h-mean
    of all 3N values) and on the ``a-mean`` row the arithmetic mean of the 3N values. The
    ``h-mean`` row floors at eps like the evaluator; decision columns are NaN when absent.
    ``DataFrame.attrs`` holds ``official_score`` and ``amean_score``.
    """
    import pandas as pd  # noqa: PLC0415  (heavy)

    keys = list(per_machine.keys())
    labels = _row_labels(keys)
    rows: list[dict[str, float]] = []
    for key in keys:
        m = per_machine[key]
        row = {k: (math.nan if v is None else float(v)) for k, v in m.as_dict().items()}
        row["score"] = m.score
        rows.append(row)
    columns = ["auc_source", "auc_target", "pauc", "score", *METRIC_FIELDS[3:]]
    table = pd.DataFrame(rows, index=labels, columns=columns, dtype=np.float64)
    omega = official_score(per_machine)
    amean = amean_score(per_machine)
    h_row = {c: floored_hmean(table[c].to_numpy()) for c in columns}
    a_row = {c: float(table[c].mean(skipna=False)) for c in columns}
    h_row["score"], a_row["score"] = omega, amean
    table.loc["h-mean"] = pd.Series(h_row)
    table.loc["a-mean"] = pd.Series(a_row)
    table.index.name = "machine_type"
    table.attrs["official_score"] = omega
    table.attrs["amean_score"] = amean
    return table
