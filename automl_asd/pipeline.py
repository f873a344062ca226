"""The per-machine pipeline: one recipe, one machine type -> scores and decisions.

Pure and Ray-free: reads features (via the on-disk feature cache), trains on the train clips
(+ clean supplemental clips when the recipe says so), scores the test clips, fits the threshold
on training self-scores, and returns a :class:`MachineResult`. It writes no output files and
never reads test labels (a :class:`MachineResult` holds names, sections, scores, decisions,
threshold, timings and counts only). Orchestration (Ray tasks, submission files) wraps
:func:`run_machine` at the call site.

Seeds: the machine seed is derived from ``(recipe.seed, machine type)`` with sha256
(:func:`derive_seed`), so results do not depend on the order or set of machine types; ensemble
member ``i`` gets ``derive_seed(machine_seed, "member", i)``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from automl_asd.calibration import (
    MIN_DOMAIN_CLIPS,
    DomainNormalizer,
    ScoreStats,
    combine_scores,
    decide,
    fit_threshold,
)
from automl_asd.components.device import resolve_device, stage_threads
from automl_asd.components.files import digests_remembered
from automl_asd.data import Clip, MachineData
from automl_asd.detectors import REGISTRY, Detector, TrainSet, make_detector
from automl_asd.features import extract
from automl_asd.progress import few_names
from automl_asd.recipe import Recipe
from automl_asd.representation_cache import RepresentationCache, fit_member
from automl_asd.supplemental import mix_noise

__all__ = [
    "MachineResult",
    "FittedMachine",
    "derive_seed",
    "select_train_clips",
    "make_train_set",
    "fit_machine",
    "score_clips",
    "run_machine",
    "needs_shared",
    "fit_shared",
    "SharedStates",
]

logger = logging.getLogger(__name__)


SharedStates = Sequence[Mapping[str, NDArray[Any]]]


def derive_seed(*parts: object) -> int:
    """Stable seed in ``[0, 2**31 - 1)`` from the parts' string forms (sha256, not ``hash``)."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") % (2**31 - 1)


@dataclass(frozen=True)
class MachineResult:
    """Outcome of one machine type (no labels). Arrays are aligned with ``names``.

    ``scores``: ``(n_test,)`` float64, higher = more anomalous (after normalisation);
    ``decisions``: ``(n_test,)`` int8, 1 = anomaly (``score > threshold``);
    ``timings``: seconds for ``features``, ``fit``, ``score``, ``total``;
    ``counts``: clip counts (``train_source``, ``train_target``, ``supplemental_clean``,
    ``noise_clips``, ``train_used``, ``test``, ``ensemble``).
    """

    machine_type: str
    recipe_hash: str
    seed: int
    names: tuple[str, ...]
    sections: tuple[str, ...]
    scores: NDArray[np.float64]
    decisions: NDArray[np.int8]
    threshold: float
    timings: dict[str, float]
    counts: dict[str, int]
    device: str = "cpu"
    fidelity: float = 1.0
    #: The trained model (``run_machine(..., keep_fitted=True)``), e.g. to save a bundle.
    fitted: FittedMachine | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """Small JSON-able summary (no per-clip arrays)."""
        return {
            "machine_type": self.machine_type,
            "recipe_hash": self.recipe_hash,
            "seed": self.seed,
            "threshold": self.threshold,
            "n_test": len(self.names),
            "n_anomalous_decisions": int(self.decisions.sum()),
            "timings": dict(self.timings),
            "counts": dict(self.counts),
            "device": self.device,
            "fidelity": self.fidelity,
        }


@dataclass
class FittedMachine:
    """A trained ensemble with its score statistics, normaliser and threshold."""

    recipe: Recipe
    machine_type: str
    seed: int
    members: list[Detector]
    member_stats: list[ScoreStats]
    normalizer: DomainNormalizer
    threshold: float
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"


def select_train_clips(
    recipe: Recipe, machine: MachineData, *, fidelity: float = 1.0
) -> tuple[list[Clip], list[str], dict[str, int]]:
    """Training clips, their domains, and counts.

    Source pool = source train clips (+ clean supplemental clips, as source, when
    ``supplemental.clean_as_normal``). With ``fidelity < 1`` a seeded, nested subsample of
    ``max(1, ceil(fidelity * n_pool))`` source clips is kept (a prefix of one fixed permutation,
    so larger budgets contain smaller ones); every target clip is kept. Order: path order.
    """
    if not 0.0 < fidelity <= 1.0:
        raise ValueError(f"fidelity {fidelity}: must lie in (0, 1]")
    mt = machine.machine_type
    train = list(machine.train)
    if not train:
        raise ValueError(f"{mt}: no train clips under {machine.root}; check the data tree")
    clean = [c for c in machine.supplemental if c.kind == "machine"]
    source = [c for c in train if c.domain.value != "target"]
    target = [c for c in train if c.domain.value == "target"]
    pool = source + (clean if recipe.supplemental.clean_as_normal else [])
    if fidelity < 1.0 and pool:
        n_keep = max(1, math.ceil(fidelity * len(pool)))
        rng = np.random.default_rng(derive_seed(recipe.seed, mt, "fidelity"))
        keep = set(rng.permutation(len(pool))[:n_keep].tolist())
        pool = [c for i, c in enumerate(pool) if i in keep]
    clips = sorted(pool + target, key=lambda c: (c.split.value != "train", str(c.path)))
    domains = ["target" if c.domain.value == "target" else "source" for c in clips]
    counts = {
        "train_source": len(source),
        "train_target": len(target),
        "supplemental_clean": len(clean) if recipe.supplemental.clean_as_normal else 0,
        "train_used": len(clips),
    }
    return clips, domains, counts


def make_train_set(
    clips: Sequence[Clip], domains: Sequence[str], features: Sequence[NDArray[np.float32]]
) -> TrainSet:
    """A :class:`TrainSet` from clips, their (training) domains and feature matrices."""
    return TrainSet(
        features=list(features),
        domains=np.asarray(domains, dtype=str),
        attributes=np.asarray([c.attribute_string for c in clips], dtype=str),
        sections=np.asarray([c.section for c in clips], dtype=str),
        machine_types=np.asarray([c.machine_type for c in clips], dtype=str),
        names=np.asarray([c.name for c in clips], dtype=str),
    )


def _extract(
    clips: Sequence[Clip], recipe: Recipe, cache_dir: Path | None
) -> list[NDArray[np.float32]]:
    if not clips:
        return []

    feats: list[NDArray[np.float32]] = extract(
        list(clips), recipe.features, cache_dir=cache_dir, progress=False
    )
    return feats


def check_clip_frames(recipe: Recipe, names: Sequence[str],
                      feats: Sequence[NDArray[np.float32]]) -> None:
    """ValueError naming the clips with fewer feature frames than the recipe's detector needs
    (:meth:`~automl_asd.detectors.base.Detector.min_frames`). Found 2026-12-07: a 700-sample
    test clip let the official autoencoder train for 100 epochs, then failed with "clip 0 has
    2 frames", naming no file."""
    need = REGISTRY[recipe.detector.name].min_frames(recipe.detector.params)
    short = [(n, len(f)) for n, f in zip(names, feats, strict=True) if len(f) < need]
    if short:
        f = recipe.features
        seconds = (need - 1) * f.hop_length / f.sample_rate
        shown = few_names([f"{n} ({k} frame{'s' if k != 1 else ''})" for n, k in short], 3)
        raise ValueError(f"{len(short)} clip(s) too short for recipe {recipe.name!r}: its "
                         f"{recipe.detector.name} needs at least {need} frames (clips of at "
                         f"least {seconds:.3g} s at hop_length {f.hop_length}): {shown}")


def _maybe_mix_noise(
    recipe: Recipe,
    features: list[NDArray[np.float32]],
    noise: list[NDArray[np.float32]],
    seed: int,
) -> list[NDArray[np.float32]]:
    sup = recipe.supplemental
    if sup.noise_mix_prob <= 0.0:
        return features
    mixed: list[NDArray[np.float32]] = mix_noise(
        features, noise, sup.noise_mix_prob, sup.noise_snr_db, seed, db=recipe.features.log,
        power=recipe.features.power,
    )
    return mixed


def warn_thin_training(machine_type: str, domains: Sequence[Any]) -> None:
    """WARNING for training data the recipe cannot be calibrated on: a domain without clips
    (its test clips are scored against the other domain only) or fewer than
    ``MIN_DOMAIN_CLIPS`` clips in all (no spread to normalise or threshold by)."""
    names = [str(getattr(d, "value", d)) for d in domains]
    n = {d: names.count(d) for d in ("source", "target")}
    if len(names) < MIN_DOMAIN_CLIPS:
        logger.warning("%s: only %d training clip(s) (%d source, %d target): too few to "
                       "calibrate the scores; they and the decisions are unreliable",
                       machine_type, len(names), n["source"], n["target"])
    elif not n["target"] or not n["source"]:
        missing = "target" if not n["target"] else "source"
        logger.warning("%s: no %s-domain training clips: its %s test clips are scored "
                       "against the other domain only", machine_type, missing, missing)


def _warn_unknown_supplemental(recipe: Recipe, machine: MachineData) -> None:
    """WARNING when the recipe uses supplemental clips (clean ones as normal data, noise ones
    mixed in) and some of this type's are of neither kind by name: the 2025 supplemental names
    are not confirmed, and such clips were skipped without a word (found 2026-12-07)."""
    sup = recipe.supplemental
    if not (sup.clean_as_normal or sup.noise_mix_prob > 0):
        return
    unknown = [c.path.name for c in machine.supplemental if c.kind == "unknown"]
    if unknown:
        logger.warning("%s: %d supplemental clip(s) whose names say neither clean machine nor "
                       "noise (%s): the recipe's supplemental use skips them; rename them to "
                       "hold 'machine' or 'noise' (e.g. section_00_machine_0000.wav) to use "
                       "them", machine.machine_type, len(unknown), few_names(unknown, 3))


def _warn_static_clips(machine_type: str, clips: Sequence[Clip],
                       feats: Sequence[NDArray[np.float32]]) -> None:
    """WARNING naming training clips whose features never change over time (digital silence,
    a DC offset, a dropped-out recording): one such clip shifts the normal statistics of the
    whole type (a silent clip cut a type's target AUC from 0.61 to 0.37 in a probe)."""
    static = [c.path.name for c, f in zip(clips, feats, strict=True)
              if f.ndim == 2 and f.shape[0] > 1 and float(np.max(np.ptp(f, axis=0))) < 1e-6]
    if static:
        logger.warning("%s: %d training clip(s) whose features never change over time "
                       "(silence or a DC offset?), e.g. %s; check or remove them", machine_type,
                       len(static), few_names(static, 3))


def fit_machine(
    recipe: Recipe,
    machine: MachineData,
    *,
    cache_dir: Path | None = None,
    device: str = "auto",
    fidelity: float = 1.0,
    train_features: Sequence[NDArray[np.float32]] | None = None,
    noise_features: Sequence[NDArray[np.float32]] | None = None,
    shared: SharedStates | None = None,
    rep_cache: RepresentationCache | None = None,
) -> FittedMachine:
    """Train the recipe's ensemble on one machine type's training clips.

    ``train_features`` / ``noise_features`` may be passed precomputed (aligned with
    :func:`select_train_clips` / the noise supplemental clips); otherwise they are extracted.
    ``shared``: one state per ensemble member from :func:`fit_shared`; required when the
    recipe's detector has a shared stage (:func:`needs_shared`), ignored otherwise.
    ``rep_cache``: reuse/store each member's learned representation (search trials).
    """
    t0 = time.perf_counter()
    mt = machine.machine_type
    seed = derive_seed(recipe.seed, mt)
    dev = resolve_device(device)
    clips, domains, counts = select_train_clips(recipe, machine, fidelity=fidelity)
    if fidelity >= 1.0:
        warn_thin_training(mt, domains)
        _warn_unknown_supplemental(recipe, machine)
    noise_clips = [c for c in machine.supplemental if c.kind == "noise"]
    feats = list(train_features) if train_features is not None else _extract(
        clips, recipe, cache_dir)
    if len(feats) != len(clips):
        raise ValueError(f"{mt}: {len(feats)} train feature matrices for {len(clips)} clips")
    noise: list[NDArray[np.float32]] = []
    if recipe.supplemental.noise_mix_prob > 0:
        noise = list(noise_features) if noise_features is not None else _extract(
            noise_clips, recipe, cache_dir)
    counts["noise_clips"] = len(noise)
    if fidelity >= 1.0:
        _warn_static_clips(mt, clips, feats)
    t_feat = time.perf_counter() - t0

    spec = recipe.detector
    members: list[Detector] = []
    stats: list[ScoreStats] = []
    self_scores: list[NDArray[np.float64]] = []
    train_domains = np.asarray(domains, dtype=str)
    if needs_shared(recipe) and (shared is None or len(shared) != recipe.ensemble.size):
        raise ValueError(
            f"{mt}: recipe {recipe.name!r} trains its {spec.name} network over all machine types "
            f"(shared stage); pass shared= with {recipe.ensemble.size} state(s) from "
            "pipeline.fit_shared")
    for i in range(recipe.ensemble.size):
        member_seed = derive_seed(seed, "member", i)
        member_feats = _maybe_mix_noise(recipe, feats, noise, derive_seed(member_seed, "noise"))
        train = make_train_set(clips, domains, member_feats)
        det = make_detector(spec.name, dict(spec.params), member_seed)
        det.set_device(dev)
        if shared is not None and det.needs_shared():
            det.use_shared(dict(shared[i]))
        fit_member(det, train, rep_cache, recipe=recipe, member_seed=member_seed,
                   clips=clips + (noise_clips if noise else []), fidelity=fidelity)
        own = np.asarray(det.self_scores(train), dtype=np.float64)
        if own.shape != (len(train),):
            raise RuntimeError(f"{spec.name}.self_scores returned shape {own.shape}")
        members.append(det)
        self_scores.append(own)
        stats.append(ScoreStats.of(own))
    combined = combine_scores(self_scores, stats, recipe.ensemble.combine)
    normalizer = DomainNormalizer.fit(recipe.normalization.method, combined, train_domains)
    normed = normalizer.transform(combined, train_domains)
    threshold = fit_threshold(normed, recipe.threshold.method, recipe.threshold.quantile)
    counts["ensemble"] = recipe.ensemble.size
    timings = {"features": t_feat, "fit": time.perf_counter() - t0 - t_feat}
    logger.info("%s: fitted %s x%d on %d clips in %.1f s (threshold %.4g)", mt, spec.name,
                recipe.ensemble.size, len(clips), timings["fit"], threshold)
    return FittedMachine(recipe, mt, seed, members, stats, normalizer, threshold, counts,
                         timings, dev)


def score_clips(
    fitted: FittedMachine, features: Sequence[NDArray[np.float32]]
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """Normalised anomaly scores ``(n,)`` and decisions ``(n,)`` for feature matrices."""
    if not features:
        return np.zeros(0, np.float64), np.zeros(0, np.int8)
    domains: NDArray[np.str_] | None = None
    raw = []
    for i, member in enumerate(fitted.members):
        if i == 0 and fitted.normalizer.per_domain:  # the first member's domains, same pass
            own, nearest = member.score_with_domain(features)
            domains = None if nearest is None else np.asarray(nearest, dtype=str)
        else:
            own = member.score_samples(features)
        raw.append(np.asarray(own, dtype=np.float64))
    combined = combine_scores(raw, fitted.member_stats, fitted.recipe.ensemble.combine)
    scores = fitted.normalizer.transform(combined, domains)
    return scores, decide(scores, fitted.threshold)


def needs_shared(recipe: Recipe) -> bool:
    """Whether the recipe's detector learns a stage shared by all machine types of a run
    (e.g. ``margin_cnn`` with ``scope="all"``)."""
    det = make_detector(recipe.detector.name, dict(recipe.detector.params), recipe.seed)
    return det.needs_shared()


@stage_threads  # torch threads set explicitly for this stage (automl_asd.components.device)
def fit_shared(
    recipe: Recipe,
    machines: Mapping[str, MachineData],
    *,
    cache_dir: Path | None = None,
    device: str = "auto",
    fidelity: float = 1.0,
    num_threads: int | None = None,
) -> list[dict[str, NDArray[Any]]]:
    """The shared stage: one state per ensemble member, learned on the training clips of every
    machine type in ``machines`` (the clips :func:`select_train_clips` picks for each, with
    the recipe's noise mixing). Member ``i`` uses the seed ``derive_seed(recipe.seed,
    "shared", i)``, so the result does not depend on the order of the machine types.
    Test clips are never read.
    """
    if not machines:
        raise ValueError("fit_shared: no machine types")
    t0 = time.perf_counter()
    spec = recipe.detector
    dev = resolve_device(device)
    per_type: list[tuple[list[Clip], list[str], list[NDArray[np.float32]],
                         list[NDArray[np.float32]], str]] = []
    for mt in sorted(machines):
        machine = machines[mt]
        clips, domains, _ = select_train_clips(recipe, machine, fidelity=fidelity)
        noise_clips = [c for c in machine.supplemental if c.kind == "noise"]
        use_noise = recipe.supplemental.noise_mix_prob > 0 and bool(noise_clips)
        feats = _extract(clips + (noise_clips if use_noise else []), recipe, cache_dir)
        per_type.append((clips, domains, feats[:len(clips)], feats[len(clips):], mt))
    states: list[dict[str, NDArray[Any]]] = []
    for i in range(recipe.ensemble.size):
        member_seed = derive_seed(recipe.seed, "shared", i)
        all_clips: list[Clip] = []
        all_domains: list[str] = []
        all_feats: list[NDArray[np.float32]] = []
        for clips, domains, feats, noise, mt in per_type:
            all_clips += clips
            all_domains += domains
            all_feats += _maybe_mix_noise(recipe, feats, noise,
                                          derive_seed(member_seed, mt, "noise"))
        det = make_detector(spec.name, dict(spec.params), member_seed)
        det.set_device(dev)
        states.append(det.fit_shared(make_train_set(all_clips, all_domains, all_feats)))
    logger.info("shared stage: %s x%d on %d clips of %d machine type(s) in %.1f s", spec.name,
                recipe.ensemble.size, sum(len(p[0]) for p in per_type), len(per_type),
                time.perf_counter() - t0)
    return states


@stage_threads  # torch threads set explicitly for this stage (automl_asd.components.device)
@digests_remembered()  # one type reads each clip once under --verify-audio
def run_machine(
    recipe: Recipe,
    machine: MachineData,
    *,
    cache_dir: Path | None = None,
    device: str = "auto",
    fidelity: float = 1.0,
    num_threads: int | None = None,
    keep_fitted: bool = False,
    shared: SharedStates | None = None,
    rep_cache: RepresentationCache | None = None,
) -> MachineResult:
    """Train on one machine type's training clips and score its test clips.

    Args:
        recipe: the frozen recipe (applied unchanged).
        machine: the machine type's clips (``automl_asd.data.scan``); labels are never read.
        cache_dir: feature cache folder (``None``: the default cache).
        device: ``"auto"`` (GPU if visible), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        fidelity: in (0, 1]; fraction of source training clips used (nested subsample; every
            target clip kept) — the one cheap budget knob for early-stopping searches.
        num_threads: torch threads for this call (default: the usable cores; see
            :mod:`automl_asd.components.device`), restored afterwards.
        keep_fitted: keep the trained :class:`FittedMachine` in ``result.fitted``.
        shared: the run's shared-stage states (:func:`fit_shared`) for recipes that need them.
        rep_cache: representation cache (:mod:`automl_asd.representation_cache`).

    Returns:
        A :class:`MachineResult` aligned with the machine's test clips (path order).
    """
    t0 = time.perf_counter()
    clips, _, _ = select_train_clips(recipe, machine, fidelity=fidelity)
    test = list(machine.test)
    noise_clips = [c for c in machine.supplemental if c.kind == "noise"]
    use_noise = recipe.supplemental.noise_mix_prob > 0 and bool(noise_clips)
    # One extraction call over every clip keeps the feature cache pass single.
    everything = clips + (noise_clips if use_noise else []) + test
    feats = _extract(everything, recipe, cache_dir)
    check_clip_frames(recipe, [str(c.path) for c in everything], feats)  # before any fit
    n_tr, n_noise = len(clips), len(noise_clips) if use_noise else 0
    t_feat = time.perf_counter() - t0
    fitted = fit_machine(
        recipe, machine, cache_dir=cache_dir, device=device, fidelity=fidelity,
        train_features=feats[:n_tr], noise_features=feats[n_tr:n_tr + n_noise],
        shared=shared, rep_cache=rep_cache,
    )
    t1 = time.perf_counter()
    scores, decisions = score_clips(fitted, feats[n_tr + n_noise:])
    t_score = time.perf_counter() - t1
    timings = {
        "features": t_feat,
        "fit": fitted.timings["fit"],
        "score": t_score,
        "total": time.perf_counter() - t0,
    }
    counts = dict(fitted.counts)
    counts["test"] = len(test)
    return MachineResult(
        machine_type=machine.machine_type,
        recipe_hash=recipe.content_hash(),
        seed=fitted.seed,
        names=tuple(c.name for c in test),
        sections=tuple(c.section for c in test),
        scores=scores,
        decisions=decisions,
        threshold=float(fitted.threshold),
        timings=timings,
        counts=counts,
        device=fitted.device,
        fidelity=fidelity,
        fitted=fitted if keep_fitted else None,
    )
