"""``apply``, ``search`` and ``score`` against a real multi-node Ray cluster on this machine.

The cluster (``cluster_fixture.two_node_cluster``): a head with no CPUs and two one-CPU worker
nodes, so every task must run on a worker node, as on the shipped ``cluster.yaml``. The CLI
runs as a separate driver process with ``--address``; each stage records the Ray node id it ran
on (``<mt>.summary.json``, ``shared/summary.json``, the search's trials table), and the tests
check those ids. The last test kills one worker node's raylet while it runs an ``apply`` task:
the task is retried on the other worker and the outputs are byte-identical to a reference run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from automl_asd.recipe import Recipe, load_recipe
from tests.fixtures.cluster_fixture import LocalCluster, _cmdline, _pids, _ppid

pytestmark = [pytest.mark.ray, pytest.mark.cluster, pytest.mark.slow]


def _cli(cluster: LocalCluster, *args: str, timeout: float = 300.0,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "automl_asd.cli", *args], env=cluster.env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"automl-asd {' '.join(args)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr[-6000:]}")
    return proc


def _csvs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*_section_*_test.csv"))}


def _summary(out: Path, mt: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / f"{mt}.summary.json").read_text())
    return data


def _margin(scope: str, epochs: int) -> Recipe:
    """margin_default made tiny: a small network, few epochs, short crops."""
    d = load_recipe("margin_default").to_dict()
    d["name"] = f"margin_tiny_{scope}"
    d["detector"]["params"].update({"size": "tiny", "crop_frames": 16, "emb_dim": 16,
                                    "epochs": epochs, "batch_size": 32, "n_subclusters": 2,
                                    "scope": scope, "amp": False})
    d["detector"]["params"]["backend"]["params"]["n_centers"] = 4
    return Recipe.from_dict(d)


def test_apply_score_and_search_run_on_worker_nodes(
    two_node_cluster: LocalCluster,  # noqa: F811
    tiny_dev_root: Path, tiny_novel_root: Path, tmp_path: Path,
) -> None:
    c = two_node_cluster
    workers = {w.node_id for w in c.workers}
    print(f"\nhead node {c.head_node_id}; worker nodes "
          + ", ".join(f"{w.resource}={w.node_id}" for w in c.workers))
    cache = str(tmp_path / "cache")
    out = tmp_path / "apply"
    _cli(c, "apply", "--frozen", "fast_default", "--data", str(tiny_novel_root), "--out",
         str(out), "--address", c.address, "--cache-dir", cache, "--no-plots")
    for mt in ("compressor", "grinder"):
        node = _summary(out, mt)["node_id"]
        print(f"apply {mt}: node {node}")
        assert node in workers and node != c.head_node_id

    test_dir = tiny_novel_root / "compressor" / "test"
    _cli(c, "score", "--model", str(out / "models" / "compressor"), str(test_dir),
         "--address", c.address, "--chunk-size", "16", "--out", str(tmp_path / "ray.csv"))
    _cli(c, "score", "--model", str(out / "models" / "compressor"), str(test_dir),
         "--out", str(tmp_path / "local.csv"))
    ray_rows = (tmp_path / "ray.csv").read_text().splitlines()
    assert len(ray_rows) == 41  # header + 40 test clips
    assert ray_rows == (tmp_path / "local.csv").read_text().splitlines()

    run = tmp_path / "search"
    _cli(c, "search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
         "--machine-types", "fan", "gearbox", "--address", c.address, "--out", str(run),
         "--cache-dir", cache)
    trials = pd.read_parquet(run / "trials.parquet")
    print("search trials on nodes:", trials["node_id"].tolist())
    assert len(trials) == 2 and set(trials["node_id"]) <= workers
    assert (run / "recipe.json").is_file()


def test_shared_stage_runs_on_a_worker_node_through_storage(
    two_node_cluster: LocalCluster,  # noqa: F811
    tiny_dev_root: Path, tmp_path: Path,
) -> None:
    c = two_node_cluster
    workers = {w.node_id for w in c.workers}
    recipe = tmp_path / "margin_all.json"
    recipe.write_text(_margin("all", epochs=1).to_json())
    out, store = tmp_path / "out", tmp_path / "store"
    _cli(c, "apply", "--frozen", str(recipe), "--data", str(tiny_dev_root), "--machine-types",
         "gearbox", "bearing", "--out", str(out), "--address", c.address, "--storage",
         f"file://{store}", "--cache-dir", str(tmp_path / "cache"), "--no-plots")
    shared = json.loads((store / "shared" / "summary.json").read_text())
    print(f"\nshared stage: node {shared['node_id']} pid {shared['pid']}")
    assert shared["node_id"] in workers and shared["node_id"] != c.head_node_id
    assert shared["pid"] != os.getpid()
    for mt in ("gearbox", "bearing"):
        node = _summary(store, mt)["node_id"]
        print(f"apply {mt}: node {node}")
        assert node in workers
    assert _csvs(out) == _csvs(store) and len(_csvs(out)) == 4
    assert (out / "shared" / "shared.json").is_file()


def test_a_user_shell_joins_a_loopback_head_by_its_address(
    two_node_cluster: LocalCluster,  # noqa: F811
    tiny_novel_root: Path, tmp_path: Path,
) -> None:
    """A user's shell has no Ray switches: found 2026-12-07, `--address 127.0.0.1:PORT` to a
    head bound to 127.0.0.1 then waited for ever on the machine's interface address (Ray
    rewrote the loopback address). The CLI joins it on loopback, and only there."""
    c = two_node_cluster
    env = {k: v for k, v in c.env().items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    out = tmp_path / "apply"
    args = ["apply", "--frozen", "fast_default", "--data", str(tiny_novel_root), "--out",
            str(out), "--address", f"localhost:{c.port}", "--cache-dir",
            str(tmp_path / "cache"), "--no-plots"]
    proc = subprocess.run([sys.executable, "-m", "automl_asd.cli", *args], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    workers = {w.node_id for w in c.workers}
    for mt in ("compressor", "grinder"):
        assert _summary(out, mt)["node_id"] in workers
    assert len(_csvs(out)) == 4


def test_preflight_names_the_node_and_the_path(
    two_node_cluster: LocalCluster,  # noqa: F811
    tiny_novel_root: Path, tmp_path: Path,
) -> None:
    c = two_node_cluster
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    t0 = time.monotonic()
    proc = _cli(c, "apply", "--frozen", "fast_default", "--data", str(tiny_novel_root),
                "--out", str(tmp_path / "out"), "--address", c.address,
                "--cache-dir", str(blocked / "cache"), "--no-plots", check=False)
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    print(f"\npre-flight ({time.monotonic() - t0:.1f} s): {errors}")
    assert proc.returncode == 1 and len(errors) == 1
    nodes = {c.head_node_id, *(w.node_id for w in c.workers)}
    assert any(f"node {n} " in errors[0] for n in nodes)
    assert f"--cache-dir {blocked / 'cache'}: not writable" in errors[0]
    assert not list((tmp_path / "out").glob("*.summary.json"))  # nothing ran


def _running_apply_task(raylet: int) -> int | None:
    """PID of an ``apply`` task process of the node whose raylet is ``raylet``."""
    for pid in _pids():
        if _ppid(pid) == raylet and _cmdline(pid).startswith("ray::automl-asd-apply"):
            return pid
    return None


def test_killed_worker_node_tasks_retry_on_the_other(
    two_node_cluster: LocalCluster,  # noqa: F811
    tiny_dev_root: Path, tmp_path: Path,
) -> None:
    """Runs last in this module: it leaves only one worker node alive."""
    c = two_node_cluster
    recipe = tmp_path / "margin_machine.json"
    recipe.write_text(_margin("machine", epochs=4).to_json())
    common = ["--frozen", str(recipe), "--data", str(tiny_dev_root), "--address", c.address,
              "--cache-dir", str(tmp_path / "cache"), "--no-plots", "--max-retries", "2"]
    ref = tmp_path / "ref"
    _cli(c, "apply", "--out", str(ref), *common)
    victim, survivor = c.workers
    raylet = victim.raylet_pid()
    assert raylet is not None
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "automl_asd.cli", "apply", "--out",
                               str(out), *common], env=c.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    task = None
    deadline = time.monotonic() + 180
    while task is None and time.monotonic() < deadline and driver.poll() is None:
        task = _running_apply_task(raylet)
        time.sleep(0.1)
    assert task is not None, "no apply task ever ran on the worker node to kill"
    time.sleep(1.0)  # well inside the task (torch import + training take seconds)
    still_running = _cmdline(task).startswith("ray::automl-asd-apply")
    # The node dies with its workers: a task process outliving a SIGKILLed raylet can still
    # finish and hand its result back (seen on a 2-core CI box), which is not a node loss.
    os.kill(raylet, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(task, signal.SIGKILL)
    print(f"\nkilled raylet {raylet} of node {victim.node_id} and its task pid {task} "
          f"(still running: {still_running})")
    log, _ = driver.communicate(timeout=300)
    print("\n".join(ln for ln in log.splitlines() if "apply [" in ln or "recipe " in ln
                    or "Ray task" in ln or "retr" in ln.lower() or "died" in ln.lower()))
    assert driver.returncode == 0, log[-6000:]
    assert still_running
    for mt in ("bearing", "fan", "gearbox"):
        node = _summary(out, mt)["node_id"]
        print(f"{mt}: node {node}")
        assert node == survivor.node_id
    assert _csvs(out) == _csvs(ref) and len(_csvs(ref)) == 6  # score + decision x 3 types
