"""Every ``bench/<x>.py ...`` command quoted in README.md and docs/benchmarks.md still parses:
its flags exist and their values are accepted (choices, types, counts). Each script's
``main`` runs with ``ArgumentParser.parse_args`` replaced by one that parses and then stops
it, so nothing is measured. Placeholders in the docs (``DIR``, ``R``, ``S``, ``G``, ``F``,
``FILE``) get sample values; ``...`` and ``[ ]`` are dropped.

Every repository path the docs, the bench scripts and the package name (``bench/x.py``,
``tests/unit/...``, ``automl_asd/...``) exists."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections import defaultdict

import pytest

from tests.fixtures.bench import BENCH_DIR, load_bench
from tests.fixtures.paths import REPO_ROOT

pytestmark = pytest.mark.slow

DOCS = ("README.md", "docs/benchmarks.md")
PLACEHOLDERS = {"DIR": "/tmp/x", "R": "fast_default", "S": "0", "G": "2", "F": "/tmp/x.json",
                "FILE": "/tmp/x.json"}


def _quoted() -> dict[str, list[tuple[str, list[str]]]]:
    """Per bench script, ``(where, arguments)`` of every quoted command with a flag."""
    found: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for doc in DOCS:
        text = (REPO_ROOT / doc).read_text(encoding="utf-8")
        for m in re.finditer(r"bench/(\w+)\.py([^`]*)`", text, re.S):
            rest = re.split(r"\n\n|\s\.\.\. the same", m.group(2))[0]
            rest = re.split(r"[;()`]|\s#|\n[A-Za-z(]", rest)[0].replace("\\\n", " ")
            rest = rest.replace("...", " ").replace("[", " ").replace("]", " ")
            for word, value in PLACEHOLDERS.items():
                rest = re.sub(rf"(?<![\w/-]){word}(?![\w/-])", value, rest)
            args = shlex.split(rest)
            while args and args[-1].startswith("--") and doc_cut(args[-1]):
                args = args[:-1]  # a flag whose value the sentence left out
            if any(a.startswith("--") for a in args):
                line = text[:m.start()].count("\n") + 1
                found[m.group(1)].append((f"{doc}:{line}", args))
    return found


def doc_cut(flag: str) -> bool:
    return flag in {"--recipes", "--spaces", "--split"}


QUOTED = _quoted()


class _Parsed(Exception):
    """Raised in place of returning the parsed arguments: the script stops there."""


def test_the_docs_quote_bench_commands() -> None:
    assert sum(map(len, QUOTED.values())) > 50
    assert {"selection", "shipped", "full_size", "dev_size", "hedge"} <= set(QUOTED)


@pytest.mark.parametrize("stem", sorted(QUOTED))
def test_quoted_commands_parse(stem: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert (BENCH_DIR / f"{stem}.py").is_file(), f"the docs quote bench/{stem}.py"
    module = load_bench(stem)
    unknown: list[str] = []
    flags: set[str] = set()

    def parse_only(parser: argparse.ArgumentParser, args=None, namespace=None):  # noqa: ANN001, ANN202
        parser.allow_abbrev = False  # a quoted prefix of a renamed flag must not pass
        flags.update(parser._option_string_actions)  # noqa: SLF001  (what the parser accepts)
        _, extra = parser.parse_known_args(args, namespace)
        unknown.extend(extra)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    failures = []
    for where, args in QUOTED[stem]:
        unknown.clear()
        monkeypatch.setattr(sys, "argv", [f"{stem}.py", *args])
        try:
            module.main()
        except _Parsed:
            if unknown:
                failures.append(f"{where}: bench/{stem}.py {' '.join(args)}: unknown {unknown}")
        except SystemExit as done:
            err = capsys.readouterr().err.strip().splitlines()
            if err and "the following arguments are required" in err[-1]:
                # a fragment (`--dev-only`, `... --recipes FILE`) leaves them out: its flags
                # must still be the script's
                wrong = [a.split("=")[0] for a in args
                         if a.startswith("--") and a.split("=")[0] not in flags]
                if wrong:
                    failures.append(f"{where}: bench/{stem}.py: unknown {wrong}")
                continue
            failures.append(f"{where}: bench/{stem}.py {' '.join(args)}: exit {done.code} "
                            f"{err[-1] if err else ''}")
        else:
            failures.append(f"{where}: bench/{stem}.py never parsed its arguments")
    assert not failures, "\n".join(failures)


#: Where repository paths are named: the docs, the bench scripts, the package's own text.
PATH_SOURCES = ("README.md", "ARCHITECTURE.md", "docs/benchmarks.md", "cluster.yaml",
                "search_spaces/*.yaml", "bench/*.py", "automl_asd/**/*.py")
_REPO_PATH = re.compile(r"(?<![\w/.])((?:automl_asd|bench|docs|search_spaces|tests|tools)/"
                        r"[\w./-]*\w)")


def test_named_repository_paths_exist() -> None:
    """Found 2026-12-07: bench/draws.py named ``tests/test_bench_draws.py``, moved to
    ``tests/unit/synth/`` long before. A path with a placeholder (``<mt>``) is cut there;
    ``bench/draws.family_draws`` names a function of ``bench/draws.py``."""
    missing = []
    for pattern in PATH_SOURCES:
        for source in sorted(REPO_ROOT.glob(pattern)):
            text = source.read_text(encoding="utf-8")
            for m in _REPO_PATH.finditer(text):
                named = m.group(1)
                if not any((REPO_ROOT / p).exists()
                           for p in (named, re.sub(r"\.\w+$", ".py", named))):
                    line = text[:m.start()].count("\n") + 1
                    missing.append(f"{source.relative_to(REPO_ROOT)}:{line}: {named}")
    assert not missing, "\n".join(missing)


#: ``automl-asd CMD ...`` as quoted: up to a closing quote, a shell ``;``/``|``/``#``, a ``)``
#: or the end of the line (continued by a trailing ``\`` or by an indented ``--flag`` line).
_CLI_COMMAND = re.compile(r"automl-asd ([a-z]+)((?:[^`'\"\n;|)#]|\\\n|\n\s+(?=--))*)")


def _sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its sub-parsers here)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def test_quoted_cli_commands_use_existing_options() -> None:
    """Every ``--option`` of an ``automl-asd <command> ...`` quoted in the docs, the bench
    scripts and the package's own messages (``rerun with `automl-asd apply --resume` ``) is
    one that command has (``recipe`` without an action: any of its actions')."""
    from automl_asd.cli import _build_parser  # noqa: PLC0415  (builds every command's parser)

    commands = _sub_parsers(_build_parser())
    wrong, seen = [], 0
    for pattern in (*PATH_SOURCES, "demo.sh"):
        for source in sorted(REPO_ROOT.glob(pattern)):
            text = source.read_text(encoding="utf-8")
            for m in _CLI_COMMAND.finditer(text):
                if m.group(1) not in commands:  # prose: "automl-asd is ...", "automl-asd reads"
                    continue
                command, rest = commands[m.group(1)], m.group(2)
                actions = _sub_parsers(command)
                words = rest.split()
                parsers = ([actions[words[0]]] if words and words[0] in actions
                           else [command, *actions.values()])
                known = set().union(*(p._option_string_actions for p in parsers))  # noqa: SLF001
                seen += 1
                for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", rest):
                    if option not in known:
                        line = text[:m.start()].count("\n") + 1
                        wrong.append(f"{source.relative_to(REPO_ROOT)}:{line}: automl-asd "
                                     f"{m.group(1)} has no {option}")
    assert seen > 100
    assert not wrong, "\n".join(wrong)


def test_readme_names_existing_benchmark_sections() -> None:
    """README points into docs/benchmarks.md by title (`docs/benchmarks.md, "The main
    job"`): each title is the start of a heading or a bold paragraph title there."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    bench = (REPO_ROOT / "docs/benchmarks.md").read_text(encoding="utf-8")
    titles = [" ".join(t.split()) for t in
              re.findall(r"^#+ (.+)$", bench, re.M) + re.findall(r"\*\*([^*]+)\*\*", bench)]
    quoted = [" ".join(t.split())
              for t in re.findall(r'docs/benchmarks\.md[,;:]?\s*"([^"]+)"', readme)]
    assert len(quoted) >= 5
    missing = [q for q in quoted if not any(t.startswith(q) for t in titles)]
    assert not missing, missing
