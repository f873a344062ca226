"""Start a local Ray runtime that listens on the loopback interface only.

A laptop or shared server running ``automl-asd`` must expose no Ray port on its network.
``ray.init(_node_ip_address="127.0.0.1")`` is not enough in Ray 2.60: Ray replaces a
loopback node address by the machine's interface address (``services.resolve_ip_for_localhost``)
and its GCS, raylet, workers and agents then listen there. Ray keeps a loopback node address
only where it disables multi-node clusters (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the macOS
and Windows default); :func:`init_local_ray` sets that switch for the duration of the start
(the processes it spawns inherit it), so every Ray process binds 127.0.0.1. The dashboard
stays off. Connecting to a cluster (``--address``) does not go through here.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["init_local_ray", "LOOPBACK"]

LOOPBACK = "127.0.0.1"
_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def init_local_ray(**kwargs: Any) -> Any:
    """``ray.init(**kwargs)`` for a new local runtime bound to 127.0.0.1, dashboard off.

    ``kwargs`` are passed on (``num_cpus``, ``log_to_driver``, ...); ``include_dashboard``
    defaults to False and ``_node_ip_address`` is always 127.0.0.1. Returns ray.init's result.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    previous = os.environ.get(_SWITCH)
    os.environ[_SWITCH] = "0"
    # ray.init() without an address connects to $RAY_ADDRESS when set: a local start never does
    ray_address = os.environ.pop("RAY_ADDRESS", None)
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)
    from ray._private import ray_constants  # noqa: PLC0415  (heavy third-party, loaded when used)

    enabled = ray_constants.ENABLE_RAY_CLUSTER  # read once at import; patch it for this start
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        kwargs.setdefault("include_dashboard", False)
        return ray.init(_node_ip_address=LOOPBACK, **kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled
        if ray_address is not None:
            os.environ["RAY_ADDRESS"] = ray_address
        if previous is None:
            os.environ.pop(_SWITCH, None)
        else:
            os.environ[_SWITCH] = previous
