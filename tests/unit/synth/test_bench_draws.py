"""``bench/draws.py``: bench draws that hold whole machine families out of development."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from automl_asd import synth
from automl_asd.data import scan
from automl_asd.synth import FAMILIES, NAMED_FAMILY, family_of
from tests.fixtures.bench import load_bench


@pytest.fixture(scope="module")
def draws() -> ModuleType:
    return load_bench("draws")


@pytest.mark.parametrize(("holdout", "named", "seed0"),
                         [(2, False, 0), (2, True, 0), (1, False, 5), (3, True, 2)])
def test_held_out_families_are_absent_from_dev(draws: ModuleType, holdout: int, named: bool,
                                               seed0: int) -> None:
    for d in draws.family_draws(6, seed0=seed0, holdout=holdout, named=named):
        held = set(d.novel_families)
        assert len(held) == holdout and held <= set(FAMILIES)
        dev_fams = {family_of(t) for t in d.dev_types}
        novel_fams = {family_of(t) for t in d.novel_types}
        assert not dev_fams & held, (d.index, dev_fams & held)
        assert novel_fams == held  # every held-out family and nothing else is novel
        # every random family that is not held out is in development
        assert set(FAMILIES) - held <= dev_fams
        assert not set(d.dev_types) & set(d.novel_types)
        assert d.seed == seed0 + d.index
        named_dev = [t for t in d.dev_types if t in synth.MACHINE_TYPES]
        assert bool(named_dev) == named
        assert all(NAMED_FAMILY[t] not in held for t in named_dev)
        # 2 novel random types per held-out family, 1 dev random type per other family
        rnd_novel = Counter(family_of(t) for t in d.novel_types if t.startswith("rnd"))
        assert rnd_novel == {f: 2 for f in held}
        assert len([t for t in d.dev_types if t.startswith("rnd")]) == len(FAMILIES) - holdout


def test_families_rotate_and_draws_are_deterministic(draws: ModuleType) -> None:
    four = draws.family_draws(4)
    held = [f for d in four for f in d.novel_families]
    assert sorted(held) == sorted(FAMILIES)  # every family novel exactly once
    assert four == draws.family_draws(4)
    assert [d.novel_families for d in four] != [d.novel_families
                                                for d in draws.family_draws(4, seed0=1)]
    # same name under another seed is another machine: draw seeds differ
    assert len({d.seed for d in four}) == 4
    with pytest.raises(ValueError, match="holdout"):
        draws.family_draws(1, holdout=len(FAMILIES))


def test_make_data_writes_no_held_out_family_into_dev(draws: ModuleType, tmp_path: Path) -> None:
    full = draws.family_draws(1, seed0=3)[0]
    # a cut-down draw (one type per side) keeps the test fast; same construction otherwise
    d = draws.Draw(index=0, seed=full.seed, novel_families=full.novel_families,
                   dev_types=full.dev_types[:1], novel_types=full.novel_types[:1])
    dev_root, novel_root = draws.make_data(d, tmp_path, size="tiny")
    dev_info = json.loads((dev_root / synth.INFO_FILE).read_text())["types"]
    novel_info = json.loads((novel_root / synth.INFO_FILE).read_text())["types"]
    assert set(scan(dev_root)) == set(dev_info) == set(d.dev_types)
    assert set(scan(novel_root)) == set(novel_info) == set(d.novel_types)
    assert not {v["family"] for v in dev_info.values()} & set(d.novel_families)
    assert {v["family"] for v in novel_info.values()} <= set(d.novel_families)
    assert all(v["seed"] == d.seed for v in {**dev_info, **novel_info}.values())


def test_draw_options_parse_to_the_same_draws(draws: ModuleType, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    draws.add_draw_args(parser, draws=4)
    args = parser.parse_args(["--seed0", "3", "--holdout", "1", "--novel-per-family", "1",
                              "--named", "--size", "tiny", "--work", str(tmp_path)])
    assert (args.draws, args.size, args.work) == (4, "tiny", tmp_path)
    assert draws.draws_from_args(args) == draws.family_draws(
        4, seed0=3, holdout=1, novel_per_family=1, named=True)
    with pytest.raises(SystemExit):  # --work is required unless the bench says otherwise
        parser.parse_args([])
    with pytest.raises(SystemExit):
        parser.parse_args(["--work", str(tmp_path), "--size", "huge"])
    optional = argparse.ArgumentParser()
    draws.add_draw_args(optional, work_required=False)
    assert optional.parse_args([]).work is None
    assert optional.parse_args([]).draws == 6
    # the candidate benches' options: --draw-ids keeps only those draws, in draw order
    cand = argparse.ArgumentParser()
    draws.add_draw_args(cand, draws=16)
    draws.add_candidate_args(cand)
    args = cand.parse_args(["--work", str(tmp_path), "--draw-ids", "9", "2"])
    assert (args.space, args.candidates, args.workers, args.json) == ("demo", 12, 2, None)
    assert [d.index for d in draws.draws_from_args(args)] == [2, 9]
    assert draws.draws_from_args(args)[1] == draws.family_draws(16)[9]
    assert len(draws.draws_from_args(cand.parse_args(["--work", str(tmp_path)]))) == 16


def test_make_novel_writes_the_novel_tree_of_make_data_alone(draws: ModuleType,
                                                              tmp_path: Path) -> None:
    full = draws.family_draws(1, seed0=2)[0]
    d = draws.Draw(index=0, seed=full.seed, novel_families=full.novel_families,
                   dev_types=full.dev_types[:1], novel_types=full.novel_types[:1])
    alone = draws.make_novel(d, tmp_path / "a", size="tiny")
    assert alone == tmp_path / "a" / "draw0" / "novel"
    assert not (tmp_path / "a" / "draw0" / "dev").exists()
    _, novel = draws.make_data(d, tmp_path / "b", size="tiny")
    files = sorted(p.relative_to(novel) for p in novel.rglob("*.wav"))
    assert files and files == sorted(p.relative_to(alone) for p in alone.rglob("*.wav"))
    assert all((alone / f).read_bytes() == (novel / f).read_bytes() for f in files[::7])


def test_candidate_scores_are_stored_and_reused(draws: ModuleType, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_asd.recipe import load_recipe

    class Metrics:
        auc_source, auc_target, pauc = 0.7, 0.6, 0.55

    class Result:
        def __init__(self, omega: float) -> None:
            self.omega = omega
            self.per_type = {("pump", "00"): Metrics()}
            self.per_clip = {("pump", "00"): (np.array([0, 1]), np.array(["source", "target"]),
                                              np.array([0.25, 2.5]))}

    calls: list[float] = []

    def fake(recipe: object, machines: str, **_: object) -> Result:
        calls.append(1.0)
        return Result(0.61 if machines == "dev" else 0.52)

    monkeypatch.setattr(draws, "evaluate_recipe", fake)
    recipe = load_recipe("fast_default")
    first = draws.candidate_scores(recipe, "dev", "novel", tmp_path / "cache", tmp_path / "s")
    assert len(calls) == 2 and (first["dev_omega"], first["novel_omega"]) == (0.61, 0.52)
    again = draws.candidate_scores(recipe, "dev", "novel", tmp_path / "cache", tmp_path / "s")
    assert len(calls) == 2  # read back, not re-evaluated
    assert again["aucs"] == first["aucs"] == {"pump/00": (0.7, 0.6, 0.55)}
    y, dom, s = again["clips"]["pump/00"]
    assert y.tolist() == [0, 1] and dom.tolist() == ["source", "target"]
    assert s.tolist() == [0.25, 2.5]
    assert (again["dev_omega"], again["novel_omega"]) == (0.61, 0.52)
    # The novel side's per-clip scores are kept beside the table (bench/selection.py's
    # ranking reliability); a table stored without them reads back as None.
    novel = draws.novel_clips(recipe, tmp_path / "s")
    assert list(novel) == ["pump/00"]
    assert [a.tolist() for a in novel["pump/00"]] == [[0, 1], ["source", "target"], [0.25, 2.5]]
    assert draws.novel_clips(load_recipe("margin_knn"), tmp_path / "s") is None
    # A shipped recipe's Ω alone, kept the same way (bench/selection.py and full_size.py).
    assert draws.stored_omega(recipe, "novel", tmp_path / "cache", tmp_path / "sh") == 0.52
    assert draws.stored_omega(recipe, "dev", tmp_path / "cache", tmp_path / "sh") == 0.52
    assert len(calls) == 3  # read back: a store holds one data set, keyed by recipe alone
    kept = draws.novel_clips(recipe, tmp_path / "sh")  # its per-clip scores beside it
    assert [a.tolist() for a in kept["pump/00"]] == [[0, 1], ["source", "target"], [0.25, 2.5]]
    # Lazy machines (a DCASE-size tree): built once, on the first Ω not stored, never for a
    # read-back, so the benches re-read their stored Ω with no tree on disk.
    built: list[str] = []
    lazy = draws.Lazy(lambda: built.append("tree") or "novel")
    assert draws.stored_omega(recipe, lazy, tmp_path / "cache", tmp_path / "sh") == 0.52
    assert built == [] and len(calls) == 3
    other = load_recipe("margin_knn")
    assert draws.stored_omega(other, lazy, tmp_path / "cache", tmp_path / "sh") == 0.52
    assert draws.stored_omega(load_recipe("searched_pooled_logz"), lazy, tmp_path / "cache",
                              tmp_path / "sh") == 0.52
    assert built == ["tree"] and len(calls) == 5  # two misses scored, one tree built
    # Its build time is kept apart (bench/dev_size.py counts it as data, not scoring).
    slow = draws.Lazy(lambda: time.sleep(0.05) or "tree")
    assert slow.seconds == 0.0
    assert slow() == "tree" and slow() == "tree"
    assert 0.05 <= slow.seconds < 5.0


def test_dev_scores_store_the_development_table_alone(draws: ModuleType, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/dev_size.py: the development side only, stored like candidate_scores' tables."""
    from automl_asd.recipe import load_recipe

    class Metrics:
        auc_source, auc_target, pauc = 0.8, 0.7, 0.6

    class Result:
        omega = 0.66
        per_type = {("rndfan00", "00"): Metrics()}
        per_clip = {("rndfan00", "00"): (np.array([1, 0, 0]), np.array(["target"] * 3),
                                         np.array([3.0, 1.0, -1.5]))}

    seen: list[object] = []

    def fake(recipe: object, machines: object, **_: object) -> Result:
        seen.append(machines)
        return Result()

    monkeypatch.setattr(draws, "evaluate_recipe", fake)
    recipe = load_recipe("fast_default")
    first = draws.dev_scores(recipe, "bigdev", tmp_path / "cache", tmp_path / "s")
    assert seen == ["bigdev"] and first["dev_omega"] == 0.66 and "novel_omega" not in first
    key = recipe.content_hash()[:16]
    assert (tmp_path / "s" / f"{key}.json").is_file() and (tmp_path / "s" / f"{key}.npz").is_file()
    # read back without the data: a re-run of the bench needs no development tree
    again = draws.dev_scores(recipe, None, tmp_path / "cache", tmp_path / "s")
    assert seen == ["bigdev"]
    assert again["aucs"] == {"rndfan00/00": (0.8, 0.7, 0.6)} and again["dev_omega"] == 0.66
    y, dom, s = again["clips"]["rndfan00/00"]
    assert y.tolist() == [1, 0, 0] and dom.tolist() == ["target"] * 3
    assert s.tolist() == [3.0, 1.0, -1.5]


def test_candidate_recipes_are_named_and_drawn_alike_for_every_bench(draws: ModuleType,
                                                                     tmp_path: Path) -> None:
    """Every selection bench builds its candidates here: same names, same content hashes, so
    each finds the others' stored tables (``has_table``)."""
    from automl_asd.search.space import load_space

    space = load_space("demo")
    first = draws.candidate_recipes(space, 3, 3, 4)
    assert [r.name for r in first] == [f"draw3_cand{i}" for i in range(5)]
    assert first[0].content_hash() == space.to_recipe(space.reference_point(),
                                                      name="draw3_cand0").content_hash()
    again = draws.candidate_recipes(space, 3, 3, 6)  # more candidates: the first ones unchanged
    assert [r.content_hash() for r in again[:5]] == [r.content_hash() for r in first]
    other = draws.candidate_recipes(space, 3, 4, 4)  # another seed draws other points
    assert [r.content_hash() for r in other[1:]] != [r.content_hash() for r in first[1:]]
    assert len({r.content_hash() for r in first}) == 5
    store = tmp_path / "s"
    assert not draws.has_table(first[1], store)
    key = first[1].content_hash()[:16]
    store.mkdir()
    (store / f"{key}.json").write_text("{}")
    assert not draws.has_table(first[1], store)  # the .npz is missing: not readable
    (store / f"{key}.npz").write_bytes(b"")
    assert draws.has_table(first[1], store) and not draws.has_table(first[2], store)


def test_spearman(draws: ModuleType) -> None:
    assert draws.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert draws.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert draws.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)  # 1 - 6*2/(3*8)
    assert np.isnan(draws.spearman([1, 1, 1], [1, 2, 3]))


def _bench_clips(seed: int, sep: float, noise_of: dict[str, Any] | None = None,
                 jitter: float = 0.0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out = {}
    for t in ("a", "b"):
        y = np.array([0] * 20 + [1] * 20 + [0] * 20 + [1] * 20)
        dom = np.array(["source"] * 40 + ["target"] * 40)
        base = (noise_of[t][2] if noise_of is not None
                else np.where(y == 1, sep, 0.0) + rng.normal(0, 0.5, len(y)))
        out[t] = (y, dom, base + rng.normal(0, jitter, len(y)) if jitter else base)
    return out


def test_rule_picks_count_near_ties_and_split_regret(draws: ModuleType) -> None:
    from automl_asd.search.selection import _aucs_of

    strong = _bench_clips(10, 0.8)
    cands = []
    for i, clips in enumerate([strong, _bench_clips(104, 0, strong, 0.2), _bench_clips(3, 0.1)]):
        cands.append({"trial_id": f"c{i}", "order": i, "clips": clips,
                      "aucs": _aucs_of(clips), "novel_omega": 0.6 - 0.01 * i})
    picks = draws.rule_picks(cands, 0, n_boot=200)
    chosen, objectives, ties = picks["mean/best"]
    assert chosen["trial_id"] == "c0" and len(objectives) == 3
    assert ties == 1  # the noisy copy of the chosen scores is a near tie; the weak one is not
    line = draws.ties_line("mean/best", [(1, 0.05), (2, 0.03), (0, 0.01), (None, 0.2)])
    assert "with near ties 2 draws, regret 0.0400 (max 0.0500)" in line
    assert "without 1 draws, regret 0.0100 (max 0.0100)" in line
    assert "1 draws recorded before the count" in line


def test_ceiling_line_compares_each_draws_rho_with_its_own_ceiling(draws: ModuleType) -> None:
    """Per draw sqrt(r_dev * r_novel), r = 1 - noise / total clipped at 0; draws whose novel
    side is unknown (NaN) are left out of every figure."""
    dev = [(1.0, 0.19), (1.0, 0.36), (2.0, 0.0), (1.0, 0.0)]
    novel = [(1.0, 0.0), (1.0, 0.0), (1.0, 1.5), (math.nan, math.nan)]
    # ceilings 0.9, 0.8, 0 (novel noise above its spread: reliability clipped to 0), unknown
    line = draws.ceiling_line(dev, novel, [0.95, 0.5, 0.2, 0.99])
    assert line == ("ceiling on ρ per draw: mean 0.567 (0.00..0.90), ρ mean 0.550 "
                    "(0.20..0.95), ρ above it on 2 of 3 draws; Spearman (ceiling, ρ) over the "
                    "draws 1.00")
    assert "n/a" in draws.ceiling_line(dev[3:], novel[3:], [0.5])
