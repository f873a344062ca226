"""search.budget: the reference's time cap and stop rule (also inside the trainable), the cost
model behind the pre-search estimates (hand-computed from given fit timings), the budget
warnings and what they write to ``search.json``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from automl_asd.evaluation.metrics import MachineMetrics, floored_hmean
from automl_asd.evaluation.objective import ObjectiveResult
from automl_asd.recipe import Recipe, load_recipe
from automl_asd.search import budget
from automl_asd.search.space import load_space


def _network(epochs: int = 10, size: int = 1) -> Recipe:
    recipe = load_recipe("baseline_ae_mse")
    params = {**recipe.detector.params, "epochs": epochs}
    return recipe.replace(detector={"name": recipe.detector.name, "params": params},
                          ensemble={"size": size, "combine": "mean_z"})


def test_reference_cap_is_half_the_budget() -> None:
    assert budget.reference_cap(None) is None
    assert budget.reference_cap(600) == pytest.approx(300.0)


@pytest.mark.parametrize(("cap", "elapsed", "network", "stops"), [
    (None, 1e9, False, False),  # no budget: never stops
    (50.0, 10.0, False, False),  # 10 s at 0.1 -> 30 s at 0.3: ends at 40 s <= 50
    (35.0, 10.0, False, True),  # ... ends at 40 s > 35
    (50.0, 10.0, True, True),  # a network also trains 3x the epochs: 90 s more
    (100.0, 10.0, True, False),  # 10 + 90 <= 100
])
def test_reference_stops_before_a_rung_projected_past_its_cap(
    cap: float | None, elapsed: float, network: bool, stops: bool,
) -> None:
    recipe = _network() if network else load_recipe("fast_default")
    assert budget.reference_stops(cap, elapsed, (0.1, 10.0), 0.3, recipe) is stops


def test_a_reference_s_start_up_seconds_are_not_projected_past_its_estimate() -> None:
    """Found 2026-12-07: a pooled reference estimated at ~0 s took 4 s at rung 0.5 (the
    worker's start-up), was projected at 8 s more against a 6 s cap and never reached full
    fidelity; a worse trial was frozen. The estimate bounds the projection (2x margin)."""
    recipe = load_recipe("fast_default")
    assert budget.reference_stops(6.0, 4.0, (0.5, 4.0), 1.0, recipe) is True
    assert budget.reference_stops(6.0, 4.0, (0.5, 4.0), 1.0, recipe, 0.3) is False
    # an estimate that is itself past the cap still stops it; a bad one is ignored
    assert budget.reference_stops(6.0, 4.0, (0.5, 4.0), 1.0, recipe, 1.5) is True
    assert budget.reference_stops(6.0, 4.0, (0.5, 4.0), 1.0, recipe, float("nan")) is True
    # the measured projection stays when it is the smaller one
    assert budget.reference_stops(6.0, 4.0, (0.5, 0.5), 1.0, recipe, 50.0) is False


def test_units_are_clips_times_epochs_times_members() -> None:
    assert budget._units(load_recipe("fast_default"), 200, 0.5) == pytest.approx(100.0)
    # 30 epochs at fidelity 0.3 train round(9) epochs on 30 % of the clips, 3 members
    assert budget._units(_network(epochs=30, size=3), 200, 0.3) == pytest.approx(
        200 * 0.3 * 9 * 3)
    assert budget._units(_network(epochs=2), 100, 0.1) == pytest.approx(100 * 0.1 * 1)


def test_trial_objective_follows_the_space_rule() -> None:
    per_type = {("fan", "00"): MachineMetrics(0.9, 0.7, 0.6, 0.0),
                ("pump", "00"): MachineMetrics(0.6, 0.5, 0.55, 0.0)}
    result = ObjectiveResult(omega=0.61, per_type=per_type, fidelity=1.0, wall_s=0.0)
    assert budget.trial_objective("mean", result) == pytest.approx(0.61)
    fan, pump = floored_hmean([0.9, 0.7, 0.6]), floored_hmean([0.6, 0.5, 0.55])
    assert budget.trial_objective("worst_type", result) == pytest.approx(min(fan, pump))
    assert budget.trial_objective("leave_one_type_out", result) == pytest.approx(
        (fan + pump) / 2)


def test_random_points_are_repeatable_valid_and_cover_the_families() -> None:
    space = load_space("default")
    points = budget.random_points(space, 24, seed=3)
    assert points == budget.random_points(space, 24, seed=3)
    assert points != budget.random_points(space, 24, seed=4)
    families = {space.to_recipe(p, name="p").detector.name for p in points}
    assert len(families) >= 3, families


@pytest.mark.parametrize("network", [False, True])
def test_family_constants_separate_per_type_and_per_unit_cost(
    monkeypatch: pytest.MonkeyPatch, network: bool,
) -> None:
    # Fake fits: 0.5 s per type + 0.01 s per unit (clip or clip-epoch); the first fit is cold
    # (30 s: features, library start-up) and must not bias either constant.
    calls: list[tuple[int, int]] = []

    def fit(recipe: Recipe, machine: Any, cache_dir: Any, device: str, epochs: int,
            clips: int = budget._TINY_CLIPS) -> tuple[float, float]:
        calls.append((epochs, clips))
        units = clips * (epochs if network else 1)
        return (30.0 if len(calls) == 1 else 0.5 + 0.01 * units), float(units)

    monkeypatch.setattr(budget, "_tiny_fit_seconds", fit)
    recipe = _network() if network else load_recipe("fast_default")
    machine = SimpleNamespace(machine_type="fan", train=[None] * 200)
    per_type, per_unit = budget._family_constants(recipe, machine, None, "cpu")  # type: ignore[arg-type]
    assert per_type == pytest.approx(0.5) and per_unit == pytest.approx(0.01)
    assert calls == ([(1, 32), (1, 32), (3, 32)] if network else [(1, 32), (1, 32), (1, 96)])
    calls.clear()
    few = SimpleNamespace(machine_type="fan", train=[None] * 40)  # too few for two sizes
    if not network:
        assert budget._family_constants(recipe, few, None, "cpu") == (  # type: ignore[arg-type]
            pytest.approx(0.5 + 0.01 * 32), 0.0)


def test_tiny_network_fits_train_the_epochs_they_are_timed_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A trial at fidelity f trains max(1, round(f x epochs)) epochs; the tiny fit (32 of 200
    # clips, f = 0.16) must still train 1 and 3 epochs, or both sizes are one epoch and the
    # per-epoch cost cannot be measured.
    trained: list[int] = []

    def evaluate(recipe: Recipe, machines: Any, *, fidelity: float, **kwargs: Any) -> None:
        from automl_asd.representation_cache import at_fidelity

        trained.append(at_fidelity(recipe, fidelity).detector.params["epochs"])

    monkeypatch.setattr(budget, "evaluate_recipe", evaluate)
    machine = SimpleNamespace(machine_type="fan", train=[None] * 200)
    units = [budget._tiny_fit_seconds(_network(), machine, None, "cpu", e)[1]  # type: ignore[arg-type]
             for e in (1, 3)]
    assert trained == [1, 3]
    assert units == [pytest.approx(32.0), pytest.approx(96.0)]
    # 32 of 20000 clips would need 1875 epochs for 3: above margin_cnn's limit of 500, so the
    # fit asks for 500 (0.5 epochs -> 1 trained) and counts the units it trains
    trained.clear()
    margin = load_recipe("margin_knn")
    huge = SimpleNamespace(machine_type="fan", train=[None] * 20000)
    _, u = budget._tiny_fit_seconds(margin, huge, None, "cpu", 3)  # type: ignore[arg-type]
    assert trained == [1] and u == pytest.approx(32.0)


def _consts(recipe: Recipe) -> tuple[float, float]:
    """Fake timed constants that differ from point to point (per type, per unit)."""
    h = int(recipe.behaviour_hash()[:6], 16)
    return 1.0 + h % 7, (0.001 * (h % 5)) if "epochs" in recipe.detector.params else 0.0


def test_estimate_costs_follows_the_cost_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given timed constants, the estimate is: types x seconds-per-type x members +
    # seconds-per-unit x units, summed over ASHA's rungs weighted 1 / eta**i; a timed point
    # uses its own constants, the others their family's mean.
    space = load_space("default")
    timed: list[tuple[Recipe, str, bool]] = []
    clock = [0.0]  # each timing takes 1 s: the extra points get as long as the first ones
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def fake_constants(recipe: Recipe, machine: Any, cache_dir: Any, device: str, *,
                       warm_up: bool = True) -> tuple[float, float]:
        clock[0] += 1.0
        timed.append((recipe, machine.machine_type, warm_up))
        return _consts(recipe)

    monkeypatch.setattr(budget, "_family_constants", fake_constants)
    machines = {mt: SimpleNamespace(machine_type=mt, train=[None] * 50, clips=[None] * 80)
                for mt in ("fan", "pump", "valve")}
    extracted: list[Any] = []

    def extract_time(spec: Any, machine: Any) -> float:
        extracted.append((spec, machine.machine_type))
        return 0.01

    monkeypatch.setattr(budget, "_extract_seconds_per_clip", extract_time)
    est = budget.estimate_costs(space, machines, seed=0,  # type: ignore[arg-type]
                                time_budget_s=1e6)
    assert {mt for _, mt, _ in timed} == {"fan"}  # timed on the first type only
    hashes = [r.behaviour_hash() for r, _, _ in timed]
    assert len(hashes) == len(set(hashes))  # distinct recipes
    families = [r.detector.name for r, _, _ in timed]
    assert all(families.count(f) <= budget._POINTS_PER_FAMILY for f in families)
    recipes = [space.to_recipe(p, name="e")
               for p in budget.random_points(space, budget._N_POINTS, 0)]
    assert set(families) == {r.detector.name for r in recipes}  # every family timed
    assert len(timed) > len(set(families))  # and some more than once
    assert est["timed_points"] == {f: families.count(f) for f in set(families)}
    # a warm-up fit only for the first point of each (feature spec, family)
    keys = [(r.features, r.detector.name) for r, _, _ in timed]
    assert [w for _, _, w in timed] == [k not in keys[:i] for i, k in enumerate(keys)]
    assert est["train_clips"] == 150
    reference = space.to_recipe(space.reference_point(), name="r")
    per_type, per_unit = _consts(reference)
    assert est["reference_family"] == reference.detector.name
    assert est["reference_s"] == pytest.approx(3 * per_type * reference.ensemble.size
                                               + per_unit * budget._units(reference, 150, 1.0))
    own = {r.behaviour_hash(): _consts(r) for r, _, _ in timed}

    def unit(r: Recipe) -> np.ndarray:  # a timed point's constants at cost scale 1
        return np.asarray(_consts(r)) / budget.cost_scale(r)

    mean = {f: tuple(np.mean([unit(r) for r, _, _ in timed if r.detector.name == f],
                             axis=0)) for f in set(families)}
    classes = {budget.cost_class(r) for r, _, _ in timed}
    class_mean = {k: tuple(np.mean([unit(r) for r, _, _ in timed
                                    if budget.cost_class(r) == k], axis=0)) for k in classes}
    assert est["timed_classes"] == {f: sum(1 for k in classes if k[0] == f)
                                    for f in set(families)}
    rungs, eta = list(space.fidelity.rungs), float(space.fidelity.reduction_factor)

    def expected(r: Recipe) -> float:
        if r.behaviour_hash() in own:
            a, b = own[r.behaviour_hash()]
        else:
            a, b = np.asarray(class_mean.get(budget.cost_class(r), mean[r.detector.name])
                              ) * budget.cost_scale(r)
        # ASHA (max_t 3, rf 3) cuts at iteration 1 only: shares 1, 1/3, 1/3 of the trials
        shares = {3: [1.0, 1 / 3, 1 / 3], 2: [1.0, 1 / 3]}[len(rungs)]
        assert eta == 3.0
        return sum((3 * a * r.ensemble.size + b * budget._units(r, 150, f)) * share
                   for f, share in zip(rungs, shares, strict=True))

    # feature extraction: timed once (reference spec, first type); the first point with each
    # spec the reference does not use pays 0.01 s x 240 clips, later points with it nothing
    assert extracted == [(reference.features, "fan")]
    assert est["new_spec_s"] == pytest.approx(2.4)
    new = {r.features for r in recipes} - {reference.features}
    assert est["new_specs"] == len(new) >= 2
    assert sum(r.features in new for r in recipes) > len(new)  # some spec recurs: paid once
    first = [i for i, r in enumerate(recipes)
             if r.features in new and r.features not in {q.features for q in recipes[:i]}]
    assert est["mean_trial_s"] == pytest.approx(
        (sum(expected(r) for r in recipes) + 2.4 * len(first)) / len(recipes))
    assert set(est["family_trial_s"]) == {r.detector.name for r in recipes}


def test_extra_points_stop_when_their_allowance_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each timing takes 20 s of a fake clock: after the first point of every family (100 s and
    # more), extra points are started until 30 s have gone by -- two of them (a 10,000 s
    # budget allows 200 s).
    clock = [0.0]
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def slow(recipe: Recipe, *args: Any, **kwargs: Any) -> tuple[float, float]:
        clock[0] += 20.0
        return 1.0, 0.0

    monkeypatch.setattr(budget, "_family_constants", slow)
    space = load_space("default")
    machines = {"fan": SimpleNamespace(machine_type="fan", train=[None] * 50, clips=[])}
    est = budget.estimate_costs(space, machines, seed=0,  # type: ignore[arg-type]
                                time_budget_s=10_000.0)
    reference = space.to_recipe(space.reference_point(), name="r")
    recipes = [space.to_recipe(p, name="e")
               for p in budget.random_points(space, budget._N_POINTS, 0)]
    n_families = len({r.detector.name for r in [reference, *recipes]})
    assert sum(est["timed_points"].values()) == n_families + 2
    # without a budget there is nothing for extra points to sharpen: none
    # without a budget they may take as long as the first points did, 30 s at most: two
    est = budget.estimate_costs(space, machines, seed=0)  # type: ignore[arg-type]
    assert sum(est["timed_points"].values()) == n_families + 2
    # with a 1000 s budget the extra points may take 2 % of it: 20 s, one point
    est = budget.estimate_costs(space, machines, seed=0,  # type: ignore[arg-type]
                                time_budget_s=1000.0)
    assert sum(est["timed_points"].values()) == n_families + 1


def test_extra_points_go_first_to_cost_classes_no_timed_point_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In the demo space a hedge with a frame-level member costs far more than one without. The
    # extra points time a point of every uncovered class before a second point of any class
    # (most sampled classes first), and each untimed point is costed by its class's mean: the
    # average trial sees the costly class even when the family's first timed point was cheap.
    space = load_space("demo")
    frame = "mahalanobis_logz+frame_gaussian_logz"

    def consts(recipe: Recipe, *args: Any, **kwargs: Any) -> tuple[float, float]:
        costly = recipe.detector.params.get("backends") == frame
        return (100.0 if costly else 1.0), 0.0

    timed: list[Recipe] = []
    # the extra points' allowance is measured time: a clock each timing advances by 1 s keeps
    # the test off the machine's load (it failed about 1 run in 8 on a loaded machine)
    clock = [0.0]

    def fake(recipe: Recipe, *args: Any, **kwargs: Any) -> tuple[float, float]:
        timed.append(recipe)
        clock[0] += 1.0
        return consts(recipe)

    monkeypatch.setattr(budget, "_family_constants", fake)
    monkeypatch.setattr(budget, "_extract_seconds_per_clip", lambda spec, m: 0.0)
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    machines = {"fan": SimpleNamespace(machine_type="fan", train=[None] * 50, clips=[])}
    est = budget.estimate_costs(space, machines, seed=0,  # type: ignore[arg-type]
                                time_budget_s=1e6)
    recipes = [space.to_recipe(p, name="e")
               for p in budget.random_points(space, budget._N_POINTS, 0)]
    classes = [budget.cost_class(r) for r in recipes]
    by_family: dict[str, list[tuple[str, ...]]] = {}
    for r in timed[1:]:  # after the reference
        by_family.setdefault(r.detector.name, []).append(budget.cost_class(r))
    for family, seen in by_family.items():
        n_classes = len({k for k in classes if k[0] == family})
        # distinct classes until every class of the family is covered or the cap is reached
        assert len(set(seen)) == min(len(seen), n_classes), (family, seen)
    assert ("hedge", f"backends={frame}") in {budget.cost_class(r) for r in timed}
    assert est["timed_classes"]["hedge"] == len(set(by_family["hedge"]))
    rungs, eta = list(space.fidelity.rungs), float(space.fidelity.reduction_factor)

    def per_type(r: Recipe) -> float:  # its class's cost, else its family's mean, x its scale
        if r.behaviour_hash() in {q.behaviour_hash() for q in timed}:
            return consts(r)[0]
        same = [q for q in timed if budget.cost_class(q) == budget.cost_class(r)] or [
            q for q in timed if q.detector.name == r.detector.name]
        return float(np.mean([consts(q)[0] / budget.cost_scale(q) for q in same])
                     ) * budget.cost_scale(r)

    want = [sum(per_type(r) * r.ensemble.size / eta**i for i in range(len(rungs)))
            for r in recipes]
    assert est["mean_trial_s"] == pytest.approx(float(np.mean(want)))
    assert budget.cost_class(space.to_recipe(space.reference_point(), name="r")) == (
        "pooled_stats", "backend=knn")


def test_a_failing_family_estimate_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    space = load_space("demo")

    def boom(recipe: Recipe, *args: Any, **kwargs: Any) -> tuple[float, float]:
        raise RuntimeError("no such device")

    monkeypatch.setattr(budget, "_family_constants", boom)
    machines = {"fan": SimpleNamespace(machine_type="fan", train=[None] * 10, clips=[])}
    est = budget.estimate_costs(space, machines)  # type: ignore[arg-type]
    assert math.isnan(est["reference_s"]) and math.isnan(est["mean_trial_s"])
    with pytest.raises(ValueError, match="no machine types"):
        budget.estimate_costs(space, {})


@dataclass
class _Cfg:
    space: Any
    time_budget_s: float | None
    max_concurrent: int = 2
    trials: int = 40
    cpus_per_trial: float = 1.0
    cache_dir: Path | None = None
    device: str = "cpu"
    seed: int = 0


@pytest.mark.parametrize(("budget_s", "warned"), [
    (None, []),
    (10_000.0, []),
    (500.0, ["cannot finish the reference"]),  # reference ~800 s
    (1_000.0, ["cannot finish the reference"]),  # it may use half the budget: 500 s
    (300.0, ["cannot finish the reference", "cannot finish TPE's 10 random start-up"]),
])
def test_budget_check_warns_and_records_the_estimate(
    tmp_path: Path, budget_s: float | None, warned: list[str],
) -> None:
    # startup: 10 trials x 70 s / 2 slots = 350 s
    est = {"reference_s": 800.0, "reference_family": "dcase_ae", "mean_trial_s": 70.0,
           "family_trial_s": {"dcase_ae": 120.0, "pooled_stats": 20.0}}
    calls: list[dict[str, Any]] = []

    def estimate(space: Any, machines: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return dict(est)

    cfg = _Cfg(load_space("demo"), budget_s)
    warnings = budget.budget_check(cfg, {}, tmp_path, estimate=estimate)
    assert len(warnings) == len(warned)
    for w, expected in zip(warnings, warned, strict=True):
        assert expected in w
    assert calls[0]["device"] == "cpu" and calls[0]["seed"] == 0
    assert calls[0]["time_budget_s"] == budget_s
    saved = json.loads((tmp_path / "search.json").read_text())["estimates"]
    assert saved["reference_s"] == 800.0 and saved["warnings"] == warnings
    assert saved["estimate_s"] >= 0.0

    # a resume uses the estimate the search started with (it measured 5-10 s of fits each
    # time), with the warnings of the budget it is given now
    again = budget.budget_check(_Cfg(load_space("demo"), 300.0), {}, tmp_path,
                                estimate=estimate, measured=saved)
    assert len(calls) == 1 and len(again) == 2
    resaved = json.loads((tmp_path / "search.json").read_text())["estimates"]
    assert resaved == {**saved, "warnings": again}
    budget.budget_check(cfg, {}, tmp_path, estimate=estimate, measured={"reference_s": 1.0})
    assert len(calls) == 2  # an estimate without every figure (an older version's): measured
    # a resume counts only the start-up trials still to make (found by a probe: it warned
    # about all 10 on a resume with 3 trials left): 3 x 70 s / 2 slots = 105 s
    tight = _Cfg(load_space("demo"), 120.0)
    assert not any("TPE" in w for w in budget.budget_check(tight, {}, tmp_path,
                                                           measured=saved, made=7))
    [tpe] = [w for w in budget.budget_check(_Cfg(load_space("demo"), 100.0), {}, tmp_path,
                                            measured=saved, made=7) if "TPE" in w]
    assert "TPE's 3 remaining random start-up trials" in tpe
    assert not any("TPE" in w for w in budget.budget_check(tight, {}, tmp_path,
                                                           measured=saved, made=12))
    # nor about a reference that already finished (found by the same probe)
    assert budget.budget_check(_Cfg(load_space("demo"), 0.3), {}, tmp_path, measured=saved,
                               made=12, reference_done=True) == []
    [ref] = budget.budget_check(_Cfg(load_space("demo"), 0.3), {}, tmp_path, measured=saved,
                                made=12)
    assert ref.startswith("the time budget (0.3 s) cannot finish the reference")
    # the cores bound the trials at once, not --max-concurrent (found by a probe
    # 2026-12-07): 3 x 70 s on 1 slot = 210 s; raising --max-concurrent would not help
    many = _Cfg(load_space("demo"), 150.0, max_concurrent=8)
    assert not any("TPE" in w for w in budget.budget_check(many, {}, tmp_path,
                                                           measured=saved, made=7))
    [tpe] = [w for w in budget.budget_check(many, {}, tmp_path, measured=saved, made=7,
                                            cluster_cpus=1.0) if "TPE" in w]
    assert "(~210 s with 1 at once)" in tpe and tpe.endswith("or add CPUs (a cluster)")


def test_the_reference_trial_stops_at_its_cap_and_otherwise_reports_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Inside the trainable: a reference trial without a cap skips the cheap rungs; with one it
    # climbs them and stops before a rung projected past the cap (fake clock: a rung at
    # fidelity f takes 100 f seconds).
    from ray import tune

    from automl_asd.orchestration import tune as tune_layer

    clock = [0.0]
    monkeypatch.setattr(tune_layer, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    monkeypatch.setattr(tune_layer, "node_where", lambda: {"node_id": "n", "host": "h", "pid": 1})

    def evaluator(recipe: Recipe, machines: Any, *, fidelity: float = 1.0,
                  **kwargs: Any) -> ObjectiveResult:
        clock[0] += 100.0 * fidelity
        m = MachineMetrics(0.6, 0.6, 0.6, 0.6)
        return ObjectiveResult(omega=0.6, per_type={("fan", "00"): m}, fidelity=fidelity,
                               wall_s=100.0 * fidelity)

    space = load_space("smoke")  # rungs 0.5, 1.0
    ref = space.reference_point()

    def run(cap: float | None) -> list[float]:
        reports.clear()
        ctx = tune_layer._TrialContext(space=space, reference_point=ref, machines={},
                                       cache_dir=None, device="cpu", evaluator=evaluator,
                                       reference_cap_s=cap)
        tune_layer._trainable(dict(ref), ctx)
        return [r["fidelity"] for r in reports]

    assert run(None) == [1.0]  # no budget: one report, at full fidelity
    assert run(200.0) == [0.5, 1.0]  # 50 s, then 100 s more: 150 <= 200
    assert run(120.0) == [0.5]  # 50 + 100 > 120: stops before full fidelity
    assert all(r["is_reference"] == 1 for r in reports)


def test_a_rung_saved_after_tune_s_last_record_is_reported_again_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by a probe (2026-12-07): a rung that finished while Tune was ending a run the
    time budget stopped was saved in the trial's folder after Tune's last record of the
    run; the resumed trial ran it again, so a trial longer than the budget restarted at
    every `--resume`. The trainable now reports that rung from its saved metrics and goes on
    from the next one."""
    from ray import tune

    from automl_asd.orchestration import tune as tune_layer

    reports: list[tuple[dict[str, Any], list[str]]] = []

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        with checkpoint.as_directory() as folder:
            reports.append((dict(metrics), sorted(p.name for p in Path(folder).iterdir())))

    trial_dir = tmp_path / "trial"
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune, "report", report)
    storage = SimpleNamespace(storage_filesystem=SimpleNamespace(type_name="local"),
                              trial_fs_path=str(trial_dir))
    monkeypatch.setattr(tune, "get_context",
                        lambda: SimpleNamespace(get_storage=lambda: storage))
    monkeypatch.setattr(tune_layer, "node_where", lambda: {"node_id": "n", "host": "h", "pid": 1})
    calls: list[float] = []

    def evaluator(recipe: Recipe, machines: Any, *, fidelity: float = 1.0,
                  **kwargs: Any) -> ObjectiveResult:
        calls.append(fidelity)
        m = MachineMetrics(0.6, 0.6, 0.6, 0.6)
        return ObjectiveResult(omega=0.6 + fidelity / 10, per_type={("fan", "00"): m},
                               fidelity=fidelity, wall_s=1.0)

    space = load_space("smoke")  # rungs 0.5, 1.0
    point = {**space.reference_point()}
    point["detector.pooled_stats.backend.knn.k"] = 3  # not the reference
    ctx = tune_layer._TrialContext(space=space, reference_point=space.reference_point(),
                                   machines={}, cache_dir=None, device="cpu",
                                   evaluator=evaluator, reference_cap_s=None)
    tune_layer._trainable(dict(point), ctx)  # a run Tune records: no folder to find
    assert calls == [0.5, 1.0] and [r["fidelity"] for r, _ in reports] == [0.5, 1.0]

    # what the worker saved for rung 1 while Tune was ending the run (Tune restores nothing)
    saved = trial_dir / "checkpoint_000000"
    saved.mkdir(parents=True)
    first = reports[0][0]
    (saved / "rung.json").write_text(json.dumps({"next": 1, "cache": {}, "metrics": first}))
    (trial_dir / "checkpoint_000001").mkdir()  # a folder without a rung: ignored
    reports.clear()
    calls.clear()
    tune_layer._trainable(dict(point), ctx)
    assert calls == [1.0]  # only the missing rung ran
    assert [r for r, _ in reports] == [first, reports[1][0]]
    assert reports[0][1] == ["rung.json"] and reports[1][0]["fidelity"] == 1.0
    assert reports[1][0]["rung"] == 2
    assert (saved / "rung.json").is_file()  # reported from a copy: the folder stays as it was

    # the last rung saved so (the reference without a cap reports only that one): reported
    # again, and nothing left to run
    last = reports[1][0]
    (saved / "rung.json").write_text(json.dumps({"next": 2, "cache": {}, "metrics": last}))
    for trial_point in (point, dict(space.reference_point())):
        reports.clear()
        calls.clear()
        tune_layer._trainable(dict(trial_point), ctx)
        assert calls == [] and [r for r, _ in reports] == [last]


def test_extraction_is_timed_cold_in_a_throwaway_cache(
    tiny_dev_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from automl_asd.data import scan

    machine = next(iter(scan(tiny_dev_root).values()))
    spec = load_recipe("fast_default").features
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    per_clip = budget._extract_seconds_per_clip(spec, machine)
    assert 0.0 < per_clip < 5.0
    assert list(tmp_path.iterdir()) == []  # the throw-away cache is gone
    empty = SimpleNamespace(machine_type="x", clips=())
    assert budget._extract_seconds_per_clip(spec, empty) == 0.0  # type: ignore[arg-type]


def test_the_report_says_how_much_extraction_the_estimate_counts() -> None:
    import pandas as pd

    from automl_asd.io import search_report

    est = {"reference_family": "pooled_stats", "reference_s": 12.0, "mean_trial_s": 30.0,
           "family_trial_s": {"pooled_stats": 30.0}, "estimate_s": 2.0, "warnings": []}
    lines = search_report._extra_sections(pd.DataFrame(), {"estimates": {
        **est, "new_specs": 3, "new_spec_s": 16.4}})
    text = "\n".join(lines)
    assert "average trial ~30 s" in text
    assert "extraction of 3 new feature specs among the sampled points (~16 s each" in text
    one = "\n".join(search_report._extra_sections(pd.DataFrame(), {"estimates": {
        **est, "new_specs": 1, "new_spec_s": 8.0}}))
    assert "extraction of 1 new feature spec among the sampled points (~8 s each" in one
    without = "\n".join(search_report._extra_sections(pd.DataFrame(), {"estimates": est}))
    assert "average trial ~30 s" in without and "feature specs" not in without


def test_the_report_sets_the_estimate_beside_the_measured_start_up() -> None:
    """The average trial the estimate gives is over random points: TPE's start-up. The report
    measures that phase apart from the TPE-guided trials after it, per trial in creation order
    (in the main job at 8d81235: 22 s per start-up trial against an estimate of 9 s)."""
    import pandas as pd

    from automl_asd.io import search_report

    fam = "param:detector.name"
    rows = [{"order": 0, "status": "complete", "wall_s": 2.0, "is_reference": True,
             fam: "pooled_stats"}]
    # start-up: eight 3 s trials and one 48 s hedge (mean 8, median 3); later: 26 s each
    rows += [{"order": i, "status": "stopped_early" if i % 2 else "complete",
              "wall_s": (48.0 if i == 4 else 3.0) if i <= 9 else 26.0, "is_reference": False,
              fam: "hedge" if i == 4 else "pooled_stats"} for i in range(1, 15)]
    rows += [{"order": 15, "status": "running", "wall_s": 500.0, "is_reference": False,
              fam: "hedge"}]
    table = pd.DataFrame(rows)
    est = {"reference_family": "pooled_stats", "reference_s": 2.0, "mean_trial_s": 7.0,
           "family_trial_s": {"hedge": 10.0}, "estimate_s": 4.8, "warnings": [],
           "tpe_startup": 10}
    text = "\n".join(search_report._extra_sections(table, {"estimates": est}))
    assert ("Measured: the 9 trials of TPE's random start-up after the reference averaged "
            "8 s (what the average above estimates; median 3 s, slowest 48 s (hedge): one "
            "timed point per family misses a family's costly settings); the 5 later trials "
            "26 s") in text
    # A search.json with the estimate's cost-class coverage says what its points covered.
    for uncovered, said in ((3, "its timed points covered 7 of the 10 cost classes sampled, "
                                "the others were costed at their family's mean)"),
                            (0, "its timed points covered all 10 cost classes sampled)")):
        covered = {**est, "sampled_classes": 10, "uncovered_classes": uncovered}
        text = "\n".join(search_report._extra_sections(table, {"estimates": covered}))
        assert f"slowest 48 s (hedge): {said}; the 5 later" in text
    # Only start-up trials ran: no later phase; none ran: no sentence.
    assert "later trial" not in "\n".join(search_report._extra_sections(
        table.iloc[:4], {"estimates": est}))
    assert "Measured:" not in "\n".join(search_report._extra_sections(
        table.iloc[:1], {"estimates": est}))


def test_cost_scale_follows_the_frame_level_window() -> None:
    # The frame-level Gaussian's work grows with its window (fit + self-scores + scoring,
    # measured 4.4x from 256 to 512 values and 21x to 1,024): a fixed part + dim**2 + dim**3/8,
    # relative to 16 frames x 16 bands; a hedge sums its frame-level members over its views (a
    # coarse view has fewer bands and 1/coarse_frames the windows); other families scale 1.
    from automl_asd.detectors.registry import get_detector_class  # noqa: PLC0415

    fg, hedge = get_detector_class("frame_gaussian"), get_detector_class("hedge")
    frame = {"context": 16, "band_pool": 4, "ridge": 0.01}

    def work(r: float) -> float:
        return (0.05 + r**2 + r**3 / 8) / 1.175

    assert fg.cost_scale(frame, 64) == pytest.approx(1.0)
    assert fg.cost_scale(frame, 128) == pytest.approx(work(2.0))
    assert 3.3 <= fg.cost_scale(frame, 128) <= 4.5
    assert 15 <= fg.cost_scale({**frame, "band_pool": 1}, 64) <= 25  # 1,024 values
    assert fg.cost_scale({**frame, "context": 8}, 128) == pytest.approx(1.0)
    both = "mahalanobis_logz+frame_gaussian_logz"
    assert hedge.cost_scale({"views": "fine", "backends": both}, 128) == pytest.approx(work(2.0))
    assert hedge.cost_scale({"views": "fine+delta", "backends": both}, 64) == pytest.approx(2.0)
    coarse = {"views": "fine+coarse", "backends": both, "coarse_bands": 2, "coarse_frames": 8}
    assert hedge.cost_scale(coarse, 128) == pytest.approx(work(2.0) + 1.0 / 8)
    assert hedge.cost_scale({"views": "fine+coarse", "backends": "knn+mahalanobis"},
                            128) == 1.0
    assert get_detector_class("pooled_stats").cost_scale({}, 128) == 1.0


def test_untimed_points_are_costed_at_their_own_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake machine whose hedge fits cost exactly 10 s x the recipe's cost scale (1 s for the
    # rest): whichever frame-level hedge was timed, every other point of its class (64 or 128
    # mels, one to three frame-level members) is costed at its own work, so the average trial
    # is exact. Costing them at the timed point's constants (the old rule) gives 16.2 s
    # against 26.6 s.
    space = load_space("demo")

    def true_cost(recipe: Recipe) -> float:
        return 10.0 * budget.cost_scale(recipe) if recipe.detector.name == "hedge" else 1.0

    monkeypatch.setattr(budget, "_family_constants",
                        lambda recipe, *a, **k: (true_cost(recipe), 0.0))
    monkeypatch.setattr(budget, "_extract_seconds_per_clip", lambda spec, m: 0.0)
    machines = {"fan": SimpleNamespace(machine_type="fan", train=[None] * 50, clips=[])}
    est = budget.estimate_costs(space, machines, seed=0)  # type: ignore[arg-type]
    recipes = [space.to_recipe(p, name="e")
               for p in budget.random_points(space, budget._N_POINTS, 0)]
    scales = {round(budget.cost_scale(r), 3) for r in recipes
              if "frame" in str(r.detector.params.get("backends"))}
    assert len(scales) >= 3  # the class spans several window sizes
    rungs, eta = list(space.fidelity.rungs), float(space.fidelity.reduction_factor)
    want = [sum(true_cost(r) * r.ensemble.size / eta**i for i in range(len(rungs)))
            for r in recipes]
    assert est["mean_trial_s"] == pytest.approx(float(np.mean(want)))


@pytest.mark.parametrize(("n_rungs", "rf"), [(1, 3), (2, 3), (3, 3), (3, 2), (4, 2), (4, 3),
                                             (5, 2), (9, 3), (10, 3)])
def test_asha_shares_follow_ray_s_own_milestones(n_rungs: int, rf: int) -> None:
    """Found 2026-12-06: the estimate assumed a cut at every rung (1/rf**k); Ray cuts only at
    its milestones, so with rungs 0.1/0.3/1.0 a third of the trials run at full fidelity."""
    from ray.tune.schedulers import ASHAScheduler

    shares = budget.asha_fractions(n_rungs, rf)
    assert len(shares) == n_rungs and shares[0] == 1.0
    sched = ASHAScheduler(time_attr="training_iteration", metric="m", mode="max",
                          max_t=n_rungs, grace_period=1, reduction_factor=rf)
    milestones = [m for m, _ in sched._brackets[0]._rungs]
    assert shares == [rf ** -sum(1 for m in milestones if m < j) for j in range(1, n_rungs + 1)]
    if (n_rungs, rf) == (3, 3):
        assert shares == [1.0, 1 / 3, 1 / 3]


def test_the_reference_warning_counts_every_rung_it_climbs(tmp_path: Path) -> None:
    est = {"reference_s": 300.0, "reference_rungs_s": 420.0, "reference_family": "dcase_ae",
           "mean_trial_s": 1.0, "family_trial_s": {}}
    cfg = _Cfg(load_space("demo"), 800.0)  # cap 400 s: 300 s at full fidelity, 420 s climbed
    warnings = budget.budget_check(cfg, {}, tmp_path, estimate=lambda *a, **k: dict(est))
    assert len(warnings) == 1 and "~420 s over its rungs" in warnings[0]
    assert "at most 400 s" in warnings[0]


def test_start_up_trials_that_failed_before_reporting_do_not_break_the_report() -> None:
    """Found 2026-12-06: every start-up trial erroring before its first report (no wall
    time) made the report raise after recipe.json was written."""
    import pandas as pd

    from automl_asd.io import search_report

    fam = "param:detector.name"
    table = pd.DataFrame([
        {"order": 0, "status": "complete", "wall_s": 2.0, "is_reference": True, fam: "a"},
        {"order": 1, "status": "error", "wall_s": float("nan"), "is_reference": False,
         fam: "b"}])
    est = {"reference_family": "a", "reference_s": 2.0, "mean_trial_s": 7.0,
           "family_trial_s": {}, "estimate_s": 1.0, "warnings": [], "tpe_startup": 10}
    text = "\n".join(search_report._extra_sections(table, {"estimates": est}))
    assert "Measured: the" not in text
    table.loc[2] = {"order": 2, "status": "complete", "wall_s": 5.0, "is_reference": False,
                    fam: "c"}
    text = "\n".join(search_report._extra_sections(table, {"estimates": est}))
    assert "Measured: the 1 trial of TPE's random start-up after the reference averaged 5 s" \
        in text


def test_a_point_no_recipe_can_hold_is_skipped_by_the_estimate(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Found by a review (2026-12-06): a space searching n_fft and hop_length separately drew
    a hop longer than the window in the estimate, which failed the whole search with a Ray
    traceback before any trial (the trial itself only errors)."""
    from pathlib import Path

    monkeypatch.setattr(budget, "_family_constants", lambda *a, **k: (1.0, 0.0))
    monkeypatch.setattr(budget, "_extract_seconds_per_clip", lambda *a: 0.01)
    path = Path(tmp_path) / "clash.yaml"
    path.write_text("name: clash\nreference: fast_default\nspace:\n  features:\n"
                    "    n_fft: {choice: [512, 1024]}\n    hop_length: {choice: [512, 1024]}\n")
    space = load_space(path)
    points = budget.random_points(space, budget._N_POINTS, 0)
    bad = [p for p in points if p["features.n_fft"] < p["features.hop_length"]]
    assert bad  # the draw holds such a point
    machines = {"fan": SimpleNamespace(machine_type="fan", train=[None] * 50, clips=[])}
    est = budget.estimate_costs(space, machines, seed=0)  # type: ignore[arg-type]
    assert est["timed_points"]


def test_a_resume_whose_budget_cannot_finish_its_unfinished_trials_says_so(
        tmp_path: Path) -> None:
    """Found by a probe (2026-12-07): `--resume --time-budget 45` on a search whose unfinished
    dcase_ae trial needed ~131 s spent the 45 s on it, stopped it again and said only "the same
    command with --resume continues them"."""
    unfinished = {"t_ae": "dcase_ae", "t_knn": "pooled_stats"}  # what the last run saved
    costs = {"dcase_ae": 131.0, "pooled_stats": 4.0}
    said = budget.unfinished_warning(unfinished, costs, 45.0)
    assert said == ("1 trial(s) saved unfinished (t_ae) need up to ~131 s to finish (the cost "
                    "estimate of dcase_ae at full fidelity), more than this --time-budget "
                    "(45 s): they cannot finish in this invocation and are stopped again; give "
                    "a larger --time-budget or none")
    assert budget.unfinished_warning(unfinished, costs, 200.0) is None
    assert budget.unfinished_warning(unfinished, costs, None) is None  # no budget
    assert budget.unfinished_warning({}, costs, 45.0) is None  # none saved unfinished
    # budget_check says it with its other warnings (and records it in search.json)
    saved = {"reference_s": 1.0, "reference_family": "pooled_stats", "mean_trial_s": 1.0,
             "family_trial_s": costs}
    assert said in budget.budget_check(_Cfg(load_space("demo"), 45.0), {}, tmp_path,
                                       measured=saved, made=12, reference_done=True,
                                       unfinished=unfinished)
