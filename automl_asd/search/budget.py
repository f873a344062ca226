"""What a search can afford: trial-cost estimates before it starts, and the reference's cap.

Before the trials start, :func:`budget_check` times tiny fits of every detector family of the
space on the given development data (one machine type; after an untimed warm-up, two fits:
1 and 3 epochs on about 32 training clips for network families, about 32 and 96 clips for the
others) and turns them into a per-type and a per-clip(-epoch) constant. With them it
estimates the cost of the space's reference recipe and of an average trial (random points of
the space, weighted by ASHA's rungs), and says — in the log and in ``search.json`` — when the
time budget cannot finish the reference or TPE's start-up trials (Optuna's TPE samples its
first :data:`TPE_STARTUP` trials at random). The reference and one random point per family
are timed, then up to three points per family within a small allowance (at most what the
first points took, and 2 % of a time budget), first those of cost classes no timed point
covers (:func:`cost_class`: a hedge with a frame-level member costs more than one without).
The estimates are orders of magnitude (a family's cost depends on its sampled size, features,
backend and ensemble), good enough to say "this budget is 10x too small".

The reference never holds a slot for the whole budget: with a time budget it climbs the rungs
like any trial and stops before a rung projected to end after :func:`reference_cap` seconds
(half the budget) — :func:`reference_stops`.

Pure library code (no Ray).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl_asd.detectors.registry import get_detector_class
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.features import extract
from automl_asd.io import search_report as io
from automl_asd.progress import few_names
from automl_asd.representation_cache import at_fidelity
from automl_asd.search.selection import objective_value

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.evaluation.objective import ObjectiveResult
    from automl_asd.recipe import Recipe
    from automl_asd.search.space import SearchSpace

__all__ = ["TPE_STARTUP", "trial_objective", "reference_cap", "reference_stops",
           "unfinished_warning",
           "estimate_costs", "budget_check", "random_points", "prewarm", "cost_class",
           "cost_scale"]

logger = logging.getLogger(__name__)

#: Optuna's TPESampler default ``n_startup_trials`` (random sampling before TPE starts).
TPE_STARTUP = 10
_TINY_CLIPS = 32
_N_POINTS = 24
#: Random points timed per family at most, and at most the seconds the points beyond the
#: first of each family may take together (also at most what the first ones took).
_POINTS_PER_FAMILY = 3
_EXTRA_POINTS_S = 30.0
#: Clips whose cold feature extraction is timed for the cost of a new feature spec.
_EXTRACT_CLIPS = 16


def trial_objective(objective: str, result: ObjectiveResult) -> float:
    """The space's selection objective of one evaluation (Ω for the default ``mean``; the
    mean per-type Ω for ``leave_one_type_out``)."""

    if objective == "mean":
        return float(result.omega)
    aucs = {k: (m.auc_source, m.auc_target, m.pauc) for k, m in result.per_type.items()}
    return objective_value(objective, aucs)


def asha_fractions(n_rungs: int, reduction_factor: float) -> list[float]:
    """The share of trials that reach each of ``n_rungs`` rungs under the search's ASHA
    (``max_t = n_rungs``, ``grace_period = 1``): Ray cuts only at its milestones
    ``1, rf, rf², … < max_t`` (``ray.tune.schedulers.async_hyperband``), keeping ``1/rf`` of
    the trials at each, so a rung between two milestones costs as much as the one before it
    (rungs 0.1 / 0.3 / 1.0 with ``rf = 3``: shares 1, 1/3, 1/3, not 1, 1/3, 1/9)."""
    if n_rungs <= 1:
        return [1.0] * max(n_rungs, 0)
    rf = float(reduction_factor)
    n_milestones = int(np.log(n_rungs) / np.log(rf) + 1)  # Ray's MAX_RUNGS with s = 0
    milestones = [rf**k for k in range(n_milestones)]
    return [rf ** -sum(1 for m in milestones if m < j) for j in range(1, n_rungs + 1)]


def reference_cap(time_budget_s: float | None) -> float | None:
    """Seconds the reference trial may plan to run: half the budget (``None``: no budget)."""
    return None if time_budget_s is None else 0.5 * float(time_budget_s)


def _exponent(recipe: Recipe) -> float:
    # Network families scale with clips x epochs (both follow the fidelity), others with clips.
    return 2.0 if "epochs" in recipe.detector.params else 1.0


#: A rung is projected to take at most this many times the cost estimate's own figure for it.
_ESTIMATE_MARGIN = 2.0


def reference_stops(cap_s: float | None, elapsed_s: float, last: tuple[float, float],
                    next_fidelity: float, recipe: Recipe,
                    estimate_s: float | None = None) -> bool:
    """Whether the reference trial should stop before the rung at ``next_fidelity``:
    ``last`` = (fidelity, seconds) of its previous rung; the next rung's seconds are projected
    as ``seconds x (next / fidelity) ** p`` (p = 2 for network families, else 1), and at most
    twice ``estimate_s``, the search's cost estimate for that rung when it has one: the first
    rung's seconds hold the worker's one-off start (imports, first reads), which a cheap
    reference multiplied into a stop (found 2026-12-07: 4 s of start-up projected to 8 s
    against a 6 s cap, for a recipe estimated at ~0 s)."""
    if cap_s is None:
        return False
    fid, seconds = last
    projected = seconds * (next_fidelity / fid) ** _exponent(recipe)
    if estimate_s is not None and np.isfinite(estimate_s) and estimate_s >= 0:
        projected = min(projected, _ESTIMATE_MARGIN * float(estimate_s))
    if elapsed_s + projected <= cap_s:
        return False
    logger.warning("reference recipe stops before fidelity %.2f: projected %.0f s more after "
                   "%.0f s would pass its cap of %.0f s (half the time budget)",
                   next_fidelity, projected, elapsed_s, cap_s)
    return True


class _RandomTrial:
    """Duck-typed Optuna trial drawing uniformly (log-uniformly for ``log``)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[int(self.rng.integers(len(choices)))]

    def suggest_int(self, name: str, low: int, high: int, log: bool = False,
                    step: int = 1) -> int:
        if log and low > 0:
            return int(round(math.exp(self.rng.uniform(math.log(low), math.log(high)))))
        return int(low + step * int(self.rng.integers((high - low) // step + 1)))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False,
                      step: float | None = None) -> float:
        if log and low > 0:
            return float(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        return float(self.rng.uniform(low, high))


def random_points(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` random points of ``space`` (``{dimension: value}``)."""
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        trial = _RandomTrial(rng)
        point: dict[str, Any] = {}

        def get(dim: Any, _: dict[str, Any], trial: _RandomTrial = trial,
                point: dict[str, Any] = point) -> Any:
            point[dim.name] = dim.suggest(trial)
            return point[dim.name]

        space._build(get)
        points.append(point)
    return points


def _units(recipe: Recipe, n_clips: float, fidelity: float) -> float:
    """Cost units of a recipe: clips x epochs x ensemble members at ``fidelity`` (the epochs a
    trial trains there: :func:`~automl_asd.representation_cache.at_fidelity`)."""
    epochs = at_fidelity(recipe, fidelity).detector.params.get("epochs")
    eff = epochs if isinstance(epochs, int) else 1
    return n_clips * fidelity * eff * recipe.ensemble.size


def _train_clips(machines: Mapping[str, MachineData]) -> int:
    return sum(len(m.train) for m in machines.values())


def _tiny_fit_seconds(recipe: Recipe, machine: MachineData, cache_dir: Path | None,
                      device: str, epochs: int, clips: int = _TINY_CLIPS
                      ) -> tuple[float, float]:
    """(seconds, cost units) of one tiny fit on one type: about ``clips`` source train clips,
    about ``epochs`` epochs (network families; the recipe's epochs are set so that the fidelity
    scaling of a trial leaves that many), 1 member, every test clip scored."""

    fid = min(1.0, clips / max(1, len(machine.train)))
    params = dict(recipe.detector.params)
    if "epochs" in params:
        # A trial at fidelity f trains max(1, round(f x epochs)) epochs (at_fidelity): without
        # this, 1 and 3 epochs at f = 0.16 would both train one. Kept within the family's
        # range (a type with thousands of clips then trains fewer; the units below count what
        # it trains).
        high = get_detector_class(recipe.detector.name).params["epochs"].high
        wanted = max(1, math.ceil(epochs / fid))
        params["epochs"] = int(min(wanted, high)) if high is not None else wanted
    tiny = replace(recipe, detector=replace(recipe.detector, params=params),
                   ensemble=replace(recipe.ensemble, size=1))
    t0 = time.perf_counter()
    evaluate_recipe(tiny, {machine.machine_type: machine}, cache_dir=cache_dir,
                    device=device, fidelity=fid,
                    reuse_representations=False)
    return time.perf_counter() - t0, _units(tiny, len(machine.train), fid)


def _family_constants(recipe: Recipe, machine: MachineData, cache_dir: Path | None,
                      device: str, *, warm_up: bool = True) -> tuple[float, float]:
    """(seconds per machine type, seconds per cost unit) of a family, from two timed tiny fits
    after an untimed one (which pays what a search pays once: the features of this spec, the
    libraries' start-up). Network families: 1 and 3 epochs on the same clips; the others: about
    32 and 96 training clips (their fit and self-scores grow with the clips). The slope is the
    per-unit cost, the rest (scoring the test clips, set-up) the per-type cost; a type with too
    few clips for two sizes gets one per-type constant. ``warm_up=False`` skips the untimed fit
    (the features and the family are warm from an earlier point)."""
    network = "epochs" in recipe.detector.params
    if warm_up:
        _tiny_fit_seconds(recipe, machine, cache_dir, device, 1)  # not timed
    t1, u1 = _tiny_fit_seconds(recipe, machine, cache_dir, device, 1)
    if network:
        t2, u2 = _tiny_fit_seconds(recipe, machine, cache_dir, device, 3)
    elif len(machine.train) >= 2 * _TINY_CLIPS:
        t2, u2 = _tiny_fit_seconds(recipe, machine, cache_dir, device, 1,
                                   clips=3 * _TINY_CLIPS)
    else:
        return t1, 0.0
    if u2 <= u1:  # the two fits did not differ in size: one per-type constant
        return t1, 0.0
    slope = max(0.0, (t2 - t1) / (u2 - u1))
    return max(0.0, t1 - slope * u1), slope


def cost_class(recipe: Recipe) -> tuple[str, ...]:
    """The family and its :attr:`~automl_asd.detectors.base.Detector.cost_params` settings
    (a backend by its name): points of one class cost about the same per clip (and epoch)."""
    family = recipe.detector.name
    cls = get_detector_class(family)
    params = cls.canonical_params(recipe.detector.params)
    out = [family]
    for key in cls.cost_params:
        value = params.get(key)
        if isinstance(value, Mapping) and "name" in value:
            value = value["name"]
        out.append(f"{key}={value}")
    return tuple(out)


def cost_scale(recipe: Recipe) -> float:
    """The recipe's relative work within its cost class
    (:meth:`~automl_asd.detectors.base.Detector.cost_scale` on its feature dimension)."""
    cls = get_detector_class(recipe.detector.name)
    return max(1e-6, float(cls.cost_scale(recipe.detector.params, recipe.features.n_bins)))


def _uncovered_first(recipes: list[Recipe], covered: set[tuple[str, ...]]) -> list[Recipe]:
    """``recipes`` with one point of every cost class not in ``covered`` first (the classes
    sampled most often first, ties in sampled order), then the rest in sampled order."""
    classes = [cost_class(r) for r in recipes]
    counts = {k: classes.count(k) for k in classes}
    first: dict[tuple[str, ...], int] = {}
    for i, k in enumerate(classes):
        if k not in covered:
            first.setdefault(k, i)
    lead = sorted(first.values(), key=lambda i: (-counts[classes[i]], i))
    led = set(lead)
    return [recipes[i] for i in lead] + [r for i, r in enumerate(recipes) if i not in led]


def _mean_consts(consts: list[tuple[float, float]]) -> tuple[float, float]:
    return float(np.mean([c[0] for c in consts])), float(np.mean([c[1] for c in consts]))


def _extract_seconds_per_clip(spec: Any, machine: MachineData) -> float:
    """Seconds to extract one clip's features with ``spec`` from scratch: about
    :data:`_EXTRACT_CLIPS` clips of one type into a throw-away cache (the real one is neither
    read nor written, so the clips are cold even where the search's cache is warm)."""
    clips = list(machine.clips)[:_EXTRACT_CLIPS]
    if not clips:
        return 0.0
    with tempfile.TemporaryDirectory(prefix="automl_asd_estimate_") as tmp:
        t0 = time.perf_counter()
        extract(clips, spec, cache_dir=Path(tmp), progress=False)
        return (time.perf_counter() - t0) / len(clips)


def estimate_costs(space: SearchSpace, machines: Mapping[str, MachineData], *,
                   cache_dir: Path | None = None, device: str = "cpu",
                   seed: int = 0, time_budget_s: float | None = None) -> dict[str, Any]:
    """Per-family seconds per type and per cost unit (timed tiny fits, at cost scale 1:
    :func:`cost_scale`), and the estimated seconds of the reference recipe (full fidelity)
    and of an average trial (ASHA-weighted rungs).

    The reference and the first random point of every family are always timed; more random
    points (up to :data:`_POINTS_PER_FAMILY` per family, distinct recipes) are started while
    the extra timings have taken less than the first ones, :data:`_EXTRA_POINTS_S` and, with
    a ``time_budget_s``, 2 % of the budget. Extra points go first to cost classes
    (:func:`cost_class`: e.g. a hedge with a frame-level member) that no timed point covers,
    the classes most sampled first. A timed point is costed with its own constants, the others
    with their cost class's mean, else their family's (a family's cost depends on its sampled
    size, backend and ensemble, which one point cannot represent), each scaled by the point's
    :func:`cost_scale` (e.g. a frame-level member on 128 mels costs about four times what it
    costs on 64: the means hold each timed point's constants divided by its own scale).

    Feature extraction is not in those constants (the warm-up fit pays it). A trial whose
    feature spec no earlier trial used extracts it for every development clip (the reference's
    spec is extracted before the trials start, :func:`prewarm`), so the first random point with
    each new spec is charged that many clips at the cold per-clip time measured on one type
    (an upper bound: a trial stopped at a low rung extracts only the clips it used)."""
    if not machines:
        raise ValueError("estimate_costs: no machine types")
    first = machines[sorted(machines)[0]]
    n_clips = _train_clips(machines)
    reference = space.to_recipe(space.reference_point(), name="reference")
    recipes = []
    for point in random_points(space, _N_POINTS, seed):
        try:
            recipes.append(space.to_recipe(point, name="estimate"))
        except ValueError as exc:  # a combination the space allows but no recipe can hold
            # (e.g. a hop longer than a sampled window): its trial fails on its own, the
            # estimate goes on
            logger.debug("cost estimate: point skipped (%s)", exc)
    timed: dict[str, tuple[float, float]] = {}  # behaviour hash -> its constants
    tried: dict[str, int] = {}
    failed: set[str] = set()
    warm: set[Any] = set()
    by_family_consts: dict[str, list[tuple[float, float]]] = {}
    by_class_consts: dict[tuple[str, ...], list[tuple[float, float]]] = {}

    def time_point(recipe: Recipe) -> None:
        family = recipe.detector.name
        tried[family] = tried.get(family, 0) + 1
        key = (recipe.features, family)  # a new feature spec or family pays a warm-up fit
        try:
            consts = _family_constants(recipe, first, cache_dir, device,
                                       warm_up=key not in warm)
        except Exception as exc:  # an estimate must never stop the search
            failed.add(family)
            logger.warning("cost estimate of %s failed (%s); skipped", family, exc)
            return
        warm.add(key)
        timed[recipe.behaviour_hash()] = consts
        scale = cost_scale(recipe)  # the class and family means hold scale-1 constants
        unit = (consts[0] / scale, consts[1] / scale)
        by_family_consts.setdefault(family, []).append(unit)
        by_class_consts.setdefault(cost_class(recipe), []).append(unit)

    t0 = time.perf_counter()
    time_point(reference)
    for recipe in recipes:  # one point of every other family
        if recipe.detector.name not in tried:
            time_point(recipe)
    # Extra points sharpen the budget warnings and the average the report sets beside the
    # measured trials: at most as long as the first points took (and 2 % of a budget).
    allowance = min(_EXTRA_POINTS_S, time.perf_counter() - t0)
    if time_budget_s is not None:
        allowance = min(allowance, 0.02 * float(time_budget_s))
    t0 = time.perf_counter()
    for recipe in _uncovered_first(recipes, set(by_class_consts)):  # more, within the allowance
        family = recipe.detector.name
        if (family in failed or tried.get(family, 0) >= _POINTS_PER_FAMILY
                or recipe.behaviour_hash() in timed):
            continue
        if time.perf_counter() - t0 >= allowance:
            break
        time_point(recipe)
    family_mean = {f: _mean_consts(cs) for f, cs in by_family_consts.items()}
    class_mean = {k: _mean_consts(cs) for k, cs in by_class_consts.items()}
    rungs = list(space.fidelity.rungs)
    eta = float(space.fidelity.reduction_factor)
    n_types = len(machines)

    def cost(recipe: Recipe, fidelity: float) -> float:
        own = timed.get(recipe.behaviour_hash())
        if own is not None:
            per_type, per_unit = own
        else:
            scale = cost_scale(recipe)
            per_type, per_unit = (
                class_mean.get(cost_class(recipe))
                or family_mean.get(recipe.detector.name, (math.nan, math.nan)))
            per_type, per_unit = per_type * scale, per_unit * scale
        return (n_types * per_type * recipe.ensemble.size
                + per_unit * _units(recipe, n_clips, fidelity))

    reach = asha_fractions(len(rungs), eta)

    def expected(recipe: Recipe) -> float:
        # the share of trials ASHA lets reach each rung (it cuts at its milestones only)
        return sum(cost(recipe, f) * share for f, share in zip(rungs, reach, strict=True))

    try:
        per_clip = _extract_seconds_per_clip(reference.features, first)
    except Exception as exc:  # an estimate must never stop the search
        logger.warning("timing feature extraction failed (%s); not counted", exc)
        per_clip = 0.0
    new_spec_s = per_clip * sum(len(m.clips) for m in machines.values())
    seen = {reference.features}
    extraction = []
    for recipe in recipes:
        extraction.append(0.0 if recipe.features in seen else new_spec_s)
        seen.add(recipe.features)
    trial_costs = [expected(r) + e for r, e in zip(recipes, extraction, strict=True)]
    sampled = {cost_class(r) for r in recipes}
    by_family: dict[str, list[float]] = {}
    for r, seconds in zip(recipes, trial_costs, strict=True):
        by_family.setdefault(r.detector.name, []).append(seconds)
    return {
        "train_clips": n_clips,
        "seconds_per_type": {k: v[0] for k, v in family_mean.items()},
        "seconds_per_clip_epoch": {k: v[1] for k, v in family_mean.items()},
        "timed_points": {f: len(cs) for f, cs in sorted(by_family_consts.items())},
        "timed_classes": {f: sum(1 for k in by_class_consts if k[0] == f)
                          for f in sorted(by_family_consts)},
        "sampled_classes": len(sampled),
        "uncovered_classes": len(sampled - set(by_class_consts)),
        "new_spec_s": new_spec_s,
        "new_specs": sum(1 for e in extraction if e > 0.0),
        "reference_s": cost(reference, 1.0),
        # a budgeted reference climbs every rung (the search caps its run time)
        "reference_rungs_s": sum(cost(reference, f) for f in rungs),
        "reference_rung_s": [cost(reference, f) for f in rungs],
        "reference_family": reference.detector.name,
        "mean_trial_s": _finite_mean(trial_costs),
        "family_trial_s": {f: _finite_mean(v) for f, v in sorted(by_family.items())},
        "tpe_startup": TPE_STARTUP,
    }


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values (NaN: a family whose timing failed); NaN when none is."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


#: what a cost estimate in ``search.json`` must hold to be used again
_ESTIMATE_KEYS = ("reference_s", "reference_family", "mean_trial_s", "family_trial_s")


def budget_check(cfg: Any, machines: Mapping[str, MachineData], out: Path, *,
                 estimate: Callable[..., dict[str, Any]] | None = None,
                 measured: Mapping[str, Any] | None = None, made: int = 0,
                 reference_done: bool = False, cluster_cpus: float | None = None,
                 unfinished: Mapping[str, str] | None = None) -> list[str]:
    """Estimate costs (:func:`estimate_costs`, or ``estimate`` called with the same
    arguments — the search runs it as a Ray task so that no fit happens in the driver), log
    them, warn when the budget cannot finish the reference or TPE's start-up trials, and add
    them to ``<out>/search.json``. Returns the warnings.

    ``measured``: the estimate this search made when it started (``search.json``'s, for a
    resume of the same space on the same data): used again instead of timing fits anew (5 to
    10 s each time); the warnings follow the budget given now. ``made``: trials the search
    made before (a resume): only TPE's start-up trials still to make are counted;
    ``reference_done``: the reference trial finished (a resume): no warning about it.
    ``cluster_cpus``: the CPUs of the Ray cluster; trials that run at once are then at most
    those CPUs over ``--cpus-per-trial`` (found 2026-12-07: ``--max-concurrent 8`` on 2 cores
    was counted as 8 at once, and the advice to raise it could not help). ``unfinished``: the
    trials the last invocation saved unfinished (a resume), id -> detector family: a warning
    when the budget is shorter than a family's cost (:func:`unfinished_warning`)."""

    if isinstance(measured, Mapping) and all(k in measured for k in _ESTIMATE_KEYS):
        est = {k: v for k, v in measured.items() if k != "warnings"}
        how = "measured when the search started"
    else:
        t0 = time.perf_counter()
        est = (estimate or estimate_costs)(
            cfg.space, machines, cache_dir=cfg.cache_dir,
            device="cpu" if cfg.device == "auto" else cfg.device, seed=cfg.seed,
            time_budget_s=cfg.time_budget_s)
        est["estimate_s"] = time.perf_counter() - t0
        how = f"{est['estimate_s']:.1f} s to measure"
    warnings: list[str] = []
    budget = cfg.time_budget_s
    slots = max(1, int(cfg.max_concurrent))
    fit = (max(1, int(cluster_cpus // float(cfg.cpus_per_trial)))
           if cluster_cpus and float(getattr(cfg, "cpus_per_trial", 0) or 0) > 0 else slots)
    if fit < slots:
        logger.info("at most %d trial(s) run at once: %g CPU(s) / --cpus-per-trial %g (fewer "
                    "than --max-concurrent %d)", fit, cluster_cpus, cfg.cpus_per_trial, slots)
    cores_bound = fit < slots
    slots = min(slots, fit)
    ref = est["reference_s"]
    n_startup = max(0, min(TPE_STARTUP, int(cfg.trials)) - max(0, int(made)))
    startup = n_startup * est["mean_trial_s"] / slots
    logger.info("cost estimate (%s): reference %s ~%.0f s; average trial ~%.0f "
                "s; per family %s; %d new feature spec(s) ~%.0f s each", how,
                est["reference_family"], ref, est["mean_trial_s"],
                {k: round(v) if math.isfinite(v) else None
                 for k, v in est["family_trial_s"].items()},
                est.get("new_specs", 0), est.get("new_spec_s", 0.0))
    if budget is not None:
        climb = float(est.get("reference_rungs_s", ref))
        cap = reference_cap(budget)
        if not reference_done and math.isfinite(climb) and cap is not None and climb > cap:
            warnings.append(f"the time budget ({budget:.3g} s) cannot finish the reference "
                            f"recipe ({est['reference_family']}, ~{climb:.0f} s over its "
                            f"rungs, ~{ref:.0f} s of them at full fidelity; it may use at "
                            f"most {cap:.0f} s, half the budget): it will stop at a lower "
                            "rung and the report cannot compare the pick with it")
        if n_startup and math.isfinite(startup) and startup > budget:
            warnings.append(f"the time budget ({budget:.3g} s) cannot finish TPE's "
                            f"{n_startup}{' remaining' if made else ''} random start-up trials "
                            f"(~{startup:.0f} s with {slots} at once): the search will be "
                            "random; raise --time-budget"
                            + (" or add CPUs (a cluster)" if cores_bound
                               else " or --max-concurrent"))
        said = unfinished_warning(unfinished or {}, est["family_trial_s"], budget)
        if said:
            warnings.append(said)
    for w in warnings:
        logger.warning("%s", w)
    est["warnings"] = warnings
    meta = io.read_search_meta(out) or {}
    io.write_search_meta(out, {**meta, "estimates": est})
    return warnings


def unfinished_warning(unfinished: Mapping[str, str], family_trial_s: Mapping[str, float],
                       budget_s: float | None) -> str | None:
    """The warning for a resume whose ``--time-budget`` cannot finish the trials its last
    invocation saved unfinished (``unfinished``: their ids -> detector family;
    ``family_trial_s``: the cost estimate's seconds of a trial at full fidelity per family),
    else ``None``. Found 2026-12-07: a resume under a budget shorter than a trial's next rung
    spent the budget on it and stopped it again, with nothing said but "the same command with
    --resume continues them"."""
    if budget_s is None:
        return None
    slow: dict[str, tuple[str, float]] = {}
    for trial_id, family in unfinished.items():
        seconds = float(family_trial_s.get(family, math.nan))
        if math.isfinite(seconds) and seconds > budget_s:
            slow[trial_id] = (family, seconds)
    if not slow:
        return None
    worst = max(s for _, s in slow.values())
    return (f"{len(slow)} trial(s) saved unfinished ({few_names(sorted(slow), 5)}) need up "
            f"to ~{worst:.0f} s to finish (the cost "
            f"estimate of {', '.join(sorted({f for f, _ in slow.values()}))} at full fidelity), "
            f"more than this --time-budget ({budget_s:.3g} s): they cannot finish in this "
            "invocation and are stopped again; give a larger --time-budget or none")


def prewarm(machines: Mapping[str, MachineData], space: SearchSpace,
            cache_dir: Path | None) -> float:
    """Extract the reference recipe's feature spec for every dev clip once, before trials
    start (the search runs it as one Ray task). Returns the seconds it took."""

    spec = space.to_recipe(space.reference_point(), name="prewarm").features
    clips = [c for m in machines.values() for c in m.clips]
    t0 = time.perf_counter()
    extract(clips, spec, cache_dir=cache_dir, progress=False)
    seconds = time.perf_counter() - t0
    logger.info("feature cache warm for the reference recipe's spec: %d clips in %.1f s",
                len(clips), seconds)
    return seconds
