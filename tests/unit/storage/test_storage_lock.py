"""Two runs must not share one local ``--storage`` at once.

Found by a review (2026-12-07): a second ``apply`` with the same ``--storage`` took the first
run's place in it, and the first run downloaded the second recipe's scores as its own (rc 0,
its results.md naming its own recipe); two searches sharing one ``--storage`` ran in one Tune
folder, and a later ``--resume`` of one froze the other's trials.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_asd.cli import main
from automl_asd.io.run_folder import RUN_MANIFEST, storage_lock


@pytest.mark.parametrize("command", ["apply", "search"])
def test_a_second_run_on_the_same_storage_fails_at_once(
        command: str, tiny_dev_root: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    argv = {"apply": ["apply", "--frozen", "fast_default", "--serial", "--no-plots"],
            "search": ["search", "--space", "smoke", "--trials", "1"]}[command]
    with storage_lock(str(store), "apply"):  # a run holding the storage
        rc = main([*argv, "--data", str(tiny_dev_root), "--out", str(out),
                   "--storage", str(store)])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{store}: another automl-asd run is writing it" in err and "apply --storage" in err
    assert "choose another --storage for this run" in err
    assert not (out / RUN_MANIFEST).exists()


def test_the_storage_lock_is_apart_from_the_run_folder_lock(tmp_path: Path) -> None:
    """--storage may be --out itself: its lock is another file than the folder's."""
    from automl_asd.io.run_folder import RunFolder

    with RunFolder.open(tmp_path / "run", command="apply"), \
            storage_lock(str(tmp_path / "run"), "apply"):
        pass
    with storage_lock("s3://bucket/x", "apply"):  # remote: nothing to lock here
        pass
