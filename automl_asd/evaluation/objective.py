"""The search objective: apply one recipe to every development machine type, then score it.

Pure library code (no Ray): ``pipeline.run_machine`` trains and scores each machine type
without looking at labels; only afterwards are the test labels and domains read from the clips
(:func:`automl_asd.ground_truth.from_clips`) and the scores evaluated by the one scoring loop,
:func:`automl_asd.evaluation.evaluate.evaluate_scores` (official metrics per section and Ω).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl_asd import ground_truth, pipeline, representation_cache
from automl_asd.components.device import default_workers, resolve_device
from automl_asd.components.files import digests_remembered
from automl_asd.data import MachineData
from automl_asd.evaluation.evaluate import SectionScores, evaluate_scores, section_scores
from automl_asd.evaluation.metrics import MachineMetrics
from automl_asd.ground_truth import SectionKey
from automl_asd.recipe import Recipe

__all__ = ["ObjectiveResult", "evaluate_recipe", "METRIC_KEYS"]

logger = logging.getLogger(__name__)

#: Per-section metrics reported by every trial (the three that enter Ω).
METRIC_KEYS = ("auc_source", "auc_target", "pauc")


@dataclass(frozen=True)
class ObjectiveResult:
    """Ω over all evaluated machine types plus per-section metrics and timings."""

    omega: float
    #: Official metrics per ``(machine type, section)``.
    per_type: Mapping[SectionKey, MachineMetrics]
    fidelity: float
    wall_s: float
    timings: Mapping[str, float] = field(default_factory=dict)
    #: Per machine type: its ``run_machine`` timings (not reported to Tune; the benches).
    type_timings: Mapping[str, Mapping[str, float]] = field(default_factory=dict, compare=False)
    #: Representation cache counters of this evaluation (``hits``, ``misses``, ``build_s``).
    cache: Mapping[str, float] = field(default_factory=dict)
    #: Per key of ``per_type``: ``(y_true, domains, scores)`` of the scored test clips (for
    #: bootstrap selection rules; not reported to Tune).
    per_clip: Mapping[SectionKey, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False)

    def flat(self) -> dict[str, float]:
        """``{"omega", "fidelity", "wall_s", "<type>/<metric>", "time/<stage>",
        "cache/<counter>"}`` (Tune keys; ``<type>`` is ``<mt>/<section>`` for a machine type
        with several sections)."""
        out: dict[str, float] = {"omega": self.omega, "fidelity": self.fidelity,
                                 "wall_s": self.wall_s}
        n_sections: dict[str, int] = {}
        for mt, _ in self.per_type:
            n_sections[mt] = n_sections.get(mt, 0) + 1
        for (mt, section), m in self.per_type.items():
            key = mt if n_sections[mt] == 1 else f"{mt}/{section}"
            out[f"{key}/auc_source"] = m.auc_source
            out[f"{key}/auc_target"] = m.auc_target
            out[f"{key}/pauc"] = m.pauc
            out[f"{key}/omega"] = m.score
        for stage, seconds in self.timings.items():
            out[f"time/{stage}"] = seconds
        for name, value in self.cache.items():
            out[f"cache/{name}"] = float(value)
        return out


@digests_remembered()  # one trial reads each clip once under --verify-audio
def evaluate_recipe(recipe: Recipe, machines: Mapping[str, MachineData], *,
                    cache_dir: Any = None, device: str = "auto",
                    fidelity: float = 1.0,
                    reuse_representations: bool = True,
                    num_threads: int | None = None) -> ObjectiveResult:
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
        num_threads: torch threads per stage (default: ``pipeline``'s choice).
    Returns:
        Ω (harmonic mean of every section's AUC-s, AUC-t and pAUC) and per-section metrics.
    """
    if not machines:
        raise ValueError("evaluate_recipe: no machine types to evaluate")
    recipe = representation_cache.at_fidelity(recipe, fidelity)
    rep_cache = (representation_cache.RepresentationCache(
        None if cache_dir is None else Path(cache_dir), device=resolve_device(device))
        if reuse_representations else None)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    type_timings: dict[str, dict[str, float]] = {}
    threads: dict[str, Any] = {} if num_threads is None else {"num_threads": num_threads}
    shared = None
    if pipeline.needs_shared(recipe):
        # One network over every development type's training clips (test clips unread).
        def build() -> list[dict[str, Any]]:
            return pipeline.fit_shared(recipe, machines, cache_dir=cache_dir, device=device,
                                       fidelity=fidelity, **threads)

        if rep_cache is None:
            shared = build()
        else:
            mixes_noise = recipe.supplemental.noise_mix_prob > 0
            used = [c for m in machines.values()
                    for c in pipeline.select_train_clips(recipe, m, fidelity=fidelity)[0]
                    + [c for c in m.supplemental if mixes_noise and c.kind == "noise"]]
            # keyed by the threads fit_shared trains with (its stage sets them), not by
            # this caller's count
            shared = rep_cache.shared(
                recipe, representation_cache.data_fingerprint(used), fidelity, build,
                threads=num_threads if num_threads is not None else default_workers())
        timings["shared"] = time.perf_counter() - t0
    scored: dict[SectionKey, SectionScores] = {}
    for mt in sorted(machines):
        result = pipeline.run_machine(recipe, machines[mt], cache_dir=cache_dir, device=device,
                                      fidelity=fidelity, shared=shared, rep_cache=rep_cache,
                                      **threads)
        type_timings[mt] = {k: float(v) for k, v in
                            dict(getattr(result, "timings", {}) or {}).items()}
        for stage, seconds in type_timings[mt].items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        scored.update(section_scores(mt, result.names, result.sections, result.scores,
                                     result.decisions))
    # Labels are read only now, after the recipe has scored every clip.
    truth = {k: v for mt in sorted(machines)
             for k, v in ground_truth.from_clips(machines[mt]).items()}
    evaluation = evaluate_scores(truth, scored, what=f"recipe {getattr(recipe, 'name', '?')}")
    omega = float(evaluation.official_score)
    if not math.isfinite(omega):
        raise ValueError(f"evaluate_recipe: Ω is {omega} (non-finite scores?)")
    per_clip = {key: (truth[key].labels.astype(np.int64), np.asarray(truth[key].domains),
                      evaluation.scores[key]) for key in evaluation.per_section}
    wall = time.perf_counter() - t0
    logger.info("recipe %s at fidelity %.2f: Ω=%.4f over %d types in %.1f s",
                getattr(recipe, "name", "?"), fidelity, omega, len(evaluation.per_section), wall)
    return ObjectiveResult(omega=omega, per_type=dict(evaluation.per_section), fidelity=fidelity,
                           wall_s=wall, timings=timings, type_timings=type_timings,
                           cache=rep_cache.stats.as_dict() if rep_cache is not None else {},
                           per_clip=per_clip)
