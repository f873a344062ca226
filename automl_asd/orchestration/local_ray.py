"""Start a local Ray runtime that listens on the loopback interface only.

A laptop or shared server running ``automl-asd`` must expose no Ray port on its network.
``ray.init(_node_ip_address="127.0.0.1")`` is not enough in Ray 2.60: Ray replaces a
loopback node address by the machine's interface address (``services.resolve_ip_for_localhost``)
and its GCS, raylet, workers and agents then listen there. Ray keeps a loopback node address
only where it disables multi-node clusters (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the macOS
and Windows default); :func:`init_local_ray` sets that switch for the duration of the start
(the processes it spawns inherit it), so every Ray process binds 127.0.0.1. The dashboard
stays off. Joining a head bound to this machine's loopback interface (``--address
127.0.0.1:PORT``) uses the same switch (:func:`connect_loopback`); other cluster addresses do
not go through here.

Ray 2.60 turns token authentication on for a new local runtime and keeps the token in
``~/.ray/auth_token``; where that file cannot be written (a read-only or missing home on a
shared server, a service account), :func:`init_local_ray` hands the runtime a fresh token in
``$RAY_AUTH_TOKEN`` instead (:func:`token_without_home`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from automl_asd.environment import absolute_cache_env

__all__ = ["init_local_ray", "connect_loopback", "token_without_home", "loopback_head_node_ip",
           "recorded_head_address", "host_port", "LOOPBACK"]

LOOPBACK = "127.0.0.1"
_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def init_local_ray(**kwargs: Any) -> Any:
    """``ray.init(**kwargs)`` for a new local runtime bound to 127.0.0.1, dashboard off.

    ``kwargs`` are passed on (``num_cpus``, ``log_to_driver``, ...); ``include_dashboard``
    defaults to False and ``_node_ip_address`` is always 127.0.0.1. Returns ray.init's result.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    token_without_home()
    absolute_cache_env()  # the workers run in other folders (Tune: one per trial)
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    # ray.init() without an address connects to $RAY_ADDRESS when set: a local start never does
    ray_address = os.environ.pop("RAY_ADDRESS", None)
    try:
        with _loopback_only():
            kwargs.setdefault("include_dashboard", False)
            return ray.init(_node_ip_address=LOOPBACK, **kwargs)
    finally:
        if ray_address is not None:
            os.environ["RAY_ADDRESS"] = ray_address


def token_without_home() -> bool:
    """Give a new local Ray runtime a fresh authentication token in ``$RAY_AUTH_TOKEN`` when
    Ray could not keep the one it makes in ``~/.ray/auth_token`` (found 2026-12-07: with an
    unwritable home, ``search`` and ``apply`` stopped on "permission denied: ~/.ray"); the
    processes Ray spawns inherit it, so token authentication stays on. Nothing is changed when
    ``$RAY_AUTH_MODE``, ``$RAY_AUTH_TOKEN`` or ``$RAY_AUTH_TOKEN_PATH`` is set or the file can
    be read or written. Returns whether the token was set."""
    if any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        return False
    try:
        token = Path.home() / ".ray" / "auth_token"
        if token.is_file() or _writable_below(token.parent):
            return False
    except (OSError, RuntimeError):  # RuntimeError: no home at all
        pass
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # 256 bits, as Ray makes its own
    return True


def _writable_below(folder: Path) -> bool:
    """Whether ``folder`` is, or could be created as, a writable folder: its nearest existing
    ancestor is a folder this process may create entries in."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def connect_loopback(address: str, node_ip: str = LOOPBACK, **kwargs: Any) -> Any:
    """``ray.init(address=address, **kwargs)`` for a head bound to this machine's loopback
    interface (:func:`loopback_head_node_ip`): the driver joins as ``node_ip`` (its raylet's
    address), on loopback too.

    Without this, Ray 2.60 rewrites the loopback head address to the machine's interface
    address (``192.0.2.2:PORT``), where a head bound to 127.0.0.1 does not listen, and waits
    for it for ever (found by probing, 2026-12-07). Returns ray.init's result.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    with _loopback_only():
        return ray.init(address=address, _node_ip_address=node_ip, **kwargs)


def loopback_head_node_ip(address: str, proc: Path = Path("/proc")) -> str | None:
    """The node address to join ``address`` with when it names a Ray head bound to this
    machine's loopback interface, else None (Ray's own way is right: a head on the network
    address, on another machine, or in a container).

    ``address`` must be ``HOST:PORT`` with a loopback host (``127.x.y.z``, ``::1``,
    ``localhost``), and a raylet of this machine must run with a loopback
    ``--node_ip_address`` and a loopback ``--gcs-address`` on the same port (read from
    ``/proc``, as Ray finds its own local raylets). A head started with
    ``ray start --head`` alone listens on every interface but its raylet has the network
    address: Ray's own connection is the one that works there.
    """
    port = _loopback_port(address)
    if port is None:
        return None
    try:
        pids = [d for d in proc.iterdir() if d.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            argv = (pid / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith("raylet"):
            continue
        flags = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
        node_ip, gcs = flags.get("node_ip_address", ""), flags.get("gcs-address", "")
        if _loopback_host(node_ip) and _loopback_port(gcs) == port:
            return node_ip
    return None


def recorded_head_address() -> str | None:
    """The head address the last ``ray start --head`` on this machine recorded (what
    ``--address auto`` joins), or None when there is none or it cannot be read."""
    try:
        from ray._private.utils import read_ray_address  # noqa: PLC0415  (heavy third-party)

        recorded = read_ray_address(None)
    except Exception:  # noqa: BLE001  (a private Ray helper: any failure means "unknown")
        return None
    return str(recorded) if recorded else None


def host_port(address: str, *, ray_client: bool = False) -> tuple[str, int] | None:
    """``(host, port)`` of a ``HOST:PORT`` address (``[::1]:PORT`` too; with ``ray_client``
    also ``ray://HOST:PORT``), else None (``auto``, ``local``, a form without a port)."""
    prefix = r"(?:ray://)?" if ray_client else ""
    match = re.fullmatch(prefix + r"\[?([^\]/]+?)\]?:(\d+)/?", address.strip())
    return None if match is None else (match.group(1), int(match.group(2)))


def _loopback_port(address: str) -> int | None:
    """The port of a ``HOST:PORT`` Ray address (not ``ray://``, ``auto`` or ``local``) whose
    host is this machine's loopback interface (``127.x.y.z``, ``::1``, ``localhost``), else
    None."""
    parsed = host_port(address)
    return parsed[1] if parsed is not None and _loopback_host(parsed[0]) else None


def _loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """Ray's "no multi-node cluster" switch, on for a block: the environment variable (the
    processes Ray spawns inherit it) and the constant Ray read from it at import."""
    previous = os.environ.get(_SWITCH)
    os.environ[_SWITCH] = "0"
    from ray._private import ray_constants  # noqa: PLC0415  (heavy third-party, loaded when used)

    enabled = ray_constants.ENABLE_RAY_CLUSTER  # read once at import; patch it for this block
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled
        if previous is None:
            os.environ.pop(_SWITCH, None)
        else:
            os.environ[_SWITCH] = previous
