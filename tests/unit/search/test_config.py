"""Starting or resuming a search in a run folder (plain checks, no Ray)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from automl_asd.search.config import SearchConfig, check_start, run_meta
from automl_asd.search.space import load_space


def test_start_and_resume_checks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    space = load_space("smoke")
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path, trials=4, seed=3)
    meta = run_meta(cfg, ("bearing", "fan"), {"numpy": "1"})
    assert (meta["space_sha256"], meta["machine_types"], meta["seed"], meta["trials"]) == (
        space.sha256, ["bearing", "fan"], 3, 4)
    check_start(cfg, tmp_path, "st", None, meta, can_restore=False)  # a fresh folder: fine
    with pytest.raises(ValueError, match="already holds a search; pass --resume"):
        check_start(cfg, tmp_path, "st", None, meta, can_restore=True)
    resume = replace(cfg, resume=True)
    with pytest.raises(ValueError, match="st: no search state to resume"):
        check_start(resume, tmp_path, "st", meta, meta, can_restore=False)
    changed = {**meta, "machine_types": ["fan"]}
    with pytest.raises(ValueError, match="cannot resume: machine_types changed"):
        check_start(resume, tmp_path, "st", changed, meta, can_restore=True)
    with caplog.at_level("WARNING"):
        check_start(replace(resume, trials=9), tmp_path, "st", meta, meta, can_restore=True)
    assert "original 4 trials (--trials 9 is ignored" in caplog.text
