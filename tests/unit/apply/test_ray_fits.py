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
    runner: Any = ray_runner.RayRunner()
    runner._check_fits(16.0, 1.0, "apply")  # the second node holds it
    runner._check_fits(2.0, 0.0, "apply")
    runner._started = True  # a local Ray started here: it cannot grow
    with pytest.raises(ResourceLimitError, match=r"apply: each task asks 4 CPU and 2 GPU, but "
                                                 r"no node of this Ray has that much \(the "
                                                 r"largest: 16 CPU, 1 GPU\); lower"):
        runner._check_fits(4.0, 2.0, "apply")
    runner._started = False  # a cluster: its autoscaler may add the node
    runner._check_fits(4.0, 2.0, "apply")
    assert "the tasks wait until the cluster adds such a node" in caplog.text
