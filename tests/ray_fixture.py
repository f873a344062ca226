"""One local Ray runtime per test session, shared by every Ray test.

Use it from a test module with ``from ray_fixture import ray_session  # noqa: F401`` and
request ``ray_session`` in the tests (pytest puts ``tests/`` on ``sys.path``). Starting Ray
once (~5 s) instead of once per test keeps the Ray tests fast (ray_notes.md: 6.5 s vs 35.6 s
for 6 tests). If Ray is already running in the process it is reused and left running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray (``num_cpus=2``, no dashboard, no driver logs, listening on 127.0.0.1 only)
    for the session."""
    import ray

    started = False
    if not ray.is_initialized():
        from automl_asd.orchestration.local_ray import init_local_ray

        init_local_ray(num_cpus=2, log_to_driver=False)  # 127.0.0.1 only, dashboard off
        started = True
    yield None
    if started:
        ray.shutdown()
