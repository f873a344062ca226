"""One Ray initialiser (``orchestration.session.init_ray``) for apply, search, score and demo.

Ray is not started here: ``ray.init`` and the loopback starter are replaced by recorders, so
these tests show which start each entry point asks for. That the loopback starter really binds
127.0.0.1 only is ``test_ray_loopback.py``'s job.
"""

from __future__ import annotations

from typing import Any

import pytest

from automl_asd.orchestration import session


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    import ray

    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.append(("cluster", kw)))
    monkeypatch.setattr(session, "init_local_ray", lambda **kw: seen.append(("loopback", kw)))
    # no connection attempt leaves this machine: the head check is recorded, not made
    monkeypatch.setattr(session, "check_reachable", lambda address: seen.append(("check", {
        "address": address, "log_to_driver": None})))
    return seen


def test_init_ray_local_is_loopback_and_address_connects(
    calls: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert session.init_ray() is True
    assert session.init_ray(num_cpus=3, verbose=1) is True
    assert session.init_ray("auto") is True
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert session.init_ray() is True
    kinds = [(kind, kw.get("address"), kw.get("num_cpus"), kw["log_to_driver"])
             for kind, kw in calls]
    assert kinds == [("loopback", None, None, False), ("loopback", None, 3, True),
                     ("check", "auto", None, None), ("cluster", "auto", None, False),
                     ("check", "10.0.0.5:6379", None, None),
                     ("cluster", "10.0.0.5:6379", None, False)]


def test_apply_search_and_score_start_ray_through_the_one_initialiser(
    calls: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from automl_asd.orchestration import ray_runner, score
    from automl_asd.orchestration import tune as tune_search

    assert ray_runner.init_ray is session.init_ray and score.init_ray is session.init_ray
    assert tune_search.init_ray is session.init_ray
    ray_runner.RayRunner(verbose=0)._connect()
    assert tune_search.init_ray(None, verbose=2) is True
    assert [(k, kw.get("num_cpus"), kw["log_to_driver"]) for k, kw in calls] == [
        ("loopback", os.cpu_count(), False), ("loopback", None, True)]
    # already connected: nobody starts a second runtime
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    assert tune_search.init_ray("auto", verbose=0) is False
    assert [k for k, _ in calls] == ["loopback", "loopback", "check"]  # checked, not started
