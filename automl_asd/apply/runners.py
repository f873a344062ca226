"""Runners: where the jobs of ``apply`` run, and the body of one machine job.

The serial runner (:class:`SerialRunner`, this process) and the Ray runner
(``automl_asd.orchestration.ray_runner.RayRunner``) share one interface (:class:`Runner`):
both turn :class:`~automl_asd.apply.jobs.MachineJob` s into
:class:`~automl_asd.apply.jobs.MachineOutcome` s by calling :func:`run_job`, and run the
:class:`~automl_asd.apply.jobs.SharedJob` with :func:`~automl_asd.apply.shared.run_shared_job`,
so orchestration swaps without touching the core.

The model step of a machine job is a :class:`PipelineFn` (default :func:`run_pipeline`, i.e.
``pipeline.run_machine`` keeping the fitted model); tests inject typed stand-ins returning a
real :class:`~automl_asd.pipeline.MachineResult`.
"""

from __future__ import annotations

import logging
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import automl_asd.pipeline as pipeline
from automl_asd.apply.jobs import (
    MachineJob,
    MachineOutcome,
    SharedJob,
    blind_test_clips,
    load_machine,
)
from automl_asd.apply.outputs import (
    machine_summary,
    require_test_clips,
    save_model_bundle,
    write_submission_atomic,
)
from automl_asd.apply.shared import SHARED_DIRNAME, run_shared_job
from automl_asd.bundle.format import BundleError
from automl_asd.bundle.shared import load_shared
from automl_asd.components.device import default_workers
from automl_asd.data import MachineData
from automl_asd.errors import disk_full, one_line
from automl_asd.io.results import summary_path, write_machine_summary
from automl_asd.io.run_folder import journal
from automl_asd.pipeline import MachineResult, SharedStates
from automl_asd.progress import kept_warnings
from automl_asd.recipe import Recipe
from automl_asd.storage import PathCheck, PreflightError, download_tree, upload_tree

__all__ = ["PipelineFn", "Runner", "SerialRunner", "run_pipeline", "apply_machine", "run_job"]

logger = logging.getLogger(__name__)


class PipelineFn(Protocol):
    """The model step of one machine job: train on ``machine``'s training clips, score its
    (blinded) test clips, fit the threshold. ``pipeline.run_machine`` has this shape."""

    def __call__(
        self,
        recipe: Recipe,
        machine: MachineData,
        *,
        cache_dir: Path | None,
        device: str,
        num_threads: int | None,
        shared: SharedStates | None,
    ) -> MachineResult:
        """Return the machine type's scores, decisions and threshold (no labels read)."""
        ...


def run_pipeline(
    recipe: Recipe,
    machine: MachineData,
    *,
    cache_dir: Path | None,
    device: str,
    num_threads: int | None,
    shared: SharedStates | None,
) -> MachineResult:
    """The default :class:`PipelineFn`: ``pipeline.run_machine`` keeping the fitted model (for
    the bundle). Looked up through the module, so a test that replaces it sees every call."""
    return pipeline.run_machine(recipe, machine, cache_dir=cache_dir, device=device,
                                num_threads=num_threads, shared=shared, keep_fitted=True)


class Runner(Protocol):
    """Runs jobs and reports each outcome through ``on_done`` as soon as it is known."""

    def run(
        self,
        jobs: Sequence[MachineJob],
        on_done: Callable[[MachineOutcome], None] | None = None,
    ) -> list[MachineOutcome]:
        """Return one outcome per job, in the order the jobs finished."""
        ...

    def run_shared(self, job: SharedJob) -> dict[str, Any]:
        """Run the shared stage (:func:`~automl_asd.apply.shared.run_shared_job`) where this
        runner runs its jobs; return its summary. Raises when it fails."""
        ...

    def preflight(self, check: PathCheck) -> None:
        """Run ``check`` wherever jobs may run; raise ``storage.PreflightError`` (one line
        naming the node and the path) on the first problem, before any job starts."""
        ...


def apply_machine(
    job: MachineJob,
    *,
    run_fn: PipelineFn | None = None,
    where: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply ``job.recipe`` to one machine type and write its outputs into ``job.out_dir``.

    Reads the clips of ``job.machine_type`` under ``job.data_root``, blinds the test clips
    (:func:`~automl_asd.apply.jobs.blind_test_clips`), calls ``run_fn`` (default
    :func:`run_pipeline`: train, score the test clips, fit the threshold), writes
    ``anomaly_score_<mt>_section_<ss>_test.csv`` / ``decision_result_...csv`` and the model
    bundle ``models/<mt>/`` (``bundle.files.save_bundle``; when the result carries the fitted
    model, as the default does), then ``<mt>.summary.json`` (recipe hash, timings, counts,
    file hashes, bundle path, and ``where`` it ran: Ray node id, host, pid), each atomically.
    The summary is written last, so its presence means the CSVs are complete.
    Returns the summary dict.
    """
    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rec = job.recipe
    out = Path(job.out_dir)
    machine = blind_test_clips(load_machine(Path(job.data_root), job.machine_type))
    require_test_clips(machine)
    shared = (None if job.shared_dir is None
              else load_shared(job.shared_dir, recipe_hash=rec.content_hash()))
    result = (run_fn or run_pipeline)(
        rec, machine, cache_dir=None if job.cache_dir is None else Path(job.cache_dir),
        device=job.device, num_threads=job.num_threads, shared=shared,
    )
    files = write_submission_atomic(out, job.machine_type, result)
    bundle = save_model_bundle(out, job.machine_type, result, job.overwrite)
    summary = machine_summary(rec, machine, result, data_root=Path(job.data_root), files=files,
                              bundle=bundle, started=started, where=where,
                              fingerprint=job.fingerprint)
    # CPU training threads order the float sums (a network family's scores depend on them):
    # recorded, so two runs that differ can be told apart
    summary["torch_threads"] = job.num_threads if job.num_threads is not None \
        else default_workers()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    journal(out, job.machine_type, [summary_path(out, job.machine_type).name])
    write_machine_summary(out, job.machine_type, summary)
    return summary


def _apply_machine_via_storage(job: MachineJob, *, run_fn: PipelineFn | None,
                               where: Mapping[str, Any] | None) -> dict[str, Any]:
    """Run one machine job into a local temporary folder and upload its outputs to
    ``job.storage`` (summary last); the shared stage, if any, is first downloaded from
    ``<storage>/shared``. Returns the summary."""
    assert job.storage is not None
    with tempfile.TemporaryDirectory(prefix=f"automl-asd-{job.machine_type}-") as tmp:
        shared_dir: Path | None = None
        if job.shared_dir is not None:
            shared_dir = Path(tmp) / "in" / SHARED_DIRNAME
            if not download_tree(job.storage, shared_dir, SHARED_DIRNAME):
                raise BundleError(f"{job.storage}/{SHARED_DIRNAME}: no shared stage in the "
                                  "run storage")
        out = Path(tmp) / "out"
        local = replace(job, out_dir=str(out), storage=None, overwrite=False,
                        shared_dir=None if shared_dir is None else str(shared_dir))
        summary = apply_machine(local, run_fn=run_fn, where=where)
        upload_tree(out, job.storage)
    return summary


def run_job(
    job: MachineJob,
    *,
    run_fn: PipelineFn | None = None,
    catch: tuple[type[BaseException], ...] = (Exception,),
    where: Mapping[str, Any] | None = None,
    keep_warnings: bool = False,
) -> MachineOutcome:
    """Run one job; exceptions of the ``catch`` types and a full disk
    (:func:`~automl_asd.errors.disk_full`) become a ``failed`` outcome carrying the
    traceback, other exceptions propagate (the Ray runner lets those reach Ray's retries).
    ``where`` (Ray node id, host, pid) goes into the summary. With ``job.storage`` the job
    writes into a temporary folder and uploads its outputs to the storage. ``keep_warnings``:
    the package's WARNING messages of the job go into the outcome (a Ray worker's log does not
    reach the driver's console)."""
    t0 = time.perf_counter()
    with kept_warnings(keep_warnings) as lines:
        try:
            if job.storage is not None:
                summary = _apply_machine_via_storage(job, run_fn=run_fn, where=where)
            else:
                summary = apply_machine(job, run_fn=run_fn, where=where)
        except Exception as exc:
            # a full disk also fails at once: Ray's retries on the same --out cannot heal it
            # (found 2026-12-07: each retry printed Ray's traceback of the task)
            if not isinstance(exc, catch) and not disk_full(exc):
                raise
            return MachineOutcome(
                job.machine_type,
                "failed",
                time.perf_counter() - t0,
                error=traceback.format_exc(),
                warnings=tuple(lines),
                message=one_line(exc),
            )
    return MachineOutcome(job.machine_type, "ok", time.perf_counter() - t0, summary=summary,
                          warnings=tuple(lines))


class SerialRunner:
    """Runs the jobs one after another in this process (no Ray). ``run_fn`` replaces
    :func:`run_pipeline` (tests)."""

    def __init__(self, *, run_fn: PipelineFn | None = None) -> None:
        self.run_fn = run_fn

    def run(
        self,
        jobs: Sequence[MachineJob],
        on_done: Callable[[MachineOutcome], None] | None = None,
    ) -> list[MachineOutcome]:
        """Run each job here, in order; report each outcome as it is known."""
        outcomes = []
        for i, job in enumerate(jobs, 1):
            logger.info("apply: %s started (%d of %d in this process)", job.machine_type, i,
                        len(jobs))
            outcome = run_job(job, run_fn=self.run_fn)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
        return outcomes

    def run_shared(self, job: SharedJob) -> dict[str, Any]:
        """Train the shared stage in this process."""
        return run_shared_job(job)

    def preflight(self, check: PathCheck) -> None:
        """Check the data, cache and output paths from this process."""
        problems = check.problems()
        if problems:
            raise PreflightError(f"this machine: {problems[0]}")
