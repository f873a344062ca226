"""How ρ grows with the number of development FAMILIES: would a wider development set help?

At the DCASE size the test clips no longer hold ρ down (docs/benchmarks.md, "The novel side's
reliability at the DCASE size"): development families order the candidates otherwise than the
held-out ones. This bench asks how much more development families would give. From the
candidate tables the other benches stored (nothing is scored here), it recomputes each draw's
default objective on every subset of k of its development families, k = 1 .. all, and prints
the mean Spearman ρ against the candidates' novel Ω (pooled over subsets and draws), for
development data at ``--size`` (``--work``, ``bench/selection.py``'s tables) and at the DCASE
size (``--dev-work``, ``bench/dev_size.py``'s), both against the DCASE-size novel Ω under
``--full-work``.

If each family's ranking is a shared ranking plus its own deviation, the k-family mean
correlates with the shared ranking as ``sqrt(k a / (1 + (k - 1) a))`` (Spearman-Brown;
``a``: how much two families agree), so ``ρ_k ≈ c · sqrt(k a / (1 + (k - 1) a))``, where
``c`` is how well the shared ranking predicts the held-out families: the limit with
unlimited development families. The bench fits ``a`` and ``c`` by least squares over k,
prints the fit's largest miss and what it predicts for twice and four times as many families.
An approximation for a rank correlation, and an extrapolation beyond the families measured.

``--reliability`` also prints the development side's ranking reliability (share of the
candidates' spread that is more than test-clip noise) for one family, half and all: it tells
whether ρ grows with k only because more families mean more test clips (slow: about 14 min on
2 cores for 16 draws).

Usage::

    .venv/bin/python bench/dev_families.py --work /tmp/small --dev-work /tmp/devrel \\
        --full-work /tmp/fullc --draws 16 --candidates 12
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from draws import (
    Lazy,
    add_candidate_args,
    add_draw_args,
    candidate_recipes,
    draws_from_args,
    read_table,
    spearman,
    stored_omega,
)

from automl_asd.search.selection import (
    SelectionRule,
    objective_value,
    pooled_reliability,
    ranking_variances,
)
from automl_asd.search.space import load_space
from automl_asd.synth import family_of

SIDES = ("small", "full")  # development data at --size (--work) and at the DCASE size


def _missing(what: str) -> Any:
    def fail() -> Any:
        sys.exit(f"dev_families.py: {what} is not stored; run bench/dev_size.py first "
                 "(this bench only reads stored scores)")
    return Lazy(fail)


def family_subsets(types: list[str]) -> dict[int, list[set[str]]]:
    """k -> every set of types made of k whole families (``family_of`` each type)."""
    fams: dict[str, set[str]] = {}
    for t in types:
        fams.setdefault(family_of(t) or t, set()).add(t)
    return {k: [set().union(*(fams[f] for f in combo))
                for combo in itertools.combinations(sorted(fams), k)]
            for k in range(1, len(fams) + 1)}


def _keep(per_section: dict[str, Any], types: set[str]) -> dict[str, Any]:
    """The sections (keys ``"<type>/<section>"``) of the given machine types."""
    return {k: v for k, v in per_section.items() if k.split("/", 1)[0] in types}


def by_families(tables: list[dict[str, Any]], novel: list[float], *,
                reliability: bool = False) -> dict[int, dict[str, float]]:
    """For k = 1 .. all families of the candidates' development ``tables`` (each with
    per-section ``aucs`` and, for ``reliability``, ``clips``): the mean over the k-family
    subsets of Spearman ρ between the default objective on those families and ``novel``; and
    with ``reliability``, for one family, half and all, the development reliability pooled
    over the subsets."""
    objective = SelectionRule().objective
    types = sorted({key.split("/", 1)[0] for key in tables[0]["aucs"]})
    subsets = family_subsets(types)
    n = len(subsets)
    out: dict[int, dict[str, float]] = {}
    for k, subs in subsets.items():
        rhos = [spearman([objective_value(objective, _keep(t["aucs"], sub)) for t in tables],
                         novel) for sub in subs]
        out[k] = {"rho": float(np.nanmean(rhos))}
        if reliability and k in {1, max(1, n // 2), n}:
            parts = [ranking_variances(objective, {f"c{i}": _keep(t["clips"], sub)
                                                   for i, t in enumerate(tables)})
                     for sub in subs]
            out[k]["reliability"] = pooled_reliability(parts)
    return out


def fit(ks: list[int], rhos: list[float]) -> tuple[float, float]:
    """``(a, c)`` of ``ρ_k = c · sqrt(k a / (1 + (k - 1) a))``, least squares over a grid of
    ``a`` in (0, 1] (``c`` in closed form for each ``a``)."""
    k, r = np.asarray(ks, dtype=float), np.asarray(rhos, dtype=float)
    best = (math.inf, math.nan, math.nan)
    for a in np.linspace(0.001, 1.0, 1000):
        g = np.sqrt(k * a / (1 + (k - 1) * a))
        c = float(g @ r / (g @ g))
        sse = float(np.sum((r - c * g) ** 2))
        if sse < best[0]:
            best = (sse, float(a), c)
    return best[1], best[2]


def predict(a: float, c: float, k: float) -> float:
    """The fitted model at ``k`` families (``math.inf``: the limit ``c``)."""
    return c if math.isinf(k) else c * math.sqrt(k * a / (1 + (k - 1) * a))


def _draw(draw: Any, args: argparse.Namespace) -> dict[str, Any]:
    recipes = candidate_recipes(load_space(args.space), draw.index, draw.seed, args.candidates)
    novel_store = args.full_work / f"draw{draw.index}" / "candidates"
    novel = [stored_omega(r, _missing(f"draw {draw.index}'s novel Ω of {r.name}"), Path(),
                          novel_store) for r in recipes]
    stores = {"small": args.work / f"draw{draw.index}" / "candidates",
              "full": args.dev_work / f"draw{draw.index}" / "candidates"}
    out: dict[str, Any] = {"draw": draw.index}
    for side, store in stores.items():
        tables = [t for t in (read_table(r, store) for r in recipes) if t is not None]
        if len(tables) < len(recipes):
            sys.exit(f"dev_families.py: draw {draw.index}'s development tables are not all "
                     f"stored under {store}; run bench/dev_size.py first")
        out[side] = by_families(tables, novel, reliability=args.reliability)
    print(f"draw {draw.index}: ρ by families, " + "; ".join(
        f"{side} " + " ".join(f"{v['rho']:.2f}" for v in out[side].values()) for side in SIDES),
        flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser, draws=16)
    parser.add_argument("--dev-work", type=Path, required=True,
                        help="bench/dev_size.py's --dev-work (DCASE-size development tables)")
    parser.add_argument("--full-work", type=Path, required=True,
                        help="bench/dev_size.py's --full-work (DCASE-size novel Ω)")
    parser.add_argument("--reliability", action="store_true",
                        help="also the development reliability for 1, half and all families")
    add_candidate_args(parser)
    args = parser.parse_args()
    draws = [_draw(d, args) for d in draws_from_args(args)]
    labels = {"small": f"development at {args.size}",
              # dev_size.py's --dev-size (the DCASE size unless told otherwise)
              "full": f"development from {args.dev_work}"}
    print(f"\n== {len(draws)} draws: mean ρ (default objective on k development families vs "
          "DCASE-size novel Ω) over the k-family subsets and the draws")
    for side in SIDES:
        ks = sorted(draws[0][side])
        rho = [float(np.mean([d[side][k]["rho"] for d in draws])) for k in ks]
        print(f"{labels[side]}: " + ", ".join(f"k={k} {r:.3f}" for k, r in zip(ks, rho,
                                                                                  strict=True)))
        rel = {k: float(np.mean([d[side][k]["reliability"] for d in draws]))
               for k in ks if "reliability" in draws[0][side][k]}
        if rel:
            print("  development reliability (mean over draws): "
                  + ", ".join(f"k={k} {v:.3f}" for k, v in rel.items()))
        a, c = fit(ks, rho)
        miss = max(abs(predict(a, c, k) - r) for k, r in zip(ks, rho, strict=True))
        n = ks[-1]
        print(f"  fit ρ_k = c·sqrt(k·a/(1+(k-1)·a)): a {a:.3f}, c {c:.3f} (largest miss "
              f"{miss:.3f}); predicted at {2 * n} families {predict(a, c, 2 * n):.3f}, at "
              f"{4 * n} {predict(a, c, 4 * n):.3f}, unlimited {c:.3f}")
        if c > 1.0:  # found 2026-12-07 on 1 candidate at 2 s clips: predicted ρ 1.3 and 1.8
            print("  (c > 1: a correlation cannot exceed 1; too few candidates or draws for "
                  "this fit to mean anything)")


if __name__ == "__main__":
    main()
