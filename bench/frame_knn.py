"""Frame-level nearest neighbours on the bench draws' novel types: where the domain shift bites.

A probe, not a detector family: could a memory bank of training frames (PatchCore-style, the
clip scored by the mean distance of its frames to their nearest training frame) beat the
shipped detectors on machines of held-out families? Per novel type (the draws of
``bench/draws.py``, the same data as ``bench/shipped.py``):

* frames: the recipe's log-mel frames (128 bands) averaged over ``--band-pool`` adjacent bands,
  standardised per band over all training frames, projected on the first ``--pca``
  whitened principal components of (up to 20,000 of) them;
* ``one bank``: every target training frame plus up to ``--bank`` source training frames;
  the score is the raw mean nearest-neighbour distance (no domain handling at all);
* ``per-domain log z``: a source bank (``--n-cal`` source clips held back) and a target bank;
  each distance is turned into a z-score of its log against the domain's own training clips
  (the held-back source clips; each target clip against the other nine), and the clip gets the
  smaller of the two (the test clip's domain is unknown, as in the DCASE evaluation data);
* the shipped ``hedge_logz_frame`` applied by the pipeline to the same types, side by side.

Printed: mean AUC-s, AUC-t and pAUC over the types and Ω over all of them (the official
harmonic mean). Labels are read only to score.

    nice -n 5 .venv/bin/python bench/frame_knn.py --work /tmp/small --draws 6
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from draws import add_draw_args, draws_from_args, make_data

from automl_asd.data import MachineData, scan
from automl_asd.evaluation.metrics import floored_hmean, machine_metrics
from automl_asd.evaluation.objective import evaluate_recipe
from automl_asd.features import FeatureSpec, extract
from automl_asd.recipe import load_recipe

Array = np.ndarray


def frames(mats: list[Array], band_pool: int) -> list[Array]:
    """Each clip's frames with ``band_pool`` adjacent bands averaged."""
    out = []
    for m in mats:
        n, b = m.shape
        out.append(m[:, : b // band_pool * band_pool].reshape(n, -1, band_pool).mean(2))
    return out


def mean_nn(x: Array, bank: torch.Tensor, exclude: torch.Tensor | None = None) -> float:
    """Mean over the rows of ``x`` of the distance to the nearest row of ``bank``."""
    d = torch.cdist(torch.from_numpy(x), bank)
    if exclude is not None:
        d[:, exclude] = float("inf")
    return float(d.min(1).values.mean())


def score_type(train: list[Array], train_domains: Array, test: list[Array], *, pca: int,
               bank: int, n_cal: int, seed: int) -> dict[str, Array]:
    """Both variants' scores of the test clips (see the module docstring)."""
    rng = np.random.default_rng(seed)
    every = np.concatenate(train)
    mu, sd = every.mean(0), every.std(0) + 1e-3
    sample = (every[rng.choice(len(every), min(len(every), 20000), replace=False)] - mu) / sd
    _, sv, vt = np.linalg.svd(sample, full_matrices=False)
    proj = vt[:pca].T / (sv[:pca] / np.sqrt(len(sample)))

    def z(m: Array) -> Array:
        return np.asarray(((m - mu) / sd) @ proj, dtype=np.float32)

    projected = [z(m) for m in train]  # each training clip projected once, used by every bank
    src = [i for i, d in enumerate(train_domains) if d == "source"]
    tgt = [i for i, d in enumerate(train_domains) if d == "target"]
    rng.shuffle(src)
    cal, src_bank = src[:n_cal], src[n_cal:]

    def subsample(rows: Array) -> torch.Tensor:
        return torch.from_numpy(rows[rng.choice(len(rows), min(len(rows), bank), replace=False)])

    tgt_clips = [projected[i] for i in tgt]
    tgt_bank = torch.from_numpy(np.concatenate(tgt_clips))
    owner = np.concatenate([[j] * len(c) for j, c in enumerate(tgt_clips)])
    one = torch.cat([subsample(np.concatenate([projected[i] for i in src])), tgt_bank])
    s_bank = subsample(np.concatenate([projected[i] for i in src_bank]))
    self_s = np.log([mean_nn(projected[i], s_bank) for i in cal])
    self_t = np.log([mean_nn(c, tgt_bank, torch.from_numpy(owner == j))
                     for j, c in enumerate(tgt_clips)])
    raw, logz = [], []
    for m in test:
        q = z(m)
        raw.append(mean_nn(q, one))
        logz.append(min((np.log(mean_nn(q, s_bank)) - self_s.mean()) / self_s.std(),
                        (np.log(mean_nn(q, tgt_bank)) - self_t.mean()) / self_t.std()))
    return {"one bank": np.array(raw), "per-domain log z": np.array(logz)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(ap, draws=6)
    ap.add_argument("--band-pool", type=int, default=2, help="adjacent mel bands averaged (2)")
    ap.add_argument("--pca", type=int, default=32, help="whitened components kept (32)")
    ap.add_argument("--bank", type=int, default=20000, help="source frames in a bank (20000)")
    ap.add_argument("--n-cal", type=int, default=20,
                    help="source clips held out of the bank to calibrate its z-scores (20)")
    ap.add_argument("--reference", default="hedge_logz_frame",
                    help="shipped recipe scored side by side (hedge_logz_frame)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    recipe = load_recipe(args.reference)
    spec: FeatureSpec = recipe.features
    cache = args.work / "cache"
    rows: dict[str, list[tuple[float, float, float]]] = {}
    t0 = time.perf_counter()
    for draw in draws_from_args(args):
        _, novel_root = make_data(draw, args.work, size=args.size)
        novel: dict[str, MachineData] = scan(novel_root)
        ref = evaluate_recipe(recipe, novel, cache_dir=cache)
        for machine in novel.values():
            train = frames(extract(machine.train, spec, cache_dir=cache, progress=False),
                           args.band_pool)
            test = frames(extract(machine.test, spec, cache_dir=cache, progress=False),
                          args.band_pool)
            y = np.array([c.label == "anomaly" for c in machine.test], dtype=np.int64)
            domains = np.array([c.domain for c in machine.test])
            scores = score_type(train, np.array([c.domain for c in machine.train]), test,
                                pca=args.pca, bank=args.bank, n_cal=args.n_cal,
                                seed=draw.seed)
            for name, s in scores.items():
                rows.setdefault(name, []).append(machine_metrics(y, domains, s).official_values)
        rows.setdefault(args.reference, []).extend(
            m.official_values for m in ref.per_type.values())
        print(f"{draw.describe()}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n| scorer ({len(rows[args.reference])} novel types) | AUC-s | AUC-t | pAUC | Ω |")
    print("|---|---|---|---|---|")
    for name, vals in rows.items():
        a = np.array(vals)
        s, t, p = a.mean(0)
        print(f"| {name} | {s:.3f} | {t:.3f} | {p:.3f} | {floored_hmean(a.ravel()):.3f} |")


if __name__ == "__main__":
    main()
