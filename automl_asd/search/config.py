"""What one search needs (:class:`SearchConfig`), what scores a recipe (:class:`Evaluator`) and
what a search or a leave-one-out run returns."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from automl_asd.errors import UsageError
from automl_asd.recipe import content_digest
from automl_asd.search.space import SearchSpace
from automl_asd.search.trials import TrialRecord
from automl_asd.storage import place

if TYPE_CHECKING:
    import pandas as pd

    from automl_asd.data import MachineData
    from automl_asd.evaluation.objective import ObjectiveResult
    from automl_asd.recipe import Recipe

__all__ = ["Evaluator", "BatchEvaluator", "OnDone", "one_by_one", "SearchConfig",
           "SearchOutcome", "LeaveOneOutOutcome", "run_meta", "check_start"]

logger = logging.getLogger(__name__)


class Evaluator(Protocol):
    """``objective.evaluate_recipe``'s signature (tests pass small stand-ins)."""

    def __call__(self, recipe: Recipe, machines: Mapping[str, MachineData], *,
                 cache_dir: Any = None, device: str = "auto",
                 fidelity: float = 1.0) -> ObjectiveResult: ...


#: Called as each recipe of a batch finishes: ``(index in the batch, result, seconds)``.
OnDone = Callable[[int, "ObjectiveResult", float], None]


class BatchEvaluator(Protocol):
    """Several recipes on one data set: the results in the recipes' order, whatever order they
    finish in (an executor may run them at once); ``on_done`` hears of each as it finishes."""

    def __call__(self, recipes: Sequence[Recipe], machines: Mapping[str, MachineData], *,
                 cache_dir: Any = None, device: str = "auto", fidelity: float = 1.0,
                 on_done: OnDone | None = None) -> list[ObjectiveResult]: ...


def one_by_one(evaluator: Evaluator) -> BatchEvaluator:
    """A :class:`BatchEvaluator` that calls ``evaluator`` on each recipe in turn (no executor)."""

    def run(recipes: Sequence[Recipe], machines: Mapping[str, MachineData], *,
            cache_dir: Any = None, device: str = "auto", fidelity: float = 1.0,
            on_done: OnDone | None = None) -> list[ObjectiveResult]:
        results = []
        for i, recipe in enumerate(recipes):
            t0 = time.perf_counter()
            result = evaluator(recipe, machines, cache_dir=cache_dir, device=device,
                               fidelity=fidelity)
            if on_done is not None:
                on_done(i, result, time.perf_counter() - t0)
            results.append(result)
        return results

    return run


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
    #: ``--trials`` as given when the space holds fewer distinct recipes (``trials`` is then
    #: capped to them; the report says both); ``None`` otherwise.
    trials_asked: int | None = None

    def __post_init__(self) -> None:
        """Refuse settings no search can run with, before anything starts (named by their
        command-line option: the CLI passes them through unchanged)."""
        def positive(value: float | None) -> bool:
            return value is not None and math.isfinite(value) and value > 0

        problems = []
        if self.trials < 1:
            problems.append(f"--trials: {self.trials}; expected at least 1")
        if self.max_concurrent < 1:
            problems.append(f"--max-concurrent: {self.max_concurrent}; expected at least 1")
        if self.time_budget_s is not None and not positive(self.time_budget_s):
            problems.append(f"--time-budget: {self.time_budget_s}; expected seconds > 0 "
                            "(leave it out for no budget)")
        if self.seed < 0:
            problems.append(f"--seed: {self.seed}; expected a non-negative integer")
        if not positive(self.cpus_per_trial):
            problems.append(f"--cpus-per-trial: {self.cpus_per_trial}; expected > 0 "
                            "(fractions such as 0.5 share a CPU)")
        if not (math.isfinite(self.gpus_per_trial) and self.gpus_per_trial >= 0):
            problems.append(f"--gpus-per-trial: {self.gpus_per_trial}; expected >= 0")
        if self.novel_top_k < 1:
            problems.append(f"--novel-top-k: {self.novel_top_k}; expected at least 1")
        if problems:
            raise UsageError("; ".join(problems))
        # Beyond its points TPE can only propose recipes already run, and each would run again
        # (found 2026-12-07: a one-point space ran its only recipe four times for --trials 4).
        # Here, not in the search, so that a leave-one-out fold's and a resume's target is the
        # count the search ran to (a review found folds judged against the uncapped one).
        # Distinct recipes where the space is small enough to list (points that differ only
        # in inert parameters are one recipe: found 2026-12-08, such a space ended part-way,
        # "ran 2 of 4 trials"), else its points (an upper bound).
        space = self.space if isinstance(self.space, SearchSpace) else None
        n_points = space.n_points() if space is not None else None
        recipes = space.n_recipes() if space is not None else None
        points = recipes if recipes is not None else n_points
        if points is not None and points < self.trials:
            logger.warning("space %s holds %d distinct recipe(s)%s: at most %d trial(s), not "
                           "--trials %d", self.space.name, points,
                           f" ({n_points} points; those that differ only in parameters "
                           "inert where they are set are one recipe)"
                           if n_points != points else "", points, self.trials)
            object.__setattr__(self, "trials_asked", self.trials)
            object.__setattr__(self, "trials", points)
        elif self.trials_asked is not None and not (
                self.trials == points and self.trials_asked > points):
            # a copy with another trial count (dataclasses.replace) was not capped
            object.__setattr__(self, "trials_asked", None)


@dataclass(frozen=True)
class SearchOutcome:
    """Result of one search: the frozen best recipe, the trial records and their table."""

    run_dir: Path
    recipe: Recipe
    best_omega: float
    best_trial_id: str
    #: Ω of the space's reference recipe (its first trial); ``None`` when it did not finish.
    reference_omega: float | None
    #: One row per trial (:func:`automl_asd.search.trials.table`), for reports.
    trials: pd.DataFrame
    machine_types: tuple[str, ...]
    files: Mapping[str, Path] = field(default_factory=dict)
    #: True when the search stopped (e.g. Ctrl+C) before all trials ran; ``--resume`` continues.
    interrupted: bool = False
    #: Trials the time budget left unfinished (running or waiting; ``--resume`` continues them).
    unfinished: int = 0
    #: Which recipe the reference is, e.g. "reference recipe `fast_default` (not the official
    #: DCASE baseline)".
    reference: str = ""
    #: The trials as records (empty for a leave-one-out fold read back from its files).
    records: tuple[TrialRecord, ...] = ()
    #: Why ``--novel``'s check failed after the recipe was frozen (``None``: it ran, or none
    #: was asked for); the recipe and the report are unaffected.
    novel_error: str | None = None


@dataclass(frozen=True)
class LeaveOneOutOutcome:
    """One search per held-out development type; ``table`` has one row per type."""

    run_dir: Path
    table: pd.DataFrame
    folds: Mapping[str, SearchOutcome]
    files: Mapping[str, Path] = field(default_factory=dict)


def run_meta(cfg: SearchConfig, machine_types: tuple[str, ...], versions: Mapping[str, str],
             dev_files_sha256: str | None = None) -> dict[str, Any]:
    """The run's ``search.json`` contents: what a resume must find unchanged, and more.
    ``dev_files_sha256``: the development data's file list digest
    (:func:`~automl_asd.provenance.data_fingerprint`)."""
    space = cfg.space
    # the reference recipe a space names is a file of its own: a resume must see it unchanged
    # (its content hash: ``base`` is the reference recipe's document without provenance)
    reference = content_digest(space.base)
    return {"space_name": space.name, "space_path": str(space.path),
            "space_sha256": space.sha256, "reference_sha256": reference,
            "seed": cfg.seed, "trials": cfg.trials,
            **({} if cfg.trials_asked is None else {"trials_asked": cfg.trials_asked}),
            "time_budget_s": cfg.time_budget_s,
            # each invocation (a --resume too) runs under its own --time-budget; searches
            # without this key kept Tune's budget, which a resume brings back already spent
            "budget_rule": "per_invocation",
            "data": str(cfg.data), "machine_types": list(machine_types),
            **({} if dev_files_sha256 is None else {"dev_files_sha256": dev_files_sha256}),
            "rungs": list(space.fidelity.rungs), "versions": dict(versions)}


#: What a resumed search must find as the search began (a search.json from before a key was
#: recorded is not checked for it), and how to say it.
_RESUME_SAME = {"space_sha256": "the space file",
                "reference_sha256": "the space's reference recipe",
                "machine_types": "the development types",
                "dev_files_sha256": "the development data's files", "seed": "--seed"}


def check_same_search(out: Path, previous: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """``ValueError`` naming the first of the space, its reference recipe, the development
    types, their files or the seed that differs between the ``search.json`` a search began
    with (``previous``) and the one a resume would write (``meta``): the resumed trials, or a
    finished leave-one-out fold reused, would belong to another search."""
    for key, what in _RESUME_SAME.items():
        if key in previous and previous.get(key) != meta.get(key):
            detail = ""
            if key == "space_sha256":
                # found 2026-12-07: only two digests were named; only the file's digest is
                # kept, so it cannot say which key changed, but it can say what counts
                detail = (f"; {meta.get('space_path') or 'the space file'}: its bytes differ "
                          "from the file the search began with (any edit counts, a comment "
                          "too)")
            raise ValueError(
                f"{out}: cannot resume: {key} ({what}) changed since the search began "
                f"({previous.get(key)} -> {meta.get(key)}){detail}; resume with the same "
                "space file, data and --seed, or start a new --out")


def check_start(cfg: SearchConfig, out: Path, state: str, previous: Mapping[str, Any] | None,
                meta: Mapping[str, Any], *, can_restore: bool) -> None:
    """Refuse a new search where one already is (``can_restore``: the executor's state at
    ``state`` exists), a resume without state, or a resume whose space, development types,
    development files or seed changed since the search began (``previous``: the run's
    ``search.json``): its trials would mix two searches, and the frozen recipe's provenance
    would name data or a seed its trials did not use."""
    if cfg.resume:
        if not can_restore:
            raise ValueError(f"{state}: no search state to resume; run without --resume")
        if previous is not None:
            check_same_search(out, previous, meta)
            began = previous.get("tune_state")
            if isinstance(began, str) and place(began) != place(state):
                # found 2026-12-07: Tune's saved state names the folder the run began in; a
                # resumed copy wrote its new trials there (or failed, the first folder gone)
                raise ValueError(
                    f"{out}: this search keeps its Ray Tune state in {began}, not {state} (the "
                    "run folder was moved or copied since it began); Tune's saved state names "
                    "that first place, and a resume here would write its trials there, or "
                    "fail where it is gone: resume the search where it began (move it back), "
                    "or start a new one with another --out")
            if previous.get("time_budget_s") is not None and "budget_rule" not in previous:
                logger.warning(
                    "%s was started by an older automl-asd with --time-budget, which Ray Tune "
                    "keeps with its state: the resumed search stops at once, already over "
                    "that budget. To run more trials, start a new --out", out)
            if previous.get("trials") != cfg.trials:
                logger.warning("resuming with the search's original %s trials (--trials %d "
                               "is ignored on --resume)", previous.get("trials"), cfg.trials)
    elif can_restore:
        if cfg.storage is not None:  # the state is in the storage, not in --out
            raise ValueError(f"--storage {cfg.storage} already holds a search ({state}); pass "
                             "--resume to continue it, or give this search its own --storage")
        raise ValueError(f"{out} already holds a search; pass --resume to continue it or "
                         "choose a new --out")
