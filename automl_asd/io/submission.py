"""Submission CSVs in the DCASE Task 2 evaluator's format: names, write, read, list.

One pair of files per machine type and section (no header, ``\\n`` line ends)::

    anomaly_score_<mt>_section_<ss>_test.csv     <wav basename>,<float score>
    decision_result_<mt>_section_<ss>_test.csv   <wav basename>,<0|1>

Ground truth lives in :mod:`automl_asd.ground_truth`; submissions are joined to it by file name,
never by row order, in :mod:`automl_asd.evaluation.evaluate`.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from automl_asd.components.files import atomic_write_text
from automl_asd.data import UNWRITABLE_CHARS
from automl_asd.errors import PermanentError
from automl_asd.ground_truth import read_name_rows
from automl_asd.progress import few_names

__all__ = [
    "Submission",
    "SubmissionError",
    "decision_file_name",
    "list_submission_sections",
    "normalize_section",
    "read_submission",
    "score_file_name",
    "short_list",
    "write_submission",
]

logger = logging.getLogger(__name__)

_SECTION_RE = re.compile(r"^(?:section_)?(\d{2})$")
_SUBMISSION_RE = re.compile(
    r"^(?P<kind>anomaly_score|decision_result)_(?P<mt>[^_]+)_section_(?P<ss>\d{2})_test\.csv$"
)
#: the official baseline's own file names, which the official evaluator also reads when the
#: plain name is absent:
#: ``anomaly_score_DCASE2025T2<mt>_section_<ss>_test_seed<seed><tag>_Eval.csv``
_BASELINE_RE = re.compile(
    r"^(?P<kind>anomaly_score|decision_result)_DCASE\d{4}T2(?P<mt>[^_]+)_section_(?P<ss>\d{2})"
    r"_test_seed.*_Eval\.csv$"
)
_MAX_LISTED = 10


class SubmissionError(PermanentError, ValueError):
    """A submission that cannot be used; the message names the file and the fix."""


def short_list(names: Iterable[str]) -> str:
    """Sorted names for error messages: :func:`~automl_asd.progress.few_names` of the first
    ten."""
    return few_names(sorted(names), _MAX_LISTED)


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
    bad_names = [n for n in base if not n or any(ch in n for ch in UNWRITABLE_CHARS + "/")]
    if bad_names:
        raise SubmissionError(
            f"write_submission {machine_type}: clip names must be plain base names without "
            f"commas, quotes or separators: {short_list(bad_names)}"
        )
    dup = [n for n, c in Counter(base).items() if c > 1]
    if dup:
        raise ValueError(
            f"write_submission {machine_type}: duplicate clip names {short_list(dup)}"
        )
    nonfinite = [base[i] for i in np.flatnonzero(~np.isfinite(s))]
    if nonfinite:
        raise ValueError(
            f"write_submission {machine_type}: non-finite scores for {short_list(nonfinite)}"
        )
    d_float = d.astype(np.float64)
    bad_dec = [base[i] for i in np.flatnonzero((d_float != 0.0) & (d_float != 1.0))]
    if bad_dec:
        raise ValueError(
            f"write_submission {machine_type}: decisions must be 0 or 1, not for "
            f"{short_list(bad_dec)}"
        )
    score_path = out / score_file_name(machine_type, section)
    decision_path = out / decision_file_name(machine_type, section)
    atomic_write_text(
        score_path, "".join(f"{n},{_format_score(v)}\n" for n, v in zip(base, s, strict=True))
    )
    atomic_write_text(
        decision_path, "".join(f"{n},{int(v)}\n" for n, v in zip(base, d_float, strict=True))
    )
    logger.debug("wrote %s and %s (%d clips)", score_path, decision_path, len(base))
    return score_path, decision_path


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
    for name, cols, lineno in read_name_rows(path, error=SubmissionError,
                                             max_columns=2 if exact_columns else None):
        raw = cols[0]
        x = _parse_float(path, lineno, name, raw)
        if binary and x not in (0.0, 1.0):
            raise SubmissionError(
                f"{path}, line {lineno}: {binary} {raw!r} for {name!r} must be 0 or 1"
            )
        if name in values:
            dups.append(name)
        values[name] = x
    if dups:
        raise SubmissionError(f"{path}: duplicate rows for {short_list(set(dups))}")
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


def _baseline_style(path: Path, machine_type: str, section: str) -> Path:
    """``path`` or, when it is absent, the one file of the same kind, machine type and section
    under the official baseline's name (as the official evaluator reads them); several such
    files (other seeds or tags) are a :class:`SubmissionError` naming them."""
    if path.is_file() or not path.parent.is_dir():
        return path
    kind = "anomaly_score" if path.name.startswith("anomaly_score") else "decision_result"
    found = sorted(p for p in path.parent.iterdir()
                   if (m := _BASELINE_RE.match(p.name)) and m.group("kind") == kind
                   and m.group("mt") == machine_type and m.group("ss") == section)
    if len(found) > 1:
        raise SubmissionError(
            f"{path.parent}: no {path.name} and {len(found)} files in the official baseline's "
            f"naming for {machine_type} section {section} "
            f"({short_list(p.name for p in found)}); keep one (other seeds or tags elsewhere)")
    if found:
        logger.info("%s: reading %s (the official baseline's name)", path.parent, found[0].name)
    return found[0] if found else path


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
    score_path = _baseline_style(root / score_file_name(machine_type, ss), machine_type, ss)
    decision_path = _baseline_style(root / decision_file_name(machine_type, ss), machine_type, ss)
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


def list_submission_sections(scores_dir: str | Path) -> list[tuple[str, str]]:
    """Sorted ``(machine type, section)`` of every ``anomaly_score_*`` file in ``scores_dir``."""
    keys: set[tuple[str, str]] = set()
    for p in Path(scores_dir).iterdir():
        m = _SUBMISSION_RE.match(p.name) or _BASELINE_RE.match(p.name)
        if m and m.group("kind") == "anomaly_score":
            keys.add((m.group("mt"), m.group("ss")))
    return sorted(keys)
