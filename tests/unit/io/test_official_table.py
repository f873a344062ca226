"""results.csv / results.md in the official layout: the baseline's result columns per machine
type and section, arithmetic/harmonic-mean rows, Ω; numbers checked against sklearn."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import hmean
from sklearn.metrics import roc_auc_score

from automl_asd.evaluation.metrics import machine_metrics
from automl_asd.io.official_table import (
    OFFICIAL_COLUMNS,
    write_official_csv,
    write_official_markdown,
)

#: The header of the official baseline's result CSV (dcase2023_task2_baseline_ae, source/target).
BASELINE_HEADER = ["section", "AUC (source)", "AUC (target)", "pAUC", "pAUC (source)",
                   "pAUC (target)", "precision (source)", "precision (target)",
                   "recall (source)", "recall (target)", "F1 score (source)",
                   "F1 score (target)"]


def _section(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """20 clips: 5 per (domain, label) group; scores with a few ties; 0/1 decisions."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 0, 1], 5)
    dom = np.repeat([0, 0, 1, 1], 5)  # 1 = target
    s = np.round(rng.normal(size=20) + 0.8 * y, 1)
    d = (s > 0.4).astype(int)
    return y, dom, s, d


def _expected_row(y: np.ndarray, dom: np.ndarray, s: np.ndarray, d: np.ndarray) -> list[float]:
    """The baseline's per-section values computed here straight from sklearn."""
    row: dict[str, float] = {}
    for name, idx in (("source", 0), ("target", 1)):
        keep = (dom == idx) | (y == 1)
        row[f"AUC ({name})"] = roc_auc_score(y[keep], s[keep])
        inside = dom == idx
        row[f"pAUC ({name})"] = roc_auc_score(y[inside], s[inside], max_fpr=0.1)
        tp = int(((d == 1) & (y == 1) & inside).sum())
        fp = int(((d == 1) & (y == 0) & inside).sum())
        fn = int(((d == 0) & (y == 1) & inside).sum())
        p = tp / max(tp + fp, sys.float_info.epsilon)
        r = tp / max(tp + fn, sys.float_info.epsilon)
        row[f"precision ({name})"], row[f"recall ({name})"] = p, r
        row[f"F1 score ({name})"] = 2 * p * r / max(p + r, sys.float_info.epsilon)
    row["pAUC"] = roc_auc_score(y, s, max_fpr=0.1)
    return [row[c] for c in BASELINE_HEADER[1:]]


def test_csv_has_the_official_columns_and_sklearn_numbers(tmp_path: Path) -> None:
    assert list(OFFICIAL_COLUMNS) == BASELINE_HEADER
    cases = {("fan", "00"): _section(1), ("fan", "01"): _section(2), ("valve", "00"): _section(3)}
    per = {k: machine_metrics(y, dom, s, d) for k, (y, dom, s, d) in cases.items()}
    expected = {k: _expected_row(*v) for k, v in cases.items()}

    path = write_official_csv(tmp_path / "results.csv", per)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["fan"] and rows[1] == BASELINE_HEADER
    assert [r[0] for r in rows[2:6]] == ["00", "01", "arithmetic mean", "harmonic mean"]
    assert rows[6] == [] and rows[7] == ["valve"] and rows[8] == BASELINE_HEADER
    assert rows[12:16] == [[], ["all machine types"], BASELINE_HEADER, rows[15]]

    def nums(row: list[str]) -> list[float]:
        return [float(v) for v in row[1:]]

    assert nums(rows[2]) == pytest.approx(expected[("fan", "00")], abs=5e-5)
    assert nums(rows[3]) == pytest.approx(expected[("fan", "01")], abs=5e-5)
    assert nums(rows[9]) == pytest.approx(expected[("valve", "00")], abs=5e-5)
    fan = np.array([expected[("fan", "00")], expected[("fan", "01")]])
    assert nums(rows[4]) == pytest.approx(fan.mean(axis=0), abs=5e-5)
    assert nums(rows[5]) == pytest.approx(
        hmean(np.maximum(fan, sys.float_info.epsilon), axis=0), abs=5e-5)
    every = np.array(list(expected.values()))
    assert rows[15][0] == "arithmetic mean" and nums(rows[15]) == pytest.approx(
        every.mean(axis=0), abs=5e-5)
    assert rows[16][0] == "harmonic mean" and nums(rows[16]) == pytest.approx(
        hmean(np.maximum(every, sys.float_info.epsilon), axis=0), abs=5e-5)
    omega = hmean(np.concatenate([every[:, 0], every[:, 1], every[:, 2]]))
    assert rows[-1] == ["official score", f"{omega:.4f}"]
    assert all(len(v.split(".")[-1]) == 4 for r in rows[2:] for v in r[1:] if "." in v)


def test_markdown_names_the_recipe_and_leaves_missing_values_empty(tmp_path: Path) -> None:
    y, dom, s, _ = _section(4)
    y_no_target_anomaly = np.where(dom == 1, 0, y)
    per = {("pump", "00"): machine_metrics(y_no_target_anomaly, dom, s)}  # no decisions
    assert per[("pump", "00")].pauc_target is None
    md = write_official_markdown(tmp_path / "r.md", per, seconds={"pump": 12.34}, recipe={
        "name": "baseline_ae_mse", "hash": "ab" * 32, "official_baseline": "baseline_ae_mse"},
    ).read_text()
    assert "- recipe: `baseline_ae_mse` (content hash `abababababababab`), the official DCASE " \
           "baseline (`baseline_ae_mse`)" in md
    assert "| machine type | section | AUC (source) | AUC (target) | pAUC |" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| pump | 00 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{per[('pump', '00')].auc_source:.4f}"
    assert cells[6] == "" and cells[7:] == [""] * 6  # pAUC (target), decisions: absent
    assert "| pump | " in md and "| 12.3 |" in md
    assert md.count("| pump | arithmetic mean |") == 0  # one section: no repeated mean rows
