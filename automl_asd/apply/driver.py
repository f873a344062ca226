"""Apply one frozen recipe to machine types and write the submission files: the driver.

:func:`apply_recipe` runs one :class:`ApplyConfig` through a runner
(:class:`~automl_asd.apply.runners.Runner`; serial by default, ``orchestration.ray_runner``
for Ray tasks):

1. list the machine types (``data.find_machine_dirs``), skip those already done when resuming;
2. run the recipe's shared stage, if it has one, as a job of the runner
   (:class:`~automl_asd.apply.jobs.SharedJob`);
3. run one job per machine type (:class:`~automl_asd.apply.jobs.MachineJob`): read its clips,
   ``pipeline.run_machine`` (train on train clips, score test clips, fit the threshold —
   labels are never looked at), write the submission CSVs and the per-machine summary JSON
   atomically (:mod:`automl_asd.apply.outputs`);
4. only after every job has finished, and only when labels exist (labelled test names or
   ``ground_truth``), read the labels and write ``results.csv``/``results.md``,
   ``metrics.json`` and ROC / histogram PNGs.

No hyperparameter can be overridden here: the recipe is applied as frozen (first-shot rule).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from automl_asd.apply.jobs import MachineJob, MachineOutcome, SharedJob
from automl_asd.apply.outputs import (
    claim,
    clear_machine,
    input_fingerprint,
    machine_dir,
    open_apply_folder,
    record_outcome,
    resumable,
    storage_patterns,
)
from automl_asd.apply.runners import Runner, SerialRunner
from automl_asd.apply.shared import SHARED_DIRNAME, clear_storage_outputs
from automl_asd.bundle.format import BundleError
from automl_asd.bundle.shared import load_shared
from automl_asd.data import DataError, check_type_name_length, find_machine_dirs
from automl_asd.evaluation.evaluate import evaluate_outputs, labelled_truth
from automl_asd.io.results import error_path, write_error
from automl_asd.io.run_folder import (
    REPORT_PATTERNS,
    RunFolder,
    check_outputs_apart,
    matches,
    storage_lock,
)
from automl_asd.io.submission import list_submission_sections
from automl_asd.pipeline import needs_shared
from automl_asd.progress import few_names
from automl_asd.provenance import development_overlap
from automl_asd.recipe import Recipe
from automl_asd.storage import PathCheck, download_tree

__all__ = ["ApplyConfig", "ApplyReport", "apply_recipe"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyConfig:
    """Everything one apply needs besides the runner (the CLI builds it from its arguments).

    ``recipe`` is applied unchanged. ``machine_types`` restricts the types under ``data``
    (``None`` = every one). ``resume`` skips machine types whose outputs are verifiably this
    recipe's on this data (:func:`automl_asd.apply.outputs.resume_status`); ``overwrite``
    allows replacing files in ``out`` the tool did not write (and another recipe's run).
    ``ground_truth`` is the official ground-truth folder for anonymised test names;
    ``evaluate``/``plots`` control the report written after all jobs. ``storage`` (a path or
    URI every node reaches, ``automl_asd.storage``): the jobs upload their outputs there and
    the driver copies them into ``out`` as each one finishes.
    """

    recipe: Recipe
    data: Path
    out: Path
    machine_types: tuple[str, ...] | None = None
    resume: bool = False
    cache_dir: Path | None = None
    device: str = "auto"
    ground_truth: Path | None = None
    evaluate: bool = True
    plots: bool = True
    overwrite: bool = False
    storage: str | None = None


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
    metrics: dict[tuple[str, str], Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    seconds: float = 0.0
    #: Applied machine types that the recipe's search developed on, by name, and those of
    #: them with the clip counts the search saw (in-sample scores):
    #: :func:`~automl_asd.provenance.development_overlap`.
    dev_types: tuple[str, ...] = ()
    dev_types_same_data: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[str, ...]:
        """Machine types whose job failed (after retries)."""
        return tuple(o.machine_type for o in self.outcomes if o.status == "failed")

    @property
    def ok(self) -> bool:
        """True when no machine type failed."""
        return not self.failed




# ------------------------------------------------------------------ driver
def _discover(data_root: Path, machine_types: Sequence[str] | None) -> list[str]:
    """Machine-type folders under ``data_root`` (names only: each task reads its own clips, so
    one malformed machine type cannot stop the others)."""
    found = find_machine_dirs(data_root)
    unknown = sorted(set(machine_types or ()) - set(found))
    if unknown:
        raise DataError(f"{data_root}: machine type(s) {', '.join(unknown)} not found; "
                        f"available: {', '.join(found)}")
    names = sorted(set(machine_types)) if machine_types else sorted(found)
    for mt in names:
        # before anything is written: the run folder's names hold the type's (found
        # 2026-12-07: a 240-byte type stopped the run on "File name too long" of a journal)
        check_type_name_length(found[mt], mt)
    return names


def _abs_data(root: Path) -> str:
    """The data root as an absolute path that keeps its own name: a root that is one machine
    type's folder names the type, also when it is a link (found 2026-12-07: ``--data
    pumplink``, a link to ``.../pump``, was refused by the pre-flight as "machine type
    folder(s) pumplink missing", which the resolved path named ``pump``)."""
    return os.path.abspath(root)


def _abs(path: Path | None) -> str | None:
    """Absolute path text for a job (tasks on other nodes: no relative paths)."""
    return None if path is None else str(path.resolve())


def _reusable_shared(cfg: ApplyConfig, out: Path, names: list[str],
                     fingerprints: Mapping[str, Any]) -> str | None:
    """Why the shared stage in ``<out>/shared`` cannot be reused by a resumed run (``None``:
    it can): it must come from this recipe, over exactly these machine types, trained on data
    with these input fingerprints."""
    path = out / SHARED_DIRNAME
    if not path.is_dir():
        return f"{path}: missing"
    try:
        load_shared(path, recipe_hash=cfg.recipe.content_hash(), machine_types=names,
                    fingerprints=fingerprints)
    except BundleError as exc:
        return str(exc)
    return None


def _shared_stage(cfg: ApplyConfig, out: Path, names: list[str], runner: Runner, *,
                  reuse: bool, fingerprints: Mapping[str, Any]) -> Path | None:
    """Run (or, with ``reuse``, keep) the recipe's shared stage over every machine type of the
    run as a job of ``runner`` (never in this process unless the runner is serial);
    ``<out>/shared`` (with ``cfg.storage``: ``<storage>/shared``). ``None`` when the recipe has
    no shared stage."""
    rec = cfg.recipe
    if not needs_shared(rec):
        return None
    path = out / SHARED_DIRNAME
    if reuse:
        logger.info("apply: reusing the shared stage in %s", path)
        return path
    t0 = time.perf_counter()
    logger.info("apply: shared stage of %s over %d machine type(s) (training clips only)",
                rec.name, len(names))
    summary = runner.run_shared(SharedJob(
        recipe=rec, data_root=_abs_data(cfg.data), machine_types=tuple(names),
        out_dir=str(out.resolve()), cache_dir=_abs(cfg.cache_dir), device=cfg.device,
        storage=cfg.storage, fingerprints=dict(fingerprints)))
    if cfg.storage is not None:
        download_tree(cfg.storage, path, SHARED_DIRNAME)
    logger.info("apply: shared stage done in %.1f s on node %s (host %s, pid %s) -> %s",
                time.perf_counter() - t0, summary.get("node_id"), summary.get("host"),
                summary.get("pid"), f"{cfg.storage}/shared" if cfg.storage else path)
    return path


def _stage_text(outcome: MachineOutcome) -> str:
    """`` (features 1.2 s, fit 30.5 s, score 0.4 s)`` from a finished task's summary."""
    timings = (outcome.summary or {}).get("timings") or {}
    stages = [f"{k} {float(v):.1f} s" for k, v in timings.items()
              if k != "total" and isinstance(v, int | float)]
    return f" ({', '.join(stages)})" if stages and outcome.status == "ok" else ""


def apply_recipe(cfg: ApplyConfig, *, runner: Runner | None = None) -> ApplyReport:
    """Apply ``cfg.recipe`` to every machine type under ``cfg.data``; write into ``cfg.out``.

    ``runner`` defaults to :class:`~automl_asd.apply.runners.SerialRunner`; pass
    ``orchestration.ray_runner.RayRunner`` for parallel tasks. Failures are reported
    (``<out>/<mt>.error.txt``), the others complete. Metrics/plots are computed at the end when
    ``cfg.evaluate`` and labels exist.

    ``cfg.out`` is locked for the run and keeps a manifest of what its runs wrote
    (:mod:`automl_asd.io.run_folder`): files the tool did not write are never deleted, and one
    whose name the run would write is refused (``OutputError``) unless ``cfg.overwrite``; so is
    a folder holding another recipe's outputs (``overwrite`` replaces that run's own files).
    Nothing is created when the data root or ``cfg.machine_types`` are wrong.
    """
    names = _discover(cfg.data, cfg.machine_types)
    if not names:
        raise ValueError(f"{cfg.data}: no machine types found (expected "
                         "<root>/<machine_type>/test)")
    dev, same = development_overlap(cfg.recipe, cfg.data, names)
    if same:
        logger.warning("apply: %s: the recipe was chosen by a search on these machine types "
                       "(same clip counts): their scores are in-sample, not a figure for "
                       "machines the search never saw", ", ".join(same))
    if set(dev) - set(same):
        logger.warning("apply: %s: development type name(s) of the search that chose the "
                       "recipe, with other clips (other data, or a changed tree)",
                       ", ".join(sorted(set(dev) - set(same))))
    check_outputs_apart(Path(cfg.out), cfg.storage,
                        [("--data", Path(cfg.data)), ("--ground-truth", cfg.ground_truth)])
    with storage_lock(cfg.storage, "apply"), \
            open_apply_folder(cfg.out, cfg.recipe, overwrite=cfg.overwrite) as folder:
        report = _apply_locked(folder, cfg, names, runner or SerialRunner())
    return replace(report, dev_types=dev, dev_types_same_data=same)


def _apply_locked(folder: RunFolder, cfg: ApplyConfig, names: list[str],
                  runner: Runner) -> ApplyReport:
    """The body of :func:`apply_recipe`, run while ``folder`` is locked."""
    t0 = time.perf_counter()
    rec, root, storage = cfg.recipe, cfg.data, cfg.storage
    rhash = rec.content_hash()
    out = folder.path
    n_total = len(names)
    done_count = 0
    outcomes: list[MachineOutcome] = []

    def report(outcome: MachineOutcome) -> None:
        nonlocal done_count
        done_count += 1
        if storage is not None and outcome.status == "ok":
            # the task's own outputs and journal, into --out (claim() checked their names)
            own = storage_patterns([outcome.machine_type], shared=False)
            download_tree(storage, out, include=lambda rel: matches(rel, own))
        record_outcome(folder, outcome)
        for line in outcome.warnings:  # found 2026-12-07: a Ray task's warnings were lost
            logger.warning("%s", line)
        if outcome.status == "failed":
            # what the task wrote before it failed (the CSVs before a bundle save that ran
            # out of disk) must not be read as a result: only the error file stays
            clear_machine(folder, outcome.machine_type)
            with folder.writing([error_path(out, outcome.machine_type).name]):
                path = write_error(out, outcome.machine_type, outcome.error or "unknown error")
            # the error in the CLI's words (a full disk: "PATH: no space left on the device;
            # ..."), else the traceback's last line
            last = (outcome.error or "").strip().splitlines()[-1:] or ["unknown error"]
            logger.error("apply [%d/%d] %s FAILED after %.1f s: %s (traceback: %s)",
                         done_count, n_total, outcome.machine_type, outcome.seconds,
                         outcome.message or last[0], path)
        else:
            logger.info("apply [%d/%d] %s %s in %.1f s%s", done_count, n_total,
                        outcome.machine_type, "done" if outcome.status == "ok" else "skipped",
                        outcome.seconds, _stage_text(outcome))

    jobs: list[MachineJob] = []
    if storage is not None and cfg.resume:
        # what earlier runs uploaded for these machine types, never over a file the tool did
        # not write (refused first, as for the names a run writes)
        patterns = storage_patterns(names, shared=needs_shared(rec))
        folder.check_free(patterns)
        folder.record(download_tree(storage, out, include=lambda rel: matches(rel, patterns)))
    # the data as this driver sees it, taken once: compared on --resume, recorded by each job
    fingerprints = {mt: input_fingerprint(d) for mt in names
                    if (d := machine_dir(root, mt)) is not None}
    done_before = resumable(folder, root, names, rhash, fingerprints) if cfg.resume else {}
    shared_kept = False
    if cfg.resume and needs_shared(rec):
        # every type's scores come from the shared stage: one trained again (other types, or
        # any type's files changed) means every type runs again, never a mixed submission
        why = _reusable_shared(cfg, out, names, fingerprints)
        shared_kept = why is None
        if why is not None and done_before:
            logger.warning("apply: the shared stage is trained again (%s); %s run(s) again "
                           "with it", why, ", ".join(sorted(done_before)))
            done_before = {}
    if cfg.evaluate and cfg.ground_truth is not None:
        # a bad ground-truth file of these types fails now, not after every type is trained
        labelled_truth(root, names, cfg.ground_truth)
    pending = [mt for mt in names if mt not in done_before]
    claim(folder, root, pending, shared=bool(pending) and needs_shared(rec),
          report=cfg.evaluate,
          plots_of=sorted(done_before) if cfg.evaluate and cfg.plots else ())
    if pending or cfg.evaluate:
        # a past run's results.md / metrics.json describe outputs this run replaces: gone
        # now, written again at the end from this run's outputs (none if every type fails)
        folder.remove_matching(REPORT_PATTERNS)
    if storage is not None and pending:
        clear_storage_outputs(storage, pending)
    if pending:
        runner.preflight(PathCheck(
            data=_abs_data(root), machine_types=tuple(names),
            writable=(("--storage", storage) if storage else ("--out", str(out.resolve())),),
            cache_dir=_abs(cfg.cache_dir)))
    shared_dir = (_shared_stage(cfg, out, names, runner, reuse=shared_kept,
                                fingerprints=fingerprints) if pending else None)
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
                recipe=rec,
                data_root=_abs_data(root),  # tasks on other nodes: no relative paths
                machine_type=mt,
                out_dir=str(out.resolve()),
                cache_dir=_abs(cfg.cache_dir),
                device=cfg.device,
                shared_dir=_abs(shared_dir),
                overwrite=folder.overwrite,
                storage=storage,
                fingerprint=fingerprints.get(mt),
            )
        )
    if jobs:
        logger.info("apply: recipe %s (%s) on %d machine type(s)%s", rec.name, rhash[:12],
                    len(jobs), f", {n_total - len(jobs)} already done" if cfg.resume else "")
        outcomes.extend(runner.run(jobs, report))

    outcomes.sort(key=lambda o: o.machine_type)
    # submission files of types this run did not ask for (an earlier run into this --out
    # with other --machine-types): not in this run's report, but `evaluate` reads them
    others = sorted({mt for mt, _ in list_submission_sections(out)} - set(names))
    if others:
        logger.warning("apply: %s also hold(s) submission files of %d machine type(s) this run "
                       "did not apply (%s): an earlier run's, left as they are; this run's "
                       "results cover %s only, while `evaluate` scores every submission file "
                       "in the folder", out, len(others), few_names(others), few_names(names))
    evaluation: Any | None = None
    files: list[Path] = []
    if cfg.evaluate:
        summaries = {o.machine_type: o.summary for o in outcomes
                     if o.status != "failed" and o.summary is not None}
        # every name it may write (claimed above: none is a foreign file)
        may_write = [*REPORT_PATTERNS, *(
            f"{kind}_{tag}.png" for mt, ss in list_submission_sections(out)
            if cfg.plots and mt in summaries
            for tag in (mt, f"{mt}_section_{ss}") for kind in ("roc", "hist"))]
        with folder.writing(may_write):
            evaluation, files = evaluate_outputs(
                out, root, summaries, ground_truth=cfg.ground_truth, plots=cfg.plots,
            )
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
