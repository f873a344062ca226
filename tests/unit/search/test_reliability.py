"""How reliably test clips rank trials (search/selection.py ``ranking_variances`` /
``ranking_reliability``): the share of the trials' spread that is more than test-clip noise,
which bounds ρ(development, novel) on average."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_asd.search.selection import ranking_reliability, ranking_variances
from tests.fixtures.scoring import gaussian_section


def _trials(seps: list[float], n: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {f"t{i}": {("m", f"0{j}"): gaussian_section(rng, s, n) for j in range(2)}
            for i, s in enumerate(seps)}


def test_clearly_different_trials_rank_reliably_and_equal_ones_do_not() -> None:
    distinct = _trials([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], n=60)
    r = ranking_reliability("mean", distinct)
    assert r > 0.9
    assert r == ranking_reliability("mean", distinct)  # deterministic for a seed
    # Equal trials: their spread IS the clips' noise, so noise ~ total. One set of 8 gives a
    # very uncertain variance (reliability 0.00..0.65 over 6 seeds); pool 6 sets of 12.
    parts = np.array([ranking_variances("mean", _trials([1.0] * 12, n=40, seed=s))
                      for s in range(6)])
    total, noise = parts.sum(axis=0)
    assert noise / total == pytest.approx(1.0, abs=0.35)  # 0.75..1.39 over 6 groups of seeds


def test_shared_noise_does_not_count() -> None:
    # Three recipes scoring the same clips with the same noise, shifted apart only in their
    # anomalies' margin: every resample moves them together, so their order is sure even
    # on few clips. Independent noise of the same size leaves much less of it.
    rng = np.random.default_rng(0)
    base = gaussian_section(rng, 1.0, 6)
    y, d, s0 = base
    shared = {f"t{i}": {("m", "00"): (y, d, s0 + 0.4 * i * y)} for i in range(3)}
    independent = _trials([1.0, 1.4, 1.8], n=6, seed=1)
    assert ranking_reliability("mean", shared) > 0.75
    assert ranking_reliability("mean", shared) > ranking_reliability("mean", independent) + 0.3
    total, noise = ranking_variances("mean", shared)
    assert ranking_reliability("mean", shared) == pytest.approx(1 - noise / total)


def test_fewer_clips_rank_less_reliably() -> None:
    seps = [0.6, 0.8, 1.0, 1.2, 1.4, 1.6]
    many = np.mean([ranking_reliability("mean", _trials(seps, 60, s)) for s in range(4)])
    few = np.mean([ranking_reliability("mean", _trials(seps, 6, s)) for s in range(4)])
    assert many > 0.8
    assert many > few + 0.3


def test_ranking_reliability_needs_three_trials_on_the_same_clips() -> None:
    assert math.isnan(ranking_reliability("mean", _trials([0.5, 1.0], n=10)))
    mixed = {**_trials([0.5, 1.0], n=10), "t9": _trials([1.5], n=11)["t0"]}
    with pytest.raises(ValueError, match="other clips"):
        ranking_reliability("mean", mixed)
    same = _trials([1.0], n=10)["t0"]
    assert math.isnan(ranking_reliability("mean", {"a": same, "b": same, "c": same}))


def test_bootstrap_noise_of_omega_against_its_real_spread() -> None:
    """The noise ``ranking_variances`` subtracts is the bootstrap variance of Ω. Checked here
    against Ω's real spread over 60 fresh data sets of 6 sections near chance (Gaussian
    scores, anomalies shifted by 0.0), 4 seeds each: with 40 clips per (domain, label) group
    the two agree (0.86-1.16), with 25 (the ``small`` preset) nearly (0.99-1.48, mean 1.17);
    with 10 (the ``tiny`` preset) the bootstrap overstates the noise (1.42-2.06; 0.9-1.7 with
    anomalies shifted by 1.0), so reliabilities measured on such small test sets read low and
    the search report's near ties are over-counted (SMALL_TEST_GROUP, docs/benchmarks.md)."""
    from automl_asd.search.selection import bootstrap_values, objective_value, section_aucs

    def ratio(n: int) -> float:
        rng = np.random.default_rng(0)
        point, boot = [], []
        for k in range(60):
            clips = {("m", f"{j:02d}"): gaussian_section(rng, 0.0, n) for j in range(6)}
            point.append(objective_value("mean", {key: section_aucs(*v)
                                                  for key, v in clips.items()}))
            boot.append(bootstrap_values("mean", clips, n_boot=40, seed=k).var(ddof=1))
        return float(np.mean(boot) / np.var(point, ddof=1))

    assert 0.7 < ratio(40) < 1.4
    assert 0.7 < ratio(25) < 1.6
    assert ratio(10) > 1.3


def test_smallest_group_and_the_reports_caution_on_small_test_sets(tmp_path: Path) -> None:
    import pandas as pd

    from automl_asd.io.search_report import _margin_lines, pick_certainty_line, write_search_meta
    from automl_asd.search.selection import SMALL_TEST_GROUP, smallest_group

    clips = _trials([1.0], n=12)["t0"]
    assert smallest_group(clips) == 12
    y, d, sc = clips[("m", "00")]
    keep = np.r_[np.arange(len(y))[:-5]]  # drop 5 target anomalies of one section
    assert smallest_group({**clips, ("m", "00"): (y[keep], d[keep], sc[keep])}) == 7
    with pytest.raises(ValueError, match="no test clips"):
        smallest_group({})
    table = pd.DataFrame({"trial_id": ["a", "b"], "objective": [0.7, 0.69]})
    sel = {"chosen": "a", "near_tie": 0.25, "small_group_below": SMALL_TEST_GROUP,
           "margins": {"a": {"low": 0.6, "high": 0.8},
                       "b": {"low": 0.6, "high": 0.8, "beats_chosen": 0.4}}}
    small = "\n".join(_margin_lines(table, {**sel, "smallest_group": 10}))
    assert "Caution: some development (domain, label) groups hold only 10 test clips" in small
    assert "Below about 25 per group" in small
    for fine in ({**sel, "smallest_group": 50}, {k: v for k, v in sel.items()
                                                 if k != "small_group_below"}):
        assert "Caution" not in "\n".join(_margin_lines(table, fine))
    # The terminal line says it too.
    for meta, said in (({**sel, "smallest_group": 10}, True), ({**sel, "smallest_group": 25},
                                                                False)):
        out = tmp_path / str(meta["smallest_group"])
        write_search_meta(out, {"selection": meta})
        line = pick_certainty_line(out) or ""
        assert line.startswith("how sure is the pick: 1 of the other 1 top recipes beats it")
        assert ("only 10 test clips in some development (domain, label) group" in line) is said
