"""Scores against ground truth: THE one scoring loop over ``(machine type, section)``.

:func:`evaluate_scores` joins each section's scores to its ground truth by clip name and
computes the official metrics (:mod:`automl_asd.evaluation.metrics`) and Ω. Everything that
scores a recipe uses it: the search objective (:mod:`automl_asd.evaluation.objective`),
``apply``'s report (:func:`evaluate_outputs`), ``automl-asd evaluate``
(:func:`evaluate_submission`) and the benches.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from automl_asd import ground_truth
from automl_asd.data import Domain, Label, MachineData, scan
from automl_asd.evaluation.metrics import (
    METRIC_FIELDS,
    MachineMetrics,
    machine_metrics,
    official_score,
    summary_table,
    undefined_reason,
)
from automl_asd.ground_truth import SectionKey, SectionTruth
from automl_asd.io.official_table import write_results_table
from automl_asd.io.plots import plot_roc, plot_score_histogram
from automl_asd.io.results import recipe_of_run, write_json
from automl_asd.io.submission import (
    SubmissionError,
    list_submission_sections,
    read_submission,
    short_list,
)
from automl_asd.progress import format_seconds

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SectionScores",
    "SubmissionEvaluation",
    "ScoredClips",
    "evaluate_outputs",
    "evaluate_result",
    "evaluate_scores",
    "evaluate_submission",
    "labelled_truth",
    "section_scores",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SectionScores:
    """One section's scores (and optional 0/1 decisions) by clip name, in any order.

    ``score_path`` / ``decision_path`` name where they were read from (error messages).
    """

    names: tuple[str, ...]
    scores: NDArray[np.float64]
    decisions: NDArray[np.float64] | None = None
    score_path: str = ""
    decision_path: str = ""
    #: Names of ``decisions`` when they are not in the order of ``names``.
    decision_names: tuple[str, ...] | None = None


def section_scores(machine_type: str, names: Sequence[str], sections: Sequence[str],
                   scores: ArrayLike, decisions: ArrayLike | None = None
                   ) -> dict[SectionKey, SectionScores]:
    """Per-clip arrays of one machine type (e.g. a ``pipeline.MachineResult``) grouped by
    section, keeping their order."""
    s = np.asarray(scores, dtype=np.float64)
    d = None if decisions is None else np.asarray(decisions, dtype=np.float64)
    secs = np.asarray([str(x) for x in sections])
    all_names = [str(n) for n in names]
    if not (len(all_names) == len(secs) == len(s)) or (d is not None and len(d) != len(s)):
        raise ValueError(f"section_scores {machine_type}: names, sections, scores and decisions "
                         "differ in length")
    out: dict[SectionKey, SectionScores] = {}
    for section in sorted(set(secs.tolist())):
        sel = secs == section
        out[(machine_type, section)] = SectionScores(
            tuple(n for n, keep in zip(all_names, sel, strict=True) if keep), s[sel],
            None if d is None else d[sel])
    return out


class ScoredClips(Protocol):
    """Per-clip scores of one machine type (``pipeline.MachineResult`` is one)."""

    @property
    def names(self) -> Sequence[str]: ...
    @property
    def sections(self) -> Sequence[str]: ...
    @property
    def scores(self) -> ArrayLike: ...
    @property
    def decisions(self) -> ArrayLike: ...


@dataclass(frozen=True)
class SubmissionEvaluation:
    """Result of :func:`evaluate_scores`.

    ``per_section`` maps ``(machine type, section)`` to its metrics; ``official_score`` is Ω;
    ``scores`` holds each section's scores in the order of its ground truth's ``names``;
    ``table`` is :func:`~automl_asd.evaluation.metrics.summary_table` of ``per_section``.
    """

    per_section: Mapping[SectionKey, MachineMetrics]
    official_score: float
    scores: Mapping[SectionKey, NDArray[np.float64]] = field(
        default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        return summary_table(self.per_section)

    def to_json_dict(self) -> dict[str, Any]:
        """``{"official_score": float, "machine_types": {mt: {metric: value}}}``.

        A machine type with several sections gets the arithmetic mean over its sections
        (as the evaluator's paper table) plus ``"sections": {ss: {metric: value}}``.
        NaN (absent decision metrics) becomes ``None``.
        """
        by_mt: dict[str, dict[str, MachineMetrics]] = {}
        for (mt, section), m in sorted(self.per_section.items()):
            by_mt.setdefault(mt, {})[section] = m
        out: dict[str, Any] = {}
        for mt, sections in by_mt.items():
            dicts = {ss: _json_metrics(m.as_dict()) for ss, m in sections.items()}
            if len(dicts) == 1:
                out[mt] = next(iter(dicts.values()))
                continue
            mean: dict[str, Any] = {}
            for name in METRIC_FIELDS:
                vals = [d[name] for d in dicts.values()]
                present = [v for v in vals if v is not None]
                mean[name] = float(np.mean(present)) if len(present) == len(vals) else None
            mean["sections"] = dicts
            out[mt] = mean
        return {"official_score": float(self.official_score), "machine_types": out}


def _json_metrics(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return {
        k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in values.items()
    }


def _name_join(truth: SectionTruth, names: Sequence[str]
               ) -> tuple[dict[str, int], set[str], set[str], list[str]]:
    """Join ``names`` to ``truth.names`` (a name may be a ground-truth name or its alias):
    the index in ``names`` of each joined ground-truth name, the ground-truth names no name
    joins, the names that join none, and the ground-truth names joined twice (directly and via
    an alias)."""
    position: dict[str, int] = {}
    twice: list[str] = []
    for i, name in enumerate(names):
        key = truth.aliases.get(name, name)
        if key in position:
            twice.append(key)
        position[key] = i
    expected = set(truth.names)
    return position, expected - set(position), set(position) - expected, twice


def _aligned(truth: SectionTruth, names: Sequence[str], values: NDArray[np.float64],
             source: str) -> NDArray[np.float64]:
    """``values`` (one per name) in the order of ``truth.names``, joined by name
    (:func:`_name_join`). Raises ``SubmissionError`` listing missing clips, extra rows and
    names given twice (directly and via an alias)."""
    position, missing, extra, dups = _name_join(truth, names)
    msgs: list[str] = []
    if missing:
        msgs.append(f"{len(missing)} missing clip(s): {short_list(missing)}")
    if extra:
        msgs.append(f"{len(extra)} extra row(s) not in the ground truth: {short_list(extra)}")
    if dups:
        msgs.append(f"clips given twice (name and labelled alias): {short_list(set(dups))}")
    if msgs:
        where = source or f"{truth.machine_type} section {truth.section}"
        raise SubmissionError(f"{where}: " + "; ".join(msgs))
    return np.array([values[position[n]] for n in truth.names], dtype=np.float64)


def evaluate_scores(
    truth: Mapping[SectionKey, SectionTruth],
    scores_by_section: Mapping[SectionKey, SectionScores],
    *,
    what: str = "scores",
    problems: Sequence[str] = (),
) -> SubmissionEvaluation:
    """Official metrics of every section of ``truth`` and Ω over them (THE scoring loop).

    Each section's scores are joined to its ground truth by clip name (row order is free).
    Sections of ``scores_by_section`` without ground truth are not evaluated. Raises
    ``SubmissionError`` listing every problem (a section without scores, missing/extra/
    duplicate clip names, and the caller's own ``problems`` found while reading them); ``what``
    names the scores in that message.
    """
    problems = list(problems)
    if not truth and not problems:
        raise SubmissionError(f"{what}: no ground-truth sections to evaluate")
    per_section: dict[SectionKey, MachineMetrics] = {}
    aligned: dict[SectionKey, NDArray[np.float64]] = {}
    for key in sorted(truth):
        sec_truth, sub = truth[key], scores_by_section.get(key)
        if sub is None:
            problems.append(f"no scores for {key[0]} section {key[1]}")
            continue
        try:
            scores = _aligned(sec_truth, sub.names, np.asarray(sub.scores, dtype=np.float64),
                              sub.score_path)
            decisions = (None if sub.decisions is None else
                         _aligned(sec_truth, sub.decision_names or sub.names, sub.decisions,
                                  sub.decision_path).astype(np.int8))
        except SubmissionError as exc:
            problems.append(str(exc))
            continue
        reason = undefined_reason(sec_truth.labels, sec_truth.domains)
        if reason is not None:
            problems.append(f"{key[0]} section {key[1]}: {reason}")
            continue
        per_section[key] = machine_metrics(sec_truth.labels, sec_truth.domains, scores, decisions)
        aligned[key] = scores
    if problems:
        raise SubmissionError(f"{what} cannot be evaluated:\n  - " + "\n  - ".join(problems))
    return SubmissionEvaluation(per_section, official_score(per_section), aligned)


def evaluate_result(machine: MachineData, result: ScoredClips) -> SubmissionEvaluation:
    """:func:`evaluate_scores` of one machine type's scored test clips against the labels of
    its clips (:func:`automl_asd.ground_truth.from_clips`), per section."""
    return evaluate_scores(
        ground_truth.from_clips(machine),
        section_scores(machine.machine_type, result.names, result.sections, result.scores,
                       result.decisions),
        what=f"{machine.machine_type} scores")


def evaluate_submission(
    scores_dir: str | Path,
    truth: str | Path | Mapping[SectionKey, SectionTruth],
    *,
    machine_types: Sequence[str] | None = None,
    require_decisions: bool = True,
    warn_unscored: bool = True,
) -> SubmissionEvaluation:
    """Evaluate a folder of submission CSVs against ground truth, like the official evaluator.

    Args:
        scores_dir: folder with ``anomaly_score_<mt>_section_<ss>_test.csv`` and
            ``decision_result_<mt>_section_<ss>_test.csv`` (headerless ``name,value``).
        truth: ground truth from :mod:`automl_asd.ground_truth`, or a path for
            :func:`automl_asd.ground_truth.read` (the evaluator's layout or a DCASE data root
            with labelled test names).
        machine_types: evaluate only these machine types of the ground truth.
        require_decisions: if false, a missing decision file leaves the decision metrics None.
        warn_unscored: warn about submission files of machine types or sections the ground
            truth lacks (Ω covers the others only); false: log them at INFO (``apply``'s
            report, whose unlabelled types are expected to have none).

    Raises:
        SubmissionError: missing files, missing/extra/duplicate clip names (all listed).
        GroundTruthError: unreadable ground truth.
    """
    if not Path(scores_dir).is_dir():
        raise SubmissionError(f"{scores_dir}: submission folder not found")
    gt = (dict(truth) if isinstance(truth, Mapping)
          else ground_truth.read(truth, machine_types=machine_types))
    if machine_types is not None:
        wanted = set(machine_types)
        unknown = sorted(wanted - {mt for mt, _ in gt})
        if unknown:
            raise SubmissionError(
                f"machine types {unknown} have no ground truth; "
                f"known: {sorted({mt for mt, _ in gt})}"
            )
        gt = {k: v for k, v in gt.items() if k[0] in wanted}
    if not gt:
        raise SubmissionError(f"no ground-truth sections found in {truth}")

    unscored = sorted(set(list_submission_sections(scores_dir)) - set(gt))
    # found 2026-12-07: these were logged at INFO only, so `-q` hid that Ω covers a subset
    # of the submission; types left out by --machine-types are the user's choice (INFO)
    lacking = [k for k in unscored if machine_types is None or k[0] in machine_types]
    if lacking:
        logger.log(logging.WARNING if warn_unscored else logging.INFO,
                   "%s: no ground truth for %s; those files are not evaluated (Ω covers the "
                   "other sections only)", scores_dir,
                   ", ".join(f"{mt} section {ss}" for mt, ss in lacking))
    if len(lacking) < len(unscored):
        logger.info("%s: not evaluated (machine types not asked for): %s", scores_dir,
                    ", ".join(f"{mt} section {ss}" for mt, ss in unscored
                              if (mt, ss) not in lacking))
    problems: list[str] = []
    subs: dict[SectionKey, SectionScores] = {}
    for key in sorted(gt):
        try:
            sub = read_submission(scores_dir, *key, require_decisions=require_decisions)
        except SubmissionError as exc:
            problems.append(str(exc))
            continue
        subs[key] = SectionScores(
            tuple(sub.scores), np.array(list(sub.scores.values()), dtype=np.float64),
            None if sub.decisions is None else np.array(list(sub.decisions.values()),
                                                        dtype=np.float64),
            str(sub.score_path), "" if sub.decision_path is None else str(sub.decision_path),
            None if sub.decisions is None else tuple(sub.decisions))
    # found 2026-12-07: the evaluator's repository holds every machine type of the year; a
    # submission of some of them failed naming the missing files, not the way to score the rest
    gt_types = {mt for mt, _ in gt}
    scored_types = sorted(gt_types & {mt for mt, _ in list_submission_sections(scores_dir)})
    absent = sorted(gt_types - set(scored_types))
    if absent and scored_types and machine_types is None and not isinstance(truth, Mapping):
        problems.append(
            f"no submission files at all for machine type(s) {', '.join(absent)}; to evaluate "
            f"only the others, add --machine-types {' '.join(scored_types)} (Ω then covers "
            "those types only)")
    evaluation = evaluate_scores({k: v for k, v in gt.items() if k in subs}, subs,
                                 what=f"submission {scores_dir}", problems=problems)
    logger.info("evaluated %d sections of %s: official score %.6f",
                len(evaluation.per_section), scores_dir, evaluation.official_score)
    return evaluation


# --------------------------------------------------------------------------- apply's report


def labelled_truth(data_root: Path, machine_types: Sequence[str], gt_dir: Path | None
                   ) -> dict[SectionKey, SectionTruth]:
    """Ground truth of those ``machine_types`` that have it: the evaluator's layout under
    ``gt_dir`` (if given) for the types it covers, read for those types only; labelled test
    names under ``data_root`` for the others (a type with any unlabelled test clip is left
    out, with a warning when ``gt_dir`` was given). A section whose labels leave the official
    metrics undefined (no anomalous clips, or no normal clips of a domain: e.g. a user's own
    machine recorded in good condition only) is left out with a warning naming it.
    :class:`~automl_asd.ground_truth.GroundTruthError` for a bad file of those types."""
    truth: dict[SectionKey, SectionTruth] = {}
    rest = list(machine_types)
    if gt_dir is not None:
        covered = sorted(ground_truth.official_types(gt_dir) & set(machine_types))
        if covered:
            official = ground_truth.read_official(gt_dir, machine_types=covered)
            _check_clip_names(data_root, covered, official)
            truth.update(official)
        rest = [mt for mt in machine_types if mt not in covered]
    for mt, machine in (scan(data_root, machine_types=rest).items() if rest else ()):
        if machine.test and all(c.label is not Label.UNKNOWN
                                and c.domain is not Domain.UNKNOWN for c in machine.test):
            truth.update(ground_truth.from_clips(machine))
        elif gt_dir is not None:
            logger.warning("%s: not in --ground-truth %s and its test names carry no labels; "
                           "no metrics for this machine type", mt, gt_dir)
        else:
            logger.info("%s: test labels unknown; no metrics for this machine type", mt)
    out: dict[SectionKey, SectionTruth] = {}
    for key, sec in sorted(truth.items()):
        reason = undefined_reason(sec.labels, sec.domains)
        if reason is None:
            out[key] = sec
        else:
            logger.warning("%s section %s: %s; no metrics for this section", key[0], key[1],
                           reason)
    return out


def _check_clip_names(data_root: Path, machine_types: Sequence[str],
                      truth: Mapping[SectionKey, SectionTruth]) -> None:
    """:class:`~automl_asd.ground_truth.GroundTruthError` unless the ground truth's rows of
    ``machine_types`` name exactly their test clips under ``data_root`` (a clip may be named
    by its labelled alias), so that ``apply`` fails on a foreign ground truth before any type
    is trained, not when its report scores the written CSVs."""
    for mt, machine in scan(data_root, machine_types=machine_types).items():
        if not machine.test:  # no test zip extracted yet: apply says so itself, and how
            continue
        sections = {c.section for c in machine.test}
        for (t_mt, ss), sec in sorted(truth.items()):
            if t_mt != mt:
                continue
            _, no_clip, no_row, twice = _name_join(
                sec, [c.name for c in machine.test if c.section == ss])
            found = []
            if no_row:
                found.append(f"{len(no_row)} test clip(s) without a row ({short_list(no_row)})")
            if no_clip:
                found.append(f"{len(no_clip)} row(s) naming no clip of {machine.root / 'test'} "
                             f"({short_list(no_clip)})" if ss in sections else
                             f"rows of section {ss}, which {machine.root / 'test'} lacks")
            if twice:
                found.append(f"rows whose clip is there twice (by name and by labelled name): "
                             f"{short_list(set(twice))}")
            if found:
                raise ground_truth.GroundTruthError(
                    f"{sec.source}: {'; '.join(found)}; is this the ground truth of this data "
                    "set? (pass the evaluator's folder of the same year, or leave out "
                    "--ground-truth)")


def evaluate_outputs(
    out_dir: Path,
    data_root: Path,
    summaries: Mapping[str, Mapping[str, Any]],
    *,
    ground_truth: Path | None = None,
    plots: bool = True,
) -> tuple[SubmissionEvaluation | None, list[Path]]:
    """Score the written submission files against labels, after all tasks have finished.

    Labels come from ``ground_truth`` (the official evaluator layout) or from labelled test
    names under ``data_root``; machine types without labels are left out. Writes
    ``results.csv``, ``results.md`` (with the apply seconds per machine type), ``metrics.json``
    (the ``evaluate --json`` format) and, if ``plots``, ``roc_<mt>.png`` / ``hist_<mt>.png``.
    Returns ``(evaluation or None, files written)``.
    """
    truth = labelled_truth(Path(data_root), sorted(summaries), ground_truth) if summaries else {}
    if not truth:
        return None, []
    evaluation = evaluate_submission(out_dir, truth, warn_unscored=False)
    files: list[Path] = []
    if plots:
        t0, last = time.monotonic(), time.monotonic()
        n = len(truth)
        if n > 1:  # a few seconds each: on many types the longest step of a run
            logger.info("ROC curves and score histograms of %d section(s): drawing those "
                        "a PNG does not already show (--no-plots skips them)", n)
        for i, ((mt, ss), sec_truth) in enumerate(sorted(truth.items()), 1):
            if time.monotonic() - last > 20:
                last = time.monotonic()
                logger.info("plots: %d/%d section(s) in %s", i - 1, n,
                            format_seconds(last - t0))
            tag = mt if sum(k[0] == mt for k in truth) == 1 else f"{mt}_section_{ss}"
            y, dom = np.asarray(sec_truth.labels), np.asarray(sec_truth.domains)
            scores = evaluation.scores[(mt, ss)]
            files.append(plot_roc(Path(out_dir) / f"roc_{tag}.png", tag, y, dom, scores))
            files.append(plot_score_histogram(
                Path(out_dir) / f"hist_{tag}.png", tag, y, dom, scores,
                threshold=summaries[mt].get("threshold"),
            ))
    seconds = {mt: float(s.get("seconds", 0.0)) for mt, s in summaries.items()}
    files.extend(write_results_table(Path(out_dir), evaluation.per_section, seconds=seconds,
                                     recipe=recipe_of_run(summaries)))
    files.append(write_json(Path(out_dir) / "metrics.json", evaluation.to_json_dict()))
    return evaluation, files
