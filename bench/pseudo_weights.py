"""Can a hedge weight its members per machine from pseudo-anomalies, without labels?

The hedge's worst types (issue 15) are those where one member is at chance and an equal-weight
fusion gives away part of the other. A label-free, non-transductive way to weight the members
per machine: hold out half of the source training clips, fit the hedge on the rest, perturb the
held-out clips' log-mel matrices in fixed, generic ways (below), and measure each member's AUC
of perturbed against clean held-out clips ("pseudo-AUC"). A member that notices generic faults
against this machine's normal variability should get more weight. Nothing here looks at a test
clip or a label; the rule is the same for every machine.

Perturbations (power domain of the dB log-mel, ``g`` = level, per clip a seeded random place):

- ``tone``: a narrow-band component, ``g`` x the band's median power added to one bin (half
  to its neighbours);
- ``impulse``: 2-frame bursts on 4 % of the frames over a 20-60-bin range, ``g`` x the median;
- ``band``: a 8-24-bin range raised by the factor ``1 + g`` (a stationary change of timbre);
- ``am``: a 16-48-bin range modulated in level with a period of 4-16 frames, depth
  ``0.9 min(1, g / 4)``;
- ``shift``: a 16-48-bin range moved up by 1 bin (``g < 2``) or 2 (a speed / pitch change).

Per type it prints the members' Ω on the test clips (the hedge fitted on all training clips, as
the pipeline does), their mean pseudo-AUC, and Ω of the fusion rules: ``mean`` and ``max`` of
the z-scores (the hedge's own rules), ``pick`` (the member with the higher pseudo-AUC) and
``softmax<b>`` (weights ``exp(b * pseudo-AUC)``, normalised). Summary: mean per-type Ω, gap to
the better member (mean, worst, types > 0.05), each rule's paired difference to ``mean``
with its standard error over the types, and Spearman between the members' pseudo-AUC
difference and their true Ω difference. Per type the arrays are stored under
``ROOT/pseudo_scores/<recipe behaviour hash>/`` (keyed by recipe, draw, size; not code).

    nice -n 5 .venv/bin/python bench/pseudo_weights.py --root /tmp/small --draws 0 6
    nice -n 5 .venv/bin/python bench/pseudo_weights.py --root /tmp/small --draws 6 12 \\
        --kinds band,am
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from draws import family_draws, make_novel
from hedge import read_arrays, set_omega, write_arrays
from numpy.typing import NDArray
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from automl_asd import synth
from automl_asd.data import MachineData, scan
from automl_asd.detectors.registry import make_detector
from automl_asd.features import extract
from automl_asd.pipeline import derive_seed, make_train_set, select_train_clips
from automl_asd.recipe import Recipe, load_recipe

KINDS = ("tone", "impulse", "band", "am", "shift")
LEVELS = (0.15, 0.5, 1.0)


def perturb(x: NDArray[np.float32], kind: str, g: float,
            rng: np.random.Generator) -> NDArray[np.float32]:
    """A perturbed copy of one clip's ``(n_frames, n_bins)`` dB log-mel matrix."""
    p = 10.0 ** (x.astype(np.float64) / 10.0)
    n_t, n_f = p.shape
    med = np.median(p, axis=0)
    if kind == "tone":
        b = int(rng.integers(3, n_f - 3))
        p[:, b] += g * med[b]
        p[:, b - 1] += 0.5 * g * med[b - 1]
        p[:, b + 1] += 0.5 * g * med[b + 1]
    elif kind == "impulse":
        w = int(rng.integers(20, 61))
        lo = int(rng.integers(0, n_f - w))
        for s in rng.choice(max(1, n_t - 1), max(1, int(0.04 * n_t)), replace=False):
            p[s:s + 2, lo:lo + w] += g * med[lo:lo + w]
    elif kind == "band":
        w = int(rng.integers(8, 25))
        lo = int(rng.integers(0, n_f - w))
        p[:, lo:lo + w] *= 1.0 + g
    elif kind == "am":
        w = int(rng.integers(16, 49))
        lo = int(rng.integers(0, n_f - w))
        period = int(rng.integers(4, 17))
        phase = rng.uniform(0.0, 2 * np.pi)
        depth = 0.9 * min(1.0, 0.25 * g)
        p[:, lo:lo + w] *= (1.0 + depth * np.sin(2 * np.pi * np.arange(n_t) / period
                                                 + phase))[:, None]
    elif kind == "shift":
        w = int(rng.integers(16, 49))
        lo = int(rng.integers(2, n_f - w - 2))
        k = 1 if g < 2 else 2
        p[:, lo + k:lo + k + w] = p[:, lo:lo + w].copy()
    else:
        raise ValueError(f"perturbation {kind!r}: must be one of {KINDS}")
    return (10.0 * np.log10(np.maximum(p, 1e-10))).astype(np.float32)


def type_arrays(recipe: Recipe, machine: MachineData, cache: Path) -> dict[str, NDArray]:
    """Test labels/domains, the full hedge's member z-scores on the test clips, and the
    half-fitted hedge's member scores of the clean and perturbed held-out clips."""
    spec = recipe.detector
    mt = machine.machine_type
    seed = derive_seed(derive_seed(recipe.seed, mt), "member", 0)  # the pipeline's member 0
    clips, domains, _ = select_train_clips(recipe, machine)
    feats = extract(clips, recipe.features, cache_dir=cache, progress=False)
    test = list(machine.test)
    tfeats = extract(test, recipe.features, cache_dir=cache, progress=False)
    det = make_detector(spec.name, dict(spec.params), seed)
    det.fit(make_train_set(clips, domains, feats))
    out: dict[str, NDArray] = {
        "y": np.array([c.label.value == "anomaly" for c in test], dtype=np.int64),
        "d": np.array(["target" if c.domain.value == "target" else "source" for c in test]),
        "z": (det.member_scores(tfeats) - det.mean_) / det.std_,
    }
    rng = np.random.default_rng(derive_seed(seed, "pseudo"))
    source = np.flatnonzero(np.asarray(domains) == "source")
    held = set(rng.permutation(source)[: len(source) // 2].tolist())
    fit_idx = [i for i in range(len(clips)) if i not in held]
    half = make_detector(spec.name, dict(spec.params), seed)
    half.fit(make_train_set([clips[i] for i in fit_idx], [domains[i] for i in fit_idx],
                            [feats[i] for i in fit_idx]))
    held_feats = [feats[i] for i in sorted(held)]
    out["clean"] = half.member_scores(held_feats)
    for kind in KINDS:
        for g in LEVELS:
            prng = np.random.default_rng(derive_seed(seed, kind, g))
            out[f"p_{kind}_{g}"] = half.member_scores(
                [perturb(x, kind, g, prng) for x in held_feats])
    return out


def pseudo_aucs(arrays: dict[str, NDArray], kinds: Sequence[str],
                levels: Sequence[float]) -> NDArray[np.float64]:
    """Mean over the chosen perturbations of each member's AUC (perturbed vs clean)."""
    clean = arrays["clean"]
    lab = np.r_[np.zeros(len(clean)), np.ones(len(clean))]
    rows = [[roc_auc_score(lab, np.r_[clean[:, j], arrays[f"p_{k}_{g}"][:, j]])
             for j in range(clean.shape[1])] for k in kinds for g in levels]
    return np.asarray(rows, dtype=np.float64).mean(axis=0)


def fused(z: NDArray[np.float64], a: NDArray[np.float64],
          betas: Sequence[float]) -> dict[str, NDArray[np.float64]]:
    """The fusion rules compared (see the module docstring)."""
    out = {"mean": z.mean(axis=1), "max": z.max(axis=1), "pick": z[:, int(np.argmax(a))]}
    for b in betas:
        w = np.exp(b * (a - a.max()))
        out[f"softmax{b:g}"] = z @ (w / w.sum())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="bench folder (draw<d>/novel)")
    ap.add_argument("--recipe", default="hedge_logz_frame", help="hedge recipe (name or JSON)")
    ap.add_argument("--draws", type=int, nargs=2, default=(0, 6), metavar=("FIRST", "STOP"),
                    help="family-held-out draws FIRST..STOP-1 (bench/draws.py)")
    ap.add_argument("--size", default="small", choices=tuple(synth.SIZES))
    ap.add_argument("--kinds", default=",".join(KINDS), help="perturbations averaged")
    ap.add_argument("--levels", default=",".join(f"{g:g}" for g in LEVELS))
    ap.add_argument("--betas", default="10,20", help="softmax sharpness values")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    recipe = load_recipe(args.recipe)
    if recipe.detector.name != "hedge":
        ap.error(f"--recipe {args.recipe}: detector is {recipe.detector.name}, not hedge")
    kinds = [k for k in args.kinds.split(",") if k]
    if not set(kinds) <= set(KINDS):
        ap.error(f"--kinds: each must be one of {KINDS}")
    levels = [float(g) for g in args.levels.split(",")]
    if not set(levels) <= set(LEVELS):
        ap.error(f"--levels: each must be one of {LEVELS}")
    betas = [float(b) for b in args.betas.split(",") if b]
    first, stop = args.draws
    if not 0 <= first < stop:
        ap.error(f"--draws {first} {stop}: need 0 <= FIRST < STOP")
    store = args.root / "pseudo_scores" / recipe.behaviour_hash()[:16]
    cache = args.root / "cache"
    draws = family_draws(stop)
    t_cpu = time.process_time()
    rows = []
    for d in range(first, stop):
        root = make_novel(draws[d], args.root, size=args.size)
        machines = scan(root, machine_types=list(draws[d].novel_types))
        for mt in draws[d].novel_types:
            path = store / f"draw{d}_{args.size}" / f"{mt}.npz"
            arrays = read_arrays(path)
            if arrays is None:
                arrays = type_arrays(recipe, machines[mt], cache)
                write_arrays(path, arrays)
            key = f"{d}/{mt}"
            z, y, dom = arrays["z"], arrays["y"], arrays["d"]
            a = pseudo_aucs(arrays, kinds, levels)
            members = [set_omega({key: (y, dom, z[:, j])}) for j in range(z.shape[1])]
            rules = {k: set_omega({key: (y, dom, v)}) for k, v in fused(z, a, betas).items()}
            rows.append((key, members, a, rules))
            print(f"{key:<14} members " + " ".join(f"{m:.3f}" for m in members)
                  + "  pseudo-AUC " + " ".join(f"{x:.3f}" for x in a) + "  "
                  + " ".join(f"{k} {v:.3f}" for k, v in rules.items()), flush=True)
    best = np.array([max(r[1]) for r in rows])
    print(f"\n{len(rows)} types, perturbations {kinds} x levels {levels}")
    base = np.array([r[3]["mean"] for r in rows])
    for rule in rows[0][3]:
        v = np.array([r[3][rule] for r in rows])
        gap = best - v
        diff = v - base  # paired over the types; its standard error is over the types
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        print(f"{rule:<10} mean per-type Ω {v.mean():.4f} ({diff.mean():+.4f} vs mean, SE "
              f"{se:.4f})  gap mean {gap.mean():+.4f} worst {gap.max():+.4f}  "
              f"types > 0.05: {(gap > 0.05).sum()}/{len(gap)}")
    mem = np.array([r[1] for r in rows])
    pa = np.array([r[2] for r in rows])
    if mem.shape[1] == 2:
        rho = spearmanr(pa[:, 0] - pa[:, 1], mem[:, 0] - mem[:, 1])[0]
        agree = np.mean((pa[:, 0] > pa[:, 1]) == (mem[:, 0] > mem[:, 1]))
        print(f"Spearman(pseudo-AUC difference, true Ω difference) {rho:+.2f}; "
              f"better member named by pseudo-AUC on {agree:.0%} of types")
    print(f"CPU {time.process_time() - t_cpu:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
