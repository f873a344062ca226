"""The search objective: apply one recipe to every development machine type, then score it.

Pure library code (no Ray): ``pipeline.run_machine`` trains and scores each machine type
without looking at labels; only afterwards are the test labels and domains read from the clips
to compute the official metrics (AUC-s, AUC-t, pAUC) and Ω over all types.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl_asd.data import Clip, Domain, Label, MachineData

if TYPE_CHECKING:
    from automl_asd.recipe import Recipe

__all__ = ["ObjectiveResult", "TypeMetrics", "evaluate_recipe", "labels_for", "METRIC_KEYS"]

logger = logging.getLogger(__name__)

#: Per-type metrics reported by every trial (the three that enter Ω).
METRIC_KEYS = ("auc_source", "auc_target", "pauc")


@dataclass(frozen=True)
class TypeMetrics:
    """One machine type's (or type/section's) official metrics and its own Ω."""

    auc_source: float
    auc_target: float
    pauc: float
    omega: float
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveResult:
    """Ω over all evaluated machine types plus per-type metrics and timings."""

    omega: float
    per_type: Mapping[str, TypeMetrics]
    fidelity: float
    wall_s: float
    timings: Mapping[str, float] = field(default_factory=dict)
    #: Representation cache counters of this evaluation (``hits``, ``misses``, ``build_s``).
    cache: Mapping[str, float] = field(default_factory=dict)
    #: Per key of ``per_type``: ``(y_true, domains, scores)`` of the scored test clips (for
    #: bootstrap selection rules; not reported to Tune).
    per_clip: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False)

    def flat(self) -> dict[str, float]:
        """``{"omega", "fidelity", "wall_s", "<type>/<metric>", "time/<stage>",
        "cache/<counter>"}`` (Tune keys)."""
        out: dict[str, float] = {"omega": self.omega, "fidelity": self.fidelity,
                                 "wall_s": self.wall_s}
        for key, m in self.per_type.items():
            out[f"{key}/auc_source"] = m.auc_source
            out[f"{key}/auc_target"] = m.auc_target
            out[f"{key}/pauc"] = m.pauc
            out[f"{key}/omega"] = m.omega
        for stage, seconds in self.timings.items():
            out[f"time/{stage}"] = seconds
        for name, value in self.cache.items():
            out[f"cache/{name}"] = float(value)
        return out


def labels_for(machine: MachineData, names: list[str], sections: list[str]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of scored test clips, looked up by (section, file name).

    Returns ``(y_true (n,) int 1=anomaly, domains (n,) str "source"/"target")``.
    Raises ``ValueError`` naming the clip when its label or domain is unknown (eval data).
    """
    index: dict[tuple[str, str], Clip] = {(c.section, c.name): c for c in machine.test}
    y = np.zeros(len(names), dtype=np.int64)
    dom = np.empty(len(names), dtype=object)
    for i, (name, section) in enumerate(zip(names, sections, strict=True)):
        clip = index.get((section, name))
        if clip is None:
            raise ValueError(f"{machine.root}: scored clip {name} (section {section}) is not a "
                             "test clip of this tree")
        if clip.label is Label.UNKNOWN or clip.domain is Domain.UNKNOWN:
            raise ValueError(f"{clip.path}: label/domain unknown; the search objective needs "
                             "labelled development test clips (pass ground truth to scan)")
        y[i] = 1 if clip.label is Label.ANOMALY else 0
        dom[i] = str(clip.domain)
    return y, dom.astype(str)


def evaluate_recipe(recipe: Recipe, machines: Mapping[str, MachineData], *,
                    cache_dir: Any = None, device: str = "auto",
                    fidelity: float = 1.0,
                    reuse_representations: bool = True) -> ObjectiveResult:
    """Apply ``recipe`` to every machine type and compute the official score.

    Args:
        recipe: the recipe to evaluate.
        machines: development machine types (labelled test clips), e.g. from ``data.scan``.
        cache_dir: shared feature cache (computed once per feature spec, reused by all trials).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        fidelity: fraction of source train clips used for training (ASHA's budget); below 1
            network families also train ``fidelity x epochs`` epochs
            (:func:`automl_asd.representation_cache.at_fidelity`).
        reuse_representations: reuse trained networks stored under ``cache_dir`` by earlier
            evaluations with the same representation (:mod:`automl_asd.representation_cache`).
    Returns:
        Ω (harmonic mean of every type's AUC-s, AUC-t and pAUC) and per-type metrics. A type
        with several sections is keyed ``"<type>/<section>"`` per section.
    """
    from automl_asd.metrics import machine_metrics, official_score
    from automl_asd.pipeline import fit_shared, needs_shared, run_machine, select_train_clips
    from automl_asd.representation_cache import (
        RepresentationCache,
        at_fidelity,
        data_fingerprint,
    )

    if not machines:
        raise ValueError("evaluate_recipe: no machine types to evaluate")
    recipe = at_fidelity(recipe, fidelity)
    rep_cache = (RepresentationCache(None if cache_dir is None else Path(cache_dir))
                 if reuse_representations else None)
    per_clip: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    t0 = time.perf_counter()
    all_metrics: dict[str, Any] = {}
    per_type: dict[str, TypeMetrics] = {}
    timings: dict[str, float] = {}
    shared = None
    if needs_shared(recipe):
        # One network over every development type's training clips (test clips unread).
        def build() -> list[dict[str, Any]]:
            return fit_shared(recipe, machines, cache_dir=cache_dir, device=device,
                              fidelity=fidelity)

        if rep_cache is None:
            shared = build()
        else:
            used = [c for m in machines.values()
                    for c in select_train_clips(recipe, m, fidelity=fidelity)[0]
                    + [c for c in m.supplemental if c.kind == "noise"]]
            shared = rep_cache.shared(recipe, data_fingerprint(used), fidelity, build)
        timings["shared"] = time.perf_counter() - t0
    for mt in sorted(machines):
        machine = machines[mt]
        result = run_machine(recipe, machine, cache_dir=cache_dir, device=device,
                             fidelity=fidelity, shared=shared, rep_cache=rep_cache)
        for stage, seconds in dict(getattr(result, "timings", {}) or {}).items():
            timings[stage] = timings.get(stage, 0.0) + float(seconds)
        names = [str(n) for n in result.names]
        sections = [str(s) for s in result.sections]
        scores = np.asarray(result.scores, dtype=np.float64)
        decisions = np.asarray(result.decisions, dtype=np.int64)
        # Labels are read only now, after the recipe has scored every clip.
        y_true, domains = labels_for(machine, names, sections)
        unique_sections = sorted(set(sections))
        for section in unique_sections:
            key = mt if len(unique_sections) == 1 else f"{mt}/{section}"
            sel = np.array([s == section for s in sections])
            mm = machine_metrics(y_true[sel], domains[sel], scores[sel], decisions[sel])
            all_metrics[key] = mm
            per_clip[key] = (y_true[sel], domains[sel], scores[sel])
            extra = {k: float(v) for k, v in _numeric_fields(mm).items()
                     if k not in METRIC_KEYS}
            per_type[key] = TypeMetrics(
                auc_source=float(mm.auc_source), auc_target=float(mm.auc_target),
                pauc=float(mm.pauc), omega=float(official_score({key: mm})), extra=extra)
        logger.debug("%s: %s", mt, per_type.get(mt))
    omega = float(official_score(all_metrics))
    if not math.isfinite(omega):
        raise ValueError(f"evaluate_recipe: Ω is {omega} (non-finite scores?)")
    wall = time.perf_counter() - t0
    logger.info("recipe %s at fidelity %.2f: Ω=%.4f over %d types in %.1f s",
                getattr(recipe, "name", "?"), fidelity, omega, len(per_type), wall)
    return ObjectiveResult(omega=omega, per_type=per_type, fidelity=fidelity, wall_s=wall,
                           timings=timings,
                           cache=rep_cache.stats.as_dict() if rep_cache is not None else {},
                           per_clip=per_clip)


def _numeric_fields(obj: Any) -> dict[str, float]:
    fields = getattr(obj, "__dataclass_fields__", None)
    names = list(fields) if fields else [k for k in vars(obj) if not k.startswith("_")]
    out: dict[str, float] = {}
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
