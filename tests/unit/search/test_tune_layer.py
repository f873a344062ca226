"""The Ray layer of the search without a Ray runtime: the trainable receives the scanned
development data through its context (the object store) and never rescans the tree; a Tune
result grid becomes trial records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from automl_asd.data import MachineData
from automl_asd.evaluation.metrics import MachineMetrics
from automl_asd.evaluation.objective import ObjectiveResult
from automl_asd.orchestration import tune as tune_layer
from automl_asd.recipe import Recipe
from automl_asd.search.space import load_space
from automl_asd.search.trials import trial_recipe


def test_trainable_uses_the_drivers_scan_and_never_rescans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ray import tune

    import automl_asd.data as data

    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a trial rescanned the data tree")

    monkeypatch.setattr(data, "scan", no_scan)
    monkeypatch.setattr(data, "find_machine_dirs", no_scan)
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    monkeypatch.setattr(tune_layer, "node_where", lambda: {"node_id": "n", "host": "h", "pid": 1})

    machines: dict[str, MachineData] = {}  # the driver's scan, as the context carries it
    seen: list[tuple[Mapping[str, MachineData], float, str]] = []

    def evaluator(recipe: Recipe, got: Mapping[str, MachineData], *, cache_dir: Any = None,
                  device: str = "auto", fidelity: float = 1.0) -> ObjectiveResult:
        seen.append((got, fidelity, recipe.content_hash()))
        m = MachineMetrics(0.5 + fidelity / 10, 0.6, 0.55, 0.58)
        return ObjectiveResult(omega=0.5 + fidelity / 10, per_type={("fan", "00"): m},
                               fidelity=fidelity, wall_s=0.0)

    space = load_space("smoke")
    config = {**space.reference_point(), "normalization.method": "none"}
    ctx = tune_layer._TrialContext(space=space, reference_point=space.reference_point(),
                                   machines=machines, cache_dir=None, device="cpu",
                                   evaluator=evaluator)
    tune_layer._trainable(config, ctx)
    rungs = list(space.fidelity.rungs)
    assert [f for _, f, _ in seen] == rungs  # one evaluation per rung ...
    assert all(got is machines for got, _, _ in seen)  # ... on the driver's scan itself
    expected = trial_recipe(space, config).content_hash()
    assert [r["recipe_hash"] for r in reports] == [expected] * len(rungs)
    assert {r["behaviour_hash"] for r in reports} == {
        trial_recipe(space, config).behaviour_hash()}
    assert [r["rung"] for r in reports] == [1, 2]
    assert reports[-1]["omega"] == pytest.approx(0.6)


@pytest.mark.parametrize("keep", [True, False])
def test_a_trial_reports_its_warnings_and_the_driver_logs_each_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, keep: bool,
) -> None:
    """Found 2026-12-07 (two probes): a trial's warnings (a damaged representation-cache entry
    rebuilt, thin data) stayed in its Ray worker's log, shown only with -v. Each rung reports
    them; the progress callback logs each distinct line once; no trial record keeps them."""
    import logging

    from ray import tune

    from automl_asd.orchestration.progress import TrialProgress
    from automl_asd.search.trials import TRIAL_WARNINGS, record_from_result

    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    monkeypatch.setattr(tune_layer, "node_where", lambda: {"node_id": "n", "host": "h", "pid": 1})

    def evaluator(recipe: Recipe, got: Mapping[str, MachineData], *, cache_dir: Any = None,
                  device: str = "auto", fidelity: float = 1.0) -> ObjectiveResult:
        log = logging.getLogger("automl_asd.representation_cache")
        log.warning("cache entry x unusable; retraining")
        log.warning("cache entry x unusable; retraining")
        log.info("not a warning")
        return ObjectiveResult(omega=0.6, per_type={("fan", "00"): MachineMetrics(
            0.6, 0.6, 0.6, 0.6)}, fidelity=fidelity, wall_s=0.0)

    space = load_space("smoke")
    ctx = tune_layer._TrialContext(space=space, reference_point=space.reference_point(),
                                   machines={}, cache_dir=None, device="cpu",
                                   evaluator=evaluator, keep_warnings=keep)
    tune_layer._trainable({**space.reference_point(), "normalization.method": "none"}, ctx)
    if not keep:  # with -v the worker's own log reaches the console
        assert all(TRIAL_WARNINGS not in r for r in reports)
        return
    assert [r[TRIAL_WARNINGS] for r in reports] == ["cache entry x unusable; retraining"] * 2
    progress = TrialProgress(2, bar=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automl_asd.orchestration.progress"):
        for trial_id, result in [("t1", reports[0]), ("t1", reports[1]), ("t2", reports[1])]:
            progress.on_trial_result(0, [], SimpleNamespace(trial_id=trial_id), result)
    assert [r.getMessage() for r in caplog.records] == [
        "trial t1: cache entry x unusable; retraining"]
    # lines that differ only in their numbers are one kind; past the cap, one line says so
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automl_asd.orchestration.progress"):
        for i in range(3):
            progress.on_trial_result(0, [], SimpleNamespace(trial_id="t3"), {
                TRIAL_WARNINGS: f"gamma threshold: {i} of 105 scores above it"})
        for i in range(12):
            progress.on_trial_result(0, [], SimpleNamespace(trial_id="t4"), {
                TRIAL_WARNINGS: f"kind {'abcdefghijkl'[i]}"})
    assert [r.getMessage() for r in caplog.records] == [
        "trial t3: gamma threshold: 0 of 105 scores above it",
        *[f"trial t4: kind {c}" for c in "abcdefgh"],
        "trials report more kinds of warnings; -v shows every one"]
    record = record_from_result("t1", 1, {}, reports[-1], None)
    assert TRIAL_WARNINGS not in record.metrics


def test_trial_warnings_already_shown_by_the_data_check_are_not_logged_again(
    caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    """Found 2026-12-07: a thin development type was warned about before the search and again
    by its first trial; and warnings about ``rndfan03`` and ``rndfan04`` were one kind (the
    digits inside the names were taken for counts), so the second type's was never shown."""
    import logging

    import soundfile as sf

    from automl_asd.orchestration.progress import TrialProgress, set_shown_before
    from automl_asd.search.novel_check import check_search_data
    from automl_asd.search.trials import TRIAL_WARNINGS

    def write_wav(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(1600, dtype=np.float32), 16000)

    root = tmp_path / "dev"
    for mt, n_train in [("rndfan03", 2), ("rndfan04", 2), ("pump", 12)]:
        for i in range(n_train):
            write_wav(root / mt / "train" / f"section_00_source_train_normal_{i:04d}_a_1.wav")
        for label in ("normal", "anomaly"):
            for dom in ("source", "target"):
                write_wav(root / mt / "test" / f"section_00_{dom}_test_{label}_0000_a_1.wav")
    with caplog.at_level(logging.WARNING, logger="automl_asd"):
        data = check_search_data(root)
    assert len(data.warnings) == 3 and len(data.only(["pump"]).warnings) == 3
    assert {w.split(":")[0] for w in data.warnings} == {"rndfan03", "rndfan04", "pump"}
    set_shown_before(data.warnings)
    try:
        progress = TrialProgress(2, bar=False)
        progress.setup(total_num_samples=4)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="automl_asd.orchestration.progress"):
            for line in [  # a rung's selection counts other numbers: the same kind
                "rndfan03: only 1 training clip(s) (1 source, 0 target): too few to "
                "calibrate the scores; they and the decisions are unreliable",
                "rndfan05: only 2 training clip(s) (2 source, 0 target): too few to "
                "calibrate the scores; they and the decisions are unreliable"]:
                progress.on_trial_result(0, [], SimpleNamespace(trial_id="t1"),
                                         {TRIAL_WARNINGS: line})
        assert [r.getMessage().split(":")[1] for r in caplog.records] == [" rndfan05"]
    finally:
        set_shown_before([])


def test_each_report_carries_the_trial_s_cache_counters_over_all_its_rungs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Found 2026-12-06: each rung reported its own counters only, so the search report's
    per-family hits and misses counted the last rung of each trial."""
    import json

    from ray import tune

    reports: list[dict[str, Any]] = []
    saved: list[dict[str, Any]] = []

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        reports.append(metrics)

    def from_directory(path: str) -> str:
        saved.append(json.loads((Path(path) / "rung.json").read_text()))
        return path

    monkeypatch.setattr(tune, "report", report)
    monkeypatch.setattr(tune.Checkpoint, "from_directory", staticmethod(from_directory))
    monkeypatch.setattr(tune_layer, "node_where", lambda: {})

    def evaluator(recipe: Recipe, got: Mapping[str, MachineData], *, cache_dir: Any = None,
                  device: str = "auto", fidelity: float = 1.0) -> ObjectiveResult:
        m = MachineMetrics(0.6, 0.6, 0.6, 0.6)
        return ObjectiveResult(omega=0.6, per_type={("fan", "00"): m}, fidelity=fidelity,
                               wall_s=0.0, cache={"hits": 2.0, "misses": 1.0})

    space = load_space("smoke")
    config = {**space.reference_point(), "normalization.method": "none"}
    ctx = tune_layer._TrialContext(space=space, reference_point=space.reference_point(),
                                   machines={}, cache_dir=None, device="cpu",
                                   evaluator=evaluator)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    tune_layer._trainable(config, ctx)
    assert [(r["cache/hits"], r["cache/misses"]) for r in reports] == [(2.0, 1.0), (4.0, 2.0)]
    # resumed after the first rung: the totals come back from its checkpoint
    first = tmp_path / "ckpt"
    first.mkdir()
    (first / "rung.json").write_text(json.dumps(saved[0]))
    monkeypatch.setattr(tune, "get_checkpoint",
                        lambda: SimpleNamespace(as_directory=lambda: _Dir(first)))
    reports.clear()
    tune_layer._trainable(config, ctx)
    assert [(r["rung"], r["cache/hits"], r["cache/misses"]) for r in reports] == [(2, 4.0, 2.0)]


class _Dir:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> str:
        return str(self.path)

    def __exit__(self, *exc: object) -> None:
        return None


def test_result_grid_becomes_records_in_creation_order() -> None:
    space = load_space("smoke")
    ref = space.reference_point()

    def result(idx: int, trial_id: str, metrics: dict[str, Any] | None,
               error: str | None = None) -> Any:
        return SimpleNamespace(metrics={"trial_id": trial_id, **(metrics or {})}, config=ref,
                               error=RuntimeError(f"Traceback...\n{error}") if error else None,
                               path=str(Path("/runs/tune") / f"_trainable_{trial_id}_{idx}_x"))

    grid = [result(3, "cccc", None, error="ValueError: bad"),
            result(1, "aaaa", {"omega": 0.6, "fidelity": 1.0, "recipe_hash": "h"}),
            result(2, "bbbb", {"omega": 0.7, "fidelity": 0.5})]
    records = tune_layer.records_from_grid(grid, space)
    assert [(r.trial_id, r.order, r.status) for r in records] == [
        ("aaaa", 1, "complete"), ("bbbb", 2, "stopped_early"), ("cccc", 3, "error")]
    assert records[0].recipe_hash == "h" and records[1].recipe_hash is None
    assert records[2].error == "ValueError: bad"  # the last line of Ray's wrapped error
    assert all(r.is_reference for r in records)  # the reference point, known from its config
    assert records[0].config == ref and records[0].config is not ref
    # Trials that did not report a behaviour hash (an older version) get it from their config.
    assert {r.behaviour_hash for r in records} == {trial_recipe(space, ref).behaviour_hash()}
    reported = result(4, "dddd", {"omega": 0.5, "fidelity": 1.0, "behaviour_hash": "b"})
    assert tune_layer.records_from_grid([reported], space)[0].behaviour_hash == "b"
    odd = SimpleNamespace(metrics={"trial_id": "eeee"}, config={"no_such_param": 1},
                          error=None, path="/runs/tune/_trainable_eeee_5_x")
    assert tune_layer.records_from_grid([odd], space)[0].behaviour_hash is None


def test_result_grid_records_read_kept_scores_only_when_asked(tmp_path: Path) -> None:
    from contextlib import contextmanager

    from automl_asd.io.clip_scores import save_clip_scores

    space = load_space("smoke")
    kept = {("fan", "00"): (np.array([0, 1]), np.array(["source", "target"]),
                            np.array([0.1, 0.9]))}
    save_clip_scores(tmp_path, kept)
    opened: list[str] = []

    class _Checkpoint:
        @contextmanager
        def as_directory(self) -> Any:
            opened.append("x")
            yield str(tmp_path)

    res = SimpleNamespace(metrics={"trial_id": "aaaa", "omega": 0.6, "fidelity": 1.0},
                          config=space.reference_point(), error=None,
                          path="/runs/tune/_trainable_aaaa_1_x", checkpoint=_Checkpoint())
    record = tune_layer.records_from_grid([res], space)[0]
    assert opened == [] and record.clip_scores is None  # nothing read yet
    scores = record.kept_clip_scores()
    assert opened == ["x"] and scores is not None
    np.testing.assert_array_equal(scores[("fan", "00")][2], [0.1, 0.9])


def test_a_relative_cache_folder_is_made_absolute_before_trials_change_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from automl_asd.search.config import SearchConfig

    monkeypatch.chdir(tmp_path)
    cfg = SearchConfig(data=tmp_path, space=load_space("smoke"), out=tmp_path, trials=1,
                       cache_dir=Path("cache"))
    assert tune_layer._absolute_cache(cfg).cache_dir == tmp_path.resolve() / "cache"
    assert tune_layer._absolute_cache(replace(cfg, cache_dir=None)).cache_dir is None


def test_proposals_differing_only_in_inert_parameters_are_one_recipe() -> None:
    """The duplicate check's key: a hedge without a coarse view ignores the coarse sizes."""
    sp = load_space("demo")
    point = sp.reference_point()
    point.update({"detector.name": "hedge", "detector.hedge.views": "fine",
                  "detector.hedge.backends": "mahalanobis_logz+frame_gaussian_logz",
                  "detector.hedge.combine": "mean", "detector.hedge.coarse_frames": 4})
    keys = {tune_layer._recipe_key(sp, {**point, "detector.hedge.coarse_frames": n})
            for n in (4, 8, 16)}
    assert len(keys) == 1
    hashes = {trial_recipe(sp, {**point, "detector.hedge.coarse_frames": n}).content_hash()
              for n in (4, 8, 16)}
    assert len(hashes) == 3  # the trials still report their own recipe
    coarse = {**point, "detector.hedge.views": "fine+coarse"}
    assert len({tune_layer._recipe_key(sp, {**coarse, "detector.hedge.coarse_frames": n})
                for n in (4, 8, 16)}) == 3


class _TuneLikeTuner:
    """``fit()`` as Ray Tune 2.60 handles SIGINT: its own handler for the run, which on the
    signal puts back the handler it found and lets the run end early."""

    def __init__(self, interrupt: bool, sig: int | None = None) -> None:
        import signal

        self.interrupt = interrupt
        self.sig = signal.SIGINT if sig is None else sig

    def fit(self) -> str:
        import os
        import signal

        found = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda sig, frame: signal.signal(signal.SIGINT, found))
        if self.interrupt:
            os.kill(os.getpid(), self.sig)
        return "grid"


@pytest.mark.parametrize("interrupt", [True, False])
def test_a_sigint_during_fit_is_told_apart_from_a_run_that_ended(interrupt: bool) -> None:
    """Found 2026-12-06: interruption was guessed from the trial count, so Ctrl+C during a
    --time-budget search read as success and a finished search resumed with another --trials
    read as interrupted for ever."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    grid, stopped = tune_layer._fit_watching_sigint(_TuneLikeTuner(interrupt))
    assert grid == "grid" and stopped is interrupt
    assert signal.getsignal(signal.SIGINT) is before


def test_a_sigterm_during_fit_stops_the_run_as_a_sigint_does() -> None:
    """Found 2026-12-07: the CLI's SIGTERM handler raised inside fit(), so `kill` left no
    trial table, report or recipe, where Ctrl+C wrote them all. Outside fit() the command's
    own SIGTERM handler is back."""
    import signal

    def command_handler(sig: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, command_handler)
    try:
        grid, stopped = tune_layer._fit_watching_sigint(
            _TuneLikeTuner(True, signal.SIGTERM))
        assert grid == "grid" and stopped is True
        assert signal.getsignal(signal.SIGTERM) is command_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_sigterm_that_ended_the_local_ray_too_interrupts_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM to the whole process group (`timeout`, a scheduler) ends the local Ray's GCS
    as well; Tune's graceful stop then waited a minute and exited with rc 1 (found
    2026-12-07). The command's plain interrupt (KeyboardInterrupt) comes instead."""
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        gone = f"127.0.0.1:{s.getsockname()[1]}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        alive = f"127.0.0.1:{s.getsockname()[1]}"
        assert tune_layer._ray_gone(alive, watch_s=0.2) is False
    assert tune_layer._ray_gone(gone, watch_s=0.2) is True
    assert tune_layer._ray_gone(None) is False

    def command_handler(sig: int, frame: Any) -> None:
        raise AssertionError("not reached: the forwarder handles SIGTERM during fit()")

    monkeypatch.setattr(tune_layer, "_gcs_address", lambda: gone)
    before = signal.signal(signal.SIGTERM, command_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            tune_layer._fit_watching_sigint(_TuneLikeTuner(True, signal.SIGTERM))
        assert signal.getsignal(signal.SIGTERM) is command_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def _recording_searcher() -> Any:
    """A searcher proposing ``{"x": 1}``, ``{"x": 2}``, ... that records what ended
    (``ended``: ``(trial id, result)``)."""
    from ray.tune.search import Searcher

    class Recording(Searcher):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(metric="objective", mode="max")
            self.ended: list[tuple[str, object]] = []
            self.n = 0

        def suggest(self, trial_id: str) -> dict[str, int]:
            self.n += 1
            return {"x": self.n}

        def on_trial_complete(self, trial_id: str, result: object = None,
                              error: bool = False) -> None:
            self.ended.append((trial_id, result))

    return Recording()


def test_the_budget_stops_per_invocation_and_tells_the_searcher_what_it_ended(
        caplog: pytest.LogCaptureFixture) -> None:
    """The time budget is this process's deadline (a resume sets its own); when it stops the
    search, the trials Tune ends without a word reach the searcher chain as ended without a
    result (they held the concurrency limiter for ever on --resume), an interrupt's do not."""
    import logging

    from ray.tune.search import ConcurrencyLimiter

    from automl_asd.orchestration import budget

    def generator() -> tuple[Any, ConcurrencyLimiter, budget.ResumableSearchGenerator]:
        inner = _recording_searcher()
        limiter = ConcurrencyLimiter(inner, max_concurrent=2)
        for trial_id in ("a", "b"):
            limiter.suggest(trial_id)
        return inner, limiter, budget.ResumableSearchGenerator(limiter)

    import signal

    stopper = budget.BudgetStopper()
    budget.set_deadline(None)
    assert not stopper.stop_all() and not budget.budget_spent()
    inner, limiter, gen = generator()
    gen.set_finished()  # an interrupt: the trials run again on --resume and report then
    assert inner.ended == [] and limiter.live_trials == {"a", "b"}

    # outside Tune's fit() (an earlier fit in this process leaves its SIGUSR1 handler): the
    # stopper's fallback, stop_all
    previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        budget.set_deadline(0.0)
        with caplog.at_level(logging.INFO, logger="automl_asd.orchestration.budget"):
            assert stopper.stop_all() and stopper.stop_all()
        assert caplog.text.count("time budget of 0 s spent") == 1
        assert not budget.stopped_by_budget()
        inner, limiter, gen = generator()
        gen.set_finished()
        assert inner.ended == [("a", None), ("b", None)] and limiter.live_trials == set()
        assert gen.is_finished()
    finally:
        signal.signal(signal.SIGUSR1, previous)
        budget.set_deadline(None)


def test_the_budget_stops_a_run_through_tune_s_graceful_stop_where_fit_installed_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """Found by a probe (2026-12-07, F2): `stop_all` ends running trials as finished, so a
    trial stopped after its first rung could never be continued. Where Tune's stop handler
    is installed (SIGUSR1 during fit() in the main thread) the budget runs it instead: once,
    without Ray's "Stop signal received (e.g. via SIGINT/Ctrl+C)" warning, and the trials
    still running or waiting at that step are counted."""
    import logging
    import signal
    from types import SimpleNamespace

    from automl_asd.orchestration import budget

    calls: list[int] = []

    def _setup_signal_catching() -> Any:  # named as Ray 2.60 names its handler
        def signal_interrupt_tune_run(sig: int, frame: Any) -> None:
            logging.getLogger("ray.tune.tune").warning("Stop signal received (e.g. via "
                                                       "SIGINT/Ctrl+C), ending Ray Tune run.")
            calls.append(sig)
        return signal_interrupt_tune_run

    tune_handler = _setup_signal_catching()
    previous = signal.signal(signal.SIGUSR1, tune_handler)
    previous_int = signal.signal(signal.SIGINT, tune_handler)  # as during Tune's fit()
    stopper, mark = budget.BudgetStopper(), budget.UnfinishedAtStop()
    trials = [SimpleNamespace(trial_id=i, status=s) for i, s in
              zip("abcd", ("TERMINATED", "RUNNING", "PENDING", "ERROR"), strict=True)]
    try:
        budget.set_deadline(10.0)
        assert not stopper.stop_all() and not budget.stopped_by_budget()
        budget.set_deadline(0.0)
        with caplog.at_level(logging.INFO):
            assert not stopper.stop_all() and not stopper.stop_all()
        assert calls == [signal.SIGUSR1] and budget.stopped_by_budget()
        # a Ctrl+C while Tune ends the trials is still its graceful stop, not an abort
        assert signal.getsignal(signal.SIGINT) is tune_handler
        assert "Stop signal received" not in caplog.text
        assert caplog.text.count("time budget of 0 s spent") == 1
        mark.on_step_end(iteration=2, trials=trials)  # the step the stop came in: the last
        assert budget.unfinished_at_stop() == {"b", "c"}
        budget.set_deadline(None)  # the next invocation starts afresh
        assert not budget.stopped_by_budget() and budget.unfinished_at_stop() == frozenset()
    finally:
        signal.signal(signal.SIGUSR1, previous)
        signal.signal(signal.SIGINT, previous_int)
        budget.set_deadline(None)


def test_budget_stopped_trials_that_never_reported_are_run_again_as_extra_trials() -> None:
    """The generator asks the searcher chain to keep the unreported trials' configs and makes
    room for their re-runs: the resumed search still makes every trial it was asked for."""
    from ray.tune.search import ConcurrencyLimiter

    from automl_asd.orchestration import budget
    from automl_asd.orchestration.dedup import DedupSearcher

    dedup = DedupSearcher(_recording_searcher(), lambda c: f"r{c['x']}")
    limiter = ConcurrencyLimiter(dedup, max_concurrent=2)
    gen = budget.ResumableSearchGenerator(limiter)
    gen._total_samples, gen._counter = 4, 2
    limiter.suggest("a")
    limiter.suggest("b")
    limiter.on_trial_result("b", {"objective": 0.5, "training_iteration": 1})
    budget.set_deadline(0.0)
    try:
        gen.set_finished()
    finally:
        budget.set_deadline(None)
    assert limiter.live_trials == set() and dedup._reruns == [{"x": 1}]
    state = gen.get_state()
    assert state["extra_samples"] == 1
    again = budget.ResumableSearchGenerator(limiter)
    again.set_state({**state, "finished": False})
    assert not again.is_finished()  # 2 made of 4, plus 1 re-run
    again._counter = 4
    assert not again.is_finished()
    again._counter = 5
    assert again.is_finished()
    assert limiter.suggest("c") == {"x": 1}  # the re-run comes first


def test_ray_s_failed_state_save_is_one_line_in_the_cli_s_words() -> None:
    """Found on a real full tmpfs (2026-12-07): a full disk during a search printed Ray's
    "Saving experiment state to storage at ... failed with exception:" and pyarrow's whole
    traceback above the search's own one-line error."""
    import errno
    import logging
    import sys

    from automl_asd.orchestration.tune import _without_ray_stop_lines

    state = logging.getLogger("ray.tune.execution.experiment_state")
    try:
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space")
    except OSError:
        exc_info = sys.exc_info()
    record = state.makeRecord(state.name, logging.ERROR, __file__, 1,
                              "Saving experiment state to storage at '/run/tune' failed with "
                              "exception: ", (), exc_info)
    with _without_ray_stop_lines(lambda: False):
        assert state.filter(record)
    text = logging.Formatter().format(record)
    assert text == ("Ray Tune could not save the search state in /run/tune (no space left on "
                    "the device; free space or write elsewhere); what it saved there may be "
                    "incomplete"), text
    assert not state.filters
