"""Parallel apply: one Ray task per machine type (the only Ray importer of ``apply``).

The task body is the plain function :func:`automl_asd.apply.run_job`, wrapped here at the call
site with ``ray.remote(...).options(num_cpus=..., num_gpus=..., max_retries=...,
retry_exceptions=True)``. Tasks receive the frozen recipe and paths (a
:class:`~automl_asd.apply.MachineJob`), read their own clips, write their own outputs and
return a small :class:`~automl_asd.apply.MachineOutcome`. The shared stage
(:class:`~automl_asd.apply.SharedJob`) runs as one task with the same resource request.

Retries: worker crashes and unexpected exceptions (out of memory, a CUDA error, a lost node)
are retried by Ray; a ``PermanentError`` (a corrupt or malformed wav, a bad tree, a bad
recipe, non-finite features) cannot heal on a retry, so the task reports it as a failure at once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from automl_asd.apply.jobs import MachineJob, MachineOutcome, SharedJob
from automl_asd.apply.runners import PipelineFn, run_job
from automl_asd.apply.shared import run_shared_job
from automl_asd.errors import AutomlAsdError, PermanentError, ResourceLimitError, one_line
from automl_asd.orchestration.session import (
    cancel_unfinished,
    init_ray,
    is_local,
    shutdown_ray,
)
from automl_asd.progress import few_names, format_seconds, kept_warnings
from automl_asd.storage import PathCheck, PreflightError, delete_files, write_token
from automl_asd.storage import where as here

__all__ = ["RayRunner", "preflight_nodes", "node_where", "SharedStageError"]


class SharedStageError(AutomlAsdError, RuntimeError):
    """The shared stage's Ray task failed on every attempt (one line: the last cause)."""

logger = logging.getLogger(__name__)

#: Seconds between the driver's "still running" lines while no task finishes.
HEARTBEAT_S = 60.0


def _task(job: MachineJob, run_fn: PipelineFn | None = None) -> MachineOutcome:
    """Ray task body: permanent errors (``automl_asd.errors.PermanentError``: bad data, bad
    recipes, non-finite features, cost limits) and a full disk fail at once, since a retry
    cannot fix them; everything else reaches Ray's retries."""
    return run_job(job, run_fn=run_fn, catch=(PermanentError,), where=node_where(),
                   keep_warnings=True)


def node_where() -> dict[str, Any]:
    """Ray node id, host and pid of the process running the current task or trial (node id ``None``
    outside a Ray process: ``ray.get_runtime_context()`` would start a local Ray there, on
    every interface, and leave it running)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    if not ray.is_initialized():
        return here(None)
    return here(ray.get_runtime_context().get_node_id())


def alive_nodes() -> list[dict[str, Any]]:
    """``ray.nodes()`` of the connected Ray, alive ones only."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    return [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]


def _shared_task(job: SharedJob) -> dict[str, Any]:
    """Ray task body of the shared stage (:func:`automl_asd.apply.shared.run_shared_job`).
    A permanent error (bad data, bad recipe) comes back as ``{"permanent_error": exc}``
    instead of being raised, so Ray does not retry what a retry cannot fix."""
    with kept_warnings() as lines:  # the driver logs them (a task's log stays on its node)
        try:
            return {**run_shared_job(job, where=node_where()), "warnings": lines}
        except PermanentError as exc:
            return {"permanent_error": exc, "warnings": lines}


def _check_task(check: PathCheck) -> tuple[dict[str, Any], list[str]]:
    """Ray task body of the pre-flight check on one node."""
    return node_where(), check.problems()


def check_fits(cpus: float, gpus: float, what: str, *, local: bool, options: str) -> None:
    """Refuse a per-task request no node of this Ray can ever hold: a local Ray started here
    (``local``) cannot grow, so the tasks would wait for ever (apply printed "still running"
    once a minute, search printed nothing). On a cluster the autoscaler may add such a node: a
    warning only. ``options`` names the settings to lower."""
    nodes = [n.get("Resources", {}) for n in alive_nodes()]
    if not nodes or any(r.get("CPU", 0.0) >= cpus and r.get("GPU", 0.0) >= gpus
                        for r in nodes):
        return
    most = max(nodes, key=lambda r: (r.get("GPU", 0.0), r.get("CPU", 0.0)))
    text = (f"{what}: each task asks {cpus:g} CPU and {gpus:g} GPU, but no node of this "
            f"Ray has that much (the largest: {most.get('CPU', 0.0):g} CPU, "
            f"{most.get('GPU', 0.0):g} GPU)")
    if local:
        raise ResourceLimitError(f"{text}; lower {options}, or run on a cluster that has such "
                                 "nodes (--address)")
    logger.warning("%s; the tasks wait until the cluster adds such a node", text)


def preflight_nodes(check: PathCheck, *, timeout_s: float = 300.0) -> list[str]:
    """Run ``check`` on every alive node of the connected cluster (one zero-CPU task pinned
    to each node with ``NodeAffinitySchedulingStrategy(soft=False)``); returns the node ids.

    Raises ``storage.PreflightError`` naming the first node and path with a problem, or a node
    that did not answer within ``timeout_s``.
    """
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: PLC0415  (heavy third-party, loaded when used)

    tokens: list[tuple[str, str]] = []
    try:
        token: str | None = None
        for option, location in check.writable:
            try:
                token = write_token(location, token)
            except Exception as exc:
                raise PreflightError(f"driver: {option} {location}: not writable "
                                     f"({type(exc).__name__}: {exc})") from None
            tokens.append((location, token))
        check = dataclasses.replace(check, token=token)
        nodes = alive_nodes()
        task: Any = ray.remote(_check_task)
        refs = {task.options(num_cpus=0, max_retries=0, name="automl-asd-preflight",
                             scheduling_strategy=NodeAffinitySchedulingStrategy(
                                 n["NodeID"], soft=False)).remote(check): n for n in nodes}
        done, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        if pending:
            node = refs[pending[0]]
            raise PreflightError(f"node {node['NodeID']} ({node.get('NodeManagerAddress')}): "
                                 f"pre-flight check got no answer in {timeout_s:.0f} s")
        for ref in done:
            where, problems = ray.get(ref)
            if problems:
                raise PreflightError(f"node {where['node_id']} (host {where['host']}): "
                                     f"{problems[0]}")
    finally:
        for location, name in tokens:
            try:
                delete_files(location, [name])
            except Exception:  # a marker left behind is harmless
                logger.debug("could not delete %s/%s", location, name)
    logger.info("pre-flight: data, cache and outputs reachable on %d node(s)", len(nodes))
    return [str(n["NodeID"]) for n in nodes]


def _auto_gpus(n_jobs: int) -> float:
    """GPUs per task when not given: share the cluster's GPUs between the tasks (at most one
    each, rounded down to 1/100), or 0 without GPUs."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    total = float(resources.get("GPU", 0.0))
    if total <= 0 or n_jobs <= 0:
        return 0.0
    return max(0.01, math.floor(min(1.0, total / n_jobs) * 100) / 100)


class RayRunner:
    """Runs each job as a Ray task, all in parallel as resources allow.

    ``cpus_per_task`` / ``gpus_per_task`` are Ray resource requests (``gpus_per_task=None``:
    share the GPUs the cluster has, none without); ``max_retries`` is Ray's retry count for a
    crashed or failing task; ``run_fn`` replaces ``apply.run_pipeline`` (tests; it must be
    picklable). Starts a local Ray (or connects to ``address``) when none is running, and
    shuts down only what it started. The workers' log lines reach the console only with
    ``verbose``; the driver logs a line per finished machine type either way.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        cpus_per_task: float = 1.0,
        gpus_per_task: float | None = None,
        max_retries: int = 2,
        run_fn: PipelineFn | None = None,
        verbose: int = 0,
    ) -> None:
        if cpus_per_task <= 0:
            raise ValueError(f"cpus_per_task must be > 0, got {cpus_per_task}")
        if gpus_per_task is not None and gpus_per_task < 0:
            raise ValueError(f"gpus_per_task must be >= 0, got {gpus_per_task}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task
        self.max_retries = max_retries
        self.run_fn = run_fn
        self.verbose = verbose
        self._started = False

    def _connect(self) -> None:
        # a local Ray gets every core of this machine (os.cpu_count, as documented for apply)
        if init_ray(self.address, num_cpus=os.cpu_count() or 1, verbose=int(self.verbose > 0)):
            self._started = True

    def _check_fits(self, cpus: float, gpus: float, what: str) -> None:
        check_fits(cpus, gpus, what, local=self._started and is_local(self.address),
                   options="--cpus-per-task / --gpus-per-task")

    def _disconnect(self) -> None:
        if self._started:
            shutdown_ray()
            self._started = False

    def preflight(self, check: PathCheck) -> None:
        """Run ``check`` on every alive node (:func:`preflight_nodes`) before any job."""
        self._connect()
        try:
            preflight_nodes(check)
        except BaseException:
            self._disconnect()
            raise

    def run_shared(self, job: SharedJob) -> dict[str, Any]:
        """Run the shared stage as one Ray task with the per-task CPUs/GPUs (never in the
        driver); returns its summary (node id, host, pid included)."""
        self._connect()
        import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

        try:
            gpus = self.gpus_per_task if self.gpus_per_task is not None else _auto_gpus(1)
            self._check_fits(self.cpus_per_task, gpus, "apply (shared stage)")
            remote: Any = ray.remote(_shared_task).options(
                num_cpus=self.cpus_per_task, num_gpus=gpus, max_retries=self.max_retries,
                retry_exceptions=True, name="automl-asd-shared")
            threads = max(1, int(self.cpus_per_task))
            logger.info("apply: shared stage as a Ray task, %.2g CPU and %.2g GPU",
                        self.cpus_per_task, gpus)
            ref = remote.remote(dataclasses.replace(job, num_threads=job.num_threads or threads))
            try:
                summary: dict[str, Any] = ray.get(ref)
            except KeyboardInterrupt:
                cancel_unfinished([ref])
                raise
            except Exception as exc:  # RayTaskError, WorkerCrashedError, ...
                cause = getattr(exc, "cause", None) or exc
                raise SharedStageError(f"the shared stage failed after {self.max_retries} "
                                       f"retries: {one_line(cause)}") from exc
            for line in summary.pop("warnings", ()):  # logged where the task ran, not here
                logger.warning("%s", line)
            if "permanent_error" in summary:  # failed at once, as in a serial run
                raise summary["permanent_error"]
            return summary
        except BaseException:
            self._disconnect()
            raise

    def run(
        self,
        jobs: Sequence[MachineJob],
        on_done: Callable[[MachineOutcome], None] | None = None,
    ) -> list[MachineOutcome]:
        """Submit every job, then report outcomes in completion order (``ray.wait`` loop)."""
        if not jobs:
            self._disconnect()
            return []
        self._connect()
        import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

        try:
            gpus = self.gpus_per_task if self.gpus_per_task is not None else _auto_gpus(len(jobs))
            self._check_fits(self.cpus_per_task, gpus, "apply")
            remote: Any = ray.remote(_task).options(
                num_cpus=self.cpus_per_task,
                num_gpus=gpus,
                max_retries=self.max_retries,
                retry_exceptions=True,
                name="automl-asd-apply",
            )
            logger.info("apply: %d Ray task(s) submitted (%s), %.2g CPU and %.2g GPU each, "
                        "%d retries", len(jobs), few_names([j.machine_type for j in jobs]),
                        self.cpus_per_task, gpus, self.max_retries)
            t_submit = time.perf_counter()
            # torch threads = the CPUs Ray reserved for the task (no oversubscription on a node)
            threads = max(1, int(self.cpus_per_task))
            refs: dict[Any, MachineJob] = {
                remote.remote(
                    dataclasses.replace(job, num_threads=job.num_threads or threads), self.run_fn
                ): job
                for job in jobs
            }
            pending = list(refs)
            outcomes: list[MachineOutcome] = []
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1, timeout=HEARTBEAT_S)
                    if not done:  # a line a minute while tasks run (their logs stay hidden)
                        logger.info("apply: %d of %d machine type(s) done, still running: %s "
                                    "(%s)", len(outcomes), len(jobs),
                                    few_names(sorted(refs[r].machine_type for r in pending)),
                                    format_seconds(time.perf_counter() - t_submit))
                        continue
                    ref = done[0]
                    job = refs[ref]
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:  # RayTaskError, WorkerCrashedError, ...
                        outcome = MachineOutcome(
                            job.machine_type,
                            "failed",
                            time.perf_counter() - t_submit,
                            error=f"{type(exc).__name__} after {self.max_retries} retries:\n"
                                  f"{exc}",
                        )
                    outcomes.append(outcome)
                    if on_done is not None:
                        on_done(outcome)
            except KeyboardInterrupt:
                # On a cluster the tasks would run on after the driver exits: stop them.
                cancel_unfinished(pending)
                raise
            return outcomes
        finally:
            self._disconnect()
