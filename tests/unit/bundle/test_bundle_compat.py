"""Bundles written before the ``automl_asd.bundle`` package existed still load and score the same.

``_write_v1`` below is an independent writer of the on-disk layout that ``apply`` has written
since bundles were introduced (bundle_version 1: ``members/<i>/<j>-<key>.npy``,
``scoring/{member_stats,threshold,normalizer_<global|domain|log_floor>}.npy``, a manifest with
the sha256 of every file), built from plain numpy/json/hashlib and the fitted machine's public
attributes, without the package's writer. The current writer must produce the same bytes, and
the current reader must rebuild a machine that scores test clips bit for bit like the fitted one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from automl_asd._version import __version__
from automl_asd.bundle.format import BUNDLE_VERSION
from automl_asd.bundle.model import Bundle
from automl_asd.bundle.state import bundle_files
from automl_asd.data import scan
from automl_asd.features import extract
from automl_asd.pipeline import FittedMachine, fit_machine, score_clips
from automl_asd.recipe import load_recipe

MT = "fan"


def _npy(arr: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write_v1(fitted: FittedMachine, created: str) -> dict[str, bytes]:
    """The bundle_version 1 layout, written from scratch (see the module docstring)."""
    recipe = fitted.recipe
    files = {"recipe.json": recipe.to_json().encode("utf-8")}
    members = []
    for i, det in enumerate(fitted.members):
        arrays = {}
        for j, (key, value) in enumerate(det.get_state().items()):
            rel = f"members/{i:03d}/{j:03d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', key)[:80]}.npy"
            files[rel] = _npy(value)
            arrays[key] = rel
        members.append({"index": i, "seed": int(det.seed), "arrays": arrays})
    norm = fitted.normalizer
    scoring: dict[str, Any] = {
        "member_stats": "scoring/member_stats.npy",
        "threshold": "scoring/threshold.npy",
        "normalizer_global": "scoring/normalizer_global.npy",
        "normalizer_domains": {d: f"scoring/normalizer_{d}.npy" for d in sorted(norm.domain_stats)},
    }
    files["scoring/member_stats.npy"] = _npy(np.asarray(
        [[s.mean, s.std] for s in fitted.member_stats], np.float64))
    files["scoring/threshold.npy"] = _npy(np.asarray(fitted.threshold, np.float64))
    files["scoring/normalizer_global.npy"] = _npy(
        np.asarray([norm.global_stats.mean, norm.global_stats.std], np.float64))
    for d, st in sorted(norm.domain_stats.items()):
        files[f"scoring/normalizer_{d}.npy"] = _npy(np.asarray([st.mean, st.std], np.float64))
    if norm.method == "domain_log_zscore":
        scoring["normalizer_log_floor"] = "scoring/normalizer_log_floor.npy"
        files["scoring/normalizer_log_floor.npy"] = _npy(
            np.asarray([norm.log_floor, norm.log_shift], np.float64))
    counts = {str(k): int(v) for k, v in fitted.counts.items()}
    manifest = {
        "format": "automl-asd-bundle", "bundle_version": 1, "package_version": __version__,
        "torch_version": str(torch.__version__), "numpy_version": np.__version__,
        "created": created, "machine_type": fitted.machine_type, "recipe_name": recipe.name,
        "recipe_hash": recipe.content_hash(), "detector": recipe.detector.name,
        "seed": int(fitted.seed), "feature_spec": recipe.features.to_dict(),
        "training_clips": counts.get("train_used", 0), "counts": counts,
        "threshold": float(fitted.threshold), "normalization": norm.method,
        "trained_on": fitted.device, "members": members, "scoring": scoring,
        "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2, allow_nan=False) + "\n").encode()
    return files


@pytest.mark.slow
@pytest.mark.parametrize("recipe_name", ["fast_default", "searched_pooled_logz"])
def test_v1_bundle_loads_and_scores_identically(recipe_name: str, tiny_dev_root: Path,
                                                tmp_path: Path) -> None:
    recipe = load_recipe(recipe_name)
    machine = scan(tiny_dev_root, machine_types=[MT])[MT]
    fitted = fit_machine(recipe, machine, cache_dir=tmp_path / "cache", device="cpu")
    test_feats = extract([c.path for c in machine.test], recipe.features,
                         cache_dir=tmp_path / "cache")
    want, want_dec = score_clips(fitted, test_feats)

    new = bundle_files(fitted)
    created = json.loads(new["manifest.json"])["created"]
    old = _write_v1(fitted, created)
    # Same layout, same bytes: the format version did not need to change.
    assert BUNDLE_VERSION == 1
    assert sorted(new) == sorted(old)
    assert {k for k in new if new[k] != old[k]} == set()
    if recipe.normalization.method == "domain_log_zscore":
        assert "scoring/normalizer_log_floor.npy" in old

    loaded = Bundle.from_files(old, tmp_path / "v1", device="cpu")
    got, got_dec = loaded.score_features(test_feats)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_dec, want_dec)
    assert loaded.fitted.normalizer == fitted.normalizer
    assert loaded.fitted.member_stats == fitted.member_stats
