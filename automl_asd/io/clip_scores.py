"""Per-clip development scores of one search trial, kept with its last checkpoint.

A trial that reaches full fidelity has scored every development test clip; its ``(labels,
domains, scores)`` per ``(machine type, section)`` are what the ``bootstrap_lower_bound`` final
pick resamples. Saving them with the trial's checkpoint (which Tune keeps in its storage, shared
by every node of a cluster) means the final pick reads them back instead of training and
scoring the top recipes a second time. A recipe and seed give the same scores, so the stored
arrays are the ones a re-score would produce (``tests/integration/test_search.py`` checks it).

One ``.npz`` file, written with :func:`numpy.savez` and read with ``allow_pickle=False``: no
Python objects, only arrays, and the section keys in their original order (the bootstrap draws
its resamples section by section, so the order matters for a repeatable pick).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from automl_asd.components.files import atomic_write_bytes

__all__ = ["CLIP_SCORES_FILE", "ClipScores", "save_clip_scores", "load_clip_scores"]

#: File name inside a trial's checkpoint folder.
CLIP_SCORES_FILE = "clip_scores.npz"
_FORMAT = 1

#: Per ``(machine type, section)``: ``(y_true, domains, scores)``.
ClipScores = Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]


def save_clip_scores(folder: Path | str, per_clip: ClipScores) -> Path:
    """Write ``per_clip`` to ``folder/clip_scores.npz`` (whole or not at all); return the path.

    Raises:
        ValueError: when a section's three arrays differ in length or ``per_clip`` is empty.
    """
    if not per_clip:
        raise ValueError("save_clip_scores: no sections to save")
    arrays: dict[str, np.ndarray] = {}
    keys: list[list[str]] = []
    for i, (key, (y, domains, scores)) in enumerate(per_clip.items()):
        mt, section = key
        y_arr = np.asarray(y, dtype=np.int64)
        d_arr = np.asarray(domains).astype(str)
        s_arr = np.asarray(scores, dtype=np.float64)
        if not len(y_arr) == len(d_arr) == len(s_arr):
            raise ValueError(f"save_clip_scores: {mt}/{section}: {len(y_arr)} labels, "
                             f"{len(d_arr)} domains, {len(s_arr)} scores")
        keys.append([str(mt), str(section)])
        arrays[f"y{i}"], arrays[f"d{i}"], arrays[f"s{i}"] = y_arr, d_arr, s_arr
    arrays["index"] = np.asarray(json.dumps({"format": _FORMAT, "keys": keys}))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return atomic_write_bytes(Path(folder) / CLIP_SCORES_FILE, buffer.getvalue())


def load_clip_scores(folder: Path | str) -> ClipScores | None:
    """The per-clip scores saved in ``folder``, in their saved order; ``None`` when the folder
    has none (a trial that never reached full fidelity, or from an older version).

    Raises:
        ValueError: on a file that is not a clip-score file of a known format.
    """
    path = Path(folder) / CLIP_SCORES_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            index: dict[str, Any] = json.loads(str(data["index"]))
            if index.get("format") != _FORMAT:
                raise ValueError(f"format {index.get('format')!r}, expected {_FORMAT}")
            out: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
            for i, (mt, section) in enumerate(index["keys"]):
                out[(str(mt), str(section))] = (data[f"y{i}"], data[f"d{i}"], data[f"s{i}"])
            return out
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable clip-score file ({exc})") from exc
