"""Submission CSVs and ground truth in the DCASE Task 2 evaluator's formats.

Submission files, one pair per machine type and section (no header, ``\\n`` line ends)::

    anomaly_score_<mt>_section_<ss>_test.csv     <wav basename>,<float score>
    decision_result_<mt>_section_<ss>_test.csv   <wav basename>,<0|1>

Ground truth is either the evaluator's layout (``ground_truth_data/``, ``ground_truth_domain/``
and optionally ``ground_truth_attributes/`` holding ``ground_truth_<mt>_section_<ss>_test.csv``)
or a DCASE data root whose test clips have labelled names (read with ``automl_asd.data.scan``).
Submissions are joined to ground truth by file name, never by row order.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from automl_asd.errors import AutomlAsdError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SectionKey",
    "SectionTruth",
    "Submission",
    "SubmissionError",
    "align_submission",
    "decision_file_name",
    "ground_truth_from_data",
    "list_submission_sections",
    "normalize_section",
    "read_ground_truth",
    "read_official_ground_truth",
    "read_submission",
    "score_file_name",
    "write_evaluation_json",
    "write_evaluation_table",
    "write_submission",
]

logger = logging.getLogger(__name__)

#: ``(machine type, two-digit section)``, e.g. ``("fan", "00")``.
SectionKey = tuple[str, str]

GROUND_TRUTH_DATA_DIR = "ground_truth_data"
GROUND_TRUTH_DOMAIN_DIR = "ground_truth_domain"
GROUND_TRUTH_ATTRIBUTES_DIR = "ground_truth_attributes"

_SECTION_RE = re.compile(r"^(?:section_)?(\d{2})$")
_SUBMISSION_RE = re.compile(
    r"^(?P<kind>anomaly_score|decision_result)_(?P<mt>[^_]+)_section_(?P<ss>\d{2})_test\.csv$"
)
_GT_RE = re.compile(r"^ground_truth_(?P<mt>[^_]+)_section_(?P<ss>\d{2})_test\.csv$")
_MAX_LISTED = 10


class SubmissionError(AutomlAsdError, ValueError):
    """A submission or ground-truth file that cannot be used; the message names file and fix."""


def _names_list(names: Iterable[str]) -> str:
    items = sorted(names)
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


def normalize_section(section: str | int) -> str:
    """``0``, ``"00"`` or ``"section_00"`` -> ``"00"``; anything else raises ``ValueError``."""
    if isinstance(section, int) and not isinstance(section, bool):
        if 0 <= section <= 99:
            return f"{section:02d}"
    elif isinstance(section, str):
        match = _SECTION_RE.match(section)
        if match:
            return match.group(1)
    raise ValueError(f"section {section!r} is not a two-digit section id like '00'")


def _check_machine_type(machine_type: str) -> str:
    if not machine_type or "_" in machine_type or "/" in machine_type:
        raise ValueError(
            f"machine type {machine_type!r} must be non-empty without '_' or '/' "
            "(the evaluator takes it from the file name's third '_' token)"
        )
    return machine_type


def score_file_name(machine_type: str, section: str | int) -> str:
    """``anomaly_score_<mt>_section_<ss>_test.csv``."""
    mt = _check_machine_type(machine_type)
    return f"anomaly_score_{mt}_section_{normalize_section(section)}_test.csv"


def decision_file_name(machine_type: str, section: str | int) -> str:
    """``decision_result_<mt>_section_<ss>_test.csv``."""
    mt = _check_machine_type(machine_type)
    return f"decision_result_{mt}_section_{normalize_section(section)}_test.csv"


def _atomic_write_text(path: Path, text: str) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave the temp file behind
        raise


def _format_score(value: float) -> str:
    # repr() is the shortest string that round-trips the float64 exactly.
    return repr(float(value))


def write_submission(
    out_dir: str | Path,
    machine_type: str,
    section: str | int,
    names: Sequence[str | Path],
    scores: ArrayLike,
    decisions: ArrayLike,
) -> tuple[Path, Path]:
    """Write the score and decision CSVs of one machine type and section.

    Args:
        out_dir: folder to write into (created if missing).
        machine_type: e.g. ``"fan"`` (no ``_``).
        section: ``"00"`` (or ``0`` / ``"section_00"``).
        names: ``(n,)`` wav base names incl. ``.wav`` (paths are reduced to their name), unique.
        scores: ``(n,)`` finite anomaly scores, higher = more anomalous.
        decisions: ``(n,)`` 0/1 (or bool), 1 = anomaly.

    Returns:
        ``(anomaly_score_path, decision_result_path)``. Rows keep the given order; each line is
        ``name,value\\n`` (scores as shortest round-trip float, decisions as ``0``/``1``).
    """
    out = Path(out_dir)
    base = [Path(n).name if isinstance(n, Path) else str(n) for n in names]
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    d = np.asarray(decisions)
    if d.ndim != 1:
        d = d.reshape(-1)
    if not (len(base) == len(s) == len(d)):
        raise ValueError(
            f"write_submission {machine_type} section {section}: names, scores and decisions "
            f"differ in length ({len(base)}, {len(s)}, {len(d)})"
        )
    bad_names = [n for n in base if not n or any(ch in n for ch in ',"\n\r/\\')]
    if bad_names:
        raise ValueError(
            f"write_submission {machine_type}: clip names must be plain base names without "
            f"commas, quotes or separators: {_names_list(bad_names)}"
        )
    dup = [n for n, c in Counter(base).items() if c > 1]
    if dup:
        raise ValueError(
            f"write_submission {machine_type}: duplicate clip names {_names_list(dup)}"
        )
    nonfinite = [base[i] for i in np.flatnonzero(~np.isfinite(s))]
    if nonfinite:
        raise ValueError(
            f"write_submission {machine_type}: non-finite scores for {_names_list(nonfinite)}"
        )
    d_float = d.astype(np.float64)
    bad_dec = [base[i] for i in np.flatnonzero((d_float != 0.0) & (d_float != 1.0))]
    if bad_dec:
        raise ValueError(
            f"write_submission {machine_type}: decisions must be 0 or 1, not for "
            f"{_names_list(bad_dec)}"
        )
    score_path = out / score_file_name(machine_type, section)
    decision_path = out / decision_file_name(machine_type, section)
    _atomic_write_text(
        score_path, "".join(f"{n},{_format_score(v)}\n" for n, v in zip(base, s, strict=True))
    )
    _atomic_write_text(
        decision_path, "".join(f"{n},{int(v)}\n" for n, v in zip(base, d_float, strict=True))
    )
    logger.debug("wrote %s and %s (%d clips)", score_path, decision_path, len(base))
    return score_path, decision_path


def _read_pairs(path: Path, *, exact_columns: bool = False) -> list[tuple[str, str, int]]:
    """Rows ``(name, value, line number)`` of a headerless two-column CSV (more columns are
    refused with ``exact_columns``). A UTF-8 byte-order mark and blank lines at the end of the
    file are accepted (editors add them); a blank line between rows is an error."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SubmissionError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path}: not UTF-8 text ({exc.reason})") from None
    rows: list[tuple[str, str, int]] = []
    parsed = list(csv.reader(io.StringIO(text)))
    while parsed and not "".join(parsed[-1]).strip():
        parsed.pop()  # trailing blank lines
    for lineno, row in enumerate(parsed, start=1):
        if len(row) < 2 or (exact_columns and len(row) > 2):
            raise SubmissionError(
                f"{path}, line {lineno}: expected 'name,value', got {','.join(row)!r}"
                + (" (empty line)" if not row else "")
                + (f" ({len(row)} columns)" if len(row) > 2 else "")
            )
        rows.append((row[0].strip(), row[1].strip(), lineno))
    if not rows:
        raise SubmissionError(f"{path}: file is empty")
    return rows


def _parse_float(path: Path, lineno: int, name: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        hint = " (submission files have no header row)" if lineno == 1 else ""
        raise SubmissionError(
            f"{path}, line {lineno}: value {value!r} for {name!r} is not a number{hint}"
        ) from None
    if not math.isfinite(x):
        raise SubmissionError(f"{path}, line {lineno}: non-finite value {value!r} for {name!r}")
    return x


def _read_values(path: Path, *, binary: str | None = None,
                 exact_columns: bool = False) -> dict[str, float]:
    """name -> value; ``binary`` names the 0/1 quantity (e.g. ``"decision"``) to enforce."""
    values: dict[str, float] = {}
    dups: list[str] = []
    for name, raw, lineno in _read_pairs(path, exact_columns=exact_columns):
        x = _parse_float(path, lineno, name, raw)
        if binary and x not in (0.0, 1.0):
            raise SubmissionError(
                f"{path}, line {lineno}: {binary} {raw!r} for {name!r} must be 0 or 1"
            )
        if name in values:
            dups.append(name)
        values[name] = x
    if dups:
        raise SubmissionError(f"{path}: duplicate rows for {_names_list(set(dups))}")
    return values


@dataclass(frozen=True)
class Submission:
    """One section's submission as read from disk (name -> value, in file order)."""

    machine_type: str
    section: str
    scores: Mapping[str, float]
    decisions: Mapping[str, int] | None
    score_path: Path
    decision_path: Path | None


def read_submission(
    scores_dir: str | Path,
    machine_type: str,
    section: str | int,
    *,
    require_decisions: bool = True,
) -> Submission:
    """Read ``anomaly_score_...`` and ``decision_result_...`` of one machine type and section.

    Raises ``SubmissionError`` naming the missing file(s), a malformed line (header row,
    non-number, decision not 0/1) or duplicate names.
    """
    root = Path(scores_dir)
    ss = normalize_section(section)
    score_path = root / score_file_name(machine_type, ss)
    decision_path = root / decision_file_name(machine_type, ss)
    missing = [p for p in (score_path, decision_path) if not p.is_file()]
    if not require_decisions and decision_path in missing:
        missing.remove(decision_path)
    if missing:
        raise SubmissionError(
            f"missing submission file(s) {', '.join(str(p) for p in missing)} "
            f"for {machine_type} section {ss}"
        )
    scores = _read_values(score_path, exact_columns=True)
    decisions: dict[str, int] | None = None
    if decision_path.is_file():
        decisions = {k: int(v) for k, v in _read_values(decision_path, binary="decision",
                                                          exact_columns=True).items()}
    return Submission(
        machine_type, ss, scores, decisions, score_path,
        decision_path if decisions is not None else None,
    )


def list_submission_sections(scores_dir: str | Path) -> list[SectionKey]:
    """Sorted ``(machine type, section)`` of every ``anomaly_score_*`` file in ``scores_dir``."""
    keys: set[SectionKey] = set()
    for p in Path(scores_dir).iterdir():
        m = _SUBMISSION_RE.match(p.name)
        if m and m.group("kind") == "anomaly_score":
            keys.add((m.group("mt"), m.group("ss")))
    return sorted(keys)


@dataclass(frozen=True)
class SectionTruth:
    """Ground truth of one (machine type, section).

    ``names[i]`` (wav base name) has label ``labels[i]`` (1 = anomaly) and domain
    ``domains[i]`` (``"source"``/``"target"``). ``aliases`` maps other accepted row names
    (labelled names of anonymised eval clips, from ``ground_truth_attributes``) to ``names``.
    """

    machine_type: str
    section: str
    names: tuple[str, ...]
    labels: NDArray[np.int8]
    domains: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.labels) == len(self.domains)):
            raise ValueError(
                f"SectionTruth {self.machine_type} section {self.section}: names, labels and "
                f"domains differ in length"
            )


def _read_truth_values(path: Path, what: str) -> dict[str, int]:
    values = _read_values(path, binary=what)  # 0/1 per row, duplicates rejected
    return {k: int(v) for k, v in values.items()}


def read_official_ground_truth(
    gt_dir: str | Path, *, machine_types: Sequence[str] | None = None
) -> dict[SectionKey, SectionTruth]:
    """Read the evaluator's ground-truth layout under ``gt_dir``.

    ``ground_truth_data/ground_truth_<mt>_section_<ss>_test.csv`` (``name,0|1``, 1 = anomaly)
    lists the sections; the same name under ``ground_truth_domain/`` (0 = source, 1 = target)
    is required, under ``ground_truth_attributes/`` (``name,labelled name[,...]``) optional.
    """
    root = Path(gt_dir)
    data_dir = root / GROUND_TRUTH_DATA_DIR
    if not data_dir.is_dir():
        raise SubmissionError(f"{data_dir}: not a folder (expected the evaluator's layout)")
    files: dict[SectionKey, Path] = {}
    for path in sorted(data_dir.iterdir()):
        m = _GT_RE.match(path.name)
        if m:
            files[(m.group("mt"), m.group("ss"))] = path
        else:
            logger.debug("ignoring %s (not ground_truth_<mt>_section_<ss>_test.csv)", path)
    if not files:
        raise SubmissionError(f"{data_dir}: no ground_truth_<mt>_section_<ss>_test.csv files")
    available = sorted({mt for mt, _ in files})
    if machine_types is not None:
        unknown = sorted(set(machine_types) - set(available))
        if unknown:
            raise SubmissionError(
                f"{data_dir}: machine type(s) {unknown} have no ground truth; "
                f"available: {available}"
            )
        files = {k: v for k, v in files.items() if k[0] in set(machine_types)}
    out: dict[SectionKey, SectionTruth] = {}
    for (mt, ss), path in sorted(files.items()):
        labels = _read_truth_values(path, "label (1 = anomaly)")
        domain_path = root / GROUND_TRUTH_DOMAIN_DIR / path.name
        if not domain_path.is_file():
            raise SubmissionError(f"{domain_path}: missing (domain ground truth for {path})")
        domains = _read_truth_values(domain_path, "domain (1 = target)")
        if set(domains) != set(labels):
            raise SubmissionError(
                f"{domain_path}: names differ from {path}: only in labels: "
                f"[{_names_list(set(labels) - set(domains))}], only in domains: "
                f"[{_names_list(set(domains) - set(labels))}]"
            )
        aliases: dict[str, str] = {}
        attr_path = root / GROUND_TRUTH_ATTRIBUTES_DIR / path.name
        if attr_path.is_file():
            for name, labelled, lineno in _read_pairs(attr_path):
                if name not in labels:
                    raise SubmissionError(
                        f"{attr_path}, line {lineno}: {name!r} is not in {path}"
                    )
                aliases[f"{labelled}.wav"] = name
        names = tuple(labels)
        out[(mt, ss)] = SectionTruth(
            mt, ss, names,
            np.array([labels[n] for n in names], dtype=np.int8),
            tuple("target" if domains[n] == 1 else "source" for n in names),
            aliases,
        )
    return out


def ground_truth_from_data(
    root: str | Path, *, machine_types: Sequence[str] | None = None
) -> dict[SectionKey, SectionTruth]:
    """Ground truth from a DCASE data root whose test clips have labelled (dev) names.

    Uses ``automl_asd.data.scan``; raises ``SubmissionError`` naming an unlabelled test clip
    (anonymised eval names need the evaluator's ground-truth folders instead).
    """
    from automl_asd import data

    machines = data.scan(Path(root), machine_types=machine_types)
    out: dict[SectionKey, SectionTruth] = {}
    for mt, machine in machines.items():
        by_section: dict[str, list[Any]] = {}
        for clip in machine.test:
            label, domain = str(clip.label), str(clip.domain)
            if label not in ("normal", "anomaly") or domain not in ("source", "target"):
                raise SubmissionError(
                    f"{clip.path}: test clip without label/domain in its name; point "
                    "--ground-truth at a folder with ground_truth_data/ and "
                    "ground_truth_domain/ for anonymised evaluation clips"
                )
            by_section.setdefault(normalize_section(clip.section), []).append(clip)
        if not by_section:
            logger.warning("%s: no test clips, skipped", Path(root) / mt)
        for ss, clips in sorted(by_section.items()):
            names = tuple(c.name for c in clips)
            dup = [n for n, c in Counter(names).items() if c > 1]
            if dup:
                raise SubmissionError(f"{Path(root) / mt}: duplicate test names {_names_list(dup)}")
            out[(mt, ss)] = SectionTruth(
                mt, ss, names,
                np.array([str(c.label) == "anomaly" for c in clips], dtype=np.int8),
                tuple(str(c.domain) for c in clips),
            )
    if not out:
        raise SubmissionError(f"{root}: no labelled test clips found")
    return out


def read_ground_truth(
    path: str | Path, *, machine_types: Sequence[str] | None = None
) -> dict[SectionKey, SectionTruth]:
    """Ground truth from ``path``: the evaluator's layout if ``path/ground_truth_data`` exists,
    else a DCASE data root with labelled test names."""
    root = Path(path)
    if not root.is_dir():
        raise SubmissionError(f"{root}: ground-truth folder not found")
    if (root / GROUND_TRUTH_DATA_DIR).is_dir():
        return read_official_ground_truth(root, machine_types=machine_types)
    return ground_truth_from_data(root, machine_types=machine_types)


def align_submission(
    truth: SectionTruth, submission: Submission
) -> tuple[NDArray[np.float64], NDArray[np.int8] | None]:
    """Scores (and decisions) of ``submission`` in the order of ``truth.names``, joined by name.

    Row names may be ground-truth names or their ``aliases``. Raises ``SubmissionError``
    listing missing clips, extra rows and names given twice (directly and via an alias).
    """
    def join(values: Mapping[str, float], path: Path | None) -> dict[str, float]:
        mapped: dict[str, float] = {}
        dups: list[str] = []
        for name, v in values.items():
            key = truth.aliases.get(name, name)
            if key in mapped:
                dups.append(key)
            mapped[key] = v
        expected = set(truth.names)
        missing = expected - set(mapped)
        extra = set(mapped) - expected
        msgs: list[str] = []
        if missing:
            msgs.append(f"{len(missing)} missing clip(s): {_names_list(missing)}")
        if extra:
            msgs.append(f"{len(extra)} extra row(s) not in the ground truth: {_names_list(extra)}")
        if dups:
            msgs.append(f"clips given twice (name and labelled alias): {_names_list(set(dups))}")
        if msgs:
            raise SubmissionError(f"{path}: " + "; ".join(msgs))
        return mapped

    scores = join(submission.scores, submission.score_path)
    s = np.array([scores[n] for n in truth.names], dtype=np.float64)
    if submission.decisions is None:
        return s, None
    decisions = join(
        {k: float(v) for k, v in submission.decisions.items()}, submission.decision_path
    )
    d = np.array([decisions[n] for n in truth.names], dtype=np.int8)
    return s, d


def write_evaluation_table(table: pd.DataFrame, path: str | Path, *, official_score: float) -> Path:
    """Write a :func:`automl_asd.metrics.summary_table` as CSV, or as Markdown if ``.md``.

    CSV keeps full float precision; Markdown rounds to 4 decimals and ends with the Omega line.
    """
    out = Path(path)
    if out.suffix.lower() == ".md":
        cols = [str(c) for c in table.columns]
        lines = [
            "| " + " | ".join([str(table.index.name or ""), *cols]) + " |",
            "|" + "---|" * (len(cols) + 1),
        ]
        for label, row in table.iterrows():
            cells = ["" if math.isnan(float(v)) else f"{float(v):.4f}" for v in row.to_numpy()]
            lines.append("| " + " | ".join([str(label), *cells]) + " |")
        lines += ["", f"Official score (Ω): {official_score:.6f}", ""]
        _atomic_write_text(out, "\n".join(lines))
    else:
        _atomic_write_text(out, table.to_csv(lineterminator="\n"))
    return out


def write_evaluation_json(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``payload`` as strict JSON (no NaN; indent 2, sorted as given)."""
    out = Path(path)
    _atomic_write_text(out, json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return out
