"""``automl_asd.caches``: counting, pruning and clearing real cache entries (made by the feature
extractor and the representation cache's writer), never anything else, and no wrong or failed
read when an entry goes away under a reader."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_asd import caches, features
from automl_asd.caches import clear, prune, survey
from automl_asd.components.files import mark_used
from automl_asd.components.locks import file_lock
from automl_asd.data import scan
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.features import ExtractStats, FeatureSpec, extract
from automl_asd.recipe import Recipe, load_recipe
from automl_asd.representation_cache import RepresentationCache

_DAY = 86400.0
_SPECS = (FeatureSpec(n_mels=16), FeatureSpec(n_mels=24), FeatureSpec(kind="stft", n_fft=256,
                                                                       hop_length=128))


def _train_clips(root: Path) -> list[Path]:
    return sorted((root / "fan" / "train").glob("*.wav"))[:6]


def _make_cache(root: Path, tiny_dev_root: Path) -> dict[str, list[Path]]:
    """Real entries: two feature entries of one spec (two clip sets), one each of two more
    specs, and two representations. Returns the entry paths by kind."""
    clips = _train_clips(tiny_dev_root)
    for spec in _SPECS:
        extract(clips[:3], spec, cache_dir=root, workers=1, progress=False)
    extract(clips[3:], _SPECS[0], cache_dir=root, workers=1, progress=False)
    reps = RepresentationCache(root)
    for i, family in enumerate(("dcase_ae", "margin_cnn")):
        key = hashlib.sha256(f"rep{i}".encode()).hexdigest()
        reps.put(family, key, {"w": np.arange(100.0 * (i + 1))})
    feats = sorted(p for p in (root / "features").glob("*/*") if not p.name.startswith("."))
    return {"features": feats,
            "representations": sorted((root / "representations").glob("*/*.npz"))}


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _age(path: Path, days: float, now: float) -> None:
    os.utime(path, (now - days * _DAY, now - days * _DAY))


def test_info_counts_equal_hand_summed_sizes(tmp_path: Path, tiny_dev_root: Path) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    assert len(made["features"]) == 4 and len(made["representations"]) == 2
    now = time.time()
    for i, path in enumerate(made["features"] + made["representations"]):
        _age(path, i + 1, now)
    found = survey(tmp_path)
    kinds = found.by_kind()
    for kind, paths in made.items():
        assert kinds[kind].entries == len(paths)
        assert kinds[kind].bytes == sum(_bytes(p) for p in paths)
        assert kinds[kind].oldest == pytest.approx(min(p.stat().st_mtime for p in paths))
        assert kinds[kind].newest == pytest.approx(max(p.stat().st_mtime for p in paths))
    # per feature spec: the folder's entries; its spec read from a manifest
    groups = found.by_group("features")
    assert {name: g.entries for name, g in groups.items()} == {
        f"{s.kind}-{s.key()}": 2 if s == _SPECS[0] else 1 for s in _SPECS}
    for s in _SPECS:
        name = f"{s.kind}-{s.key()}"
        assert groups[name].bytes == sum(_bytes(p) for p in (tmp_path / "features" / name).glob(
            "[0-9a-f]*"))
        assert found.specs[name] == s.to_dict()
    assert found.bytes == sum(_bytes(p) for ps in made.values() for p in ps)
    assert found.other == (0, 0) and found.unfinished == (0, 0)
    doc = found.to_dict()
    assert doc["representations"]["groups"]["dcase_ae"]["entries"] == 1
    assert doc["features"]["bytes"] == kinds["features"].bytes


def test_prune_by_age_and_size_removes_exactly_the_least_recently_used(
        tmp_path: Path, tiny_dev_root: Path) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    now = time.time()
    order = made["features"] + made["representations"]  # ages 6, 5, ... 1 days
    for i, path in enumerate(order):
        _age(path, len(order) - i, now)
    sizes = [_bytes(p) for p in order]

    # dry run: the same choice, nothing removed
    plan = prune(tmp_path, older_than_s=3.5 * _DAY, dry_run=True, now=now)
    assert [e.path for e in plan.removed] == order[:3]
    assert all(p.exists() for p in order)

    gone = prune(tmp_path, older_than_s=3.5 * _DAY, now=now)
    assert [e.path for e in gone.removed] == order[:3]
    assert [p.exists() for p in order] == [False] * 3 + [True] * 3

    # by size: keep at most the two newest; the oldest of the rest goes first
    limit = sizes[4] + sizes[5]
    gone = prune(tmp_path, max_bytes=limit, now=now)
    assert [e.path for e in gone.removed] == order[3:4]
    assert survey(tmp_path).bytes == limit
    assert prune(tmp_path, max_bytes=limit, now=now).removed == []
    # one byte less: the next oldest goes too
    gone = prune(tmp_path, max_bytes=limit - 1, now=now)
    assert [e.path for e in gone.removed] == order[4:5]
    # the lock files of removed feature entries and their empty spec folders are gone
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == []


def test_an_entry_read_since_the_survey_or_being_written_is_skipped(
        tmp_path: Path, tiny_dev_root: Path) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    entry = made["features"][0]
    with file_lock(entry.with_name(f".lock-{entry.name}"), wait=False):
        result = clear(tmp_path)
    assert [e.path for e in result.skipped] == [entry] and entry.is_dir()
    assert len(result.removed) == 5
    # read since the survey: the read set its mtime to now
    found = survey(tmp_path)
    os.utime(entry, (1, 1))
    stale = caches.Entry("features", found.entries[0].group, entry, found.entries[0].bytes, 1.0)
    mark_used(entry)
    assert caches._remove(stale) is False and entry.is_dir()


def test_foreign_files_survive_prune_and_clear(tmp_path: Path, tiny_dev_root: Path) -> None:
    """A --cache-dir pointed at a home or a data folder by mistake: only entries go."""
    made = _make_cache(tmp_path, tiny_dev_root)
    spec_dir = made["features"][0].parent
    foreign = [tmp_path / ".bashrc", tmp_path / "data" / "fan" / "train" / "x.wav",
               tmp_path / "features" / "README", spec_dir / "notes.txt",
               tmp_path / "features" / "logmel-notahexkey00000" / ("a" * 32) / "data.f32",
               tmp_path / "representations" / "dcase_ae" / "model.npz",
               tmp_path / "representations" / "Not A Family" / f"{'0' * 64}.npz",
               tmp_path / "representations" / f"{'1' * 64}.npz"]
    # an entry-named folder holding something an entry never holds is not an entry
    odd = spec_dir / ("b" * 32)
    foreign += [odd / "manifest.json", odd / "thesis.tex"]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"keep me")
    linked = spec_dir / ("c" * 32)
    linked.symlink_to(tmp_path / "data")  # a link is never followed nor removed
    # being written: left alone
    writing = [spec_dir / f".tmp-{'d' * 32}-host-123-abcdef01" / "data.f32",
               tmp_path / "representations" / "dcase_ae" / f".{'e' * 64}.tmp-1-2.npz"]
    for path in writing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    found = survey(tmp_path)
    assert len(found.entries) == 6
    assert found.other == (len(foreign) + 1, 7 * len(foreign) + len(str(tmp_path / "data")))
    assert found.unfinished == (2, 8)
    prune(tmp_path, max_bytes=0)
    result = clear(tmp_path)
    assert result.removed == [] and survey(tmp_path).entries == []
    assert all(p.read_bytes() == b"keep me" for p in foreign)
    assert all(p.read_bytes() == b"half" for p in writing) and linked.is_symlink()
    assert (tmp_path / "data" / "fan" / "train" / "x.wav").exists()


def test_leftovers_of_killed_writers_go_live_ones_stay(tmp_path: Path,
                                                       tiny_dev_root: Path) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    spec_dir = made["features"][0].parent
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)
    key = "d" * 32
    family = tmp_path / "representations" / "dcase_ae"
    gone = [spec_dir / f".tmp-{key}-{features._HOST}-{dead}-0badf00d",  # this host, dead
            spec_dir / f".trash-{'a' * 32}-12345678",  # a removal that stopped half-way
            family / f".{'e' * 64}.tmp-{dead}-1.npz"]  # a day old
    live = [spec_dir / f".tmp-{key}-{features._HOST}-{os.getpid()}-0badf00d",  # writing now
            spec_dir / f".tmp-{key}-otherhost-{dead}-0badf00d",  # another host's, fresh
            family / f".{'e' * 64}.tmp-{dead}-2.npz"]  # fresh
    for path in gone + live:
        if path.suffix == ".npz":
            path.write_bytes(b"12345")
        else:
            path.mkdir()
            (path / "data.f32").write_bytes(b"1234")
    now = time.time()
    _age(gone[2], 2, now)
    result = clear(tmp_path, kinds=["representations"])
    assert result.leftovers == (1, 5) and gone[0].exists() and not gone[2].exists()
    result = prune(tmp_path, max_bytes=10**12)
    assert result.removed == [] and result.leftovers == (2, 8)
    assert not any(p.exists() for p in gone) and all(p.exists() for p in live)


def test_info_skips_entries_removed_while_it_counts(
        tmp_path: Path, tiny_dev_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process prunes between info's listing of a folder and its look at an entry."""
    made = _make_cache(tmp_path, tiny_dev_root)
    real = caches._scan
    victims = {made["features"][0].parent: made["features"][0],
               made["representations"][0].parent: made["representations"][0]}

    def listed_then_pruned(folder: Path) -> list[Any]:
        listing = real(folder)
        victim = victims.pop(folder, None)
        if victim is not None:
            if victim.is_dir():
                features.remove_entry(victim)
            else:
                victim.unlink()
        return listing

    monkeypatch.setattr(caches, "_scan", listed_then_pruned)
    found = survey(tmp_path)
    assert not victims
    assert sorted(e.path for e in found.entries) == sorted(made["features"][1:]
                                                           + made["representations"][1:])


def test_clear_one_kind(tmp_path: Path, tiny_dev_root: Path) -> None:
    made = _make_cache(tmp_path, tiny_dev_root)
    result = clear(tmp_path, kinds=["representations"])
    assert sorted(e.path for e in result.removed) == made["representations"]
    assert all(p.is_dir() for p in made["features"])
    with pytest.raises(ValueError, match="unknown cache kind"):
        clear(tmp_path, kinds=["everything"])


def test_a_missing_root_is_empty_and_a_file_is_refused(tmp_path: Path) -> None:
    assert survey(tmp_path / "none").entries == []
    assert prune(tmp_path / "none", max_bytes=0).removed == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        survey(tmp_path / "f")


def test_a_read_marks_the_entry_used_and_never_fails_on_it(
        tmp_path: Path, tiny_dev_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clips = _train_clips(tiny_dev_root)[:3]
    first = extract(clips, _SPECS[0], cache_dir=tmp_path, workers=1, progress=False)
    (entry,) = survey(tmp_path).entries
    os.utime(entry.path, (1000.0, 1000.0))
    extract(clips, _SPECS[0], cache_dir=tmp_path, workers=1, progress=False)
    assert entry.path.stat().st_mtime > time.time() - 60
    # a subset read (assembled from the entry) marks it too
    os.utime(entry.path, (1000.0, 1000.0))
    extract(clips[:2], _SPECS[0], cache_dir=tmp_path, workers=1, progress=False)
    assert entry.path.stat().st_mtime > time.time() - 60
    # a cache where the time cannot be set (read-only, another user's): the read still works
    def refused(*args: Any, **kwargs: Any) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "utime", refused)
    stats = ExtractStats()
    again = extract(clips, _SPECS[0], cache_dir=tmp_path, workers=1, progress=False,
                    stats=stats)
    assert stats.n_cached == 3 and all(np.array_equal(a, b) for a, b in zip(first, again,
                                                                            strict=True))
    reps = RepresentationCache(tmp_path)
    reps.put("dcase_ae", "f" * 64, {"w": np.arange(3.0)})
    assert RepresentationCache(tmp_path).get("dcase_ae", "f" * 64) is not None


def test_an_entry_pruned_under_a_reader_is_a_quiet_miss(
        tmp_path: Path, tiny_dev_root: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Between the reader's look at the manifest and its read of the rows, another process
    prunes the entry: the reader recomputes the same rows, without a 'damaged' warning."""
    clips = _train_clips(tiny_dev_root)[:3]
    first = extract(clips, _SPECS[0], cache_dir=tmp_path, workers=1, progress=False)
    real = features._read_offsets

    def pruned_meanwhile(entry: Path, manifest: Any) -> np.ndarray:
        if entry.exists():
            assert len(prune(tmp_path, max_bytes=0).removed) == 1
        return real(entry, manifest)

    monkeypatch.setattr(features, "_read_offsets", pruned_meanwhile)
    stats = ExtractStats()
    with caplog.at_level(logging.WARNING, logger="automl_asd.features"):
        again = extract(clips, _SPECS[0], cache_dir=tmp_path, workers=1, progress=False,
                        stats=stats)
    assert stats.n_computed == 3
    assert [a.tobytes() for a in again] == [a.tobytes() for a in first]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    # a representation removed between the reader's look and its load: a miss, no warning
    reps = RepresentationCache(tmp_path)
    reps.put("dcase_ae", "f" * 64, {"w": np.arange(3.0)})

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(np, "load", gone)
    with caplog.at_level(logging.WARNING, logger="automl_asd.representation_cache"):
        assert RepresentationCache(tmp_path).get("dcase_ae", "f" * 64) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_scores_after_a_prune_are_byte_identical(tmp_path: Path, tiny_dev_root: Path) -> None:
    """Everything pruned between two runs: the second recomputes features and retrains the
    network, and scores exactly as the first."""
    machines = scan(tiny_dev_root, machine_types=["fan"])
    d = load_recipe("baseline_ae_mse").to_dict()
    d["detector"]["params"].update(epochs=1, hidden=8, bottleneck=4, n_layers=1)
    d["features"]["n_mels"] = 16
    recipe = Recipe.from_dict(d)
    first = evaluate_recipe(recipe, machines, cache_dir=tmp_path, device="cpu")
    kinds = survey(tmp_path).by_kind()
    assert kinds["features"].entries >= 1 and kinds["representations"].entries == 1
    assert len(prune(tmp_path, max_bytes=0).removed) == sum(k.entries for k in kinds.values())
    assert survey(tmp_path).entries == []
    second = evaluate_recipe(recipe, machines, cache_dir=tmp_path, device="cpu")
    assert second.cache["misses"] == 1 and second.cache["hits"] == 0
    assert first.per_clip.keys() == second.per_clip.keys()
    for key in first.per_clip:
        assert first.per_clip[key][2].tobytes() == second.per_clip[key][2].tobytes()
    assert first.omega == second.omega


def test_kind_folders_moved_to_another_disk_by_a_link_are_managed(tmp_path: Path,
                                                                   tiny_dev_root: Path) -> None:
    """Review doubt (2026-12-07): ``features/`` linked to another disk (a usual way to move a
    big cache) was counted as "not cache entries" and never pruned."""
    moved = tmp_path / "big_disk"
    made = _make_cache(moved, tiny_dev_root)
    root = tmp_path / "cache"
    root.mkdir()
    for kind in ("features", "representations"):
        (root / kind).symlink_to(moved / kind, target_is_directory=True)
    found = survey(root)
    assert found.by_kind()["features"].entries == len(made["features"])
    assert found.by_kind()["representations"].entries == len(made["representations"])
    assert found.other == (0, 0)
    clear(root)
    assert not any(p.exists() for paths in made.values() for p in paths)
    assert (root / "features").is_symlink() and (root / "representations").is_symlink()


def test_the_names_writers_make_are_the_names_prune_knows(tmp_path: Path) -> None:
    """The name forms `cache` matches live beside the writers' name builders (one home): every
    feature kind's spec folder and set key, and a representation and its temporary file,
    fullmatch them; a name one character off does not."""
    for kind in ("logmel", "stft"):
        spec_dir = features._spec_dir(tmp_path, FeatureSpec(kind=kind))  # type: ignore[arg-type]
        assert caches._SPEC_DIR.fullmatch(spec_dir.name)
        assert not caches._SPEC_DIR.fullmatch(spec_dir.name + "0")
    set_key = features._set_key(_SPECS[0], [("/a.wav", 1, "1.2.3")])
    assert caches._SET_KEY.fullmatch(set_key) and not caches._SET_KEY.fullmatch(set_key[1:])
    path = caches.representation_file(tmp_path, "dcase_ae", "c" * 64)
    assert path == tmp_path / "representations" / "dcase_ae" / f"{'c' * 64}.npz"
    assert caches._REPRESENTATION.fullmatch(path.name)
    assert caches._REPRESENTATION_TMP.fullmatch(caches.representation_tmp_file(path).name)
    RepresentationCache(tmp_path).put("dcase_ae", "c" * 64, {"w": np.arange(2.0)})
    assert [e.path for e in survey(tmp_path).entries] == [path]
