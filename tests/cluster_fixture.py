"""A real multi-node Ray cluster on this one machine, for the ``cluster`` tests.

``ray start --head --num-cpus 0`` plus two worker nodes (``ray start --address``, one CPU and a
distinct custom resource each: ``worker_a`` / ``worker_b``), all bound to 127.0.0.1 with their
own temp dir and free ports. The head has no CPUs, so every task must run on a worker node, as
on the shipped ``cluster.yaml`` (CPU head, workers that do the work).

Stopping never calls ``ray stop`` (it would stop every Ray on the machine, other users'
included): the processes started here are found by their command line (the temp dir and the
ports chosen here) and their descendants, and killed by PID.

Use it from a test module with ``from cluster_fixture import two_node_cluster  # noqa: F401``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Environment of every Ray process and driver started for the cluster tests. Ray 2.60
#: replaces a loopback node address by the machine's interface address unless multi-node
#: clusters are "disabled" (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``): with it, drivers, agents
#: and workers all stay on 127.0.0.1.
CLUSTER_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
#: ``ray start`` that keeps ``--node-ip-address 127.0.0.1`` as given (no interface address)
#: while still allowing a worker node to join (the switch above would refuse it).
_RAY_START_LOOPBACK = """
import sys
import ray._private.ray_constants as constants
import ray._private.services as services
services.resolve_ip_for_localhost = lambda host: host
constants.ENABLE_RAY_CLUSTER = True
from ray.scripts.scripts import main
sys.argv = ["ray", *sys.argv[1:]]
main()
"""
_RAY = [sys.executable, "-c", _RAY_START_LOOPBACK]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(roots: set[int]) -> set[int]:
    """``roots`` and every process below them (children, grandchildren, ...)."""
    parent = {pid: _ppid(pid) for pid in _pids()}
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, pp in parent.items():
            if pp in found and pid not in found:
                found.add(pid)
                grew = True
    return found


@dataclass
class WorkerNode:
    """One worker node: its custom resource name and the raylet's node-manager port."""

    resource: str
    node_manager_port: int
    node_id: str = ""

    def raylet_pid(self) -> int | None:
        """PID of this node's raylet (found by its node-manager port)."""
        for pid in _pids():
            cmd = _cmdline(pid)
            if "raylet" in cmd and f"--node_manager_port={self.node_manager_port}" in cmd:
                return pid
        return None


@dataclass
class LocalCluster:
    """A head without CPUs and worker nodes, all on 127.0.0.1 (see the module docstring)."""

    temp_dir: Path
    port: int
    workers: list[WorkerNode] = field(default_factory=list)
    head_node_id: str = ""
    head_node_manager_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for a driver or CLI subprocess connecting to this cluster."""
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        return {**env, **CLUSTER_ENV}

    def _start(self, args: list[str], node_manager_port: int) -> None:
        ports = [f"--node-manager-port={node_manager_port}",
                 f"--object-manager-port={free_port()}",
                 f"--dashboard-agent-listen-port={free_port()}",
                 f"--dashboard-agent-grpc-port={free_port()}",
                 f"--metrics-export-port={free_port()}",
                 f"--runtime-env-agent-port={free_port()}"]
        cmd = [*_RAY, "start", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
               f"--temp-dir={self.temp_dir}", "--object-store-memory=100000000", *ports, *args]
        # A dead node is noticed in ~3 s instead of ~30 s (the retry test kills one).
        env = {**self.env(), "RAY_health_check_period_ms": "1000",
               "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self, worker_resources: tuple[str, ...] = ("worker_a", "worker_b")) -> None:
        """Start the head and the worker nodes; wait until all are alive."""
        self.head_node_manager_port = free_port()
        head = ["--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false"]
        from ray._private.utils import get_ray_client_dependency_error

        if get_ray_client_dependency_error() is None:
            # Only with ray[client] installed (the `cluster` extra): its server then takes a
            # free port instead of the shared default 10001. Minimal Ray (CI) starts none.
            head.append(f"--ray-client-server-port={free_port()}")
        self._start(head, self.head_node_manager_port)
        for name in worker_resources:
            node = WorkerNode(name, free_port())
            self._start([f"--address={self.address}", "--num-cpus=1",
                         f"--resources={json.dumps({name: 1})}"], node.node_manager_port)
            self.workers.append(node)
        self.wait_for_nodes(1 + len(worker_resources))

    def nodes(self) -> list[dict[str, object]]:
        """``ray.nodes()`` as seen by a short-lived driver subprocess (this process stays
        free of any Ray connection)."""
        code = ("import json, sys, ray; ray.init(address=sys.argv[1], log_to_driver=False); "
                "print('NODES=' + json.dumps([{k: n[k] for k in ('NodeID', 'Alive', "
                "'NodeManagerPort', 'Resources')} for n in ray.nodes()]))")
        proc = subprocess.run([sys.executable, "-c", code, self.address], env=self.env(),
                              capture_output=True, text=True, timeout=120)
        for line in proc.stdout.splitlines():
            if line.startswith("NODES="):
                nodes: list[dict[str, object]] = json.loads(line[len("NODES="):])
                return nodes
        raise RuntimeError(f"ray.nodes() failed:\n{proc.stdout}\n{proc.stderr}")

    def wait_for_nodes(self, n: int, timeout: float = 240.0) -> None:
        """Poll ``ray.nodes()`` until ``n`` nodes are alive; record their node ids."""
        deadline = time.monotonic() + timeout
        alive: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            alive = [x for x in self.nodes() if x["Alive"]]
            if len(alive) >= n:
                break
            time.sleep(2)
        else:
            raise RuntimeError(f"only {len(alive)} of {n} Ray nodes alive after {timeout} s")
        by_port = {int(str(x["NodeManagerPort"])): str(x["NodeID"]) for x in alive}
        self.head_node_id = by_port[self.head_node_manager_port]
        for w in self.workers:
            w.node_id = by_port.get(w.node_manager_port, w.node_id)

    def own_pids(self) -> set[int]:
        """Every process of this cluster: those naming its temp dir or ports, and below."""
        marks = [str(self.temp_dir), f"--node_manager_port={self.head_node_manager_port}",
                 *(f"--node_manager_port={w.node_manager_port}" for w in self.workers),
                 f"127.0.0.1:{self.port}"]
        roots = {pid for pid in _pids() if pid != os.getpid()
                 and any(m in _cmdline(pid) for m in marks)}
        return descendants(roots) - {os.getpid()}

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, this cluster's processes only (never ``ray stop``)."""
        pids = self.own_pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline:
                time.sleep(0.2)
                pids = {p for p in pids if _cmdline(p)}  # zombies and gone: empty


@pytest.fixture(scope="session")
def two_node_cluster() -> Iterator[LocalCluster]:
    """A head with no CPUs and two one-CPU worker nodes (``worker_a``, ``worker_b``)."""
    temp = Path(tempfile.mkdtemp(prefix="aac", dir="/tmp"))  # short: Unix socket paths
    cluster = LocalCluster(temp_dir=temp, port=free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(temp)], check=False)
