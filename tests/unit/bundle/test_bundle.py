"""Model bundles: apply writes them, they round-trip bit for bit, tampering is refused.

Round trip (issue 9): the scores ``automl-asd score`` / ``load_bundle(...).score`` give on a
machine type's test clips equal, bit for bit on CPU, the scores ``apply`` wrote — for the
``fast_default`` recipe and for a tiny neural recipe (dcase_ae ensemble of 2, domain z-score).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_asd import load_bundle
from automl_asd._version import __version__
from automl_asd.apply import ApplyConfig, SerialRunner, apply_recipe
from automl_asd.bundle.files import read_bundle_files, save_bundle
from automl_asd.bundle.format import MANIFEST, BundleError, sha256_bytes
from automl_asd.bundle.state import bundle_files
from automl_asd.cli import main
from automl_asd.data import scan
from automl_asd.detectors import REGISTRY
from automl_asd.pipeline import fit_machine, score_clips
from automl_asd.recipe import Recipe, load_recipe

MT = "fan"

#: A tiny neural recipe: 2-member dcase_ae ensemble, 2 epochs, domain z-score normalisation.
AE_DETECTOR = {"name": "dcase_ae", "params": {"epochs": 2, "hidden": 16, "bottleneck": 4,
                                              "n_layers": 1, "batch_size": 64,
                                              "score": "mahalanobis"}}


def _ae_recipe() -> Recipe:
    return load_recipe("fast_default").replace(
        name="tiny_ae", detector=AE_DETECTOR, ensemble={"size": 2, "combine": "mean_z"})


@pytest.fixture(scope="module")
def applied(tiny_dev_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``apply`` (serial, CPU) of fast_default and of the tiny AE recipe on ``fan``."""
    outs = {}
    for key, recipe in (("fast", load_recipe("fast_default")), ("ae", _ae_recipe())):
        out = tmp_path_factory.mktemp(f"apply_{key}")
        report = apply_recipe(ApplyConfig(recipe, tiny_dev_root, out, machine_types=(MT,),
                                          device="cpu", plots=False), runner=SerialRunner())
        assert report.ok, report.outcomes
        outs[key] = out
    return outs


def _read_submission(out: Path) -> tuple[dict[str, float], dict[str, int]]:
    with (out / f"anomaly_score_{MT}_section_00_test.csv").open() as f:
        scores = {r[0]: float(r[1]) for r in csv.reader(f)}
    with (out / f"decision_result_{MT}_section_00_test.csv").open() as f:
        decisions = {r[0]: int(float(r[1])) for r in csv.reader(f)}
    return scores, decisions


# ----------------------------------------------------------------------------- apply + manifest
@pytest.mark.slow
def test_apply_writes_bundle_with_manifest(applied: dict[str, Path],
                                           tiny_dev_root: Path) -> None:
    out = applied["fast"]
    bundle_dir = out / "models" / MT
    summary = json.loads((out / f"{MT}.summary.json").read_text())
    assert summary["bundle"] == f"models/{MT}"
    manifest = json.loads((bundle_dir / MANIFEST).read_text())
    recipe = load_recipe("fast_default")
    assert manifest["format"] == "automl-asd-bundle" and manifest["bundle_version"] == 1
    assert manifest["package_version"] == __version__
    import torch

    assert manifest["torch_version"] == torch.__version__
    assert manifest["recipe_hash"] == recipe.content_hash() == summary["recipe_hash"]
    assert manifest["machine_type"] == MT
    assert manifest["feature_spec"] == recipe.features.to_dict()
    machine = scan(tiny_dev_root, machine_types=[MT])[MT]
    assert manifest["training_clips"] == len(machine.train) == 60  # 54 source + 6 target
    assert manifest["threshold"] == summary["threshold"]
    # every file but the manifest is listed with its sha256; nothing else is in the folder
    on_disk = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {MANIFEST}
    for name, digest in manifest["files"].items():
        assert sha256_bytes((bundle_dir / name).read_bytes()) == digest
    assert all(n.endswith((".json", ".npy")) for n in on_disk)
    # the kNN centres and the pooled-stat standardisation are stored as plain arrays
    keys = set(manifest["members"][0]["arrays"])
    assert {"mean", "scale", "train_embeddings", "backend.references"} <= keys
    refs = np.load(bundle_dir / manifest["members"][0]["arrays"]["backend.references"],
                   allow_pickle=False)
    assert refs.shape == (16 + 6, 3 * 128)  # 16 k-means source centres + 6 target clips
    thr = np.load(bundle_dir / manifest["scoring"]["threshold"], allow_pickle=False)
    assert float(thr) == summary["threshold"]


# ----------------------------------------------------------------------------- round trips
@pytest.mark.slow
@pytest.mark.parametrize("key", ["fast", "ae"])
def test_score_cli_reproduces_apply_bit_for_bit(key: str, applied: dict[str, Path],
                                                tiny_dev_root: Path, tmp_path: Path) -> None:
    out = applied[key]
    want_scores, want_dec = _read_submission(out)
    csv_path = tmp_path / "scores.csv"
    assert main(["score", "--model", str(out / "models" / MT), str(tiny_dev_root / MT / "test"),
                 "--out", str(csv_path), "--device", "cpu"]) == 0
    with csv_path.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "score", "decision"]
    got = {r[0]: (float(r[1]), int(r[2])) for r in rows[1:]}
    assert set(got) == set(want_scores) and len(got) == 40
    for name, score in want_scores.items():
        assert got[name][0] == score, name  # exact float64 equality
        assert got[name][1] == want_dec[name]
    assert 0 < sum(want_dec.values()) < 40


@pytest.mark.slow
def test_python_api_and_tar_archive_round_trip(applied: dict[str, Path], tiny_dev_root: Path,
                                               tmp_path: Path) -> None:
    out = applied["ae"]
    want, _ = _read_submission(out)
    bundle = load_bundle(out / "models" / MT, device="cpu")
    assert bundle.machine_type == MT and len(bundle.fitted.members) == 2
    paths = sorted((tiny_dev_root / MT / "test").glob("*.wav"))
    res = bundle.score(paths)
    assert [want[p.name] for p in paths] == res.scores.tolist()
    # re-saving the loaded model gives byte-identical arrays (state round-trips exactly)
    again = save_bundle(bundle.fitted, tmp_path / "copy", archive=True)
    first, second = read_bundle_files(out / "models" / MT), read_bundle_files(again)
    assert set(first) == set(second)
    assert all(first[k] == second[k] for k in first if k != MANIFEST)
    tar_bundle = load_bundle(tmp_path / "copy.tar", device="cpu")
    assert np.array_equal(tar_bundle.score(paths).scores, res.scores)
    with tarfile.open(tmp_path / "by_hand.tar", "w") as tar:  # `tar -cf x.tar -C models fan`
        tar.add(out / "models" / MT, arcname=MT)
    assert load_bundle(tmp_path / "by_hand.tar").manifest == bundle.manifest
    # in-memory waveforms score like their files (features computed the same way)
    import soundfile as sf

    waves = [sf.read(str(p), dtype="float32")[0] for p in paths[:3]]
    assert np.array_equal(bundle.score(waves).scores, bundle.score(paths[:3]).scores)
    # smaller batches agree up to BLAS blocking (last bits only)
    np.testing.assert_allclose(bundle.score(paths, batch_size=7).scores, res.scores,
                               rtol=1e-10, atol=1e-12)


def _family_detector(name: str) -> dict[str, Any]:
    cls = REGISTRY[name]
    params: dict[str, Any] = {}
    if "epochs" in cls.params:
        params["epochs"] = 1
    small = {"hidden": 16, "bottleneck": 4, "n_layers": 1, "emb_dim": 16, "n_subclusters": 2,
             "crop_frames": 32, "batch_size": 16, "device": "cpu", "pseudo_clusters": 0}
    for key, value in small.items():
        if key in cls.params:
            params[key] = value
    if "size" in cls.params and cls.params["size"].choices:
        params["size"] = cls.params["size"].choices[0]
    return {"name": name, "params": params}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(REGISTRY))
def test_every_family_round_trips_through_bundle_files(family: str,
                                                       tiny_dev_root: Path) -> None:
    """get_state -> .npy bytes -> make_detector(...).set_state gives identical scores."""
    machine = scan(tiny_dev_root, machine_types=[MT])[MT]
    recipe = load_recipe("fast_default").replace(name=f"rt_{family}",
                                                 detector=_family_detector(family))
    fitted = fit_machine(recipe, machine, device="cpu")
    from automl_asd.features import extract

    feats = extract(list(machine.test), recipe.features, progress=False)
    want_s, want_d = score_clips(fitted, feats)
    files = bundle_files(fitted)
    from automl_asd.bundle.model import Bundle

    bundle = Bundle.from_files(files, f"<{family}>", device="cpu")
    got_s, got_d = bundle.score_features(feats)
    assert np.array_equal(got_s, want_s) and np.array_equal(got_d, want_d)
    assert bundle.threshold == fitted.threshold


# ----------------------------------------------------------------------------- tampering
@pytest.fixture()
def bundle_copy(applied: dict[str, Path], tmp_path: Path) -> Path:
    src = applied["fast"] / "models" / MT
    dst = tmp_path / "bundle"
    for name, data in read_bundle_files(src).items():
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        (dst / name).write_bytes(data)
    return dst


def _manifest(b: Path) -> dict[str, Any]:
    return dict(json.loads((b / MANIFEST).read_text()))


def _write_manifest(b: Path, m: dict[str, Any]) -> None:
    (b / MANIFEST).write_text(json.dumps(m))


def _first_array(b: Path) -> str:
    return str(next(iter(_manifest(b)["members"][0]["arrays"].values())))


@pytest.mark.slow
def test_edited_array_is_refused(bundle_copy: Path) -> None:
    name = _first_array(bundle_copy)
    arr = np.load(bundle_copy / name, allow_pickle=False)
    np.save(bundle_copy / name, arr + 1, allow_pickle=False)  # a valid .npy, other values
    with pytest.raises(BundleError, match=rf"{name}: sha256 does not match"):
        load_bundle(bundle_copy)


@pytest.mark.slow
def test_wrong_checksum_and_missing_file_are_refused(bundle_copy: Path) -> None:
    m = _manifest(bundle_copy)
    m["files"]["scoring/threshold.npy"] = "0" * 64
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=r"scoring/threshold\.npy: sha256 does not match"):
        load_bundle(bundle_copy)
    (bundle_copy / "scoring/threshold.npy").unlink()
    with pytest.raises(BundleError, match=r"scoring/threshold\.npy: missing"):
        load_bundle(bundle_copy)


@pytest.mark.slow
@pytest.mark.parametrize("dropped", ["evil.pkl", "members/000/extra.npy", "model.pt"])
def test_dropped_in_file_is_refused(bundle_copy: Path, dropped: str) -> None:
    path = bundle_copy / dropped
    path.write_bytes(b"\x80\x04K\x01.")  # a pickle stream
    with pytest.raises(BundleError, match=dropped.replace(".", r"\.")):
        load_bundle(bundle_copy)


class _Boom:
    """Unpickling this would create a folder (stand-in for arbitrary code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


@pytest.mark.slow
def test_pickled_array_with_valid_checksum_is_not_unpickled(bundle_copy: Path,
                                                            tmp_path: Path) -> None:
    """An attacker who also rewrites the manifest's checksums still cannot run code."""
    marker = tmp_path / "pwned"
    name = _first_array(bundle_copy)
    evil = np.empty(1, dtype=object)
    evil[0] = _Boom(str(marker))
    np.save(bundle_copy / name, evil, allow_pickle=True)
    m = _manifest(bundle_copy)
    m["files"][name] = sha256_bytes((bundle_copy / name).read_bytes())
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=rf"{name}: not a plain \.npy array"):
        load_bundle(bundle_copy)
    assert not marker.exists()


@pytest.mark.slow
def test_version_mismatch_is_refused_unless_allowed(bundle_copy: Path) -> None:
    m = _manifest(bundle_copy)
    m["package_version"] = "0.0.1"
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=r"manifest\.json: package_version '0\.0\.1'"):
        load_bundle(bundle_copy)
    assert load_bundle(bundle_copy, strict_versions=False).machine_type == MT
    m["torch_version"] = "1.13.1"
    m["package_version"] = __version__
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match="torch_version '1.13.1'"):
        load_bundle(bundle_copy)
    m["torch_version"] = _manifest(bundle_copy)["torch_version"]
    m["bundle_version"] = 99
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match="bundle_version 99"):
        load_bundle(bundle_copy, strict_versions=False)


@pytest.mark.slow
def test_recipe_edit_with_updated_checksum_is_refused(bundle_copy: Path) -> None:
    doc = json.loads((bundle_copy / "recipe.json").read_text())
    doc["threshold"]["quantile"] = 0.5
    (bundle_copy / "recipe.json").write_text(json.dumps(doc))
    m = _manifest(bundle_copy)
    m["files"]["recipe.json"] = sha256_bytes((bundle_copy / "recipe.json").read_bytes())
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match="recipe.json: content hash .* does not match"):
        load_bundle(bundle_copy)


@pytest.mark.slow
def test_bundle_written_when_minus_zero_was_kept_still_loads(bundle_copy: Path,
                                                             tiny_dev_root: Path) -> None:
    """Recipes once kept ``-0.0``, and bundles hashed it; reading it as ``0.0`` since must not
    make such a bundle's own recipe_hash fail (an edit still does, see the test above)."""
    want = load_bundle(bundle_copy)
    doc = json.loads((bundle_copy / "recipe.json").read_text())
    assert doc["features"]["f_min"] == 0.0
    doc["features"]["f_min"] = -0.0
    text = json.dumps(doc, indent=2) + "\n"
    assert '"f_min": -0.0' in text
    (bundle_copy / "recipe.json").write_text(text)
    del doc["provenance"]
    old_hash = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"))
                              .encode()).hexdigest()
    m = _manifest(bundle_copy)
    assert old_hash != m["recipe_hash"]
    m["recipe_hash"] = old_hash
    m["feature_spec"]["f_min"] = -0.0
    m["files"]["recipe.json"] = sha256_bytes((bundle_copy / "recipe.json").read_bytes())
    _write_manifest(bundle_copy, m)
    got = load_bundle(bundle_copy)
    assert got.recipe.features.f_min == 0.0
    assert got.recipe.content_hash() == want.recipe.content_hash()
    test = [c.path for c in scan(tiny_dev_root, machine_types=[MT])[MT].test][:6]
    np.testing.assert_array_equal(got.score(test).scores, want.score(test).scores)


@pytest.mark.slow
def test_cli_refuses_tampered_bundle_naming_the_file(bundle_copy: Path, tiny_dev_root: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (bundle_copy / "payload.pkl").write_bytes(b"x")
    wav = next((tiny_dev_root / MT / "test").glob("*.wav"))
    assert main(["score", "--model", str(bundle_copy), str(wav)]) == 1
    assert "payload.pkl" in capsys.readouterr().err


def _tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_tar_with_unsafe_members_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("../escape.json")
    info.size = 2
    with pytest.raises(BundleError, match="not a plain relative path"):
        load_bundle(_tar_with(tmp_path / "a.tar", [(info, b"{}")]))
    link = tarfile.TarInfo("manifest.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(BundleError, match="link or special file"):
        load_bundle(_tar_with(tmp_path / "b.tar", [(link, None)]))
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)  # a folder without manifest.json
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nope")


def test_folder_without_manifest_is_refused_before_reading_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `score --model` on a folder that is no bundle (a data root, an apply
    run) read every file in it into memory before refusing it: 1.5 GB took 6 s and 2 GB of
    memory (a larger one ended in "larger than 4 GiB"). Now it is refused unread, and bundles
    inside it are named."""
    run = tmp_path / "run"
    (run / "big.wav").parent.mkdir()
    (run / "big.wav").write_bytes(b"\0" * 1000)
    for mt in ("valve", "fan"):
        (run / "models" / mt).mkdir(parents=True)
        (run / "models" / mt / MANIFEST).write_text("{}")
    read: list[Path] = []
    real_read = Path.read_bytes

    def spy(self: Path) -> bytes:
        read.append(self)
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    bundles = f"{run / 'models' / 'fan'}, {run / 'models' / 'valve'}"
    with pytest.raises(BundleError) as exc:
        load_bundle(run)
    assert str(exc.value) == (
        f"{run / MANIFEST}: missing; {run} is not a model bundle (bundles are written by "
        "`automl-asd apply` under <out>/models/<machine type>); it holds the bundles "
        f"{bundles}: pass one of them")
    assert read == []
    assert main(["score", "--model", str(run / "models"), str(run / "big.wav")]) == 1
    assert f"it holds the bundles {bundles}: pass one of them\n" in capsys.readouterr().err
    assert read == []


@pytest.mark.slow
def test_malformed_member_table_is_refused(bundle_copy: Path) -> None:
    m = _manifest(bundle_copy)
    del m["members"][0]["seed"]
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=r"manifest\.json: members\[0\] is malformed"):
        load_bundle(bundle_copy)
    m = _manifest(bundle_copy)
    m["members"][0]["seed"] = 1
    last = list(m["members"][0]["arrays"])[-1]
    del m["members"][0]["arrays"][last]  # a state key missing: set_state cannot rebuild
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match="set_state failed"):
        load_bundle(bundle_copy)


@pytest.mark.slow
@pytest.mark.parametrize("edit", ["swap_arrays", "swap_domains", "repoint_threshold",
                                  "counts_not_a_mapping"])
def test_manifest_edits_that_change_scoring_are_refused(bundle_copy: Path, edit: str) -> None:
    """Checksums cover the files, not the role the manifest gives each: a swapped or
    re-pointed entry is refused, not scored."""
    m = _manifest(bundle_copy)
    if edit == "swap_arrays":
        arrays = m["members"][0]["arrays"]
        a, b = list(arrays)[:2]
        arrays[a], arrays[b] = arrays[b], arrays[a]
        match = rf"members\[0\]\.arrays\.{a} is"
    elif edit == "swap_domains":
        domains = m["scoring"]["normalizer_domains"]
        assert set(domains) == {"source", "target"}
        domains["source"], domains["target"] = domains["target"], domains["source"]
        match = "scoring.normalizer_domains.source is 'scoring/normalizer_target.npy'"
    elif edit == "repoint_threshold":
        m["scoring"]["threshold"] = m["scoring"]["normalizer_global"]
        match = "scoring.threshold is 'scoring/normalizer_global.npy'"
    else:
        m["counts"] = []
        match = "malformed scoring/member section"
    _write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=match):
        load_bundle(bundle_copy)
