"""Ground truth of test clips: one key shape, one reader of the evaluator's CSVs.

Every place that needs labels (the search objective, ``apply``'s report, ``automl-asd
evaluate``, ``automl-asd info --ground-truth``, the benches) gets them here, keyed by
:data:`SectionKey` ``(machine type, section)``:

* :func:`read_official` reads the official evaluator's layout under a folder::

      ground_truth_data/ground_truth_<mt>_section_<ss>_test.csv        name,0|1 (1 = anomaly)
      ground_truth_domain/ground_truth_<mt>_section_<ss>_test.csv      name,0|1 (1 = target)
      ground_truth_attributes/ground_truth_<mt>_section_<ss>_test.csv  name,labelled name[,...]

  (headerless; the attributes file is optional);
* :func:`from_clips` takes labels and domains from a scanned machine type's test clips
  (labelled development names, or clips filled by :func:`attach`);
* :func:`attach` fills label, domain and attributes of anonymised evaluation test clips from
  the evaluator's files;
* :func:`read` picks the evaluator's layout or a labelled data root from a path.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from automl_asd.data import Clip, DataError, Domain, Label, MachineData, Split, parse_name, scan

__all__ = [
    "GROUND_TRUTH_ATTRIBUTES_DIR",
    "GROUND_TRUTH_DATA_DIR",
    "GROUND_TRUTH_DOMAIN_DIR",
    "GroundTruthError",
    "SectionKey",
    "SectionTruth",
    "read_name_rows",
    "attach",
    "from_clips",
    "read",
    "read_official",
]

logger = logging.getLogger(__name__)

#: ``(machine type, section)``, e.g. ``("fan", "00")``: the one key of every per-section result.
SectionKey = tuple[str, str]

GROUND_TRUTH_DATA_DIR = "ground_truth_data"
GROUND_TRUTH_DOMAIN_DIR = "ground_truth_domain"
GROUND_TRUTH_ATTRIBUTES_DIR = "ground_truth_attributes"

_GT_RE = re.compile(r"^ground_truth_(?P<mt>[^_]+)_section_(?P<ss>\d{2})_test\.csv$")
_MAX_LISTED = 10


class GroundTruthError(DataError):
    """Ground truth that cannot be used (missing folder/file, malformed row, names that do not
    match the clips); the message names the file and the fix."""


def _listed(names: Iterable[str]) -> str:
    items = sorted(names)
    more = len(items) - _MAX_LISTED
    return ", ".join(items[:_MAX_LISTED]) + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True)
class SectionTruth:
    """Ground truth of one (machine type, section).

    ``names[i]`` (wav base name) has label ``labels[i]`` (1 = anomaly) and domain
    ``domains[i]`` (``"source"``/``"target"``). ``aliases`` maps other accepted row names
    (labelled names of anonymised eval clips, from ``ground_truth_attributes``) to ``names``;
    ``revealed`` maps a name to the last column of its attributes row (the labelled name with
    the revealed attributes). ``source`` is the file the labels were read from (empty when
    they came from clip names).
    """

    machine_type: str
    section: str
    names: tuple[str, ...]
    labels: NDArray[np.int8]
    domains: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    revealed: Mapping[str, str] = field(default_factory=dict, compare=False)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.labels) == len(self.domains)):
            raise ValueError(
                f"SectionTruth {self.machine_type} section {self.section}: names, labels and "
                f"domains differ in length"
            )

    @property
    def key(self) -> SectionKey:
        return (self.machine_type, self.section)


# --------------------------------------------------------------------------- evaluator's CSVs


def read_name_rows(path: Path, *, error: type[Exception] = GroundTruthError,
                   max_columns: int | None = None) -> list[tuple[str, list[str], int]]:
    """Rows ``(name, values, line number)`` of a headerless ``name,value[,...]`` CSV: the one
    reader of the evaluator's ground-truth files and of submission CSVs.

    A UTF-8 byte-order mark and blank lines at the end are accepted (editors add them); a blank
    line between rows, a row with one column (or more than ``max_columns``) and an empty file
    raise ``error``.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason})") from None
    parsed = list(csv.reader(io.StringIO(text)))
    while parsed and not "".join(parsed[-1]).strip():
        parsed.pop()  # trailing blank lines
    rows: list[tuple[str, list[str], int]] = []
    for lineno, row in enumerate(parsed, start=1):
        too_wide = max_columns is not None and len(row) > max_columns
        if len(row) < 2 or too_wide:
            raise error(
                f"{path}, line {lineno}: expected 'name,value', got {','.join(row)!r}"
                + (" (empty line)" if not row else "")
                + (f" ({len(row)} columns)" if too_wide else "")
            )
        rows.append((row[0].strip(), [v.strip() for v in row[1:]], lineno))
    if not rows:
        raise error(f"{path}: file is empty")
    return rows


def _flags(path: Path, what: str) -> dict[str, int]:
    """name -> 0/1 of a ground-truth file; ``what`` names the quantity in errors."""
    out: dict[str, int] = {}
    dups: list[str] = []
    for name, values, lineno in read_name_rows(path):
        raw = values[0]
        try:
            x = float(raw)
        except ValueError:
            x = -1.0
        if x not in (0.0, 1.0):
            hint = " (ground-truth files have no header row)" if lineno == 1 else ""
            raise GroundTruthError(
                f"{path}, line {lineno}: {what} {raw!r} for {name!r} must be 0 or 1{hint}"
            )
        if name in out:
            dups.append(name)
        out[name] = int(x)
    if dups:
        raise GroundTruthError(f"{path}: duplicate rows for {_listed(set(dups))}")
    return out


def _section_files(root: Path) -> dict[SectionKey, Path]:
    data_dir = root / GROUND_TRUTH_DATA_DIR
    if not data_dir.is_dir():
        raise GroundTruthError(
            f"{root}: no {GROUND_TRUTH_DATA_DIR}/ folder; pass the evaluator's folder that holds "
            f"{GROUND_TRUTH_DATA_DIR}/ and {GROUND_TRUTH_DOMAIN_DIR}/"
        )
    files: dict[SectionKey, Path] = {}
    for path in sorted(data_dir.iterdir()):
        m = _GT_RE.match(path.name)
        if m:
            files[(m.group("mt"), m.group("ss"))] = path
        else:
            logger.debug("ignoring %s (not ground_truth_<mt>_section_<ss>_test.csv)", path)
    if not files:
        raise GroundTruthError(f"{data_dir}: no ground_truth_<mt>_section_<ss>_test.csv files")
    return files


def _read_section(root: Path, mt: str, ss: str, path: Path) -> SectionTruth:
    labels = _flags(path, "label (1 = anomaly)")
    domain_path = root / GROUND_TRUTH_DOMAIN_DIR / path.name
    if not domain_path.is_file():
        raise GroundTruthError(f"{domain_path}: missing (domain ground truth for {path})")
    domains = _flags(domain_path, "domain (1 = target)")
    if set(domains) != set(labels):
        raise GroundTruthError(
            f"{domain_path}: names differ from {path}: only in labels: "
            f"[{_listed(set(labels) - set(domains))}], only in domains: "
            f"[{_listed(set(domains) - set(labels))}]"
        )
    aliases: dict[str, str] = {}
    revealed: dict[str, str] = {}
    attr_path = root / GROUND_TRUTH_ATTRIBUTES_DIR / path.name
    if attr_path.is_file():
        for name, values, lineno in read_name_rows(attr_path):
            if name not in labels:
                raise GroundTruthError(f"{attr_path}, line {lineno}: {name!r} is not in {path}")
            aliases[f"{values[0]}.wav"] = name
            revealed[name] = values[-1].removesuffix(".wav")
    names = tuple(labels)
    return SectionTruth(
        mt, ss, names,
        np.array([labels[n] for n in names], dtype=np.int8),
        tuple("target" if domains[n] == 1 else "source" for n in names),
        aliases, revealed, str(path),
    )


def read_official(
    gt_dir: str | Path, *, machine_types: Sequence[str] | None = None
) -> dict[SectionKey, SectionTruth]:
    """Read the evaluator's ground-truth layout under ``gt_dir`` (see the module docstring).

    ``ground_truth_data/`` lists the sections; the same file name under
    ``ground_truth_domain/`` is required (same clip names), under ``ground_truth_attributes/``
    optional. Raises :class:`GroundTruthError` naming the file and line of a bad row (not
    ``name,0|1``, a header row, duplicates) and listing unknown ``machine_types``.
    """
    root = Path(gt_dir)
    files = _section_files(root)
    if machine_types is not None:
        available = sorted({mt for mt, _ in files})
        unknown = sorted(set(machine_types) - set(available))
        if unknown:
            raise GroundTruthError(
                f"{root / GROUND_TRUTH_DATA_DIR}: machine type(s) {unknown} have no ground "
                f"truth; available: {available}"
            )
        files = {k: v for k, v in files.items() if k[0] in set(machine_types)}
    return {(mt, ss): _read_section(root, mt, ss, path) for (mt, ss), path in sorted(files.items())}


def official_types(gt_dir: str | Path) -> set[str]:
    """The machine types the evaluator's layout under ``gt_dir`` has ground truth for (file
    names only; :class:`GroundTruthError` without ``ground_truth_data/`` files)."""
    return {mt for mt, _ in _section_files(Path(gt_dir))}


# --------------------------------------------------------------------------- from clips


def from_clips(machine: MachineData) -> dict[SectionKey, SectionTruth]:
    """Ground truth of ``machine``'s test clips, per section, in clip (path) order.

    Raises :class:`GroundTruthError` naming the first test clip whose label or domain is
    unknown (anonymised eval names need :func:`attach` first) and duplicate names.
    """
    by_section: dict[str, list[Clip]] = {}
    for clip in machine.test:
        if clip.label is Label.UNKNOWN or clip.domain is Domain.UNKNOWN:
            raise GroundTruthError(
                f"{clip.path}: test clip without label/domain in its name; metrics need "
                "labelled test clips (dev names section_XX_<domain>_test_<label>_...) or the "
                "evaluator's ground truth (--ground-truth: a folder with ground_truth_data/ "
                "and ground_truth_domain/) for anonymised evaluation clips"
            )
        by_section.setdefault(clip.section, []).append(clip)
    out: dict[SectionKey, SectionTruth] = {}
    for ss, clips in sorted(by_section.items()):
        names = tuple(c.name for c in clips)
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise GroundTruthError(f"{machine.root}: duplicate test names {_listed(dup)}")
        out[(machine.machine_type, ss)] = SectionTruth(
            machine.machine_type, ss, names,
            np.array([c.label is Label.ANOMALY for c in clips], dtype=np.int8),
            tuple(str(c.domain) for c in clips),
        )
    return out


def read(path: str | Path, *, machine_types: Sequence[str] | None = None
         ) -> dict[SectionKey, SectionTruth]:
    """Ground truth from ``path``: the evaluator's layout if ``path/ground_truth_data`` exists,
    else a DCASE data root whose test clips have labelled names (:func:`from_clips`)."""
    root = Path(path)
    if not root.is_dir():
        raise GroundTruthError(f"{root}: ground-truth folder not found")
    if (root / GROUND_TRUTH_DATA_DIR).is_dir():
        return read_official(root, machine_types=machine_types)
    # found 2026-12-07: one of the evaluator's own folders (its ground_truth_*_test.csv files)
    # was scanned as a data root: "no machine-type folders found", nothing about the parent
    if any(_GT_RE.match(p.name) for p in root.iterdir()):
        raise GroundTruthError(
            f"{root}: holds ground-truth files itself; pass the evaluator's folder above it, the "
            f"one that holds {GROUND_TRUTH_DATA_DIR}/ and {GROUND_TRUTH_DOMAIN_DIR}/"
            + (f" ({root.parent})" if root.name.startswith("ground_truth_") else "")
        )
    out: dict[SectionKey, SectionTruth] = {}
    for mt, machine in scan(root, machine_types=machine_types).items():
        if not machine.test:
            logger.warning("%s: no test clips, skipped", root / mt)
        out.update(from_clips(machine))
    if not out:
        raise GroundTruthError(f"{root}: no labelled test clips found")
    return out


# --------------------------------------------------------------------------- attach


def attach(machines: Mapping[str, MachineData], gt_dir: str | Path) -> dict[str, MachineData]:
    """Fill label, domain (and attributes) of test clips from the evaluator's files.

    Only the sections of ``machines``' test clips are read; a section without a
    ``ground_truth_data`` file is left as it is. A test clip without a row, or a value that
    contradicts the clip's own name, is a :class:`GroundTruthError`; rows without a wav are
    logged as a warning.
    """
    root = Path(gt_dir)
    files = _section_files(root)
    out: dict[str, MachineData] = {}
    for mt, machine in machines.items():
        updates: dict[Path, Clip] = {}
        test = [c for c in machine.clips if c.split is Split.TEST]
        for section in sorted({c.section for c in test}):
            path = files.get((machine.machine_type, section))
            if path is None:
                logger.debug("%s: no ground truth for %s section %s", root,
                             machine.machine_type, section)
                continue
            truth = _read_section(root, machine.machine_type, section, path)
            clips = {c.name: c for c in test if c.section == section}
            missing = sorted(set(clips) - set(truth.names))
            if missing:
                raise GroundTruthError(
                    f"{path}: no row for {len(missing)} test clip(s), e.g. {missing[0]}; is this "
                    "the ground truth of the same data set?")
            extra = sorted(set(truth.names) - set(clips))
            if extra:
                logger.warning("%s: %d rows name clips not in %s (e.g. %s)", path, len(extra),
                               machine.root / "test", extra[0])
            row = {n: i for i, n in enumerate(truth.names)}
            for name, clip in clips.items():
                updates[clip.path] = _filled(clip, truth, row[name], path)
        out[mt] = (replace(machine, clips=tuple(updates.get(c.path, c) for c in machine.clips))
                   if updates else machine)
    return out


def _filled(clip: Clip, truth: SectionTruth, i: int, path: Path) -> Clip:
    label = Label.ANOMALY if truth.labels[i] else Label.NORMAL
    if clip.label is not Label.UNKNOWN and clip.label is not label:
        raise GroundTruthError(f"{path}: {clip.name} is {label.value} here but its name says "
                               f"{clip.label.value}; wrong ground-truth folder?")
    domain = Domain(truth.domains[i])
    if clip.domain is not Domain.UNKNOWN and clip.domain is not domain:
        domain_path = path.parent.parent / GROUND_TRUTH_DOMAIN_DIR / path.name
        raise GroundTruthError(f"{domain_path}: {clip.name} is {domain.value} here but its name "
                               f"says {clip.domain.value}; wrong ground-truth folder?")
    out = replace(clip, label=label, domain=domain)
    labelled = truth.revealed.get(clip.name)
    if labelled is not None:
        try:
            parsed = parse_name(labelled + ".wav", Split.TEST)
        except DataError as exc:
            raise GroundTruthError(f"{path.parent.parent / GROUND_TRUTH_ATTRIBUTES_DIR / path.name}"
                                   f": {clip.name}: {exc}") from None
        out = replace(out, attributes=parsed.attributes)
    return out
