"""``--storage`` typos are refused instead of becoming local folders.

Found by probing (2026-12-03): ``apply --storage s3:/bad`` ran and wrote its outputs under a
local folder ``./s3:/bad``; the user meant a bucket.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_asd.cli import main
from automl_asd.storage import StorageError, check_location


@pytest.mark.parametrize("good", ["s3://bucket/runs/r1", "gs://b/x", "file:///nfs/runs/r1",
                                  "/nfs/runs/r1", "runs/r1", "./a:b", "~/runs"])
def test_paths_and_uris_pass_unchanged(good: str) -> None:
    assert check_location(good) == good


@pytest.mark.parametrize(("bad", "hint"), [
    ("s3:/bucket/runs", "did you mean s3://bucket/runs?"),
    ("gs:bucket", "did you mean gs://bucket?"),
    ("file:/nfs/runs", "did you mean file:///nfs/runs?"),
])
def test_a_scheme_without_double_slash_is_refused_with_the_fix(bad: str, hint: str) -> None:
    with pytest.raises(StorageError, match="without '://'") as exc:
        check_location(bad)
    assert hint in str(exc.value)
    with pytest.raises(StorageError, match="empty"):
        check_location("  ")


def test_apply_refuses_before_writing(tiny_dev_root: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    rc = main(["apply", "--frozen", "fast_default", "--data", str(tiny_dev_root), "--out",
               str(tmp_path / "out"), "--storage", "s3:/bucket/r1", "--serial"])
    assert rc == 1
    assert "looks like a s3 URI without '://'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no ./s3:, no out
