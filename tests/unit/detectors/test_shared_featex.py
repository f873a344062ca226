"""Feature exchange, the margin family's shared stage (one network over all machine types),
log z-score normalisation and backend-chosen domains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from automl_asd.apply import ApplyConfig, apply_recipe
from automl_asd.backends import make_backend
from automl_asd.bundle.format import BundleError
from automl_asd.bundle.model import load_bundle
from automl_asd.bundle.shared import load_shared, save_shared
from automl_asd.calibration import DomainNormalizer
from automl_asd.data import scan
from automl_asd.detectors import TrainSet, make_detector
from automl_asd.io.submission import read_submission
from automl_asd.nn.losses import feature_exchange
from automl_asd.pipeline import fit_shared, needs_shared, run_machine
from automl_asd.recipe import load_recipe
from tests.fixtures.recipes import shared_margin_recipe

N_BINS = 24
TINY = {"size": "tiny", "crop_frames": 16, "emb_dim": 16, "epochs": 4, "batch_size": 16,
        "n_subclusters": 2, "lr": 3e-3}


# ----------------------------------------------------------------------------- FeatEx
def test_feature_exchange_by_hand() -> None:
    emb = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    targets = torch.eye(3)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    out, t = feature_exchange(emb, targets, 1, generator=gen)
    moved = [i for i in range(3) if int(perm[i]) != i]
    assert out.shape == (3 + len(moved), 3) and t.shape == (3 + len(moved), 6)
    # originals first, unchanged, with their class in the first half
    assert torch.equal(out[:3], emb) and torch.equal(t[:3], torch.cat([targets,
                                                                       torch.zeros(3, 3)], 1))
    for row, i in enumerate(moved, start=3):
        j = int(perm[i])
        # branch 1 (first column) of clip i, branch 2 (last two columns) of its partner j
        assert out[row].tolist() == [emb[i, 0].item(), emb[j, 1].item(), emb[j, 2].item()]
        expect = torch.zeros(6)
        expect[3 + i] += 0.5
        expect[3 + j] += 0.5
        assert torch.equal(t[row], expect)
    assert torch.allclose(t.sum(1), torch.ones(len(t)))


def test_feature_exchange_single_row_adds_nothing() -> None:
    out, t = feature_exchange(torch.ones(1, 4), torch.ones(1, 2), 2,
                              generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 4) and t.tolist() == [[1.0, 1.0, 0.0, 0.0]]


def _clip(rng: np.random.Generator, peak: int, anomaly: bool = False) -> NDArray[np.float32]:
    x = np.linspace(-50, -70, N_BINS)[None, :] + rng.normal(0, 2, (40, N_BINS))
    x[:, peak] += 25
    if anomaly:
        x[::3, (peak + 9) % N_BINS] += 20
    return x.astype(np.float32)


def _train(rng: np.random.Generator, mt: str, peaks: tuple[int, ...], n: int = 12,
           attributes: bool = True) -> TrainSet:
    feats, doms, attrs = [], [], []
    for a, peak in enumerate(peaks):
        for _ in range(n if a < len(peaks) - 1 else 4):
            feats.append(_clip(rng, peak))
            doms.append("target" if a == len(peaks) - 1 else "source")
            attrs.append(f"p_{peak}" if attributes else "noAttribute")
    k = len(feats)
    return TrainSet(features=feats, domains=np.array(doms), attributes=np.array(attrs),
                    sections=np.array(["00"] * k), machine_types=np.array([mt] * k))


def _concat(*sets: TrainSet) -> TrainSet:
    return TrainSet(features=[f for s in sets for f in s.features],
                    domains=np.concatenate([s.domains for s in sets]),
                    attributes=np.concatenate([s.attributes for s in sets]),
                    sections=np.concatenate([s.sections for s in sets]),
                    machine_types=np.concatenate([s.machine_types for s in sets]))


def test_featex_trains_detects_and_needs_two_branches() -> None:
    rng = np.random.default_rng(0)
    train = _train(rng, "fan", (3, 8, 13))
    det = make_detector("margin_cnn", {**TINY, "featex": True, "epochs": 10}, seed=2).fit(train)
    assert det.n_classes_ % 2 == 0  # the exchanged half of the classes
    normal = [_clip(rng, 3) for _ in range(10)]
    anomal = [_clip(rng, 3, anomaly=True) for _ in range(10)]
    s = det.score_samples(normal + anomal)
    assert roc_auc_score([0] * 10 + [1] * 10, s) >= 0.8
    with pytest.raises(ValueError, match="spectrum_branch"):
        make_detector("margin_cnn", {**TINY, "featex": True, "spectrum_branch": False},
                      seed=1).fit(train)


# ------------------------------------------------------------------------ shared stage
def test_shared_network_is_trained_once_and_reused_per_machine() -> None:
    rng = np.random.default_rng(1)
    fan = _train(rng, "fan", (3, 8, 13))
    pump = _train(rng, "pump", (5, 10, 15), attributes=False)
    params = {**TINY, "scope": "all"}
    shared = make_detector("margin_cnn", params, seed=7).fit_shared(_concat(fan, pump))
    # classes of both machine types: fan 3 attribute/domain classes + pump's pseudo classes
    assert int(shared["net_meta"][1]) >= 4
    with pytest.raises(ValueError, match="fit_shared"):
        make_detector("margin_cnn", params, seed=7).fit(fan)
    dets = []
    for ts in (fan, pump):
        det = make_detector("margin_cnn", params, seed=3)
        det.use_shared(shared)
        dets.append(det.fit(ts))
    # both use the very same network: identical embeddings of the same clips
    probe = [_clip(rng, 3) for _ in range(4)]
    assert np.array_equal(dets[0].embed(probe), dets[1].embed(probe))
    normal = [_clip(rng, 3) for _ in range(10)]
    anomal = [_clip(rng, 3, anomaly=True) for _ in range(10)]
    assert roc_auc_score([0] * 10 + [1] * 10, dets[0].score_samples(normal + anomal)) >= 0.8
    # a per-machine detector refuses a shared state
    with pytest.raises(ValueError, match="scope='all'"):
        make_detector("margin_cnn", TINY, seed=3).use_shared(shared)
    # state round trip keeps the shared network
    again = make_detector("margin_cnn", params, seed=3).set_state(dets[0].get_state())
    assert np.array_equal(again.score_samples(probe), dets[0].score_samples(probe))


@pytest.mark.slow
def test_shared_scope_applies_end_to_end_and_resumes(tiny_dev_root: Path,
                                                     tmp_path: Path) -> None:
    data = tmp_path / "data"
    for mt in ("gearbox", "bearing"):  # bearing: noAttribute, and no supplemental folder
        shutil.copytree(tiny_dev_root / mt, data / mt)
    shutil.rmtree(data / "bearing" / "supplemental")
    recipe = shared_margin_recipe()
    assert needs_shared(recipe) and not needs_shared(load_recipe("fast_default"))
    out = tmp_path / "out"
    report = apply_recipe(ApplyConfig(recipe, data, out, plots=False))
    assert report.ok, report.outcomes
    manifest = json.loads((out / "shared" / "shared.json").read_text())
    assert manifest["machine_types"] == ["bearing", "gearbox"]
    assert manifest["recipe_hash"] == recipe.content_hash()
    # the bundle is self-contained: it re-scores the test clips bit-identically
    machines = scan(data)
    for mt in ("gearbox", "bearing"):
        sub = read_submission(out, mt, "00")
        bundle = load_bundle(out / "models" / mt)
        clips = list(machines[mt].test)
        scores = bundle.score([c.path for c in clips]).scores
        want = np.array([sub.scores[c.name] for c in clips])
        assert np.array_equal(np.asarray(scores), want)
    # same recipe and seed in the library (run_machine + fit_shared): the same scores
    shared = fit_shared(recipe, machines)
    res = run_machine(recipe, machines["gearbox"], shared=shared)
    sub = read_submission(out, "gearbox", "00")
    assert np.array_equal(res.scores, np.array([sub.scores[n] for n in res.names]))
    # resume: nothing to redo, the shared stage is neither retrained nor touched
    mtime = (out / "shared" / "shared.json").stat().st_mtime_ns
    again = apply_recipe(ApplyConfig(recipe, data, out, resume=True, plots=False))
    assert {o.status for o in again.outcomes} == {"skipped"}
    assert (out / "shared" / "shared.json").stat().st_mtime_ns == mtime
    fresh = {mt: read_submission(out, mt, "00").scores for mt in ("gearbox", "bearing")}
    # a run over gearbox alone, resumed over both types: the shared stage is trained again
    # over both, so gearbox runs again too (never a submission from two shared stages)
    part = tmp_path / "part"
    apply_recipe(ApplyConfig(recipe, data, part, machine_types=("gearbox",), plots=False))
    grown = apply_recipe(ApplyConfig(recipe, data, part, resume=True, plots=False))
    assert {o.machine_type: o.status for o in grown.outcomes} == {
        "bearing": "ok", "gearbox": "ok"}
    for mt in ("gearbox", "bearing"):
        assert read_submission(part, mt, "00").scores == fresh[mt]
    # one type's training files change: the stage is trained again and every type reruns
    next(iter(sorted((data / "bearing" / "train").glob("*.wav")))).unlink()
    changed = apply_recipe(ApplyConfig(recipe, data, out, resume=True, plots=False))
    assert {o.status for o in changed.outcomes} == {"ok"}
    assert (out / "shared" / "shared.json").stat().st_mtime_ns != mtime
    assert read_submission(out, "gearbox", "00").scores != fresh["gearbox"]


def test_shared_storage_refuses_damage_and_other_recipes(tmp_path: Path) -> None:
    states = [{"a": np.arange(3.0), "b": np.ones((2, 2), np.float32)}]
    path = save_shared(tmp_path / "shared", states, recipe_hash="r1", machine_types=["x", "y"])
    back = load_shared(path, recipe_hash="r1", machine_types=["y", "x"])
    assert np.array_equal(back[0]["a"], states[0]["a"]) and back[0]["b"].dtype == np.float32
    with pytest.raises(BundleError, match="recipe"):
        load_shared(path, recipe_hash="r2")
    with pytest.raises(BundleError, match="trained on"):
        load_shared(path, recipe_hash="r1", machine_types=["x"])
    with pytest.raises(BundleError, match="saved without the fingerprints"):
        load_shared(path, recipe_hash="r1", fingerprints={"x": {"n": "1"}, "y": {"n": "2"}})
    prints = {"x": {"n": "1"}, "y": {"n": "2"}}
    path = save_shared(tmp_path / "shared", states, recipe_hash="r1", machine_types=["x", "y"],
                       fingerprints=prints)
    load_shared(path, recipe_hash="r1", machine_types=["x", "y"], fingerprints=prints)
    with pytest.raises(BundleError, match="other data for y"):
        load_shared(path, recipe_hash="r1", fingerprints={**prints, "y": {"n": "3"}})
    victim = next((path / "members").rglob("*.npy"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x01")
    with pytest.raises(BundleError, match="sha256"):
        load_shared(path, recipe_hash="r1")
    with pytest.raises(BundleError, match="missing"):
        load_shared(tmp_path / "nowhere", recipe_hash="r1")


def test_run_machine_without_the_shared_stage_is_a_clear_error(tiny_dev_root: Path) -> None:
    machines = scan(tiny_dev_root, machine_types=["gearbox"])
    with pytest.raises(ValueError, match="fit_shared"):
        run_machine(shared_margin_recipe(), machines["gearbox"])


# ---------------------------------------------------------------- normalisation, domains
def test_domain_log_zscore_by_hand() -> None:
    self_scores = np.array([1.0, 2.0, 4.0, 8.0, 10.0, 20.0, 40.0])
    doms = np.array(["source"] * 4 + ["target"] * 3)
    norm = DomainNormalizer.fit("domain_log_zscore", self_scores, doms)
    ls, lt = np.log([1.0, 2.0, 4.0, 8.0]), np.log([10.0, 20.0, 40.0])
    got = norm.transform(np.array([4.0, 20.0, 0.0]), np.array(["source", "target", "source"]))
    assert got[0] == pytest.approx((np.log(4.0) - ls.mean()) / ls.std())
    assert got[1] == pytest.approx((np.log(20.0) - lt.mean()) / lt.std())
    # an exact match (0) is clamped to the smallest training score, not -inf
    assert got[2] == pytest.approx((np.log(1.0) - ls.mean()) / ls.std())
    assert norm.per_domain and norm.log_floor == 1.0 and norm.log_shift == 0.0
    # scores that are not all positive (e.g. a GMM's NLL) are shifted by std - min first
    raw = np.array([1.0, -0.5, 2.0, 0.5])
    neg = DomainNormalizer.fit("domain_log_zscore", raw, np.array(["source"] * 4))
    shift = raw.std() - raw.min()
    assert neg.log_shift == pytest.approx(shift) and neg.log_floor == pytest.approx(raw.std())
    lr = np.log(raw + shift)
    got = neg.transform(np.array([2.0, -9.0]), np.array(["source", "source"]))
    assert got[0] == pytest.approx((np.log(2.0 + shift) - lr.mean()) / lr.std())
    assert got[1] == pytest.approx((np.log(raw.std()) - lr.mean()) / lr.std())  # clamped
    with pytest.raises(ValueError, match="domain_log_zscore"):
        DomainNormalizer.fit("log", self_scores, doms)


def test_mahalanobis_nearest_domain_and_backend_domain_rule() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(0, 1, (60, 4))
    tgt = rng.normal(0, 1, (8, 4)) + np.array([6.0, 0, 0, 0])
    emb = np.concatenate([src, tgt]).astype(np.float32)
    doms = np.array(["source"] * 60 + ["target"] * 8)
    b = make_backend("mahalanobis", {"target_covariance": "pooled"}, seed=0).fit(emb, doms)
    probe = np.array([[0.0, 0, 0, 0], [6.0, 0, 0, 0], [5.5, 0.5, 0, 0]], np.float32)
    assert b.nearest_domain(probe).tolist() == ["source", "target", "target"]
    # the score is the distance to that domain's mean: the minimum over domains
    m = b.means_
    d_t = (probe[1] - m[1]) @ b.precisions_[1] @ (probe[1] - m[1])
    assert b.score(probe)[1] == pytest.approx(d_t)
    # pooled_stats with domain_rule=backend asks the backend; nearest_clip asks the clips
    feats = [np.tile(e, (5, 1)).astype(np.float32) for e in emb]
    ts = TrainSet(features=feats, domains=doms, attributes=np.array(["a"] * 68),
                  sections=np.array(["00"] * 68), machine_types=np.array(["fan"] * 68))
    spec = {"pooling": "mean", "standardize": False,
            "backend": {"name": "mahalanobis", "params": {"target_covariance": "pooled"}}}
    det = make_detector("pooled_stats", {**spec, "domain_rule": "backend"}, seed=0).fit(ts)
    probe_f = [np.tile(p, (5, 1)) for p in probe]
    assert det.nearest_domain(probe_f).tolist() == b.nearest_domain(probe).tolist()
    knn = {"pooling": "mean", "backend": {"name": "gmm", "params": {"n_components": 1}}}
    # a backend without nearest_domain falls back to the nearest training clip
    det2 = make_detector("pooled_stats", {**knn, "domain_rule": "backend"}, seed=0).fit(ts)
    assert det2.nearest_domain(probe_f).tolist() == ["source", "target", "target"]


@pytest.mark.slow
def test_search_objective_runs_the_shared_stage(tiny_dev_root: Path) -> None:
    from automl_asd.evaluation.objective import evaluate_recipe

    machines = scan(tiny_dev_root, machine_types=["gearbox", "bearing"])
    res = evaluate_recipe(shared_margin_recipe(), machines, fidelity=0.5)
    assert 0.0 < res.omega <= 1.0 and set(res.per_type) == {("gearbox", "00"), ("bearing", "00")}
    assert res.timings["shared"] > 0.0
