"""``--address`` of a Ray head that does not answer fails in seconds, in one line, with the fix.

Found by probing (2026-12-03): ``apply --address 127.0.0.1:6399`` with nothing listening there
waited in Ray's GCS client for more than three minutes without a word. Every socket here is
on the loopback interface.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from automl_asd.cli import main
from automl_asd.orchestration.session import (
    ClusterUnreachableError,
    check_address,
    check_reachable,
)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_listening_head_passes_and_other_forms_are_left_to_ray(listening_port: int) -> None:
    check_reachable(f"127.0.0.1:{listening_port}", timeout_s=5)
    check_reachable(f"ray://127.0.0.1:{listening_port}", timeout_s=5)
    for form in ("auto", "local", "ray://head-node", "head-node"):
        check_reachable(form, timeout_s=0.01)  # no port: not checked, no error


def test_nothing_listening_is_refused_with_the_fix(closed_port: int) -> None:
    with pytest.raises(ClusterUnreachableError) as exc:
        check_reachable(f"ray://127.0.0.1:{closed_port}", timeout_s=5)
    text = str(exc.value)
    assert f"--address ray://127.0.0.1:{closed_port}: cannot reach a Ray head at " \
           f"127.0.0.1:{closed_port}" in text
    assert "ray start --head" in text and "leave --address out" in text


@pytest.mark.parametrize("command", ["apply", "search"])
def test_cli_fails_in_seconds_and_writes_nothing(
        command: str, closed_port: int, tiny_dev_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = (["apply", "--frozen", "fast_default", "--data", str(tiny_dev_root)]
            if command == "apply" else
            ["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2"])
    rc = main([*argv, "--out", str(out), "--address", f"127.0.0.1:{closed_port}"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"cannot reach a Ray head at 127.0.0.1:{closed_port}" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_check_address_resolves_the_flag_then_ray_address(
        listening_port: int, closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert check_address(None) is None  # neither: a local Ray, nothing to check
    head = f"127.0.0.1:{listening_port}"
    assert check_address(head) == head
    monkeypatch.setenv("RAY_ADDRESS", head)
    assert check_address(None) == head  # the environment's address when no flag
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    assert check_address(head) == head  # the flag wins: the environment's is not used
    with pytest.raises(ClusterUnreachableError, match=f"127.0.0.1:{closed_port}"):
        check_address(None)


def test_an_unreachable_ray_address_fails_apply_unless_serial(
        closed_port: int, tiny_dev_root: Path, tiny_dev_types: tuple[str, ...], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    out = tmp_path / "out"
    argv = ["apply", "--frozen", "fast_default", "--data", str(tiny_dev_root)]
    assert main([*argv, "--out", str(out)]) == 1
    assert f"cannot reach a Ray head at 127.0.0.1:{closed_port}" in capsys.readouterr().err
    assert not out.exists()
    # --serial uses no Ray: the environment's address is not needed, the run goes ahead
    assert main([*argv, "--out", str(out), "--serial"]) == 0
    scored = sorted(f.name for f in out.glob("anomaly_score_*_test.csv"))
    assert scored == [f"anomaly_score_{t}_section_00_test.csv" for t in sorted(tiny_dev_types)]


def test_address_local_starts_a_loopback_ray_whatever_ray_address_says(
        closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-06: `--address local` went straight to ray.init(address="local"), which
    starts a runtime on every interface, and `score --address local` let $RAY_ADDRESS win."""
    import ray

    from automl_asd.orchestration import local_ray, session

    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    assert check_address("local") == "local"  # not checked, not replaced by the environment
    started: list[dict[str, object]] = []
    monkeypatch.setattr(session, "init_local_ray", lambda **kw: started.append(kw))
    monkeypatch.setattr(ray, "init", lambda *a, **kw: pytest.fail("ray.init called directly"))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert session.init_ray("local", num_cpus=2) is True
    assert started and started[0]["num_cpus"] == 2
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert check_address(None) == "local"
    # the local start hides $RAY_ADDRESS from ray.init (which would connect there) and binds
    # 127.0.0.1; the variable is back afterwards
    seen: dict[str, object] = {}

    def fake_init(**kw: object) -> None:
        import os

        seen.update(kw, address_env=os.environ.get("RAY_ADDRESS"))

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    local_ray.init_local_ray(num_cpus=1)
    assert seen["address_env"] is None and seen["_node_ip_address"] == "127.0.0.1"
    import os

    assert os.environ["RAY_ADDRESS"] == f"127.0.0.1:{closed_port}"


def test_starting_ray_keeps_the_command_s_sigterm_handler(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Found 2026-12-06: ray.init replaced the CLI's SIGTERM handler (interrupt, clean up)
    by its own exit, so `kill` skipped the cancelling of pending tasks."""
    import signal

    import ray

    from automl_asd.orchestration import session

    def ray_like_start(**kw: object) -> None:
        signal.signal(signal.SIGTERM, lambda *a: None)  # what ray.init does

    def mine(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(session, "init_local_ray", ray_like_start)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert session.init_ray(None) is True
        assert signal.getsignal(signal.SIGTERM) is mine
        # no Python handler before (a library caller): Ray's exit, which still cleans up, stays
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert session.init_ray(None) is True
        assert callable(signal.getsignal(signal.SIGTERM))
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.ray
def test_shutting_ray_down_keeps_the_command_s_sigterm_handler(tmp_path: Path) -> None:
    """Found 2026-12-06: after ray.shutdown() the OS-level SIGTERM action was the default again
    while signal.getsignal still named the CLI's handler, so `kill` during apply's report stage
    ended the process at once (rc 143, no clean-up, no "interrupted")."""
    import subprocess
    import sys

    script = tmp_path / "term.py"
    script.write_text(
        "import os, signal, ray\n"
        "from automl_asd.orchestration.session import init_ray, shutdown_ray\n"
        "def mine(signum, frame):\n"
        "    raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGTERM, mine)\n"
        "init_ray(None)\n"
        "ray.get(ray.remote(lambda: 1).remote())\n"
        "shutdown_ray()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    signal.pause()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted cleanly')\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "interrupted cleanly" in proc.stdout


def test_a_cluster_job_carries_verify_audio_to_its_workers(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """Found 2026-12-06: --verify-audio only set the driver's environment; a cluster's workers
    (their raylet's environment) keyed the feature cache by timestamps."""
    import ray

    from automl_asd.orchestration import session

    seen: list[dict[str, object]] = []
    monkeypatch.setattr(session, "check_address", lambda a: a)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: seen.append(kw))
    monkeypatch.delenv("AUTOML_ASD_VERIFY_AUDIO", raising=False)
    session.init_ray("10.0.0.1:6379")
    monkeypatch.setenv("AUTOML_ASD_VERIFY_AUDIO", "1")
    session.init_ray("10.0.0.1:6379")
    assert seen[0]["runtime_env"] is None
    assert seen[1]["runtime_env"] == {"env_vars": {"AUTOML_ASD_VERIFY_AUDIO": "1"}}


def test_a_ray_that_fails_to_start_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Found by probing (2026-12-06): under a file-size limit Ray's start-up raised a bare
    Exception, which the CLI printed as a 30-line traceback."""
    import ray

    from automl_asd.orchestration import session

    def stuck(**kw: object) -> None:
        raise Exception("The current node timed out during startup. This could happen "
                        "because some of the Ray processes failed to startup.")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(session, "init_local_ray", stuck)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(session.RayStartError, match="Ray could not start its runtime: The "
                                                    "current node timed out during startup"):
        session.init_ray(None)


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1:6379", True), ("127.3.2.1:6379", True), ("localhost:6379", True),
    ("LOCALHOST:6379", True), ("[::1]:6379", True), ("10.0.0.5:6379", False),
    ("head-node:6379", False), ("ray://127.0.0.1:10001", False), ("auto", False),
    ("local", False), ("127.0.0.1", False)])
def test_loopback_head_addresses_are_recognised(address: str, loopback: bool) -> None:
    from automl_asd.orchestration.local_ray import _loopback_port

    assert (_loopback_port(address) is not None) is loopback


def _fake_proc(root: Path, processes: dict[int, list[str]]) -> Path:
    for pid, argv in processes.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    (root / "self").mkdir()
    return root


def test_a_head_counts_as_loopback_only_when_its_raylet_here_is_on_loopback(
        tmp_path: Path) -> None:
    from automl_asd.orchestration.local_ray import loopback_head_node_ip

    raylet = "/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet"
    worker = "python default_worker.py --node-ip-address=127.0.0.1 --gcs-address=127.0.0.1:7000"
    proc = _fake_proc(tmp_path / "proc", {
        11: [raylet, "--node_ip_address=127.0.0.1", f"--python_worker_command={worker}",
             "--gcs-address=127.0.0.1:6391"],
        12: [raylet, "--node_ip_address=192.0.2.2", "--gcs-address=192.0.2.2:6379"],
        13: [raylet, "--node_ip_address=127.0.0.2", "--gcs-address=127.0.0.2:6392"],
        14: ["python", "-c", "--node_ip_address=127.0.0.1", "--gcs-address=127.0.0.1:7001"],
    })
    assert loopback_head_node_ip("127.0.0.1:6391", proc) == "127.0.0.1"
    assert loopback_head_node_ip("localhost:6391", proc) == "127.0.0.1"
    assert loopback_head_node_ip("127.0.0.1:6392", proc) == "127.0.0.2"
    # a head on the network address (plain `ray start --head`) answers on 127.0.0.1 too, but
    # its raylet is not there: Ray's own connection is the right one
    assert loopback_head_node_ip("127.0.0.1:6379", proc) is None
    assert loopback_head_node_ip("192.0.2.2:6379", proc) is None
    # only a raylet's own flags count: not one inside its worker command, not another process
    assert loopback_head_node_ip("127.0.0.1:7000", proc) is None
    assert loopback_head_node_ip("127.0.0.1:7001", proc) is None
    assert loopback_head_node_ip("ray://127.0.0.1:6391", proc) is None
    assert loopback_head_node_ip("127.0.0.1:6391", tmp_path / "no-proc") is None


def test_a_loopback_head_is_joined_on_loopback_and_others_directly(
        listening_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-07: `--address 127.0.0.1:PORT` to a head bound to 127.0.0.1 waited for
    ever: Ray rewrote the address to the machine's interface address (192.0.2.2:PORT)."""
    import os

    import ray
    from ray._private import ray_constants

    from automl_asd.orchestration import session

    calls: list[dict[str, object]] = []

    def fake_init(**kw: object) -> None:
        calls.append({**kw, "switch": os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"),
                      "multi_node": ray_constants.ENABLE_RAY_CLUSTER})

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    monkeypatch.setattr(session, "loopback_head_node_ip", lambda address: "127.0.0.1")
    multi_node = ray_constants.ENABLE_RAY_CLUSTER
    assert session.init_ray(f"127.0.0.1:{listening_port}") is True
    assert calls[-1]["_node_ip_address"] == "127.0.0.1"
    assert calls[-1]["switch"] == "0" and calls[-1]["multi_node"] is False
    # the switch is for the connection only
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ
    assert ray_constants.ENABLE_RAY_CLUSTER == multi_node
    monkeypatch.setattr(session, "loopback_head_node_ip", lambda address: None)
    assert session.init_ray(f"127.0.0.1:{listening_port}") is True
    assert "_node_ip_address" not in calls[-1] and calls[-1]["switch"] is None
    # `auto`: the head the last `ray start --head` recorded, joined on loopback when it is
    # bound there; Ray's own `auto` otherwise
    recorded = f"127.0.0.1:{listening_port}"
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(session, "recorded_head_address", lambda: recorded)
    monkeypatch.setattr(session, "loopback_head_node_ip",
                        lambda address: "127.0.0.1" if address == recorded else None)
    assert session.init_ray("auto") is True
    assert calls[-1]["address"] == recorded and calls[-1]["_node_ip_address"] == "127.0.0.1"
    monkeypatch.setattr(session, "recorded_head_address", lambda: None)
    assert session.init_ray("auto") is True
    assert calls[-1]["address"] == "auto" and "_node_ip_address" not in calls[-1]
    # as in Ray, $RAY_ADDRESS comes before the recorded head
    monkeypatch.setenv("RAY_ADDRESS", recorded)
    assert session.init_ray("auto") is True
    assert calls[-1]["address"] == recorded and calls[-1]["_node_ip_address"] == "127.0.0.1"


def test_a_head_that_wants_a_token_is_one_line_with_the_fix(
        listening_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray says only "Failed to connect to Ray cluster at ..." when the head refuses the
    connection's token (token auth on there, off here); the cause is in its chain."""
    import ray

    from automl_asd.orchestration import session

    class AuthenticationError(RuntimeError):  # named like Ray's: matched by name
        pass

    def refused(**kw: object) -> None:
        try:
            raise AuthenticationError("RPC error: InvalidAuthToken: token is missing")
        except AuthenticationError as exc:
            raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1") from exc

    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(session.RayStartError) as exc:
        session.init_ray(f"127.0.0.1:{listening_port}")
    assert "token authentication: export RAY_AUTH_MODE=token" in str(exc.value)
    assert "\n" not in str(exc.value)

    def unreachable(**kw: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1")

    monkeypatch.setattr(ray, "init", unreachable)
    with pytest.raises(ConnectionError) as plain:
        session.init_ray(f"127.0.0.1:{listening_port}")
    assert not isinstance(plain.value, session.RayStartError)


def test_a_sigterm_while_ray_starts_is_the_command_s_interrupt() -> None:
    """Found by a probe (2026-12-07): `ray.init` installs its own SIGTERM exit
    (``sys.exit(15)``), so a SIGTERM while Ray started ended the command with status 15 and
    nothing said. Inside the block the command's handler decides (the CLI's: an interrupt),
    and it is back in place afterwards."""
    import os
    import signal
    import sys

    from automl_asd.orchestration.session import _keeping_sigterm

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def ray_s(signum: int, frame: object) -> None:  # what ray.init installs
        sys.exit(signum)

    original = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"), _keeping_sigterm():
            signal.signal(signal.SIGTERM, ray_s)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                pass
        assert signal.getsignal(signal.SIGTERM) is interrupt
        # without a handler of the command's own, Ray's exit stands
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with pytest.raises(SystemExit), _keeping_sigterm():
            signal.signal(signal.SIGTERM, ray_s)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                pass
    finally:
        signal.signal(signal.SIGTERM, original)
