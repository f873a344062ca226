"""The shared stage of ``apply``, and the run storage's stale outputs.

:func:`run_shared_job` is the body of a :class:`~automl_asd.apply.jobs.SharedJob`: the shared
network stage of ``scope: all`` recipes, run by a runner (in this process for the serial
runner, as a Ray task with the per-task resources for the Ray runner), never inline in the
driver. It reads the training clips of every machine type of the run, trains, and saves
``<out>/shared`` (:func:`bundle.shared.save_shared`) plus ``<out>/shared/summary.json`` (where and
how long it ran). The per-machine jobs after it load that folder, from the output folder or
downloaded from the storage (``--storage``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import automl_asd.pipeline as pipeline
from automl_asd._version import __version__
from automl_asd.apply.jobs import SharedJob, load_machine
from automl_asd.bundle.shared import save_shared
from automl_asd.components.device import resolve_device
from automl_asd.storage import delete_files, open_storage, upload_tree
from automl_asd.storage import where as here

__all__ = ["SHARED_DIRNAME", "SHARED_SUMMARY", "run_shared_job", "clear_storage_outputs"]

logger = logging.getLogger(__name__)

#: Folder of the shared stage inside a run's output folder or storage.
SHARED_DIRNAME = "shared"
#: The shared stage's summary, inside its folder.
SHARED_SUMMARY = "summary.json"


def run_shared_job(job: SharedJob, *, where: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train the shared stage of ``job`` and save it; returns its summary (also written to
    ``shared/summary.json``). ``where`` (node id, host, pid) is recorded in the summary."""
    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rec = job.recipe
    names = sorted(job.machine_types)
    machines = {mt: load_machine(Path(job.data_root), mt) for mt in names}
    # through the module, so a test that replaces pipeline.fit_shared sees every call
    states = pipeline.fit_shared(rec, machines, cache_dir=None if job.cache_dir is None
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
                    fingerprints=job.fingerprints,
                    extra={SHARED_SUMMARY: (json.dumps(summary, indent=2) + "\n").encode()})
        if job.storage:
            upload_tree(target, job.storage, SHARED_DIRNAME)
    return summary


def clear_storage_outputs(storage: str, machine_types: list[str]) -> None:
    """Remove the outputs of machine types about to be (re)run from the run storage (summary,
    error, model bundle, submission CSVs), so a stale result cannot be read back as current."""
    from pyarrow import fs  # noqa: PLC0415  (heavy: only for --storage)

    filesystem, base = open_storage(storage)
    if filesystem.get_file_info(base).type != fs.FileType.Directory:
        return
    names = [e.base_name for e in filesystem.get_file_info(fs.FileSelector(base))]
    for mt in machine_types:
        stale = [n for n in names if n in (f"{mt}.summary.json", f"{mt}.error.txt")
                 or n.startswith((f"anomaly_score_{mt}_section_", f"decision_result_{mt}_"
                                                                   "section_"))]
        delete_files(storage, [*stale, f"models/{mt}"])
