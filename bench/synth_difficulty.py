"""How hard is the synthetic data set? Official AUC-s / AUC-t / pAUC per machine type of
(a) an RMS-energy detector (score = clip RMS) and (b) a simple reference detector: a Gaussian on
the per-clip mean log-mel (baseline log-mel: 1024/512, 128 mels, dB), Ledoit-Wolf covariance
fitted on all train clips (source + target), score = Mahalanobis distance; (c) for contrast, a
domain-aware variant: 1-nearest-neighbour distance to the train clips on the same features
(standardised), which keeps the 10 target clips as references.

Targets (issue 3): RMS AUC <= 0.65 everywhere; reference AUC between 0.55 and 0.90 on most
types; mean AUC-t below mean AUC-s.

    .venv/bin/python bench/synth_difficulty.py                      # small set, all 11 types
    .venv/bin/python bench/synth_difficulty.py --size tiny --kinds  # + AUC per anomaly kind
    .venv/bin/python bench/synth_difficulty.py --data DIR           # an existing tree
    .venv/bin/python bench/synth_difficulty.py --random-types 8     # 8 random types instead
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from automl_asd import ground_truth, synth
from automl_asd.audio import load_wav
from automl_asd.data import Clip, MachineData, scan
from automl_asd.evaluation.evaluate import evaluate_scores, section_scores
from automl_asd.evaluation.metrics import MachineMetrics, floored_hmean
from automl_asd.features import FeatureSpec, compute

SPEC = FeatureSpec()  # the official baseline's log-mel


def _mean_logmel(clips: Sequence[Clip]) -> np.ndarray:
    return np.stack([compute(load_wav(c.path), SPEC).mean(axis=0) for c in clips])


def _rms(clips: Sequence[Clip]) -> np.ndarray:
    return np.array([float(np.sqrt(np.mean(np.square(load_wav(c.path), dtype=np.float64))))
                     for c in clips])


def _gaussian_scores(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    lw = LedoitWolf().fit(train)
    d = test - lw.location_
    return np.einsum("ij,jk,ik->i", d, lw.precision_, d)


def _knn_scores(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-6
    a, b = (train - mu) / sd, (test - mu) / sd
    d2 = (b**2).sum(1)[:, None] - 2.0 * b @ a.T + (a**2).sum(1)[None, :]
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def _metrics(md: MachineData, scores: np.ndarray) -> MachineMetrics:
    """Official metrics of ``md``'s test clips scored ``scores`` (synthetic types: 1 section)."""
    test = md.test
    (m,) = evaluate_scores(ground_truth.from_clips(md), section_scores(
        md.machine_type, [c.name for c in test], [c.section for c in test], scores)
    ).per_section.values()
    return m


def _kind_aucs(mt: str, size: str, seed: int, test: Sequence[Clip],
               scores: np.ndarray) -> dict[str, float]:
    """AUC of each anomaly kind against all normal test clips (needs the generator's plan)."""
    kind = {p.labelled_name: p.anomaly for p in synth.plan_machine(mt, size, seed)}
    names = [c.name for c in test]
    normal = np.array([kind.get(n) is None for n in names])
    out = {}
    for k in synth.machine_model(mt, seed).anomalies:
        sel = normal | np.array([kind.get(n) == k for n in names])
        y = ~normal[sel]
        out[k] = float(roc_auc_score(y, scores[sel]))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=None, help="existing tree (default: generate)")
    ap.add_argument("--out", type=Path, default=None, help="where to generate (default: temp)")
    ap.add_argument("--size", default="small", choices=tuple(synth.SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--machine-types", nargs="+", default=list(synth.MACHINE_TYPES))
    ap.add_argument("--kinds", action="store_true", help="reference AUC per anomaly kind")
    ap.add_argument("--random-types", type=int, default=0, metavar="N",
                    help="N random types (synth.random_type_names) instead of --machine-types")
    args = ap.parse_args(argv)
    if args.random_types:
        args.machine_types = synth.random_type_names(args.random_types, args.seed)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    tmp = None
    root = args.data
    if root is None:
        if args.out is None:
            tmp = tempfile.TemporaryDirectory(prefix="synth_difficulty_")
            args.out = Path(tmp.name)
        t0 = time.process_time()
        w0 = time.perf_counter()
        synth.generate(args.out, machine_types=args.machine_types, size=args.size,
                       seed=args.seed)
        print(f"generated {len(args.machine_types)} type(s), size {args.size}, seed "
              f"{args.seed}: {time.perf_counter() - w0:.1f} s wall, "
              f"{time.process_time() - t0:.1f} s CPU")
        root = args.out
    data = scan(root, machine_types=args.machine_types)

    head = (f"{'machine':<11} {'group':<5} | {'RMS AUC-s':>9} {'AUC-t':>6} {'pAUC':>6} | "
            f"{'REF AUC-s':>9} {'AUC-t':>6} {'pAUC':>6} {'Ω':>6} | {'1NN AUC-s':>9} {'AUC-t':>6} "
            f"{'Ω':>6}")
    print(head)
    print("-" * len(head))
    rms_all: dict[str, MachineMetrics] = {}
    ref_all: dict[str, MachineMetrics] = {}
    knn_all: dict[str, MachineMetrics] = {}
    kinds: dict[str, dict[str, float]] = {}
    for mt in args.machine_types:
        md = data[mt]
        test = list(md.test)
        train = list(md.train)
        rms_all[mt] = r = _metrics(md, _rms(test))
        f_train, f_test = _mean_logmel(train), _mean_logmel(test)
        scores = _gaussian_scores(f_train, f_test)
        ref_all[mt] = g = _metrics(md, scores)
        knn_all[mt] = k = _metrics(md, _knn_scores(f_train, f_test))
        if args.kinds and args.data is None:
            kinds[mt] = _kind_aucs(mt, args.size, args.seed, test, scores)
        group = ("dev" if mt in synth.DEV_MACHINE_TYPES else "novel") if mt in \
            synth.MACHINE_TYPES else str(synth.family_of(mt))
        print(f"{mt:<11} {group:<5} | {r.auc_source:9.3f} {r.auc_target:6.3f} {r.pauc:6.3f} | "
              f"{g.auc_source:9.3f} {g.auc_target:6.3f} {g.pauc:6.3f} {g.score:6.3f} | "
              f"{k.auc_source:9.3f} {k.auc_target:6.3f} {k.score:6.3f}", flush=True)
    print("-" * len(head))
    for label in ("h-mean", "a-mean"):
        cells = []
        for table in (rms_all, ref_all, knn_all):
            for f in ("auc_source", "auc_target", "pauc"):
                vals = [getattr(m, f) for m in table.values()]
                cells.append(floored_hmean(vals) if label == "h-mean" else float(np.mean(vals)))
        omega = [floored_hmean([v for m in t.values() for v in m.official_values])
                 for t in (ref_all, knn_all)]
        print(f"{label:<17} | {cells[0]:9.3f} {cells[1]:6.3f} {cells[2]:6.3f} | "
              f"{cells[3]:9.3f} {cells[4]:6.3f} {cells[5]:6.3f} {omega[0]:6.3f} | "
              f"{cells[6]:9.3f} {cells[7]:6.3f} {omega[1]:6.3f}")
    rms_max = max(max(m.auc_source, m.auc_target) for m in rms_all.values())
    in_range = [mt for mt, m in ref_all.items() if 0.55 <= m.auc_source <= 0.90]
    mean_s = float(np.mean([m.auc_source for m in ref_all.values()]))
    mean_t = float(np.mean([m.auc_target for m in ref_all.values()]))
    print(f"\nRMS max AUC = {rms_max:.3f} (target <= 0.65): {'OK' if rms_max <= 0.65 else 'FAIL'}")
    out = sorted(set(ref_all) - set(in_range))
    print(f"REF AUC-s in [0.55, 0.90]: {len(in_range)}/{len(ref_all)} types"
          f"{' (out: ' + ', '.join(out) + ')' if out else ''}; AUC-t >= 0.5 on "
          f"{sum(m.auc_target >= 0.5 for m in ref_all.values())}/{len(ref_all)}")
    print(f"REF mean AUC-s {mean_s:.3f} > mean AUC-t {mean_t:.3f}: "
          f"{'OK' if mean_t < mean_s else 'FAIL'}")
    if kinds:
        print("\nREF AUC per anomaly kind (all normal test clips vs that kind):")
        for mt, ks in kinds.items():
            print(f"  {mt:<11} " + "  ".join(f"{k}={v:.2f}" for k, v in ks.items()))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
