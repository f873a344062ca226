"""DedupSearcher (issue 15): a proposal that repeats a recipe already run at full fidelity, or
still running, is not launched; the wrapped searcher is told the known result and asked again.

Ray's ``Searcher`` is plain Python: no Ray runtime is started here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from automl_asd.io import search_report as io


def _key(config: Mapping[str, Any]) -> str:
    return f"recipe-{config['x']}"


def _fake(proposals: list[int]) -> Any:
    """A wrapped searcher that proposes ``{"x": p}`` for ``proposals`` in order and records
    what it is told."""
    from ray.tune.search import Searcher

    class Fake(Searcher):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(metric="objective", mode="max")
            self.queue = list(proposals)
            self.asked: dict[str, dict[str, Any]] = {}
            self.told: list[tuple[str, Any, bool]] = []

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            if not self.queue:
                return None
            self.asked[trial_id] = {"x": self.queue.pop(0)}
            return self.asked[trial_id]

        def on_trial_complete(self, trial_id: str, result: Any = None,
                              error: bool = False) -> None:
            self.told.append((trial_id, None if result is None else result["objective"], error))

    return Fake()


def _final(value: float) -> dict[str, Any]:
    return {"objective": value, "fidelity": 1.0, "training_iteration": 1}


def test_a_known_recipe_is_fed_back_and_not_launched(tmp_path: Path) -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    inner = _fake([1, 2, 1, 1, 3])
    dedup = DedupSearcher(inner, _key, out_dir=tmp_path)
    assert dedup.suggest("t0") == {"x": 1}
    dedup.on_trial_complete("t0", result=_final(0.7))
    assert dedup.suggest("t1") == {"x": 2}
    dedup.on_trial_complete("t1", result={"objective": 0.5, "fidelity": 0.25})  # ASHA-stopped
    # t2: x=1 (twice) already ran at full fidelity: TPE is told 0.7 for each, then x=3 runs.
    assert dedup.suggest("t2") == {"x": 3}
    assert dedup.skipped == 2
    assert inner.told == [("t0", 0.7, False), ("t1", 0.5, False),
                          ("t2", 0.7, False), ("t2#dup1", 0.7, False)]
    assert io.read_duplicates(tmp_path) == 2
    # The launched trial's results and completion reach the proposal that was launched.
    dedup.on_trial_complete("t2", result=_final(0.9))
    assert inner.told[-1] == ("t2#dup2", 0.9, False)


def test_a_failed_recipe_may_run_again() -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    dedup = DedupSearcher(_fake([1, 1, 2, 2, 2]), _key)
    assert dedup.suggest("t0") == {"x": 1}
    dedup.on_trial_complete("t0", result=None, error=True)
    assert dedup.suggest("t1") == {"x": 1}
    assert dedup.suggest("t1b") == {"x": 2}
    dedup.on_trial_complete("t1b", result=None, error=False)  # ended without a result
    dedup.on_trial_complete("t1", result=None, error=True)
    assert dedup.suggest("t2") == {"x": 2}
    assert dedup.skipped == 0


def test_a_recipe_stopped_early_is_fed_back_and_not_run_again() -> None:
    """Found by a probe (2026-12-07): TPE proposed recipes ASHA had stopped, and they ran
    again to the same rung results (9 of 26 trials of a capped smoke search). The wrapped
    searcher is told the stopped trial's last result instead; a later full-fidelity result of
    the recipe (the reference re-run on --resume) replaces it."""
    from automl_asd.orchestration.dedup import DedupSearcher

    inner = _fake([1, 1, 2, 1])
    dedup = DedupSearcher(inner, _key)
    assert dedup.suggest("t0") == {"x": 1}
    dedup.on_trial_complete("t0", result={"objective": 0.4, "fidelity": 0.5})  # ASHA-stopped
    assert dedup.suggest("t1") == {"x": 2}
    assert dedup.skipped == 1
    assert inner.told == [("t0", 0.4, False), ("t1", 0.4, False)]
    assert dedup.queue_again({"x": 1})  # the reference's full-fidelity re-run is still allowed
    dedup.on_trial_complete("t1", result=_final(0.6))
    assert dedup.suggest("t2") == {"x": 1}
    dedup.on_trial_complete("t2", result=_final(0.8))
    assert dedup.suggest("t3") is None  # x=1 (final now) fed back; the fake has no more
    assert inner.told[-1] == ("t3", 0.8, False)


def test_a_running_duplicate_waits_for_its_result() -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    inner = _fake([1, 1, 2])
    dedup = DedupSearcher(inner, _key)
    assert dedup.suggest("t0") == {"x": 1}
    # t0 still runs: its duplicate is not launched and not told anything yet.
    assert dedup.suggest("t1") == {"x": 2}
    assert dedup.skipped == 1
    assert inner.told == []
    dedup.on_trial_complete("t0", result=_final(0.6))
    assert inner.told == [("t0", 0.6, False), ("t1", 0.6, False)]


def test_retries_run_out_and_the_last_proposal_runs(caplog: pytest.LogCaptureFixture) -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    dedup = DedupSearcher(_fake([1] * 10), _key, retries=3)
    dedup.suggest("t0")
    dedup.on_trial_complete("t0", result=_final(0.5))
    with caplog.at_level(logging.WARNING):
        assert dedup.suggest("t1") == {"x": 1}
        dedup.on_trial_complete("t1", result=_final(0.5))
        assert dedup.suggest("t2") == {"x": 1}
    assert dedup.skipped == 6
    warnings = [r for r in caplog.records if "keeps proposing evaluated recipes" in r.message]
    assert len(warnings) == 1


def test_finished_and_unmappable_proposals_pass_through() -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    def bad_key(config: Mapping[str, Any]) -> str:
        raise ValueError("not a recipe")

    dedup = DedupSearcher(_fake([1, 1]), bad_key)
    assert dedup.suggest("t0") == {"x": 1}
    assert dedup.suggest("t1") == {"x": 1}  # no key: launched (the trial reports the error)
    assert dedup.suggest("t2") is None


def _tpe_run(seed: int, n: int) -> tuple[list[int], int]:
    """A short sequential search of OptunaSearch (TPE) over 6 categorical points."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from automl_asd.orchestration.dedup import DedupSearcher

    tpe = OptunaSearch({"x": tune.choice([0, 1, 2, 3, 4, 5])}, metric="objective",
                       mode="max", seed=seed, points_to_evaluate=[{"x": 4}])
    dedup = DedupSearcher(tpe, _key)
    seen = []
    for i in range(n):
        config = dedup.suggest(f"t{i}")
        assert config is not None
        seen.append(int(config["x"]))
        dedup.on_trial_complete(f"t{i}", result=_final(1.0 - abs(config["x"] - 2) / 10))
    return seen, dedup.skipped


def test_optuna_tpe_runs_each_point_once_while_it_can() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen, skipped = _tpe_run(seed=3, n=6)
    assert seen[0] == 4  # the reference point runs first
    assert sorted(seen) == [0, 1, 2, 3, 4, 5]  # no point twice
    assert skipped > 0
    assert _tpe_run(seed=3, n=6) == (seen, skipped)  # same seed, same sequence


def test_state_survives_a_tune_checkpoint(tmp_path: Path) -> None:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.search_generator import SearchGenerator

    from automl_asd.orchestration.dedup import DedupSearcher

    inner = _fake([1, 1, 2])
    inner.save = lambda path: Path(path).write_text("inner")
    dedup = DedupSearcher(inner, _key)
    dedup.suggest("t0")
    dedup.on_trial_complete("t0", result=_final(0.7))
    SearchGenerator(ConcurrencyLimiter(dedup, 1)).save_to_dir(str(tmp_path), "s")

    fresh_inner = _fake([1, 2])
    fresh_inner.restore = lambda path: None
    fresh = DedupSearcher(fresh_inner, _key)
    SearchGenerator(ConcurrencyLimiter(fresh, 1)).restore_from_dir(str(tmp_path))
    assert fresh.searcher is fresh_inner
    assert fresh.suggest("t1") == {"x": 2}  # x=1 is known after the restore
    assert fresh.skipped == 1


def test_a_trial_stopped_before_it_reported_runs_again_first() -> None:
    """Found by a review (2026-12-07): a trial the time budget stopped before its first report
    (it can be the reference) was counted as made and never run by --resume."""
    from automl_asd.orchestration.dedup import DedupSearcher

    inner = _fake([1, 2, 3, 4])
    dedup = DedupSearcher(inner, _key)
    dedup.suggest("t0")
    dedup.suggest("t1")
    dedup.on_trial_result("t1", {"objective": 0.5, "fidelity": 0.5, "training_iteration": 1})
    # the budget stops both: t0 never reported, t1 did (its result stands as stopped early)
    assert dedup.requeue_unreported(["t1", "t0"]) == 1
    dedup.on_trial_complete("t0", result=None)
    dedup.on_trial_complete("t1", result=None)
    assert inner.told == [("t0", None, False), ("t1", None, False)]
    state = dedup.get_state()

    resumed = DedupSearcher(_fake([2, 3]), _key)
    resumed.set_state(state)
    assert resumed.suggest("t2") == {"x": 1}  # the re-run, not asked of the wrapped searcher
    assert resumed.searcher.asked == {}
    assert resumed.suggest("t3") == {"x": 2}
    resumed.on_trial_result("t2", _final(0.8))
    resumed.on_trial_complete("t2", result=_final(0.8))
    # the wrapped searcher has no proposal for the re-run; the recipe is known from now on
    assert resumed.searcher.told == []
    resumed.on_trial_complete("t3", result=_final(0.6))
    assert resumed.searcher.told == [("t3", 0.6, False)]
    resumed.searcher.queue = [1, 3]
    assert resumed.suggest("t4") == {"x": 3} and resumed.skipped == 1


def test_a_re_run_already_covered_is_dropped() -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    dedup = DedupSearcher(_fake([1, 1, 2]), _key)
    dedup.suggest("t0")
    dedup.requeue_unreported(["t0"])
    dedup.on_trial_complete("t0", result=None)
    # the same recipe ran to the end meanwhile (a duplicate after the stop): no re-run
    dedup._reruns, pending = [], dedup._reruns
    assert dedup.suggest("t1") == {"x": 1}
    dedup.on_trial_complete("t1", result=_final(0.7))
    dedup._reruns = pending
    assert dedup.suggest("t2") == {"x": 2}


def test_state_saved_before_re_runs_existed_restores() -> None:
    from automl_asd.orchestration.dedup import DedupSearcher

    dedup = DedupSearcher(_fake([1]), _key)
    old = {k: v for k, v in dedup.get_state().items() if k not in ("_unreported", "_reruns")}
    restored = DedupSearcher(_fake([1]), _key)
    del restored.__dict__["_unreported"], restored.__dict__["_reruns"]
    restored.set_state(old)
    assert restored.suggest("t0") == {"x": 1}


def test_a_proposal_whose_recipe_is_invalid_is_not_launched(
        caplog: pytest.LogCaptureFixture) -> None:
    """Found by a probe (2026-12-07): values valid one by one but not together (256 mels on a
    512-point FFT) ran as trials, each failing twice under Ray's retry with a traceback, and
    TPE proposed the same invalid point again. Such a proposal is now not launched: the
    wrapped searcher is told it failed and asked again; the reason is logged once."""
    from automl_asd.orchestration.dedup import DedupSearcher
    from automl_asd.recipe import RecipeError

    def key(config: Mapping[str, Any]) -> str:
        if config["x"] < 0:
            raise RecipeError("features.n_mels: 24 of 256 mel filters hold no FFT bin")
        return f"recipe-{config['x']}"

    inner = _fake([-1, -2, 4, -1])
    dedup = DedupSearcher(inner, key, retries=5)
    with caplog.at_level(logging.WARNING):
        assert dedup.suggest("t0") == {"x": 4}
        assert dedup.invalid == 2 and dedup.skipped == 0
        assert inner.told == [("t0", None, True), ("t0#dup1", None, True)]
        dedup.on_trial_complete("t0", result=_final(0.6))
        assert dedup.suggest("t1") is None  # -1 again: told it failed; then nothing left
    assert dedup.invalid == 3
    assert caplog.text.count("gives an invalid recipe, not launched (asked again): "
                             "features.n_mels: 24 of 256") == 1
    # after `retries` invalid proposals in a row the last one is launched (the trial then
    # fails with the reason): a search never stalls
    stubborn = DedupSearcher(_fake([-1] * 4), key, retries=2)
    assert stubborn.suggest("s0") == {"x": -1} and stubborn.invalid == 2


def test_a_finite_space_fills_in_what_tpe_does_not_propose_then_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-08: on `smoke` (26 recipes) TPE found 14 in 26 trials; the other 12 were
    duplicates launched after the retries. Now the space's untried points run in turn (TPE
    is not told them), and once every point has run the search ends instead of repeating."""
    from ray.tune.search import Searcher

    from automl_asd.orchestration.dedup import DedupSearcher

    inner = _fake([1] * 40)
    keyed: list[int] = []

    def key(config: Mapping[str, Any]) -> str:
        keyed.append(config["x"])
        return _key(config)

    dedup = DedupSearcher(inner, key, retries=2,
                          untried=[{"x": 3}, {"x": 1}, {"x": 2}])
    assert dedup.suggest("t0") == {"x": 1}
    dedup.on_trial_complete("t0", result=_final(0.5))
    with caplog.at_level(logging.INFO, logger="automl_asd.orchestration.dedup"):
        assert dedup.suggest("t1") == {"x": 3}  # 3 proposals of x=1, then the first untried
        assert dedup.suggest("t2") == {"x": 2}  # x=3 runs: next untried
        assert dedup.suggest("t3") is None  # nothing untried, two still running: ask later
    dedup.on_trial_complete("t1", result={"objective": 0.7, "fidelity": 0.5})  # ASHA-stopped
    dedup.on_trial_complete("t2", result=_final(0.6))
    assert dedup.suggest("t4") == Searcher.FINISHED
    assert dedup.get_state()["_exhausted"] == 3  # the report says why the search ended
    # the untried points' keys are made once (a recipe and a hash each), not at every fill-in
    assert keyed.count(3) == 1 and keyed.count(2) == 1
    assert dedup.skipped == 3 * 4  # every one of TPE's proposals after t0 was x=1
    assert all(told == 0.5 for _, told, _ in inner.told[1:])  # TPE heard only x=1's result
    said = [r.getMessage() for r in caplog.records]
    assert said.count("TPE keeps proposing evaluated recipes: trying the space's points it "
                      "has not proposed yet, in turn") == 1


def test_the_fill_in_order_is_every_point_once_shuffled_by_the_seed() -> None:
    from automl_asd.orchestration.tune import _fill_order
    from automl_asd.search.space import load_space

    smoke = load_space("smoke")
    first, again, other = (_fill_order(smoke, 0), _fill_order(smoke, 0), _fill_order(smoke, 1))
    assert first is not None and other is not None
    assert first == again and first != other
    keys = {smoke.to_recipe(p).behaviour_hash() for p in first}
    assert len(first) == len(keys) == smoke.n_points() == 26
    assert _fill_order(load_space("demo"), 0) is None  # continuous: TPE's proposals only
