"""Official DCASE metrics: sklearn/independent references, a hand-worked example, the published
baseline tables, property tests and input validation."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from automl_asd.evaluation.metrics import (
    EPS,
    METRIC_FIELDS,
    MachineMetrics,
    amean_score,
    floored_hmean,
    machine_metrics,
    official_score,
    summary_table,
)

# --------------------------------------------------------------------------- references


def _mann_whitney_auc(y: NDArray[np.bool_], s: NDArray[np.float64]) -> float:
    """AUC by counting pairs: 1 per anomaly above a normal, 1/2 per tie."""
    pos, neg = s[y], s[~y]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _reference_pauc(y: NDArray[np.bool_], s: NDArray[np.float64], max_fpr: float) -> float:
    """McClish-standardised partial AUC built from first principles (no sklearn).

    ROC points at every distinct threshold (tied scores move FPR and TPR together, i.e. a
    diagonal segment), trapezoid area up to ``max_fpr`` with linear interpolation, then
    ``0.5 * (1 + (A - A_min) / (A_max - A_min))`` with ``A_min = max_fpr**2 / 2``, ``A_max =
    max_fpr``.
    """
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    fpr, tpr = [0.0], [0.0]
    for t in np.unique(s)[::-1]:
        fpr.append(float(((s >= t) & ~y).sum() / n_neg))
        tpr.append(float(((s >= t) & y).sum() / n_pos))
    area = 0.0
    for i in range(1, len(fpr)):
        x0, x1, y0, y1 = fpr[i - 1], fpr[i], tpr[i - 1], tpr[i]
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += (x1 - x0) * (y0 + y1) / 2.0
    a_min, a_max = max_fpr**2 / 2.0, max_fpr
    return 0.5 * (1.0 + (area - a_min) / (a_max - a_min))


def _random_section(
    rng: np.random.Generator, n: int, n_levels: int
) -> tuple[NDArray[np.bool_], NDArray[np.str_], NDArray[np.float64]]:
    y = rng.random(n) < 0.4
    target = rng.random(n) < 0.3
    # Guarantee each needed group exists.
    y[:3], target[:3] = [False, False, True], [False, True, True]
    scores = rng.integers(0, n_levels, n).astype(np.float64) + 0.3 * y  # many ties
    return y, np.where(target, "target", "source"), scores


# --------------------------------------------------------------------------- exact values


@pytest.mark.parametrize("seed", range(6))
def test_against_sklearn_and_pair_counting_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, domains, s = _random_section(rng, 300, n_levels=6)
    assert len(np.unique(s)) <= 12  # heavy ties: 300 clips on at most 12 distinct scores
    m = machine_metrics(y.astype(int), domains, s)
    for dom, value in (("source", m.auc_source), ("target", m.auc_target)):
        keep = (domains == dom) | y  # the domain's normals vs ALL anomalies
        assert value == pytest.approx(roc_auc_score(y[keep], s[keep]), abs=1e-12)
        assert value == pytest.approx(_mann_whitney_auc(y[keep], s[keep]), abs=1e-12)
    assert m.auc_all == pytest.approx(_mann_whitney_auc(y, s), abs=1e-12)
    assert m.pauc == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12)
    assert m.pauc == pytest.approx(_reference_pauc(y, s, 0.1), abs=1e-12)


def test_pauc_reference_on_continuous_scores() -> None:
    rng = np.random.default_rng(11)
    y = rng.random(500) < 0.5
    s = rng.normal(size=500) + 0.8 * y
    m = machine_metrics(y, np.array(["source", "target"] * 250), s, max_fpr=0.2)
    assert m.pauc == pytest.approx(_reference_pauc(y, s, 0.2), abs=1e-12)
    assert m.pauc == pytest.approx(roc_auc_score(y, s, max_fpr=0.2), abs=1e-12)


def test_hand_worked_example() -> None:
    # clip:       sN1  sN2  tN1   tN2  sA1  sA2  tA1  tA2
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    dom = ["source", "source", "target", "target", "source", "source", "target", "target"]
    s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.3, 0.7]
    dec = [0, 1, 0, 1, 1, 1, 0, 1]
    m = machine_metrics(y, dom, s, dec)
    # AUC-s: source normals {0.1, 0.4} vs all anomalies {0.4, 0.9, 0.3, 0.7}:
    #   0.1 -> 4 wins; 0.4 -> 0.4 tie (1/2) + 0.9 + 0.7 = 2.5; (4 + 2.5) / 8 = 0.8125
    assert m.auc_source == 0.8125
    # AUC-t: target normals {0.35, 0.8}: 0.35 -> 0.4, 0.9, 0.7 = 3; 0.8 -> 0.9 = 1; 4/8 = 0.5
    assert m.auc_target == 0.5
    # AUC (all): all 4 normals vs 4 anomalies: 6.5 + 4 = 10.5 / 16 = 0.65625
    assert m.auc_all == 0.65625
    # pAUC: descending scores 0.9a 0.8n 0.7a ...; ROC (fpr, tpr) goes (0,0) -> (0,.25) ->
    #   (.25,.25); at fpr=0.1 tpr=0.25, area = 0.1*0.25 = 0.025; McClish:
    #   0.5*(1 + (0.025 - 0.005) / (0.1 - 0.005)) = 0.5*(1 + 4/19) = 23/38
    assert m.pauc == pytest.approx(23 / 38, abs=1e-15)
    # Source decisions: normals (0, 1), anomalies (1, 1) -> tp=2 fp=1 fn=0:
    #   P = 2/3, R = 1, F1 = 2*(2/3)*1/(5/3) = 0.8
    assert m.precision_source == pytest.approx(2 / 3)
    assert m.recall_source == 1.0
    assert m.f1_source == pytest.approx(0.8)
    # Target decisions: normals (0, 1), anomalies (0, 1) -> tp=1 fp=1 fn=1: P = R = F1 = 0.5
    assert (m.precision_target, m.recall_target, m.f1_target) == (0.5, 0.5, 0.5)
    # Section score: 3 / (1/0.8125 + 1/0.5 + 38/23) = 3 / (16/13 + 2 + 38/23) = 897/1460
    assert m.score == pytest.approx(897 / 1460, abs=1e-15)
    assert official_score({"fan": m}) == pytest.approx(897 / 1460, abs=1e-15)
    # a-mean: (0.8125 + 0.5 + 23/38) / 3
    assert amean_score({"fan": m}) == pytest.approx((0.8125 + 0.5 + 23 / 38) / 3)


def test_pauc_matches_evaluator_readme_example() -> None:
    # The [EV23] README example pAUC 0.5368421 is the McClish form of a raw partial area of
    # 0.012 (TPR 0.12 across FPR [0, 0.1]): 0.5 * (1 + (0.012 - 0.005) / (0.1 - 0.005)).
    # Build it: 25 anomalies, 3 above all 10 normals -> TPR = 3/25 = 0.12 until FPR = 0.1.
    s = np.array([10.0, 11.0, 12.0] + [-1.0] * 22 + list(range(10)), dtype=np.float64)
    y = np.array([1] * 25 + [0] * 10)
    m = machine_metrics(y, ["source", "target"] * 17 + ["source"], s)
    assert round(m.pauc, 7) == 0.5368421
    assert m.pauc == pytest.approx(0.5 * (1 + 0.007 / 0.095), abs=1e-12)


def test_decision_metrics_eps_guards_and_single_class_domain() -> None:
    # Target domain: no anomalies and no positive decisions -> tp = fp = fn = 0:
    #   precision = 0 / eps = 0, recall = 0 / eps = 0, F1 = 0 / eps = 0 (no division error).
    y = [0, 1, 0, 0]
    dom = ["source", "source", "target", "target"]
    m = machine_metrics(y, dom, [0.0, 1.0, 0.2, 0.1], [0, 0, 0, 0])
    assert (m.precision_target, m.recall_target, m.f1_target) == (0.0, 0.0, 0.0)
    # Source: tp=0, fn=1 -> recall 0; precision 0/eps = 0
    assert (m.precision_source, m.recall_source, m.f1_source) == (0.0, 0.0, 0.0)
    assert m.auc_target == 1.0  # target normals {0.2, 0.1} vs the source anomaly 1.0


def test_without_decisions_fields_are_none() -> None:
    m = machine_metrics([0, 0, 1], ["source", "target", "target"], [0.1, 0.2, 0.3])
    assert m.precision_source is None and m.f1_target is None
    assert list(m.as_dict()) == list(METRIC_FIELDS)


def test_domains_accept_numeric_and_enum_forms() -> None:
    from automl_asd.data import Domain

    y, s = [0, 0, 1, 1], [0.3, 0.1, 0.2, 0.9]
    a = machine_metrics(y, ["source", "target", "source", "target"], s)
    b = machine_metrics(y, [0, 1, 0, 1], s)
    c = machine_metrics(y, [Domain.SOURCE, Domain.TARGET, Domain.SOURCE, Domain.TARGET], s)
    assert a == b == c
    assert a.auc_source == 0.5  # 0.3 vs {0.2, 0.9}: one win of two


def test_floor_and_official_score_definition() -> None:
    zero = MachineMetrics(0.0, 0.9, 0.8, 0.5)
    good = MachineMetrics(0.9, 0.9, 0.9, 0.9)
    # 0.0 is floored at eps, so the h-mean is ~6 * eps instead of a division error.
    omega = official_score({"a": zero, "b": good})
    assert 0.0 < omega < 10 * sys.float_info.epsilon
    assert floored_hmean([0.5, 0.25]) == pytest.approx(1 / 3)  # 2 / (2 + 4)
    assert math.isnan(floored_hmean([0.5, math.nan]))
    with pytest.raises(ValueError, match="no machine types"):
        official_score({})


# --------------------------------------------------------------------------- published tables

# The DCASE 2025 Task 2 baseline results: per machine type (AUC-s, AUC-t, pAUC).
EVAL_2025 = {
    "MSE": (
        [0.8102, 0.8140, 0.6770, 0.5284, 0.7198, 0.7304, 0.6686, 0.6486],
        [0.3436, 0.4976, 0.3670, 0.6272, 0.3956, 0.4436, 0.4430, 0.6592],
        [0.5421, 0.5284, 0.5500, 0.5553, 0.5205, 0.5342, 0.5232, 0.6211],
    ),
    "MAHALA": (
        [0.7726, 0.8616, 0.6982, 0.5586, 0.7638, 0.7498, 0.7042, 0.7290],
        [0.5260, 0.4264, 0.5090, 0.5548, 0.3268, 0.4042, 0.5278, 0.7904],
        [0.5416, 0.5184, 0.5684, 0.5400, 0.4911, 0.5142, 0.5379, 0.7005],
    ),
}
MT_2025 = ["AutoTrash", "HomeCamera", "ToyPet", "ToyRCCar", "BandSealer", "CoffeeGrinder",
           "Polisher", "ScrewFeeder"]
# (official score README value, h-mean row AUC-s/AUC-t/pAUC, a-mean row, a-mean total)
EXPECTED_2025 = {
    "MSE": (0.5442827820713174, (0.6880, 0.4495, 0.5453), (0.6996, 0.4721, 0.5468), 0.5729),
    "MAHALA": (0.56505582, (0.7199, 0.4788, 0.5459), (0.7297, 0.5082, 0.5515), 0.5965),
}
EVAL_2024 = {
    "MAHALA": (
        [0.7544, 0.6610, 0.5684, 0.6794, 0.8388, 0.6060, 0.6556, 0.5834, 0.8032],
        [0.4240, 0.5550, 0.5550, 0.4464, 0.4640, 0.5898, 0.5790, 0.4250, 0.7338],
        [0.5084, 0.6079, 0.4926, 0.4921, 0.5800, 0.5511, 0.4837, 0.5179, 0.5905],
    ),
    "MSE": (
        [0.7912, 0.6500, 0.6916, 0.7658, 0.8602, 0.6224, 0.7504, 0.6596, 0.7070],
        [0.4796, 0.4824, 0.5374, 0.5266, 0.4388, 0.4598, 0.6948, 0.4152, 0.6352],
        [0.4942, 0.5547, 0.5011, 0.5000, 0.5021, 0.5163, 0.5274, 0.5116, 0.5558],
    ),
}
MT_2024 = ["3DPrinter", "AirCompressor", "Scanner", "ToyCircuit", "HoveringDrone", "HairDryer",
           "ToothBrush", "RoboticArm", "BrushlessMotor"]
EXPECTED_2024 = {
    "MAHALA": (0.5649, (0.6718, 0.5144, 0.5324), (0.6834, 0.5302, 0.5360), 0.5832),
    "MSE": (0.5651, (0.7151, 0.5058, 0.5172), (0.7220, 0.5189, 0.5181), 0.5863),
}


def _table_metrics(
    names: list[str], cols: tuple[list[float], list[float], list[float]]
) -> dict[str, MachineMetrics]:
    return {
        mt: MachineMetrics(a, b, p, math.nan)
        for mt, a, b, p in zip(names, *cols, strict=True)
    }


@pytest.mark.parametrize("mode", ["MSE", "MAHALA"])
def test_reproduces_2025_eval_baseline_table(mode: str) -> None:
    per_machine = _table_metrics(MT_2025, EVAL_2025[mode])
    omega_readme, h_row, a_row, a_total = EXPECTED_2025[mode]
    omega = official_score(per_machine)
    # Per-machine inputs are rounded to 4 decimals, so Omega matches the README to ~2e-6.
    assert round(omega, 5) == {"MSE": 0.54428, "MAHALA": 0.56506}[mode]
    assert omega == pytest.approx(omega_readme, abs=5e-6)
    table = summary_table(per_machine)
    assert list(table.index) == [*MT_2025, "h-mean", "a-mean"]
    for col, h, a in zip(("auc_source", "auc_target", "pauc"), h_row, a_row, strict=True):
        assert table.loc["h-mean", col] == pytest.approx(h, abs=6e-5)
        assert table.loc["a-mean", col] == pytest.approx(a, abs=6e-5)
    assert table.loc["h-mean", "score"] == omega == table.attrs["official_score"]
    assert table.loc["a-mean", "score"] == pytest.approx(a_total, abs=6e-5)


@pytest.mark.parametrize("mode", ["MSE", "MAHALA"])
def test_reproduces_2024_eval_baseline_table(mode: str) -> None:
    per_machine = _table_metrics(MT_2024, EVAL_2024[mode])
    omega_readme, h_row, a_row, a_total = EXPECTED_2024[mode]
    assert round(official_score(per_machine), 4) == omega_readme
    table = summary_table(per_machine)
    for col, h, a in zip(("auc_source", "auc_target", "pauc"), h_row, a_row, strict=True):
        assert table.loc["h-mean", col] == pytest.approx(h, abs=6e-5)
        assert table.loc["a-mean", col] == pytest.approx(a, abs=6e-5)
    assert amean_score(per_machine) == pytest.approx(a_total, abs=6e-5)


def test_reproduces_2025_dev_table_hmeans() -> None:
    # [P25] Table 1 MSE means (percent): h-means AUC-s 66.78, AUC-t 51.36, pAUC 52.95, Omega 56.25
    cols = (
        [71.05, 61.76, 66.53, 70.96, 64.80, 70.10, 63.53],
        [53.32, 56.46, 53.15, 38.75, 50.49, 48.77, 67.18],
        [49.79, 50.19, 61.12, 49.46, 52.49, 52.32, 57.35],
    )
    frac = ([v / 100 for v in cols[0]], [v / 100 for v in cols[1]], [v / 100 for v in cols[2]])
    mts = ["ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider", "valve"]
    table = summary_table(_table_metrics(mts, frac))
    assert [round(100 * table.loc["h-mean", c], 2) for c in ("auc_source", "auc_target", "pauc",
                                                              "score")] == [66.78, 51.36, 52.95,
                                                                            56.25]


def test_summary_table_multi_section_and_missing_decisions() -> None:
    m1 = machine_metrics([0, 0, 1, 1], [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.05], [0, 0, 1, 0])
    m2 = machine_metrics([0, 0, 1, 1], [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])
    m3 = machine_metrics([0, 0, 1], [0, 1, 1], [0.3, 0.1, 0.4])
    per = {("fan", "00"): m1, ("fan", "01"): m2, ("valve", "00"): m3}
    table = summary_table(per)
    assert list(table.index) == ["fan_section_00", "fan_section_01", "valve", "h-mean", "a-mean"]
    # Omega counts each (machine type, section): 9 values.
    vals = [m.auc_source for m in per.values()] + [m.auc_target for m in per.values()] + [
        m.pauc for m in per.values()]
    assert table.loc["h-mean", "score"] == pytest.approx(len(vals) / sum(1 / v for v in vals))
    assert math.isnan(table.loc["valve", "precision_source"])
    assert math.isnan(table.loc["h-mean", "precision_source"])
    assert table.loc["fan_section_01", "auc_all"] == 1.0


# --------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sections(draw: st.DrawFn) -> tuple[NDArray[np.bool_], NDArray[np.str_], NDArray[np.float64]]:
    """A section with >= 1 clip per (domain, label) group and integer scores (ties likely)."""
    groups = [(d, lab) for d in ("source", "target") for lab in (False, True)]
    y: list[bool] = []
    dom: list[str] = []
    scores: list[int] = []
    for d, lab in groups:
        vals = draw(st.lists(st.integers(-20, 20), min_size=1, max_size=12))
        scores += vals
        y += [lab] * len(vals)
        dom += [d] * len(vals)
    return np.array(y), np.array(dom), np.array(scores, dtype=np.float64)


@SETTINGS
@given(sections(), st.sampled_from(["affine", "exp", "cubic"]))
def test_invariant_to_strictly_increasing_transforms(
    sec: tuple[NDArray[np.bool_], NDArray[np.str_], NDArray[np.float64]], kind: str
) -> None:
    y, dom, s = sec
    f = {"affine": lambda x: 3.0 * x + 7.0, "exp": lambda x: np.exp(x / 10.0),
         "cubic": lambda x: x**3 + x}[kind]
    assert machine_metrics(y, dom, f(s)) == machine_metrics(y, dom, s)


@SETTINGS
@given(sections())
def test_label_swap_and_score_reversal_give_one_minus_auc(
    sec: tuple[NDArray[np.bool_], NDArray[np.str_], NDArray[np.float64]],
) -> None:
    y, dom, s = sec
    m = machine_metrics(y, dom, s)
    swapped = machine_metrics(~y, dom, s)
    assert swapped.auc_all == pytest.approx(1.0 - m.auc_all, abs=1e-12)
    # Per-domain AUCs compare fixed clip subsets, so reversing the ranking gives 1 - AUC.
    rev = machine_metrics(y, dom, -s)
    assert rev.auc_source == pytest.approx(1.0 - m.auc_source, abs=1e-12)
    assert rev.auc_target == pytest.approx(1.0 - m.auc_target, abs=1e-12)
    # McClish-standardised pAUC with max_fpr=0.1 lies in [9/19, 1].
    assert 9 / 19 - 1e-12 <= m.pauc <= 1.0


@SETTINGS
@given(st.lists(st.tuples(*[st.floats(0.0, 1.0)] * 3), min_size=1, max_size=10))
def test_official_score_between_min_and_amean(triples: list[tuple[float, float, float]]) -> None:
    per = {f"m{i}": MachineMetrics(a, b, p, 0.5) for i, (a, b, p) in enumerate(triples)}
    values = [v for t in triples for v in t]
    omega = official_score(per)
    assert min(values) - 1e-12 <= omega <= amean_score(per) + 1e-12
    assert omega >= EPS * 0.999  # never below the floor


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("y", "dom", "s", "dec", "match"),
    [
        ([0, 0, 0], ["source", "target", "source"], [1, 2, 3], None, "no anomalous clips"),
        ([0, 1, 1], ["source", "target", "source"], [1, 2, 3], None, "no target-domain normal"),
        ([0, 0, 1], ["target", "target", "source"], [1, 2, 3], None, "no source-domain normal"),
        ([0, 0, 1], ["source", "target"], [1, 2, 3], None, "differ in length"),
        ([0, 0, 1], ["source", "unknown", "target"], [1, 2, 3], None, "'unknown'"),
        ([0, 2, 1], ["source", "target", "target"], [1, 2, 3], None, "0/1"),
        ([0, 0, 1], ["source", "target", "target"], [1, np.nan, 3], None, "non-finite"),
        ([0, 0, 1], ["source", "target", "target"], [1, 2, 3], [0, 2, 1], "decisions must"),
        ([0, 0, 1], ["source", "target", "target"], [1, 2, 3], [0, 1], "decisions have shape"),
    ],
)
def test_invalid_inputs_raise_clear_errors(
    y: list[int], dom: list[str], s: list[float], dec: list[int] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        machine_metrics(y, dom, s, dec)
