"""bench/dev_size.py's reliability: the development reliability at both sizes from the
candidates' stored per-clip scores (``--dev-only`` never touches the novel side), and without
``--dev-only`` the novel side's and the ceiling on ρ."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from automl_asd.search.selection import pooled_reliability, ranking_variances, section_aucs
from tests.fixtures.bench import load_bench
from tests.fixtures.scoring import gaussian_section


@pytest.fixture(scope="module")
def dev_size() -> ModuleType:
    return load_bench("dev_size")


class _Cand(str):
    """A candidate recipe as the bench's stores key it: by its content hash."""

    def content_hash(self) -> str:
        return self.ljust(16, "0")


def _table(rng: np.random.Generator, sep: float, n: int) -> dict[str, Any]:
    clips = {"pump/00": gaussian_section(rng, sep, n), "fan/00": gaussian_section(rng, sep, n)}
    return {"dev_omega": sep, "clips": clips,
            "aucs": {k: section_aucs(*arrs) for k, arrs in clips.items()}}


def _tables(rng: np.random.Generator, seps: list[float], n: int) -> dict[_Cand, dict[str, Any]]:
    return {_Cand(f"r{i}"): _table(rng, s, n) for i, s in enumerate(seps)}


def _run_draw(dev_size: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              small: dict[_Cand, dict[str, Any]], big: dict[_Cand, dict[str, Any]], *,
              dev_only: bool, stored: bool, make_novel: Callable[..., Any],
              stored_omega: Callable[..., Any]) -> tuple[dict[str, Any], argparse.Namespace]:
    """``dev_size._draw`` on draw 0 with the candidates' tables given (small and big
    development side) and no data or scoring of its own; ``stored``: whether the big side's
    tables are already stored (else its tree is "rendered")."""
    monkeypatch.setattr(dev_size, "make_data", lambda *a, **k: (tmp_path / "sd", tmp_path / "sn"))
    monkeypatch.setattr(dev_size, "make_novel", make_novel)
    monkeypatch.setattr(dev_size, "stored_omega", stored_omega)
    monkeypatch.setattr(dev_size, "load_space", lambda name: name)
    monkeypatch.setattr(dev_size, "candidate_recipes", lambda *a: list(small))
    monkeypatch.setattr(dev_size, "has_table", lambda r, store: stored)
    monkeypatch.setattr(dev_size, "scan", lambda root: root)
    monkeypatch.setattr(dev_size, "candidate_scores", lambda r, *a: small[r])
    monkeypatch.setattr(dev_size, "dev_scores", lambda r, *a: big[r])
    draw = dev_size.draws_from_args(argparse.Namespace(
        draws=1, seed0=0, holdout=2, novel_per_family=2, named=False, draw_ids=None))[0]
    args = argparse.Namespace(work=tmp_path, full_work=tmp_path / "full",
                              dev_work=tmp_path / "dev", size="small", dev_size="full",
                              novel_size="full", space="demo", candidates=3, workers=1,
                              keep=not dev_only, dev_only=dev_only)
    return dev_size._draw(draw, args), args


def test_dev_only_scores_both_development_sides_and_never_the_novel_one(
        dev_size: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    seps = [0.0, 0.4, 0.8, 1.2]
    # small side: few test clips; big side: many, so its ranking is the more reliable one
    small, big = _tables(rng, seps, 8), _tables(rng, seps, 80)
    rendered: list[Path] = []

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("--dev-only must not touch the novel side")

    monkeypatch.setattr(dev_size.synth, "generate", lambda root, **k: rendered.append(root))
    out, args = _run_draw(dev_size, monkeypatch, tmp_path, small, big, dev_only=True,
                          stored=False, make_novel=forbidden, stored_omega=forbidden)
    assert rendered == [tmp_path / "dev" / "draw0" / "dev"]  # the big development tree only
    for side, tables in (("small", small), ("big", big)):
        want = ranking_variances("mean", {f"c{i}": t["clips"]
                                          for i, t in enumerate(tables.values())})
        assert out["variances"][side] == pytest.approx(want)
    assert out["rho_dev_small_big"] == pytest.approx(1.0)  # same order of dev Ω on both sides
    assert "rules" not in out
    rel = {side: pooled_reliability([out["variances"][side]]) for side in ("small", "big")}
    assert rel["big"] > rel["small"]  # ten times the test clips rank the candidates better
    # The summary pools the draws as sums of variances, per side.
    other = {"variances": {"small": (1.0, 2.0), "big": (3.0, 0.3)}}
    dev_size._reliability_lines([out, other], args)
    text = capsys.readouterr().out
    pooled_big = pooled_reliability([out["variances"]["big"], (3.0, 0.3)])
    assert f"reliability, development at full: pooled over 2 draws {pooled_big:.3f}" in text
    assert not math.isnan(pooled_big)


def test_full_mode_adds_the_novel_reliability_and_the_ceiling_on_rho(
        dev_size: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --dev-only the novel side's per-clip scores (kept beside each stored Ω) give its
    reliability, and the summary prints sqrt(dev × novel) for each development size."""
    rng = np.random.default_rng(1)
    seps = [0.0, 0.5, 1.0, 1.5]
    small, big = _tables(rng, seps, 8), _tables(rng, seps, 80)
    novel = {r: t["clips"] for r, t in _tables(rng, seps, 40).items()}
    store = tmp_path / "full" / "draw0" / "candidates"  # where stored_omega keeps them
    write_clips = load_bench("draws")._write_clips
    for r, clips in novel.items():
        write_clips(clips, store / f"{r.content_hash()}.novel.npz")
    out, args = _run_draw(dev_size, monkeypatch, tmp_path, small, big, dev_only=False,
                          stored=True, make_novel=lambda *a, **k: tmp_path / "bn",
                          stored_omega=lambda r, *a: 0.6 + 0.1 * seps[int(r[1:])])
    want = ranking_variances("mean", {f"c{i}": c for i, c in enumerate(novel.values())})
    assert out["variances"]["novel"] == pytest.approx(want)
    assert out["rules"]["big"]["mean/best"]["rho"] == pytest.approx(1.0)
    dev_size._reliability_lines([out], args)
    text = capsys.readouterr().out
    r = {side: pooled_reliability([out["variances"][side]]) for side in ("small", "big", "novel")}
    assert f"reliability, novel at full: pooled over 1 draws {r['novel']:.3f}" in text
    assert (f"development at small {math.sqrt(r['small'] * r['novel']):.3f}, at full "
            f"{math.sqrt(r['big'] * r['novel']):.3f}") in text
    # and per draw, each development size's ρ against its own ceiling (one draw here)
    ceil_big = math.sqrt(r["big"] * r["novel"])
    assert (f"development at full, ceiling on ρ per draw: mean {ceil_big:.3f} "
            f"({ceil_big:.2f}..{ceil_big:.2f}), ρ mean 1.000 (1.00..1.00), ρ above it on "
            f"{int(ceil_big < 1)} of 1 draws") in text
    # A candidate whose novel per-clip scores were never kept: the novel side is unknown.
    (store / f"{_Cand('r0').content_hash()}.novel.npz").unlink()
    again, _ = _run_draw(dev_size, monkeypatch, tmp_path, small, big, dev_only=False,
                         stored=True, make_novel=lambda *a, **k: tmp_path / "bn",
                         stored_omega=lambda r, *a: 0.6)
    assert all(math.isnan(x) for x in again["variances"]["novel"])
