from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from automl_asd._version import __version__
from automl_asd.cli import main
from automl_asd.recipe import shipped_recipe


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0  # argparse's exit, once the text is written
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: automl-asd" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module",
    ["automl_asd.backends", "automl_asd.detectors", "automl_asd.recipe", "automl_asd.bundle"],
)
def test_each_package_imports_on_its_own(module: str) -> None:
    """No import cycle: every public module imports first in a fresh interpreter."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_demo_ends_with_where_each_result_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # The flow itself runs in tests/integration/test_demo.py; here only what `demo` prints
    # once it is done, with and without near ties of the pick frozen beside its recipe.
    from types import SimpleNamespace

    import automl_asd.orchestration.demo as flow

    search = tmp_path / "search"
    search.mkdir()
    res = SimpleNamespace(
        stage_seconds={"data": 1.0, "search": 2.0}, in_search_omega=0.7, novel_omega=0.65,
        reference_omega=0.55, reference="reference recipe `fast_default`",
        recipe_path=search / "recipe.json", search_report=search / "search_report.md",
        apply_dir=tmp_path / "apply")
    monkeypatch.setattr(flow, "run_demo", lambda *a, **k: res)
    monkeypatch.setattr("automl_asd.commands.demo.require_torchaudio", lambda: None)
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"  frozen recipe        {search / 'recipe.json'}\n  search report" in out
    assert "near ties" not in out and f"model bundles        {tmp_path / 'apply' / 'models'}" in out
    (search / "near_ties").mkdir()
    (search / "near_ties" / "77aa7c75.json").write_text("{}")
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert (f"  its near ties        {search / 'near_ties'}/*.json (apply them beside it: "
            "search report, 'How sure is the pick?')") in capsys.readouterr().out


def test_a_demo_whose_search_was_interrupted_stops_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-08: Ctrl+C during the demo's search, after its first trial, stopped the
    search (Tune's graceful stop) but the demo went on to apply the interim pick and ended as
    a finished demo, rc 0. It now stops: rc 130 and the demo's way on."""
    from types import SimpleNamespace

    import automl_asd.orchestration.demo as flow

    def not_reached(*a: Any, **k: Any) -> None:
        raise AssertionError("apply ran after an interrupted search")

    monkeypatch.setattr(flow.synth, "generate", lambda *a, **k: {})
    monkeypatch.setattr(flow, "init_ray", lambda *a, **k: False)
    interim = SimpleNamespace(interrupted=True, reference_omega=None, best_trial_id="t1",
                              best_omega=0.6, files={"recipe": tmp_path / "recipe.json"})
    monkeypatch.setattr(flow, "run_search", lambda cfg: interim)
    monkeypatch.setattr(flow, "apply_recipe", not_reached)
    monkeypatch.setattr("automl_asd.commands.demo.require_torchaudio", lambda: None)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "tiny", "--space", "smoke"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted: the data and the feature cache are kept in {out}; the same demo "
        "command goes on (its search starts afresh)")


@pytest.mark.parametrize(("argv", "message"), [
    (["recipe", "validate", "fast_default", "--max-cache-gb", "nan"],
     "--max-cache-gb: nan is not a finite number"),
    (["recipe", "validate", "fast_default", "--max-train-flops", "inf"],
     "--max-train-flops: inf is not a finite number"),
    (["recipe", "validate", "fast_default", "--max-cache-gb", "-1"],
     "--max-cache-gb: must be positive, got -1"),
    (["recipe", "validate", "fast_default", "--max-member-epochs", "-5"],
     "--max-member-epochs: must be positive, got -5"),
    (["apply", "--frozen", "fast_default", "--data", "d", "--out", "o", "--serial",
      "--max-retries", "-1"], "--max-retries: must not be negative, got -1"),
    (["apply", "--frozen", "fast_default", "--data", "d", "--out", "o",
      "--gpus-per-task", "nan"], "--gpus-per-task: nan is not a finite number"),
    (["apply", "--frozen", "fast_default", "--data", "d", "--out", "", "--serial"],
     "--out: empty path"),
    (["synth", "--out", "", "--size", "tiny"], "--out: empty path"),
    # the shared ranges (a self-review, 2026-12-07: synth --workers 0 / --seed -1 /
    # --anomaly-gain -1 exited 1 naming no option, while demo and search said status 2)
    (["synth", "--out", "o", "--size", "tiny", "--workers", "0"],
     "--workers: must be positive, got 0"),
    (["synth", "--out", "o", "--size", "tiny", "--seed", "-1"],
     "--seed: must not be negative, got -1"),
    (["synth", "--out", "o", "--size", "tiny", "--anomaly-gain", "-1"],
     "--anomaly-gain: must be positive, got -1"),
    (["demo", "--out", "o", "--trials", "0"], "--trials: must be positive, got 0"),
    (["demo", "--out", "o", "--max-concurrent", "0"],
     "--max-concurrent: must be positive, got 0"),
    (["demo", "--out", "o", "--seed", "-1"], "--seed: must not be negative, got -1"),
    (["search", "--data", "d", "--space", "smoke", "--trials", "2", "--out", "o", "--seed",
      "-1"], "--seed: must not be negative, got -1"),
    (["score", "--model", "m", "a.wav", "--workers", "0"], "--workers: must be positive, got 0"),
    (["score", "--model", "m", "--watch", "w", "--poll", "0"], "--poll: must be positive, got 0"),
    (["score", "--model", "m", "--watch", "w", "--poll", "nan"],
     "--poll: nan is not a finite number"),
    (["download", "--split", "dev", "--dest", "x", "--timeout", "nan"],
     "--timeout: nan is not a finite number"),
    (["synth", "--list", "--random-types", "100000000"], "--random-types: at most 10000"),
    (["download", "--split", "dev", "--dest", "x", "--retries", "0"],
     "--retries: must be positive, got 0"),
    # found 2026-12-07: 0 failed after every retry with "Operation now in progress", -1 with
    # "Timeout value out of range", both exit 1 after touching the network
    (["download", "--split", "dev", "--dest", "x", "--timeout", "0"],
     "argument --timeout: must be positive, got 0"),
    (["download", "--split", "dev", "--dest", "x", "--timeout", "-1"],
     "argument --timeout: must be positive, got -1"),
    (["download", "--split", "dev", "--dest", "x", "--timeout", "soon"],
     "argument --timeout: invalid seconds_arg value: 'soon'"),
])
def test_bad_numbers_and_empty_paths_are_usage_errors(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-06): NaN limits disabled the cost checks (every x > nan is
    False), `--out ""` wrote a run into the current folder, --random-types had no bound."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    # the sub-command's usage and name, not the top level's (found 2026-12-07: `search
    # --trials 0` printed `usage: automl-asd [-h] [--version] ... COMMAND ...`)
    assert err.startswith(f"usage: automl-asd {argv[0]} ")
    assert f"automl-asd {argv[0]}" in err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "level"), [
    (["recipe", "list"], logging.INFO),
    (["-q", "recipe", "list"], logging.WARNING),
    (["recipe", "-q", "list"], logging.WARNING),
    (["-v", "recipe", "list"], logging.DEBUG),
    (["recipe", "-v", "list"], logging.DEBUG),
    (["recipe", "list", "-v"], logging.DEBUG),
    (["recipe", "list", "-q"], logging.WARNING),
])
def test_verbosity_flags_work_before_and_after_the_sub_command(
        argv: list[str], level: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a review (2026-12-06): `automl-asd apply ... -v` was a usage error; -v/-q were
    only accepted before the sub-command (stop 48's review: nor after a nested action)."""
    seen: list[int] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.append(kw["level"]))
    assert main(argv) == 0
    assert seen == [level]


def test_verbosity_counts_add_up_wherever_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop 48's review: `-v apply ... -v` counted 1 (the second replaced the first)."""
    from automl_asd import cli

    seen: list[int] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    real = cli._log_level_args

    def spy(args: Any) -> None:
        real(args)
        seen.append(args.verbose)

    monkeypatch.setattr(cli, "_log_level_args", spy)
    assert main(["-vv", "recipe", "-v", "list", "-v"]) == 0
    assert main(["recipe", "list"]) == 0
    assert seen == [4, 0]


@pytest.mark.parametrize("argv", [["-v", "recipe", "list", "-q"], ["recipe", "list", "-q", "-v"],
                                  ["-q", "-v", "recipe", "list"]])
def test_verbose_and_quiet_together_are_a_usage_error(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: -v and -q together were accepted and -q won silently."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "-v/--verbose and -q/--quiet cannot be used together" in capsys.readouterr().err


def test_apply_on_cuda_without_a_gpu_is_refused_before_any_work(
        tiny_dev_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found 2026-12-07: `apply --device cuda` on a machine without CUDA failed every machine
    type one by one, leaving a run folder of error files (`score` refused at once)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main(["apply", "--frozen", "fast_default", "--data", str(tiny_dev_root), "--out",
                 str(out), "--device", "cuda", "--serial"]) == 2
    assert "--device cuda: device 'cuda': CUDA is not available here" in capsys.readouterr().err
    assert not out.exists()


def test_search_on_cuda_without_a_gpu_is_refused_before_any_work(
        tiny_dev_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out"
    assert main(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "1",
                 "--out", str(out), "--device", "cuda"]) == 2
    assert "--device cuda: device 'cuda': CUDA is not available here" in capsys.readouterr().err
    assert not out.exists()


def test_leave_one_out_lines_call_the_reference_what_the_space_makes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Found 2026-12-07: `search --space smoke --leave-one-out` said "reference point
    # (`fast_default` as this space sets it: not the recipe itself)" in its first line, then
    # "(reference recipe 0.5202)" on each held-out line, a number fast_default does not score.
    import argparse

    import pandas as pd

    import automl_asd.orchestration.tune as tune
    from automl_asd.commands import search as search_cmd
    from automl_asd.search.config import SearchConfig
    from automl_asd.search.space import load_space

    table = pd.DataFrame({"held_out": ["fan"], "trials": [4], "finished": [True],
                          "in_search_omega": [0.59], "held_out_omega": [0.48], "gap": [0.11],
                          "reference_held_out_omega": [0.52]})
    loo = argparse.Namespace(table=table, files={"report": tmp_path / "leave_one_out.md"})
    monkeypatch.setattr(tune, "run_leave_one_out", lambda cfg, data: loo)
    args = argparse.Namespace(verify_audio=False, leave_one_out=True, novel=None, out=tmp_path)
    for space, label in (("smoke", "reference point"), ("demo", "reference recipe")):
        cfg = SearchConfig(data=tmp_path, space=load_space(space), out=tmp_path, trials=4)
        assert search_cmd._run(args, cfg, data=None) == 0  # type: ignore[arg-type]
        out = capsys.readouterr().out
        assert f"held-out Ω 0.4800  ({label} 0.5200)" in out


def test_tilde_in_a_path_option_means_the_home_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found by probing (2026-12-07): no shell expands ~ in `--out=~/d` or `--out "~/d"`;
    `synth` wrote a folder named `~` into the current one, `recipe show` did not find
    `~/recipe.json`, while `apply` and `search` expanded their --out."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    assert main(["synth", "--out=~/data", "--machine-types", "fan", "--size", "tiny",
                 "-q"]) == 0
    assert (home / "data" / "fan" / "train").is_dir()
    (home / "recipe.json").write_text(shipped_recipe("fast_default").to_json())
    assert main(["recipe", "show", "~/recipe.json"]) == 0
    assert "fast_default" in capsys.readouterr().out
    assert list(cwd.iterdir()) == []


def test_a_path_option_of_another_encoding_is_a_usage_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found by probing (2026-12-07): `apply --out "o-Pr\\xfcf"` (Latin-1 bytes) failed in the
    pre-flight on "'utf-8' codec can't encode character '\\udcfc'"."""
    with pytest.raises(SystemExit) as exc:
        main(["info", "--data", "Pr\udcfcf"])
    assert exc.value.code == 2
    assert ("argument --data: Pr\\xfcf: not a UTF-8 name (byte 0xfc"
            in capsys.readouterr().err)


def test_what_the_console_cannot_encode_is_escaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by probing (2026-12-07): with an ASCII or Latin-1 stdout (PYTHONIOENCODING=ascii,
    a de_DE.ISO-8859-1 locale) a finished `apply` ended on "'ascii' codec can't encode
    character '\\u03a9'" (exit 1) at its last line, "official score Ω = ..."."""
    import io
    import sys

    from tests.unit.apply.test_apply import _make_tree

    data = _make_tree(tmp_path / "data", ("Prüfω",))
    raw = io.BytesIO()
    console = io.TextIOWrapper(raw, encoding="ascii", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", console)
    assert main(["info", "--data", str(data)]) == 0
    assert "Pr\\xfcf\\u03c9    00" in raw.getvalue().decode("ascii")


def test_an_interrupted_command_says_what_it_kept_and_how_to_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-08 by interrupting each command: `apply`, `synth`, `download` and a
    `search` stopped outside its trials ended on a bare "interrupted" (rc 130), leaving the
    way on (--resume or not) to a guess; a search stopped before it ran a trial refuses
    --resume."""
    from automl_asd.commands import apply, download, search, synth

    def stopped(args: Any) -> int:
        raise KeyboardInterrupt("signal 15")

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    cases = [
        (apply, ["apply", "--frozen", "fast_default", "--data", str(data), "--out", str(out)],
         f"interrupted: the machine types finished before the stop are kept in {out}; the "
         "same command with --resume runs the rest"),
        (synth, ["synth", "--out", str(out)],
         f"interrupted: the machine types written in full are kept in {out}; the same synth "
         "command writes the rest"),
        (download, ["download", "--year", "2025", "--split", "dev", "--dest", str(out)],
         f"interrupted: verified files and whole machine types are kept under {out}; the "
         "same command resumes the rest"),
        (search, ["search", "--data", str(data), "--space", "smoke", "--trials", "2",
                  "--out", str(out)],
         f"interrupted: no trial had run: the same command (without --resume) starts it "
         f"again in {out}"),
    ]
    for module, argv, line in cases:
        monkeypatch.setattr(module, "run", stopped)
        assert main(argv) == 130
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(line), module
    (out / "trials.parquet").parent.mkdir(parents=True)
    (out / "trials.parquet").write_bytes(b"")
    assert main(cases[-1][1]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted: what the search finished is kept in {out}; the same command with "
        "--resume continues it")
    # a command without a hint, and a hint that fails, still end on the plain line
    from automl_asd.commands import info
    monkeypatch.setattr(info, "run", stopped)
    assert main(["info", "--data", str(data)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    monkeypatch.setattr(apply, "interrupted", lambda args: 1 / 0)
    assert main(cases[0][1]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
