"""Search spaces: loading, validation errors naming the YAML path, the reference point,
define-by-run sampling with Optuna, and a new family joining a search by a YAML edit only."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import optuna
import pytest
from numpy.typing import NDArray

from automl_asd.detectors import REGISTRY, Detector, ParamSpec, TrainSet
from automl_asd.recipe import Recipe, load_recipe
from automl_asd.search.space import SHIPPED_SPACES_DIR, SpaceError, load_space
from tests.fixtures.paths import REPO_ROOT

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _write(tmp_path: Path, body: str, *, reference: str = "baseline_ae_mse",
           extra: str = "") -> Path:
    path = tmp_path / "space.yaml"
    text = f"name: t\nreference: {reference}\n{extra}space:\n" + textwrap.indent(
        textwrap.dedent(body).strip("\n"), "  ") + "\n"
    path.write_text(text)
    return path


def test_default_space_contains_the_official_baseline_exactly() -> None:
    space = load_space("default")
    assert space.reference_name == "baseline_ae_mse"
    assert space.reference_official == "baseline_ae_mse"
    assert space.describe_reference() == (
        "reference recipe `baseline_ae_mse` (the official DCASE baseline)")
    point = space.reference_point()
    assert point["detector.name"] == "dcase_ae"
    assert point["detector.dcase_ae.epochs"] == 100
    assert point["features.n_mels"] == 128
    replay = space.to_recipe(point)
    assert replay.content_hash() == load_recipe("baseline_ae_mse").content_hash()
    assert space.reference_is_exact()


def test_default_space_covers_every_registered_family_and_backend() -> None:
    from automl_asd.backends import BACKENDS

    space = load_space(SHIPPED_SPACES_DIR / "default.yaml")
    names = {d.name: d for d in space.dimensions()}
    assert set(names["detector.name"].choices) == set(REGISTRY)
    assert set(names["detector.pooled_stats.backend.name"].choices) == set(BACKENDS)
    for prefix in ("features.", "normalization.", "supplemental.", "ensemble."):
        assert any(n.startswith(prefix) for n in names), prefix
    assert names["detector.pooled_stats.backend.knn.k"].kind == "int"
    assert names["detector.dcase_ae.lr"].log
    assert space.fidelity.rungs == (0.1, 0.3, 1.0)


@pytest.mark.parametrize("name", ["default", "smoke"])
def test_sampled_points_are_valid_recipes_and_conditional(name: str) -> None:
    space = load_space(name)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=5))
    study.enqueue_trial(space.reference_point())
    seen: set[str] = set()
    for i in range(25):
        trial = study.ask()
        space.define_by_run(trial)
        recipe = space.to_recipe(trial.params, name=f"t{i}")
        assert isinstance(recipe, Recipe)
        det = recipe.detector.name
        seen.add(det)
        assert trial.params["detector.name"] == det
        # only the chosen family's parameters are active
        for key in trial.params:
            if key.startswith("detector.") and key != "detector.name":
                assert key.startswith(f"detector.{det}."), key
        if i == 0:
            assert trial.params == space.reference_point()
        study.tell(trial, float(np.random.default_rng(i).random()))
    assert len(seen) >= 2


def test_smoke_space_is_small() -> None:
    space = load_space("smoke")
    assert len(list(space.dimensions())) <= 8
    assert space.fidelity.rungs == (0.5, 1.0)
    recipe = space.to_recipe(space.reference_point())
    assert recipe.features.n_mels == 64
    assert recipe.detector.name == "pooled_stats"


def test_coerce_point_restores_types() -> None:
    space = load_space("smoke")
    point = space.coerce_point({"detector.pooled_stats.backend.knn.k": 2.0,
                                "detector.name": "pooled_stats", "unknown": 1})
    assert point["detector.pooled_stats.backend.knn.k"] == 2
    assert isinstance(point["detector.pooled_stats.backend.knn.k"], int)
    assert point["unknown"] == 1


def test_unsearched_params_come_from_reference_then_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        detector:
          choose:
            dcase_ae: {epochs: {int: [10, 100]}}
            pooled_stats:
              backend: {choose: {knn: {k: 3}}}
        """)
    space = load_space(path)
    ae = space.to_recipe({"detector.name": "dcase_ae", "detector.dcase_ae.epochs": 20})
    assert ae.detector.params["epochs"] == 20
    assert ae.detector.params["n_frames"] == 5  # from the reference recipe
    knn = space.to_recipe({"detector.name": "pooled_stats",
                           "detector.pooled_stats.backend.name": "knn"})
    assert knn.detector.params["backend"]["params"]["k"] == 3  # constant in the space
    assert knn.detector.params["backend"]["params"]["n_centers"] == 16  # registry default


@pytest.mark.parametrize(("body", "needles"), [
    ("detector: {choose: {nope: {}}}", ["space.detector.nope", "unknown detector 'nope'",
                                        "dcase_ae"]),
    ("detector: {choose: {dcase_ae: {epoch: 3}}}",
     ["space.detector.dcase_ae.epoch", "no parameter 'epoch'", "epochs"]),
    ("detector: {choose: {dcase_ae: {epochs: {int: [0, 100]}}}}",
     ["space.detector.dcase_ae.epochs", "below the minimum 1"]),
    ("detector: {choose: {dcase_ae: {epochs: {float: [1, 100]}}}}",
     ["space.detector.dcase_ae.epochs", "is an int"]),
    ("detector: {choose: {dcase_ae: {score: {choice: [mse, l1]}}}}",
     ["space.detector.dcase_ae.score", "'l1' is not one of"]),
    ("detector: {choose: {pooled_stats: {backend: {choose: {knn: {k: {int: [0, 3]}}}}}}}",
     ["space.detector.pooled_stats.backend.knn.k", "below the minimum 1"]),
    ("detector: {choose: {pooled_stats: {backend: {choose: {nn: {}}}}}}",
     ["space.detector.pooled_stats.backend.nn", "unknown backend 'nn'"]),
    ("detector: {choose: {pooled_stats: {backend: {choice: [knn]}}}}",
     ["space.detector.pooled_stats.backend", "backend parameter takes"]),
    ("detector: {choose: {dcase_ae: {epochs: {int: [10, 50]}}}}",
     ["detector.dcase_ae.epochs", "reference recipe 'baseline_ae_mse' has 100", "outside"]),
    ("threshold: {quantile: {float: [0.9, 1.5]}}",
     ["space.threshold.quantile = 1.5", "above the maximum"]),
    ("features: {n_mel: {choice: [64]}}", ["space.features.n_mel", "unknown field", "n_mels"]),
    ("featurez: {n_mels: 64}", ["space.featurez", "unknown recipe section"]),
    ("features: {n_mels: {choice: [[64]]}}", ["space.features.n_mels", "must be scalars"]),
    ("features: {n_mels: {int: [0, 128], log: true}}", ["log scale needs low > 0"]),
    ("features: {n_mels: {int: [128, 64]}}", ["low 128 is above high 64"]),
    ("features: {n_mels: {between: [64, 128]}}", ["space.features.n_mels", "dimension"]),
    # steps Optuna would refuse (or truncate) once the search runs are refused at load time
    ("detector: {choose: {dcase_ae: {epochs: {int: [10, 100], step: 0.5}}}}",
     ["space.detector.dcase_ae.epochs", "whole number >= 1, got 0.5"]),
    ("detector: {choose: {dcase_ae: {epochs: {int: [10, 100], step: 1.5}}}}",
     ["whole number >= 1, got 1.5"]),
    ("detector: {choose: {dcase_ae: {epochs: {int: [10, 100], log: true, step: 2}}}}",
     ["exactly 1 with log, got 2"]),
    ("threshold: {quantile: {float: [0.5, 0.99], log: true, step: 1}}",
     ["space.threshold.quantile", "cannot be combined with log"]),
    # a step that does not divide the range: Optuna moved high mid-run (found 2026-12-07)
    ("detector: {choose: {dcase_ae: {epochs: {int: [1, 4], step: 2}}}}",
     ["space.detector.dcase_ae.epochs", "step 2 does not divide high - low (4 - 1): high is "
      "never sampled; make it 3 or 5"]),
    ("detector: {choose: {dcase_ae: {epochs: {int: [1, 1" + "0" * 400 + "]}}}}",
     ["space.detector.dcase_ae.epochs", "int: an integer of 401 digits is not a finite number"]),
    # a space of constants alone: its reference point is still checked
    ("threshold: {quantile: 5.0}", ["its reference point gives an invalid recipe",
                                    "above the maximum"]),
    ("ensemble: {combine: bogus}", ["its reference point gives an invalid recipe", "bogus"]),
])
def test_space_errors_name_the_yaml_path(tmp_path: Path, body: str,
                                         needles: Sequence[str]) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(SpaceError) as exc:
        load_space(path)
    message = str(exc.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize(("extra", "needle"), [
    ("fidelity: {rungs: [0.5, 0.25, 1.0]}\n", "fidelity.rungs"),
    ("fidelity: {rungs: [0.25, 0.5]}\n", "ending with 1.0"),
    ("fidelity: {rungs: [1.0], reduction_factor: 1}\n", "reduction_factor"),
    ("colour: red\n", "unknown top-level key"),
    ("fidelity: {rungs: [true]}\n", "fidelity.rungs"),
])
def test_top_level_errors(tmp_path: Path, extra: str, needle: str) -> None:
    path = _write(tmp_path, "normalization: {method: {choice: [none, domain_zscore]}}",
                  extra=extra)
    with pytest.raises(SpaceError, match=needle):
        load_space(path)


def test_a_space_name_that_would_break_the_frozen_recipe_s_name_is_refused(
        tmp_path: Path) -> None:
    """The frozen recipe is named ``search_<space name>``: a name with '|' or a line break
    would be refused only when the search freezes its pick, after all its trials."""
    path = _write(tmp_path, "normalization: {method: {choice: [none, domain_zscore]}}")
    path.write_text(path.read_text().replace("name: t\n", 'name: "a|b"\n'))
    with pytest.raises(SpaceError, match=r"name: 'a\|b': one line of printable characters"):
        load_space(path)
    path.write_text(path.read_text().replace('name: "a|b"\n', 'name: "a\\nb"\n'))
    with pytest.raises(SpaceError, match="one line of printable characters"):
        load_space(path)


def test_unknown_reference_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="reference: cannot load recipe 'no_such_recipe'"):
        load_space(_write(tmp_path, "seed: 1", reference="no_such_recipe"))
    with pytest.raises(FileNotFoundError, match="shipped spaces"):
        load_space(tmp_path / "missing.yaml")


class _ToyFamily(Detector):
    """A family registered after the space code was written (stands in for a new family)."""

    name: ClassVar[str] = "toy_family_for_search_test"
    params: ClassVar[dict[str, ParamSpec]] = {
        "width": ParamSpec("int", 4, low=1, high=64),
        "mode": ParamSpec("str", "a", choices=("a", "b")),
        "backend": ParamSpec("backend", {"name": "knn", "params": {}}),
    }

    def fit(self, train: TrainSet) -> Self:
        self.fitted_ = True
        return self

    def score_samples(self, features: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        return np.zeros(len(features))

    def get_state(self) -> dict[str, NDArray[Any]]:
        return {}

    def set_state(self, state: dict[str, NDArray[Any]]) -> Self:
        return self


@pytest.fixture()
def toy_family() -> Iterator[str]:
    REGISTRY.register(_ToyFamily)
    yield _ToyFamily.name
    REGISTRY.unregister(_ToyFamily.name)


def test_new_family_joins_by_yaml_edit_only(tmp_path: Path, toy_family: str) -> None:
    path = _write(tmp_path, f"""
        detector:
          choose:
            dcase_ae: {{}}
            {toy_family}:
              width: {{int: [2, 32], log: true}}
              mode: {{choice: [a, b]}}
              backend:
                choose:
                  knn: {{k: {{int: [1, 4]}}}}
                  mahalanobis: {{}}
        """)
    space = load_space(path)
    names = {d.name for d in space.dimensions()}
    assert f"detector.{toy_family}.width" in names
    assert f"detector.{toy_family}.backend.knn.k" in names
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families = set()
    for _ in range(12):
        trial = study.ask()
        space.define_by_run(trial)
        recipe = space.to_recipe(trial.params)
        families.add(recipe.detector.name)
        if recipe.detector.name == toy_family:
            assert 2 <= recipe.detector.params["width"] <= 32
            assert recipe.detector.params["backend"]["name"] in ("knn", "mahalanobis")
        study.tell(trial, 0.5)
    assert families == {"dcase_ae", toy_family}


def test_old_baseline_key_is_read_with_a_deprecation_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    new = load_space(_write(tmp_path, "seed: 1", reference="fast_default"))
    old_path = tmp_path / "old.yaml"
    old_path.write_text(new.path.read_text().replace("reference:", "baseline:"))
    with caplog.at_level("WARNING", logger="automl_asd.search.space"):
        old = load_space(old_path)
    assert "the key 'baseline' is deprecated" in caplog.text and "'reference'" in caplog.text
    assert old.reference_name == "fast_default" and old.reference_official is None
    assert old.reference_point() == new.reference_point()
    # the space sets seed 1 (fast_default has another): its first point is not the recipe
    assert old.describe_reference() == new.describe_reference() == (
        "reference point (`fast_default` as this space sets it: not the recipe itself)")
    both = tmp_path / "both.yaml"
    both.write_text(new.path.read_text() + "baseline: fast_default\n")
    with pytest.raises(SpaceError, match="both 'reference' and its old name 'baseline'"):
        load_space(both)


def test_shipped_spaces_name_their_reference_recipe() -> None:
    expected = {"default": "baseline_ae_mse", "demo": "fast_default", "margin": "margin_default",
                "smoke": "fast_default"}
    for name, ref in expected.items():
        space = load_space(name)
        assert space.reference_name == ref
        assert (space.reference_official is not None) == (ref == "baseline_ae_mse")
        assert not any(ln.startswith("baseline:") for ln in space.path.read_text().splitlines())


def test_yaml_mistakes_are_one_line_naming_the_place(tmp_path: Path) -> None:
    """Found by a review (2026-12-06): a key given twice kept the last one silently (a searched
    dimension overridden by a constant: the search ran identical trials), and a tab gave five
    lines quoting "<byte string>"."""
    path = _write(tmp_path, "normalization: {method: {choice: [none, domain_zscore]}}\n"
                            "normalization: {method: none}")
    with pytest.raises(SpaceError, match=r"line 5, column 3: duplicate key .normalization.; "
                                         "give each key once"):
        load_space(path)
    # YAML merge keys stay allowed, with keys beside them overriding (review, 2026-12-06)
    merged = _write(tmp_path, "features: {<<: {n_mels: {choice: [64, 128]}, n_fft: 1024}, "
                              "n_fft: 2048}", reference="fast_default")
    space = load_space(merged)
    assert [d.name for d in space.dimensions()] == ["features.n_mels"]
    assert space.to_recipe(space.reference_point(), name="m").features.n_fft == 2048
    path.write_text("name: t\nreference: fast_default\nspace:\n\tfeatures: {}\n")
    with pytest.raises(SpaceError) as exc:
        load_space(path)
    assert "\n" not in str(exc.value) and "line 4, column 1" in str(exc.value)


def test_a_reference_recipe_file_is_found_beside_the_space(tmp_path: Path,
                                                            monkeypatch: Any) -> None:
    """Found by a review (2026-12-06): `reference: myref.json` was read from the current
    folder, so the same space failed when run from elsewhere."""
    from automl_asd.recipe import load_recipe

    sub = tmp_path / "spaces"
    sub.mkdir()
    (sub / "myref.json").write_text(load_recipe("fast_default").to_json())
    path = _write(sub, "normalization: {method: {choice: [none, domain_zscore]}}",
                  reference="myref.json")
    monkeypatch.chdir(tmp_path)
    space = load_space(path)
    assert space.reference_point() is not None
    # demo applies the recipe itself for comparison: found from anywhere, described as such
    assert space.reference_recipe().content_hash() == load_recipe("fast_default").content_hash()
    assert space.describe_reference_recipe() == (
        "reference recipe `myref.json` (not the official DCASE baseline)")


def test_a_space_that_changes_its_reference_does_not_claim_it(tmp_path: Path) -> None:
    """Found by a review (2026-12-06): a space that set its own n_mels and epochs still called
    its first trial "reference recipe `baseline_ae_mse` (the official DCASE baseline)"."""
    exact = load_space(_write(tmp_path, "normalization: {method: {choice: [none, "
                                        "domain_zscore]}}"))
    assert exact.describe_reference() == (
        "reference recipe `baseline_ae_mse` (the official DCASE baseline)")
    changed = load_space(_write(tmp_path, "features: {n_mels: 64}"))
    assert not changed.reference_is_exact()
    assert changed.describe_reference() == (
        "reference point (`baseline_ae_mse` as this space sets it: not the recipe itself)")


def test_a_fixed_component_keeps_the_reference_values_it_does_not_set(tmp_path: Path) -> None:
    """Found by a review (2026-12-06): `detector: {fixed: {name: pooled_stats, params:
    {pooling: ...}}}` over fast_default dropped its kNN backend settings for the registry's
    (cosine instead of euclidean: Ω 0.48 against 0.67), unlike `choose:`."""
    from automl_asd.recipe import load_recipe

    ref = load_recipe("fast_default")
    pooling = ref.detector.params["pooling"]
    space = load_space(_write(tmp_path, f"detector: {{fixed: {{name: pooled_stats, params: "
                                        f"{{pooling: {pooling}}}}}}}", reference="fast_default"))
    point = space.to_recipe(space.reference_point(), name="p")
    assert point.detector == ref.detector
    assert space.reference_is_exact()


def test_the_space_counts_its_points(tmp_path: Path) -> None:
    # smoke: pooled_stats (2 poolings x k 1..3 x 2 metrics) + dcase_ae (fixed), x 2 normalisations
    assert load_space("smoke").n_points() == (2 * 3 * 2 + 1) * 2
    assert load_space("demo").n_points() is None  # a float dimension without a step
    one = tmp_path / "one.yaml"
    one.write_text("name: one\nreference: fast_default\nspace:\n  features:\n    n_mels: 64\n")
    assert load_space(one).n_points() == 1
    stepped = tmp_path / "stepped.yaml"
    stepped.write_text("name: stepped\nreference: fast_default\nspace:\n  threshold:\n"
                       "    quantile: {float: [0.8, 0.95], step: 0.05}\n"
                       "  seed: {int: [13708, 13717], step: 3}\n")
    assert load_space(stepped).n_points() == 4 * 4
    # ... and lists them, walking the conditional structure trials sample
    points = load_space(stepped).points()
    assert points is not None and len(points) == 16
    assert sorted({round(p["threshold.quantile"], 9) for p in points}) == [0.8, 0.85, 0.9,
                                                                         0.95]
    assert sorted({p["seed"] for p in points}) == [13708, 13711, 13714, 13717]
    smoke = load_space("smoke").points()
    assert smoke is not None and len(smoke) == 26
    assert len({tuple(sorted(p.items())) for p in smoke}) == 26
    ae = [p for p in smoke if p["detector.name"] == "dcase_ae"]
    assert len(ae) == 2 and all(set(p) == {"detector.name", "normalization.method"} for p in ae)
    assert load_space("demo").points() is None and load_space("smoke").points(limit=25) is None


def test_the_module_docstring_example_is_a_valid_space(tmp_path: Path) -> None:
    """Found 2026-12-07 (docs/help probe): the example in ``automl_asd.search.space``'s
    docstring named a detector family ``pooled_knn``, which no longer exists
    (``pooled_stats``); the example must load as written, and its dimension names too."""
    import automl_asd.search.space as space_module

    doc = space_module.__doc__ or ""
    example = textwrap.dedent(doc.split("::\n\n", 1)[1].split("\n\n", 1)[0])
    (tmp_path / "example.yaml").write_text(example)
    space = load_space(tmp_path / "example.yaml")
    names = {d.name for d in space.dimensions()}
    for quoted in ("detector.name", "detector.dcase_ae.epochs",
                   "detector.pooled_stats.backend.name", "detector.pooled_stats.backend.knn.k"):
        assert quoted in doc and quoted in names, (quoted, sorted(names))


def test_a_checkout_uses_its_own_spaces_before_an_installed_mapping(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-07 (docs/help probe): a clone run with PYTHONPATH, beside an editable
    install of another checkout, loaded that checkout's spaces (`search --help`: "in
    /work/main/search_spaces"); the editable finder answers for ``automl_asd.search_spaces``
    whichever ``automl_asd`` was imported. The folder next to the package comes first."""
    import automl_asd.search.space as space_module

    elsewhere = tmp_path / "other_checkout" / "search_spaces"
    elsewhere.mkdir(parents=True)
    monkeypatch.setattr(space_module.resources, "files", lambda _name: elsewhere)
    assert space_module._shipped_spaces_dir() == REPO_ROOT / "search_spaces"
    assert SHIPPED_SPACES_DIR == REPO_ROOT / "search_spaces"
    # a wheel install: root is site-packages, where a search_spaces/ is not ours (review)
    site = tmp_path / "site-packages"
    (site / "search_spaces").mkdir(parents=True)
    assert space_module._shipped_spaces_dir(
        str(site / "automl_asd" / "search" / "space.py")) == elsewhere
