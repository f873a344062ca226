"""The one way ``automl-asd`` connects to Ray: :func:`init_ray` (apply, search, score, demo).

Connects to a running cluster when an address is given (or ``RAY_ADDRESS`` is set), otherwise
starts a local runtime bound to 127.0.0.1 with the dashboard off
(:mod:`automl_asd.orchestration.local_ray`). Usage statistics are off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from automl_asd.errors import AutomlAsdError, one_line
from automl_asd.orchestration.local_ray import (
    connect_loopback,
    host_port,
    init_local_ray,
    loopback_head_node_ip,
    recorded_head_address,
)

__all__ = ["init_ray", "shutdown_ray", "ClusterUnreachableError", "RayStartError",
           "check_address", "check_reachable", "LOCAL", "FORWARDED_ENV", "is_local"]

logger = logging.getLogger(__name__)

#: ``--address local``: start a new local runtime (loopback only), as with no address.
LOCAL = "local"

#: environment switches a cluster job carries to its workers (``runtime_env``)
FORWARDED_ENV = ("AUTOML_ASD_VERIFY_AUDIO",)

#: Seconds to wait for a TCP connection to the cluster's head before giving up
#: (``AUTOML_ASD_CONNECT_TIMEOUT_S``); Ray itself waits minutes for an unreachable head.
CONNECT_TIMEOUT_S = 10.0

#: :func:`cancel_unfinished`: seconds between cancels of a task that has not stopped, and how
#: many cancels at most (Ray loses a cancel now and then; a stopped task stops within 0.1 s)
CANCEL_GRACE_S = 1.0
CANCEL_TRIES = 4


class RayStartError(AutomlAsdError):
    """Ray failed to start or connect (one line; its logs hold the rest)."""


class ClusterUnreachableError(AutomlAsdError, ConnectionError):
    """``--address`` names a Ray head that does not answer (one line, with the fix)."""


def check_reachable(address: str, timeout_s: float | None = None) -> None:
    """Refuse an ``--address`` whose head cannot be reached within ``timeout_s`` seconds: a
    TCP connection to ``host:port`` (the GCS port, or the Ray Client port of ``ray://``), so
    that a wrong address fails in seconds with the fix instead of Ray's minutes-long wait. Not
    checked: ``auto``/``local`` and forms without a port (Ray resolves those itself).

    Raises:
        ClusterUnreachableError: nothing accepts connections there.
    """
    parsed = host_port(address, ray_client=True)
    if parsed is None:
        return
    host, port = parsed
    if timeout_s is None:
        timeout_s = float(os.environ.get("AUTOML_ASD_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S))
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = (f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError)
               else (exc.strerror or str(exc)))
        raise ClusterUnreachableError(
            f"--address {address}: cannot reach a Ray head at {host}:{port} ({why}); start "
            "one there (`ray start --head` or `ray up cluster.yaml`), check the host and "
            "port, or leave --address out to run on a local Ray") from exc


def check_address(address: str | None) -> str | None:
    """The cluster address a command will use, checked: ``address`` (``--address``), else
    ``$RAY_ADDRESS``, else ``None`` (a local Ray). ``"local"`` (given, not from the
    environment) asks for a new local Ray, bound to 127.0.0.1 like ``None``, whatever
    ``$RAY_ADDRESS`` says. A set address must answer (:func:`check_reachable`); commands call
    this before any work, :func:`init_ray` again.

    Raises:
        ClusterUnreachableError: the address is set and nothing accepts connections there.
    """
    if address == LOCAL:
        return LOCAL
    resolved = address or os.environ.get("RAY_ADDRESS") or None
    if resolved == LOCAL:  # $RAY_ADDRESS=local: a new local runtime, loopback-bound too
        return LOCAL
    if resolved:
        check_reachable(resolved)
    return resolved


def is_local(address: str | None) -> bool:
    """Whether ``address`` (``--address``; ``None``: ``$RAY_ADDRESS`` or nothing) means a new
    local runtime started here rather than a running cluster."""
    resolved = address or os.environ.get("RAY_ADDRESS") or None
    return resolved is None or resolved == LOCAL or address == LOCAL


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
    # checked even when connected: a wrong address is an error, not ignored
    address = check_address(address)
    if ray.is_initialized():
        return False
    # ray.init installs its own SIGTERM handler (exit at once); the command's own one (the CLI
    # turns SIGTERM into an interrupt, whose clean-up cancels tasks and shuts Ray down) stays
    with _keeping_sigterm():
        try:
            if address and address != LOCAL:
                # a cluster's workers inherit their raylet's environment, not this driver's:
                # the switches that change what a task computes travel with the job
                env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
                runtime_env = {"env_vars": env} if env else None
                # `auto` joins $RAY_ADDRESS, else the head the last `ray start --head` here
                # recorded (as Ray resolves it)
                head = ((os.environ.get("RAY_ADDRESS") or recorded_head_address() or address)
                        if address == "auto" else address)
                node_ip = loopback_head_node_ip(head)
                if node_ip is None:
                    ray.init(address=address, runtime_env=runtime_env,
                             **ray_init_kwargs(verbose))
                else:  # a head bound to loopback: Ray alone would look for it elsewhere
                    connect_loopback(head, node_ip, runtime_env=runtime_env,
                                     **ray_init_kwargs(verbose))
            elif num_cpus is None:
                init_local_ray(**ray_init_kwargs(verbose))
            else:
                init_local_ray(num_cpus=num_cpus, **ray_init_kwargs(verbose))
        except KeyboardInterrupt:
            # stopped while Ray was starting: what it had started goes too (found
            # 2026-12-07: its dashboard and runtime-env agents outlived the command)
            with contextlib.suppress(Exception):
                ray.shutdown()
            raise
        except (AutomlAsdError, ValueError, OSError) as exc:
            if _refused_token(exc):
                raise RayStartError(
                    f"--address {address}: the Ray head refused this connection's "
                    "authentication token; that head uses token authentication: export "
                    "RAY_AUTH_MODE=token here, with the head's token in ~/.ray/auth_token "
                    "(or $RAY_AUTH_TOKEN / $RAY_AUTH_TOKEN_PATH)") from exc
            raise  # already one line naming the problem
        except Exception as exc:  # Ray's own start-up failures are bare Exceptions
            where = "connect to" if address and address != LOCAL else "start"
            raise RayStartError(f"Ray could not {where} its runtime: {one_line(exc)} (Ray's "
                                "logs: /tmp/ray/session_latest/logs; -v shows the traceback)"
                                ) from exc
    return True


def _refused_token(exc: BaseException) -> bool:
    """Whether Ray's connection failure was the head refusing the token (token auth on the
    head, off here): Ray says only "Failed to connect to Ray cluster at ..." on top."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short cause chain; never loop on a cyclic one
        if seen is None:
            return False
        if type(seen).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _keeping_sigterm() -> Iterator[None]:
    """Run a block that may replace the SIGTERM action (``ray.init`` installs its own exit;
    ``ray.shutdown`` puts back the OS default while ``signal.getsignal`` still names the old
    Python handler) and reinstall the command's Python handler afterwards. Only a Python
    handler: with none (SIG_DFL) Ray's own exit, which still runs the clean-up of finally
    blocks and atexit, is better than dying on the spot. Main thread only."""
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    except SystemExit as exc:
        # Ray's own handler ran (``sys.exit(15)``): the command's handler decides instead
        # (found 2026-12-07: a SIGTERM during ray.init exited 15 with nothing said)
        if not (main and callable(sigterm) and exc.code == signal.SIGTERM):
            raise
        signal.signal(signal.SIGTERM, sigterm)
        sigterm(signal.SIGTERM, None)
        raise
    finally:
        if main and callable(sigterm):
            signal.signal(signal.SIGTERM, sigterm)


def cancel_unfinished(refs: Iterable[Any], *, grace_s: float = CANCEL_GRACE_S,
                      tries: int = CANCEL_TRIES) -> int:
    """Force-cancel the tasks of ``refs`` whose results have not arrived, and return how many
    still had not stopped after ``tries`` cancels ``grace_s`` apart (0: all stopped).

    Force: a plain cancel raises KeyboardInterrupt inside the running task, which can leave a
    half-imported module (torch) in a worker Ray reuses. A task whose result is in is left
    alone: found 2026-12-07, force-cancelling one that was completing crashed the driver inside
    Ray 2.60 ("Check failed ... Tried to complete task that was not pending") instead of the
    command saying "interrupted". Cancels are sent again: found 2026-12-08, Ray 2.60 dropped
    about one force-cancel in ten sent just as the task reached its worker (4 of 40 in a loop;
    known races, ray-project/ray#24359 and #52703), and the task ran on to its end."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    refs = list(refs)
    if not refs:
        return 0
    try:
        _, unfinished = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
    except Exception:  # noqa: BLE001  (Ray already going away: try every one)
        unfinished = refs
    for attempt in range(max(1, tries)):
        for ref in unfinished:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if not unfinished or attempt == tries - 1:
            break
        try:
            _, unfinished = ray.wait(unfinished, num_returns=len(unfinished), timeout=grace_s,
                                     fetch_local=False)
        except Exception:  # noqa: BLE001  (Ray going away: its tasks go with it)
            return 0
    if unfinished:
        logger.warning("%d Ray task(s) did not stop when cancelled %d times; Ray ends them "
                       "when this command's Ray session ends", len(unfinished), tries)
    return len(unfinished)


def shutdown_ray() -> None:
    """``ray.shutdown()``, keeping the command's own Python SIGTERM handler (without it a later
    SIGTERM, e.g. in the report stage of ``apply``, killed the process on the spot)."""
    import ray  # noqa: PLC0415  (heavy third-party, loaded when used)

    with _keeping_sigterm():
        ray.shutdown()
