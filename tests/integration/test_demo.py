"""The README's main job (`automl-asd demo`) end to end, on a tiny set and the smoke space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_asd.io.submission import read_submission
from automl_asd.orchestration.demo import run_demo
from automl_asd.recipe import load_recipe


@pytest.mark.ray
@pytest.mark.slow
def test_demo_flow_search_then_apply_on_novel_types(
    ray_session: None, tmp_path: Path  # noqa: F811
) -> None:
    lines: list[str] = []
    res = run_demo(tmp_path / "demo", size="tiny", space="smoke", trials=3, max_concurrent=1,
                   dev_types=("fan", "bearing"), novel_types=("pump", "grinder"),
                   say=lines.append)
    # the search ran on the development types only, and its frozen recipe was applied unchanged
    recipe = load_recipe(res.recipe_path)
    assert recipe.provenance.source == "search"
    assert sorted(recipe.provenance.dev_machine_types) == ["bearing", "fan"]
    for mt in ("pump", "grinder"):
        summary = json.loads((res.apply_dir / f"{mt}.summary.json").read_text())
        assert summary["recipe_hash"] == recipe.content_hash()
        submission = read_submission(res.apply_dir, mt, "00")
        assert len(submission.scores) == 40  # tiny: 10 clips in each of the 4 test groups
        assert (res.apply_dir / f"roc_{mt}.png").stat().st_size > 0
        assert (res.apply_dir / "models" / mt / "manifest.json").is_file()
    assert not (res.apply_dir / "fan.summary.json").exists()  # dev types are never applied
    metrics = json.loads((res.apply_dir / "metrics.json").read_text())
    assert res.novel_omega == pytest.approx(metrics["official_score"])
    assert 0.0 < metrics["official_score"] <= 1.0
    assert res.reference_omega is not None
    assert res.search_report.is_file()
    # the novel types were passed as search --novel: scored after the choice, reported
    assert "## Does the choice carry?" in res.search_report.read_text()
    assert any(line.startswith("[4/4]") for line in lines)


def test_demo_refuses_overlapping_type_lists(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="novel types must not be development types"):
        run_demo(tmp_path, size="tiny", space="smoke", dev_types=("fan",),
                 novel_types=("fan",), say=lambda _: None)


def test_an_interrupted_demo_search_says_to_rerun_the_demo(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-03): Ctrl-C during the demo's search ended in "continue it
    with --resume", an option `demo` does not have (a rerun starts the search afresh)."""
    from automl_asd.orchestration import demo
    from automl_asd.search.freeze import FreezeError

    def stopped(cfg: object) -> None:
        raise FreezeError("no trial finished at full fidelity (2 trials; errors: []); if the "
                          "search was interrupted, continue it with --resume")

    monkeypatch.setattr(demo, "init_ray", lambda *a, **k: False)
    monkeypatch.setattr(demo, "run_search", stopped)
    with pytest.raises(FreezeError) as exc:
        run_demo(tmp_path / "demo", size="tiny", space="smoke", trials=2,
                 dev_types=("fan",), novel_types=("pump",), say=lambda _: None)
    text = str(exc.value)
    assert "run the same demo command again" in text and "--resume" not in text
    assert (tmp_path / "demo" / "data" / "dev" / "fan").is_dir()  # the data is kept
