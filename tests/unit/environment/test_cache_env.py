"""A relative ``$AUTOML_ASD_CACHE`` means the same folder in a local Ray's workers.

Found by probing (2026-12-07): ``AUTOML_ASD_CACHE=cache automl-asd search`` (from any folder)
built a new feature cache in every trial's working folder under /tmp/ray (Tune runs each
trial there), reused by no other trial.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from automl_asd.environment import absolute_cache_env, default_cache_dir


def test_a_relative_cache_is_made_absolute_against_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOML_ASD_CACHE", "rel/cache")
    assert absolute_cache_env() == str(tmp_path / "rel" / "cache")
    assert os.environ["AUTOML_ASD_CACHE"] == str(tmp_path / "rel" / "cache")
    monkeypatch.chdir("/")
    assert default_cache_dir() == tmp_path / "rel" / "cache"  # wherever a worker runs
    assert absolute_cache_env() is None  # already absolute: unchanged
    monkeypatch.setenv("AUTOML_ASD_CACHE", "~/c")
    assert absolute_cache_env() is None  # the home folder is the same in the workers
    monkeypatch.delenv("AUTOML_ASD_CACHE")
    assert absolute_cache_env() is None and "AUTOML_ASD_CACHE" not in os.environ


def test_a_local_ray_start_passes_its_workers_the_absolute_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_asd.orchestration import local_ray

    seen: dict[str, Any] = {}

    class FakeRay:
        @staticmethod
        def init(**kwargs: Any) -> None:
            seen["cache"] = os.environ.get("AUTOML_ASD_CACHE")

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # set by the start: undone after
    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    monkeypatch.setattr(local_ray, "_loopback_only", contextlib.nullcontext)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOML_ASD_CACHE", "cache")
    local_ray.init_local_ray()
    assert seen["cache"] == str(tmp_path / "cache")
