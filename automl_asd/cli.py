"""Command line: a small table of sub-commands, each in ``automl_asd/commands/<name>.py``.

Every command module defines ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``.
This module only parses arguments and configures logging; the work is in library functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any

from automl_asd._version import __version__
from automl_asd.commands.args import check_numbers
from automl_asd.errors import AutomlAsdError, UsageError, one_line

__all__ = ["main", "COMMANDS"]

#: sub-command name -> module under ``automl_asd.commands`` (kept in the order shown by --help).
COMMANDS: dict[str, str] = {
    "info": "info",
    "synth": "synth",
    "evaluate": "evaluate",
    "summarize": "summarize",
    "recipe": "recipe",
    "apply": "apply",
    "search": "search",
    "score": "score",
    "download": "download",
    "demo": "demo",
    "cache": "cache",
    "doctor": "doctor",
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that help, version and usage text that cannot be written
    raise (argparse drops the error, and ``--help > /dev/full`` exited 0); its sub-parsers are
    of this class too."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (file or sys.stderr).write(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="automl-asd",
        description="AutoML for first-shot anomalous sound detection (DCASE Task 2).",
    )
    parser.add_argument("--version", action="version", version=f"automl-asd {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"automl_asd.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _interrupted=getattr(module, "interrupted", None))
        _add_log_options(p, depth=1)
    return parser


def _add_log_options(parser: argparse.ArgumentParser, depth: int) -> None:
    """``-v``/``-q`` after the sub-command too (``automl-asd apply ... -v``, ``automl-asd
    recipe list -v``), each level into its own ``_verbose_<depth>`` / ``_quiet_<depth>``
    (argparse copies a sub-parser's values over its parent's): :func:`_log_level_args` adds
    them up. SUPPRESS: a level where none is given sets nothing."""
    parser.add_argument("-v", "--verbose", action="count", dest=f"_verbose_{depth}",
                        default=argparse.SUPPRESS, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", dest=f"_quiet_{depth}",
                        default=argparse.SUPPRESS, help="only warnings and errors")
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its sub-parsers here)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in action.choices.values():
                _add_log_options(child, depth + 1)


def _innermost(parser: argparse.ArgumentParser,
               args: argparse.Namespace) -> argparse.ArgumentParser:
    """The sub-command's parser ``args`` came through, at the deepest level (``recipe
    list``'s, not ``recipe``'s or the top level's)."""
    while True:
        chosen = None
        for action in parser._actions:  # noqa: SLF001  (argparse keeps its sub-parsers here)
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                chosen = action.choices.get(getattr(args, action.dest or "", None) or "")
        if chosen is None:
            return parser
        parser = chosen


def _log_level_args(args: argparse.Namespace) -> None:
    """``args.verbose``: every ``-v`` wherever given; ``args.quiet``: any ``-q``."""
    extra = vars(args)
    args.verbose = int(args.verbose) + sum(int(v) for k, v in extra.items()
                                           if k.startswith("_verbose_"))
    args.quiet = bool(args.quiet) or any(bool(v) for k, v in extra.items()
                                         if k.startswith("_quiet_"))


def main(argv: Sequence[str] | None = None) -> int:
    _printable_everywhere()
    try:
        status = _main(argv)
    except SystemExit as exc:  # argparse's --help and --version print, then exit 0
        if exc.code not in (0, None):
            raise
        status = 0
    except OSError as exc:  # --help or --version could not be written
        return _unwritten(exc)
    return _flushed(status)


def _printable_everywhere() -> None:
    """Write characters the console's encoding lacks (Ω, a non-ASCII path) as escapes
    instead of failing: with an ASCII or Latin-1 stdout (``PYTHONIOENCODING=ascii``, a
    ``de_DE.ISO-8859-1`` locale) a finished ``apply`` ended on "'ascii' codec can't encode
    character '\\u03a9'" at its last line (found 2026-12-07)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # absent on a replaced stream
        if reconfigure is not None and stream.errors == "strict":
            reconfigure(errors="backslashreplace")


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the usage of the (sub-)command they were given to, not the top level's
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    # NaN/inf anywhere, and the shared ranges: exit 2 at once, with the usage of the
    # sub-command given (the top level's named no option of `search --trials 0`)
    check_numbers(_innermost(parser, args), args)
    _log_level_args(args)
    if args.verbose and args.quiet:  # found 2026-12-07: -q won silently
        parser.error("-v/--verbose and -q/--quiet cannot be used together")
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2

    previous = _interrupt_on_sigterm()
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print(_interrupted_line(args), file=sys.stderr)
        return 130
    except (AutomlAsdError, ValueError, KeyError, OSError, RecursionError, MemoryError) as exc:
        # Library errors carry a message naming the file/field and the fix; OS errors name
        # their path; no traceback for any expected error (-v shows it). Options that cannot
        # run together (UsageError) get argparse's usage status.
        if isinstance(exc, BrokenPipeError) and _stdout_gone():
            return _SIGPIPE_STATUS  # `automl-asd recipe list | head -1`: quiet, as `ls` is
        if args.verbose:
            # the traceback here, then the same line and status as without -v (found
            # 2026-12-07: re-raised, an OSError such as a full disk reached main()'s handler
            # for unwritable --help output: "cannot write the output", and no traceback)
            traceback.print_exc()
        print(f"{_innermost(parser, args).prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupted_line(args: argparse.Namespace) -> str:
    """The last line of an interrupted command: ``interrupted``, and what it kept and how to go
    on where the command says (its module's ``interrupted(args) -> str``). Found 2026-12-08 by
    interrupting each command: `apply`, `synth`, `download` and a `search` stopped outside its
    trials ended on a bare "interrupted", leaving the way on (--resume or not) to a guess."""
    hint = getattr(args, "_interrupted", None)
    try:
        return f"interrupted: {hint(args)}" if hint is not None else "interrupted"
    except Exception:  # noqa: BLE001  (a hint that cannot be made must not hide the interrupt)
        return "interrupted"


#: what a shell reports for a command that a closed pipe ended (128 + SIGPIPE)
_SIGPIPE_STATUS = 141


def _flushed(status: int) -> int:
    """``status``, once what the command printed has reached standard output. Found
    2026-12-07: ``automl-asd --help > /dev/full`` exited 0, its output lost (the text waited in
    Python's buffer, and the interpreter's flush at exit failed unseen); now a full disk says
    so in one line and exits 1, and a reader that closed the pipe gives 141, as above."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        return _unwritten(exc)
    return status


def _unwritten(exc: OSError) -> int:
    """The status for output that could not be written: 141, quietly, for a reader that closed
    the pipe; else one line and 1."""
    if isinstance(exc, BrokenPipeError) and _stdout_gone():
        return _SIGPIPE_STATUS
    _stdout_to_devnull()  # what could not be written would fail again at exit
    print(f"automl-asd: error: cannot write the output: {one_line(exc)}", file=sys.stderr)
    return 1


def _stdout_gone() -> bool:
    """Whether standard output is a pipe its reader closed (not some other broken pipe, e.g. a
    socket); if so it is pointed at ``/dev/null``, so that the interpreter's own flush at exit
    does not fail once more."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if not any(events & select.POLLERR for _, events in poller.poll(0)):
            return False
    except (OSError, ValueError, AttributeError):  # no real file (captured), or no poll()
        return False
    _stdout_to_devnull()
    return True


def _stdout_to_devnull() -> None:
    """Point standard output's file at ``/dev/null`` and drop what waits in its buffer."""
    try:
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _interrupt_on_sigterm() -> Any:
    """Make SIGTERM (``kill``, a batch scheduler's stop) interrupt the command like Ctrl-C, so
    its clean-up runs (unfinished cache entries, temporary files, Ray shut down) instead of the
    process vanishing mid-write. Only where SIGTERM still has its default action and in the main
    thread; returns the handler to put back (``None``: nothing changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
