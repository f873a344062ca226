"""The quick commands (``--help``, ``recipe``, ``info``) start without torch, Ray or scikit-learn
(their timings are measured by ``bench/cli_startup.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

HEAVY = ("torch", "torchaudio", "ray", "optuna", "sklearn", "scipy", "pandas", "matplotlib")

_PROBE = """
import contextlib, io, json, sys
from automl_asd.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        rc = main(json.loads(sys.argv[1]))
    except SystemExit as exc:
        rc = exc.code
heavy = json.loads(sys.argv[2])
print(json.dumps({"rc": rc, "loaded": [m for m in heavy if m in sys.modules],
                  "out": out.getvalue()}))
"""


def _probe(argv: list[str]) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(HEAVY)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    result: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["recipe", "list"],
    ["recipe", "show", "baseline_ae_mse"],
    ["recipe", "validate", "margin_knn", "baseline_ae_mahalanobis", "fast_default"],
    ["search", "--help"],
    ["synth", "--help"],
    ["cache", "info"],
])
def test_quick_commands_import_no_heavy_library(argv: list[str]) -> None:
    result = _probe(argv)
    assert result["rc"] == 0, result
    assert result["loaded"] == [], f"{argv} imported {result['loaded']}"
    assert result["out"]  # it did its job


def test_recipe_list_still_lists_every_shipped_recipe() -> None:
    result = _probe(["recipe", "list"])
    names = [line.split("\t")[0] for line in str(result["out"]).splitlines()]
    shipped = sorted(p.stem for p in (REPO_ROOT / "automl_asd"
                                      / "recipes").glob("*.json"))
    assert names == shipped


def test_info_imports_no_heavy_library(tiny_dev_root: Path) -> None:
    result = _probe(["info", "--data", str(tiny_dev_root)])
    assert result["rc"] == 0
    assert result["loaded"] == []
    assert "fan" in str(result["out"])


def test_torch_free_names_match_the_networks() -> None:
    from automl_asd.nn import losses, resnet, specs

    assert resnet.SIZES is specs.SIZES and losses.LOSSES is specs.LOSSES
    for size in specs.SIZES:
        resnet.EmbeddingNet(resnet.NetConfig(n_bins=16, size=size, emb_dim=8))
    for name in specs.LOSSES:
        losses.make_margin_loss(name, 8, 3)


def test_main_puts_the_sigterm_handler_back(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """While a command runs, SIGTERM interrupts it like Ctrl-C (clean-up runs); afterwards the
    default is back. A handler someone else installed (``ray.init`` installs one, as earlier
    tests in this process may have) is left alone."""
    import signal

    from automl_asd import cli

    seen: list[object] = []
    real = cli._interrupt_on_sigterm

    def spy() -> object:
        previous = real()
        seen.append(signal.getsignal(signal.SIGTERM))
        return previous

    monkeypatch.setattr(cli, "_interrupt_on_sigterm", spy)
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert cli.main(["info", "--data", str(tmp_path)]) in (0, 1)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert callable(seen[0]) and seen[0] is not signal.SIG_DFL
        with pytest.raises(KeyboardInterrupt):
            seen[0](signal.SIGTERM, None)  # type: ignore[operator]

        def theirs(signum: int, frame: object) -> None:
            raise AssertionError("not called")

        signal.signal(signal.SIGTERM, theirs)
        assert cli.main(["info", "--data", str(tmp_path)]) in (0, 1)
        assert seen[1] is theirs and signal.getsignal(signal.SIGTERM) is theirs
    finally:
        signal.signal(signal.SIGTERM, original)


def test_an_unknown_option_gets_the_usage_of_the_command_it_was_given_to(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `recipe list -x` showed the top level's usage line, as if `recipe`
    were unknown."""
    from automl_asd.cli import main

    for argv, usage in ((["recipe", "list", "-x"], "automl-asd recipe list"),
                        (["doctor", "--bogus"], "automl-asd doctor"),
                        (["--bogus"], "automl-asd")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2
        assert f"usage: {usage} [-h]" in err, err
        assert f"{usage}: error: unrecognized arguments: {argv[-1]}" in err, err


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly() -> None:
    """`automl-asd recipe list | head -1` printed "error: [Errno 32] Broken pipe" and exited 1;
    now it ends quietly with the shell's status for a closed pipe (141)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys\nfrom automl_asd.cli import "
                             "main\nsys.exit(main(['recipe', 'list']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes (it takes ~1 s to start)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["recipe", "list", "--help"],
                                  ["recipe", "list"]])
def test_output_that_cannot_be_written_is_an_error(argv: list[str], unbuffered: str) -> None:
    """Found 2026-12-07: `automl-asd --help > /dev/full` exited 0 with its text lost (argparse
    drops the write error; buffered, the interpreter's flush at exit failed unseen)."""
    code = f"import sys\nfrom automl_asd.cli import main\nsys.exit(main({argv!r}))"
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE,
                             text=True, cwd=REPO_ROOT, timeout=120,
                             env={**os.environ, "PYTHONUNBUFFERED": unbuffered})
    assert res.returncode == 1, res.stderr
    assert "No space left on device" in res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_a_full_disk_under_verbose_is_the_same_line_after_the_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        verbose: list[str]) -> None:
    """Found on a real full tmpfs (2026-12-07): with -v an OSError of the command (a full
    disk) was re-raised into main()'s handler for unwritable --help output, which printed
    `automl-asd: error: cannot write the output: ...` and no traceback."""
    import errno

    from automl_asd.cli import main

    out = tmp_path / "syn"

    def no_space(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "x.wav"))

    monkeypatch.setattr(Path, "write_bytes", no_space)
    assert main(["synth", "--out", str(out), "--size", "tiny", "--machine-types", "fan",
                 "--workers", "1", *(verbose or ["-q"])]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"automl-asd synth: error: {out / 'x.wav'}: no space left "
                                    "on the device; free space or write elsewhere"), err
    assert ("Traceback" in err) == bool(verbose)


def test_an_error_names_the_innermost_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: the error line said `automl-asd recipe: error` while the usage line
    says `automl-asd recipe show`."""
    from automl_asd.cli import main

    assert main(["recipe", "show", "no_such_recipe_here"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("automl-asd recipe show: error: recipe 'no_such_recipe_here'"), err


def test_info_says_whether_the_data_root_is_missing_or_a_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: a missing --data and a file got one message, "does not exist or is
    not a folder"; each now says which."""
    from automl_asd.cli import main

    missing, afile, empty = tmp_path / "nonexistent", tmp_path / "a.txt", tmp_path / "empty"
    afile.write_text("x")
    empty.mkdir()
    for root, expect in ((missing, "data root does not exist (no such folder); check the "
                                   "path"),
                         (afile, "data root is a file, not a folder; give the folder that "
                                 "holds the <machine_type>/ folders"),
                         (empty, "no machine-type folders found")):
        assert main(["info", "--data", str(root)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"automl-asd info: error: {root}: {expect}"), err


def test_resume_where_no_search_is_is_refused_before_anything_is_written(
        tiny_dev_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a probe (2026-12-07): `search --resume` into a folder holding no search was
    refused only after Ray had started (8-10 s), leaving a run manifest and a lock there (a
    missing folder was created), so that a later `apply --out` into it was refused."""
    import time

    from automl_asd.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, tmp_path / "missing"):
        t0 = time.perf_counter()
        rc = main(["search", "--data", str(tiny_dev_root), "--space", "smoke", "--trials", "2",
                   "--out", str(out), "--resume"])
        assert rc == 1 and time.perf_counter() - t0 < 30
        assert "no search to resume there" in capsys.readouterr().err
    assert list(empty.iterdir()) == [] and not (tmp_path / "missing").exists()


def test_recipe_validate_help_says_what_the_cost_limits_are_measured_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07 (docs/help probe): `recipe validate --help` said the limits apply to
    "the data", but validate takes no data: it estimates on the DCASE 2025 development set
    (its own output and README say so); `apply` estimates on the data it is given."""
    from automl_asd.cli import main

    def help_of(*argv: str) -> str:
        assert main([*argv, "--help"]) == 0
        return " ".join(capsys.readouterr().out.split())

    validate = help_of("recipe", "validate")
    assert "feature cache for the DCASE 2025 development set would exceed" in validate
    assert "training on the DCASE 2025 development set would" in validate
    assert "the data" not in validate
    apply = help_of("apply")
    assert "feature cache for the data would exceed" in apply
    assert "training on the data would" in apply


def test_every_option_has_a_help_line_and_a_named_value() -> None:
    """Found 2026-12-07 (docs/help probe): `download --help` showed `--dest DEST`,
    `--retries RETRIES`, `--zip-dir ZIP_DIR` where README writes `--dest ROOT` and `--retries
    N`, and `demo --help` `--max-concurrent MAX_CONCURRENT` where search says `K`. Every
    option has a help line, and every value a placeholder of its own (or its choices)."""
    import argparse

    from automl_asd.cli import _build_parser

    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, prog: str) -> None:
        for action in parser._actions:  # noqa: SLF001  (argparse's list of arguments)
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                for name, child in action.choices.items():
                    walk(child, f"{prog} {name}")
                continue
            option = "/".join(action.option_strings) or action.dest
            if not action.help:
                missing.append(f"{prog} {option}: no help")
            if action.nargs != 0 and action.metavar is None and action.choices is None:
                missing.append(f"{prog} {option}: no metavar (argparse would show "
                               f"{action.dest.upper()})")

    walk(_build_parser(), "automl-asd")
    assert not missing, "\n".join(missing)


def test_search_resume_help_says_what_it_continues(capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07 (docs/help probe): `search --help` said --resume continues "a killed
    search"; it also continues one its --time-budget or Ctrl-C stopped (README, "Output safety
    and --resume"), and refuses another space file, data or seed."""
    from automl_asd.cli import main

    assert main(["search", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    resume = text.split("--resume", 2)[2].split(" --seed SEED ")[0]
    assert "--time-budget" in resume and "Ctrl-C" in resume, resume
    assert "space file, development data or --seed changed" in resume, resume
