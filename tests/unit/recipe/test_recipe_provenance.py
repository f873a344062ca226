"""Recipe validation reports every problem at once; provenance records the development data's
fingerprint and package versions, and old recipe files (the shipped ones) still load unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from automl_asd.cli import main
from automl_asd.data import scan
from automl_asd.provenance import TRACKED_PACKAGES, data_fingerprint, package_versions
from automl_asd.recipe import (
    OFFICIAL_BASELINES,
    Recipe,
    RecipeError,
    load_recipe,
    official_baseline_name,
    shipped_recipe_names,
)

#: Content hashes of the shipped recipes before provenance gained ``dev_data``/``versions``.
PINNED_HASHES = {
    "baseline_ae_mse": "fef16f0998de", "baseline_ae_mahalanobis": "41a56547cfd9",
    "fast_default": "0b2cf223e578",
}


def _three_errors() -> dict[str, object]:
    d = load_recipe("fast_default").to_dict()
    d["features"]["n_mels"] = 0                                        # out of range
    d["detector"]["params"]["backend"]["params"]["metric"] = "manhattan"  # unknown choice
    d["threshold"]["colour"] = "red"                                   # unknown key
    return d


def test_every_error_is_reported_with_its_path() -> None:
    with pytest.raises(RecipeError) as exc:
        Recipe.from_dict(_three_errors())
    err = exc.value
    assert len(err.errors) == 3
    assert err.errors[0] == "features.n_mels: 0 is below the minimum 1"
    assert err.errors[1].startswith("detector.params.backend.params.metric: 'manhattan' is not")
    assert err.errors[2].startswith("threshold.colour: unknown key; valid keys here: method")
    assert str(err).startswith("3 problems:\n  - features.n_mels")


def test_cross_field_and_type_errors_are_collected_too() -> None:
    d = load_recipe("fast_default").to_dict()
    d["features"].update({"f_min": 9000.0, "f_max": 100.0, "win_length": 4096})
    d["supplemental"]["noise_snr_db"] = [10.0, 0.0]
    d["seed"] = "x"
    d["name"] = ""
    with pytest.raises(RecipeError) as exc:
        Recipe.from_dict(d)
    assert [e.split(":")[0] for e in exc.value.errors] == [
        "name", "seed", "features.f_max", "features.win_length", "supplemental.noise_snr_db"]


def test_cli_validate_lists_all_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_three_errors()))
    assert main(["recipe", "validate", str(bad), "fast_default"]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {bad}: 3 problems:" in out
    for path in ("features.n_mels", "detector.params.backend.params.metric", "threshold.colour"):
        assert f"  - {path}: " in out
    assert "OK fast_default" in out


def test_shipped_recipes_load_with_unchanged_hashes() -> None:
    for name in shipped_recipe_names():
        recipe = load_recipe(name)
        if recipe.provenance.dev_data is None:
            # recipes frozen before provenance gained dev_data/versions: the optional fields
            # are not written when empty, so the file is canonical
            assert dict(recipe.provenance.versions) == {}
            assert "dev_data" not in recipe.to_json() and "versions" not in recipe.to_json()
        else:
            # a newer search result keeps its development data's fingerprint and versions
            assert recipe.provenance.source == "search" and recipe.provenance.versions
            assert recipe.provenance.dev_data.machine_types == tuple(
                recipe.provenance.dev_machine_types)
    for name, prefix in PINNED_HASHES.items():
        assert load_recipe(name).content_hash().startswith(prefix)


def test_fingerprint_counts_and_file_hash(tiny_dev_root: Path) -> None:
    machines = scan(tiny_dev_root)
    fp = data_fingerprint(machines)
    assert fp.machine_types == ("bearing", "fan", "gearbox")
    assert fp.clip_counts["fan"] == {
        "supplemental/machine": 8, "test/source/anomaly": 10, "test/source/normal": 10,
        "test/target/anomaly": 10, "test/target/normal": 10, "train/source/normal": 54,
        "train/target/normal": 6}
    assert fp.clip_counts["gearbox"]["supplemental/noise"] == 8
    rel = sorted(f"{p.relative_to(tiny_dev_root).as_posix()}"
                 for p in tiny_dev_root.rglob("*.wav"))
    assert fp.n_files == len(rel) == 3 * 108
    assert fp.files_sha256 == hashlib.sha256("\n".join(rel).encode()).hexdigest()
    # one type fewer -> another fingerprint
    assert data_fingerprint({k: v for k, v in machines.items() if k != "fan"}).files_sha256 \
        != fp.files_sha256


def test_provenance_round_trips_and_keeps_the_hash(tiny_dev_root: Path) -> None:
    fp = data_fingerprint(scan(tiny_dev_root, machine_types=["fan"]))
    versions = package_versions()
    assert set(versions) == set(TRACKED_PACKAGES) and versions["automl-asd"]
    base = load_recipe("fast_default")
    import dataclasses

    rec = base.with_provenance(source="search", dev_data=dataclasses.asdict(fp),
                               versions=versions)
    assert rec.content_hash() == base.content_hash()
    again = Recipe.from_json(rec.to_json())
    assert again == rec and hash(again) == hash(rec)
    assert again.provenance.dev_data == fp
    assert json.loads(rec.to_json())["provenance"]["dev_data"]["clip_counts"]["fan"][
        "train/source/normal"] == 54
    d = json.loads(rec.to_json())
    d["provenance"]["dev_data"]["n_files"] = "many"
    d["provenance"]["versions"]["torch"] = 2
    with pytest.raises(RecipeError) as exc:
        Recipe.from_dict(d)
    assert exc.value.errors == ["provenance.dev_data.n_files: expected an integer, got str 'many'",
                                "provenance.versions.torch: expected a string, got int 2"]


def test_official_baseline_is_recognised_by_content() -> None:
    assert OFFICIAL_BASELINES == ("baseline_ae_mse", "baseline_ae_mahalanobis")
    for name in OFFICIAL_BASELINES:
        renamed = load_recipe(name).replace(name="my_copy")
        assert official_baseline_name(renamed) == name
    assert official_baseline_name(load_recipe("fast_default")) is None
    changed = load_recipe("baseline_ae_mse").to_dict()
    changed["detector"]["params"]["epochs"] = 5
    assert official_baseline_name(Recipe.from_dict(changed)) is None


@pytest.mark.parametrize(("field", "value", "why"), [
    ("space_sha256", "xyz", "is not a sha256 hex digest"),
    ("behaviour_sha256", "A" * 64, "is not a sha256 hex digest"),
    ("created", "yesterday", "is not an ISO 8601 time"),
    ("objective", 1.7, "is not an Ω within [0, 1]"),
])
def test_provenance_values_that_cannot_be_true_are_refused(
        field: str, value: object, why: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a probe (2026-12-07): `recipe validate` took ``space_sha256: "xyz"`` and
    ``created: "yesterday"`` as OK; the recipe file is strict, its provenance too."""
    doc = load_recipe("searched_pooled_logz").to_dict()
    doc["provenance"][field] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    assert main(["recipe", "validate", str(path)]) == 1
    said = capsys.readouterr()
    assert f"provenance.{field}: {value!r} {why}" in said.out + said.err
    with pytest.raises(RecipeError, match=why.replace("[", r"\[").replace("]", r"\]")):
        load_recipe("fast_default").with_provenance(**{field: value})
