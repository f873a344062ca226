"""The suite's guard (``tests/fixtures/loopback_guard.py``) refuses connections off this
machine, lets loopback ones through, and leaves Unix sockets alone."""

from __future__ import annotations

import errno
import socket

import pytest


def test_an_address_off_the_machine_is_refused_and_recorded(loopback_guard: list[str]) -> None:
    for host in ("10.0.0.5", "192.0.2.1", "head-node"):
        with pytest.raises(OSError) as exc, socket.socket() as s:
            s.connect((host, 6379))
        assert exc.value.errno == errno.ENETUNREACH
        assert f"connect to {host}:6379 refused" in str(exc.value)
    with socket.socket() as s:  # connect_ex is guarded too
        with pytest.raises(OSError):
            s.connect_ex(("10.0.0.5", 80))
    with pytest.raises(OSError):  # and what is built on connect
        socket.create_connection(("198.51.100.7", 443), timeout=1)
    assert loopback_guard == ["10.0.0.5:6379", "192.0.2.1:6379", "head-node:6379",
                              "10.0.0.5:80", "198.51.100.7:443"]
    loopback_guard.clear()  # recorded addresses would fail this test at teardown


def test_loopback_connections_go_through() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, port), timeout=5):
                pass
