"""``search --novel``: the novel types are scored after the choice and cannot change it.

The same seeded search (``--max-concurrent 1``, repeatable) runs twice, once with the novel
types' test labels shuffled: ``recipe.json`` is the same, while the novel scores differ.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from automl_asd.orchestration.tune import run_search
from automl_asd.search.config import SearchConfig
from automl_asd.search.novel_check import carry_summary
from automl_asd.search.space import load_space


def test_carry_summary_by_hand() -> None:
    df = pd.DataFrame({"trial_id": ["a", "b", "c", "d"],
                       "in_search_omega": [0.9, 0.8, 0.7, 0.6],
                       "novel_omega": [0.70, 0.75, 0.60, 0.50],
                       "frozen": [True, False, False, False]})
    s = carry_summary(df, reference_novel_omega=0.55)
    assert s["frozen_novel_omega"] == 0.70
    assert s["best_novel_omega"] == 0.75
    assert s["regret"] == pytest.approx(0.05)
    assert s["spearman_rho"] == pytest.approx(0.8)  # ranks 1,2,3,4 vs 2,1,3,4
    assert s["reference_novel_omega"] == 0.55
    assert math.isnan(carry_summary(df.head(2))["spearman_rho"])


def _shuffle_labels(src: Path, dst: Path, seed: int) -> None:
    """Copy ``src`` and permute the normal/anomaly tokens of every type's test clips."""
    shutil.copytree(src, dst)
    rng = np.random.default_rng(seed)
    for test in sorted(dst.glob("*/test")):
        names = sorted(p.name for p in test.glob("*.wav"))
        labels = [n.split("_")[4] for n in names]
        perm = rng.permutation(labels)
        tmp = test.parent / "test_tmp"
        test.rename(tmp)
        test.mkdir()
        for i, (name, label) in enumerate(zip(names, perm, strict=True)):
            parts = name.split("_")
            parts[4], parts[5] = str(label), f"{i:04d}"
            (tmp / name).rename(test / "_".join(parts))
        tmp.rmdir()


@pytest.mark.ray
@pytest.mark.slow
def test_novel_labels_cannot_change_the_recipe(
        ray_session: None, tiny_dev_root: Path, tiny_novel_root: Path,  # noqa: F811
        tmp_path: Path) -> None:
    shuffled = tmp_path / "novel_shuffled"
    _shuffle_labels(tiny_novel_root, shuffled, seed=3)
    space = load_space("smoke")
    recipes, tables = [], []
    for name, novel in (("plain", tiny_novel_root), ("shuffled", shuffled)):
        cfg = SearchConfig(data=tiny_dev_root, space=space, out=tmp_path / name, trials=4,
                           max_concurrent=1, seed=0, cache_dir=tmp_path / "cache",
                           device="cpu", novel=novel, novel_top_k=3)
        outcome = run_search(cfg)
        assert "novel" in outcome.files
        recipe = json.loads((tmp_path / name / "recipe.json").read_text())
        # Tune draws random trial ids and the time stamp differs; the rest must be identical,
        # and the frozen trial must be the same trial of the (repeatable) sequence.
        for key in ("created", "trial_id"):
            recipe["provenance"].pop(key)
        order = outcome.trials.set_index("trial_id").loc[outcome.best_trial_id, "order"]
        recipes.append({**recipe, "frozen_trial_order": int(order)})
        tables.append(pd.read_parquet(outcome.files["novel"]))
        report = (tmp_path / name / "search_report.md").read_text()
        assert "## Does the choice carry?" in report
        assert "regret (best − frozen)" in report
        assert "## Time and representation cache per family" in report
        assert "of TPE's random start-up after the reference averaged" in report
    assert recipes[0] == recipes[1]
    plain, shuf = tables
    assert len(plain) == len(shuf)
    assert plain["frozen"].sum() == 1
    assert not np.allclose(plain["novel_omega"], shuf["novel_omega"])
    assert np.allclose(plain["in_search_omega"], shuf["in_search_omega"])


@pytest.mark.ray
@pytest.mark.slow
def test_a_failing_novel_check_keeps_the_search_and_says_why(
        ray_session: None, tiny_dev_root: Path, tiny_novel_root: Path,  # noqa: F811
        tmp_path: Path) -> None:
    """Found by probing (2026-12-03): a corrupt wav among the novel clips ended the search
    command with Ray's wrapped traceback after recipe.json was written."""
    bad = tmp_path / "novel_bad"
    shutil.copytree(tiny_novel_root, bad)
    wav = sorted((bad / "grinder" / "test").glob("*.wav"))[0]
    wav.write_bytes(b"not a wav file at all")
    cfg = SearchConfig(data=tiny_dev_root, space=load_space("smoke"), out=tmp_path / "run",
                       trials=2, max_concurrent=1, seed=0, cache_dir=tmp_path / "cache",
                       device="cpu", novel=bad, novel_top_k=2)
    outcome = run_search(cfg)
    assert outcome.novel_error is not None
    assert wav.name in outcome.novel_error and "corrupt or unsupported audio" in outcome.novel_error
    assert "Traceback" not in outcome.novel_error and "ray::" not in outcome.novel_error
    assert "novel" not in outcome.files
    assert (tmp_path / "run" / "recipe.json").is_file()
    report = (tmp_path / "run" / "search_report.md").read_text()
    assert "## Does the choice carry?" in report and "**Not measured**" in report
    assert wav.name in report


def test_top_distinct_scores_each_recipe_once_and_keeps_the_frozen_one() -> None:
    from automl_asd.search.novel_check import top_distinct
    from automl_asd.search.trials import TrialRecord

    def done(hashes: list[str | None]) -> list[TrialRecord]:
        return [TrialRecord(trial_id=t, order=i, status="complete", config={},
                            metrics={"omega": o}, recipe_hash=h)
                for i, (t, o, h) in enumerate(zip("abcde", [0.60, 0.62, 0.62, 0.55, 0.62],
                                                  hashes, strict=True))]

    hashed = done(["h1", "h2", "h2", "h3", "h2"])
    top, frozen_hash = top_distinct(hashed, 2, frozen_id="c")
    assert frozen_hash == "h2"
    assert [r.trial_id for r in top] == ["b", "a"]  # one row per recipe, best first
    top, _ = top_distinct(hashed, 1, frozen_id="d")  # frozen outside the top: appended
    assert [r.trial_id for r in top] == ["b", "d"]
    top, frozen_hash = top_distinct(done([None] * 5), 2, frozen_id="e")
    assert frozen_hash is None and [r.trial_id for r in top] == ["b", "c", "e"]
    # trials without a hash (an older version, resumed) are kept; hashed copies still merge
    top, _ = top_distinct(done(["h1", None, "h2", None, "h2"]), 3, frozen_id="e")
    assert [r.trial_id for r in top] == ["b", "c", "a"]
    # behavioural twins (different content hashes, one behaviour hash) count once, and the
    # frozen trial's twin stands for it
    twins = [replace(r, behaviour_hash="B" if r.trial_id in "bc" else None)
             for r in done(["h1", "h2", "h4", "h3", "h5"])]
    top, frozen_hash = top_distinct(twins, 2, frozen_id="c")
    assert frozen_hash == "B" and [r.trial_id for r in top] == ["b", "e"]


def test_the_carry_check_marks_the_picks_near_ties(tmp_path: Path) -> None:
    # The pick froze "bbbb"; "eeee" was a near tie frozen beside it (search.json). The novel
    # check scores both and says how the tie did on the novel types.
    from types import SimpleNamespace

    from automl_asd.io import search_report
    from automl_asd.search.config import one_by_one
    from automl_asd.search.novel_check import novel_check
    from automl_asd.search.trials import record_from_result, trial_recipe

    space = load_space("smoke")
    ref = space.reference_point()
    points = {"aaaa": ref, "bbbb": {**ref, "normalization.method": "none"},
              "eeee": {**ref, "normalization.method": "domain_log_zscore"}}
    records = [record_from_result(t, i, c, {"omega": o, "fidelity": 1.0, "recipe_hash":
                                            trial_recipe(space, c).content_hash()}, None,
                                  reference_point=ref)
               for i, ((t, c), o) in enumerate(zip(points.items(), (0.6, 0.8, 0.79),
                                                   strict=True))]
    search_report.write_search_meta(tmp_path, {"selection": {
        "chosen": "bbbb", "tie_recipes": {"eeee": "near_ties/eeee.json"}}})
    novel_by_norm = {"none": 0.62, "domain_log_zscore": 0.70, ref["normalization.method"]: 0.5}

    def evaluate(recipe: Any, machines: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(omega=novel_by_norm[recipe.normalization.method])

    cfg = SimpleNamespace(space=space, novel=tmp_path, novel_top_k=3, cache_dir=None,
                          device="cpu")
    outcome = SimpleNamespace(records=records, best_trial_id="bbbb", machine_types=["fan"],
                              run_dir=tmp_path)
    files = novel_check(cfg, outcome, one_by_one(evaluate), novel={"pump": object()})
    table = pd.read_parquet(files["novel"]).set_index("trial_id")
    assert table["near_tie"].to_dict() == {"bbbb": False, "eeee": True, "aaaa": False}
    assert table.loc["eeee", "novel_omega"] == 0.70
    report = (tmp_path / "search_report.md").read_text()
    assert "- best novel Ω among the pick's near ties (`near_tie`, frozen in `near_ties/`): " \
           "0.7000, 0.0800 above the frozen recipe's" in report
    assert "- regret (best − frozen): 0.0800" in report
    # A top-K that leaves the near tie out says so (found 2026-12-07: the line read as the
    # best of every near tie when only some had been scored)
    (tmp_path / "search_report.md").unlink()
    novel_check(SimpleNamespace(**{**vars(cfg), "novel_top_k": 1}), outcome,
                one_by_one(evaluate), novel={"pump": object()})
    assert "- the pick's 1 near tie (frozen in `near_ties/`): none among the trials scored " \
           "here (`--novel-top-k`); apply them to compare" \
           in (tmp_path / "search_report.md").read_text()
    # Without near ties the line is absent and the column all False.
    search_report.write_search_meta(tmp_path, {"selection": {"chosen": "bbbb",
                                                             "tie_recipes": {}}})
    (tmp_path / "search_report.md").unlink()
    files = novel_check(cfg, outcome, one_by_one(evaluate), novel={"pump": object()})
    assert not pd.read_parquet(files["novel"])["near_tie"].any()
    assert "near ties" not in (tmp_path / "search_report.md").read_text()
