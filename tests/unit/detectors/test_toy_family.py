"""A new detector family = one file + one YAML line.

``tests/fixtures/toy_family.py`` is that file (a class and its parameter schema); registering it
through the public registry (``automl_asd.detectors.register``) is all the package needs: a
recipe names it, the strict recipe parser checks its parameters against its schema, the pipeline
trains and scores it, and one added line in a search space makes it a searchable family whose
space validates and whose sampled point becomes a runnable recipe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest

from automl_asd.data import scan
from automl_asd.detectors import REGISTRY, get_detector_class, make_detector, register
from automl_asd.pipeline import run_machine
from automl_asd.recipe import Recipe, RecipeError, load_recipe
from automl_asd.search.space import SHIPPED_SPACES_DIR, load_space
from tests.fixtures.toy_family import NAME, ToyMeanDistance

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: The one line a new family adds to a search space (here: under the smoke space's choices).
SPACE_LINE = f"      {NAME}: {{scale: {{float: [0.5, 2.0]}}}}"


@pytest.fixture()
def toy_family() -> Iterator[str]:
    """The toy family registered for one test (and removed again)."""
    assert NAME not in REGISTRY
    register(ToyMeanDistance)
    yield NAME
    REGISTRY.unregister(NAME)


def _toy_recipe(scale: float, normalization: str = "domain_zscore") -> Recipe:
    d = load_recipe("fast_default").to_dict()
    d["name"] = "toy_recipe"
    d["detector"] = {"name": NAME, "params": {"scale": scale}}
    d["normalization"] = {"method": normalization}
    return Recipe.from_dict(d)


def test_registered_family_is_found_and_its_schema_is_enforced(toy_family: str) -> None:
    assert get_detector_class(toy_family) is ToyMeanDistance
    det = make_detector(toy_family, {"scale": 2.0}, seed=0)
    assert det.get_params() == {"scale": 2.0, "seed": 0}
    with pytest.raises(RecipeError, match=r"detector\.params\.scale"):
        _toy_recipe(50.0)  # outside the schema's [0.1, 10]
    with pytest.raises(KeyError, match=NAME):  # unknown once unregistered: lists valid names
        REGISTRY.unregister(toy_family)
        try:
            get_detector_class(toy_family)
        finally:
            register(ToyMeanDistance)


def test_toy_family_runs_through_a_recipe(toy_family: str, tiny_dev_root: Path) -> None:
    machine = scan(tiny_dev_root, machine_types=["fan"])["fan"]
    recipe = _toy_recipe(1.0, "none")
    assert recipe.detector.name == toy_family
    result = run_machine(recipe, machine, device="cpu")
    assert len(result.scores) == len(machine.test) == 40
    assert np.all(np.isfinite(result.scores)) and np.all(result.scores >= 0)
    # The recipe's parameter reaches the family: without normalisation the score is the
    # toy's distance itself, which is inversely proportional to ``scale``.
    doubled = run_machine(_toy_recipe(2.0, "none"), machine, device="cpu")
    np.testing.assert_allclose(doubled.scores * 2.0, result.scores, rtol=1e-12)
    # The same recipe again gives the same scores (seeded, no hidden state).
    again = run_machine(recipe, machine, device="cpu")
    np.testing.assert_array_equal(result.scores, again.scores)
    # With the shipped normalisation it still runs end to end and thresholds its scores.
    normed = run_machine(_toy_recipe(1.0), machine, device="cpu")
    assert set(np.unique(normed.decisions)) <= {0, 1}
    assert np.array_equal(normed.decisions, (normed.scores > normed.threshold).astype(np.int8))


def test_one_yaml_line_makes_it_searchable(toy_family: str, tmp_path: Path,
                                           tiny_dev_root: Path) -> None:
    text = (SHIPPED_SPACES_DIR / "smoke.yaml").read_text()
    anchor = "    choose:\n      pooled_stats:\n"
    assert text.count(anchor) == 1
    path = tmp_path / "smoke_plus_toy.yaml"
    path.write_text(text.replace(anchor, f"    choose:\n{SPACE_LINE}\n      pooled_stats:\n"))
    space = load_space(path)  # validated against the registry, every edge probed
    assert f"detector.{toy_family}.scale" in {d.name for d in space.dimensions()}
    # One trial: sample until the new family is drawn, turn the point into a recipe, run it.
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        trial = study.ask()
        space.define_by_run(trial)
        recipe = space.to_recipe(trial.params)
        if recipe.detector.name == toy_family:
            break
    else:
        pytest.fail(f"{toy_family} never sampled in 50 draws")
    assert 0.5 <= recipe.detector.params["scale"] <= 2.0
    machine = scan(tiny_dev_root, machine_types=["gearbox"])["gearbox"]
    result = run_machine(recipe, machine, device="cpu", fidelity=0.5)
    assert len(result.scores) == len(machine.test) and np.all(np.isfinite(result.scores))
