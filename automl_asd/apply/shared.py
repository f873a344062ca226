"""The job kinds of ``apply`` besides the per-machine job: the shared stage, and any job whose
outputs go to a run storage (``--storage``) instead of a folder every node sees.

:class:`SharedJob` is the shared network stage of ``scope: all`` recipes as a job a runner
runs (in this process for the serial runner, as a Ray task with the per-task resources for the
Ray runner), never inline in the driver. It reads the training clips of every machine type of
the run, trains, and saves ``<out>/shared`` (:func:`io.bundle.save_shared`) plus
``<out>/shared/summary.json`` (where and how long it ran). The per-machine jobs after it load
that folder, from the output folder or downloaded from the storage.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_asd import __version__
from automl_asd.storage import download_tree, upload_tree

if TYPE_CHECKING:
    from automl_asd.apply import MachineJob, RunMachineFn

__all__ = ["SHARED_DIRNAME", "SHARED_SUMMARY", "SharedJob", "run_shared_job",
           "apply_machine_via_storage", "clear_storage_outputs"]

logger = logging.getLogger(__name__)

#: Folder of the shared stage inside a run's output folder or storage.
SHARED_DIRNAME = "shared"
#: The shared stage's summary, inside its folder.
SHARED_SUMMARY = "summary.json"


@dataclass(frozen=True)
class SharedJob:
    """The shared stage of one run; plain values, so it travels to a Ray worker cheaply.

    ``out_dir`` is the run's output folder (the stage is written to ``<out_dir>/shared``)
    unless ``storage`` is set: then it is written locally and uploaded to
    ``<storage>/shared``.
    """

    recipe: Mapping[str, Any]
    data_root: str
    machine_types: tuple[str, ...]
    out_dir: str
    cache_dir: str | None = None
    device: str = "auto"
    num_threads: int | None = None
    storage: str | None = None


def run_shared_job(job: SharedJob, *, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train the shared stage of ``job`` and save it; returns its summary (also written to
    ``shared/summary.json``). ``where`` (node id, host, pid) is recorded in the summary."""
    from automl_asd.apply import _load_machine
    from automl_asd.io.bundle import save_shared
    from automl_asd.pipeline import fit_shared, resolve_device
    from automl_asd.recipe import Recipe
    from automl_asd.storage import where as here

    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rec = Recipe.from_dict(dict(job.recipe))
    names = sorted(job.machine_types)
    machines = {mt: _load_machine(Path(job.data_root), mt) for mt in names}
    states = fit_shared(rec, machines, cache_dir=None if job.cache_dir is None
                        else Path(job.cache_dir), device=job.device,
                        num_threads=job.num_threads)
    summary: dict[str, Any] = {
        "stage": "shared", "recipe_name": rec.name, "recipe_hash": rec.content_hash(),
        "package_version": __version__, "machine_types": names,
        "device": str(resolve_device(job.device)), "started": started,
        **(dict(where) if where is not None else here()),
    }
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    with tempfile.TemporaryDirectory(prefix="automl-asd-shared-") as tmp:
        base = Path(tmp) if job.storage else Path(job.out_dir)
        target = base / SHARED_DIRNAME
        # listed in shared.json with the states: the run folder owns it like them
        save_shared(target, states, recipe_hash=rec.content_hash(), machine_types=names,
                    extra={SHARED_SUMMARY: (json.dumps(summary, indent=2) + "\n").encode()})
        if job.storage:
            upload_tree(target, job.storage, SHARED_DIRNAME)
    return summary


def apply_machine_via_storage(job: MachineJob, *, run_fn: RunMachineFn | None = None,
                              where: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run one machine job into a local temporary folder and upload its outputs to
    ``job.storage`` (summary last); the shared stage, if any, is first downloaded from
    ``<storage>/shared``. Returns the summary."""
    from automl_asd.apply import apply_machine

    assert job.storage is not None
    with tempfile.TemporaryDirectory(prefix=f"automl-asd-{job.machine_type}-") as tmp:
        shared_dir: Path | None = None
        if job.shared_dir is not None:
            shared_dir = Path(tmp) / "in" / SHARED_DIRNAME
            if not download_tree(job.storage, shared_dir, SHARED_DIRNAME):
                from automl_asd.bundle import BundleError

                raise BundleError(f"{job.storage}/{SHARED_DIRNAME}: no shared stage in the "
                                  "run storage")
        out = Path(tmp) / "out"
        local = replace(job, out_dir=str(out), storage=None,
                        shared_dir=None if shared_dir is None else str(shared_dir))
        summary = apply_machine(
            local.recipe, local.data_root, local.machine_type, local.out_dir,
            cache_dir=local.cache_dir, device=local.device, num_threads=local.num_threads,
            run_fn=run_fn, shared_dir=local.shared_dir, where=where)
        upload_tree(out, job.storage)
    return summary


def clear_storage_outputs(storage: str, machine_types: list[str]) -> None:
    """Remove the outputs of machine types about to be (re)run from the run storage (summary,
    error, model bundle, submission CSVs), so a stale result cannot be read back as current."""
    from pyarrow import fs

    from automl_asd.storage import delete_files, open_storage

    filesystem, base = open_storage(storage)
    if filesystem.get_file_info(base).type != fs.FileType.Directory:
        return
    names = [e.base_name for e in filesystem.get_file_info(fs.FileSelector(base))]
    for mt in machine_types:
        stale = [n for n in names if n in (f"{mt}.summary.json", f"{mt}.error.txt")
                 or n.startswith((f"anomaly_score_{mt}_section_", f"decision_result_{mt}_"
                                                                   "section_"))]
        delete_files(storage, [*stale, f"models/{mt}"])
