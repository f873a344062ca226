"""``bench/ensemble_pick.py`` ranks its candidates by the objective it is given (it used to be
fixed to ``leave_one_type_out`` while the search's default became ``mean``)."""

from __future__ import annotations

import argparse
import sys

import pytest

from automl_asd.search.selection import OBJECTIVES, SelectionRule
from tests.fixtures.bench import BENCH_DIR, load_bench

pytestmark = pytest.mark.slow


_PARSE_ARGS = argparse.ArgumentParser.parse_args


class _Parsed(Exception):
    pass


def _args(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    seen: list[argparse.Namespace] = []

    def parse_only(parser: argparse.ArgumentParser, args=None, namespace=None):  # noqa: ANN001, ANN202
        seen.append(_PARSE_ARGS(parser, args, namespace))
        raise _Parsed

    module = load_bench("ensemble_pick")
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    monkeypatch.setattr(sys, "argv", ["ensemble_pick.py", "--work", "/tmp/x", *argv])
    with pytest.raises(_Parsed):
        module.main()
    return seen[0]


def test_objective_is_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    # The documented figures (docs/benchmarks.md) were ranked by leave_one_type_out.
    assert _args([], monkeypatch).objective == "leave_one_type_out"
    default = SelectionRule().objective
    assert default in OBJECTIVES
    assert _args(["--objective", default], monkeypatch).objective == default


def test_the_candidates_are_ranked_by_the_objective_given() -> None:
    rank = load_bench("ensemble_pick").rank
    # a: the better mean per type (0.70 vs 0.625); b: the better worst type (0.6 vs 0.5)
    cands = [{"order": 0, "behaviour_hash": "a", "aucs": {"fan": (0.9, 0.9, 0.9),
                                                           "pump": (0.5, 0.5, 0.5)}},
             {"order": 1, "behaviour_hash": "b", "aucs": {"fan": (0.65, 0.65, 0.65),
                                                           "pump": (0.6, 0.6, 0.6)}}]
    assert [c["behaviour_hash"] for c in rank(cands, "leave_one_type_out")] == ["a", "b"]
    assert [c["behaviour_hash"] for c in rank(cands, "worst_type")] == ["b", "a"]
