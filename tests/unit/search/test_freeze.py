"""Trial records, the trial table and freezing of the best recipe (plain records, no Ray)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from automl_asd.io import search_report
from automl_asd.recipe import load_recipe
from automl_asd.search.config import SearchConfig
from automl_asd.search.freeze import (
    FreezeError,
    NothingFinishedError,
    SearchProvenance,
    best_record,
    freeze,
    freeze_search,
)
from automl_asd.search.space import SearchSpace, load_space
from automl_asd.search.trials import TrialRecord, record_from_result, table, trial_recipe

_PROV = SearchProvenance(seed=7, machine_types=("fan",), versions={"numpy": "1"},
                         created="2026-01-01T00:00:00+00:00")


def _record(space: SearchSpace, order: int, trial_id: str, config: dict[str, Any],
            omega: float | None, fidelity: float = 1.0, error: str | None = None,
            reference: bool = False, recipe_hash: str | None = None) -> TrialRecord:
    metrics: dict[str, Any] = {"trial_id": trial_id}
    if omega is not None:
        metrics.update({"omega": omega, "fidelity": fidelity, "rung": 1, "time_total_s": 2.5,
                        "timestamp": 1000 + order, "is_reference": int(reference),
                        "fan/auc_source": 0.7, "fan/auc_target": 0.6, "fan/pauc": 0.55,
                        "fan/omega": omega,
                        "recipe_hash": recipe_hash
                        or trial_recipe(space, config).content_hash()})
    return record_from_result(trial_id, order, config, metrics, error,
                              reference_point=space.reference_point())


def _points(space: SearchSpace) -> tuple[dict[str, Any], dict[str, Any]]:
    knn = {"features.n_mels": 64, "features.n_fft": 1024, "features.hop_length": 512,
           "detector.name": "pooled_stats", "detector.pooled_stats.pooling": "mean_std",
           "detector.pooled_stats.standardize": True,
           "detector.pooled_stats.backend.name": "knn",
           "detector.pooled_stats.backend.knn.n_centers": 8,
           "detector.pooled_stats.backend.knn.k": 3,
           "detector.pooled_stats.backend.knn.metric": "cosine",
           "detector.pooled_stats.domain_rule": "nearest_clip",
           "normalization.method": "domain_zscore", "supplemental.clean_as_normal": False,
           "supplemental.noise_mix_prob": 0.0, "ensemble.size": 1}
    cnn = {**{k: v for k, v in knn.items() if not k.startswith("detector.")},
           "detector.name": "margin_cnn", "detector.margin_cnn.size": "tiny",
           "detector.margin_cnn.epochs": 5, "detector.margin_cnn.scope": "all"}
    return knn, cnn


def test_record_status_follows_error_omega_and_fidelity() -> None:
    space = load_space("smoke")
    ref = space.reference_point()
    statuses = [record_from_result("t", 1, ref, m, e, reference_point=ref).status
                for m, e in (({"omega": 0.6, "fidelity": 1.0}, None),
                             ({"omega": 0.6, "fidelity": 0.5}, None),
                             ({"omega": 0.6, "fidelity": 1.0}, "RuntimeError: x"),
                             ({}, None))]
    assert statuses == ["complete", "stopped_early", "error", "not_run"]
    # a result from before the is_baseline -> is_reference rename still marks the reference
    other = {**ref, "normalization.method": "none"}
    assert record_from_result("t", 1, other, {"is_baseline": 1}, None).is_reference
    assert not record_from_result("t", 1, other, {}, None, reference_point=ref).is_reference


def test_a_reference_point_that_is_not_the_recipe_is_never_called_the_recipe(
        tmp_path: Path) -> None:
    """Found by a probe (2026-12-07): `smoke` fixes n_mels 64 and n_centers 8 where
    `fast_default` has 128 and 16, yet the report's "Best recipe" line, the recipe's
    description, the progress line and the novel check said "reference recipe" for that point
    (whose Ω was lower than `fast_default`'s on dev and on novel)."""
    from automl_asd.orchestration.progress import TrialProgress

    space = load_space("smoke")
    assert space.reference_label == "reference point"
    assert load_space("default").reference_label == "reference recipe"
    base = space.reference_point()
    other = {**base, "detector.pooled_stats.backend.knn.k": 3}
    records = [_record(space, 1, "aaaa", base, 0.60, reference=True),
               _record(space, 2, "bbbb", other, 0.70)]
    out = tmp_path / "run"
    search_report.write_search_meta(out, {"space_name": space.name, "machine_types": ["fan"]})
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=2, seed=7)
    outcome = freeze_search(cfg, out, records, _PROV, finished="now")
    report = (out / "search_report.md").read_text()
    assert "(reference point Ω = 0.6000, Δ = +0.1000)" in report
    assert "reference recipe" not in report
    assert "(reference point fast_default 0.6000)" in outcome.recipe.description
    progress = TrialProgress(2, bar=False, reference_label=space.reference_label)
    assert progress.reference_label == "reference point"


def test_which_capped_reference_a_resume_runs_again() -> None:
    """A reference its cap stopped below full fidelity runs again on a resume without a
    budget, once: not when another reference trial finished, failed (found by a review
    2026-12-07: a failing re-run was queued on every resume, one trial more each time) or is
    unfinished (Tune continues it)."""
    from automl_asd.search.trials import reference_capped

    space = load_space("smoke")
    base = space.reference_point()
    other = {**base, "detector.pooled_stats.backend.knn.k": 3}
    capped = _record(space, 1, "ref", base, 0.60, fidelity=0.5, reference=True)
    trial = _record(space, 2, "t2", other, 0.70)
    assert reference_capped([capped, trial], frozenset())
    assert not reference_capped([capped, trial], {"ref"})  # saved unfinished: Tune goes on
    again = {"complete": _record(space, 3, "ref2", base, 0.61, reference=True),
             "error": _record(space, 3, "ref2", base, None, error="RuntimeError: x",
                              reference=True)}
    for status, rerun in again.items():
        assert rerun.status == status
        assert not reference_capped([capped, trial, rerun], frozenset()), status
    assert not reference_capped([capped, trial, _record(space, 3, "ref2", base, None,
                                                        reference=True)], {"ref2"})
    assert not reference_capped([trial], frozenset())


def test_table_and_freeze_pick_best_full_fidelity_trial(tmp_path: Path) -> None:
    space = load_space("default")
    base = space.reference_point()
    knn, cnn = _points(space)
    records = [_record(space, 1, "aaaa", base, 0.60, reference=True),
               _record(space, 2, "bbbb", knn, 0.70),
               _record(space, 3, "cccc", cnn, 0.95, fidelity=0.25,  # better, stopped early
                       recipe_hash="partial point: never frozen"),
               _record(space, 4, "dddd", knn, None, error="RuntimeError: boom")]
    df = table(records[::-1], space)  # the table sorts by creation order
    assert df["trial_id"].tolist() == ["aaaa", "bbbb", "cccc", "dddd"]
    assert df["status"].tolist() == ["complete", "complete", "stopped_early", "error"]
    assert df["is_reference"].tolist() == [True, False, False, False]
    assert df.loc[3, "error"] == "RuntimeError: boom"
    assert str(df["param:detector.dcase_ae.epochs"].dtype) == "Int64"
    assert df.loc[1, "param:detector.dcase_ae.epochs"] is pd.NA

    out = tmp_path / "run"
    search_report.write_search_meta(out, {"space_name": space.name, "machine_types": ["fan"]})
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=4, seed=7)
    outcome = freeze_search(cfg, out, records, _PROV, finished="now")
    assert outcome.best_trial_id == "bbbb" and outcome.best_omega == 0.70
    assert outcome.reference_omega == 0.60
    assert outcome.records == tuple(records)
    assert outcome.reference == ("reference recipe `baseline_ae_mse` (the official DCASE "
                                 "baseline)")
    recipe = load_recipe(out / "recipe.json")
    assert recipe == outcome.recipe
    assert recipe.name == "search_default"
    assert recipe.detector.name == "pooled_stats"
    backend = recipe.detector.params["backend"]
    assert backend == {"name": "knn", "params": {"n_centers": 8, "k": 3, "metric": "cosine"}}
    assert recipe.features.n_mels == 64 and recipe.normalization.method == "domain_zscore"
    # the frozen recipe is what trial bbbb ran, renamed and described
    ran = trial_recipe(space, knn)
    assert replace(recipe, name=ran.name, description=ran.description).content_hash() \
        == records[1].recipe_hash
    prov = recipe.provenance
    assert (prov.source, prov.trial_id, prov.objective) == ("search", "bbbb", 0.70)
    assert prov.space_sha256 == space.sha256 and list(prov.dev_machine_types) == ["fan"]
    assert prov.created == _PROV.created and dict(prov.versions) == {"numpy": "1"}
    assert recipe.description == (
        "Best of 4 trials of search space 'default' (seed 7) on development types fan: "
        'Ω=0.7000 (reference recipe baseline_ae_mse 0.6000); versions {"numpy": "1"}')
    stored = pd.read_parquet(out / "trials.parquet")
    assert len(stored) == 4 and stored["omega"].iloc[1] == 0.70
    report = (out / "search_report.md").read_text()
    assert "Δ = +0.1000" in report and "Failed trials" in report and "boom" in report
    assert "- reference recipe `baseline_ae_mse` (the official DCASE baseline): queued " \
           "first, Ω = 0.6000" in report
    assert "(reference recipe Ω = 0.6000, Δ = +0.1000)" in report
    # the trial table: one summary column instead of every parameter
    head = next(ln for ln in report.splitlines() if ln.startswith("| trial_id |"))
    assert head == "| trial_id | status | omega | fidelity | wall_s | recipe |"
    rows = {ln.split(" | ")[0][2:]: ln for ln in report.splitlines() if ln.startswith("| ")}
    assert rows["bbbb"].endswith(
        "| features(n_mels=64, n_fft=1024, hop_length=512) · pooled_stats(pooling=mean_std, "
        "standardize=true, domain_rule=nearest_clip) → knn(n_centers=8, k=3, metric=cosine) · "
        "domain_zscore · supplemental(clean_as_normal=false, noise_mix_prob=0) · "
        "ensemble(size=1) |")
    assert "| (reference) features(n_mels=128, n_fft=1024, hop_length=512) · dcase_ae(" \
        in rows["aaaa"]
    full = pd.read_csv(out / "trials.csv")
    assert "param:detector.pooled_stats.backend.knn.k" in full.columns and len(full) == 4
    assert "- started ?, finished now; " in report
    # A search whose searcher skipped duplicate proposals (issue 15) says how many.
    assert "duplicate proposals skipped" not in report
    search_report.write_duplicates(out, 3)
    assert search_report.read_duplicates(out) == 3
    freeze_search(cfg, out, records, _PROV, finished="now")
    # ... and which proposals those are (found 2026-12-07: a table with one recipe stopped
    # three times read as a contradiction; since 2026-12-08 a stopped recipe counts as run)
    assert ("\n- duplicate proposals skipped: 3 (proposals of a recipe already run — at full "
            "fidelity or stopped early — or running, not launched; a failed recipe may run "
            "again)\n") in (out / "search_report.md").read_text()
    assert search_report.read_filled_in(out) == 0
    search_report.write_duplicates(out, 3, filled=2)  # the space's untried points, in turn
    assert search_report.read_filled_in(out) == 2
    freeze_search(cfg, out, records, _PROV, finished="now")
    assert ("may run again); 2 untried point(s) of the space run in their stead (TPE kept "
            "proposing run recipes)\n") in (out / "search_report.md").read_text()
    search_report.write_duplicates(out, 3, filled=2, exhausted=5)
    assert search_report.read_exhausted(out) == 5
    freeze_search(cfg, out, records, _PROV, finished="now")
    assert ("proposing run recipes); every recipe of the space had run (5 distinct), so the "
            "search ended\n") in (out / "search_report.md").read_text()


def test_freeze_rebuilds_from_the_native_config_not_the_table() -> None:
    # The table stores an int dimension in a nullable Int64 column; freezing reads the
    # record's config, so the recipe gets the sampled Python int.
    space = load_space("default")
    knn, _ = _points(space)
    records = [_record(space, 1, "aaaa", knn, 0.7)]
    df = table(records, space)
    assert str(df["param:detector.pooled_stats.backend.knn.k"].dtype) == "Int64"
    recipe = freeze(records, space, _PROV)
    k = recipe.detector.params["backend"]["params"]["k"]
    assert k == 3 and type(k) is int


def test_best_of_n_counts_the_trials_that_ran_as_the_report_does() -> None:
    # Found 2026-12-07: a search interrupted "after 6 of 20 trials" (log, report) froze a
    # recipe described as "Best of 7 trials": the trial stopped before its first result
    # (not_run) was counted. Complete, stopped-early and failed trials ran; not_run did not.
    space = load_space("default")
    knn, cnn = _points(space)
    tie = {**knn, "detector.pooled_stats.backend.knn.k": 5}
    records = [_record(space, 1, "aaaa", knn, 0.7),
               _record(space, 2, "bbbb", cnn, 0.9, fidelity=0.25, recipe_hash="partial"),
               _record(space, 3, "cccc", tie, None, error="RuntimeError: boom"),
               _record(space, 4, "dddd", tie, None), _record(space, 5, "eeee", knn, None)]
    assert [r.status for r in records] == ["complete", "stopped_early", "error", "not_run",
                                           "not_run"]
    assert freeze(records, space, _PROV).description.startswith("Best of 3 trials of ")


def test_freeze_refuses_a_recipe_that_is_not_what_the_trial_ran() -> None:
    space = load_space("default")
    knn, _ = _points(space)
    good = _record(space, 1, "aaaa", knn, 0.7)
    # the trial reported the hash of another recipe (e.g. the space changed since it ran)
    other = trial_recipe(space, {**knn, "detector.pooled_stats.backend.knn.k": 5})
    bad = replace(good, recipe_hash=other.content_hash())
    assert freeze([good], space, _PROV).provenance.trial_id == "aaaa"
    with pytest.raises(FreezeError, match=r"trial aaaa: the recipe rebuilt from its config "
                                          r"has content hash .* but the trial ran"):
        freeze([bad], space, _PROV)


def test_final_pick_chooses_among_complete_records_in_creation_order() -> None:
    space = load_space("smoke")
    ref = space.reference_point()
    other = {**ref, "normalization.method": "none"}
    records = [_record(space, 2, "bbbb", other, 0.70), _record(space, 1, "aaaa", ref, 0.70),
               _record(space, 3, "cccc", other, 0.90, fidelity=0.5)]
    assert best_record(records).trial_id == "aaaa"  # a tie goes to the earliest trial
    seen: list[list[str]] = []

    def pick(done: Any) -> str:
        seen.append([r.trial_id for r in done])
        return "bbbb"

    assert best_record(records, pick).trial_id == "bbbb"
    assert seen == [["aaaa", "bbbb"]]
    with pytest.raises(FreezeError, match="not a complete trial"):
        best_record(records, lambda done: "cccc")


def test_freeze_without_a_full_fidelity_trial_is_an_error(tmp_path: Path) -> None:
    space = load_space("smoke")
    records = [record_from_result("aaaa", 1, space.reference_point(), {}, "x",
                                  reference_point=space.reference_point())]
    assert table(records, space)["is_reference"].tolist() == [True]  # known from its config
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path, trials=1)
    # its own class, which leave-one-out's budget rule catches (found 2026-12-07: a plain
    # FreezeError, so a fold with nothing finished under a budget ended the whole command)
    with pytest.raises(NothingFinishedError, match=f"{tmp_path}: no trial finished at full "
                                                   "fidelity"):
        freeze_search(cfg, tmp_path, records, _PROV, finished="now")
    assert (tmp_path / "trials.parquet").is_file()  # the failed trials are still written


def test_near_ties_are_frozen_beside_the_pick(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    # The final pick recorded margins in search.json: "eeee" beats the chosen "bbbb" on 40 %
    # of the resamples (a near tie), "aaaa" on 10 % (not one). The tie's recipe is written
    # beside recipe.json with its own trial id, the report and the terminal line point at it.
    space = load_space("default")
    knn, _ = _points(space)
    tie = {**knn, "detector.pooled_stats.backend.knn.k": 5}
    records = [_record(space, 1, "aaaa", space.reference_point(), 0.60, reference=True),
               _record(space, 2, "bbbb", knn, 0.70), _record(space, 3, "eeee", tie, 0.69),
               _record(space, 4, "ffff", tie, None)]  # not_run: not among the trials compared
    out = tmp_path / "run"
    margins = {"bbbb": {"low": 0.66, "high": 0.74},
               "eeee": {"low": 0.65, "high": 0.73, "beats_chosen": 0.4},
               "aaaa": {"low": 0.55, "high": 0.65, "beats_chosen": 0.1}}
    search_report.write_search_meta(out, {"space_name": space.name, "selection": {
        "rule": "mean / best", "best_by_objective": "bbbb", "chosen": "bbbb",
        "lower_bounds": {}, "rescored": [], "margins": margins, "near_tie": 0.25}})
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=3, seed=7)
    outcome = freeze_search(cfg, out, records, _PROV, finished="now", pick=lambda _: "bbbb")
    assert outcome.best_trial_id == "bbbb"
    assert sorted(p.name for p in (out / "near_ties").iterdir()) == ["eeee.json"]
    assert outcome.files["near_ties"] == out / "near_ties"
    frozen, tied = load_recipe(out / "recipe.json"), load_recipe(out / "near_ties/eeee.json")
    assert frozen.provenance.trial_id == "bbbb" and tied.provenance.trial_id == "eeee"
    assert tied.provenance.objective == 0.69 and tied.name == "search_default_tie_eeee"
    assert tied.detector.params["backend"]["params"]["k"] == 5  # what eeee ran
    assert replace(tied, name=frozen.name, description=frozen.description).content_hash() \
        != frozen.content_hash()
    assert tied.description.startswith(
        "Near tie of the frozen trial bbbb (above it on 40 % of bootstrap resamples of the "
        "development clips) among 3 trials of search space 'default' (seed 7) on development "
        "types fan: Ω=0.6900")
    sel = search_report.read_search_meta(out)["selection"]  # type: ignore[index]
    assert sel["tie_recipes"] == {"eeee": "near_ties/eeee.json"}
    assert sel["margins"] == margins and sel["chosen"] == "bbbb"  # the rest as it was
    report = (out / "search_report.md").read_text()
    assert "Their recipes are frozen beside `recipe.json` (same provenance, their own trial " \
           "id): `near_ties/eeee.json`." in report
    assert search_report.pick_certainty_line(out) == (
        "how sure is the pick: 1 of the other 2 top recipes beats it on >= 25 % of bootstrap "
        f"resamples of the development clips (near ties: their recipes in {out / 'near_ties'}, "
        "see the search report)")
    # A later freeze of the same run (--resume) whose pick has no near tie removes the file.
    margins["eeee"]["beats_chosen"] = 0.2
    meta = search_report.read_search_meta(out) or {}
    search_report.write_search_meta(out, {**meta, "selection": {**sel, "margins": margins}})
    outcome = freeze_search(cfg, out, records, _PROV, finished="later", pick=lambda _: "bbbb")
    assert list((out / "near_ties").iterdir()) == [] and "near_ties" not in outcome.files
    assert "Their recipes are frozen" not in (out / "search_report.md").read_text()
    assert search_report.pick_certainty_line(out) == (
        "how sure is the pick: 0 of the other 2 top recipes beat it on >= 25 % of bootstrap "
        "resamples of the development clips")
    # A tie whose recipe no longer rebuilds as it ran is left out with a warning; the pick
    # and the other files are written as before.
    margins["eeee"]["beats_chosen"] = margins["aaaa"]["beats_chosen"] = 0.5
    search_report.write_search_meta(out, {**meta, "selection": {**sel, "margins": margins}})
    other = trial_recipe(space, {**knn, "detector.pooled_stats.backend.knn.k": 9})
    changed = [*records[:2], replace(records[2], recipe_hash=other.content_hash())]
    with caplog.at_level("WARNING", logger="automl_asd.search.freeze"):
        outcome = freeze_search(cfg, out, changed, _PROV, finished="again",
                                pick=lambda _: "bbbb")
    assert sorted(p.name for p in (out / "near_ties").iterdir()) == ["aaaa.json"]
    assert "near tie eeee not written: trial eeee: the recipe rebuilt" in caplog.text
    assert load_recipe(out / "recipe.json") == outcome.recipe
    assert (search_report.read_search_meta(out) or {})["selection"]["tie_recipes"] == {
        "aaaa": "near_ties/aaaa.json"}
    # Margins of another trial than the frozen one (search.json of an older version may hold
    # an earlier pick's): no near tie is written for them.
    outcome = freeze_search(cfg, out, records, _PROV, finished="again",
                            pick=lambda _: "eeee")
    assert outcome.best_trial_id == "eeee" and list((out / "near_ties").iterdir()) == []


def test_a_search_without_margins_writes_no_near_ties(tmp_path: Path) -> None:
    # An old search.json (or a pick whose read-out failed) has no margins: nothing is written.
    space = load_space("smoke")
    records = [_record(space, 1, "aaaa", space.reference_point(), 0.60, reference=True)]
    cfg = SearchConfig(data=tmp_path, space=space, out=tmp_path, trials=1)
    search_report.write_search_meta(tmp_path, {"selection": {"chosen": "aaaa", "margins": {}}})
    outcome = freeze_search(cfg, tmp_path, records, _PROV, finished="now")
    assert not (tmp_path / "near_ties").exists() and "near_ties" not in outcome.files
    assert search_report.pick_certainty_line(tmp_path) is None


def test_a_non_mean_objective_is_named_in_the_frozen_description(tmp_path: Path) -> None:
    """Found by a review (2026-12-06): a `worst_type` search froze its pick with only its Ω;
    provenance.objective holds Ω (documented), and the description now also gives the value
    the search ranked by."""
    from automl_asd.search.selection import SelectionRule

    space = replace(load_space("default"), selection=SelectionRule(objective="worst_type"))
    base = space.reference_point()
    knn, _ = _points(space)
    records = [_record(space, 1, "aaaa", base, 0.60, reference=True),
               _record(space, 2, "bbbb", knn, 0.70)]
    records = [replace(r, metrics={**r.metrics, "objective": r.omega - 0.2}) for r in records]
    out = tmp_path / "run"
    search_report.write_search_meta(out, {"space_name": space.name, "machine_types": ["fan"]})
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=2, seed=7)
    recipe = freeze_search(cfg, out, records, _PROV, finished="now").recipe
    assert recipe.provenance.objective == 0.70
    assert "Ω=0.7000 (selection objective worst_type 0.5000)" in recipe.description


def test_a_frozen_recipe_edited_afterwards_is_named_when_loaded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by a review (2026-12-06): a searched recipe.json edited by hand kept its search
    provenance (space, trial, Ω) unchallenged. The freeze records the recipe's behaviour
    hash; a recipe that scores otherwise is named in a warning when loaded."""
    import json
    import logging

    space = load_space("default")
    knn, _ = _points(space)
    records = [_record(space, 1, "aaaa", space.reference_point(), 0.60, reference=True),
               _record(space, 2, "bbbb", knn, 0.70)]
    out = tmp_path / "run"
    search_report.write_search_meta(out, {"space_name": space.name, "machine_types": ["fan"]})
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=2, seed=7)
    frozen = freeze_search(cfg, out, records, _PROV, finished="now").recipe
    assert frozen.provenance.behaviour_sha256 == frozen.behaviour_hash()
    with caplog.at_level(logging.WARNING):
        assert load_recipe(out / "recipe.json") == frozen
    assert "scores otherwise" not in caplog.text
    doc = json.loads((out / "recipe.json").read_text())
    doc["description"] = "renamed and re-described: still the same scores"
    (out / "recipe.json").write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        assert not load_recipe(out / "recipe.json").edited_since_frozen()
    assert "scores otherwise" not in caplog.text
    doc["detector"]["params"]["backend"]["params"]["k"] = 5
    (out / "recipe.json").write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        edited = load_recipe(out / "recipe.json")
    assert edited.edited_since_frozen()
    assert ("this recipe scores otherwise than the one search froze as trial bbbb of space "
            "'default'") in caplog.text


def test_pending_reruns_counts_recipes_a_resume_runs_again() -> None:
    """Found by a review (2026-12-07): the log counted every `not_run` row (2 recipes cut 3
    times read "6 trials"), and the report promised re-runs that had already run."""
    from automl_asd.io.search_report import _not_run_note
    from automl_asd.search.trials import pending_reruns, record_from_result

    done = {"omega": 0.7, "fidelity": 1.0}
    x, y, z = {"p": 1}, {"p": 2}, {"p": 3}
    cut = [record_from_result(f"t{i}", i, c, None, None)
           for i, c in enumerate([x, y, x, y, x, y], 1)]
    assert pending_reruns(cut) == 2
    ran = [*cut, record_from_result("t7", 7, x, done, None)]
    assert pending_reruns(ran) == 1
    ran.append(record_from_result("t8", 8, y, {"omega": 0.5, "fidelity": 0.5}, None))
    assert pending_reruns(ran) == 0  # stopped early by ASHA: it ran; nothing left to re-run
    # complete anywhere: nothing to run again; a trial without a config is not counted
    assert pending_reruns([record_from_result("a", 1, z, done, None),
                           record_from_result("b", 2, z, None, None),
                           record_from_result("c", 3, {}, None, None)]) == 0
    assert _not_run_note(0, 0) == ""
    assert "`--resume` runs 2 of them" in _not_run_note(6, 2)
    assert "(the time budget or an interrupt stopped them)" in _not_run_note(6, 2)
    # a search without a time budget was stopped by an interrupt only
    assert _not_run_note(1, 1, budgeted=False) == (
        "; `not_run`: ended before their first result (an interrupt stopped them): "
        "`--resume` runs 1 of them")
    assert "each has run again since" in _not_run_note(6, 0)


def test_the_report_blames_a_time_budget_only_when_the_search_had_one(tmp_path: Path) -> None:
    # Found 2026-12-07: a search without --time-budget, stopped by Ctrl-C, reported its
    # trial without a result as stopped by "the time budget or an interrupt".
    space = load_space("default")
    knn, _ = _points(space)
    records = [_record(space, 1, "aaaa", knn, 0.7),
               _record(space, 2, "bbbb", {**knn, "detector.pooled_stats.backend.knn.k": 5},
                       None)]
    out = tmp_path / "run"
    cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=4, seed=7)
    for meta, what in (({"time_budget_s": None}, "an interrupt"),
                       ({"time_budget_s": 30.0}, "the time budget or an interrupt"),
                       ({"time_budget_s": None, "resume_time_budget_s": 30.0},
                        "the time budget or an interrupt")):
        search_report.write_search_meta(out, {"space_name": space.name, **meta})
        freeze_search(cfg, out, records, _PROV, finished="now")
        assert (f"- trials: complete 1, not_run 1; `not_run`: ended before their first result "
                f"({what} stopped them): `--resume` runs 1 of them\n"
                ) in (out / "search_report.md").read_text()


def test_the_report_says_the_trials_asked_and_the_space_s_cap(tmp_path: Path) -> None:
    # Found 2026-12-07: `search --space smoke --trials 30` (26 distinct points) reported
    # "trials requested: 26".
    space = load_space("smoke")
    records = [_record(space, 1, "aaaa", space.reference_point(), 0.6, reference=True)]
    out = tmp_path / "run"
    for meta, said in (({"trials": 26, "trials_asked": 30},
                        "trials requested: 30 (the space holds 26 distinct recipes: at most 26 "
                        "trials); "),
                       ({"trials": 12}, "trials requested: 12; ")):
        search_report.write_search_meta(out, {"space_name": space.name, "seed": 7, **meta})
        cfg = SearchConfig(data=tmp_path, space=space, out=out, trials=meta["trials"])
        freeze_search(cfg, out, records, _PROV, finished="now")
        assert f"- seed: 7; {said}time budget: none" in (out / "search_report.md").read_text()
