"""Parallel apply: one Ray task per machine type (the only Ray importer of ``apply``).

The task body is the plain function :func:`automl_asd.apply.run_job`, wrapped here at the call
site with ``ray.remote(...).options(num_cpus=..., num_gpus=..., max_retries=...,
retry_exceptions=True)``. Tasks receive the recipe dict and paths, read their own clips, write
their own outputs and return a small :class:`~automl_asd.apply.MachineOutcome`.

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

from automl_asd.apply import MachineJob, MachineOutcome, RunMachineFn, run_job
from automl_asd.progress import format_seconds

__all__ = ["RayRunner", "init_ray"]

logger = logging.getLogger(__name__)

#: Seconds between the driver's "still running" lines while no task finishes.
HEARTBEAT_S = 60.0


def init_ray(address: str | None = None, *, num_cpus: int | None = None,
             log_to_driver: bool = True) -> bool:
    """Connect to Ray unless already connected; returns True when this call started it.

    ``address`` (or ``RAY_ADDRESS``) connects to a running cluster (``"auto"`` finds the local
    head); otherwise a local runtime with ``num_cpus`` (default: all cores) and no dashboard
    is started, listening on 127.0.0.1 only (:mod:`automl_asd.orchestration.local_ray`).
    Usage statistics are off. ``log_to_driver=False`` keeps the workers' log lines (Tune
    checkpoint chatter) off the console, and Ray's own INFO lines and token-auth notice
    (:func:`~automl_asd.orchestration.progress.quiet_ray`); errors still reach the driver as
    exceptions.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from automl_asd.orchestration.progress import quiet_ray, ray_init_kwargs

    verbose = int(log_to_driver)  # without the workers' lines, also without Ray's chatter
    quiet_ray(verbose)
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, **ray_init_kwargs(verbose))
    else:
        from automl_asd.orchestration.local_ray import init_local_ray

        init_local_ray(num_cpus=num_cpus or os.cpu_count() or 1, **ray_init_kwargs(verbose))
    return True


def _task(job: MachineJob, run_fn: RunMachineFn | None = None) -> MachineOutcome:
    """Ray task body: permanent errors (``automl_asd.errors.PermanentError``: bad data, bad
    recipes, non-finite features, cost limits) fail at once, since a retry cannot fix them;
    everything else reaches Ray's retries."""
    from automl_asd.errors import PermanentError

    return run_job(job, run_fn=run_fn, catch=(PermanentError,))


def _auto_gpus(n_jobs: int) -> float:
    """GPUs per task when not given: share the cluster's GPUs between the tasks (at most one
    each, rounded down to 1/100), or 0 without GPUs."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    total = float(resources.get("GPU", 0.0))
    if total <= 0 or n_jobs <= 0:
        return 0.0
    return max(0.01, math.floor(min(1.0, total / n_jobs) * 100) / 100)


class RayRunner:
    """Runs each job as a Ray task, all in parallel as resources allow.

    ``cpus_per_task`` / ``gpus_per_task`` are Ray resource requests (``gpus_per_task=None``:
    share the GPUs the cluster has, none without); ``max_retries`` is Ray's retry count for a
    crashed or failing task; ``run_fn`` replaces ``pipeline.run_machine`` (tests; it must be
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
        run_fn: RunMachineFn | None = None,
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

    def run(
        self,
        jobs: Sequence[MachineJob],
        on_done: Callable[[MachineOutcome], None] | None = None,
    ) -> list[MachineOutcome]:
        """Submit every job, then report outcomes in completion order (``ray.wait`` loop)."""
        if not jobs:
            return []
        started = init_ray(self.address, log_to_driver=self.verbose > 0)
        import ray

        try:
            gpus = self.gpus_per_task if self.gpus_per_task is not None else _auto_gpus(len(jobs))
            remote: Any = ray.remote(_task).options(
                num_cpus=self.cpus_per_task,
                num_gpus=gpus,
                max_retries=self.max_retries,
                retry_exceptions=True,
                name="automl-asd-apply",
            )
            logger.info("apply: %d Ray task(s) submitted (%s), %.2g CPU and %.2g GPU each, "
                        "%d retries", len(jobs), ", ".join(j.machine_type for j in jobs),
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
                                    ", ".join(sorted(refs[r].machine_type for r in pending)),
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
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
            return outcomes
        finally:
            if started:
                ray.shutdown()
