"""``cluster.yaml`` validated offline against the schema Ray ships (as ``ray up`` does)."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import yaml

from tests.fixtures.paths import REPO_ROOT

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

CLUSTER_YAML = REPO_ROOT / "cluster.yaml"


def _validate(config: dict[str, Any]) -> dict[str, Any]:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    data = yaml.safe_load(CLUSTER_YAML.read_text())
    assert isinstance(data, dict)
    return data


def test_cluster_yaml_is_valid_for_ray_up(cluster: dict[str, Any]) -> None:
    prepared = _validate(cluster)
    assert prepared["provider"]["type"] == "aws"
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert "GPU" not in head["resources"]
    gpu_workers = [t for name, t in types.items()
                   if name != prepared["head_node_type"] and t["resources"].get("GPU", 0) >= 1]
    assert gpu_workers and all(t["min_workers"] == 0 for t in gpu_workers)
    assert all(t["max_workers"] > 0 for t in gpu_workers)  # autoscaling up from zero
    setup = " ".join(prepared["setup_commands"])
    # Every node installs the package with its `cluster` extra (ray[default] for `ray up`) and
    # takes every version from the project's lock.
    assert "-c ~/automl-asd/constraints.txt" in setup and "automl-asd[cluster]" in setup
    assert all("constraints.txt" in c for c in prepared["setup_commands"] if "install" in c)
    import tomllib

    pyproject = tomllib.loads((CLUSTER_YAML.parent / "pyproject.toml").read_text())
    assert any(r.startswith("ray[default,tune]")
               for r in pyproject["project"]["optional-dependencies"]["cluster"])
    assert any("data" in remote for remote in prepared["file_mounts"])


def test_documented_on_prem_variant_is_valid(cluster: dict[str, Any]) -> None:
    # The switch described in cluster.yaml's header comment.
    local = copy.deepcopy(cluster)
    local["provider"] = {"type": "local", "head_ip": "10.0.0.1",
                         "worker_ips": ["10.0.0.2", "10.0.0.3"]}
    local["auth"] = {"ssh_user": "me", "ssh_private_key": "~/.ssh/id_rsa"}
    del local["available_node_types"], local["head_node_type"]
    local["max_workers"] = 2
    prepared = _validate(local)
    assert prepared["provider"]["type"] == "local"
    text = CLUSTER_YAML.read_text()
    assert "type: local" in text and "worker_ips" in text


def test_typo_is_rejected(cluster: dict[str, Any]) -> None:
    import jsonschema

    broken = copy.deepcopy(cluster)
    broken["available_node_types"]["worker_gpu"]["min_worker"] = 0
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)
