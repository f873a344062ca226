"""Synthetic DCASE-layout generator: layout/counts through the data layer, determinism, wav
format, eval-layout ground truth, CLI, and the loudness-is-no-giveaway property."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import roc_auc_score

from automl_asd import synth
from automl_asd.cli import main
from automl_asd.data import Clip, Domain, Label, MachineData, Split, scan
from automl_asd.ground_truth import attach
from automl_asd.ground_truth import read as read_truth

TINY = synth.SIZES["tiny"]


def _wavs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.wav"))


def _official_aucs(y: np.ndarray, target: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """AUC-source / AUC-target as the official evaluator: normals of one domain vs all
    anomalies."""
    out = []
    for dom in (False, True):
        keep = (target == dom) | (y == 1)
        out.append(float(roc_auc_score(y[keep], score[keep])))
    return out[0], out[1]


def _reference_aucs(md: MachineData) -> tuple[float, float]:
    """Official AUC-source / AUC-target of the benches' reference detector on one type: a
    Ledoit-Wolf Gaussian on per-clip mean log-mel (64 mels) of its training clips."""
    from sklearn.covariance import LedoitWolf  # noqa: PLC0415

    from automl_asd.features import FeatureSpec, compute  # noqa: PLC0415

    spec = FeatureSpec(n_mels=64)

    def feats(clips: Sequence[Clip]) -> np.ndarray:
        return np.stack([compute(sf.read(str(c.path), dtype="float32")[0], spec).mean(axis=0)
                         for c in clips])

    test = list(md.test)
    lw = LedoitWolf().fit(feats(list(md.train)))
    d = feats(test) - lw.location_
    score = np.einsum("ij,jk,ik->i", d, lw.precision_, d)
    y = np.array([c.label is Label.ANOMALY for c in test], dtype=int)
    tgt = np.array([c.domain is Domain.TARGET for c in test])
    return _official_aucs(y, tgt, score)


# ------------------------------------------------------------------------------ catalogue

def test_catalogue_groups_and_names() -> None:
    assert len(synth.DEV_MACHINE_TYPES) >= 7 and len(synth.NOVEL_MACHINE_TYPES) >= 4
    assert not set(synth.DEV_MACHINE_TYPES) & set(synth.NOVEL_MACHINE_TYPES)
    assert synth.MACHINE_TYPES == synth.DEV_MACHINE_TYPES + synth.NOVEL_MACHINE_TYPES
    assert all("_" not in mt for mt in synth.MACHINE_TYPES)
    assert len(set(synth.HIDDEN_ATTRIBUTE_TYPES) & set(synth.DEV_MACHINE_TYPES)) >= 2
    assert set(synth.SUPPLEMENTAL_KIND.values()) == {"machine", "noise"}
    for mt in synth.MACHINE_TYPES:
        plans = synth.plan_machine(mt, "tiny", 0)
        assert len(plans) == TINY.n_clips
        for p in plans:
            assert "__" not in p.labelled_name and p.labelled_name.endswith(".wav")
            assert all("_" not in k and "_" not in v and v for k, v in p.attributes)
        # the target domain changes at least one attribute value or the background
        src = {(p.attributes, p.env) for p in plans if p.domain == "source" and p.split == "train"}
        tgt = {(p.attributes, p.env) for p in plans if p.domain == "target" and p.split == "train"}
        assert not src & tgt, mt


def test_sizes_match_the_documented_counts() -> None:
    full = synth.SIZES["full"]
    assert (full.n_source_train, full.n_target_train, full.n_test_per_group,
            full.n_supplemental, full.duration_s) == (990, 10, 50, 100, 10.0)
    small = synth.SIZES["small"]
    assert small.n_source_train + small.n_target_train == 200 and small.n_test_per_group == 25
    assert TINY.n_source_train + TINY.n_target_train >= 60 and TINY.n_test_per_group == 10


def test_unknown_type_or_size_is_an_error_naming_valid_values(tmp_path: Path) -> None:
    with pytest.raises(synth.SynthError, match="valid: fan"):
        synth.generate(tmp_path, machine_types=["nope"])
    with pytest.raises(synth.SynthError, match="tiny"):
        synth.generate(tmp_path, size="huge")


# ------------------------------------------------------------------------------ fixtures + scan

def test_tiny_dev_root_scans_with_expected_counts(tiny_dev_root: Path) -> None:
    data = scan(tiny_dev_root)
    assert list(data) == sorted(["fan", "gearbox", "bearing"])
    for mt, md in data.items():
        c = Counter((x.split, x.domain, x.label) for x in md.clips)
        assert c[(Split.TRAIN, Domain.SOURCE, Label.NORMAL)] == TINY.n_source_train
        assert c[(Split.TRAIN, Domain.TARGET, Label.NORMAL)] == TINY.n_target_train
        for dom in (Domain.SOURCE, Domain.TARGET):
            for lab in (Label.NORMAL, Label.ANOMALY):
                assert c[(Split.TEST, dom, lab)] == TINY.n_test_per_group
        assert len(md.supplemental) == TINY.n_supplemental
        assert {x.kind for x in md.supplemental} == {synth.SUPPLEMENTAL_KIND[mt]}
        assert md.sections == ("00",)
    assert all(x.attributes is None for x in data["bearing"].clips if x.split is not
               Split.SUPPLEMENTAL)
    assert {tuple(k for k, _ in x.attributes or ()) for x in data["fan"].train} == {("spd", "mic")}
    kinds = {synth.SUPPLEMENTAL_KIND[mt] for mt in data}
    assert kinds == {"machine", "noise"}


def test_tiny_novel_root_is_disjoint_from_dev(tiny_novel_root: Path, tiny_dev_root: Path) -> None:
    novel = scan(tiny_novel_root)
    assert set(novel) <= set(synth.NOVEL_MACHINE_TYPES)
    assert len(novel) == 2 and not set(novel) & set(scan(tiny_dev_root))


def test_attributes_csv_lists_train_and_test_files(tiny_dev_root: Path) -> None:
    for mt in ("fan", "bearing"):
        rows = list(csv.reader((tiny_dev_root / mt / "attributes_00.csv").open()))
        header, body = rows[0], rows[1:]
        assert header[0] == "file_name" and header[1:3] == ["d1p", "d1v"]
        assert len(body) == TINY.n_source_train + TINY.n_target_train + 4 * TINY.n_test_per_group
        for row in body:
            assert (tiny_dev_root / row[0]).is_file()
            stem = Path(row[0]).stem
            if mt == "bearing":
                assert row[1:] == ["noAttribute", ""] and stem.endswith("_noAttribute")
            else:
                assert stem.endswith("_".join(row[1:]))


def test_every_file_is_16k_mono_int16(tiny_dev_root: Path, tiny_novel_root: Path) -> None:
    files = _wavs(tiny_dev_root) + _wavs(tiny_novel_root)
    assert len(files) == 5 * TINY.n_clips
    n = int(TINY.duration_s * synth.SAMPLE_RATE)
    for f in files:
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == \
            (16000, 1, "PCM_16", n), f
    peaks = [int(np.abs(sf.read(str(f), dtype="int16")[0].astype(np.int32)).max())
             for f in files]
    assert min(peaks) > 300 and max(peaks) < 32000  # audible, never clipped


# ------------------------------------------------------------------------------ determinism

def test_same_seed_same_bytes_independent_of_other_types(tiny_dev_root: Path,
                                                         tmp_path: Path) -> None:
    synth.generate(tmp_path, machine_types=["gearbox"], size="tiny", seed=0)
    ours, ref = _wavs(tmp_path / "gearbox"), _wavs(tiny_dev_root / "gearbox")
    assert [p.name for p in ours] == [p.name for p in ref]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, ref, strict=True))
    assert (tmp_path / "gearbox" / "attributes_00.csv").read_bytes() == \
        (tiny_dev_root / "gearbox" / "attributes_00.csv").read_bytes()


@pytest.mark.slow
def test_parallel_workers_write_the_same_bytes(tiny_dev_root: Path, tmp_path: Path) -> None:
    synth.generate(tmp_path, machine_types=["bearing"], size="tiny", seed=0, workers=2)
    ours, ref = _wavs(tmp_path / "bearing"), _wavs(tiny_dev_root / "bearing")
    assert [p.name for p in ours] == [p.name for p in ref]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(ours, ref, strict=True))


@pytest.mark.slow  # two fresh interpreters with two spawned workers each: ~10 s
def test_workers_in_a_script_without_a_main_guard_fail_instead_of_hanging(
    tmp_path: Path,
) -> None:
    # Each spawned worker re-imports the calling script; without a main guard it would call
    # generate() again and wait for ever on the folder lock its parent holds. The workers are
    # started before the lock, so Python's bootstrapping error stops them and the parent says
    # what to do; with the guard the same call writes the tree.
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    call = (f"synth.generate({str(tmp_path / 'out')!r}, machine_types=['fan'], size='tiny', "
            "seed=0, workers=2)")
    script = tmp_path / "noguard.py"
    script.write_text(f"from automl_asd import synth\n{call}\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 1
    assert "guard the call with 'if __name__ == \"__main__\":'" in res.stderr
    assert not list((tmp_path / "out").rglob("*.wav"))
    guarded = tmp_path / "guard.py"
    guarded.write_text(f"from automl_asd import synth\nif __name__ == '__main__':\n    {call}\n")
    res = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "out" / "fan").rglob("*.wav"))) > 0


@pytest.mark.slow  # a fresh interpreter with two spawned workers: ~10 s
def test_ctrl_c_with_workers_prints_no_worker_tracebacks(tmp_path: Path) -> None:
    """Found 2026-12-08 interrupting `demo`: Ctrl+C reaches the whole process group, and
    every spawned worker printed a KeyboardInterrupt traceback below the command's own
    "interrupted". The workers now ignore SIGINT; the command stops them."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "automl_asd.cli", "synth", "--out", str(out), "--size", "tiny",
         "--machine-types", "fan", "gearbox", "bearing", "valve", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    # the folder's lock is taken once the workers run: they then load the renderer (~1 s)
    while not (out / ".synth.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl+C does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted")


def test_different_seed_gives_different_audio() -> None:
    p0 = synth.plan_machine("fan", "tiny", 0)[0]
    p1 = synth.plan_machine("fan", "tiny", 1)[0]
    a = synth.render_clip("fan", p0, 1.0)
    b = synth.render_clip("fan", p1, 1.0)
    assert a.shape == b.shape == (16000,)
    assert abs(float(np.corrcoef(a, b)[0, 1])) < 0.5
    assert np.array_equal(a, synth.render_clip("fan", p0, 1.0))


def test_rerun_reuses_and_parameter_change_regenerates(tmp_path: Path) -> None:
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0)
    f = _wavs(tmp_path / "valve")[0]
    before = (f.stat().st_mtime_ns, f.read_bytes())
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0)
    assert f.stat().st_mtime_ns == before[0]
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=5)
    assert f.read_bytes() != before[1]
    assert len(_wavs(tmp_path / "valve")) == TINY.n_clips


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "fan" / "train").mkdir(parents=True)
    (tmp_path / "fan" / "train" / "mine.txt").write_text("keep me")
    with pytest.raises(synth.SynthError, match="--overwrite"):
        synth.generate(tmp_path, machine_types=["fan"], size="tiny")
    assert (tmp_path / "fan" / "train" / "mine.txt").is_file()


def test_a_rerun_with_other_settings_refuses_files_it_did_not_write(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by a probe (2026-12-07): a rerun into a tree the generator wrote with other
    settings deleted the whole machine folder, with a user's notes and added clips in it,
    silently. Such files are now named and the run refused (nothing removed) unless
    overwrite; the generator's own files alone are replaced, with a warning naming the
    settings they had."""
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0)
    marker = json.loads((tmp_path / "valve" / ".synth.json").read_text())
    assert len(marker["files"]) == TINY.n_clips + 1  # the clips and attributes_00.csv
    clip = _wavs(tmp_path / "valve")[0]
    (tmp_path / "valve" / "notes.txt").write_text("mine")
    added = clip.with_name("section_00_source_train_normal_9999_x_1.wav")
    shutil.copy(clip, added)
    before = clip.read_bytes()
    with pytest.raises(synth.SynthError, match=r"notes\.txt and 1 more: not written by the "
                       r"generator, in a tree it wrote with other settings \(seed 0, size "
                       r"tiny.*--overwrite"):
        synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=5)
    assert clip.read_bytes() == before and added.is_file()  # nothing removed
    # the same settings: up to date, the user's files stay
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0)
    assert (tmp_path / "valve" / "notes.txt").is_file() and added.is_file()
    (tmp_path / "valve" / "notes.txt").unlink()
    added.unlink()
    (tmp_path / "valve" / "train" / ".DS_Store").write_bytes(b"\0")  # litter: nobody's
    with caplog.at_level(logging.WARNING):
        synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=5)
    assert "replacing the tree written with seed 0, size tiny" in caplog.text
    assert clip.read_bytes() != before and len(_wavs(tmp_path / "valve")) == TINY.n_clips
    (tmp_path / "valve" / "notes.txt").write_text("mine")
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0, overwrite=True)
    assert not (tmp_path / "valve" / "notes.txt").exists()  # --overwrite: replaced whole
    assert clip.read_bytes() == before


def test_a_tree_written_before_its_marker_listed_files_keeps_a_user_s_files(
        tmp_path: Path) -> None:
    """A marker without its file list (a tree written before 2026-12-07): the clips and the
    attributes file are the generator's; anything else is refused as above."""
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0)
    mfile = tmp_path / "valve" / ".synth.json"
    marker = json.loads(mfile.read_text())
    del marker["files"]
    mfile.write_text(json.dumps(marker))
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0)  # up to date
    assert "files" not in json.loads(mfile.read_text())
    (tmp_path / "valve" / "train" / "notes.txt").write_text("mine")
    with pytest.raises(synth.SynthError, match="notes.txt: not written by the generator"):
        synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=5)
    (tmp_path / "valve" / "train" / "notes.txt").unlink()
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=5)
    assert len(json.loads(mfile.read_text())["files"]) == TINY.n_clips + 1


# ------------------------------------------------------------------------------ eval layout

def test_eval_layout_ground_truth_is_consistent(tiny_dev_root: Path, tmp_path: Path) -> None:
    synth.generate(tmp_path, machine_types=["bearing"], size="tiny", seed=0, eval_layout=True)
    test_dir = tmp_path / "bearing" / "test"
    names = sorted(p.name for p in test_dir.glob("*.wav"))
    n_test = 4 * TINY.n_test_per_group
    assert names == [f"section_00_{i:04d}.wav" for i in range(n_test)]
    gt = {}
    for sub in ("ground_truth_data", "ground_truth_domain", "ground_truth_attributes"):
        path = tmp_path / sub / "ground_truth_bearing_section_00_test.csv"
        text = path.read_text()
        assert not text.startswith("section_00_0000.wav,") or "file" not in text.splitlines()[0]
        gt[sub] = dict(line.split(",", 1) for line in text.splitlines())
        assert sorted(gt[sub]) == names
    labelled = {p.name: p for p in (tiny_dev_root / "bearing" / "test").glob("*.wav")}
    assert sorted(v + ".wav" for v in gt["ground_truth_attributes"].values()) == sorted(labelled)
    for anon, lab in gt["ground_truth_attributes"].items():
        src = labelled[lab + ".wav"]
        assert (test_dir / anon).read_bytes() == src.read_bytes()  # same clip, new name
        assert gt["ground_truth_data"][anon] == ("1" if "_anomaly_" in lab else "0")
        assert gt["ground_truth_domain"][anon] == ("1" if "_target_" in lab else "0")
    assert Counter(gt["ground_truth_data"].values()) == {"0": n_test // 2, "1": n_test // 2}
    md = attach(scan(tmp_path), tmp_path)["bearing"]
    assert Counter(c.label for c in md.test) == {Label.NORMAL: n_test // 2,
                                                 Label.ANOMALY: n_test // 2}
    assert Counter(c.domain for c in md.test) == {Domain.SOURCE: n_test // 2,
                                                  Domain.TARGET: n_test // 2}


def test_eval_layout_writes_test_clips_in_anonymised_name_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write order (mtimes, inodes) must not group the clips by domain and label."""
    import automl_asd.synth._generate as gen

    written: list[str] = []
    real = gen._write_wav
    monkeypatch.setattr(gen, "_write_wav", lambda path, x: (written.append(path.name),
                                                            real(path, x))[1])
    synth.generate(tmp_path, machine_types=["valve"], size="tiny", seed=0, eval_layout=True)
    tests = [n for n in written if n.startswith("section_00_0")]
    assert len(tests) == 4 * TINY.n_test_per_group and tests == sorted(tests)


def test_ground_truth_follows_the_layout_and_a_refused_run_changes_nothing(
        tmp_path: Path) -> None:
    truth = [tmp_path / sub / "ground_truth_fan_section_00_test.csv"
             for sub in ("ground_truth_data", "ground_truth_domain", "ground_truth_attributes")]
    synth.generate(tmp_path, machine_types=["fan"], size="tiny", seed=5, eval_layout=True)
    assert all(p.is_file() for p in truth)
    # the same tree regenerated labelled: its ground truth would name clips it no longer has
    synth.generate(tmp_path, machine_types=["fan"], size="tiny", seed=5)
    assert not any(p.exists() for p in truth)
    assert not (tmp_path / "ground_truth_data").exists()  # empty folders go too
    truth_now = read_truth(tmp_path)[("fan", "00")]  # from the labelled names now
    assert sum(truth_now.labels) == 2 * TINY.n_test_per_group
    # ground truth beside a folder the generator did not write: refused, nothing written
    real = tmp_path / "real"
    (real / "fan" / "test").mkdir(parents=True)
    (real / "fan" / "test" / "section_00_0000.wav").write_bytes(b"x")
    (real / "ground_truth_data").mkdir()
    mine = real / "ground_truth_data" / "ground_truth_fan_section_00_test.csv"
    mine.write_text("section_00_0000.wav,1\n")
    for eval_layout in (True, False):
        with pytest.raises(synth.SynthError, match="ground truth for fan that the generator"):
            synth.generate(real, machine_types=["fan"], size="tiny", eval_layout=eval_layout)
        assert mine.read_text() == "section_00_0000.wav,1\n"
        assert not (real / "ground_truth_domain").exists()
        assert [p.name for p in (real / "fan" / "test").iterdir()] == ["section_00_0000.wav"]


# ------------------------------------------------------------------------------ CLI

def test_cli_synth_writes_and_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--out", str(tmp_path), "--machine-types", "slider", "--size",
                 "tiny", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "slider" in out and "noAttribute" in out
    assert len(_wavs(tmp_path / "slider")) == TINY.n_clips
    assert main(["synth", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(mt in listing for mt in synth.MACHINE_TYPES)
    assert main(["synth", "--out", str(tmp_path), "--machine-types", "nope"]) == 1
    assert "valid: fan" in capsys.readouterr().err
    # found by a probe (2026-12-07): this wrote all 11 named types
    empty = tmp_path / "none"
    assert main(["synth", "--out", str(empty), "--random-types", "0"]) == 2
    assert "--random-types 0 without --machine-types writes nothing" in capsys.readouterr().err
    assert not empty.exists()


# ------------------------------------------------------------------------------ difficulty

def test_rms_energy_detector_is_near_chance(tiny_dev_root: Path, tiny_novel_root: Path) -> None:
    """Anomalies are not louder: scoring clips by RMS gives AUC <= 0.65 on every tiny type."""
    for root in (tiny_dev_root, tiny_novel_root):
        for mt, md in scan(root).items():
            test = md.test
            y = np.array([c.label is Label.ANOMALY for c in test], dtype=int)
            tgt = np.array([c.domain is Domain.TARGET for c in test])
            rms = np.array([np.sqrt(np.mean(sf.read(str(c.path))[0] ** 2)) for c in test])
            auc_s, auc_t = _official_aucs(y, tgt, rms)
            assert max(auc_s, auc_t) <= 0.65, (mt, auc_s, auc_t)
            assert min(auc_s, auc_t) >= 0.35, (mt, auc_s, auc_t)  # not inverted either


@pytest.mark.slow
def test_reference_detector_finds_anomalies_and_target_is_harder(
        tiny_dev_root: Path, tiny_novel_root: Path) -> None:
    """A Gaussian on per-clip mean log-mel (the bench's reference detector) detects the
    anomalies on every tiny type, but not perfectly, and does worse on the target domain."""
    aucs = {mt: _reference_aucs(md) for root in (tiny_dev_root, tiny_novel_root)
            for mt, md in scan(root).items()}
    assert all(0.6 <= s <= 0.97 for s, _ in aucs.values()), aucs
    assert np.mean([t for _, t in aucs.values()]) < np.mean([s for s, _ in aucs.values()]) - 0.1


def test_two_generators_on_one_folder_take_turns_and_write_one_tree(tmp_path: Path) -> None:
    """Two processes (two benches sharing a work folder) generating the same types at once:
    both succeed, and the tree is byte-identical to one generator's. The second one starts
    while the first is writing its first machine folder (unlocked, it could clear it)."""
    import hashlib
    import subprocess
    import sys
    import time

    types = ["fan", "valve"]
    code = ("import sys; from automl_asd import synth\n"
            "print('ready', flush=True); sys.stdin.readline()\n"
            f"synth.generate(sys.argv[1], machine_types={types!r}, size='tiny', seed=3)")
    shared = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(shared)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        for p in procs:  # both imported and waiting
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        first, second = procs
        assert first.stdin is not None and second.stdin is not None
        first.stdin.write("go\n")
        first.stdin.flush()
        marker = shared / "fan" / ".synth.json"  # written first, marked complete last
        deadline = time.monotonic() + 120
        while not marker.is_file() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        assert '"complete": false' in marker.read_text()  # the first is mid-way through fan
        second.stdin.write("go\n")
        second.stdin.flush()
        for p in procs:
            _, err = p.communicate(timeout=600)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            p.kill()
    alone = tmp_path / "alone"
    synth.generate(alone, machine_types=types, size="tiny", seed=3)

    def digest(root: Path) -> dict[str, str]:
        return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(root.rglob("*")) if f.is_file() and f.suffix != ".lock"}

    assert digest(shared) == digest(alone)
    assert set(scan(shared)) == set(types)


def test_a_generator_waits_while_another_holds_the_folder(tmp_path: Path) -> None:
    """``generate`` takes the folder's lock before it touches any machine folder."""
    import subprocess
    import sys
    import time

    from automl_asd.components.locks import file_lock
    from automl_asd.synth._generate import LOCK_FILE

    root = tmp_path / "data"
    code = ("import sys; from automl_asd import synth\n"
            "synth.generate(sys.argv[1], machine_types=['fan'], size='tiny', seed=3)")
    with file_lock(root / LOCK_FILE) as held:
        assert held
        proc = subprocess.Popen([sys.executable, "-c", code, str(root)],
                                stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(4.0)  # ample time to import and to start writing, were it not waiting
            assert proc.poll() is None and not (root / "fan").exists()
        except BaseException:
            proc.kill()
            raise
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert set(scan(root)) == {"fan"}


def test_plan_extra_adds_new_clips_of_the_same_machine_repeatably() -> None:
    tree = [p for p in synth.plan_machine("rndfan00", "tiny", 3)
            if p.split == "test" and p.domain == "target" and p.label == "anomaly"]
    extra = synth.plan_extra("rndfan00", "tiny", 3, domain="target", label="anomaly", count=12)
    again = synth.plan_extra("rndfan00", "tiny", 3, domain="target", label="anomaly", count=12)
    assert [p.seed_key for p in extra] == [p.seed_key for p in again]  # repeatable
    assert len(extra) == 12
    assert not {p.seed_key for p in extra} & {p.seed_key for p in tree}  # no clip repeated
    assert {p.anomaly for p in extra} == {p.anomaly for p in tree}  # the same fault kinds
    assert all(p.split == "test" and p.domain == "target" and p.label == "anomaly"
               and p.severity > 0 for p in extra)
    spec = synth.SIZES["tiny"]
    a = synth.render_clip("rndfan00", extra[0], spec.duration_s)
    b = synth.render_clip("rndfan00", again[0], spec.duration_s)
    assert a.tobytes() == b.tobytes()
    normal = synth.plan_extra("rndfan00", "tiny", 3, domain="source", label="normal", count=2)
    assert all(p.anomaly is None and p.severity == 0.0 for p in normal)
    with pytest.raises(ValueError, match="domain 'both'"):
        synth.plan_extra("rndfan00", "tiny", 3, domain="both", label="normal", count=1)
    with pytest.raises(ValueError, match="count 0"):
        synth.plan_extra("rndfan00", "tiny", 3, domain="source", label="normal", count=0)


def test_clip_parts_split_a_clip_into_machine_fault_and_background() -> None:
    import dataclasses

    mt = "rndrail00"
    plans = synth.plan_machine(mt, "tiny", 0)
    normal = next(p for p in plans if p.split == "test" and p.anomaly is None)
    faulty = [p for p in plans if p.split == "test" and p.anomaly == "damage"][0]

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x ** 2)))

    parts = synth.clip_parts(mt, normal, 2.0)
    assert not parts.fault.any()
    assert rms(parts.machine) == pytest.approx(1.0)  # the unit-RMS machine sound of the clip
    assert rms(parts.background) == pytest.approx(10.0 ** (-normal.snr_db / 20.0), rel=1e-6)
    bad = synth.clip_parts(mt, faulty, 2.0)
    assert rms(bad.machine + bad.fault) == pytest.approx(1.0)
    # the fault vanishes with its severity and grows with it; the same plan, the same parts
    faint = synth.clip_parts(mt, dataclasses.replace(faulty, severity=1e-7), 2.0)
    louder = synth.clip_parts(mt, dataclasses.replace(faulty, severity=4 * faulty.severity), 2.0)
    assert rms(faint.fault) < 1e-6 * rms(faint.machine)
    assert 0.0 < rms(bad.fault) < rms(louder.fault)
    again = synth.clip_parts(mt, faulty, 2.0)
    for a, b in zip(dataclasses.astuple(bad), dataclasses.astuple(again), strict=True):
        np.testing.assert_array_equal(a, b)
    # an on/off machine draws its cycle's phase after the fault: the fault still splits off
    # (the clean machine is rendered with the same draws) and scales with the severity
    assert "cycle onoff" in synth.machine_model("rndbelt02", 0).description
    onoff = next(p for p in synth.plan_machine("rndbelt02", "tiny", 0) if p.anomaly)
    one = synth.clip_parts("rndbelt02", onoff, 2.0)
    two = synth.clip_parts("rndbelt02", dataclasses.replace(onoff, severity=2 * onoff.severity),
                           2.0)
    faint = synth.clip_parts("rndbelt02", dataclasses.replace(onoff, severity=1e-7), 2.0)
    assert rms(faint.fault) < 1e-6 * rms(faint.machine)
    assert rms(two.fault) / rms(two.machine) == pytest.approx(
        2 * rms(one.fault) / rms(one.machine), rel=0.05)
    # the background is the clip's own: without the EQs and level, render_clip mixes exactly
    # these (checked on a supplemental noise clip, which has neither EQ nor machine)
    noise = next(p for p in plans if p.split == "supplemental" and p.label == "noise")
    only = synth.clip_parts(mt, noise, 2.0)
    wave = synth.render_clip(mt, noise, 2.0)
    np.testing.assert_allclose(wave, only.background / rms(only.background)
                               * 10.0 ** (noise.level_db / 20.0), atol=1e-4)


# ------------------------------------------------------------------------------ anomaly gain

def test_anomaly_gain_scales_only_the_anomalies(tmp_path: Path) -> None:
    """``anomaly_gain`` multiplies each anomaly's severity and changes nothing else: normal and
    supplemental clips are the same bytes, every anomalous clip differs, gain 1 is the default
    tree (reused, not rewritten), and the marker and synth_info.json record the gain."""
    plain = synth.plan_machine("valve", "tiny", 4)
    loud = synth.plan_machine("valve", "tiny", 4, anomaly_gain=2.5)
    assert [p.labelled_name for p in plain] == [p.labelled_name for p in loud]
    for a, b in zip(plain, loud, strict=True):
        assert b.severity == pytest.approx(2.5 * a.severity, rel=1e-12)
        assert (a.anomaly, a.snr_db, a.level_db, a.env) == \
            (b.anomaly, b.snr_db, b.level_db, b.env)
    extra = synth.plan_extra("valve", "tiny", 4, domain="target", label="anomaly", count=3,
                             anomaly_gain=2.5)
    assert [p.severity for p in extra] == pytest.approx(
        [2.5 * p.severity for p in synth.plan_extra("valve", "tiny", 4, domain="target",
                                                     label="anomaly", count=3)])

    ref, gained, same = tmp_path / "ref", tmp_path / "gain", tmp_path / "one"
    synth.generate(ref, machine_types=["valve"], size="tiny", seed=4)
    synth.generate(gained, machine_types=["valve"], size="tiny", seed=4, anomaly_gain=2.5)
    synth.generate(same, machine_types=["valve"], size="tiny", seed=4, anomaly_gain=1.0)
    for a, b, c in zip(_wavs(ref), _wavs(gained), _wavs(same), strict=True):
        assert a.name == b.name == c.name
        assert a.read_bytes() == c.read_bytes()
        assert (a.read_bytes() == b.read_bytes()) == ("_anomaly_" not in a.name), a.name
    marker = json.loads((gained / "valve" / ".synth.json").read_text())
    assert marker["anomaly_gain"] == 2.5
    assert "anomaly_gain" not in json.loads((ref / "valve" / ".synth.json").read_text())
    assert json.loads((gained / synth.INFO_FILE).read_text())["types"]["valve"][
        "anomaly_gain"] == 2.5
    # The same folder at another gain is regenerated; back at gain 1 it is the default tree.
    f = next(p for p in _wavs(ref) if "_anomaly_" in p.name)
    before = f.read_bytes()
    synth.generate(ref, machine_types=["valve"], size="tiny", seed=4, anomaly_gain=2.5)
    assert f.read_bytes() != before
    synth.generate(ref, machine_types=["valve"], size="tiny", seed=4)
    assert f.read_bytes() == before


@pytest.mark.parametrize("gain", [0.0, -1.0, float("nan"), float("inf"), "loud"])
def test_anomaly_gain_must_be_a_positive_number(tmp_path: Path, gain: object) -> None:
    with pytest.raises(synth.SynthError, match="anomaly gain must be"):
        synth.generate(tmp_path, machine_types=["fan"], size="tiny", anomaly_gain=gain)  # type: ignore[arg-type]
    assert not _wavs(tmp_path)
    with pytest.raises(synth.SynthError, match="anomaly gain must be"):
        synth.plan_machine("fan", "tiny", 0, anomaly_gain=gain)  # type: ignore[arg-type]


def test_louder_faults_are_easier_to_detect(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI: the reference Gaussian on mean log-mel separates the anomalies of the
    same tiny machines better at gain 3 than at the calibrated gain 1."""
    aucs = {}
    for gain in ("1", "3"):
        out = tmp_path / gain
        assert main(["synth", "--out", str(out), "--machine-types", "fan", "valve", "--size",
                     "tiny", "--seed", "1", "--anomaly-gain", gain]) == 0
        printed = capsys.readouterr().out
        assert ("anomaly gain 3" in printed) == (gain == "3")
        for mt, md in scan(out).items():
            aucs[mt, gain] = _reference_aucs(md)
    rise = [aucs[mt, "3"][dom] - aucs[mt, "1"][dom] for mt in ("fan", "valve") for dom in (0, 1)]
    assert min(rise) >= 0.0, aucs  # no type or domain gets harder
    assert float(np.mean(rise)) >= 0.1, aucs  # and on average clearly easier (measured 0.22)
    with pytest.raises(SystemExit) as exc:  # a usage error (status 2), named by its option
        main(["synth", "--out", str(tmp_path / "x"), "--machine-types", "fan", "--size",
              "tiny", "--anomaly-gain", "0"])
    assert exc.value.code == 2
    assert "--anomaly-gain: must be positive, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="anomaly gain must be a finite number > 0, got 0.0"):
        synth.generate(tmp_path / "y", machine_types=["fan"], size="tiny", anomaly_gain=0.0)


@pytest.mark.parametrize("full", [".wav", "attributes_00.csv"])
def test_a_full_disk_names_the_file_it_could_not_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        full: str) -> None:
    """Found on a real full tmpfs (2026-12-07): `synth` said only `error: [Errno 28] No space
    left on device`, naming no file (a failed write() carries no file name)."""
    import errno

    write_bytes = Path.write_bytes

    def no_space(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def wav_full(self: Path, data: bytes) -> int:
        if self.suffix == ".wav":
            no_space()
        return write_bytes(self, data)

    class FullWriter:
        writerow = staticmethod(no_space)

    if full == ".wav":
        monkeypatch.setattr(Path, "write_bytes", wav_full)
    else:
        monkeypatch.setattr(csv, "writer", lambda *_, **__: FullWriter())
    out = tmp_path / "syn"
    assert main(["synth", "--out", str(out), "--size", "tiny", "--machine-types", "fan",
                 "--workers", "1", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"error: {out / 'fan'}" in err and full in err, err
    assert "no space left on the device; free space or write elsewhere" in err
