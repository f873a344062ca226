"""The one way ``automl-asd`` connects to Ray: :func:`init_ray` (apply, search, score, demo).

Connects to a running cluster when an address is given (or ``RAY_ADDRESS`` is set), otherwise
starts a local runtime bound to 127.0.0.1 with the dashboard off
(:mod:`automl_asd.orchestration.local_ray`). Usage statistics are off.
"""

from __future__ import annotations

import os

from automl_asd.orchestration.local_ray import init_local_ray

__all__ = ["init_ray"]


def init_ray(address: str | None = None, *, num_cpus: int | None = None,
             verbose: int = 0) -> bool:
    """Connect to Ray unless already connected; returns True when this call started it (the
    caller shuts it down).

    ``address`` (or ``RAY_ADDRESS``) connects to a running cluster (``"auto"`` finds the local
    head); otherwise a local runtime is started, listening on 127.0.0.1 only, with
    ``num_cpus`` CPUs (``None``: Ray's own count of this machine's CPUs). ``verbose`` 0 keeps
    the workers' log lines (Tune checkpoint chatter) off the console, and Ray's own INFO lines
    and token-auth notice (:func:`~automl_asd.orchestration.progress.quiet_ray`); errors still
    reach the driver as exceptions.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    # imports ray.tune: only after the usage-statistics switch above
    from automl_asd.orchestration.progress import quiet_ray, ray_init_kwargs  # noqa: PLC0415  (imports ray.tune: after the usage-statistics switch)

    quiet_ray(verbose)
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, **ray_init_kwargs(verbose))
    elif num_cpus is None:
        init_local_ray(**ray_init_kwargs(verbose))
    else:
        init_local_ray(num_cpus=num_cpus, **ray_init_kwargs(verbose))
    return True
