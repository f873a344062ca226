"""``automl-asd search``: Ray Tune + Optuna (TPE) + ASHA over a YAML search space.

Each trial turns its sampled parameters into a recipe, applies it to every development machine
type (``objective.evaluate_recipe``) and reports Ω over all of them, once per fidelity rung
(fraction of source train clips). ASHA stops weak trials after a cheap rung. The space's
reference recipe (its starting point; the official DCASE baseline only in spaces that say
``reference: baseline_ae_mse``) is queued first and always evaluated at full fidelity (ASHA
never stops it), so the frozen recipe is never worse than the reference recipe on the
development objective.
TPE's proposals pass through :class:`~automl_asd.orchestration.dedup.DedupSearcher`: a recipe
that already finished at full fidelity (or is running) is not launched again; TPE is told its
known result and asked for another point (``duplicates.json`` counts the skipped proposals).
A failing trial is recorded and the search goes on; ``resume`` continues a killed search from
its run directory without rerunning finished trials.

This module is the Ray layer only: the trainable, the Tuner/OptunaSearch/ASHA wiring, the
ResultGrid -> :class:`~automl_asd.search.trials.TrialRecord` conversion (with the per-clip scores
each full-fidelity trial saves in its last checkpoint, for the final pick) and the Ray tasks that
prewarm the cache, estimate costs, re-score final-pick candidates that kept no scores, run the
novel check (its recipes all at once) and score leave-one-out's held-out types. Freezing,
trial tables and leave-one-out live in :mod:`automl_asd.search` and never see a Tune object.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_asd.errors import disk_full_reason, one_line
from automl_asd.evaluation.objective import ObjectiveResult, evaluate_recipe
from automl_asd.io import search_report as io
from automl_asd.io.clip_scores import ClipScores, load_clip_scores, save_clip_scores
from automl_asd.io.trial_table import RAN_STATUSES
from automl_asd.orchestration.local_ray import host_port
from automl_asd.orchestration.ray_runner import check_fits, node_where, preflight_nodes
from automl_asd.orchestration.session import (
    cancel_unfinished,
    init_ray,
    is_local,
    shutdown_ray,
)
from automl_asd.progress import kept_warnings
from automl_asd.provenance import data_fingerprint, package_versions
from automl_asd.search import loo
from automl_asd.search.budget import (
    budget_check,
    estimate_costs,
    prewarm,
    reference_cap,
    reference_stops,
    trial_objective,
)
from automl_asd.search.config import (
    BatchEvaluator,
    Evaluator,
    LeaveOneOutOutcome,
    OnDone,
    SearchConfig,
    SearchOutcome,
    check_start,
    run_meta,
)
from automl_asd.search.freeze import NothingFinishedError, SearchProvenance, freeze_search
from automl_asd.search.loo import fold_storage
from automl_asd.search.novel_check import (
    SearchData,
    check_search_data,
    make_picker,
    novel_check,
)
from automl_asd.search.space import SearchSpace
from automl_asd.search.trials import (
    TRIAL_WARNINGS,
    TrialRecord,
    pending_reruns,
    record_from_result,
    reference_capped,
    trial_recipe,
)
from automl_asd.storage import PathCheck

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.recipe import Recipe

__all__ = [
    "run_search",
    "run_leave_one_out",
    "records_from_grid",
    "TUNE_DIRNAME",
]

logger = logging.getLogger(__name__)

#: Sub-folder of the run directory holding Ray Tune's experiment state (what --resume reads).
TUNE_DIRNAME = "tune"
#: TPE's metric: the space's selection objective (``selection.objective``; Ω for ``mean``).
_OBJECTIVE = "objective"
#: ASHA's metric: the objective at the current rung, NaN for the reference recipe (which ASHA
#: therefore never stops).
_ASHA_METRIC = "rung_omega"


@dataclass(frozen=True)
class _TrialContext:
    """What each trial needs besides its config (picklable). ``tune.with_parameters`` puts it
    in the object store once, so ``machines``, the development data the driver scanned,
    reaches every trial without a rescan of the tree."""

    space: SearchSpace
    reference_point: Mapping[str, Any]
    machines: Mapping[str, MachineData]
    cache_dir: str | None
    device: str
    evaluator: Evaluator
    #: The reference trial stops before a rung projected to end after this many
    #: seconds of its own run time (``None``: no cap; it then reports once, at full fidelity).
    reference_cap_s: float | None = None
    #: The cost estimate's seconds for the reference at each rung (``None``: not estimated).
    reference_rung_s: tuple[float, ...] | None = None
    #: Report the evaluator's WARNING lines with each rung (``TRIAL_WARNINGS``): a worker's
    #: log reaches the driver's console only with ``-v``, which then shows them itself.
    keep_warnings: bool = False


# --------------------------------------------------------------------------------------------
# the trainable
# --------------------------------------------------------------------------------------------
def _trainable(config: dict[str, Any], ctx: _TrialContext) -> None:
    """Tune function trainable: config -> recipe -> Ω per fidelity rung -> ``tune.report``."""
    from ray import tune  # noqa: PLC0415  (heavy third-party, loaded when used)

    from automl_asd.detectors.hedge import enable_member_memo  # noqa: PLC0415  (in the trial's worker)

    # trials that differ only in what follows a hedge member (other views beside it, the
    # combination, the normalisation) refit the same member on the same clips: this worker
    # keeps them (bit for bit what a refit computes)
    enable_member_memo()
    rungs = ctx.space.fidelity.rungs
    is_reference = dict(config) == dict(ctx.reference_point)
    recipe = trial_recipe(ctx.space, config)
    machines = ctx.machines  # scanned once by the driver, never in a trial
    where = node_where()  # reported with every result
    state: dict[str, Any] = {}  # the last rung's checkpoint (``rung.json``), on a resume
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            state = json.loads((Path(ckpt_dir) / "rung.json").read_text())
    # a rung that finished while Tune was ending a stopped run (the time budget, Ctrl+C) was
    # saved to disk after Tune's last record of the run: report it again rather than run it
    # again (found 2026-12-07: a trial longer than a budget restarted at every resume)
    later = _later_rung_on_disk(int(state.get("next", 0)))
    if later is not None:
        state, saved = later
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(saved, tmp, dirs_exist_ok=True)
            tune.report(dict(state["metrics"]), checkpoint=tune.Checkpoint.from_directory(tmp))
    start = int(state.get("next", 0))
    # representation-cache counters summed over every rung the trial ran (each report then
    # carries the trial's totals, as its wall time does), kept across a resume
    cache_totals = {str(k): float(v) for k, v in state.get("cache", {}).items()}
    # Without a time cap the reference skips the cheap rungs: it reports once, at full
    # fidelity. With one it climbs the rungs like any trial and stops before a rung that would
    # end past the cap, so it never holds a slot for the whole budget.
    capped = is_reference and ctx.reference_cap_s is not None
    todo = ([len(rungs) - 1] if is_reference and not capped and start < len(rungs)
            else list(range(start, len(rungs))))  # none left: a replayed last rung
    t_start = time.perf_counter()
    last: tuple[float, float] | None = None
    for i in todo:
        estimate = (ctx.reference_rung_s[i] if ctx.reference_rung_s is not None
                    and i < len(ctx.reference_rung_s) else None)
        if capped and last is not None and reference_stops(
                ctx.reference_cap_s, time.perf_counter() - t_start, last, rungs[i], recipe,
                estimate):
            return
        t_rung = time.perf_counter()
        with kept_warnings(ctx.keep_warnings) as warned:
            result = ctx.evaluator(recipe, machines, cache_dir=ctx.cache_dir,
                                   device=ctx.device, fidelity=rungs[i])
        last = (rungs[i], time.perf_counter() - t_rung)
        objective = trial_objective(ctx.space.selection.objective, result)
        flat = result.flat()
        for key in [k for k in flat if k.startswith("cache/")]:
            cache_totals[key] = cache_totals.get(key, 0.0) + float(flat[key])
        metrics: dict[str, Any] = {**flat, **cache_totals, "rung": i + 1,
                                   "is_reference": int(is_reference),
                                   "recipe_hash": recipe.content_hash(),
                                   "behaviour_hash": recipe.behaviour_hash(), **where,
                                   _OBJECTIVE: objective}
        # NaN keeps the reference out of ASHA's cutoffs (``nanpercentile``), never stopping it.
        metrics[_ASHA_METRIC] = float("nan") if is_reference else objective
        if warned:  # the driver's progress callback logs each distinct line once
            metrics[TRIAL_WARNINGS] = "\n".join(dict.fromkeys(warned))
        with tempfile.TemporaryDirectory() as tmp:
            # the metrics too: a rung saved after Tune's last record is reported from them
            (Path(tmp) / "rung.json").write_text(json.dumps({"next": i + 1,
                                                              "cache": cache_totals,
                                                              "metrics": metrics}))
            if i == len(rungs) - 1 and getattr(result, "per_clip", None):
                # The full-fidelity per-clip scores travel with the last checkpoint: the final
                # pick's bootstrap reads them instead of scoring the recipe again.
                save_clip_scores(tmp, result.per_clip)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _saved_tune_location(exp_path: str) -> str | None:
    """Where the Tune state at ``exp_path`` (a local folder) says its run lives: the
    experiment folder its trials were set up in, from its newest experiment state (what a
    restore goes on writing to); ``None`` when it cannot tell (object storage, no trial)."""
    import ray.cloudpickle  # noqa: PLC0415  (heavy third-party, loaded when used)

    if "://" in exp_path:
        return None
    try:
        newest = max(Path(exp_path).glob("experiment_state-*.json"))
        trials = json.loads(newest.read_text())["trial_data"]
        first = json.loads(trials[0][0])["storage"]
        storage = ray.cloudpickle.loads(bytes.fromhex(first["value"]))
        if getattr(storage.storage_filesystem, "type_name", None) != "local":
            return None
        return f"{storage.storage_fs_path}/{storage.experiment_dir_name}"
    except Exception:  # noqa: BLE001  (another layout: nothing to compare)
        return None


def _check_tune_state(exp_path: str) -> None:
    """Refuse to resume from a Tune state at ``exp_path`` (a local folder) whose tuner, newest
    experiment state or newest searcher state is cut short.

    Tune reads them on a resume and, when it cannot, logs "Failed to restore the run state"
    and starts the search afresh: the resumed run then replaced the search's trial table and
    recipe with its new trials only (found 2026-12-07: a full disk during a search cut Tune's
    ``experiment_state-*.json`` short; `search --resume` after freeing space ran 1 trial of 3
    and froze "the best of 1 trials", exit 0). A pickle ends with its STOP opcode (``.``);
    object storage is not checked.

    Raises:
        ValueError: naming the damaged file, why it cannot be resumed and what to do.
    """
    if "://" in exp_path:
        return
    for pattern in ("experiment_state-*.json", "searcher-state-*.pkl", "tuner.pkl"):
        found = sorted(Path(exp_path).glob(pattern))
        if not found:
            continue
        newest = found[-1]
        try:
            raw = newest.read_bytes()
            if newest.suffix == ".json":
                json.loads(raw)
            elif not raw.endswith(b"."):
                raise ValueError(f"{len(raw)} bytes, cut short")
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{newest}: Ray Tune's saved search state is damaged ({exc}; e.g. written "
                "while the disk ran full), so the search cannot be resumed: Tune would start "
                "it again from nothing; start a new search with another --out") from None


def _trials_made(out: Path, mark: Any = None) -> dict[str, Any]:
    """What the search's last invocation listed in ``trials.parquet``, as
    :func:`~automl_asd.search.budget.budget_check` takes it: the trials made, whether the
    reference finished and, of the trials ``mark`` (``search.json``'s ``interrupted``) names
    as saved unfinished, each one's detector family (nothing without the table)."""
    import pandas as pd  # noqa: PLC0415  (heavy third-party, loaded when used)

    try:
        table = pd.read_parquet(out / "trials.parquet")
    except Exception:  # noqa: BLE001  (none yet, or unreadable: count none)
        return {}
    done = table["is_reference"].astype(bool) & (table["status"] == "complete")
    ids = set(map(str, mark.get("unfinished_ids") or ())) if isinstance(mark, Mapping) else set()
    family = "param:detector.name"
    unfinished = ({str(t): str(f) for t, f in zip(table["trial_id"], table[family], strict=True)
                   if str(t) in ids} if ids and family in table else {})
    return {"made": len(table), "reference_done": bool(done.any()), "unfinished": unfinished}


def _cluster_cpus() -> float | None:
    """The CPUs of the Ray cluster this driver is connected to (``None``: unknown)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    try:
        cpus = float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001  (not connected: the estimate counts --max-concurrent)
        return None
    return cpus or None


def _later_rung_on_disk(start: int) -> tuple[dict[str, Any], Path] | None:
    """The latest rung this trial saved in its own folder past rung ``start`` (Tune's
    restored one), with its metrics, and the checkpoint folder holding it; ``None`` when
    there is none (the usual case: Tune recorded every rung the trial saved)."""
    from ray import tune  # noqa: PLC0415  (heavy third-party, loaded when used)

    try:  # the trial's folder in the run's storage, where its checkpoints are persisted
        with warnings.catch_warnings():  # outside a trial Ray warns and returns None
            warnings.simplefilter("ignore")
            storage = tune.get_context().get_storage()
        if getattr(storage.storage_filesystem, "type_name", None) != "local":
            return None  # object storage: not looked into (the rung runs again)
        trial_dir = Path(storage.trial_fs_path)
    except Exception:  # noqa: BLE001  (outside a trial, or an older layout: nothing to find)
        return None
    best: tuple[dict[str, Any], Path] | None = None
    for folder in sorted(trial_dir.glob("checkpoint_*")):
        try:
            state = json.loads((folder / "rung.json").read_text())
            nxt = int(state["next"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (isinstance(state.get("metrics"), dict) and nxt > start
                and (best is None or nxt > int(best[0]["next"]))):
            best = (state, folder)
    return best


# --------------------------------------------------------------------------------------------
# Ray session
# --------------------------------------------------------------------------------------------
def _prewarm_task(cfg: SearchConfig, machines: Mapping[str, MachineData]) -> float:
    """:func:`~automl_asd.search.budget.prewarm` as one Ray task with a trial's resources
    (never in the driver)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    task: Any = ray.remote(prewarm).options(num_cpus=cfg.cpus_per_trial,
                                             num_gpus=cfg.gpus_per_trial,
                                             name="automl-asd-prewarm")
    cache = cfg.cache_dir.expanduser().resolve() if cfg.cache_dir else None
    seconds: float = _task_result(task.remote(machines, cfg.space, cache))
    return seconds


def _task_result(ref: Any) -> Any:
    """``ray.get(ref)``, raising a failed task's own error (one line: a bad clip names its
    file) instead of Ray's wrapper with the worker's whole traceback (found 2026-12-07: an
    empty wav printed 30 coloured lines from the prewarm task)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        own = _task_error(exc)
        if own is not None:
            raise own from exc
        raise


def _task_error(exc: BaseException) -> Exception | None:
    """The task's own error inside Ray's wrapper ``exc`` (``None``: ``exc`` is no failed
    task's, or the task's error is no ``Exception``)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
        return cause
    return None


def _call_evaluator(evaluator: Evaluator, recipe: Recipe, machines: Mapping[str, MachineData],
                    kwargs: dict[str, Any]) -> ObjectiveResult:
    return evaluator(recipe, machines, **kwargs)


def _evaluator_in_tasks(evaluator: Evaluator, cfg: SearchConfig) -> BatchEvaluator:
    """``evaluator`` over a batch of recipes, each one Ray task with a trial's resources, all
    submitted at once (Ray runs as many as the cluster's free CPUs/GPUs allow)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    task: Any = ray.remote(_call_evaluator).options(num_cpus=cfg.cpus_per_trial,
                                                    num_gpus=cfg.gpus_per_trial,
                                                    name="automl-asd-evaluate")

    stored: dict[int, tuple[Mapping[str, MachineData], Any]] = {}

    def run(recipes: Sequence[Recipe], machines: Mapping[str, MachineData], *,
            on_done: OnDone | None = None, **kwargs: Any) -> list[ObjectiveResult]:
        # Each data mapping goes to the object store once, however many recipes are scored.
        if id(machines) not in stored:
            stored[id(machines)] = (machines, ray.put(machines))
        ref = stored[id(machines)][1]
        t0 = time.perf_counter()
        refs = [task.remote(evaluator, recipe, ref, kwargs) for recipe in recipes]
        index = {r: i for i, r in enumerate(refs)}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                result: ObjectiveResult = ray.get(ready[0])
                if on_done is not None:  # the task's own time, not its wait for a slot
                    on_done(index[ready[0]], result,
                            float(getattr(result, "wall_s", time.perf_counter() - t0)))
        except BaseException as exc:
            cancel_unfinished(pending)  # one failed: the others are not waited for
            own = _task_error(exc)
            if own is not None:
                raise own from exc
            raise
        results: list[ObjectiveResult] = ray.get(refs)
        return results

    return run


def _remote_estimate(cfg: SearchConfig) -> Callable[..., dict[str, Any]]:
    """:func:`~automl_asd.search.budget.estimate_costs` (tiny timed fits) as one Ray task with
    a trial's resources, so that the driver never trains anything."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    task: Any = ray.remote(estimate_costs).options(num_cpus=cfg.cpus_per_trial,
                                                   num_gpus=cfg.gpus_per_trial,
                                                   name="automl-asd-estimate")

    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = _task_result(task.remote(*args, **kwargs))
        return result

    return run


def _preflight(cfg: SearchConfig, storage: str, machines: Mapping[str, MachineData]) -> None:
    """The data, the feature cache and the Tune storage, checked on every node first."""
    preflight_nodes(PathCheck(
        data=str(cfg.data.expanduser().resolve()), machine_types=tuple(sorted(machines)),
        writable=(("--storage" if cfg.storage else "--out", storage),),
        cache_dir=str(cfg.cache_dir.expanduser().resolve()) if cfg.cache_dir else None))


# --------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    return package_versions()


def run_search(cfg: SearchConfig, *, evaluator: Evaluator | None = None,
               callbacks: Sequence[Any] = (), data: SearchData | None = None) -> SearchOutcome:
    """Run (or resume) one search and write its outputs to ``cfg.out``.

    Args:
        cfg: search settings.
        evaluator: objective (default :func:`automl_asd.evaluation.objective.evaluate_recipe`).
        callbacks: extra Ray Tune callbacks (tests use one to interrupt a search).
        data: ``cfg``'s development and ``--novel`` types as
            :func:`~automl_asd.search.novel_check.check_search_data` returned them (default:
            scanned and checked here).
    Returns:
        The frozen best recipe (also written to ``<out>/recipe.json``) and the trial table.
    Raises:
        ValueError: on a run directory that holds another search, a space that changed since
            the search began, or when no trial finished at full fidelity.
    """
    from ray import tune  # noqa: PLC0415  (heavy third-party, loaded when used)
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler  # noqa: PLC0415  (heavy third-party, loaded when used)
    from ray.tune.search.optuna import OptunaSearch  # noqa: PLC0415  (heavy third-party, loaded when used)

    if evaluator is None:
        evaluator = evaluate_recipe
    cfg = _absolute_cache(cfg)
    out = cfg.out.expanduser().resolve()
    storage = cfg.storage or str(out)
    exp_path = f"{storage.rstrip('/')}/{TUNE_DIRNAME}"
    # Before Ray starts: development types every trial could only fail on, and a bad --novel
    # (it must not cost a finished search its check); the command checked them already.
    if data is None:
        data = check_search_data(cfg.data, cfg.machine_types, cfg.novel)
    machines, novel = data.machines, data.novel
    mtypes = tuple(sorted(machines))
    space = cfg.space
    dev_data = data_fingerprint(machines)
    meta = run_meta(cfg, mtypes, _versions(), dev_data.files_sha256)
    previous = io.read_search_meta(out)

    started_ray = init_ray(cfg.address, verbose=cfg.verbose)  # loopback only when local
    try:
        # before anything is written: a refused request leaves no search behind
        check_fits(cfg.cpus_per_trial, cfg.gpus_per_trial, "search", options="--cpus-per-trial "
                   "/ --gpus-per-trial", local=started_ray and is_local(cfg.address))
        can_restore = tune.Tuner.can_restore(exp_path)
        if cfg.resume and can_restore:
            _check_tune_state(exp_path)
        # where Tune's saved state says the run lives: a moved or copied folder is refused
        saved_at = _saved_tune_location(exp_path) if cfg.resume and can_restore else None
        check_start(cfg, out, exp_path,
                    {**previous, "tune_state": saved_at} if previous and saved_at else previous,
                    meta, can_restore=can_restore)
        out.mkdir(parents=True, exist_ok=True)
        if not cfg.resume:
            # where Tune keeps the run's state: its saved state names this place for good
            io.write_search_meta(out, {**meta, "started": _now(), "tune_state": exp_path})
        elif previous is not None:
            io.write_search_meta(out, {**previous, "resumed": _now(),
                                       "resume_time_budget_s": cfg.time_budget_s})
        _preflight(cfg, storage, machines)
        if cfg.prewarm:
            _prewarm_task(cfg, machines)
            # a resume continues the same space on the same data (check_start): the estimate
            # made when the search started still holds
            budget_check(cfg, machines, out, estimate=_remote_estimate(cfg),
                         measured=(previous or {}).get("estimates") if cfg.resume else None,
                         cluster_cpus=_cluster_cpus(),
                         **(_trials_made(out, (previous or {}).get("interrupted"))
                            if cfg.resume else {}))

        ctx = _TrialContext(keep_warnings=cfg.verbose == 0,
                            space=space, reference_point=space.reference_point(),
                            machines=machines,
                            cache_dir=str(cfg.cache_dir) if cfg.cache_dir else None,
                            device=cfg.device, evaluator=evaluator,
                            reference_cap_s=reference_cap(cfg.time_budget_s),
                            reference_rung_s=_reference_rung_s(out))
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, ctx=ctx),
            {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})
        if cfg.resume:
            logger.info("resuming search from %s", exp_path)
            # Ray's "Failed to fetch metrics for N trial(s)" while restoring names trials a
            # kill left without a result file (found 2026-12-08): the search lists those
            with _without_ray_stop_lines(lambda: True):
                tuner = tune.Tuner.restore(exp_path, trainable=trainable,
                                           resume_unfinished=True, resume_errored=False,
                                           restart_errored=False)
        else:
            tuner = _new_tuner(cfg, trainable, storage, callbacks, OptunaSearch,
                               ASHAScheduler, FIFOScheduler)
        from automl_asd.orchestration.budget import (  # noqa: PLC0415  (imports ray.tune: after the usage-statistics switch)
            set_deadline,
            set_run_again,
            stopped_by_budget,
            unfinished_at_stop,
        )

        set_deadline(cfg.time_budget_s)  # this invocation's budget, on a resume too
        from automl_asd.orchestration.progress import set_shown_before  # noqa: PLC0415  (imports ray.tune)

        set_shown_before(data.warnings)  # the data check's warnings: trials do not repeat them
        # without a budget, a reference its cap stopped at a lower rung runs at full fidelity
        set_run_again([space.reference_point()] if cfg.resume and cfg.time_budget_s is None
                      and (previous or {}).get("reference_capped") else [])
        from automl_asd.orchestration.dedup import set_run_folder  # noqa: PLC0415  (imports ray.tune)

        set_run_folder(out)  # this invocation's folder (a restored searcher names its first)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # ASHA's nanpercentile over a rung holding only the reference trial's NaN.
                warnings.filterwarnings("ignore", message="All-NaN slice",
                                        category=RuntimeWarning)
                grid, signalled = _fit_watching_sigint(tuner)
        finally:
            set_run_folder(None)  # only while this search runs
            set_run_again([])
        logger.info("search finished in %.1f s", time.perf_counter() - t0)
        skipped, filled = io.read_duplicates(out), io.read_filled_in(out)
        exhausted = io.read_exhausted(out)
        if skipped:
            logger.info("%d duplicate proposal(s) of the searcher skipped (recipes already "
                        "run or running)%s", skipped,
                        f"; {filled} untried point(s) of the space run in their stead"
                        if filled else "")
        records = records_from_grid(grid, space)
        # trials Tune made, run or not: one stopped before it reported counts among them (the
        # budget's fallback stop_all: a resume runs its config again as one more trial)
        n_made = len(records)
        n_lost = pending_reruns(records)
        began = previous if cfg.resume and previous is not None else meta  # what the run set
        target = int(began.get("trials", cfg.trials))
        # this invocation's budget (a resume runs under the one it is given)
        budgeted = cfg.time_budget_s is not None
        by_budget = stopped_by_budget()
        if signalled is None:  # Tune's handler not watched: guess from the trials that ran
            signalled = not budgeted and n_made < target
        # the budget ends a run through Tune's graceful stop, as Ctrl+C does, but it is no
        # interrupt: the search ends normally, with its unfinished trials saved for --resume
        interrupted = bool(signalled) and not by_budget
        # trials a stopped run saved unfinished: not done, even those that reported a rung
        open_ids = unfinished_at_stop() if (by_budget or interrupted) else frozenset()
        n_done = sum(r.status in RAN_STATUSES and r.trial_id not in open_ids for r in records)
        unfinished = len(open_ids) if by_budget else 0
        # the report says so (search.json's "interrupted"; a run that ends normally drops it)
        now_meta = io.read_search_meta(out) or {}
        mark: dict[str, Any] | None = None
        if interrupted:
            mark = {"after": n_done, "of": target, "unfinished_ids": sorted(open_ids)}
        elif by_budget and unfinished:
            mark = {"after": n_done, "of": target, "by": "time budget",
                    "unfinished": unfinished, "unfinished_ids": sorted(open_ids)}
        capped = reference_capped(records, open_ids)
        if now_meta.get("interrupted") != mark \
                or bool(now_meta.get("reference_capped")) != capped:
            io.write_search_meta(out, {**{k: v for k, v in now_meta.items()
                                          if k not in ("interrupted", "reference_capped")},
                                       **({"interrupted": mark} if mark else {}),
                                       **({"reference_capped": True} if capped else {})})
        if interrupted:
            logger.warning("search interrupted after %d of %d trials; outputs reflect the "
                           "finished trials; continue with --resume", n_done, target)
        elif unfinished:
            logger.info("time budget spent after %d of %d trials: %d trial(s) still running "
                        "or waiting are saved unfinished (the same command with --resume "
                        "continues them)", n_done, target, unfinished)
        elif n_lost:
            logger.info("%d trial(s) ended without a result (stopped by the time budget before "
                        "they reported; --resume runs them again)", n_lost)
        elif n_made < target and exhausted is not None:
            logger.warning("search ran %d of %d trials: every recipe of the space had run "
                           "(%d distinct; points that differ only in parameters inert where "
                           "they are set are one recipe), so it ended", n_done, target,
                           exhausted)
        elif n_made < target and not budgeted:
            # neither an interrupt nor the budget: Tune lost trials (an experiment state it
            # could not restore, e.g. cut short by a full disk, is logged above and skipped)
            # or the searcher ran out of distinct recipes
            logger.warning("search ran %d of %d trials without an interrupt or a time budget"
                           "%s; outputs reflect the trials that ran. If Tune reported above "
                           "that it failed to restore the run state, that state is damaged: "
                           "start again with a new --out", n_done, target,
                           f" ({skipped} duplicate proposal(s) skipped: the space may hold "
                           "fewer distinct recipes)" if skipped else "")
        # The final pick may re-score top trials that kept no per-clip scores and the novel
        # check scores the top trials on the novel types: both as batches of parallel Ray tasks
        # (on this Ray session, before it shuts down), so the driver only plans, waits and
        # writes reports.
        in_tasks = _evaluator_in_tasks(evaluator, cfg)
        provenance = SearchProvenance(seed=cfg.seed, machine_types=mtypes,
                                      versions=_versions(), created=_now(),
                                      dev_data=dev_data)
        try:
            outcome = freeze_search(cfg, out, records, provenance, finished=_now(),
                                    pick=make_picker(cfg, machines, in_tasks))
        except NothingFinishedError:
            if not interrupted:
                raise
            # found 2026-12-07: Ctrl+C during the first trials ended as an error (rc 1)
            logger.warning("search interrupted before any trial finished at full fidelity: "
                           "the same command with --resume continues it")
            raise KeyboardInterrupt("search interrupted before any trial finished") from None
        if cfg.novel is not None:
            try:
                outcome = replace(outcome, files={**outcome.files, **novel_check(
                    cfg, outcome, in_tasks, novel)})
            except Exception as exc:  # the frozen recipe and the report are already written
                logger.debug("novel check failed", exc_info=True)
                logger.error("does the choice carry? failed: %s (recipe.json and the search "
                             "report are written and unaffected)", one_line(exc))
                outcome = replace(outcome, novel_error=one_line(exc))
                io.append_novel_failure(out, novel_root=str(cfg.novel),
                                        message=one_line(exc))
    finally:
        if started_ray:
            shutdown_ray()
    return replace(outcome, interrupted=interrupted, unfinished=unfinished)


def _fit_watching_sigint(tuner: Any) -> tuple[Any, bool | None]:
    """``tuner.fit()`` and whether a SIGINT (Ctrl+C), SIGUSR1 or SIGTERM stopped it early
    (``None``: cannot tell here). Tune (``ray.tune.tune._setup_signal_catching``, Ray 2.60)
    installs its own SIGINT handler for the run and, when the signal comes, ends the run
    gracefully and puts back the handler it found: a sentinel installed before ``fit()`` is
    back in place after it exactly when the run was stopped by the signal. A finished search
    leaves Tune's handler in place; the time budget ends the run through that handler too
    (:func:`~automl_asd.orchestration.budget.stopped_by_budget` tells it from a signal). Where
    SIGTERM has a Python handler (the CLI's interrupt), SIGTERM is handled as SIGINT during
    the run."""
    from automl_asd.orchestration.budget import stopped_by_budget  # noqa: PLC0415  (imports ray.tune)

    if (threading.current_thread() is not threading.main_thread()
            or os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0") not in ("", "0")):
        with _without_ray_stop_lines(stopped_by_budget):
            return tuner.fit(), None
    previous = signal.getsignal(signal.SIGINT)

    def sentinel(sig: int, frame: Any) -> None:  # outside fit(): behave as before
        if callable(previous):
            previous(sig, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, sentinel)
    # a command that made SIGTERM an interrupt (the CLI) gets Tune's graceful stop for it too:
    # the finished trials' tables, report and recipe are written (found 2026-12-07: `kill`
    # raised inside fit() and left none of them); a second SIGTERM interrupts at once
    term = signal.getsignal(signal.SIGTERM)

    def forward_term(sig: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        # a SIGTERM to the whole process group (`timeout`, a scheduler) also ends the local
        # Ray's own processes, without which Tune cannot end gracefully (it waits a minute for
        # them, then exits): then the command's plain interrupt, at once
        if not callable(handler) or _ray_gone(_gcs_address()):
            raise KeyboardInterrupt(f"signal {sig}")
        handler(sig, frame)

    if callable(term):
        signal.signal(signal.SIGTERM, forward_term)
    try:
        with _without_ray_stop_lines(
                lambda: stopped_by_budget() or signal.getsignal(signal.SIGINT) is sentinel):
            grid = tuner.fit()
        stopped = signal.getsignal(signal.SIGINT) is sentinel
    finally:
        signal.signal(signal.SIGINT, previous)
        if callable(term):
            signal.signal(signal.SIGTERM, term)
    return grid, stopped


class _RayStopLines(logging.Filter):
    """Drops Ray's own lines at the end of a stopped run: its ``Tuner.restore(...)`` hint, the
    list of unfinished trials and the trials without results it could not read (the command
    says what stopped the run, lists trials without a result as ``not_run``, and says how
    ``--resume`` continues; a user of the CLI has no Tuner to restore). ``stopped``: whether
    the budget or a signal stopped the running ``fit()``."""

    _ALWAYS = ("Experiment has been interrupted, but the most recent state was saved",
               "Training has been interrupted, but the most recent state was saved")
    #: kept where nothing stopped the run (failed trials)
    _WHEN_STOPPED = ("Trials did not complete", "Failed to fetch metrics for")

    def __init__(self, stopped: Callable[[], bool]) -> None:
        super().__init__()
        self._stopped = stopped

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self._ALWAYS):
            return False
        return not (message.startswith(self._WHEN_STOPPED) and self._stopped())


class _StateSaveLine(logging.Filter):
    """Turns Ray's "Saving experiment state to storage at '...' failed with exception:" and
    its traceback into one line in the CLI's words (found 2026-12-07: a full disk during a
    search printed pyarrow's traceback; the search's own error line follows it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not str(record.msg).startswith("Saving experiment state to storage"):
            return True
        match = re.search(r"at '([^']*)'", str(record.msg))
        where = match.group(1) if match else "its run folder"
        why = disk_full_reason(exc) or f"{type(exc).__name__}: {exc}".splitlines()[0]
        record.msg = (f"Ray Tune could not save the search state in {where} ({why}); what it "
                      "saved there may be incomplete")
        record.args = ()
        record.exc_info = record.exc_text = None
        return True


@contextlib.contextmanager
def _without_ray_stop_lines(stopped: Callable[[], bool]) -> Iterator[None]:
    lines = _RayStopLines(stopped)
    loggers = [logging.getLogger(name) for name in ("ray.tune.tune",
                                                    "ray.tune.analysis.experiment_analysis")]
    for ray_logger in loggers:
        ray_logger.addFilter(lines)
    state = logging.getLogger("ray.tune.execution.experiment_state")
    state_line = _StateSaveLine()
    state.addFilter(state_line)
    try:
        yield
    finally:
        for ray_logger in loggers:
            ray_logger.removeFilter(lines)
        state.removeFilter(state_line)


#: Seconds to watch Ray's GCS after a SIGTERM: a process group's SIGTERM closes the local
#: GCS's port within this (measured: well under a second on 2 loaded cores).
_GCS_WATCH_S = 1.5


def _gcs_address() -> str | None:
    try:
        import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

        if not ray.is_initialized():  # get_runtime_context() would start a Ray
            return None
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # noqa: BLE001  (no address to watch)
        return None


def _ray_gone(address: str | None, watch_s: float | None = None) -> bool:
    """Whether Ray's GCS at ``address`` stops accepting connections within ``watch_s``
    seconds (polled every 0.1 s); False when there is no address to watch."""
    parsed = host_port(address) if address else None
    if parsed is None:
        return False
    deadline = time.monotonic() + (_GCS_WATCH_S if watch_s is None else watch_s)
    while True:
        try:
            with socket.create_connection(parsed, timeout=1.0):
                pass
        except OSError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _reference_rung_s(out: Path) -> tuple[float, ...] | None:
    """The cost estimate's seconds per rung for the reference (search.json), if measured."""
    rung_s = ((io.read_search_meta(out) or {}).get("estimates") or {}).get("reference_rung_s")
    if not isinstance(rung_s, list):
        return None
    try:
        return tuple(float(x) for x in rung_s)
    except (TypeError, ValueError):
        return None


def _absolute_cache(cfg: SearchConfig) -> SearchConfig:
    """``cfg`` with an absolute ``cache_dir``: Tune runs each trial in its own working folder,
    where a relative cache folder would be a new, empty cache per trial."""
    if cfg.cache_dir is None:
        return cfg
    return replace(cfg, cache_dir=cfg.cache_dir.expanduser().resolve())


def _new_tuner(cfg: SearchConfig, trainable: Any, storage: str, callbacks: Sequence[Any],
               optuna_search: Any, asha: Any, fifo: Any) -> Any:
    from ray import tune  # noqa: PLC0415  (heavy third-party, loaded when used)
    from ray.tune.search import ConcurrencyLimiter  # noqa: PLC0415  (heavy third-party, loaded when used)

    from automl_asd.orchestration.budget import (  # noqa: PLC0415  (imports ray.tune: after the usage-statistics switch)
        BudgetStopper,
        ResumableSearchGenerator,
        UnfinishedAtStop,
    )
    from automl_asd.orchestration.dedup import DedupSearcher  # noqa: PLC0415  (imports ray.tune: after the usage-statistics switch)
    from automl_asd.orchestration.progress import TrialProgress  # noqa: PLC0415  (imports ray.tune: after the usage-statistics switch)

    space = cfg.space
    tpe = optuna_search(space.optuna_function(), metric=_OBJECTIVE, mode="max",
                        seed=cfg.seed, points_to_evaluate=[space.reference_point()])
    # TPE re-proposes recipes it has already run (issue 15): those are not launched.
    searcher = DedupSearcher(tpe, partial(_recipe_key, space),
                             out_dir=cfg.out.expanduser().resolve(),
                             untried=_fill_order(space, cfg.seed))
    n_rungs = len(space.fidelity.rungs)
    scheduler = (asha(time_attr="training_iteration", metric=_ASHA_METRIC, mode="max",
                      max_t=n_rungs, grace_period=1,
                      reduction_factor=space.fidelity.reduction_factor)
                 if n_rungs > 1 else fifo())
    # what Tune builds from max_concurrent_trials, but a generator a resume can continue
    # after the time budget stopped the search (Tune saves the budget's "finished")
    search_alg = ResumableSearchGenerator(ConcurrencyLimiter(searcher, cfg.max_concurrent))
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                    num_samples=cfg.trials, reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_DIRNAME, storage_path=storage, verbose=min(cfg.verbose, 1),
            # not TuneConfig's time_budget_s: Tuner.restore brings that back already spent
            stop=BudgetStopper(),
            callbacks=[*callbacks, TrialProgress(len(space.fidelity.rungs),
                                                          reference_label=space.reference_label),
                       UnfinishedAtStop()],
            # a trial whose worker or node is lost runs again once, from its last rung
            # (found 2026-12-07: it stayed an error, and whether --resume re-ran it depended
            # on what Tune had saved last); a recipe that fails by itself fails twice
            failure_config=tune.FailureConfig(max_failures=_TRIAL_RETRIES, fail_fast=False)),
    )


#: times Tune runs a failed trial again (from its last checkpointed rung) before it is an error
_TRIAL_RETRIES = 1


def _fill_order(space: SearchSpace, seed: int) -> list[dict[str, Any]] | None:
    """A finite space's points in the order the duplicate check fills in the ones TPE does
    not propose (shuffled by the search's seed); ``None`` for a continuous or huge space."""
    points = space.points()
    if points is not None:
        random.Random(seed).shuffle(points)
    return points


def _recipe_key(space: SearchSpace, config: Mapping[str, Any]) -> str:
    """A proposal's identity for :class:`~automl_asd.orchestration.dedup.DedupSearcher`: the
    behaviour hash of the recipe the trial would run (its content hash with inert parameters,
    e.g. a hedge's coarse-view sizes without a coarse view, at their defaults)."""
    return trial_recipe(space, config).behaviour_hash()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _trial_order(trial_id: str, path: str) -> int:
    """Creation index of a trial: Tune names trial folders ``<trainable>_<id>_<index>_...``."""
    match = re.search(rf"_{re.escape(trial_id)}_(\d+)", Path(path).name)
    return int(match.group(1)) if match else 0


def records_from_grid(grid: Any, space: SearchSpace | None = None) -> list[TrialRecord]:
    """The trials of a Tune ``ResultGrid`` as :class:`TrialRecord` objects, in creation order.

    Each record holds the trial's config as Tune handed it to the trainable (native values),
    its last reported metrics and the last line of its error. With ``space``, a trial without
    results is still known as the reference from its config, and a trial of an older version
    gets its behaviour hash from its config. Kept per-clip scores are not read here: each
    record's ``clip_scores_loader`` reads its checkpoint when the final pick asks.
    """
    reference = space.reference_point() if space is not None else None
    max_fidelity = 1.0
    made = _trials_by_path(grid)
    records = []
    for res in grid:
        metrics = dict(res.metrics or {})
        # a trial without a result (the time budget stopped it first) has no metrics to
        # carry its id and config: Tune's own trial object has them
        trial = made.get(str(res.path))
        trial_id = str(metrics.get("trial_id") or getattr(trial, "trial_id", None)
                       or Path(str(res.path)).name)
        config = dict(res.config or {}) or dict(getattr(trial, "config", None) or {})
        records.append(record_from_result(
            trial_id, _trial_order(trial_id, str(res.path)), config, metrics,
            _short_error(res.error), reference_point=reference, max_fidelity=max_fidelity,
            # Read only when asked: a bootstrap final pick reads its few candidates' scores.
            clip_scores_loader=functools.partial(_clip_scores, res, trial_id),
            behaviour_hash=(None if metrics.get("behaviour_hash")
                            else _behaviour_of(space, config))))
    return sorted(records, key=lambda r: r.order)


def _trials_by_path(grid: Any) -> dict[str, Any]:
    """Tune's trial objects behind a ``ResultGrid``, by trial folder (empty when this Ray
    version keeps them elsewhere: trials without results then lose their config)."""
    analysis = getattr(grid, "_experiment_analysis", None)
    return {str(t.path): t for t in getattr(analysis, "trials", None) or []}


def _behaviour_of(space: SearchSpace | None, config: Mapping[str, Any] | None) -> str | None:
    """The behaviour hash of the recipe a trial's config runs in ``space`` (for trials that did
    not report one: an older version, or no result); ``None`` without a space or when the
    config no longer fits it (the space file changed)."""
    if space is None or not config:
        return None
    try:
        return _recipe_key(space, config)
    except Exception:  # noqa: BLE001  (an old config that no longer builds: keep content hash)
        return None


def _clip_scores(res: Any, trial_id: str) -> ClipScores | None:
    """The per-clip scores saved with a trial's last checkpoint (``None`` without them: a
    trial that stopped early, failed, or ran under an older version; the final pick then
    re-scores it). An unreadable file is logged and treated as missing."""
    checkpoint = getattr(res, "checkpoint", None)
    if checkpoint is None or res.error is not None:
        return None
    try:
        with checkpoint.as_directory() as folder:
            return load_clip_scores(folder)
    except (OSError, ValueError) as exc:
        logger.warning("trial %s: per-clip scores unreadable (%s); the final pick re-scores "
                       "it if it needs them", trial_id, exc)
        return None


def _short_error(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = str(error).strip().splitlines()
    # Ray wraps the trial's exception; keep its last line (the original message; a lost
    # node's ends in a tab-indented line)
    return (text[-1].strip() if text else type(error).__name__)[:500]


# --------------------------------------------------------------------------------------------
# leave-one-out
# --------------------------------------------------------------------------------------------
def run_leave_one_out(cfg: SearchConfig, *, evaluator: Evaluator | None = None,
                      callbacks: Sequence[Any] = (),
                      data: SearchData | None = None) -> LeaveOneOutOutcome:
    """:func:`automl_asd.search.loo.run_leave_one_out` with one Ray Tune search per fold and
    each held-out evaluation as one Ray task with a trial's resources.

    Folds are written to ``<out>/loo/<held-out type>/``; with ``cfg.resume`` finished folds are
    read back and an interrupted fold is resumed.
    """
    if evaluator is None:
        evaluator = evaluate_recipe
    cfg = _absolute_cache(cfg)
    if data is None:
        data = check_search_data(cfg.data, cfg.machine_types)
    machines = data.machines
    if len(machines) < 2:
        raise ValueError("--leave-one-out needs at least 2 development types, found "
                         f"{tuple(sorted(machines))}")
    chosen: Evaluator = evaluator
    started_ray = init_ray(cfg.address, verbose=cfg.verbose)  # loopback only when local
    try:
        if cfg.prewarm:
            _prewarm_task(cfg, machines)
        # Each fold's frozen recipe and the reference on the held-out type: Ray tasks with a
        # trial's resources, never the driver.
        held_out = _evaluator_in_tasks(chosen, cfg)
        return loo.run_leave_one_out(
            cfg, machines,
            search=lambda fold_cfg: run_search(
                fold_cfg, evaluator=chosen, callbacks=callbacks,
                data=data.only(fold_cfg.machine_types or ())),
            evaluate_on=lambda recipes, data: held_out(recipes, data, cache_dir=cfg.cache_dir,
                                                       device=cfg.device, fidelity=1.0),
            has_state=lambda held, fold_dir: _has_state(fold_dir, cfg.storage, held))
    finally:
        if started_ray:
            shutdown_ray()


def _has_state(fold_dir: Path, storage: str | None, held: str) -> bool:
    from ray import tune  # noqa: PLC0415  (heavy third-party, loaded when used)

    base = fold_storage(storage, held) or str(fold_dir)
    return bool(tune.Tuner.can_restore(f"{base}/{TUNE_DIRNAME}"))
