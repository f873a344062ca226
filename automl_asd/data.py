"""Scan DCASE Task 2 data trees into typed clip records.

All file-name parsing of the project lives in this module.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from automl_asd.errors import PermanentError
from automl_asd.progress import few_names

__all__ = [
    "Split", "Domain", "Label", "Clip", "MachineData", "DataError", "ParsedName",
    "MachineSummary", "parse_name", "parse_attributes", "scan", "scan_machine",
    "find_machine_dirs", "check_type_name_length", "non_utf8_problem", "refuse_non_utf8",
    "summarize",
]

logger = logging.getLogger(__name__)


class DataError(PermanentError, ValueError):
    """A data tree, file name or wav file that cannot be used; the message names the file."""


class Split(StrEnum):
    TRAIN = "train"
    TEST = "test"
    SUPPLEMENTAL = "supplemental"


class Domain(StrEnum):
    SOURCE = "source"
    TARGET = "target"
    UNKNOWN = "unknown"


class Label(StrEnum):
    NORMAL = "normal"
    ANOMALY = "anomaly"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Clip:
    """One wav file of a DCASE tree.

    ``attributes`` is ``None`` for ``noAttribute`` names (hidden attributes) and for anonymised
    eval names; otherwise an ordered tuple of ``(key, value)`` pairs taken from the file name.
    ``kind`` is ``""`` for train/test clips and ``"machine"``, ``"noise"`` or ``"unknown"`` for
    supplemental clips.
    """

    path: Path
    machine_type: str
    section: str
    split: Split
    domain: Domain
    label: Label
    index: int | None
    attributes: tuple[tuple[str, str], ...] | None
    kind: str = ""

    @property
    def name(self) -> str:
        """The file's base name including ``.wav`` (the key of submission files)."""
        return self.path.name

    @property
    def attribute_string(self) -> str:
        """``key_value`` tokens joined by ``_``, or ``noAttribute``."""
        if self.attributes is None:
            return "noAttribute"
        return "_".join(f"{k}_{v}" if v != "" else k for k, v in self.attributes)


@dataclass(frozen=True)
class MachineData:
    """All clips of one machine type, sorted by path."""

    machine_type: str
    root: Path
    clips: tuple[Clip, ...] = field(default_factory=tuple)

    @property
    def train(self) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.split is Split.TRAIN)

    @property
    def test(self) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.split is Split.TEST)

    @property
    def supplemental(self) -> tuple[Clip, ...]:
        return tuple(c for c in self.clips if c.split is Split.SUPPLEMENTAL)

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(sorted({c.section for c in self.clips}))


# --------------------------------------------------------------------------- file names

#: ``section_00_source_train_normal_0000_<attr>`` (dev and additional-train train/test names).
_FULL = re.compile(
    r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>train|test)_"
    r"(?P<label>normal|anomaly)_(?P<index>\d+)(?:_(?P<attr>.*))?$")
#: 2024 eval RoboticArm labelled names lack the split token:
#: ``section_00_source_normal_0035_weight15_BckgF``.
_NO_SPLIT = re.compile(
    r"^section_(?P<section>\d{2})_(?P<domain>source|target)_"
    r"(?P<label>normal|anomaly)_(?P<index>\d+)(?:_(?P<attr>.*))?$")
#: Anonymised eval test names ``section_00_0000`` (README variant ``section_00_test_0000``).
_ANON = re.compile(r"^section_(?P<section>\d{2})_(?:test_)?(?P<index>\d+)$")
_SECTION = re.compile(r"^section_(?P<section>\d{2})(?:_(?P<rest>.*))?$")
#: Attribute keys are plain words (``car``, ``spd``, ``m-n``); anything else stands alone.
_KEY = re.compile(r"^[A-Za-z][A-Za-z-]*$")
_NO_ATTRIBUTE = "noAttribute"
_KIND_WORDS = {"machine": "machine", "clean": "machine", "noise": "noise"}
_FILLER_WORDS = {"supplemental", "supp", "train"}


@dataclass(frozen=True)
class ParsedName:
    """What a clip's file name says (see :func:`parse_name`)."""

    section: str
    domain: Domain
    label: Label
    index: int | None
    attributes: tuple[tuple[str, str], ...] | None
    kind: str = ""


def parse_attributes(suffix: str | None) -> tuple[tuple[str, str], ...] | None:
    """Split the attribute suffix of a file name into ``(key, value)`` pairs.

    ``None`` (no suffix) gives ``()``; ``"noAttribute"`` gives ``None`` (hidden attributes).
    A word token followed by a non-empty token forms a pair (``spd_28V`` -> ``("spd", "28V")``);
    any other token is kept alone as ``(token, "")`` (``spd1000_BckgA`` ->
    ``(("spd1000", ""), ("BckgA", ""))``), so ``Clip.attribute_string`` reproduces the suffix
    exactly.
    """
    if suffix is None or suffix == "":
        return ()
    if suffix == _NO_ATTRIBUTE:
        return None
    tokens = suffix.split("_")
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _KEY.match(tok) and i + 1 < len(tokens) and tokens[i + 1] != "":
            pairs.append((tok, tokens[i + 1]))
            i += 2
        else:
            pairs.append((tok, ""))
            i += 1
    return tuple(pairs)


def parse_name(name: str, split: Split | str) -> ParsedName:
    """Parse a DCASE clip file name found in the ``split`` folder.

    Handles dev/additional-train names, 2024 RoboticArm names without the ``test`` token,
    anonymised eval names (``section_00_0000.wav``, label/domain unknown), ``noAttribute``
    names and the known supplemental variants (unknown supplemental names give
    ``kind="unknown"``). Raises :class:`DataError` for a train/test name it cannot read.
    """
    split = Split(split)
    stem = name[:-4] if name.lower().endswith(".wav") else name
    if split is Split.SUPPLEMENTAL:
        return _parse_supplemental(stem)
    m = _FULL.match(stem)
    if m is not None and m.group("split") != split.value:
        raise DataError(f"{name}: name says split '{m.group('split')}' but the file is in "
                        f"{split.value}/; move it to {m.group('split')}/")
    if m is None:
        m = _NO_SPLIT.match(stem)
    if m is not None:
        label = Label(m.group("label"))
        if split is Split.TRAIN and label is Label.ANOMALY:
            raise DataError(f"{name}: anomalous clip in train/; training data must be normal, "
                            "move it to test/")
        return ParsedName(m.group("section"), Domain(m.group("domain")), label,
                          int(m.group("index")), parse_attributes(m.group("attr")))
    m = _ANON.match(stem)
    if m is not None and split is Split.TEST:
        return ParsedName(m.group("section"), Domain.UNKNOWN, Label.UNKNOWN,
                          int(m.group("index")), None)
    expected = ("section_<ss>_<source|target>_train_normal_<NNNN>_<attributes>.wav"
                if split is Split.TRAIN else
                "section_<ss>_<source|target>_test_<normal|anomaly>_<NNNN>_<attributes>.wav or "
                "section_<ss>_<NNNN>.wav")
    if re.match(r"^section_\d{3,}_", stem):  # found 2026-12-07: scanned, then refused late
        raise DataError(f"{name}: section ids are two digits (section_00 .. section_99); "
                        "rename the file")
    raise DataError(f"{name}: cannot parse this {split.value} file name; expected {expected} "
                    "(rename or remove the file)")


def _parse_supplemental(stem: str) -> ParsedName:
    """Supplemental names are not confirmed for 2025; read the known variants token by token.

    ``section_00_machine_0001_``, ``section_00_noise_supplemental_normal_0000``,
    ``section_00_source_supplemental_machine_0000``, ``section_00_machine_source_0000_noAttribute``.
    """
    m = _SECTION.match(stem)
    if m is None:
        return ParsedName("", Domain.UNKNOWN, Label.NORMAL, None, (), "unknown")
    section = m.group("section")
    tokens = (m.group("rest") or "").split("_")
    kind, domain, label = "", Domain.UNKNOWN, Label.NORMAL
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if tok.isdigit():
            if not kind:
                break
            rest = "_".join(tokens[i + 1:]) if i + 1 < len(tokens) else None
            if domain is Domain.UNKNOWN and kind == "machine":
                domain = Domain.SOURCE  # clean machine sounds are source-domain (DCASE 2025)
            return ParsedName(section, domain, label, int(tok), parse_attributes(rest), kind)
        if low in _KIND_WORDS and not kind:
            kind = _KIND_WORDS[low]
        elif low in ("source", "target"):
            domain = Domain(low)
        elif low in ("normal", "anomaly"):
            label = Label(low)
        elif low not in _FILLER_WORDS:
            break
    logger.debug("supplemental name %s not recognised; kind=unknown", stem)
    return ParsedName(section, domain, label, None, (), "unknown")


# --------------------------------------------------------------------------- trees

_SPLIT_DIRS = tuple(s.value for s in Split)


def _is_machine_dir(path: Path) -> bool:
    return path.is_dir() and any((path / s).is_dir() for s in _SPLIT_DIRS)


def find_machine_dirs(root: str | Path) -> dict[str, Path]:
    """Map machine type -> folder for ``<root>/<mt>/``, ``<root>/{dev_data,eval_data}/raw/<mt>/``
    (the baseline's form), ``<root>/raw/<mt>/`` or a single machine folder ``<root>``.
    """
    root = Path(root)
    if not root.is_dir():  # found 2026-12-07: one message for both, "or" left it to guess
        if root.exists():
            raise DataError(f"{root}: data root is a file, not a folder; give the folder that "
                            "holds the <machine_type>/ folders")
        raise DataError(f"{root}: data root does not exist (no such folder); check the path")
    if _is_machine_dir(root):
        return {root.name: root}
    parents = [root, root / "raw"]
    for sub in ("dev_data", "eval_data"):
        parents += [root / sub, root / sub / "raw"]
    found: dict[str, Path] = {}
    for parent in parents:
        if not parent.is_dir():
            continue
        for child in sorted(parent.iterdir()):
            if not _is_machine_dir(child):
                continue
            if child.name in found:
                raise DataError(f"machine type {child.name!r} found twice: {found[child.name]} "
                                f"and {child}; keep one copy")
            found[child.name] = child
    if not found:
        raise DataError(
            f"{root}: no machine-type folders found; expected <root>/<machine_type>/"
            "{train,test,supplemental}/*.wav or <root>/{dev_data,eval_data}/raw/<machine_type>/")
    return dict(sorted(found.items()))


#: the marker ``automl-asd synth`` keeps in each machine folder it writes ("complete": false
#: while it writes, true once every clip is there)
SYNTH_MARKER = ".synth.json"


def _refuse_interrupted_synth(directory: Path) -> None:
    """:class:`DataError` for a machine folder ``automl-asd synth`` did not finish (killed, or
    out of disk): its clips are a partial data set that would score as a whole one."""
    marker = directory / SYNTH_MARKER
    if not marker.is_file():
        return
    try:
        complete = json.loads(marker.read_text(encoding="utf-8")).get("complete", True)
    except (OSError, ValueError, AttributeError):
        return
    if complete is False:
        raise DataError(f"{directory}: an interrupted `automl-asd synth` (its {SYNTH_MARKER} "
                        "says incomplete): run the same synth command again to finish it")


#: ``<prefix><zip name>``: the file ``automl-asd download`` keeps in a machine folder while it
#: extracts that zip into it (a killed extraction leaves it, beside a part of the clips)
EXTRACTING_PREFIX = ".extracting-"


def _refuse_interrupted_extraction(directory: Path) -> None:
    """:class:`DataError` for a machine folder whose extraction ``automl-asd download`` did not
    finish (killed, power lost): its clips are a part of the zip that would score as a whole."""
    left = sorted(p.name.removeprefix(EXTRACTING_PREFIX)
                  for p in directory.glob(f"{EXTRACTING_PREFIX}*"))
    if left:
        raise DataError(f"{directory}: an interrupted extraction of {', '.join(left)} by "
                        f"`automl-asd download` (its {EXTRACTING_PREFIX}{left[0]} is still "
                        "there): run the same download command again to finish it")


#: longest machine-type name, in UTF-8 bytes: decision_result_<type>_section_XX_test.csv
#: (36 bytes more) and the temporary names around it must fit a file name's 255 bytes
MAX_TYPE_BYTES = 200
#: characters no test clip's name may hold: the submission CSV (and the official evaluator)
#: would split or misread it
UNWRITABLE_CHARS = ',"\\\r\n'


def non_utf8_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be used, when its name is not UTF-8 (bytes of another encoding,
    which Python keeps as surrogates: soundfile, pyarrow and every JSON file the run writes
    refuse them), else ``None``."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = os.fsencode(text).decode("utf-8", "backslashreplace")
        byte = ord(text[exc.start]) & 0xFF  # the surrogate U+DCxx stands for byte 0xxx
        return (f"{shown}: not a UTF-8 name (byte 0x{byte:02x}, another encoding's "
                "character); rename it to UTF-8 (e.g. convmv -f latin1 -t utf-8)")
    return None


def refuse_non_utf8(path: Path, error: type[DataError] = DataError) -> None:
    """Raise ``error`` (:func:`non_utf8_problem`) for a path that is not UTF-8 (found
    2026-12-07: a Latin-1 folder name stopped `apply` on "'utf-8' codec can't encode
    character '\\udcfc'", naming no path; soundfile cannot even open such a file)."""
    problem = non_utf8_problem(path)
    if problem is not None:
        raise error(problem)


def check_type_name_length(directory: Path, mt: str) -> None:
    """Raise :class:`DataError` naming ``directory`` when machine type ``mt`` is longer than
    :data:`MAX_TYPE_BYTES`: the files named after it could not be written."""
    if len(mt.encode("utf-8")) > MAX_TYPE_BYTES:
        raise DataError(f"{directory}: machine type name of {len(mt.encode('utf-8'))} bytes; at "
                        f"most {MAX_TYPE_BYTES} (the submission files "
                        f"decision_result_<type>_section_XX_test.csv must fit a file name's "
                        "255 bytes); rename the folder")


def scan_machine(directory: str | Path, *, machine_type: str | None = None) -> MachineData:
    """Read every wav of one machine-type folder into :class:`Clip` records (sorted by path).

    Raises :class:`DataError` naming the file for an unparseable name, and naming the folder
    when it holds no train clips.
    """
    directory = Path(directory)
    mt = machine_type or directory.name
    if "_" in mt or not mt:
        raise DataError(f"{directory}: machine type {mt!r} must be non-empty and contain no '_' "
                        "(the official evaluator splits file names on '_'); rename the folder")
    check_type_name_length(directory, mt)
    refuse_non_utf8(directory.absolute())
    _refuse_interrupted_synth(directory)
    _refuse_interrupted_extraction(directory)
    if (directory / "test_rename").is_dir():
        logger.warning("%s: ignoring test_rename/ (labelled copies); pass the official ground "
                       "truth with --ground-truth instead", directory / "test_rename")
    clips: list[Clip] = []
    for split in Split:
        folder = directory / split.value
        if not folder.is_dir():
            continue
        skipped = 0
        not_files: list[str] = []
        nested: list[str] = []
        for path in sorted(folder.iterdir()):
            if not (path.is_file() and path.suffix.lower() == ".wav"):
                if path.suffix.lower() == ".wav":  # a folder or a dangling link named *.wav
                    not_files.append(path.name)
                elif path.is_dir() and next(path.glob("**/*.[wW][aA][vV]"), None) is not None:
                    nested.append(path.name)
                else:
                    skipped += 1
                continue
            refuse_non_utf8(path)
            if split is Split.TEST and any(ch in path.name for ch in UNWRITABLE_CHARS):
                raise DataError(f"{path}: a comma, quote, backslash or line break in a test "
                                "clip's name cannot be written to the official submission CSV; "
                                "rename the file")
            try:
                parsed = parse_name(path.name, split)
            except DataError as exc:
                raise DataError(f"{folder}/{exc}") from None
            clips.append(Clip(path=path, machine_type=mt, section=parsed.section, split=split,
                              domain=parsed.domain, label=parsed.label, index=parsed.index,
                              attributes=parsed.attributes, kind=parsed.kind))
        if not_files:
            logger.warning("%s: %d entr%s named *.wav but not a regular file (a folder or a "
                           "broken link), skipped: %s", folder, len(not_files),
                           "y" if len(not_files) == 1 else "ies",
                           few_names(not_files, 3))
        if nested:  # found 2026-12-07: a zip extracted one level too deep read as "non-wav"
            logger.warning("%s: clips in sub-folder(s) %s are not read (only %s/*.wav is): a zip "
                           "extracted one level too deep? Move them up into %s", folder,
                           few_names(nested, 3), split.value, folder)
        if skipped:
            logger.info("%s: %d non-wav entries ignored", folder, skipped)
    train_sections = sorted({c.section for c in clips if c.split is Split.TRAIN})
    if not train_sections:
        raise DataError(f"{directory / 'train'}: machine type {mt!r} has no train clips "
                        "(*.wav); extract the training zip there")
    if len(train_sections) == 1:  # supplemental names without a section inherit it
        clips = [replace(c, section=train_sections[0]) if c.section == "" else c for c in clips]
    clips.sort(key=lambda c: c.path)
    return MachineData(machine_type=mt, root=directory, clips=tuple(clips))


def scan(root: str | Path, *, machine_types: Iterable[str] | None = None
         ) -> dict[str, MachineData]:
    """Scan a DCASE Task 2 tree into ``{machine_type: MachineData}`` sorted by machine type.

    Args:
        root: a tree in any layout accepted by :func:`find_machine_dirs`.
        machine_types: keep only these (an unknown name is an error listing the valid ones).

    Labels of anonymised eval test clips come from the evaluator's files:
    ``automl_asd.ground_truth.attach(scan(root), gt_dir)``.
    """
    dirs = find_machine_dirs(root)
    if machine_types is not None:
        # one name given as a string is that name (found 2026-12-07: "fan" was f, a, n)
        wanted = [machine_types] if isinstance(machine_types, str) else list(machine_types)
        unknown = [m for m in wanted if m not in dirs]
        if unknown:
            raise DataError(f"{root}: machine type(s) {', '.join(unknown)} not found; "
                            f"available: {', '.join(dirs)}")
        dirs = {m: dirs[m] for m in sorted(set(wanted))}
    return {mt: scan_machine(d, machine_type=mt) for mt, d in dirs.items()}


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class MachineSummary:
    """Counts of one machine type for ``automl-asd info``.

    ``counts`` maps ``(split, domain, label)`` to a clip count. ``attribute_mode`` is
    ``named``, ``hidden`` (``noAttribute``), ``none`` (names carry no attributes) or ``mixed``,
    judged on train clips. ``supplemental_kinds`` counts supplemental clips by kind.
    """

    machine_type: str
    sections: tuple[str, ...]
    counts: Mapping[tuple[Split, Domain, Label], int]
    attribute_mode: str
    attribute_keys: tuple[str, ...]
    supplemental_kinds: Mapping[str, int]

    def count(self, split: Split | None = None, domain: Domain | None = None,
              label: Label | None = None) -> int:
        """Number of clips matching the given fields (``None`` = any)."""
        return sum(n for (s, d, lab), n in self.counts.items()
                   if (split is None or s is split) and (domain is None or d is domain)
                   and (label is None or lab is label))


def summarize(machine: MachineData) -> MachineSummary:
    """Per-machine counts by split/domain/label, attribute mode and supplemental kinds."""
    counts = Counter((c.split, c.domain, c.label) for c in machine.clips)
    train = machine.train
    modes = {"hidden" if c.attributes is None else ("named" if c.attributes else "none")
             for c in train}
    mode = modes.pop() if len(modes) == 1 else ("mixed" if modes else "none")
    keys = sorted({k for c in train for k, v in (c.attributes or ()) if v})
    kinds = Counter(c.kind for c in machine.supplemental)
    return MachineSummary(machine.machine_type, machine.sections, dict(counts), mode,
                          tuple(keys), dict(sorted(kinds.items())))
