"""The end-to-end demo on the embedded synthetic data set.

synthetic development types + separate novel types → ``search`` (Ray Tune + Optuna) on the
development types only → frozen ``recipe.json`` → ``apply`` (parallel Ray tasks) on the novel
types, unchanged → official scores, plots, and a comparison with the search space's reference
recipe (the shipped ``fast_default`` for the ``demo`` space, not the official baseline) on the
same novel types.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automl_asd import synth
from automl_asd.apply import ApplyConfig, apply_recipe
from automl_asd.io.run_folder import LOCK_FILE, OutputError, RunFolder
from automl_asd.io.search_report import pick_certainty_line
from automl_asd.orchestration.ray_runner import RayRunner
from automl_asd.orchestration.session import init_ray
from automl_asd.orchestration.tune import run_search
from automl_asd.recipe import load_recipe
from automl_asd.search.config import SearchConfig
from automl_asd.search.freeze import FreezeError
from automl_asd.search.space import load_space

__all__ = ["DemoOutcome", "run_demo", "DEMO_DIRS"]

#: What the demo writes inside its folder (listed in its run manifest).
DEMO_DIRS = ("data", "cache", "search", "apply", "reference_*")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOutcome:
    """Where the demo's results are, and its headline numbers."""

    out: Path
    dev_root: Path
    novel_root: Path
    recipe_path: Path
    search_report: Path
    apply_dir: Path
    reference_dir: Path
    in_search_omega: float
    novel_omega: float | None
    reference_omega: float | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: Which recipe ``reference_omega`` is, e.g. "reference recipe `fast_default` (not the
    #: official DCASE baseline)".
    reference: str = ""


def _refuse_foreign(out: Path) -> None:
    """The demo replaces ``search/`` and the apply folders on a rerun: refuse a non-empty
    folder that is not an earlier demo's."""
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise OutputError(f"{out}: not empty and not the folder of an earlier `automl-asd "
                          "demo` (a rerun replaces its search/ and apply folders); choose a new "
                          "or empty --out")


def run_demo(
    out: Path,
    *,
    size: str = "small",
    space: str = "demo",
    trials: int = 40,
    max_concurrent: int = 2,
    seed: int = 0,
    dev_types: Sequence[str] | None = None,
    novel_types: Sequence[str] | None = None,
    say: Callable[[str], None] = print,
) -> DemoOutcome:
    """Run the whole flow into ``out`` and return where the results are.

    Args:
        out: demo folder (data, feature cache, search run, apply outputs); reruns reuse the
            generated data and the feature cache, and start a fresh search. A non-empty folder
            that is not an earlier demo's is refused (``OutputError``); the folder is locked
            while the demo runs.
        size: synthetic set size (``tiny``/``small``/``full``).
        space: search space (shipped name or YAML path).
        trials: number of search trials (the space's reference recipe is the first).
        max_concurrent: trials running at once.
        seed: seed of the data generator and of the TPE sampler.
        dev_types / novel_types: synthetic machine types for search / for apply
            (default: the generator's development and novel catalogues).
        say: progress printer (the CLI passes ``print``).
    """
    out = Path(out).resolve()  # every path the demo prints is absolute
    dev_types = tuple(dev_types or synth.DEV_MACHINE_TYPES)
    novel_types = tuple(novel_types or synth.NOVEL_MACHINE_TYPES)
    overlap = set(dev_types) & set(novel_types)
    if overlap:
        raise ValueError(f"novel types must not be development types: {sorted(overlap)}")
    space_obj = load_space(space)  # fail fast on a bad space
    dev_root, novel_root = out / "data" / "dev", out / "data" / "novel"
    cache = out / "cache"
    times: dict[str, float] = {}
    with RunFolder.open(out, command="demo", on_new=_refuse_foreign) as folder:
        ref_dir = out / f"reference_{Path(space_obj.reference_name).stem}"
        folder.manifest["dirs"] = [*DEMO_DIRS[:-1], ref_dir.name]
        folder.save()

        t = time.perf_counter()
        say(f"[1/4] synthetic data ({size}): {len(dev_types)} development types "
            f"({', '.join(dev_types)}) and {len(novel_types)} novel types "
            f"({', '.join(novel_types)}) under {out / 'data'}")
        workers = os.cpu_count() or 1
        synth.generate(dev_root, machine_types=dev_types, size=size, seed=seed, workers=workers)
        # The novel set plays the evaluation set: anonymised test names + official ground truth.
        synth.generate(novel_root, machine_types=novel_types, size=size, seed=seed + 1,
                       eval_layout=True, workers=workers)
        times["data"] = time.perf_counter() - t

        t = time.perf_counter()
        search_dir = out / "search"
        if search_dir.exists():
            shutil.rmtree(search_dir)  # a demo rerun is a fresh search (this is a demo folder)
        say(f"[2/4] search: space '{space_obj.name}', {trials} trials, {max_concurrent} at once, "
            f"on the development types only")
        # keep Tune's per-trial chatter off the demo output
        init_ray(None, num_cpus=workers, verbose=0)
        try:
            outcome = run_search(SearchConfig(
                data=dev_root, space=space_obj, out=search_dir, trials=trials,
                machine_types=dev_types, max_concurrent=max_concurrent, seed=seed,
                cache_dir=cache, device="cpu", novel=novel_root))
        except FreezeError as exc:  # `demo` has no --resume: say what it does instead
            raise FreezeError(
                f"{search_dir}: the search stopped before any trial finished at full "
                "fidelity (interrupted?); run the same demo command again: the data and the "
                "feature cache are kept, the search starts afresh") from exc
        if outcome.interrupted:
            # found 2026-12-08: Ctrl+C after the first trial went on to apply the interim
            # pick and ended as a finished demo (rc 0); the demo stops as its search did
            raise KeyboardInterrupt("demo search interrupted")
        times["search"] = time.perf_counter() - t
        base = (f" ({outcome.reference}: Ω {outcome.reference_omega:.4f})"
                if outcome.reference_omega is not None else "")
        say(f"      best trial {outcome.best_trial_id}: in-search Ω {outcome.best_omega:.4f}{base}")
        certainty = pick_certainty_line(search_dir)
        if certainty:
            say(f"      {certainty}")
        recipe_path = outcome.files["recipe"]

        t = time.perf_counter()
        apply_dir = out / "apply"
        say(f"[3/4] apply --frozen {recipe_path} on the novel types (one Ray task each)")
        report = apply_recipe(ApplyConfig(
            load_recipe(recipe_path), novel_root, apply_dir, cache_dir=cache, device="cpu",
            ground_truth=novel_root, overwrite=True), runner=RayRunner())
        times["apply"] = time.perf_counter() - t
        if not report.ok:
            raise RuntimeError(f"apply failed for {', '.join(report.failed)}; see {apply_dir}")

        t = time.perf_counter()
        say(f"[4/4] comparison: the space's {space_obj.describe_reference_recipe()} on the "
            "same novel types")
        ref = apply_recipe(ApplyConfig(
            space_obj.reference_recipe(), novel_root, ref_dir, cache_dir=cache,
            device="cpu", ground_truth=novel_root, plots=False, overwrite=True),
            runner=RayRunner())
        times["reference"] = time.perf_counter() - t

        return DemoOutcome(
            out=out, dev_root=dev_root, novel_root=novel_root, recipe_path=recipe_path,
            search_report=outcome.files["report"], apply_dir=apply_dir, reference_dir=ref_dir,
            in_search_omega=outcome.best_omega, novel_omega=report.official_score,
            reference_omega=ref.official_score if ref.ok else None, stage_seconds=times,
            reference=space_obj.describe_reference_recipe())
