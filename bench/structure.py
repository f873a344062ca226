"""Does the structure of normal sound hide the faults? Three label-free ideas, measured.

The shipped recipes model a machine type's normal sound with one Gaussian per domain (pooled
log-mel statistics, or windows of consecutive frames). If normal sound is a mixture (attribute
settings, on/off phases, speed sweeps), one broad Gaussian could hide a faint fault that a
model of each mode would see. This bench scores the novel types of the family-held-out draws
(``bench/draws.py``; pass the same ``--work`` as the other benches to reuse data and features)
with three groups of variants, each normalised like the shipped ones (log score z-scored per
domain by training self-scores, the test clip's domain = the nearer one):

* ``attr``: pooled log-mel mean + std (what ``searched_pooled_logz`` sees), one mean per
  (domain, attribute string) of the training clips and one covariance of the within-group
  scatter (empirical + the shipped ridge 0.0084); score = the smallest distance over the groups
  (a test clip's attributes are not used: eval file names do not carry them). ``domain`` is the
  same with one group per domain (the shipped model), ``attr_kN`` shrinks each group's mean
  towards its domain's by N pseudo-clips, ``attr_oracle`` scores each test clip against its own
  (domain, attribute) group from its file name (an upper bound a recipe cannot use).
  Self-scores cross-fitted on 20 folds per domain.
* ``frame``: the package's ``frame_gaussian`` (context 16, 4-bin bands, ridge 0.01, as in
  ``hedge_logz_frame``) on the log-mel frames (``raw``), on the frames minus the clip's mean
  spectrum (``demean``: only how the sound moves, not its average spectrum) and on
  frame-to-frame differences (``delta``); ``raw+X`` averages the two members' z-scores.
* ``windows``: the frame-level Gaussian at other window shapes (``--windows CxB``: C frames of
  B-bin bands; ``f16x4`` is the shipped member), alone (``fCxB``) and fused with the pooled
  ``domain`` model (``hCxB``: each member's z-scores divided by their spread over the test
  clips and added; the shipped hedge divides by the training self-scores' spread instead).
* ``mixture``: the same windows, K-means centres per domain (``K`` for source, ``K // 4`` for
  target) and one covariance of the within-cluster scatter; a window's distance is the
  smallest over its domain's centres, a clip's the mean over its windows (``K1`` = the shipped
  frame Gaussian up to its normaliser, which here is in-sample).

Usage::

    nice -n 5 .venv/bin/python bench/structure.py --work /tmp/small --draws 6
    nice -n 5 .venv/bin/python bench/structure.py --work /tmp/small --draws 6 --groups attr
    nice -n 5 .venv/bin/python bench/structure.py --work /tmp/small --draws 6 --groups windows \
        --windows 16x4 4x2 8x4 32x8 64x16 16x8 8x2
"""

from __future__ import annotations

import argparse
import collections
import logging
import time
from collections.abc import Callable

import numpy as np
from draws import add_draw_args, draws_from_args, make_data
from sklearn.cluster import MiniBatchKMeans

from automl_asd.backends.mahalanobis import domain_folds
from automl_asd.calibration import DomainNormalizer
from automl_asd.data import scan
from automl_asd.detectors.base import TrainSet
from automl_asd.detectors.frame_gaussian import FrameGaussianDetector, context_windows
from automl_asd.evaluation.metrics import machine_metrics, official_score
from automl_asd.features import FeatureSpec, extract

DOMAINS = ("source", "target")
POOLED_RIDGE = 0.0084  # searched_pooled_logz's
FRAME = {"context": 16, "band_pool": 4, "ridge": 0.01}  # hedge_logz_frame's frame member


def log_z(score: np.ndarray, near: np.ndarray, self_scores: np.ndarray,
          train_domains: np.ndarray) -> np.ndarray:
    """Log score z-scored by the self-scores of the domain each clip is scored in: the
    package's ``domain_log_zscore`` normaliser, as every shipped ``*_logz`` recipe uses it."""
    norm = DomainNormalizer.fit("domain_log_zscore", self_scores, train_domains)
    return norm.transform(score, near)


# ------------------------------------------------------------------ attribute groups
def _group_fit(x: np.ndarray, groups: np.ndarray, shrink: float
               ) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = sorted(set(groups.tolist()))
    domain = np.array([g.split("|")[0] for g in groups])
    dmean = {d: x[domain == d].mean(0) for d in set(domain.tolist())}
    means, resid = [], []
    for g in names:
        xi = x[groups == g]
        means.append((xi.sum(0) + shrink * dmean[g.split("|")[0]]) / (len(xi) + shrink))
        resid.append(xi - xi.mean(0))
    r = np.vstack(resid)
    cov = np.cov(r, rowvar=False)
    dim = cov.shape[0]
    cov += np.eye(dim) * (POOLED_RIDGE * np.trace(cov) / dim + 1e-9)
    return names, np.stack(means), np.linalg.pinv(cov, hermitian=True)


def _group_dist(x: np.ndarray, means: np.ndarray, prec: np.ndarray) -> np.ndarray:
    return np.stack([np.einsum("nd,de,ne->n", x - m, prec, x - m) for m in means], axis=1)


def _pick(dist: np.ndarray, names: list[str], own: np.ndarray | None) -> np.ndarray:
    """Per row: the distance to its own group (``own``, if fitted) or the smallest."""
    if own is None:
        return np.asarray(dist.min(axis=1))
    idx = np.array([names.index(g) if g in names else -1 for g in own])
    return np.where(idx >= 0, dist[np.arange(len(dist)), np.maximum(idx, 0)], dist.min(axis=1))


def group_scores(train: np.ndarray, groups: np.ndarray, tdom: np.ndarray, test: np.ndarray,
                 shrink: float, test_groups: np.ndarray | None = None) -> np.ndarray:
    names, means, prec = _group_fit(train, groups, shrink)
    dist = _group_dist(test, means, prec)
    score = _pick(dist, names, test_groups)
    near = (np.array([g.split("|")[0] for g in test_groups]) if test_groups is not None
            else np.array([names[j].split("|")[0] for j in dist.argmin(axis=1)]))
    self_s = np.empty(len(train))
    for _, held, refit in domain_folds(tdom, DOMAINS):
        keep = np.ones(len(train), dtype=bool)
        if refit:
            keep[held] = False
        n2, m2, p2 = _group_fit(train[keep], groups[keep], shrink)
        own = groups[held] if test_groups is not None else None
        self_s[held] = _pick(_group_dist(train[held], m2, p2), n2, own)
    return log_z(score, near, self_s, tdom)


# ------------------------------------------------------------------ frame transforms
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "raw": lambda a: a,
    "demean": lambda a: a - a.mean(axis=0, keepdims=True),
    "delta": lambda a: np.diff(a, axis=0),
}


def frame_scores(train: list[np.ndarray], test: list[np.ndarray], tdom: np.ndarray,
                 **params: int) -> np.ndarray:
    det = FrameGaussianDetector(**{**FRAME, **params})
    n = len(train)
    ts = TrainSet(train, tdom, np.array(["a"] * n), np.array(["00"] * n), np.array(["m"] * n))
    det.fit(ts)
    score, near = det.score_with_domain(test)
    return log_z(score, near, det.self_scores(ts), tdom)


# ------------------------------------------------------------------ frame mixtures
def mixture_scores(windows: list[np.ndarray], n_train: int, tdom: np.ndarray, k: int,
                   seed: int = 0) -> np.ndarray:
    resid, centres, cdom = [], [], []
    for d in DOMAINS:
        w = np.concatenate([x for x, dd in zip(windows[:n_train], tdom, strict=True) if dd == d])
        kd = k if d == "source" else max(1, k // 4)
        if kd == 1:
            c, lab = w.mean(axis=0, keepdims=True), np.zeros(len(w), dtype=int)
        else:
            rng = np.random.default_rng(seed)
            sub = w[rng.choice(len(w), min(len(w), 20000), replace=False)]
            km = MiniBatchKMeans(kd, random_state=seed, n_init=3, batch_size=4096).fit(sub)
            lab = km.predict(w)
            c = np.stack([w[lab == j].mean(0) if np.any(lab == j) else km.cluster_centers_[j]
                          for j in range(kd)])
        resid.append(w - c[lab])
        centres.append(c)
        cdom += [d] * kd
    r = np.concatenate(resid)
    cov = r.T @ r / len(r)
    dim = cov.shape[0]
    cov += np.eye(dim) * (FRAME["ridge"] * np.trace(cov) / dim + 1e-9)
    whiten = np.linalg.cholesky(np.linalg.inv(cov))  # precision = W W^T
    m = np.concatenate(centres) @ whiten
    dom = np.array(cdom)
    s = np.empty((len(windows), 2))
    for i, w in enumerate(windows):
        z = w @ whiten
        d2 = (z ** 2).sum(1)[:, None] - 2 * z @ m.T + (m ** 2).sum(1)[None]
        for j, d in enumerate(DOMAINS):
            s[i, j] = d2[:, dom == d].min(axis=1).mean()
    tr, te = s[:n_train], s[n_train:]
    self_s = tr[np.arange(n_train), (tdom == "target").astype(int)]
    near = np.where(te.argmin(axis=1) == 0, "source", "target")
    return log_z(te.min(axis=1), near, self_s, tdom)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser)
    parser.add_argument("--groups", nargs="+", default=["attr", "frame", "mixture"],
                        choices=("attr", "frame", "windows", "mixture"))
    parser.add_argument("--windows", nargs="+", default=["16x4", "8x4", "32x8"],
                        help="windows: frame-level Gaussian shapes CxB (16x4 8x4 32x8)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 4, 16],
                        help="mixture: K-means centres of the source domain (1 4 16)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = args.work / "cache"
    omega: dict[str, list[float]] = collections.defaultdict(list)
    t0 = time.perf_counter()
    for draw in draws_from_args(args):
        _, novel_root = make_data(draw, args.work, size=args.size)
        per: dict[str, dict[str, object]] = collections.defaultdict(dict)
        for mt, md in scan(novel_root).items():
            clips = list(md.train) + list(md.test)
            logmel = [a.astype(np.float64)
                      for a in extract(clips, FeatureSpec(), cache_dir=cache, progress=False)]
            n = len(md.train)
            tdom = np.array([c.domain.value for c in md.train])
            y = np.array([c.label.value == "anomaly" for c in md.test])
            dom = np.array([c.domain.value for c in md.test])
            scores: dict[str, np.ndarray] = {}
            if "attr" in args.groups or "windows" in args.groups:
                x = np.stack([np.concatenate([a.mean(0), a.std(0)]) for a in logmel])
                by_dom = np.array([f"{c.domain.value}|" for c in md.train])
                scores["domain"] = group_scores(x[:n], by_dom, tdom, x[n:], 0)
            if "attr" in args.groups:
                by_attr = np.array([f"{c.domain.value}|{c.attribute_string}" for c in md.train])
                test_attr = np.array([f"{c.domain.value}|{c.attribute_string}" for c in md.test])
                tr, te = x[:n], x[n:]
                for k in (0, 10, 50):
                    scores[f"attr_k{k}"] = group_scores(tr, by_attr, tdom, te, k)
                scores["attr_oracle"] = group_scores(tr, by_attr, tdom, te, 0, test_attr)
            if "frame" in args.groups:
                for name, f in TRANSFORMS.items():
                    feats = [f(a) for a in logmel]
                    scores[name] = frame_scores(feats[:n], feats[n:], tdom)
                for name in ("demean", "delta"):
                    scores[f"raw+{name}"] = (scores["raw"] + scores[name]) / 2
            if "windows" in args.groups:
                pooled = scores["domain"]
                for shape in args.windows:
                    ctx, bands = (int(v) for v in shape.split("x"))
                    z = frame_scores(logmel[:n], logmel[n:], tdom, context=ctx, band_pool=bands)
                    scores[f"f{shape}"] = z
                    scores[f"h{shape}"] = z / z.std() + pooled / pooled.std()
            if "mixture" in args.groups:
                windows = [context_windows(a, FRAME["context"], FRAME["band_pool"])
                           for a in logmel]
                for k in args.k:
                    scores[f"K{k}"] = mixture_scores(windows, n, tdom, k)
            for key, s in scores.items():
                per[key][mt] = machine_metrics(y, dom, s)
        line = {key: official_score(v) for key, v in per.items()}  # type: ignore[arg-type]
        for key, v in line.items():
            omega[key].append(v)
        print(f"draw {draw.index}: " + "  ".join(f"{k} {v:.3f}" for k, v in line.items())
              + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n== Ω on the novel types of {args.draws} family-held-out draws (size {args.size})")
    print("| variant | Ω mean ± std | min..max |")
    for key, vals in omega.items():
        print(f"| {key} | {np.mean(vals):.3f} ± {np.std(vals):.3f} | "
              f"{min(vals):.3f}..{max(vals):.3f} |")


if __name__ == "__main__":
    main()
