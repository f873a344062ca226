"""A local Ray run listens on the loopback interface only (no Ray port on the network).

Every TCP socket in LISTEN state held by a process of this Ray session (this process and its
descendants: GCS, raylet, dashboard agent, runtime-env agent, workers) must be bound to
127.0.0.0/8 or ::1 (or ::ffff:127.x). Read from ``/proc/net/tcp{,6}`` and ``/proc/<pid>/fd``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")]


def _listening() -> dict[int, tuple[str, int]]:
    """socket inode -> (address hex as in /proc, port) for every LISTEN TCP socket."""
    out: dict[int, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            addr, port = fields[1].split(":")
            out[int(fields[9])] = (addr, int(port, 16))
    return out


def _is_loopback(addr: str) -> bool:
    if len(addr) == 8:  # IPv4, little-endian hex: first octet is the last byte
        return int(addr[6:8], 16) == 127
    words = [addr[i:i + 8] for i in range(0, 32, 8)]
    if words[:3] == ["00000000", "00000000", "FFFF0000"]:  # ::ffff:a.b.c.d (words are LE)
        return int(words[3][6:8], 16) == 127
    return words == ["00000000", "00000000", "00000000", "01000000"]  # ::1


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def test_is_loopback_parser() -> None:
    assert _is_loopback("0100007F") and not _is_loopback("00000000")
    assert not _is_loopback("020200C0")
    assert _is_loopback("0000000000000000FFFF00000100007F")
    assert _is_loopback("00000000000000000000000001000000")
    assert not _is_loopback("00000000000000000000000000000000")


def test_local_ray_listens_on_loopback_only(ray_session: None) -> None:  # noqa: F811
    import ray

    @ray.remote
    def pid() -> int:
        return os.getpid()

    worker = ray.get(pid.remote())  # a worker process exists and listens too
    listening = _listening()
    sockets: list[tuple[int, str, str, int]] = []
    for p in _descendants(os.getpid()):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in listening:
                    sockets.append((p, _cmdline(p), *listening[inode]))
    names = " ".join(s[1] for s in sockets)
    assert "gcs_server" in names and "raylet" in names, sockets
    assert any(s[0] == worker for s in sockets), sockets
    exposed = [s for s in sockets if not _is_loopback(s[2])]
    assert not exposed, "Ray ports reachable from the network:\n" + "\n".join(map(str, exposed))
    node_ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    assert node_ip == "127.0.0.1"
