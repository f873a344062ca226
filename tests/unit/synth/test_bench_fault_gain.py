"""bench/fault_gain.py: the draws' novel machines rendered at other anomaly gains, issue 3's
difficulty checks on them, and the printed summary."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from automl_asd.data import scan
from tests.fixtures.bench import load_bench


@pytest.fixture(scope="module")
def fault_gain() -> ModuleType:
    return load_bench("fault_gain")


def test_summary_table_by_hand(fault_gain: ModuleType) -> None:
    omega = {"a": {1.0: [0.60, 0.70, 0.80], 2.0: [0.70, 0.80, 0.90]},
             "b": {1.0: [0.50, 0.50, 0.50], 2.0: [0.90, 0.95, 1.00]}}
    easy = {"rms_auc": 0.70, "ref_auc_s": 0.95, "ref_omega": 0.8}
    hard = {"rms_auc": 0.55, "ref_auc_s": 0.60, "ref_omega": 0.5}
    diff = {1.0: [hard, hard, {**hard, "ref_auc_s": 0.50}], 2.0: [hard, easy, easy]}
    lines = fault_gain.summary(omega, diff, [1.0, 2.0])
    assert "| 1 | `a` | 0.700 ± 0.082 | 0.600..0.800 | 1/3 |" in lines
    assert "| 2 | `b` | 0.950 ± 0.041 | 0.900..1.000 | 3/3 |" in lines
    # gain 1: a ahead of b; gain 2: b ahead of a -> the order reverses.
    assert "| 1 | 1.00 | `a` | 0.550 ok | 1 / 2 / 0 of 3 | 0.500 |" in lines
    assert "| 2 | -1.00 | `b` | 0.700 over | 0 / 1 / 2 of 3 | 0.700 |" in lines


def test_novel_trees_at_a_gain_share_machines_and_normal_clips(fault_gain: ModuleType,
                                                               tmp_path: Path) -> None:
    draws = load_bench("draws")
    (draw,) = draws.family_draws(1, novel_per_family=1)
    plain = draws.make_novel(draw, tmp_path, size="tiny")
    loud = draws.make_novel(draw, tmp_path, size="tiny", anomaly_gain=3.0)
    assert plain == tmp_path / "draw0" / "novel"
    assert loud == tmp_path / "draw0" / "novel_gain3"
    a, b = scan(plain), scan(loud)
    assert sorted(a) == sorted(b) == sorted(draw.novel_types)
    for mt in a:
        for ca, cb in zip(sorted(a[mt].clips, key=lambda c: c.path.name),
                          sorted(b[mt].clips, key=lambda c: c.path.name), strict=True):
            same = ca.path.read_bytes() == cb.path.read_bytes()
            assert same == ("_anomaly_" not in ca.path.name), ca.path.name
    # Issue 3's checks on both: RMS stays uninformative (levels are stratified per group),
    # the plain Gaussian finds louder faults better on average.
    da = [fault_gain.difficulty(md) for md in a.values()]
    db = [fault_gain.difficulty(md) for md in b.values()]
    for x in (*da, *db):
        assert 0.0 <= x["rms_auc"] <= 1.0 and 0.0 <= x["ref_auc_s"] <= 1.0
    assert max(abs(x["rms_auc"] - y["rms_auc"]) for x, y in zip(da, db, strict=True)) <= 0.05
    assert max(x["rms_auc"] for x in (*da, *db)) <= fault_gain.RMS_MAX
    assert sum(x["ref_omega"] for x in db) > sum(x["ref_omega"] for x in da) + 0.1
    # make_data at a gain renders the development tree at that gain too.
    dev, novel = draws.make_data(draw, tmp_path / "g3", size="tiny", anomaly_gain=3.0)
    assert novel.name == "novel_gain3"
    assert '"anomaly_gain": 3.0' in (dev / draw.dev_types[0] / ".synth.json").read_text()
