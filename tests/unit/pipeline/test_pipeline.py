"""The per-machine pipeline: determinism, no label use, fidelity, ensembles, supplemental data.

Unit tests use hand-made Clip records and a stand-in feature extractor (numpy matrices keyed by
clip name); the end-to-end tests use the ``tiny_dev_root`` synthetic tree and real features.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

import automl_asd.pipeline
from automl_asd.data import Clip, Domain, Label, MachineData, Split
from automl_asd.pipeline import (
    MachineResult,
    derive_seed,
    fit_machine,
    run_machine,
    score_clips,
    select_train_clips,
)
from automl_asd.recipe import Recipe, load_recipe

N_BINS = 12


def _clip(split: Split, domain: str, label: str, index: int, kind: str = "",
          mt: str = "toy") -> Clip:
    if split is Split.SUPPLEMENTAL:
        name = f"section_00_source_supplemental_{kind}_{index:04d}.wav"
    else:
        name = f"section_00_{domain}_{split.value}_{label}_{index:04d}_a_1.wav"
    return Clip(path=Path(f"/fake/{mt}/{split.value}/{name}"), machine_type=mt, section="00",
                split=split, domain=Domain(domain), label=Label(label), index=index,
                attributes=(("a", "1"),), kind=kind)


def _machine(mt: str = "toy", n_source: int = 30, n_target: int = 4, n_test: int = 8,
             supplemental: str = "") -> MachineData:
    clips = [_clip(Split.TRAIN, "source", "normal", i, mt=mt) for i in range(n_source)]
    clips += [_clip(Split.TRAIN, "target", "normal", i, mt=mt) for i in range(n_target)]
    for dom in ("source", "target"):
        for lab in ("normal", "anomaly"):
            clips += [_clip(Split.TEST, dom, lab, i, mt=mt) for i in range(n_test)]
    if supplemental:
        clips += [_clip(Split.SUPPLEMENTAL, "source", "normal", i, kind=supplemental, mt=mt)
                  for i in range(6)]
    return MachineData(mt, Path(f"/fake/{mt}"), tuple(sorted(clips, key=lambda c: c.path)))


def _fake_features(clip: Clip) -> NDArray[np.float32]:
    """Deterministic per clip name; the stand-in (not the pipeline) uses the label to plant an
    obvious anomaly, and ``kind`` to make noise clips loud in band 0."""
    seed = int.from_bytes(hashlib.sha256(clip.name.encode()).digest()[:4], "big")
    rng = np.random.default_rng(seed)
    bands = np.arange(N_BINS)
    x = 3.0 * np.cos(bands / 2.0) + rng.normal(0.0, 1.0, (20, N_BINS))
    if clip.domain is Domain.TARGET:
        x += 1.0 * np.sin(bands)
    if clip.label is Label.ANOMALY:
        x[:, 4:6] += 6.0
    if clip.kind == "noise":
        x[:, 0] += 20.0
    return x.astype(np.float32)


@pytest.fixture()
def fake_extract(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace the pipeline's ``extract`` (``automl_asd.features.extract``); returns the log of
    requested clip names."""
    calls: list[list[str]] = []

    def extract(clips: Sequence[Clip], spec: Any, **_: Any) -> list[NDArray[np.float32]]:
        calls.append([c.name for c in clips])
        return [_fake_features(c) for c in clips]

    monkeypatch.setattr(automl_asd.pipeline, "extract", extract)
    return calls


def _recipe(**changes: Any) -> Recipe:
    """fast_default with mean pooling and Euclidean kNN (the stand-in's anomaly lives in a
    few band means)."""
    base = load_recipe("fast_default")
    backend = {"name": "knn", "params": {"n_centers": 16, "k": 1, "metric": "euclidean"}}
    params = {**base.detector.params, "pooling": "mean", "backend": backend}
    changes.setdefault("detector", {"name": "pooled_stats", "params": params})
    return base.replace(**changes)


def _labels(machine: MachineData, result: MachineResult) -> NDArray[np.int64]:
    by_name = {c.name: int(c.label is Label.ANOMALY) for c in machine.test}
    return np.asarray([by_name[n] for n in result.names])


def test_derive_seed_is_stable_and_separates_parts() -> None:
    assert derive_seed(13711, "fan") == derive_seed(13711, "fan")
    assert derive_seed(13711, "fan") != derive_seed(13711, "gearbox")
    assert derive_seed(1, "fan") != derive_seed(13711, "fan")
    assert 0 <= derive_seed("x") < 2**31 - 1
    # Pinned value: a change here silently changes every submission.
    assert derive_seed(13711, "fan") == int.from_bytes(
        hashlib.sha256(b"13711\x1ffan").digest()[:8], "big") % (2**31 - 1)


def test_run_machine_result_and_auc(fake_extract: list[list[str]]) -> None:
    machine = _machine()
    result = run_machine(_recipe(), machine, device="cpu")
    assert result.names == tuple(c.name for c in machine.test)
    assert result.sections == ("00",) * 32
    assert result.scores.shape == (32,) and result.decisions.shape == (32,)
    assert result.decisions.dtype == np.int8 and set(np.unique(result.decisions)) <= {0, 1}
    np.testing.assert_array_equal(result.decisions, result.scores > result.threshold)
    assert roc_auc_score(_labels(machine, result), result.scores) >= 0.95
    assert result.counts == {"train_source": 30, "train_target": 4, "supplemental_clean": 0,
                             "train_used": 34, "noise_clips": 0, "ensemble": 1, "test": 32}
    assert set(result.timings) == {"features", "fit", "score", "total"}
    assert result.recipe_hash == _recipe().content_hash()
    assert result.seed == derive_seed(_recipe().seed, "toy")
    summary = result.summary()
    assert summary["n_test"] == 32 and "scores" not in summary
    # One extraction pass over train + test clips.
    assert len(fake_extract) == 1 and len(fake_extract[0]) == 34 + 32


def test_labels_are_never_read(fake_extract: list[list[str]]) -> None:
    """Relabelling the test clips (same features) must not change any output."""
    machine = _machine()
    first = run_machine(_recipe(), machine, device="cpu")

    def relabel(c: Clip) -> Clip:
        return dataclasses.replace(c, label=Label.UNKNOWN) if c.split is Split.TEST else c

    # Same features (the stand-in keys on the clip as labelled before), unknown labels.
    orig = {c.path: _fake_features(c) for c in machine.clips}
    automl_asd.pipeline.extract = (  # type: ignore[assignment]  # fake_extract restores it
        lambda clips, spec, **_: [orig[c.path] for c in clips])
    hidden = MachineData(machine.machine_type, machine.root,
                         tuple(relabel(c) for c in machine.clips))
    second = run_machine(_recipe(), hidden, device="cpu")
    np.testing.assert_array_equal(first.scores, second.scores)
    np.testing.assert_array_equal(first.decisions, second.decisions)
    assert first.threshold == second.threshold


def test_deterministic_and_seed_sensitive(fake_extract: list[list[str]]) -> None:
    machine = _machine()
    recipe = _recipe(ensemble={"size": 2, "combine": "mean_z"},
                     detector={"name": "pooled_stats",
                               "params": {"backend": {"name": "gmm", "params": {}}}})
    a = run_machine(recipe, machine, device="cpu")
    b = run_machine(recipe, machine, device="cpu")
    np.testing.assert_array_equal(a.scores, b.scores)
    c = run_machine(recipe.replace(seed=1), machine, device="cpu")
    assert not np.array_equal(a.scores, c.scores)


def test_fidelity_subsamples_source_only_and_nests() -> None:
    machine = _machine(n_source=40, n_target=5)
    recipe = _recipe()
    full, doms, counts = select_train_clips(recipe, machine, fidelity=1.0)
    assert len(full) == 45 and counts["train_used"] == 45
    half, half_doms, _ = select_train_clips(recipe, machine, fidelity=0.5)
    quarter, _, _ = select_train_clips(recipe, machine, fidelity=0.25)
    assert half_doms.count("target") == 5 and half_doms.count("source") == 20
    assert len(quarter) == 10 + 5
    assert set(quarter) <= set(half) <= set(full)
    again, _, _ = select_train_clips(recipe, machine, fidelity=0.5)
    assert again == half
    with pytest.raises(ValueError, match="fidelity"):
        select_train_clips(recipe, machine, fidelity=0.0)


def test_clean_supplemental_used_as_source(fake_extract: list[list[str]]) -> None:
    machine = _machine(supplemental="machine")
    off = run_machine(_recipe(), machine, device="cpu")
    assert off.counts["supplemental_clean"] == 0 and off.counts["train_used"] == 34
    recipe = _recipe(supplemental={"clean_as_normal": True})
    on = run_machine(recipe, machine, device="cpu")
    assert on.counts["supplemental_clean"] == 6 and on.counts["train_used"] == 40
    clips, doms, _ = select_train_clips(recipe, machine)
    assert [d for c, d in zip(clips, doms, strict=True) if c.split is Split.SUPPLEMENTAL] == [
        "source"] * 6


def test_supplemental_clips_of_unknown_kind_are_warned_about(
        fake_extract: list[list[str]], caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: the 2025 supplemental names are not confirmed; clips whose names the
    parser reads as neither clean machine nor noise were skipped without a word by a recipe
    that uses clean clips as normal data (`supplemental_clean: 0` in the summary only)."""
    machine = _machine(supplemental="unknown")
    result = run_machine(_recipe(supplemental={"clean_as_normal": True}), machine, device="cpu")
    assert result.counts["supplemental_clean"] == 0
    assert ("toy: 6 supplemental clip(s) whose names say neither clean machine nor noise "
            "(section_00_source_supplemental_unknown_0000.wav") in caplog.text
    caplog.clear()
    run_machine(_recipe(), machine, device="cpu")  # supplemental clips not used: nothing to say
    assert "supplemental" not in caplog.text


def test_noise_mixing_changes_training_only(fake_extract: list[list[str]]) -> None:
    pytest.importorskip("automl_asd.supplemental")
    machine = _machine(supplemental="noise")
    plain = run_machine(_recipe(), machine, device="cpu")
    mixed = run_machine(_recipe(supplemental={"noise_mix_prob": 1.0, "noise_snr_db": [0.0, 0.0]}),
                        machine, device="cpu")
    assert mixed.counts["noise_clips"] == 6
    assert not np.array_equal(plain.scores, mixed.scores)
    # Test clips were still extracted once and never mixed: names line up.
    assert mixed.names == plain.names


def test_fit_and_score_halves_equal_run_machine(fake_extract: list[list[str]]) -> None:
    machine = _machine()
    recipe = _recipe(normalization={"method": "domain_zscore"},
                     threshold={"method": "quantile", "quantile": 0.8})
    whole = run_machine(recipe, machine, device="cpu")
    fitted = fit_machine(recipe, machine, device="cpu")
    scores, decisions = score_clips(fitted, [_fake_features(c) for c in machine.test])
    np.testing.assert_array_equal(scores, whole.scores)
    np.testing.assert_array_equal(decisions, whole.decisions)
    assert fitted.threshold == whole.threshold


def test_no_train_clips_is_a_clear_error() -> None:
    machine = MachineData("empty", Path("/fake/empty"), ())
    with pytest.raises(ValueError, match="empty: no train clips"):
        run_machine(_recipe(), machine, device="cpu")


# ------------------------------------------------------------------ end to end, real features
@pytest.mark.slow
def test_tiny_tree_fast_default_end_to_end(tiny_dev_root: Path) -> None:
    from automl_asd.data import scan

    machines = scan(tiny_dev_root)
    fan = machines["fan"]
    recipe = load_recipe("fast_default")
    a = run_machine(recipe, fan, device="cpu")
    b = run_machine(recipe, fan, device="cpu")
    np.testing.assert_array_equal(a.scores, b.scores)
    assert len(a.names) == len(fan.test) == 40
    assert np.isfinite(a.scores).all()
    auc = roc_auc_score(_labels(fan, a), a.scores)
    assert auc >= 0.6, auc


@pytest.mark.slow
def test_tiny_tree_dcase_ae_with_supplemental(tiny_dev_root: Path) -> None:
    import torch

    from automl_asd.data import scan

    gearbox = scan(tiny_dev_root)["gearbox"]  # noise supplemental clips
    base = load_recipe("baseline_ae_mahalanobis")
    params = {**base.detector.params, "epochs": 2}
    recipe = base.replace(detector={"name": "dcase_ae", "params": params},
                          supplemental={"noise_mix_prob": 0.5},
                          normalization={"method": "domain_zscore"})
    threads = torch.get_num_threads()
    try:
        result = run_machine(recipe, gearbox, device="cpu", num_threads=1)
    finally:
        torch.set_num_threads(threads)
    assert result.scores.shape == (40,) and np.isfinite(result.scores).all()
    assert result.counts["noise_clips"] > 0
    np.testing.assert_array_equal(result.decisions, result.scores > result.threshold)
    assert result.timings["fit"] > 0 and result.counts["train_used"] == 60


@pytest.mark.slow
def test_tiny_tree_scores_do_not_depend_on_the_blas_threads_the_process_started_with(
        tiny_dev_root: Path, tmp_path: Path) -> None:
    """Probe (2026-12-08): ``apply --cpus-per-task 2`` under Ray scored a Mahalanobis hedge
    otherwise than ``--serial`` on two cores: the stage's thread count reached torch, not BLAS,
    which a Ray worker starts with 1 thread. The same ``num_threads`` now gives the same
    bytes whatever the caller's BLAS count."""
    from threadpoolctl import threadpool_limits

    from automl_asd.data import scan

    fan = scan(tiny_dev_root)["fan"]
    recipe = Recipe.from_dict({"schema_version": 1, "name": "h", "detector": {
        "name": "hedge", "params": {"views": "fine", "backends": "mahalanobis_logz"}}})
    results = []
    for blas in (2, 1):  # a serial process on two cores; a Ray worker
        with threadpool_limits(limits=blas, user_api="blas"):
            results.append(run_machine(recipe, fan, cache_dir=tmp_path, device="cpu",
                                       num_threads=2))
    assert results[0].threshold == results[1].threshold
    np.testing.assert_array_equal(results[0].scores, results[1].scores)


def test_thin_training_data_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """Found by probing (2026-12-06): a type with no target-domain training clips, or one clip
    per domain, ran without a word while its target AUC fell from 0.61 to 0.34."""
    from automl_asd.pipeline import warn_thin_training

    warn_thin_training("pump", ["source"] * 20)
    assert "pump: no target-domain training clips" in caplog.text
    caplog.clear()
    warn_thin_training("pump", ["source", "target"])
    assert "pump: only 2 training clip(s) (1 source, 1 target): too few" in caplog.text
    caplog.clear()
    warn_thin_training("pump", ["source"] * 20 + ["target"])
    assert caplog.text == ""


def test_static_training_clips_are_named(caplog: pytest.LogCaptureFixture) -> None:
    """Found by probing (2026-12-06): one silent (or DC) training clip lowered a type's
    target AUC from 0.61 to 0.37 without a word."""
    from pathlib import Path
    from types import SimpleNamespace

    from automl_asd.pipeline import _warn_static_clips

    rng = np.random.default_rng(0)
    clips: Any = [SimpleNamespace(path=Path(f"c{i}.wav")) for i in range(3)]
    dc = np.zeros((50, 8), np.float32)
    dc[:, 0] = 30.0  # energy in the lowest band only, constant over time
    feats = [rng.normal(size=(50, 8)).astype(np.float32), np.full((50, 8), -100.0, np.float32),
             dc]
    _warn_static_clips("pump", clips, feats)
    assert "pump: 2 training clip(s) whose features never change over time" in caplog.text
    assert "c1.wav, c2.wav" in caplog.text and "c0.wav" not in caplog.text


def test_clips_too_short_for_the_detector_are_named_before_any_fit() -> None:
    """Found 2026-12-07: a 700-sample test clip (2 frames) let the official autoencoder train
    for 100 epochs, then failed with "clip 0 has 2 frames", naming no file."""
    from automl_asd.pipeline import check_clip_frames
    from automl_asd.recipe import load_recipe

    ae = load_recipe("baseline_ae_mse")  # n_frames 5 at hop 512, 16 kHz
    feats = [np.zeros((k, 128), np.float32) for k in (313, 2, 5, 4)]
    names = ["a.wav", "short.wav", "five.wav", "four.wav"]
    with pytest.raises(ValueError) as exc:
        check_clip_frames(ae, names, feats)
    assert str(exc.value) == (
        "2 clip(s) too short for recipe 'baseline_ae_mse': its dcase_ae needs at least 5 "
        "frames (clips of at least 0.128 s at hop_length 512): short.wav (2 frames), "
        "four.wav (4 frames)")
    check_clip_frames(ae, names[::2], feats[::2])  # 313 and 5 frames: enough
    check_clip_frames(load_recipe("fast_default"), names, [f[:1] for f in feats])  # 1 frame
