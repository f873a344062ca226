"""A per-task request no node can hold (``apply --gpus-per-task 1`` without a GPU) is refused
on a local Ray and warned about on a cluster (no Ray started: the node list is handed in)."""

from __future__ import annotations

from typing import Any

import pytest

from automl_asd.errors import ResourceLimitError
from automl_asd.orchestration import ray_runner

_NODES = [{"Alive": True, "Resources": {"CPU": 2.0}},
          {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}}]


def test_a_request_no_node_can_hold_is_refused_on_a_local_ray(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-06: the tasks waited for ever, apply printing "still running"."""
    monkeypatch.setattr(ray_runner, "alive_nodes", lambda: _NODES)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    runner: Any = ray_runner.RayRunner()
    runner._check_fits(16.0, 1.0, "apply")  # the second node holds it
    runner._check_fits(2.0, 0.0, "apply")
    runner._started = True  # a local Ray started here: it cannot grow
    with pytest.raises(ResourceLimitError, match=r"apply: each task asks 4 CPU and 2 GPU, but "
                                                 r"no node of this Ray has that much \(the "
                                                 r"largest: 16 CPU, 1 GPU\); lower"):
        runner._check_fits(4.0, 2.0, "apply")
    runner._started = False  # a Ray this run did not start: it may be a cluster
    runner._check_fits(4.0, 2.0, "apply")
    assert "the tasks wait until the cluster adds such a node" in caplog.text
    # connected to a cluster by this run (init_ray returns True there too): still a warning
    cluster: Any = ray_runner.RayRunner(address="10.1.2.3:6379")
    cluster._started = True
    caplog.clear()
    cluster._check_fits(4.0, 2.0, "apply")
    assert "the tasks wait until the cluster adds such a node" in caplog.text
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")  # the same through the environment
    caplog.clear()
    runner._started = True
    runner._check_fits(4.0, 2.0, "apply")
    assert "the tasks wait" in caplog.text



def test_search_checks_its_per_trial_request_before_writing_anything(
        tiny_dev_root: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-06: `search --cpus-per-trial 8` on a 2-CPU Ray printed the pre-flight line
    and then nothing, for ever (apply already refused). No Ray is started here: whether a Ray
    this process started counts as local is what is checked, and that nothing is written."""
    from automl_asd.orchestration import tune
    from automl_asd.search.config import SearchConfig
    from automl_asd.search.space import load_space

    asked: list[dict[str, Any]] = []

    def refuse(cpus: float, gpus: float, what: str, **kw: Any) -> None:
        asked.append({"cpus": cpus, "gpus": gpus, "what": what, **kw})
        raise ResourceLimitError(f"{what}: each task asks {cpus:g} CPU")

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(tune, "init_ray", lambda *a, **k: True)  # "this run started Ray"
    monkeypatch.setattr(tune, "shutdown_ray", lambda: None)
    monkeypatch.setattr(tune, "check_fits", refuse)
    cfg = SearchConfig(data=tiny_dev_root, space=load_space("smoke"), out=tmp_path / "s",
                       trials=1, cpus_per_trial=512.0, cache_dir=tmp_path / "cache")
    with pytest.raises(ResourceLimitError, match="search: each task asks 512 CPU"):
        tune.run_search(cfg)
    assert asked == [{"cpus": 512.0, "gpus": 0.0, "what": "search",
                      "options": "--cpus-per-trial / --gpus-per-trial", "local": True}]
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_the_shared_stage_s_warnings_come_back_with_its_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a machine type's task, the shared stage's task returns its WARNING lines (a Ray
    task's log does not reach the driver's console); the Ray runner logs them."""
    import logging

    from automl_asd.recipe import RecipeError

    def shared(job: Any, where: Any = None) -> dict[str, Any]:
        logging.getLogger("automl_asd.pipeline").warning("fan: no target-domain clips")
        return {"pid": 1}

    def refused(job: Any, where: Any = None) -> dict[str, Any]:
        logging.getLogger("automl_asd.pipeline").warning("fan: 2 clips only")
        raise RecipeError("detector: bad")

    monkeypatch.setattr(ray_runner, "node_where", lambda: {})
    monkeypatch.setattr(ray_runner, "run_shared_job", shared)
    assert ray_runner._shared_task(None) == {  # type: ignore[arg-type]
        "pid": 1, "warnings": ["fan: no target-domain clips"]}
    monkeypatch.setattr(ray_runner, "run_shared_job", refused)
    out = ray_runner._shared_task(None)  # type: ignore[arg-type]
    assert out["warnings"] == ["fan: 2 clips only"]
    assert isinstance(out["permanent_error"], RecipeError)
    assert not any(isinstance(h, logging.Handler) and type(h).__name__ == "_WarningLines"
                   for h in logging.getLogger("automl_asd").handlers)


def test_a_malformed_log_call_in_a_task_does_not_fail_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a review (2026-12-07): a log call whose arguments do not fit its format
    raised out of the warning collector (a plain handler prints "--- Logging error ---" and
    goes on), failing the Ray task. (The handler is called directly: pytest's own capture
    handler raises on logging errors.)"""
    import logging

    from automl_asd.progress import kept_warnings

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("automl_asd.pipeline", logging.WARNING, __file__, 1, msg,
                                 args, None)

    with kept_warnings() as lines:
        collector = next(h for h in logging.getLogger("automl_asd").handlers
                         if type(h).__name__ == "_WarningLines")
        collector.handle(record("%d clips", "abc"))
        collector.handle(record("fan: %d clips", 2))
    assert lines == ["fan: 2 clips"]
    assert "Logging error" in capsys.readouterr().err


def test_the_ray_runner_logs_the_shared_stage_s_returned_warnings(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The driver's side of the shared stage's warnings (review, 2026-12-07: only the task's
    side was tested): the runner logs each returned line and keeps them out of the summary;
    a permanent error comes back after its warnings are logged."""
    import logging
    from types import SimpleNamespace

    import ray

    from automl_asd.recipe import RecipeError

    returned: list[dict[str, Any]] = [
        {"pid": 1, "warnings": ["fan: no target-domain training clips"]},
        {"permanent_error": RecipeError("detector: bad"), "warnings": ["fan: 2 clips only"]}]
    task = SimpleNamespace(remote=lambda job: "ref")
    monkeypatch.setattr(ray, "remote", lambda fn: SimpleNamespace(options=lambda **kw: task))
    monkeypatch.setattr(ray, "get", lambda ref: returned.pop(0))
    runner = ray_runner.RayRunner(gpus_per_task=0.0)
    monkeypatch.setattr(runner, "_connect", lambda: None)
    monkeypatch.setattr(runner, "_check_fits", lambda *args: None)
    job = SimpleNamespace(num_threads=1)
    monkeypatch.setattr(ray_runner.dataclasses, "replace", lambda j, **kw: j)
    with caplog.at_level(logging.WARNING, logger="automl_asd.orchestration.ray_runner"):
        assert runner.run_shared(job) == {"pid": 1}  # type: ignore[arg-type]
        with pytest.raises(RecipeError, match="detector: bad"):
            runner.run_shared(job)  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == [
        "fan: no target-domain training clips", "fan: 2 clips only"]
