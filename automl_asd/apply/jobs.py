"""The jobs of ``apply`` and what both job kinds share: reading one machine type's clips.

A job is a frozen value a runner hands to wherever it runs work (this process, or a Ray
worker that receives it pickled): :class:`MachineJob` applies the recipe to one machine type,
:class:`SharedJob` trains the shared stage of a ``scope: all`` recipe over every machine type
of the run. Both carry the frozen :class:`~automl_asd.recipe.Recipe` itself (no dict round
trip) and plain paths. :class:`MachineOutcome` is what a runner reports back per machine type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from automl_asd.data import DataError, Domain, Label, MachineData, Split, scan
from automl_asd.recipe import Recipe

__all__ = ["MachineJob", "SharedJob", "MachineOutcome", "Status", "load_machine",
           "blind_test_clips"]

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class MachineJob:
    """Everything one task needs; plain values and the frozen recipe, so it travels to a Ray
    worker cheaply.

    Paths are strings (absolute: tasks may run on other nodes); ``num_threads`` (torch threads
    inside the task) is left to the library default when ``None``.
    """

    recipe: Recipe
    data_root: str
    machine_type: str
    out_dir: str
    cache_dir: str | None = None
    device: str = "auto"
    num_threads: int | None = None
    #: Folder of the run's shared stage (``bundle.shared.save_shared``) when the recipe has one.
    shared_dir: str | None = None
    #: ``--overwrite``: the model bundle may replace files this tool did not write.
    overwrite: bool = False
    #: Run storage (path or URI, ``automl_asd.storage``): when set, the task writes locally
    #: and uploads its outputs there (and reads the shared stage from there) instead of
    #: writing into ``out_dir``.
    storage: str | None = None
    #: The type's data fingerprint as the driver saw it before dispatching
    #: (``apply.outputs.input_fingerprint``), recorded in its summary for ``--resume``; taken
    #: by the task after the run when ``None``.
    fingerprint: dict[str, str] | None = None


@dataclass(frozen=True)
class SharedJob:
    """The shared stage of one run; plain values and the frozen recipe, so it travels to a Ray
    worker cheaply.

    ``out_dir`` is the run's output folder (the stage is written to ``<out_dir>/shared``)
    unless ``storage`` is set: then it is written locally and uploaded to
    ``<storage>/shared``.
    """

    recipe: Recipe
    data_root: str
    machine_types: tuple[str, ...]
    out_dir: str
    cache_dir: str | None = None
    device: str = "auto"
    num_threads: int | None = None
    storage: str | None = None
    #: each machine type's input fingerprint as the driver saw it, kept in ``shared.json`` so
    #: a resumed run reuses the stage only for the same data
    fingerprints: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MachineOutcome:
    """What a runner reports for one machine type (small: no arrays).

    ``summary`` is the content of ``<out>/<mt>.summary.json`` (``None`` when failed);
    ``error`` the traceback text of a failure, ``message`` its one line as the CLI words
    errors (:func:`~automl_asd.errors.one_line`); ``seconds`` the wall time of the task;
    ``warnings`` the WARNING lines the task logged where the driver cannot see them (a Ray
    worker's), for the driver to log again.
    """

    machine_type: str
    status: Status
    seconds: float
    summary: dict[str, Any] | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    message: str | None = None


def load_machine(data_root: Path, machine_type: str) -> MachineData:
    """The clips of ``machine_type`` under ``data_root``; ``DataError`` when it is missing."""
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
    clips = tuple(
        dataclasses.replace(c, label=Label.UNKNOWN, domain=Domain.UNKNOWN, attributes=None)
        if c.split is Split.TEST else c
        for c in machine.clips
    )
    return MachineData(machine_type=machine.machine_type, root=machine.root, clips=clips)
