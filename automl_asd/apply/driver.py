"""Apply one frozen recipe to machine types and write the submission files.

The serial runner and the Ray runner (``automl_asd.orchestration.apply.RayRunner``) share one
interface (:class:`Runner`): both turn :class:`MachineJob` s into :class:`MachineOutcome` s by
calling :func:`run_job`, so orchestration swaps without touching the core. :func:`apply_recipe`
is the driver around a runner:

1. list the machine types (``data.scan``), skip those already done when resuming;
2. run one job per machine type: read its clips, ``pipeline.run_machine`` (train on train
   clips, score test clips, fit the threshold — labels are never looked at), write the
   submission CSVs and the per-machine summary JSON atomically;
3. only after every job has finished, and only when labels exist (labelled test names or
   ``ground_truth``), read the labels and write ``results.csv``/``results.md``,
   ``metrics.json`` and ROC / histogram PNGs.

No hyperparameter can be overridden here: the recipe is applied as frozen (first-shot rule).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from automl_asd import __version__
from automl_asd.io.results import (
    read_machine_summary,
    sha256_file,
    summary_path,
    write_error,
    write_json,
    write_machine_summary,
)
from automl_asd.io.run_folder import data_fingerprint, journal

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.io.run_folder import RunFolder
    from automl_asd.recipe import Recipe
    from automl_asd.stages import SharedJob
    from automl_asd.storage import PathCheck

__all__ = [
    "SUMMARY_SCHEMA",
    "MachineJob",
    "MachineOutcome",
    "ApplyReport",
    "Runner",
    "SerialRunner",
    "RunMachineFn",
    "apply_machine",
    "blind_test_clips",
    "run_job",
    "is_complete",
    "apply_recipe",
    "evaluate_outputs",
]

logger = logging.getLogger(__name__)

#: Version of the per-machine summary JSON layout.
SUMMARY_SCHEMA = 1

#: Signature of ``pipeline.run_machine`` (injectable so tests can stand in a fake model).
RunMachineFn = Callable[..., Any]
Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class MachineJob:
    """Everything one task needs; plain values only, so it travels to a Ray worker cheaply.

    ``recipe`` is the recipe dict (``Recipe.to_dict()``); paths are strings; ``num_threads``
    (torch threads inside the task) is left to the library default when ``None``.
    """

    recipe: Mapping[str, Any]
    data_root: str
    machine_type: str
    out_dir: str
    cache_dir: str | None = None
    device: str = "auto"
    num_threads: int | None = None
    #: Folder of the run's shared stage (``io.bundle.save_shared``) when the recipe has one.
    shared_dir: str | None = None
    #: ``--overwrite``: the model bundle may replace files this tool did not write.
    overwrite: bool = False
    #: Run storage (path or URI, ``automl_asd.storage``): when set, the task writes locally
    #: and uploads its outputs there (and reads the shared stage from there) instead of
    #: writing into ``out_dir``.
    storage: str | None = None


@dataclass(frozen=True)
class MachineOutcome:
    """What a runner reports for one machine type (small: no arrays).

    ``summary`` is the content of ``<out>/<mt>.summary.json`` (``None`` when failed);
    ``error`` the traceback text of a failure; ``seconds`` the wall time of the task.
    """

    machine_type: str
    status: Status
    seconds: float
    summary: dict[str, Any] | None = None
    error: str | None = None


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
        """Run the shared stage (``stages.run_shared_job``) where this runner runs its jobs;
        return its summary. Raises when it fails."""
        ...

    def preflight(self, check: PathCheck) -> None:
        """Run ``check`` wherever jobs may run; raise ``storage.PreflightError`` (one line
        naming the node and the path) on the first problem, before any job starts."""
        ...


@dataclass(frozen=True)
class ApplyReport:
    """Result of :func:`apply_recipe`.

    ``metrics`` maps ``(machine type, section)`` -> ``metrics.MachineMetrics`` (empty when no
    labels);
    ``official_score`` is Ω over those machine types (``None`` without labels); ``files``
    names the report files written (results table, metrics.json, plots).
    """

    out_dir: Path
    recipe_name: str
    recipe_hash: str
    outcomes: tuple[MachineOutcome, ...]
    official_score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    seconds: float = 0.0

    @property
    def failed(self) -> tuple[str, ...]:
        """Machine types whose job failed (after retries)."""
        return tuple(o.machine_type for o in self.outcomes if o.status == "failed")

    @property
    def ok(self) -> bool:
        """True when no machine type failed."""
        return not self.failed


# ------------------------------------------------------------------ one machine type
def _load_machine(data_root: Path, machine_type: str) -> MachineData:
    from automl_asd.data import DataError, scan

    machines = scan(data_root, machine_types=[machine_type])
    if machine_type not in machines:
        raise DataError(f"{data_root}: no machine type {machine_type!r} found")
    return machines[machine_type]


def blind_test_clips(machine: MachineData) -> MachineData:
    """Copy of ``machine`` whose test clips carry no label, domain or attributes.

    File names of development data reveal them; evaluation data does not. The model is
    handed the blinded copy, so no recipe can use test labels even by accident (first-shot
    rule); clip paths and names are unchanged, so scores and feature caches are unaffected.
    """
    import dataclasses

    from automl_asd.data import Domain, Label, MachineData, Split

    clips = tuple(
        dataclasses.replace(c, label=Label.UNKNOWN, domain=Domain.UNKNOWN, attributes=None)
        if c.split is Split.TEST else c
        for c in machine.clips
    )
    return MachineData(machine_type=machine.machine_type, root=machine.root, clips=clips)


def _group_by_section(
    names: Sequence[str], sections: Sequence[str]
) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, sec in enumerate(sections):
        groups.setdefault(str(sec), []).append(i)
    # Submission rows sorted by file name, as the official evaluator sorts them anyway.
    return {sec: sorted(idx, key=lambda i: names[i]) for sec, idx in sorted(groups.items())}


def _write_submission_atomic(
    out_dir: Path, machine_type: str, result: Any
) -> dict[str, str]:
    """Write every section's score/decision CSV into a staging folder, then move them in.

    Returns ``{file name: sha256}``. A crash leaves either the old file or the new one.
    """
    from automl_asd.io.submission import write_submission

    names = [str(n) for n in result.names]
    sections = [str(s) for s in result.sections]
    scores = np.asarray(result.scores, dtype=np.float64)
    decisions = np.asarray(result.decisions).astype(np.int64)
    if not (len(names) == len(sections) == len(scores) == len(decisions)):
        raise ValueError(
            f"{machine_type}: run_machine returned {len(names)} names, {len(sections)} sections,"
            f" {len(scores)} scores and {len(decisions)} decisions; they must match"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{machine_type}-", dir=out_dir))
    try:
        written: list[Path] = []
        for sec, idx in _group_by_section(names, sections).items():
            paths = write_submission(
                staging,
                machine_type,
                sec,
                [names[i] for i in idx],
                scores[idx],
                decisions[idx],
            )
            written.extend(Path(p) for p in paths)
        files: dict[str, str] = {}
        journal(out_dir, machine_type, [p.name for p in written])
        for path in written:
            files[path.name] = sha256_file(path)
            path.replace(out_dir / path.name)
        return files
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _plain_mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): (float(v) if isinstance(v, np.floating) else
                         int(v) if isinstance(v, np.integer) else v) for k, v in value.items()}
    return {"value": value}


def _save_model_bundle(out_dir: Path, machine_type: str, result: Any,
                       overwrite: bool = False) -> str | None:
    """Save ``result.fitted`` (if the run kept it) as ``<out>/models/<mt>``; returns that
    path relative to ``out_dir`` (``None`` when there is no fitted model, e.g. a test stand-in).
    """
    fitted = getattr(result, "fitted", None)
    if fitted is None:
        return None
    from automl_asd.io.bundle import save_bundle

    rel = f"models/{machine_type}"
    save_bundle(fitted, out_dir / rel, replace_foreign=overwrite,
                before_write=lambda names: journal(out_dir, machine_type,
                                                   [f"{rel}/{n}" for n in names]))
    return rel


def apply_machine(
    recipe: Mapping[str, Any],
    data_root: str | Path,
    machine_type: str,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    num_threads: int | None = None,
    run_fn: RunMachineFn | None = None,
    shared_dir: str | Path | None = None,
    overwrite: bool = False,
    where: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply ``recipe`` to one machine type and write its outputs; the body of every task.

    Reads the clips of ``machine_type`` under ``data_root``, blinds the test clips
    (:func:`blind_test_clips`), calls ``run_fn`` (default ``pipeline.run_machine``: train,
    score the test clips, fit the threshold), writes
    ``anomaly_score_<mt>_section_<ss>_test.csv`` / ``decision_result_...csv`` and the model
    bundle ``models/<mt>/`` (``io.bundle.save_bundle``; when ``run_fn`` returns the fitted
    model, as the default does), then ``<mt>.summary.json`` (recipe hash, timings,
    counts, file hashes, bundle path, and ``where`` it ran: Ray node id, host, pid), each
    atomically.
    The summary is written last, so its presence means the CSVs are complete.
    Returns the summary dict.
    """
    from automl_asd.apply_outputs import require_test_clips
    from automl_asd.recipe import Recipe, official_baseline_name

    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rec = Recipe.from_dict(dict(recipe))
    out = Path(out_dir)
    machine = blind_test_clips(_load_machine(Path(data_root), machine_type))
    require_test_clips(machine)
    if run_fn is None:
        from automl_asd.pipeline import run_machine

        run_fn = functools.partial(run_machine, keep_fitted=True)
    extra: dict[str, Any] = {} if num_threads is None else {"num_threads": num_threads}
    if shared_dir is not None:
        from automl_asd.io.bundle import load_shared

        extra["shared"] = load_shared(shared_dir, recipe_hash=rec.content_hash())
    result = run_fn(
        rec, machine, cache_dir=None if cache_dir is None else Path(cache_dir), device=device,
        **extra,
    )
    files = _write_submission_atomic(out, machine_type, result)
    bundle = _save_model_bundle(out, machine_type, result, overwrite)
    summary: dict[str, Any] = {
        "summary_schema": SUMMARY_SCHEMA,
        "machine_type": machine_type,
        "recipe_name": rec.name,
        "recipe_hash": rec.content_hash(),
        "official_baseline": official_baseline_name(rec),
        "package_version": __version__,
        "data_root": str(Path(data_root).resolve()),
        "data_fingerprint": data_fingerprint(machine.root),
        "sections": sorted({str(s) for s in result.sections}),
        "files": files,
        "bundle": bundle,
        "threshold": float(result.threshold),
        "counts": _plain_mapping(getattr(result, "counts", None)),
        "timings": _plain_mapping(getattr(result, "timings", None)),
        "device": str(getattr(result, "device", device)),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "node_id": None,
        **(dict(where) if where is not None else {}),
        "started": started,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    journal(out, machine_type, [summary_path(out, machine_type).name])
    write_machine_summary(out, machine_type, summary)
    return summary


def run_job(
    job: MachineJob,
    *,
    run_fn: RunMachineFn | None = None,
    catch: tuple[type[BaseException], ...] = (Exception,),
    where: Mapping[str, Any] | None = None,
) -> MachineOutcome:
    """Run one job; exceptions of the ``catch`` types become a ``failed`` outcome carrying the
    traceback, other exceptions propagate (the Ray runner lets those reach Ray's retries).
    ``where`` (Ray node id, host, pid) goes into the summary."""
    t0 = time.perf_counter()
    try:
        if job.storage is not None:
            from automl_asd.stages import apply_machine_via_storage

            summary = apply_machine_via_storage(job, run_fn=run_fn, where=where)
        else:
            summary = apply_machine(
                job.recipe,
                job.data_root,
                job.machine_type,
                job.out_dir,
                cache_dir=job.cache_dir,
                device=job.device,
                num_threads=job.num_threads,
                run_fn=run_fn,
                shared_dir=job.shared_dir,
                overwrite=job.overwrite,
                where=where,
            )
    except catch:
        return MachineOutcome(
            job.machine_type,
            "failed",
            time.perf_counter() - t0,
            error=traceback.format_exc(),
        )
    return MachineOutcome(job.machine_type, "ok", time.perf_counter() - t0, summary=summary)


class SerialRunner:
    """Runs the jobs one after another in this process (no Ray). ``run_fn`` replaces
    ``pipeline.run_machine`` (tests)."""

    def __init__(self, *, run_fn: RunMachineFn | None = None) -> None:
        self.run_fn = run_fn

    def run(
        self,
        jobs: Sequence[MachineJob],
        on_done: Callable[[MachineOutcome], None] | None = None,
    ) -> list[MachineOutcome]:
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
        from automl_asd.stages import run_shared_job

        return run_shared_job(job)

    def preflight(self, check: PathCheck) -> None:
        from automl_asd.storage import PreflightError

        problems = check.problems()
        if problems:
            raise PreflightError(f"this machine: {problems[0]}")


# ------------------------------------------------------------------ resume
def is_complete(out_dir: Path, machine_type: str, recipe_hash: str) -> dict[str, Any] | None:
    """The summary of ``machine_type`` when its outputs match ``recipe_hash`` and every listed
    CSV exists with the recorded sha256; otherwise ``None`` (the machine type must be rerun)."""
    summary = read_machine_summary(out_dir, machine_type)
    if summary is None or summary.get("recipe_hash") != recipe_hash:
        return None
    files = summary.get("files")
    if not isinstance(files, dict) or not files:
        return None
    for name, digest in files.items():
        path = Path(out_dir) / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return summary


# ------------------------------------------------------------------ evaluation (labels)
def _labelled_truth(
    data_root: Path, machine_types: Sequence[str], ground_truth: Path | None
) -> dict[tuple[str, str], Any]:
    """Ground truth of those ``machine_types`` that have it: the official layout under
    ``ground_truth`` if given, else labelled test names under ``data_root``."""
    from automl_asd.data import Domain, Label, scan
    from automl_asd.io.submission import read_ground_truth, read_official_ground_truth

    if ground_truth is not None:
        truth = read_official_ground_truth(ground_truth)
        return {k: v for k, v in truth.items() if k[0] in set(machine_types)}
    machines = scan(data_root, machine_types=machine_types)
    labelled = []
    for mt, machine in machines.items():
        if machine.test and all(c.label is not Label.UNKNOWN and c.domain is not Domain.UNKNOWN
                                 for c in machine.test):
            labelled.append(mt)
        else:
            logger.info("%s: test labels unknown; no metrics for this machine type", mt)
    return dict(read_ground_truth(data_root, machine_types=labelled)) if labelled else {}


def evaluate_outputs(
    out_dir: Path,
    data_root: Path,
    summaries: Mapping[str, Mapping[str, Any]],
    *,
    ground_truth: Path | None = None,
    plots: bool = True,
) -> tuple[Any | None, list[Path]]:
    """Score the written submission files against labels, after all tasks have finished.

    Labels come from ``ground_truth`` (the official evaluator layout) or from labelled test
    names under ``data_root``; machine types without labels are left out. Writes
    ``results.csv``, ``results.md`` (with the apply seconds per machine type), ``metrics.json``
    (the ``evaluate --json`` format) and, if ``plots``, ``roc_<mt>.png`` / ``hist_<mt>.png``.
    Returns ``(metrics.SubmissionEvaluation or None, files written)``.
    """
    from automl_asd.io.plots import plot_roc, plot_score_histogram
    from automl_asd.io.results import recipe_of_run, write_results_table
    from automl_asd.io.submission import align_submission, read_submission
    from automl_asd.metrics import evaluate_submission

    truth = _labelled_truth(Path(data_root), sorted(summaries), ground_truth) if summaries else {}
    if not truth:
        return None, []
    evaluation = evaluate_submission(out_dir, truth)
    files: list[Path] = []
    if plots:
        for (mt, ss), sec_truth in sorted(truth.items()):
            sub = read_submission(out_dir, mt, ss)
            scores, _ = align_submission(sec_truth, sub)
            tag = mt if sum(k[0] == mt for k in truth) == 1 else f"{mt}_section_{ss}"
            y, dom = np.asarray(sec_truth.labels), np.asarray(sec_truth.domains)
            files.append(plot_roc(Path(out_dir) / f"roc_{tag}.png", tag, y, dom, scores))
            files.append(plot_score_histogram(
                Path(out_dir) / f"hist_{tag}.png", tag, y, dom, scores,
                threshold=summaries[mt].get("threshold"),
            ))
    seconds = {mt: float(s.get("seconds", 0.0)) for mt, s in summaries.items()}
    files.extend(write_results_table(Path(out_dir), evaluation.per_section, seconds=seconds,
                                     recipe=recipe_of_run(summaries)))
    files.append(write_json(Path(out_dir) / "metrics.json", evaluation.to_json_dict()))
    return evaluation, files


# ------------------------------------------------------------------ driver
def _as_recipe(recipe: Recipe | Mapping[str, Any] | str | Path) -> Recipe:
    from automl_asd.recipe import Recipe, load_recipe

    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(recipe)
    return load_recipe(recipe)


def _discover(data_root: Path, machine_types: Sequence[str] | None) -> list[str]:
    """Machine-type folders under ``data_root`` (names only: each task reads its own clips, so
    one malformed machine type cannot stop the others)."""
    from automl_asd.data import DataError, find_machine_dirs

    found = find_machine_dirs(data_root)
    if not machine_types:
        return sorted(found)
    unknown = sorted(set(machine_types) - set(found))
    if unknown:
        raise DataError(f"{data_root}: machine type(s) {', '.join(unknown)} not found; "
                        f"available: {', '.join(found)}")
    return sorted(set(machine_types))


def _shared_stage(rec: Recipe, root: Path, out: Path, names: list[str], *,
                  cache_dir: str | Path | None, device: str, resume: bool,
                  runner: Runner, storage: str | None = None) -> Path | None:
    """Run (or, when resuming, reuse) the recipe's shared stage over every machine type of the
    run as a job of ``runner`` (never in this process unless the runner is serial);
    ``<out>/shared`` (with ``storage``: ``<storage>/shared``). ``None`` when the recipe has no
    shared stage."""
    from automl_asd.bundle import BundleError
    from automl_asd.io.bundle import load_shared
    from automl_asd.pipeline import needs_shared
    from automl_asd.stages import SHARED_DIRNAME, SharedJob

    if not needs_shared(rec):
        return None
    path = out / "shared"
    rhash = rec.content_hash()
    if resume and path.is_dir():
        try:
            load_shared(path, recipe_hash=rhash, machine_types=names)
            logger.info("apply: reusing the shared stage in %s", path)
            return path
        except BundleError as exc:
            logger.warning("apply: shared stage in %s not reusable (%s); training it again",
                           path, exc)
    t0 = time.perf_counter()
    logger.info("apply: shared stage of %s over %d machine type(s) (training clips only)",
                rec.name, len(names))
    summary = runner.run_shared(SharedJob(
        recipe=rec.to_dict(), data_root=str(root.resolve()), machine_types=tuple(names),
        out_dir=str(out.resolve()),
        cache_dir=None if cache_dir is None else str(Path(cache_dir).resolve()),
        device=device, storage=storage))
    if storage is not None:
        from automl_asd.storage import download_tree

        download_tree(storage, path, SHARED_DIRNAME)
    logger.info("apply: shared stage done in %.1f s on node %s (host %s, pid %s) -> %s",
                time.perf_counter() - t0, summary.get("node_id"), summary.get("host"),
                summary.get("pid"), f"{storage}/shared" if storage else path)
    return path


def _stage_text(outcome: MachineOutcome) -> str:
    """`` (features 1.2 s, fit 30.5 s, score 0.4 s)`` from a finished task's summary."""
    timings = (outcome.summary or {}).get("timings") or {}
    stages = [f"{k} {float(v):.1f} s" for k, v in timings.items()
              if k != "total" and isinstance(v, int | float)]
    return f" ({', '.join(stages)})" if stages and outcome.status == "ok" else ""


def apply_recipe(
    recipe: Recipe | Mapping[str, Any] | str | Path,
    data_root: str | Path,
    out_dir: str | Path,
    *,
    machine_types: Sequence[str] | None = None,
    runner: Runner | None = None,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    ground_truth: str | Path | None = None,
    evaluate: bool = True,
    plots: bool = True,
    overwrite: bool = False,
    storage: str | None = None,
) -> ApplyReport:
    """Apply a frozen recipe to every machine type under ``data_root``; write into ``out_dir``.

    ``recipe`` is a :class:`Recipe`, a recipe dict, a JSON path or a shipped name. ``runner``
    defaults to :class:`SerialRunner`; pass ``orchestration.apply.RayRunner`` for parallel
    tasks. ``resume`` skips machine types whose outputs are verifiably this recipe's on this
    data (:func:`automl_asd.apply_outputs.resume_status`). Failures are reported
    (``<out>/<mt>.error.txt``), the others complete. Metrics/plots are computed at the end when
    ``evaluate`` and labels exist.

    ``out_dir`` is locked for the run and keeps a manifest of what its runs wrote
    (:mod:`automl_asd.io.run_folder`): files the tool did not write are never deleted, and one
    whose name the run would write is refused (``OutputError``) unless ``overwrite``; so is a
    folder holding another recipe's outputs (``overwrite`` replaces that run's own files).
    Nothing is created when the data root or ``machine_types`` are wrong.
    ``storage`` (a path or URI every node reaches, ``automl_asd.storage``): the tasks upload
    their outputs there and the driver copies them into ``out_dir`` as each one finishes.
    """
    from automl_asd.apply_outputs import open_apply_folder

    rec = _as_recipe(recipe)
    names = _discover(Path(data_root), machine_types)
    if not names:
        raise ValueError(f"{data_root}: no machine types found (expected "
                         "<root>/<machine_type>/test)")
    with open_apply_folder(Path(out_dir), rec, overwrite=overwrite) as folder:
        return _apply_locked(folder, rec, Path(data_root), names, runner=runner, resume=resume,
                             cache_dir=cache_dir, device=device, ground_truth=ground_truth,
                             evaluate=evaluate, plots=plots, storage=storage)


def _apply_locked(
    folder: RunFolder,
    rec: Recipe,
    root: Path,
    names: list[str],
    *,
    runner: Runner | None,
    resume: bool,
    cache_dir: str | Path | None,
    device: str,
    ground_truth: str | Path | None,
    evaluate: bool,
    plots: bool,
    storage: str | None = None,
) -> ApplyReport:
    """The body of :func:`apply_recipe`, run while ``folder`` is locked."""
    from automl_asd.apply_outputs import claim, clear_machine, record_outcome, resumable
    from automl_asd.pipeline import needs_shared

    t0 = time.perf_counter()
    rhash = rec.content_hash()
    out = folder.path
    n_total = len(names)
    done_count = 0
    outcomes: list[MachineOutcome] = []

    def report(outcome: MachineOutcome) -> None:
        nonlocal done_count
        done_count += 1
        if storage is not None and outcome.status == "ok":
            from automl_asd.storage import download_tree

            download_tree(storage, out)  # the task's outputs and journal, into --out
        record_outcome(folder, outcome)
        if outcome.status == "failed":
            path = write_error(out, outcome.machine_type, outcome.error or "unknown error")
            folder.record([path.name])
            last = (outcome.error or "").strip().splitlines()[-1:] or ["unknown error"]
            logger.error("apply [%d/%d] %s FAILED after %.1f s: %s (traceback: %s)",
                         done_count, n_total, outcome.machine_type, outcome.seconds, last[0],
                         path)
        else:
            logger.info("apply [%d/%d] %s %s in %.1f s%s", done_count, n_total,
                        outcome.machine_type, "done" if outcome.status == "ok" else "skipped",
                        outcome.seconds, _stage_text(outcome))

    jobs: list[MachineJob] = []
    recipe_dict = rec.to_dict()
    runner = runner or SerialRunner()
    if storage is not None and resume:
        from automl_asd.storage import download_tree

        folder.record(download_tree(storage, out))  # what earlier runs uploaded
    done_before = resumable(folder, root, names, rhash) if resume else {}
    pending = [mt for mt in names if mt not in done_before]
    claim(folder, root, pending, shared=bool(pending) and needs_shared(rec), report=evaluate)
    if storage is not None and pending:
        from automl_asd.stages import clear_storage_outputs

        clear_storage_outputs(storage, pending)
    if pending:
        from automl_asd.storage import PathCheck

        runner.preflight(PathCheck(
            data=str(root.resolve()), machine_types=tuple(names),
            writable=(("--storage", storage) if storage else ("--out", str(out.resolve())),),
            cache_dir=None if cache_dir is None else str(Path(cache_dir).resolve())))
    shared_dir = _shared_stage(rec, root, out, names, cache_dir=cache_dir, device=device,
                               resume=resume, runner=runner, storage=storage) if pending else None
    if shared_dir is not None:
        folder.record_tree("shared", listed_in="shared.json")
    for mt in names:
        previous = done_before.get(mt)
        if previous is not None:
            outcome = MachineOutcome(mt, "skipped", 0.0, summary=previous)
            outcomes.append(outcome)
            report(outcome)
            continue
        clear_machine(folder, mt)
        jobs.append(
            MachineJob(
                recipe=recipe_dict,
                data_root=str(root.resolve()),  # tasks on other nodes: no relative paths
                machine_type=mt,
                out_dir=str(out.resolve()),
                cache_dir=None if cache_dir is None else str(Path(cache_dir).resolve()),
                device=device,
                shared_dir=None if shared_dir is None else str(shared_dir.resolve()),
                overwrite=folder.overwrite,
                storage=storage,
            )
        )
    if jobs:
        logger.info("apply: recipe %s (%s) on %d machine type(s)%s", rec.name, rhash[:12],
                    len(jobs), f", {n_total - len(jobs)} already done" if resume else "")
        outcomes.extend(runner.run(jobs, report))

    outcomes.sort(key=lambda o: o.machine_type)
    evaluation: Any | None = None
    files: list[Path] = []
    if evaluate:
        summaries = {o.machine_type: o.summary for o in outcomes
                     if o.status != "failed" and o.summary is not None}
        evaluation, files = evaluate_outputs(
            out, root, summaries,
            ground_truth=None if ground_truth is None else Path(ground_truth),
            plots=plots,
        )
        folder.record([Path(f).resolve() for f in files])
    return ApplyReport(
        out_dir=out,
        recipe_name=rec.name,
        recipe_hash=rhash,
        outcomes=tuple(outcomes),
        official_score=None if evaluation is None else float(evaluation.official_score),
        metrics={} if evaluation is None else dict(evaluation.per_section),
        files=tuple(files),
        seconds=time.perf_counter() - t0,
    )
