"""Representation cache: what its key covers, and that a reused representation scores the same.

The key must change with every representation parameter (feature spec, every detector parameter
except the family's scoring parameters, supplemental settings, the member seed), with the data
fingerprint and the fidelity — and with nothing else (normalisation, threshold, ensemble, backend,
domain rule, name, description, provenance).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_asd.data import scan
from automl_asd.detectors import get_detector_class
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.pipeline import derive_seed
from automl_asd.recipe import Recipe, load_recipe
from automl_asd.representation_cache import (
    RepresentationCache,
    at_fidelity,
    data_fingerprint,
    representation_key,
    shared_key,
)

_FP = "0" * 64


def _key(recipe: Recipe, *, fingerprint: str = _FP, fidelity: float = 1.0,
         member: int = 0) -> str:
    # As pipeline.fit_machine derives it: machine seed, then member seed.
    seed = derive_seed(derive_seed(recipe.seed, "fan"), "member", member)
    return representation_key(recipe, member_seed=seed, fingerprint=fingerprint,
                              fidelity=fidelity)


def _other(value: Any, spec: Any) -> Any:
    """A valid value different from ``value`` for a ParamSpec."""
    if spec.type == "bool":
        return not value
    if spec.type == "str":
        return next(c for c in spec.choices if c != value)
    if spec.type == "int":
        return value + 1 if spec.high is None or value + 1 <= spec.high else value - 1
    if spec.type == "float":
        cand = value * 0.5 if value else 0.25
        return cand if spec.low is None or cand >= spec.low else value + 0.1
    if spec.type == "backend":
        return {"name": "mahalanobis" if value["name"] != "mahalanobis" else "knn",
                "params": {}}
    raise AssertionError(spec.type)


def _changed(recipe: Recipe, path: tuple[str, ...], value: Any) -> Recipe:
    d = copy.deepcopy(recipe.to_dict())
    cur = d
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return Recipe.from_dict(d)


_BASES = ("margin_default", "baseline_ae_mse")


def _detector_cases() -> list[tuple[str, str]]:
    out = []
    for base in _BASES:
        recipe = load_recipe(base)
        for name in get_detector_class(recipe.detector.name).params:
            out.append((base, name))
    return out


@pytest.mark.parametrize(("base", "param"), _detector_cases())
def test_key_changes_with_each_representation_parameter_only(base: str, param: str) -> None:
    recipe = load_recipe(base)
    cls = get_detector_class(recipe.detector.name)
    spec = cls.params[param]
    value = recipe.detector.params[param]
    changed = _changed(recipe, ("detector", "params", param), _other(value, spec))
    scoring = cls.scoring_params or frozenset()
    if param in scoring:
        assert _key(changed) == _key(recipe), f"{param} is a scoring parameter"
    else:
        assert _key(changed) != _key(recipe), f"{param} shapes the representation"


_RECIPE_FIELDS: list[tuple[tuple[str, ...], Any, bool]] = [
    # (path, new value, changes the representation?)
    (("features", "n_mels"), 64, True),
    (("features", "hop_length"), 256, True),
    (("features", "n_fft"), 2048, True),
    (("features", "f_min"), 50.0, True),
    (("features", "power"), 1.0, True),
    (("features", "mel_scale"), "htk", True),
    (("supplemental", "clean_as_normal"), True, True),
    (("supplemental", "noise_mix_prob"), 0.3, True),
    # inert while no clip is mixed with noise (the shipped recipes mix none); see below
    (("supplemental", "noise_snr_db"), [5.0, 15.0], False),
    (("seed",), 7, True),
    (("normalization", "method"), "domain_log_zscore", False),
    (("threshold", "method"), "quantile", False),
    (("threshold", "quantile"), 0.95, False),
    (("ensemble", "size"), 3, False),
    (("ensemble", "combine"), "max", False),
    (("name",), "renamed", False),
    (("description",), "another text", False),
    (("provenance", "trial_id"), "t42", False),
]


@pytest.mark.parametrize("base", _BASES)
@pytest.mark.parametrize(("path", "value", "changes"), _RECIPE_FIELDS,
                         ids=[".".join(p) for p, _, _ in _RECIPE_FIELDS])
def test_key_covers_recipe_fields(base: str, path: tuple[str, ...], value: Any,
                                  changes: bool) -> None:
    recipe = load_recipe(base)
    changed = _changed(recipe, path, value)
    assert changed.to_dict() != recipe.to_dict()
    assert (_key(changed) != _key(recipe)) is changes


def test_noise_snr_changes_the_key_only_when_noise_is_mixed() -> None:
    recipe = load_recipe("margin_default")
    assert recipe.supplemental.noise_mix_prob == 0.0
    mixing = _changed(recipe, ("supplemental", "noise_mix_prob"), 0.3)
    louder = _changed(mixing, ("supplemental", "noise_snr_db"), [5.0, 15.0])
    assert _key(louder) != _key(mixing)
    # the same normalisation as the behaviour hash: equal behaviour, equal key
    inert = _changed(recipe, ("supplemental", "noise_snr_db"), [5.0, 15.0])
    assert inert.behaviour_hash() == recipe.behaviour_hash()
    assert louder.behaviour_hash() != mixing.behaviour_hash()


def test_key_changes_with_data_fingerprint_fidelity_member_and_device() -> None:
    recipe = load_recipe("margin_default")
    assert _key(recipe, fingerprint="1" * 64) != _key(recipe)
    assert _key(recipe, fidelity=0.5) != _key(recipe)
    assert _key(recipe, member=1) != _key(recipe)
    assert _key(recipe) == _key(load_recipe("margin_default"))
    # A GPU trains other kernels (bf16 under amp): never reuse a CPU-trained network there.
    seed = derive_seed(derive_seed(recipe.seed, "fan"), "member", 0)
    on = {d: representation_key(recipe, member_seed=seed, fingerprint=_FP, fidelity=1.0,
                                device=d) for d in ("cpu", "cuda", "cuda:1")}
    assert on["cpu"] == _key(recipe) and on["cuda"] != on["cpu"]
    assert on["cuda:1"] == on["cuda"]  # the device kind, not the card
    assert (shared_key(recipe, fingerprint=_FP, fidelity=1.0, device="cuda")
            != shared_key(recipe, fingerprint=_FP, fidelity=1.0))
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        representation_key(recipe, member_seed=seed, fingerprint=_FP, fidelity=1.0,
                            device="auto")
    # CPU training threads order the float sums: a 1-thread network never answers a 2-thread
    # trial (found 2026-12-06: warm and cold scores differed); on CUDA the count is moot.
    import torch

    def key(threads: int | None, device: str = "cpu") -> str:
        return representation_key(recipe, member_seed=seed, fingerprint=_FP, fidelity=1.0,
                                  device=device, threads=threads)
    assert key(1) != key(2) and key(None) == key(torch.get_num_threads())
    assert key(None, "cuda") == key(0, "cuda")
    assert (shared_key(recipe, fingerprint=_FP, fidelity=1.0, threads=1)
            != shared_key(recipe, fingerprint=_FP, fidelity=1.0, threads=2))


def test_a_recipe_that_fixes_its_device_is_keyed_by_that_device() -> None:
    """Found 2026-12-07: margin_cnn's ``device: cpu`` trains on the CPU whatever --device
    says, but the key followed --device (cuda: a CPU-trained network stored as a GPU one,
    without its thread count, so a 1-thread network could answer a 2-thread run)."""
    d = load_recipe("margin_default").to_dict()
    d["detector"]["params"]["device"] = "cpu"
    on_cpu = Recipe.from_dict(d)
    seed = derive_seed(derive_seed(on_cpu.seed, "fan"), "member", 0)

    def key(device: str, threads: int) -> str:
        return representation_key(on_cpu, member_seed=seed, fingerprint=_FP, fidelity=1.0,
                                  device=device, threads=threads)
    assert key("cuda", 1) == key("cpu", 1) and key("cuda", 1) != key("cuda", 2)
    assert (shared_key(on_cpu, fingerprint=_FP, fidelity=1.0, device="cuda", threads=1)
            == shared_key(on_cpu, fingerprint=_FP, fidelity=1.0, device="cpu", threads=1))


def test_shared_key_excludes_scoring_fields() -> None:
    recipe = load_recipe("margin_knn")
    base = shared_key(recipe, fingerprint=_FP, fidelity=1.0)
    for path, value in ((("normalization", "method"), "none"),
                        (("detector", "params", "domain_rule"), "backend"),
                        (("threshold", "quantile"), 0.95)):
        d = copy.deepcopy(recipe.to_dict())
        cur = d
        for key in path[:-1]:
            cur = cur[key]
        if cur[path[-1]] == value:
            continue
        cur[path[-1]] = value
        assert shared_key(Recipe.from_dict(d), fingerprint=_FP, fidelity=1.0) == base
    assert shared_key(recipe, fingerprint="1" * 64, fidelity=1.0) != base


def test_data_fingerprint_sees_changed_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 10)
    fp = data_fingerprint([a, b])
    assert data_fingerprint([b, a]) == fp  # order does not matter
    assert data_fingerprint([a]) != fp
    b.write_bytes(b"y" * 11)
    assert data_fingerprint([a, b]) != fp


def test_data_fingerprint_sees_same_size_rewrites_and_honours_verify_audio(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_asd.environment import VERIFY_AUDIO_ENV

    monkeypatch.delenv(VERIFY_AUDIO_ENV, raising=False)
    a = tmp_path / "a.wav"
    a.write_bytes(b"x" * 10)
    fp = data_fingerprint([a])
    st = a.stat()
    with open(a, "r+b") as fh:  # same size, same inode, old mtime put back
        fh.write(b"z" * 10)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert a.stat().st_mtime_ns == st.st_mtime_ns
    assert data_fingerprint([a]) != fp  # the ctime moved: a stale representation is not served
    monkeypatch.setenv(VERIFY_AUDIO_ENV, "1")  # by content: only the bytes count
    by_content = data_fingerprint([a])
    a.write_bytes(b"w" * 10)
    assert data_fingerprint([a]) != by_content
    a.write_bytes(b"z" * 10)  # the same bytes again, though new timestamps
    assert data_fingerprint([a]) == by_content


def test_at_fidelity_scales_epochs_of_network_families() -> None:
    ae = load_recipe("baseline_ae_mse")
    assert at_fidelity(ae, 0.25).detector.params["epochs"] == 25
    assert at_fidelity(ae, 1.0) is ae
    pooled = load_recipe("fast_default")
    assert at_fidelity(pooled, 0.25) is pooled


def _tiny_margin(backend: str, domain_rule: str, normalization: str) -> Recipe:
    d = load_recipe("margin_default").to_dict()
    d["detector"]["params"].update(
        get_detector_class("margin_cnn").test_params,
        backend={"name": backend, "params": {}}, domain_rule=domain_rule, scope="machine")
    d["normalization"]["method"] = normalization
    d["features"]["n_mels"] = 32
    return Recipe.from_dict(d)


def test_reused_representation_scores_byte_identical(tiny_dev_root: Path,
                                                     tmp_path: Path) -> None:
    machines = scan(tiny_dev_root, machine_types=["fan"])
    cold_dir, warm_dir = tmp_path / "cold", tmp_path / "warm"
    first = _tiny_margin("knn", "nearest_clip", "domain_zscore")
    other = _tiny_margin("mahalanobis", "backend", "domain_log_zscore")
    # Warm cache: the first recipe stores the network; the second (other backend, domain rule,
    # normalisation) reuses it.
    a = evaluate_recipe(first, machines, cache_dir=warm_dir, device="cpu")
    assert a.cache["misses"] == 1 and a.cache["hits"] == 0
    b = evaluate_recipe(other, machines, cache_dir=warm_dir, device="cpu")
    assert b.cache["hits"] == 1 and b.cache["misses"] == 0
    # Cold: the second recipe trains its own network in an empty cache.
    c = evaluate_recipe(other, machines, cache_dir=cold_dir, device="cpu")
    assert c.cache["misses"] == 1
    for key in c.per_clip:
        assert b.per_clip[key][2].tobytes() == c.per_clip[key][2].tobytes()
    assert b.omega == c.omega
    # Without reuse nothing is stored or counted, and the scores are the same.
    d = evaluate_recipe(other, machines, cache_dir=cold_dir, device="cpu",
                        reuse_representations=False)
    assert d.cache == {}
    assert np.array_equal(d.per_clip[("fan", "00")][2], c.per_clip[("fan", "00")][2])


def test_reused_autoencoder_scores_byte_identical(tiny_dev_root: Path, tmp_path: Path) -> None:
    machines = scan(tiny_dev_root, machine_types=["fan"])
    d = load_recipe("baseline_ae_mse").to_dict()
    d["detector"]["params"].update(epochs=2, hidden=16, bottleneck=4, n_layers=1)
    d["features"]["n_mels"] = 32
    mse = Recipe.from_dict(d)
    d["detector"]["params"]["score"] = "mahalanobis"
    maha = Recipe.from_dict(d)
    warm = tmp_path / "warm"
    evaluate_recipe(mse, machines, cache_dir=warm, device="cpu")
    reused = evaluate_recipe(maha, machines, cache_dir=warm, device="cpu")
    cold = evaluate_recipe(maha, machines, cache_dir=tmp_path / "cold", device="cpu")
    assert reused.cache["hits"] == 1 and cold.cache["misses"] == 1
    assert reused.per_clip[("fan", "00")][2].tobytes() == cold.per_clip[("fan", "00")][2].tobytes()


def test_corrupt_entry_is_retrained(tmp_path: Path) -> None:
    cache = RepresentationCache(tmp_path)
    cache.put("fam", "k", {"w": np.arange(3.0)})
    fresh = RepresentationCache(tmp_path)
    got = fresh.get("fam", "k")
    assert got is not None and np.array_equal(got["w"], np.arange(3.0))
    (tmp_path / "representations" / "fam" / "k.npz").write_bytes(b"garbage")
    assert RepresentationCache(tmp_path).get("fam", "k") is None
    # damage inside a valid zip (the CRC catches it), a torn file, an empty one: all discarded
    path = tmp_path / "representations" / "fam" / "k.npz"
    for damage in ("flip", "truncate", "empty"):
        RepresentationCache(tmp_path).put("fam", "k", {"w": np.arange(4096.0)})
        raw = bytearray(path.read_bytes())
        if damage == "flip":
            raw[len(raw) // 2] ^= 0xFF
        elif damage == "truncate":
            raw = raw[: len(raw) // 2]
        else:
            raw = bytearray()
        path.write_bytes(bytes(raw))
        assert RepresentationCache(tmp_path).get("fam", "k") is None, damage
        assert not path.exists(), damage


def test_an_interrupted_store_leaves_no_temporary_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-07: Ctrl+C while an entry was written left its temporary file."""
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        RepresentationCache(tmp_path).put("fam", "k", {"w": np.arange(3.0)})
    assert list((tmp_path / "representations" / "fam").iterdir()) == []


def test_the_shared_stage_is_keyed_by_the_threads_it_trains_with(tmp_path: Path) -> None:
    """Review (2026-12-06): the shared key read the caller's torch thread count while
    fit_shared trained under its own, so a 2-thread network answered a 1-thread call."""
    recipe = load_recipe("margin_knn")
    cache = RepresentationCache(tmp_path)
    built: list[int] = []

    def build(n: int) -> Any:
        def go() -> list[dict[str, np.ndarray]]:
            built.append(n)
            return [{"w": np.full(3, float(n))}]
        return go

    for n in (2, 1, 2, 1):
        got = cache.shared(recipe, _FP, 1.0, build(n), threads=n)
        assert float(got[0]["w"][0]) == n
    assert built == [2, 1]


def test_a_full_disk_skips_storing_with_one_warning_naming_the_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found on a real full tmpfs (2026-12-07): each representation that could not be stored
    gave a WARNING with a bare `[Errno 28]`; now one WARNING naming the cache folder and its
    free space, then INFO; nothing half-written is left and the state is still served."""
    import errno
    import logging

    from automl_asd.representation_cache import RepresentationCache

    def full(fh: Any, **arrays: Any) -> None:
        fh.write(b"PK")  # what fitted
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    cache = RepresentationCache(root=tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="automl_asd.representation_cache"):
        for key in ("a", "b"):
            cache.put("dcase_ae", key, {"w": np.arange(3.0)})
    failed = [r for r in caplog.records if "could not write representation" in r.message]
    assert [r.levelno for r in failed] == [logging.WARNING, logging.INFO]
    assert f"cache folder {tmp_path / 'cache'}: " in failed[0].message
    assert "a.npz: no space left on the device" in failed[0].message
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    np.testing.assert_array_equal(cache.get("dcase_ae", "b")["w"], np.arange(3.0))
