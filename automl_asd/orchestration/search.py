"""``automl-asd search``: Ray Tune + Optuna (TPE) + ASHA over a YAML search space.

Each trial turns its sampled parameters into a recipe, applies it to every development machine
type (``objective.evaluate_recipe``) and reports Ω over all of them, once per fidelity rung
(fraction of source train clips). ASHA stops weak trials after a cheap rung. The space's
reference recipe (its starting point; the official DCASE baseline only in spaces that say
``reference: baseline_ae_mse``) is queued first and always evaluated at full fidelity (ASHA
never stops it), so the frozen recipe is never worse than the reference recipe on the
development objective.
A failing trial is recorded and the search goes on; ``resume`` continues a killed search from
its run directory without rerunning finished trials.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from automl_asd.objective import ObjectiveResult
from automl_asd.recipe_summary import trial_summary
from automl_asd.search_budget import reference_stops, trial_objective
from automl_asd.search_space import SearchSpace
from automl_asd.trials import is_missing, to_native

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.recipe import Recipe

__all__ = [
    "Evaluator",
    "SearchConfig",
    "SearchOutcome",
    "LeaveOneOutOutcome",
    "run_search",
    "run_leave_one_out",
    "trials_table",
    "TUNE_DIRNAME",
]

logger = logging.getLogger(__name__)

#: Sub-folder of the run directory holding Ray Tune's experiment state (what --resume reads).
TUNE_DIRNAME = "tune"
_METRIC = "omega"
#: TPE's metric: the space's selection objective (``selection.objective``; Ω for ``mean``).
_OBJECTIVE = "objective"
#: ASHA's metric: the objective at the current rung, NaN for the reference recipe (which ASHA
#: therefore never stops).
_ASHA_METRIC = "rung_omega"
PARAM_PREFIX = "param:"


class Evaluator(Protocol):
    """``objective.evaluate_recipe``'s signature (tests pass small stand-ins)."""

    def __call__(self, recipe: Recipe, machines: Mapping[str, MachineData], *,
                 cache_dir: Any = None, device: str = "auto",
                 fidelity: float = 1.0) -> ObjectiveResult: ...


@dataclass(frozen=True)
class SearchConfig:
    """Everything one search needs (the CLI builds it from its arguments).

    ``machine_types`` restricts the development types (``None`` = every type under ``data``).
    ``storage`` is Tune's storage (a shared path or ``s3://`` URI on multi-node clusters);
    default ``<out>/tune``'s parent, i.e. ``out``.
    """

    data: Path
    space: SearchSpace
    out: Path
    trials: int
    machine_types: tuple[str, ...] | None = None
    max_concurrent: int = 1
    time_budget_s: float | None = None
    resume: bool = False
    seed: int = 0
    cache_dir: Path | None = None
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    device: str = "auto"
    storage: str | None = None
    prewarm: bool = True
    verbose: int = 0
    #: Labelled novel types: after the search, the top trials and the reference recipe are
    #: scored there ("does the choice carry?"); never used to choose.
    novel: Path | None = None
    novel_top_k: int = 10


@dataclass(frozen=True)
class SearchOutcome:
    """Result of one search: the frozen best recipe and the per-trial table."""

    run_dir: Path
    recipe: Recipe
    best_omega: float
    best_trial_id: str
    #: Ω of the space's reference recipe (its first trial); ``None`` when it did not finish.
    reference_omega: float | None
    trials: pd.DataFrame
    machine_types: tuple[str, ...]
    files: Mapping[str, Path] = field(default_factory=dict)
    #: True when the search stopped (e.g. Ctrl+C) before all trials ran; ``--resume`` continues.
    interrupted: bool = False
    #: Which recipe the reference is, e.g. "reference recipe `fast_default` (not the official
    #: DCASE baseline)".
    reference: str = ""


@dataclass(frozen=True)
class LeaveOneOutOutcome:
    """One search per held-out development type; ``table`` has one row per type."""

    run_dir: Path
    table: pd.DataFrame
    folds: Mapping[str, SearchOutcome]
    files: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class _TrialContext:
    """What each trial needs besides its config (picklable; ``tune.with_parameters`` puts it
    in the object store once, so ``machines``, the scanned development data, reaches every
    trial without a rescan of the tree)."""

    data: str
    machine_types: tuple[str, ...]
    space: SearchSpace
    reference_point: Mapping[str, Any]
    cache_dir: str | None
    device: str
    evaluator: Evaluator
    machines: Mapping[str, MachineData] | None = None
    #: The reference trial stops before a rung projected to end after this many
    #: seconds of its own run time (``None``: no cap; it then reports once, at full fidelity).
    reference_cap_s: float | None = None


# --------------------------------------------------------------------------------------------
# the trainable
# --------------------------------------------------------------------------------------------
def _trainable(config: dict[str, Any], ctx: _TrialContext) -> None:
    """Tune function trainable: config -> recipe -> Ω per fidelity rung -> ``tune.report``."""
    from ray import tune

    from automl_asd.data import scan

    rungs = ctx.space.fidelity.rungs
    is_reference = dict(config) == dict(ctx.reference_point)
    recipe = ctx.space.to_recipe(config, name=f"{ctx.space.name}_trial")
    machines = ctx.machines if ctx.machines is not None else scan(
        Path(ctx.data), machine_types=list(ctx.machine_types))
    where = _where()
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            start = int(json.loads((Path(ckpt_dir) / "rung.json").read_text())["next"])
    # Without a time cap the reference skips the cheap rungs: it reports once, at full
    # fidelity. With one it climbs the rungs like any trial and stops before a rung that would
    # end past the cap, so it never holds a slot for the whole budget.
    capped = is_reference and ctx.reference_cap_s is not None
    todo = ([len(rungs) - 1] if is_reference and not capped
            else list(range(start, len(rungs))))
    t_start = time.perf_counter()
    last: tuple[float, float] | None = None
    for i in todo:
        if capped and last is not None and reference_stops(
                ctx.reference_cap_s, time.perf_counter() - t_start, last, rungs[i], recipe):
            return
        t_rung = time.perf_counter()
        result = ctx.evaluator(recipe, machines, cache_dir=ctx.cache_dir, device=ctx.device,
                               fidelity=rungs[i])
        last = (rungs[i], time.perf_counter() - t_rung)
        objective = trial_objective(ctx.space.selection.objective, result)
        metrics: dict[str, Any] = {**result.flat(), "rung": i + 1,
                                   "is_reference": int(is_reference),
                                   "recipe_hash": recipe.content_hash(), **where,
                                   _OBJECTIVE: objective}
        # NaN keeps the reference out of ASHA's cutoffs (``nanpercentile``), never stopping it.
        metrics[_ASHA_METRIC] = float("nan") if is_reference else objective
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "rung.json").write_text(json.dumps({"next": i + 1}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _where() -> dict[str, Any]:
    """Ray node id, host and pid of this trial's process (reported with every result)."""
    import ray

    from automl_asd.storage import where

    return where(ray.get_runtime_context().get_node_id())


# --------------------------------------------------------------------------------------------
# Ray session
# --------------------------------------------------------------------------------------------
def _ensure_ray(address: str | None, verbose: int) -> bool:
    """Connect to ``address`` (or ``RAY_ADDRESS``) or start a local Ray with the dashboard off.
    Returns True when this call started Ray (the caller shuts it down)."""
    from automl_asd.orchestration.session import init_ray

    return init_ray(address, verbose=verbose)  # loopback only when local


def _prewarm_task(cfg: SearchConfig, machines: Mapping[str, MachineData]) -> float:
    """:func:`_prewarm` as one Ray task with a trial's resources (never in the driver)."""
    import ray

    task: Any = ray.remote(_prewarm).options(num_cpus=cfg.cpus_per_trial,
                                             num_gpus=cfg.gpus_per_trial,
                                             name="automl-asd-prewarm")
    cache = cfg.cache_dir.expanduser().resolve() if cfg.cache_dir else None
    seconds: float = ray.get(task.remote(machines, cfg.space, cache))
    return seconds


def _call_evaluator(evaluator: Evaluator, recipe: Recipe, machines: Mapping[str, MachineData],
                    kwargs: dict[str, Any]) -> ObjectiveResult:
    return evaluator(recipe, machines, **kwargs)


def _evaluator_in_tasks(evaluator: Evaluator, cfg: SearchConfig) -> Evaluator:
    """``evaluator`` with each call run as one Ray task with a trial's resources."""
    import ray

    task: Any = ray.remote(_call_evaluator).options(num_cpus=cfg.cpus_per_trial,
                                                    num_gpus=cfg.gpus_per_trial,
                                                    name="automl-asd-evaluate")

    def run(recipe: Recipe, machines: Mapping[str, MachineData], **kwargs: Any
            ) -> ObjectiveResult:
        result: ObjectiveResult = ray.get(task.remote(evaluator, recipe, machines, kwargs))
        return result

    return run


def _remote_estimate(cfg: SearchConfig) -> Callable[..., dict[str, Any]]:
    """:func:`~automl_asd.search_budget.estimate_costs` (tiny timed fits) as one Ray task with
    a trial's resources, so that the driver never trains anything."""
    import ray

    from automl_asd.search_budget import estimate_costs

    task: Any = ray.remote(estimate_costs).options(num_cpus=cfg.cpus_per_trial,
                                                   num_gpus=cfg.gpus_per_trial,
                                                   name="automl-asd-estimate")

    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(task.remote(*args, **kwargs))
        return result

    return run


def _preflight(cfg: SearchConfig, storage: str, machines: Mapping[str, MachineData]) -> None:
    """The data, the feature cache and the Tune storage, checked on every node first."""
    from automl_asd.orchestration.ray_runner import preflight_nodes
    from automl_asd.storage import PathCheck

    preflight_nodes(PathCheck(
        data=str(cfg.data.expanduser().resolve()), machine_types=tuple(sorted(machines)),
        writable=(("--storage" if cfg.storage else "--out", storage),),
        cache_dir=str(cfg.cache_dir.expanduser().resolve()) if cfg.cache_dir else None))


def _prewarm(machines: Mapping[str, MachineData], space: SearchSpace,
             cache_dir: Path | None) -> float:
    """Extract the reference recipe's feature spec for every dev clip once, before trials
    start."""
    from automl_asd.features import extract

    spec = space.to_recipe(space.reference_point(), name="prewarm").features
    clips = [c for m in machines.values() for c in m.clips]
    t0 = time.perf_counter()
    extract(clips, spec, cache_dir=cache_dir, progress=False)
    seconds = time.perf_counter() - t0
    logger.info("feature cache warm for the reference recipe's spec: %d clips in %.1f s",
                len(clips), seconds)
    return seconds


# --------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    from automl_asd.provenance import package_versions

    return package_versions()


def run_search(cfg: SearchConfig, *, evaluator: Evaluator | None = None,
               callbacks: Sequence[Any] = ()) -> SearchOutcome:
    """Run (or resume) one search and write its outputs to ``cfg.out``.

    Args:
        cfg: search settings.
        evaluator: objective (default :func:`automl_asd.objective.evaluate_recipe`).
        callbacks: extra Ray Tune callbacks (tests use one to interrupt a search).
    Returns:
        The frozen best recipe (also written to ``<out>/recipe.json``) and the trial table.
    Raises:
        ValueError: on a run directory that holds another search, a space that changed since
            the search began, or when no trial finished at full fidelity.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from automl_asd.data import scan
    from automl_asd.io import search_report as io
    from automl_asd.novel_check import make_picker, novel_check
    from automl_asd.search_budget import budget_check, reference_cap

    if evaluator is None:
        from automl_asd.objective import evaluate_recipe

        evaluator = evaluate_recipe
    if cfg.trials < 1:
        raise ValueError(f"--trials: {cfg.trials}; expected at least 1")
    out = cfg.out.expanduser().resolve()
    storage = cfg.storage or str(out)
    exp_path = f"{storage.rstrip('/')}/{TUNE_DIRNAME}"
    machines = scan(cfg.data.expanduser().resolve(),
                    machine_types=list(cfg.machine_types) if cfg.machine_types else None)
    if not machines:
        raise ValueError(f"{cfg.data}: no machine types found (expected <type>/train, test)")
    mtypes = tuple(sorted(machines))
    space = cfg.space
    meta = {"space_name": space.name, "space_path": str(space.path),
            "space_sha256": space.sha256, "seed": cfg.seed, "trials": cfg.trials,
            "data": str(cfg.data), "machine_types": list(mtypes),
            "rungs": list(space.fidelity.rungs), "versions": _versions()}
    previous = io.read_search_meta(out)

    started_ray = _ensure_ray(cfg.address, cfg.verbose)
    try:
        can_restore = tune.Tuner.can_restore(exp_path)
        if cfg.resume:
            if not can_restore:
                raise ValueError(f"{exp_path}: no search state to resume; run without --resume")
            if previous is not None:
                for key in ("space_sha256", "machine_types"):
                    if previous.get(key) != meta[key]:
                        raise ValueError(
                            f"{out}: cannot resume: {key} changed since the search began "
                            f"({previous.get(key)} -> {meta[key]}); resume with the same space "
                            "file and data, or start a new --out")
                if previous.get("trials") != cfg.trials:
                    logger.warning("resuming with the search's original %s trials (--trials %d "
                                   "is ignored on --resume)", previous.get("trials"), cfg.trials)
        elif can_restore:
            raise ValueError(f"{out} already holds a search; pass --resume to continue it or "
                             "choose a new --out")
        out.mkdir(parents=True, exist_ok=True)
        if not cfg.resume:
            io.write_search_meta(out, {**meta, "started": _now()})
        elif previous is not None:
            io.write_search_meta(out, {**previous, "resumed": _now()})
        _preflight(cfg, storage, machines)
        if cfg.prewarm:
            _prewarm_task(cfg, machines)
            budget_check(cfg, machines, out, estimate=_remote_estimate(cfg))

        ctx = _TrialContext(data=str(cfg.data.expanduser().resolve()), machine_types=mtypes,
                            space=space, reference_point=space.reference_point(),
                            cache_dir=str(cfg.cache_dir) if cfg.cache_dir else None,
                            device=cfg.device, evaluator=evaluator, machines=machines,
                            reference_cap_s=reference_cap(cfg.time_budget_s))
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, ctx=ctx),
            {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})
        if cfg.resume:
            logger.info("resuming search from %s", exp_path)
            tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            tuner = _new_tuner(cfg, trainable, storage, callbacks, OptunaSearch,
                               ASHAScheduler, FIFOScheduler)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # ASHA's nanpercentile over a rung holding only the reference trial's NaN.
            warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
            grid = tuner.fit()
        logger.info("search finished in %.1f s", time.perf_counter() - t0)
        table = trials_table(grid, space)
        n_done = int(table["status"].isin(["complete", "stopped_early", "error"]).sum()) \
            if not table.empty else 0
        interrupted = cfg.time_budget_s is None and n_done < cfg.trials
        if interrupted:
            logger.warning("search interrupted after %d of %d trials; outputs reflect the "
                           "finished trials; continue with --resume", n_done, cfg.trials)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    from automl_asd.provenance import data_fingerprint

    # The final pick may re-score the top trials and the novel check scores them on the novel
    # types: both through Ray tasks, so the driver only plans, waits and writes reports.
    in_tasks = _evaluator_in_tasks(evaluator, cfg)
    outcome = _freeze(cfg, out, table, mtypes, io, dev_data=data_fingerprint(machines),
                      pick=make_picker(cfg, machines, in_tasks))
    if cfg.novel is not None:
        outcome = replace(outcome, files={**outcome.files, **novel_check(
            cfg, outcome, in_tasks)})
    return replace(outcome, interrupted=interrupted)


def _new_tuner(cfg: SearchConfig, trainable: Any, storage: str, callbacks: Sequence[Any],
               optuna_search: Any, asha: Any, fifo: Any) -> Any:
    from ray import tune

    from automl_asd.orchestration.progress import TrialProgress

    space = cfg.space
    searcher = optuna_search(space.optuna_function(), metric=_OBJECTIVE, mode="max",
                             seed=cfg.seed, points_to_evaluate=[space.reference_point()])
    n_rungs = len(space.fidelity.rungs)
    scheduler = (asha(time_attr="training_iteration", metric=_ASHA_METRIC, mode="max",
                      max_t=n_rungs, grace_period=1,
                      reduction_factor=space.fidelity.reduction_factor)
                 if n_rungs > 1 else fifo())
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=cfg.trials,
                                    max_concurrent_trials=cfg.max_concurrent,
                                    time_budget_s=cfg.time_budget_s, reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_DIRNAME, storage_path=storage, verbose=min(cfg.verbose, 1),
            callbacks=[*callbacks, TrialProgress(len(space.fidelity.rungs))],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _trial_order(trial_id: str, path: str) -> int:
    """Creation index of a trial: Tune names trial folders ``<trainable>_<id>_<index>_...``."""
    match = re.search(rf"_{re.escape(trial_id)}_(\d+)", Path(path).name)
    return int(match.group(1)) if match else 0


def trials_table(grid: Any, space: SearchSpace | None = None) -> pd.DataFrame:
    """One row per trial of a Tune ``ResultGrid``: id, order, status, Ω, fidelity, wall time,
    per-type metrics, error, the sampled parameters as ``param:<name>`` columns and (with
    ``space``) ``recipe``, a one-line summary of the trial's recipe.

    ``status``: ``complete`` (full fidelity), ``stopped_early`` (ASHA), ``error``, or
    ``not_run`` (no result, e.g. a time budget ran out). With ``space``, integer dimensions
    get a nullable integer column (inactive = missing).
    """
    rows: list[dict[str, Any]] = []
    max_rung_fid = 1.0
    reference = space.reference_point() if space is not None else None
    for res in grid:
        metrics = dict(res.metrics or {})
        trial_id = str(metrics.get("trial_id") or Path(str(res.path)).name)
        row: dict[str, Any] = {"trial_id": trial_id,
                               "order": _trial_order(trial_id, str(res.path))}
        omega = metrics.get(_METRIC)
        fidelity = metrics.get("fidelity")
        if res.error is not None:
            status = "error"
        elif omega is None:
            status = "not_run"
        elif fidelity is not None and float(fidelity) < max_rung_fid:
            status = "stopped_early"
        else:
            status = "complete"
        row["status"] = status
        row["omega"] = float(omega) if omega is not None else np.nan
        objective = metrics.get(_OBJECTIVE, omega)
        row["objective"] = float(objective) if objective is not None else np.nan
        row["fidelity"] = float(fidelity) if fidelity is not None else np.nan
        row["rung"] = metrics.get("rung", 0)
        # "is_baseline": the metric's name in searches started before the rename (--resume).
        row["is_reference"] = bool(metrics.get("is_reference", metrics.get("is_baseline", 0))) \
            or (reference is not None and dict(res.config or {}) == reference)
        row["wall_s"] = float(metrics.get("time_total_s", np.nan))
        row["finished_at"] = float(metrics.get("timestamp", np.nan))  # last report, epoch s
        row["recipe_hash"] = metrics.get("recipe_hash")
        for key in ("node_id", "host", "pid"):  # where the trial's last result came from
            row[key] = metrics.get(key)
        row["error"] = _short_error(res.error)
        for key, value in metrics.items():
            if "/" in key and isinstance(value, int | float) and not key.startswith("config/"):
                row[key] = float(value)
        for key, value in dict(res.config or {}).items():
            row[PARAM_PREFIX + key] = value
        if space is not None:
            row["recipe"] = trial_summary(space, dict(res.config or {}))
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
            if len(kinds) > 1:  # parquet columns hold one type (e.g. a choice of int or str)
                df[col] = [None if is_missing(v) else str(v) for v in df[col]]
    return df


def _short_error(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = str(error).strip().splitlines()
    # Ray wraps the trial's exception; keep its last line (the original message).
    return (text[-1] if text else type(error).__name__)[:500]


def _freeze(cfg: SearchConfig, out: Path, table: pd.DataFrame, mtypes: tuple[str, ...],
            io: Any, *, dev_data: Any = None,
            pick: Callable[[pd.DataFrame], str] | None = None) -> SearchOutcome:
    if table.empty or not (table["status"] == "complete").any():
        io.write_trials(out, table)
        errors = table["error"].dropna().unique().tolist() if not table.empty else []
        raise ValueError(f"{out}: no trial finished at full fidelity "
                         f"({len(table)} trials; errors: {errors[:3]}); if the search was "
                         "interrupted, continue it with --resume")
    done = table[table["status"] == "complete"]
    # Highest objective (Ω for ``mean``); ties go to the earliest trial (the reference recipe
    # is trial 0). ``pick`` applies the space's final-pick rule (automl_asd.selection).
    key = "objective" if "objective" in done.columns else "omega"
    best = done.sort_values([key, "order"], ascending=[False, True], kind="stable").iloc[0]
    if pick is not None:
        best = done[done["trial_id"] == pick(done)].iloc[0]
    space = cfg.space
    params = space.coerce_point({k[len(PARAM_PREFIX):]: to_native(v) for k, v in best.items()
                                 if str(k).startswith(PARAM_PREFIX) and not is_missing(v)})
    reference_rows = table[table["is_reference"] & (table["status"] == "complete")]
    reference_omega = float(reference_rows["omega"].iloc[0]) if len(reference_rows) else None
    description = (f"Best of {len(table)} trials of search space {space.name!r} "
                   f"(seed {cfg.seed}) on development types {', '.join(mtypes)}: "
                   f"Ω={float(best['omega']):.4f}"
                   + (f" (reference recipe {space.reference_name} {reference_omega:.4f})"
                      if reference_omega is not None else "")
                   + f"; versions {json.dumps(_versions(), sort_keys=True)}")
    recipe = space.to_recipe(params, name=f"search_{space.name}",
                             description=description).with_provenance(
        source="search", space_name=space.name, space_sha256=space.sha256,
        dev_machine_types=list(mtypes), objective=float(best["omega"]),
        trial_id=str(best["trial_id"]), created=_now(), versions=_versions(),
        dev_data=None if dev_data is None else dataclasses.asdict(dev_data))
    files = {"recipe": io.write_recipe(out, recipe), "trials": io.write_trials(out, table),
             "plot": io.plot_omega(out, table, reference_name=space.reference_name)}
    files["report"] = io.write_search_report(
        out, table, recipe=recipe, best_trial_id=str(best["trial_id"]),
        meta={**(io.read_search_meta(out) or {}), "finished": _now()},
        reference_omega=reference_omega, reference=space.describe_reference(),
        plot=files["plot"])
    logger.info("best trial %s: Ω=%.4f (%s: %s); recipe written to %s", best["trial_id"],
                best["omega"], space.describe_reference(), reference_omega, files["recipe"])
    return SearchOutcome(run_dir=out, recipe=recipe, best_omega=float(best["omega"]),
                         best_trial_id=str(best["trial_id"]), reference_omega=reference_omega,
                         trials=table, machine_types=mtypes, files=files,
                         reference=space.describe_reference())



# --------------------------------------------------------------------------------------------
# leave-one-out
# --------------------------------------------------------------------------------------------
def run_leave_one_out(cfg: SearchConfig, *, evaluator: Evaluator | None = None,
                      callbacks: Sequence[Any] = ()) -> LeaveOneOutOutcome:
    """One search per development type with that type held out; apply each frozen recipe to
    its held-out type. The held-out Ω next to the in-search Ω is the price of first shot.

    Folds are written to ``<out>/loo/<held-out type>/``; with ``cfg.resume`` finished folds are
    read back and an interrupted fold is resumed.
    """
    from automl_asd.data import scan
    from automl_asd.io import search_report as io
    from automl_asd.recipe import load_recipe

    if evaluator is None:
        from automl_asd.objective import evaluate_recipe

        evaluator = evaluate_recipe
    out = cfg.out.expanduser().resolve()
    machines = scan(cfg.data, machine_types=list(cfg.machine_types) if cfg.machine_types
                    else None)
    mtypes = tuple(sorted(machines))
    if len(mtypes) < 2:
        raise ValueError(f"--leave-one-out needs at least 2 development types, found {mtypes}")
    started_ray = _ensure_ray(cfg.address, cfg.verbose)
    rows: list[dict[str, Any]] = []
    folds: dict[str, SearchOutcome] = {}
    try:
        if cfg.prewarm:
            _prewarm_task(cfg, machines)
        for held in mtypes:
            fold_dir = out / "loo" / held
            others = tuple(m for m in mtypes if m != held)
            done = (fold_dir / "recipe.json").is_file() and (fold_dir / "trials.parquet").is_file()
            if cfg.resume and done:
                recipe = load_recipe(fold_dir / "recipe.json")
                table = pd.read_parquet(fold_dir / "trials.parquet")
                outcome = SearchOutcome(run_dir=fold_dir, recipe=recipe,
                                        best_omega=float(recipe.provenance.objective or np.nan),
                                        best_trial_id=str(recipe.provenance.trial_id),
                                        reference_omega=None, trials=table,
                                        machine_types=others,
                                        reference=cfg.space.describe_reference())
                logger.info("fold %s: already finished, reusing %s", held, fold_dir)
            else:
                fold_cfg = replace(cfg, out=fold_dir, machine_types=others, prewarm=False,
                                   resume=cfg.resume and _has_state(fold_dir, cfg.storage, held),
                                   storage=(f"{cfg.storage.rstrip('/')}/loo/{held}"
                                            if cfg.storage else None))
                logger.info("fold %s: searching on %s", held, ", ".join(others))
                outcome = run_search(fold_cfg, evaluator=evaluator, callbacks=callbacks)
            if outcome.interrupted:
                raise KeyboardInterrupt(f"leave-one-out fold {held} interrupted; continue with "
                                        "--resume")
            folds[held] = outcome
            reference = cfg.space.to_recipe(cfg.space.reference_point(),
                                            name=cfg.space.reference_name)
            held_result, ref_result = _evaluate_remote(
                evaluator, [outcome.recipe, reference], cfg, held)
            rows.append({"held_out": held, "in_search_omega": outcome.best_omega,
                         "held_out_omega": held_result.omega,
                         "gap": outcome.best_omega - held_result.omega,
                         "reference_held_out_omega": ref_result.omega,
                         "detector": outcome.recipe.detector.name,
                         "trial_id": outcome.best_trial_id,
                         **{f"held_out/{k}": v for k, v in held_result.flat().items()
                            if "/" in k and not k.startswith("time/")}})
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    table = pd.DataFrame(rows)
    files = dict(zip(("table", "report"), io.write_leave_one_out(out, table, meta={
        "space_name": cfg.space.name, "space_sha256": cfg.space.sha256, "seed": cfg.seed,
        "trials_per_fold": cfg.trials, "machine_types": list(mtypes),
        "reference": cfg.space.describe_reference()}), strict=True))
    return LeaveOneOutOutcome(run_dir=out, table=table, folds=folds, files=files)


def _has_state(fold_dir: Path, storage: str | None, held: str) -> bool:
    from ray import tune

    base = f"{storage.rstrip('/')}/loo/{held}" if storage else str(fold_dir)
    return bool(tune.Tuner.can_restore(f"{base}/{TUNE_DIRNAME}"))


def _evaluate_remote(evaluator: Evaluator, recipes: Sequence[Recipe], cfg: SearchConfig,
                     machine_type: str) -> list[ObjectiveResult]:
    """Evaluate ``recipes`` on one machine type in one Ray task with a trial's resources."""
    import ray

    task: Callable[..., list[ObjectiveResult]] = _evaluate_on
    ref = ray.remote(task).options(num_cpus=cfg.cpus_per_trial,
                                   num_gpus=cfg.gpus_per_trial).remote(
        evaluator, [r.to_dict() for r in recipes], str(cfg.data.expanduser().resolve()),
        machine_type, str(cfg.cache_dir) if cfg.cache_dir else None, cfg.device)
    results: list[ObjectiveResult] = ray.get(ref)
    return results


def _evaluate_on(evaluator: Evaluator, recipes: list[dict[str, Any]], data: str,
                 machine_type: str, cache_dir: str | None,
                 device: str) -> list[ObjectiveResult]:
    from automl_asd.data import scan
    from automl_asd.recipe import Recipe

    machines = scan(Path(data), machine_types=[machine_type])
    return [evaluator(Recipe.from_dict(r), machines, cache_dir=cache_dir, device=device,
                      fidelity=1.0) for r in recipes]
