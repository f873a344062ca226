"""``apply``: one frozen recipe applied to (novel) machine types, one job per type.

* :mod:`~automl_asd.apply.driver` — :class:`ApplyConfig`, :func:`apply_recipe` (discover →
  resume filter → shared stage → machine jobs → evaluate), :class:`ApplyReport`;
* :mod:`~automl_asd.apply.jobs` — the typed jobs (:class:`MachineJob`, :class:`SharedJob`,
  carrying the frozen :class:`~automl_asd.recipe.Recipe`) and :class:`MachineOutcome`;
* :mod:`~automl_asd.apply.runners` — :class:`Runner`, :class:`SerialRunner`, :func:`run_job`
  (the body of a machine job) and the :class:`PipelineFn` model step;
* :mod:`~automl_asd.apply.shared` — the shared stage of ``scope: all`` recipes;
* :mod:`~automl_asd.apply.outputs` — the files a run writes, the run folder and ``--resume``.

The Ray runner lives in ``automl_asd.orchestration.ray_runner`` (the only Ray importer).
"""

from __future__ import annotations

from automl_asd.apply.driver import ApplyConfig, ApplyReport, apply_recipe
from automl_asd.apply.jobs import MachineJob, MachineOutcome, SharedJob, blind_test_clips
from automl_asd.apply.outputs import SUMMARY_SCHEMA, is_complete
from automl_asd.apply.runners import (
    PipelineFn,
    Runner,
    SerialRunner,
    apply_machine,
    run_job,
    run_pipeline,
)

__all__ = [
    "SUMMARY_SCHEMA",
    "ApplyConfig",
    "ApplyReport",
    "MachineJob",
    "MachineOutcome",
    "PipelineFn",
    "Runner",
    "SerialRunner",
    "SharedJob",
    "apply_machine",
    "apply_recipe",
    "blind_test_clips",
    "is_complete",
    "run_job",
    "run_pipeline",
]
