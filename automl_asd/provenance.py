"""Provenance a reviewer can check: a fingerprint of the development data a search saw and the
versions of the packages that ran it.

Both are cheap and import nothing heavy: the fingerprint reads only the scanned clip records
(no audio), the versions come from the installed distributions' metadata.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from automl_asd.data import DataError, scan
from automl_asd.recipe import DataFingerprint

if TYPE_CHECKING:
    from automl_asd.data import MachineData
    from automl_asd.recipe import Recipe

__all__ = ["TRACKED_PACKAGES", "package_versions", "data_fingerprint", "development_overlap"]

logger = logging.getLogger(__name__)

#: Distribution names whose versions a frozen recipe records.
TRACKED_PACKAGES: tuple[str, ...] = ("automl-asd", "ray", "optuna", "torch", "torchaudio",
                                     "numpy", "scikit-learn")


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """``{distribution: installed version}``; ``"not installed"`` for a missing one."""
    out: dict[str, str] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _count_key(split: str, domain: str, label: str, kind: str) -> str:
    return f"supplemental/{kind or 'unknown'}" if split == "supplemental" else \
        f"{split}/{domain}/{label}"


def data_fingerprint(machines: Mapping[str, MachineData]) -> DataFingerprint:
    """Fingerprint of scanned development data: machine types, clip counts per
    split/domain/label (supplemental clips per kind), and the sha256 of the sorted relative
    file list (``<machine type>/<path under its folder>``, ``/``-separated, one per line).

    The same files under another root give the same fingerprint; adding, removing or renaming
    any clip changes ``files_sha256``.
    """
    counts: dict[str, dict[str, int]] = {}
    rel: list[str] = []
    for mt in sorted(machines):
        machine = machines[mt]
        tally: Counter[str] = Counter()
        for clip in machine.clips:
            tally[_count_key(str(clip.split), str(clip.domain), str(clip.label), clip.kind)] += 1
            try:
                inner = clip.path.relative_to(machine.root).as_posix()
            except ValueError:
                inner = clip.path.name
            rel.append(f"{mt}/{inner}")
        counts[mt] = dict(sorted(tally.items()))
    rel.sort()
    digest = hashlib.sha256("\n".join(rel).encode("utf-8")).hexdigest()
    return DataFingerprint(machine_types=tuple(sorted(machines)), clip_counts=counts,
                           n_files=len(rel), files_sha256=digest)


def development_overlap(recipe: Recipe, data_root: Path, names: Sequence[str]
                        ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Which of the machine types ``names`` under ``data_root`` a searched recipe was chosen
    on: ``(by name, same data)``. *By name*: listed in the recipe's
    ``provenance.dev_machine_types``. *Same data*: of those, the ones whose clip counts per
    split/domain/label equal the counts the search saw (``provenance.dev_data``) — then their
    scores are in-sample, not a figure for machines the search never saw. A type that cannot
    be scanned here is left to its own task (counted by name only)."""
    shared = tuple(sorted(set(names) & set(recipe.provenance.dev_machine_types)))
    seen = recipe.provenance.dev_data
    if not shared or seen is None:
        return shared, ()
    same = []
    for mt in shared:
        try:
            here = data_fingerprint(scan(data_root, machine_types=[mt])).clip_counts.get(mt)
        except (DataError, OSError):
            continue
        if here is not None and dict(here) == dict(seen.clip_counts.get(mt, {})):
            same.append(mt)
    return shared, tuple(same)
