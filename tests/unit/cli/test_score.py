"""``automl-asd score``: format checks (--resample), folders, --watch mode and Ray chunks."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from automl_asd.audio import AudioError
from automl_asd.bundle.files import save_bundle
from automl_asd.bundle.model import Bundle, load_bundle
from automl_asd.cli import main
from automl_asd.data import scan
from automl_asd.io.run_folder import OutputError
from automl_asd.io.score_csv import read_score_csv
from automl_asd.pipeline import fit_machine
from automl_asd.recipe import load_recipe
from automl_asd.serve import collect_wavs, watch_folder

MT = "gearbox"


@pytest.fixture(scope="module")
def bundle_dir(tiny_dev_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    machine = scan(tiny_dev_root, machine_types=[MT])[MT]
    fitted = fit_machine(load_recipe("fast_default"), machine, device="cpu")
    return save_bundle(fitted, tmp_path_factory.mktemp("models") / MT)


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> Bundle:
    return load_bundle(bundle_dir, device="cpu")


@pytest.fixture(scope="module")
def test_wavs(tiny_dev_root: Path) -> list[Path]:
    return sorted((tiny_dev_root / MT / "test").glob("*.wav"))


def _rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))


# ----------------------------------------------------------------------------- formats
@pytest.mark.slow
def test_wrong_rate_and_channels_refused_or_resampled(bundle_dir: Path, bundle: Bundle,
                                                      test_wavs: list[Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    wave, rate = sf.read(str(test_wavs[0]), dtype="float32")
    assert rate == 16000
    import torch
    import torchaudio.functional as taf

    at_8k = taf.resample(torch.from_numpy(wave), 16000, 8000).numpy()
    sf.write(tmp_path / "slow.wav", at_8k, 8000, subtype="PCM_16")
    sf.write(tmp_path / "stereo.wav", np.stack([wave, wave], axis=1), 16000, subtype="FLOAT")
    for name, expect in (("slow.wav", "8000 Hz; bundle gearbox expects 16000 Hz"),
                         ("stereo.wav", "2 channels")):
        assert main(["score", "--model", str(bundle_dir), str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert name in err and expect in err and "--resample" in err
        with pytest.raises(AudioError, match=name):
            bundle.score([tmp_path / name])
    out = tmp_path / "s.csv"
    assert main(["score", "--model", str(bundle_dir), str(tmp_path / "stereo.wav"),
                 str(tmp_path / "slow.wav"), "--resample", "--out", str(out)]) == 0
    rows = {r[0]: float(r[1]) for r in _rows(out)[1:]}
    # a duplicated channel downmixes to the same clip: the same score (same batch of two)
    original = float(bundle.score([test_wavs[0], tmp_path / "slow.wav"],
                                  resample=True).scores[0])
    assert rows["stereo.wav"] == original
    # 16k -> 8k -> 16k loses the top half of the band: close to, not equal to, the original
    assert rows["slow.wav"] != original and np.isfinite(rows["slow.wav"])
    # in-memory waveforms: a sample rate other than the spec's is refused unless resampling
    with pytest.raises(AudioError, match="8000 Hz"):
        bundle.score([at_8k], sample_rate=8000)
    assert np.isfinite(bundle.score([at_8k], sample_rate=8000, resample=True).scores).all()


def test_integer_arrays_score_like_their_file_and_2d_arrays_are_refused(
        bundle: Bundle, test_wavs: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    """Found by a review (2026-12-06): an int16 array (soundfile.read(..., dtype="int16"))
    was scored unscaled (486 against 0.47, flagged), and a (2, n) array was split into two
    clips silently."""
    import soundfile as sf

    from automl_asd.audio import AudioError

    want = bundle.score([test_wavs[0]]).scores
    pcm, rate = sf.read(test_wavs[0], dtype="int16")
    assert bundle.score([pcm], sample_rate=rate).scores.tolist() == want.tolist()
    as32, _ = sf.read(test_wavs[0], dtype="int32")
    np.testing.assert_allclose(bundle.score([as32]).scores, want, rtol=1e-6)
    # `astype(int)` of 16-bit samples is int64: refused (scaled by 2**63 it was silence)
    with pytest.raises(AudioError, match="dtype int64: integer PCM must be 8, 16 or 32 bit"):
        bundle.score([pcm.astype(np.int64)])
    wave, _ = sf.read(test_wavs[0], dtype="float32")
    import torch

    for two_d in (np.stack([wave, wave]), torch.from_numpy(np.stack([wave, wave]))):
        with pytest.raises(AudioError, match=r"shape \(2, \d+\).*as a list"):
            bundle.score(two_d)
        with pytest.raises(AudioError, match=r"shape \(2, \d+\).*as a list"):
            bundle.features(two_d)
    # one 1-D tensor is one clip (it was iterated sample by sample)
    assert bundle.score(torch.from_numpy(wave)).scores.tolist() == \
        bundle.score(wave).scores.tolist()
    bundle.score([wave * 50])
    assert "beyond the [-1, 1] of float audio" in caplog.text


def test_collect_wavs_names(tmp_path: Path) -> None:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    for rel in ("a/x.wav", "a/sub/y.WAV", "a/.hidden.wav", "a/notes.txt", "b.wav"):
        (tmp_path / rel).write_bytes(b"")
    got = collect_wavs([tmp_path / "a", tmp_path / "b.wav"])
    assert [n for n, _ in got] == ["sub/y.WAV", "x.wav", "b.wav"]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.wav").write_bytes(b"")
    dup = collect_wavs([tmp_path / "a" / "x.wav", tmp_path / "c"])
    assert [n for n, _ in dup] == [str(tmp_path / "a" / "x.wav"), str(tmp_path / "c" / "x.wav")]
    with pytest.raises(FileNotFoundError, match="no such file"):
        collect_wavs([tmp_path / "missing.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .wav files"):
        collect_wavs([tmp_path / "empty"])


def test_score_needs_paths_or_watch(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--model", str(bundle_dir)]) == 2
    assert "(PATH...) or --watch DIR" in capsys.readouterr().err


# ----------------------------------------------------------------------------- watch mode
@pytest.mark.slow
def test_watch_scores_new_stable_files_and_skips_malformed(
    bundle: Bundle, test_wavs: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = tmp_path / "live.csv"
    shutil.copy(test_wavs[0], inbox / "c0.wav")
    (inbox / "broken.wav").write_bytes(b"RIFF not really a wav file")
    (inbox / ".partial.wav").write_bytes(b"ignored: hidden name")
    growing = inbox / "c2.wav"
    data = test_wavs[2].read_bytes()
    events: list[int] = []

    def fake_sleep(_: float) -> None:
        # the filesystem changes between polls: new files appear, one keeps growing
        poll = len(events) + 1
        events.append(poll)
        if poll == 1:
            shutil.copy(test_wavs[1], inbox / "c1.wav")
            growing.write_bytes(data[: len(data) // 2])
        elif poll == 2:
            growing.write_bytes(data)  # finished writing

    with caplog.at_level(logging.WARNING):
        stats = watch_folder(bundle, inbox, out, poll=0.01, max_files=4, sleep=fake_sleep)
    assert stats.reason == "max-files"
    assert stats.scored == 3 and stats.skipped == ["broken.wav"]
    assert "skipping" in caplog.text and "broken.wav" in caplog.text
    rows = read_score_csv(out)
    names = [r[0] for r in rows]
    # c0 is stable from poll 1 to 2; c1 from 2 to 3; c2 changed size at poll 3, stable at 4
    assert names == ["c0.wav", "c1.wav", "c2.wav"] and stats.polls == 4
    want = bundle.score([test_wavs[0], test_wavs[1], test_wavs[2]], batch_size=1)
    np.testing.assert_array_equal(np.array([r[1] for r in rows]), want.scores)
    assert [r[2] for r in rows] == want.decisions.tolist()

    # a skipped file is retried once it changes (e.g. a writer that finished late)
    shutil.copy(test_wavs[3], inbox / "broken.wav")
    stats1 = watch_folder(bundle, inbox, out, poll=0.01, max_files=1, sleep=lambda _: None)
    assert stats1.scored == 1 and stats1.skipped == []
    # a restarted watcher does not score the same files again, and stops on --timeout
    shutil.copy(test_wavs[3], inbox / "c3.wav")
    stats2 = watch_folder(bundle, inbox, out, poll=0.01, timeout=0.0, sleep=fake_sleep)
    assert stats2.reason == "timeout" and stats2.scored == 0 and stats2.polls == 1
    # the last sleep ends on the deadline (found 2026-12-06: it overshot by up to one poll)
    naps: list[float] = []
    (tmp_path / "empty").mkdir()
    stats_t = watch_folder(bundle, tmp_path / "empty", None, poll=10.0, timeout=0.05,
                           sleep=naps.append)
    assert stats_t.reason == "timeout" and naps and all(0 < n <= 0.05 for n in naps)
    stats3 = watch_folder(bundle, inbox, out, poll=0.01, max_files=1, sleep=lambda _: None)
    assert stats3.scored == 1
    assert [r[0] for r in read_score_csv(out)] == names + ["broken.wav", "c3.wav"]


def test_watch_waits_for_an_open_recording_and_names_one_changed_after_scoring(
    bundle: Bundle, test_wavs: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by a review (2026-12-06): a recording still being written (libsndfile leaves the
    header's length unknown until it closes the file) was scored on its first second and
    flagged, and never looked at again."""
    import soundfile as sf

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = tmp_path / "live.csv"
    wave, rate = sf.read(test_wavs[0], dtype="float32")
    writer = sf.SoundFile(inbox / "rec.wav", "w", rate, 1, "PCM_16")
    writer.write(wave[:rate])
    writer.flush()
    polls: list[int] = []

    def fake_sleep(_: float) -> None:
        polls.append(1)
        if len(polls) == 3:  # the recorder finishes after two quiet polls
            writer.write(wave[rate:])
            writer.close()

    stats = watch_folder(bundle, inbox, out, poll=0.01, max_files=1, sleep=fake_sleep)
    assert stats.scored == 1 and stats.polls >= 5
    want = bundle.score([test_wavs[0]])
    assert read_score_csv(out)[0][1] == float(want.scores[0])  # the whole recording

    # a file rewritten after it was scored: named, not silently ignored
    shutil.copy(test_wavs[1], inbox / "b.wav")
    step: list[int] = []

    def rewrite(_: float) -> None:  # b.wav is scored at poll 2, rewritten after poll 3
        step.append(1)
        if len(step) == 3:
            shutil.copy(test_wavs[2], inbox / "b.wav")
        if len(step) == 5:
            raise KeyboardInterrupt  # Ctrl-C ends the watch

    with caplog.at_level(logging.WARNING):
        stats = watch_folder(bundle, inbox, out, poll=0.01, sleep=rewrite)
    assert stats.reason == "interrupted" and stats.scored == 1
    assert "b.wav changed after it was scored" in caplog.text


def test_watch_tries_a_skipped_file_again_when_it_is_replaced_by_one_of_the_same_size(
    bundle: Bundle, test_wavs: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found 2026-12-07: a skipped file was tried again only when its size changed, so a
    stereo clip (refused) replaced by a mono clip of the same byte size (twice as long) was
    never scored, though the warning said "tried again if it changes"."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = tmp_path / "live.csv"
    wave, rate = sf.read(test_wavs[0], dtype="float32")
    half = len(wave) // 2
    mono = tmp_path / "mono.wav"
    sf.write(mono, wave[:2 * half], rate, subtype="PCM_16")
    sf.write(inbox / "rec.wav", np.stack([wave[:half]] * 2, axis=1), rate, subtype="PCM_16")
    assert (inbox / "rec.wav").stat().st_size == mono.stat().st_size
    polls: list[int] = []

    def fake_sleep(_: float) -> None:
        polls.append(1)
        if len(polls) == 3:  # skipped at poll 2; the fixed clip is moved in after poll 3
            staged = tmp_path / "staged.wav"
            shutil.copy(mono, staged)
            st = (inbox / "rec.wav").stat()
            os.utime(staged, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
            os.replace(staged, inbox / "rec.wav")
        if len(polls) == 8:
            raise KeyboardInterrupt

    with caplog.at_level(logging.WARNING):
        stats = watch_folder(bundle, inbox, out, poll=0.01, sleep=fake_sleep)
    assert "skipping" in caplog.text and "2 channels" in caplog.text
    assert stats.scored == 1 and stats.skipped == []
    want = bundle.score([mono])
    assert read_score_csv(out) == [("rec.wav", float(want.scores[0]), int(want.decisions[0]))]


def test_watch_scores_a_finished_file_whose_header_never_gives_its_length(
    bundle: Bundle, test_wavs: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review (2026-12-06): ffmpeg writing to a pipe leaves RIFF and data sizes unknown in a
    finished file; the watcher waited for it for ever. It is scored after quiet polls; a file
    only touched after scoring (same bytes) is not reported as changed."""
    import os

    from automl_asd.serve import UNFINISHED_POLLS

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = bytearray(test_wavs[0].read_bytes())
    data[4:8] = b"\xff\xff\xff\xff"
    at = data.index(b"data")
    data[at + 4:at + 8] = b"\xff\xff\xff\xff"
    (inbox / "piped.wav").write_bytes(bytes(data))
    out = tmp_path / "live.csv"
    stats = watch_folder(bundle, inbox, out, poll=0.01, max_files=1, sleep=lambda _: None)
    assert stats.scored == 1 and stats.polls == UNFINISHED_POLLS + 1
    assert read_score_csv(out)[0][1] == float(bundle.score([test_wavs[0]]).scores[0])
    step: list[int] = []
    inbox2 = tmp_path / "inbox2"
    inbox2.mkdir()
    (inbox2 / "b.wav").write_bytes(test_wavs[1].read_bytes())

    def touch(_: float) -> None:  # b.wav is scored at poll 2, touched after poll 3
        step.append(1)
        if len(step) == 3:
            os.utime(inbox2 / "b.wav", ns=(1, 10**18))
        elif len(step) == 5:
            raise KeyboardInterrupt

    with caplog.at_level(logging.WARNING):
        again = watch_folder(bundle, inbox2, None, poll=0.01, sleep=touch)
    assert again.scored == 1 and again.polls == 5
    assert "changed after it was scored" not in caplog.text


def test_watch_says_when_its_folder_vanishes_and_returns(
        bundle: Bundle, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Found by a review (2026-12-06): a removed watch folder was polled silently for ever."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    step: list[int] = []

    def sleep(_: float) -> None:
        step.append(1)
        if len(step) == 1:
            inbox.rmdir()
        elif len(step) == 3:
            inbox.mkdir()
        elif len(step) == 4:
            raise KeyboardInterrupt

    with caplog.at_level(logging.INFO):
        watch_folder(bundle, inbox, None, poll=0.01, sleep=sleep)
    assert caplog.text.count("is gone; waiting for it to come back") == 1
    assert caplog.text.count(f"{inbox} is back") == 1


def test_watch_stops_cleanly_on_ctrl_c(bundle: Bundle, tmp_path: Path) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    stats = watch_folder(bundle, tmp_path, tmp_path / "o.csv", poll=1.0, sleep=interrupt)
    assert stats.reason == "interrupted" and stats.scored == 0
    with pytest.raises(FileNotFoundError, match="no such folder"):
        watch_folder(bundle, tmp_path / "nope", None)


@pytest.mark.slow
def test_watch_cli(bundle_dir: Path, test_wavs: list[Path], tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in test_wavs[:2]:
        shutil.copy(p, inbox / p.name)
    out = tmp_path / "w.csv"
    assert main(["score", "--model", str(bundle_dir), "--watch", str(inbox), "--poll", "0.05",
                 "--max-files", "2", "--timeout", "30", "--out", str(out)]) == 0
    assert "watch stopped (max-files): 2 scored" in capsys.readouterr().err
    assert sorted(r[0] for r in read_score_csv(out)) == sorted(p.name for p in test_wavs[:2])


def test_out_dash_is_stdout(bundle_dir: Path, test_wavs: list[Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-07: ``--out -`` wrote a file named ``-`` in the current folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["score", "--model", str(bundle_dir), str(test_wavs[0]), "--out", "-"]) == 0
    printed = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert printed[0] == ["name", "score", "decision"] and printed[1][0] == test_wavs[0].name
    assert not (tmp_path / "-").exists()


def test_a_watch_resumes_a_csv_a_spreadsheet_saved_again(
        bundle_dir: Path, test_wavs: list[Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: a watch CSV saved again by Excel ("CSV UTF-8": a byte-order mark and
    CRLF line ends) was refused on resume, "header ['\\ufeffname', ...] is not ['name', ...]";
    its rows are read and the watch goes on, scoring only the new file."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(test_wavs[0], inbox / "a.wav")
    out = tmp_path / "live.csv"
    watch = ["score", "--model", str(bundle_dir), "--watch", str(inbox), "--poll", "0.05",
             "--timeout", "0.2", "--out", str(out)]
    assert main(watch) == 0
    first = read_score_csv(out)
    out.write_bytes(b"\xef\xbb\xbf" + out.read_bytes().replace(b"\n", b"\r\n"))
    assert read_score_csv(out) == first
    shutil.copy(test_wavs[1], inbox / "b.wav")
    capsys.readouterr()
    assert main(watch) == 0
    assert "1 scored" in capsys.readouterr().err
    assert [r[0] for r in read_score_csv(out)] == ["a.wav", "b.wav"]
    # and a batch run may replace it (it still starts with the mark) without --overwrite
    assert out.read_bytes().startswith(b"\xef\xbb\xbfname,score,decision\r\n")
    assert main(["score", "--model", str(bundle_dir), str(inbox), "--out", str(out)]) == 0


def test_a_watch_refuses_a_csv_another_bundle_scored(
        bundle_dir: Path, tiny_dev_root: Path, test_wavs: list[Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Found by a probe (2026-12-07): a watch with another bundle on an existing CSV took its
    rows as its own ("9 file(s) already in live.csv are not scored again"): its results were
    the other bundle's scores. The bundle that scored a CSV is recorded beside it; a watch
    with another one is refused, and one with the same bundle goes on."""
    machine = scan(tiny_dev_root, machine_types=["fan"])["fan"]
    other = save_bundle(fit_machine(load_recipe("fast_default"), machine, device="cpu"),
                        tmp_path / "models" / "fan")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(test_wavs[0], inbox / "a.wav")
    out = tmp_path / "live.csv"
    watch = ["--watch", str(inbox), "--poll", "0.05", "--timeout", "0.2", "--out", str(out)]
    assert main(["score", "--model", str(bundle_dir), *watch]) == 0
    assert [r[0] for r in read_score_csv(out)] == ["a.wav"]
    assert not (tmp_path / ".live.csv.lock").exists()  # removed when the command ends
    capsys.readouterr()
    assert main(["score", "--model", str(other), *watch]) == 1
    err = capsys.readouterr().err
    assert "its 1 row(s) were scored by another bundle (gearbox, fast_default" in err
    assert "this watch scores with fan (fast_default" in err
    assert main(["score", "--model", str(bundle_dir), *watch]) == 0  # the same bundle
    # a batch run replaces the CSV and records its own bundle: a watch then goes on with it
    assert main(["score", "--model", str(other), str(inbox), "--out", str(out)]) == 0
    assert main(["score", "--model", str(other), *watch]) == 0
    assert not list(tmp_path.glob(".*.lock"))
    # a CSV whose bundle is not recorded (written before 2026-12-07) is named in a warning
    (tmp_path / ".live.csv.bundle.json").unlink()
    with caplog.at_level(logging.WARNING):
        assert main(["score", "--model", str(bundle_dir), *watch]) == 0
    assert "holds 1 row(s) from a run that did not record its bundle" in caplog.text


def test_score_out_never_replaces_a_run_s_or_a_data_tree_s_files(
        bundle_dir: Path, tiny_dev_root: Path, test_wavs: list[Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a probe (2026-12-07): `score --out X --overwrite` replaced a run's submission
    CSV, another bundle's recipe.json and the data tree's attributes_00.csv (leaving its lock
    file in the data tree). These are refused now, with or without --overwrite."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "fan.summary.json").write_text("{}")
    (run / ".automl-asd-run.json").write_text(json.dumps(
        {"files": {"fan.summary.json": "0" * 64}}))
    tree = tmp_path / "data"
    shutil.copytree(tiny_dev_root / "fan", tree / "fan")
    cases = {run / "anomaly_score_fan_section_00_test.csv": "a submission CSV's name",
             run / "fan.summary.json": "written by an automl-asd run",
             tree / "fan" / "attributes_00.csv": "inside the machine folder",
             tmp_path / "ground_truth_fan_section_00_test.csv": "a ground-truth file's name"}
    for target, why in cases.items():
        before = target.read_bytes() if target.exists() else None
        assert main(["score", "--model", str(bundle_dir), str(test_wavs[0]), "--out",
                     str(target), "--overwrite"]) == 1, target
        assert why in capsys.readouterr().err
        assert (target.read_bytes() if target.exists() else None) == before
    assert not list(tree.rglob(".*.lock")) and not list(run.glob(".*.lock"))
    # a project folder that merely holds train/ and test/ is no data tree (found by a review)
    project = tmp_path / "project"
    for sub in ("train", "test"):
        (project / sub).mkdir(parents=True)
    assert main(["score", "--model", str(bundle_dir), str(test_wavs[0]), "--out",
                 str(project / "scores.csv")]) == 0
    assert (project / "scores.csv").is_file()


def test_one_file_given_twice_is_scored_once(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(b"")
    (tmp_path / "link.wav").symlink_to(tmp_path / "a" / "x.wav")
    with caplog.at_level(logging.WARNING):
        got = collect_wavs([tmp_path / "a" / "x.wav", tmp_path / "a", tmp_path / "link.wav"])
    assert got == [("x.wav", tmp_path / "a" / "x.wav")]
    assert caplog.text.count("given more than once (as x.wav); scored once") == 2


def test_watch_names_an_empty_file_and_a_folder_of_another_machine_type(
        bundle: Bundle, test_wavs: list[Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Found by a probe (2026-12-07): a 0-byte .wav in a watched folder was never scored,
    skipped or named; a folder of another machine type was scored without a word."""
    inbox = tmp_path / "pump" / "test"
    inbox.mkdir(parents=True)
    (tmp_path / "pump" / "train").mkdir()
    (tmp_path / "pump" / "attributes_00.csv").write_text("file_name\n")
    (inbox / "empty.wav").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        stats = watch_folder(bundle, inbox, None, poll=0.01, timeout=0.5,
                             sleep=lambda _: None)
    assert stats.skipped == ["empty.wav"] and stats.scored == 0
    assert caplog.text.count("skipping empty.wav: an empty file (0 bytes)") == 1
    assert "the folder of machine type 'pump', and are scored with the 'gearbox' bundle" \
        in caplog.text
    caplog.clear()
    plain = tmp_path / "recordings" / "test"  # a folder named test, in no data tree
    plain.mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        watch_folder(bundle, plain, None, poll=0.01, timeout=0.05, sleep=lambda _: None)
    assert "machine type" not in caplog.text
    shutil.copy(test_wavs[0], inbox / "empty.wav")  # written at last: scored
    stats = watch_folder(bundle, inbox, None, poll=0.01, max_files=1, sleep=lambda _: None)
    assert stats.scored == 1 and stats.skipped == []


def test_a_lock_that_removes_its_file_is_taken_again_by_a_late_opener(tmp_path: Path) -> None:
    """``FolderLock(remove=True)`` deletes its file before it unlocks: a process that had
    opened the old file and locks it after that must not count as holding the lock."""
    from automl_asd.io.run_folder import FolderLock

    path = tmp_path / ".x.lock"
    first = FolderLock(tmp_path, "a", lock_path=path, remove=True).acquire()
    stale = open(path, "a+")  # opened while held, locked after the holder removed the file
    first.release()
    assert not path.exists()
    second = FolderLock(tmp_path, "b", lock_path=path, remove=True)
    calls = []
    real = second._lock_once

    def lock_once():  # first the stale file (as a racing opener gets it), then the path
        calls.append(1)
        if len(calls) == 1:
            import fcntl

            fcntl.flock(stale.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return stale
        return real()

    second._lock_once = lock_once  # type: ignore[method-assign]
    second.acquire()
    assert len(calls) == 2 and path.exists()
    with pytest.raises(OutputError, match="another automl-asd run is writing it"):
        FolderLock(tmp_path, "c", lock_path=path).acquire()
    second.release()
    assert not path.exists()


# ----------------------------------------------------------------------------- Ray
@pytest.mark.ray
@pytest.mark.slow
def test_address_scores_chunks_in_ray_tasks(ray_session: None,  # noqa: F811
                                            bundle_dir: Path, bundle: Bundle,
                                            test_wavs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ray.csv"
    assert main(["score", "--model", str(bundle_dir), str(test_wavs[0].parent),
                 "--address", "local", "--chunk-size", "15", "--out", str(out)]) == 0
    rows = read_score_csv(out)
    assert [r[0] for r in rows] == [p.name for p in test_wavs]
    # 40 files in chunks of 15 = 3 tasks; the same chunking in process gives the same bits
    want = bundle.score(test_wavs, batch_size=15)
    np.testing.assert_array_equal(np.array([r[1] for r in rows]), want.scores)
    assert [r[2] for r in rows] == want.decisions.tolist()


@pytest.mark.parametrize(("flags", "message"), [
    (["--chunk-size", "0"], "--chunk-size 0: must be >= 1"),
    (["--max-files", "3"], "--max-files and --timeout apply to --watch only"),
    (["--timeout", "5"], "--max-files and --timeout apply to --watch only"),
])
def test_batch_settings_that_would_be_ignored_are_refused(
        bundle_dir: Path, test_wavs: list[Path], capsys: pytest.CaptureFixture[str],
        flags: list[str], message: str) -> None:
    """Found by probing (2026-12-03): `--workers 0` silently meant the default, and the
    watch-only limits were accepted (and ignored) in batch mode. Usage errors: status 2."""
    assert main(["score", "--model", str(bundle_dir), str(test_wavs[0]), *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--max-files", "0"], "--max-files 0: must be >= 1"),
    (["--timeout", "-1"], "--timeout -1: must be at least --poll (2 s)"),
    # found 2026-12-06: --timeout 0 (or below one poll) stopped before any file held still
    (["--timeout", "0"], "--timeout 0: must be at least --poll (2 s)"),
    (["--timeout", "0.5", "--poll", "1"], "--timeout 0.5: must be at least --poll (1 s)"),
    # found 2026-12-06: batch-mode settings were accepted with --watch and ignored
    (["--address", "auto"], "--address: batch mode only"),
    (["--workers", "2", "--batch-size", "8"], "--workers, --batch-size: batch mode only"),
    (["--chunk-size", "4"], "--chunk-size: batch mode only"),
])
def test_watch_limits_that_stop_before_starting_are_refused(
        bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        flags: list[str], message: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert main(["score", "--model", str(bundle_dir), "--watch", str(inbox), *flags]) == 2
    assert message in capsys.readouterr().err


def test_stdout_rows_are_quoted_like_the_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A clip name with a comma reads back as one field from stdout as from ``--out``."""
    from automl_asd.serve import emit_rows

    rows = [("dir/clip,one.wav", 0.4312345678901234, 0), ('say "hi".wav', 1.5, 1)]
    emit_rows(rows, None, append=False)
    printed = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert printed == [["name", "score", "decision"],
                       ["dir/clip,one.wav", "0.4312345678901234", "0"],
                       ['say "hi".wav', "1.5", "1"]]
    emit_rows(rows, tmp_path / "s.csv", append=False)
    assert read_score_csv(tmp_path / "s.csv") == rows
    assert (tmp_path / "s.csv").read_text().splitlines() == [
        ",".join(r) for r in ([["name", "score", "decision"]] + [
            ['"dir/clip,one.wav"', "0.4312345678901234", "0"],
            ['"say ""hi"".wav"', "1.5", "1"]])]


def test_appending_after_an_unterminated_line_and_reading_a_broken_row(tmp_path: Path) -> None:
    from automl_asd.io.score_csv import append_score_rows

    csv_path = tmp_path / "nonl.csv"
    csv_path.write_text("name,score,decision\nold.wav,0.5,0")  # no newline at the end
    append_score_rows(csv_path, [("new.wav", 0.25, 1)])
    assert read_score_csv(csv_path) == [("old.wav", 0.5, 0), ("new.wav", 0.25, 1)]
    cut = tmp_path / "cut.csv"
    cut.write_text("name,score,decision\na.wav,0.5,0\nfoo.wav,0.")  # killed mid-row
    with pytest.raises(ValueError, match=r"cut.csv, line 3: 'foo.wav,0.' is not a name,score"):
        read_score_csv(cut)


def test_bundle_inputs_that_are_not_clips_are_named(bundle: Bundle, test_wavs: list[Path],
                                                    tmp_path: Path) -> None:
    """Found by a library probe (2026-12-07): a missing file and a folder both read "cannot
    read wav header ... re-download or re-extract the file"; a too-short waveform in a batch
    was not named; a stereo waveform in torchaudio's (channels, n_samples) layout was "a
    waveform of 2 samples" even with resample=True."""
    with pytest.raises(FileNotFoundError, match="nope.wav: no such file"):
        bundle.score([tmp_path / "nope.wav"])
    with pytest.raises(AudioError, match="is a folder, not a wav file"):
        bundle.score([tmp_path])
    wave, rate = sf.read(test_wavs[0], dtype="float32")
    with pytest.raises(AudioError, match="waveform 1 of the inputs: .*too short"):
        bundle.score([wave, wave[:100]])
    mono = bundle.score([wave]).scores
    stereo_first = np.stack([wave, wave])  # (channels, n_samples), as torchaudio loads
    got = bundle.score([stereo_first, stereo_first.T], resample=True).scores
    np.testing.assert_allclose(got, [mono[0], mono[0]], rtol=1e-6)


def test_a_full_disk_names_the_score_csv(bundle_dir: Path, test_wavs: list[Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Found on a real full tmpfs (2026-12-07): `score --out` said only `error: [Errno 28] No
    space left on device` (a failed write() names no file); an old CSV stays whole."""
    import errno

    import automl_asd.io.score_csv as score_csv

    def no_space(*_: object, **__: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "scores.csv"
    assert main(["score", "--model", str(bundle_dir), "--out", str(out), "-q",
                 *map(str, test_wavs[:2])]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(score_csv, "write_score_rows", no_space)
    assert main(["score", "--model", str(bundle_dir), "--out", str(out), "-q",
                 *map(str, test_wavs)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"automl-asd score: error: {out}: no space left on the device; free space "
                   "or write elsewhere"), err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_a_full_disk_at_the_lock_names_the_lock_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Found on a real full tmpfs (2026-12-07): writing the holder into the lock file is the
    first write of `score --out` (and of `apply`/`search`): its ENOSPC named no file."""
    import errno

    from automl_asd.io.run_folder import FolderLock

    class Full:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def flush(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    lock_once = FolderLock._lock_once
    monkeypatch.setattr(FolderLock, "_lock_once", lambda self: Full(lock_once(self)))
    lock = FolderLock(tmp_path, "score")
    with pytest.raises(OSError) as exc:
        lock.acquire()
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(lock.path)
    monkeypatch.undo()
    with FolderLock(tmp_path, "score"):  # the failed holder let go of it
        pass
