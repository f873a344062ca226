"""The search's trial table on disk (``io.search_report.write_trials``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from automl_asd.io.search_report import write_trials


def test_a_trial_table_write_stopped_part_way_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-08 probing interrupts: Ctrl+C (or kill, or a full disk) while a search
    wrote trials.parquet left ``.trials.parquet.tmp-<pid>`` in the run folder, half written,
    which nothing removes; the table before it stays whole."""
    table = pd.DataFrame({"trial_id": ["a", "b"], "omega": [0.5, 0.6]})
    write_trials(tmp_path, table)
    before = (tmp_path / "trials.parquet").read_bytes()

    def stopped(self: pd.DataFrame, path: Path, **kw: object) -> None:
        Path(path).write_bytes(b"PAR1")  # part of it, then the signal
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_trials(tmp_path, table.assign(omega=[0.7, 0.8]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials.csv", "trials.parquet"]
    assert (tmp_path / "trials.parquet").read_bytes() == before
