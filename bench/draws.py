"""Bench draws that hold whole machine FAMILIES out of development (shared by the benches).

A draw is a generator seed, a set of held-out families and the machine types built from them:

* development types: random types (``synth --random-types``) of every family that is NOT held
  out (``dev_per_family`` each), plus, with ``named=True``, the named synthetic types whose
  family is not held out;
* novel types: random types of the held-out families only (``novel_per_family`` each), plus,
  with ``named=True``, the named types of the held-out families.

The held-out families rotate: a seed-dependent permutation of the eight families is cut into
consecutive blocks of ``holdout``, draw ``d`` holds out block ``d`` (wrapping), so with 4 draws
of 2 families every family is novel exactly once. Each draw has its own seed, so even a family
that is in development in two draws gives different machines in each.

No machine of a held-out family is ever in the draw's development set: that is what
``tests/unit/synth/test_bench_draws.py`` checks.

Usage (from another bench)::

    from draws import family_draws, make_data
    for draw in family_draws(4):
        dev_root, novel_root = make_data(draw, work, size="small")
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd import synth
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.search.budget import random_points
from automl_asd.search.selection import (
    NEAR_TIE,
    OBJECTIVES,
    PICKS,
    SelectionRule,
    bootstrap_table,
    near_ties,
    objective_value,
    pick_margins,
    pick_trial,
    pooled_reliability,
    ranking_variances,
)
from automl_asd.synth import FAMILIES, NAMED_FAMILY, family_of, random_type_names

__all__ = ["Draw", "Lazy", "add_candidate_args", "add_draw_args", "candidate_recipes",
           "candidate_scores", "ceiling_line", "dev_scores", "dev_variances", "draws_from_args",
           "family_draws", "gain_tag", "has_table", "make_data", "make_novel", "novel_clips",
           "novel_variances", "read_table", "rule_name", "rule_picks", "spearman", "stored_omega",
           "ties_line"]


@dataclass(frozen=True)
class Draw:
    """One bench draw: seed, held-out families, development and novel machine types."""

    index: int
    seed: int
    novel_families: tuple[str, ...]
    dev_types: tuple[str, ...]
    novel_types: tuple[str, ...]

    def describe(self) -> str:
        """One line: seed, held-out families and the type lists."""
        return (f"draw {self.index}: seed {self.seed}, held-out families "
                f"{'+'.join(self.novel_families)}; dev {', '.join(self.dev_types)}; novel "
                f"{', '.join(self.novel_types)}")


def _names_by_family(per_family: int, seed: int) -> dict[str, list[str]]:
    """``per_family`` random type names of every family under ``seed`` (generator order)."""
    out: dict[str, list[str]] = {f: [] for f in FAMILIES}
    for name in random_type_names(per_family * len(FAMILIES), seed):
        fam = family_of(name)
        assert fam is not None  # random names always carry their family
        out[fam].append(name)
    return out


def family_draws(n_draws: int, *, seed0: int = 0, holdout: int = 2, dev_per_family: int = 1,
                 novel_per_family: int = 2, named: bool = False) -> list[Draw]:
    """``n_draws`` draws; draw ``d`` has seed ``seed0 + d`` and holds out ``holdout`` families.

    Raises:
        ValueError: ``holdout`` not in ``1 .. len(FAMILIES) - 1`` or a per-family count < 1.
    """
    codes = sorted(FAMILIES)
    if not 1 <= holdout < len(codes):
        raise ValueError(f"holdout must be in 1..{len(codes) - 1} families, got {holdout}")
    if dev_per_family < 1 or novel_per_family < 1:
        raise ValueError("dev_per_family and novel_per_family must be >= 1")
    order = [codes[int(i)] for i in np.random.default_rng(seed0).permutation(len(codes))]
    draws = []
    for d in range(n_draws):
        seed = seed0 + d
        held = tuple(sorted(order[(d * holdout + j) % len(order)] for j in range(holdout)))
        names = _names_by_family(max(dev_per_family, novel_per_family), seed)
        dev = [n for f in codes if f not in held for n in names[f][:dev_per_family]]
        novel = [n for f in held for n in names[f][:novel_per_family]]
        if named:
            dev += [t for t in synth.MACHINE_TYPES if NAMED_FAMILY[t] not in held]
            novel += [t for t in synth.MACHINE_TYPES if NAMED_FAMILY[t] in held]
        draws.append(Draw(index=d, seed=seed, novel_families=held,
                          dev_types=tuple(sorted(dev)), novel_types=tuple(sorted(novel))))
    return draws


def gain_tag(anomaly_gain: float) -> str:
    """How the benches name what they store for an anomaly gain (``gain2``, ``gain1.5``), so
    trees and stored scores of different gains never mix; ``""`` for the default gain 1,
    whose data keeps the names it always had."""
    return "" if anomaly_gain == 1.0 else f"gain{anomaly_gain:g}"


def make_data(draw: Draw, work: Path, *, size: str = "small", workers: int = 1,
              anomaly_gain: float = 1.0) -> tuple[Path, Path]:
    """Generate (or reuse) the draw's ``<work>/draw<d>/{dev,novel}`` trees; return both roots.

    Novel types use the draw's seed too: a random type's bytes depend only on (seed, name), and
    the novel names are disjoint from the development names. ``anomaly_gain`` renders both
    trees' anomalies that much stronger (the development tree in place: give such a run its
    own ``work``, as ``bench/selection.py --anomaly-gain`` does).
    """
    dev_root = work / f"draw{draw.index}" / "dev"
    synth.generate(dev_root, machine_types=list(draw.dev_types), size=size, seed=draw.seed,
                   workers=workers, anomaly_gain=anomaly_gain)
    return dev_root, make_novel(draw, work, size=size, workers=workers,
                                anomaly_gain=anomaly_gain)


def make_novel(draw: Draw, work: Path, *, size: str = "small", workers: int = 1,
               anomaly_gain: float = 1.0) -> Path:
    """Only the draw's novel tree ``<work>/draw<d>/novel`` (generated or reused): the same
    machines as :func:`make_data`'s novel types at any ``size``. With ``anomaly_gain`` other
    than 1 (faults louder or quieter, ``synth.generate``), ``<work>/draw<d>/novel_gain<G>``:
    the same machines and normal clips, the anomalies scaled."""
    tag = gain_tag(anomaly_gain)
    sub = f"novel_{tag}" if tag else "novel"
    novel_root = work / f"draw{draw.index}" / sub
    synth.generate(novel_root, machine_types=list(draw.novel_types), size=size,
                   seed=draw.seed, workers=workers, anomaly_gain=anomaly_gain)
    return novel_root


def _read_table(meta_path: Path, clips_path: Path) -> dict[str, Any] | None:
    """A stored candidate table (``aucs``, ``clips`` and the stored Ω fields), or None."""
    if not (meta_path.is_file() and clips_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    clips = _read_clips(clips_path, meta["aucs"])
    return {**meta, "aucs": {k: tuple(v) for k, v in meta["aucs"].items()}, "clips": clips}


def _read_clips(path: Path, keys: Any = None) -> dict[str, tuple[NDArray[Any], ...]]:
    """Per section key, (labels, domains, scores) as :func:`_write_clips` stored them; the
    ``keys`` given, else every key in the file."""
    with np.load(path, allow_pickle=False) as npz:
        if keys is None:
            keys = sorted({k.rsplit("|", 1)[0] for k in npz.files})
        return {k: (npz[f"{k}|y"], npz[f"{k}|d"], npz[f"{k}|s"]) for k in keys}


def _dev_table(recipe: Any, dev: Any, cache: Path) -> dict[str, Any]:
    """Per-section AUCs, per-clip scores and Ω of ``recipe`` on the development types."""
    d = evaluate_recipe(recipe, dev, cache_dir=cache, device="cpu")
    # (machine type, section) keys as "<mt>/<section>" strings: JSON and .npz names
    return {"aucs": {"/".join(k): (m.auc_source, m.auc_target, m.pauc)
                     for k, m in d.per_type.items()},
            "clips": _keyed_clips(d),
            "dev_omega": d.omega}


def _keyed_clips(result: Any) -> dict[str, Any]:
    """An evaluation's per-clip (labels, domains, scores) keyed ``"<mt>/<section>"`` (JSON and
    .npz names)."""
    return {"/".join(k): arrs for k, arrs in result.per_clip.items()}


def _write_clips(clips: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"{k}|{x}": a for k, arrs in clips.items()
                      for x, a in zip("yds", arrs, strict=True)})


def _write_table(table: dict[str, Any], meta_path: Path, clips_path: Path) -> None:
    _write_clips(table["clips"], clips_path)
    meta_path.write_text(json.dumps({k: v for k, v in table.items() if k != "clips"}))


def _table_paths(recipe: Any, store: Path) -> tuple[Path, Path]:
    """Where ``recipe``'s stored table lives: ``store/<content hash>.json`` and ``.npz``."""
    key = recipe.content_hash()[:16]
    return store / f"{key}.json", store / f"{key}.npz"


def read_table(recipe: Any, store: Path) -> dict[str, Any] | None:
    """``recipe``'s table as :func:`candidate_scores` / :func:`dev_scores` stored it in
    ``store`` (per-section ``aucs`` and ``clips``, the stored Ω fields), or None."""
    return _read_table(*_table_paths(recipe, store))


def has_table(recipe: Any, store: Path) -> bool:
    """Whether :func:`candidate_scores` / :func:`dev_scores` would read ``recipe``'s table back
    from ``store`` (both of its files are there) rather than compute it."""
    return all(path.is_file() for path in _table_paths(recipe, store))


def _stored_table(recipe: Any, dev: Any, novel: Any | None, cache: Path,
                  store: Path) -> dict[str, Any]:
    """The development table of ``recipe`` (+ its novel Ω when ``novel`` is given), read from
    ``store/<content hash>.{json,npz}`` or computed and written there."""
    meta_path, clips_path = _table_paths(recipe, store)
    stored = _read_table(meta_path, clips_path)
    if stored is not None:
        return stored
    table = _dev_table(recipe, dev, cache)
    if novel is not None:
        ev = evaluate_recipe(recipe, novel, cache_dir=cache, device="cpu")
        table["novel_omega"] = ev.omega
        _write_clips(_keyed_clips(ev), meta_path.with_suffix(".novel.npz"))
    _write_table(table, meta_path, clips_path)
    return table


def novel_clips(recipe: Any, store: Path) -> dict[str, tuple[NDArray[Any], ...]] | None:
    """The novel types' per-clip (labels, domains, scores) of ``recipe`` kept beside its
    candidate table (``store/<content hash>.novel.npz``), or None (tables stored before they
    were kept)."""
    path = _table_paths(recipe, store)[0].with_suffix(".novel.npz")
    return _read_clips(path) if path.is_file() else None


def dev_variances(cands: list[dict[str, Any]]) -> tuple[float, float]:
    """``(total, noise)`` of the candidates' ranking on the development clips: the default
    rule's objective over their stored per-clip scores (``c["clips"]`` of each table)
    (:func:`~automl_asd.search.selection.ranking_variances`)."""
    return ranking_variances(SelectionRule().objective,
                             {str(c["trial_id"]): c["clips"] for c in cands})


def novel_variances(recipes: dict[str, Any], store: Path) -> tuple[float, float]:
    """``(total, noise)`` of the official Ω's ranking of ``recipes`` (trial id -> recipe) on the
    novel clips whose per-clip scores are kept in ``store`` (:func:`novel_clips`); NaN, NaN
    when any recipe's were never kept."""
    clips = {t: novel_clips(r, store) for t, r in recipes.items()}
    kept = {t: v for t, v in clips.items() if v is not None}
    return ranking_variances("mean", kept) if len(kept) == len(clips) else (math.nan, math.nan)


def ceiling_line(dev: list[tuple[float, float]], novel: list[tuple[float, float]],
                 rho: list[float]) -> str:
    """Per draw, the ceiling on ρ that test-clip noise allows, ``sqrt(dev × novel)`` of the
    two sides' reliabilities (``(total, noise)`` variances of each draw), against the default
    rule's ρ: mean and range of the ceilings, ρ's mean, on how many draws ρ is above its own
    ceiling (a single draw's ceiling is too uncertain to bound it) and the Spearman of the
    two over the draws (do the draws with noisier test clips rank worse?)."""
    ceil = [math.sqrt(pooled_reliability([a]) * pooled_reliability([b]))
            for a, b in zip(dev, novel, strict=True)]
    pairs = [(c, r) for c, r in zip(ceil, rho, strict=True) if math.isfinite(c + r)]
    if not pairs:
        return ("ceiling on ρ per draw: n/a (no draw with a finite reliability and ρ on both "
                "sides: per-clip scores not kept, or fewer than 3 candidates)")
    cs, rs = [c for c, _ in pairs], [r for _, r in pairs]
    return (f"ceiling on ρ per draw: mean {np.mean(cs):.3f} ({min(cs):.2f}..{max(cs):.2f}), "
            f"ρ mean {np.mean(rs):.3f} ({min(rs):.2f}..{max(rs):.2f}), ρ above it on "
            f"{sum(r > c for c, r in pairs)} of {len(pairs)} draws; Spearman (ceiling, ρ) over "
            f"the draws {spearman(cs, rs):.2f}")


def candidate_recipes(space: Any, draw_index: int, seed: int, n: int) -> list[Any]:
    """The candidates every selection bench scores on a draw: the space's reference point, then
    ``n`` random points of it under ``seed``, named ``draw<d>_cand<i>``. The name is part of
    the content hash, so every bench finds the others' stored scores under the same key."""
    points = [space.reference_point(), *random_points(space, n, seed=seed)]
    return [space.to_recipe(p, name=f"draw{draw_index}_cand{i}") for i, p in enumerate(points)]


def candidate_scores(recipe: Any, dev: Any, novel: Any, cache: Path,
                     store: Path) -> dict[str, Any]:
    """Dev per-section AUCs and per-clip scores, dev Ω and novel Ω of ``recipe`` (the benches'
    candidate table); stored under ``store`` by the recipe's content hash, so an interrupted or
    parallel run, or another bench on the same ``--work``, reuses them."""
    return _stored_table(recipe, dev, novel, cache, store)


def dev_scores(recipe: Any, dev: Any, cache: Path, store: Path) -> dict[str, Any]:
    """:func:`candidate_scores` without the novel side: the development table only (for
    ``bench/dev_size.py``, whose novel Ω comes from another store)."""
    return _stored_table(recipe, dev, None, cache, store)


class Lazy:
    """A value built on first use, then kept. As :func:`stored_omega`'s machines: a
    DCASE-size novel tree (1.6 GB, minutes to render) is rendered and scanned only when some
    recipe's Ω on it is not stored yet, so a read-back needs no tree on disk (or, built by a
    function that stops with a message, a bench that only reads stored numbers).
    ``seconds`` is the wall time the build took (0 until it runs), so a bench can count it
    as data preparation rather than as the scoring that triggered it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._value: Any = None
        self.seconds = 0.0

    def __call__(self) -> Any:
        if self._build is not None:
            t0 = time.perf_counter()
            self._value, self._build = self._build(), None
            self.seconds = time.perf_counter() - t0
        return self._value


def stored_omega(recipe: Any, machines: Any, cache: Path, store: Path) -> float:
    """Official Ω of ``recipe`` on ``machines``, kept in ``store/<content hash>.json`` (a
    re-run, or another bench on the same ``--work``, reads it back), its per-clip scores
    beside it as :func:`novel_clips` reads them (kept since 2026-12-06). ``machines`` may be a
    :class:`Lazy`: it is then built only when the Ω is not stored yet."""
    path = store / f"{recipe.content_hash()[:16]}.json"
    if path.is_file():
        return float(json.loads(path.read_text())["omega"])
    if isinstance(machines, Lazy):
        machines = machines()
    ev = evaluate_recipe(recipe, machines, cache_dir=cache, device="cpu")
    _write_clips(_keyed_clips(ev), path.with_suffix(".novel.npz"))
    path.write_text(json.dumps({"recipe": recipe.name, "omega": ev.omega}))
    return float(ev.omega)


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's ρ of two equally long lists; NaN when either is constant."""
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    return float(spearmanr(a, b).statistic)


def rule_name(rule: SelectionRule) -> str:
    """``"<objective>/<pick>"``: how the benches name a rule in their tables and JSON."""
    return f"{rule.objective}/{rule.pick}"


def rule_picks(cands: list[dict[str, Any]], seed: int, *, top: int = SelectionRule.top,
               n_boot: int = SelectionRule.n_boot
               ) -> dict[str, tuple[dict[str, Any], list[float], int]]:
    """What every selection rule freezes from the development numbers alone: ``"<objective>/
    <pick>"`` (:func:`rule_name`) -> (the chosen candidate, every candidate's objective value
    in ``cands`` order, how many of the top candidates are near ties of the chosen one: what
    the search report's "How sure is the pick?" counts). ``cands`` are
    :func:`candidate_scores` dicts with ``trial_id`` and ``order`` added."""
    out: dict[str, tuple[dict[str, Any], list[float], int]] = {}
    clips = {c["trial_id"]: c["clips"] for c in cands}
    for objective in OBJECTIVES:
        rows = [{"trial_id": c["trial_id"], "order": c["order"],
                 "objective": objective_value(objective, c["aucs"])} for c in cands]
        # the same resamples for both picks of one objective: one table serves them
        table = bootstrap_table(rows, SelectionRule(objective=objective, top=top, n_boot=n_boot),
                                clips, seed=seed)
        for pick in PICKS:
            rule = SelectionRule(objective=objective, pick=pick, top=top, n_boot=n_boot)
            chosen, _ = pick_trial(rows, rule, table=table)
            ties = near_ties(pick_margins(table, chosen, rule.quantile))
            out[rule_name(rule)] = (next(c for c in cands if c["trial_id"] == chosen),
                                    [r["objective"] for r in rows], len(ties))
    return out


def ties_line(rule: str, draws: list[tuple[int | None, float]]) -> str:
    """One line: ``rule``'s mean and largest regret over the draws where its pick had near
    ties (:func:`rule_picks`' third item) and over those where it had none; ``draws`` holds
    (ties or None when not recorded, regret) per draw."""
    known = [(t, r) for t, r in draws if t is not None]
    parts = []
    for label, group in (("with near ties", [r for t, r in known if t > 0]),
                         ("without", [r for t, r in known if t == 0])):
        parts.append(f"{label} {len(group)} draws, regret "
                     + (f"{np.mean(group):.4f} (max {np.max(group):.4f})" if group else "n/a"))
    missing = len(draws) - len(known)
    return (f"{rule}: picks with near ties (a top recipe beats the pick on >= "
            f"{100 * NEAR_TIE:.0f} % of the dev resamples): " + "; ".join(parts)
            + (f"; {missing} draws recorded before the count" if missing else ""))


def add_draw_args(parser: argparse.ArgumentParser, *, draws: int = 6, size: str = "small",
                  work_required: bool = True) -> None:
    """The bench options that choose the draws and where their data lives (one definition).

    ``--draws``, ``--seed0``, ``--size``, ``--holdout``, ``--novel-per-family``, ``--named`` and
    ``--work``; :func:`draws_from_args` turns them into the :class:`Draw` list.
    """
    parser.add_argument("--draws", type=int, default=draws, help=f"number of draws ({draws})")
    parser.add_argument("--seed0", type=int, default=0, help="seed of draw 0 (0)")
    parser.add_argument("--size", default=size, choices=tuple(synth.SIZES),
                        help=f"synthetic size ({size})")
    parser.add_argument("--holdout", type=int, default=2, help="families held out per draw (2)")
    parser.add_argument("--novel-per-family", type=int, default=2,
                        help="novel types per held-out family (2)")
    parser.add_argument("--named", action="store_true",
                        help="also the named synthetic types, by family")
    parser.add_argument("--work", type=Path, required=work_required,
                        default=None, help="scratch dir (data, cache)"
                        + ("" if work_required else "; default: temp"))


def draws_from_args(args: argparse.Namespace) -> list[Draw]:
    """The draws chosen by the options of :func:`add_draw_args` (and ``--draw-ids`` of
    :func:`add_candidate_args`, when the bench has it)."""
    draws = family_draws(args.draws, seed0=args.seed0, holdout=args.holdout,
                         novel_per_family=args.novel_per_family, named=args.named)
    ids = getattr(args, "draw_ids", None)
    return draws if ids is None else [d for d in draws if d.index in ids]


def add_candidate_args(parser: argparse.ArgumentParser, *, candidates: int = 12) -> None:
    """The options of the benches that score a space's candidates on chosen draws (one
    definition): ``--space``, ``--candidates``, ``--workers``, ``--draw-ids`` and ``--json``."""
    parser.add_argument("--space", default="demo", help="search space of the candidates (demo)")
    parser.add_argument("--candidates", type=int, default=candidates,
                        help=f"random points of the space per draw, plus its reference "
                             f"({candidates})")
    parser.add_argument("--workers", type=int, default=2, help="generator processes (2)")
    parser.add_argument("--draw-ids", type=int, nargs="+", default=None,
                        help="only these of the --draws draws (e.g. to add a few)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
