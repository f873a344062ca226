"""io.clip_scores: a trial's per-clip dev scores round-trip exactly, in their order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_asd.io.clip_scores import CLIP_SCORES_FILE, load_clip_scores, save_clip_scores


def _per_clip() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = {}
    # deliberately not sorted: the saved order is the order the bootstrap resamples in
    for mt, section, n in (("valve", "00", 7), ("fan", "00", 5), ("fan", "01", 3)):
        out[(mt, section)] = (rng.integers(0, 2, n), np.array(["source", "target"] * n)[:n],
                              rng.normal(size=n))
    return out


def test_round_trip_is_exact_and_keeps_the_order(tmp_path: Path) -> None:
    per_clip = _per_clip()
    path = save_clip_scores(tmp_path, per_clip)
    assert path == tmp_path / CLIP_SCORES_FILE
    back = load_clip_scores(tmp_path)
    assert back is not None
    assert list(back) == list(per_clip)
    for key, (y, d, s) in per_clip.items():
        y2, d2, s2 = back[key]
        assert y2.dtype == np.int64 and np.array_equal(y2, y)
        assert d2.tolist() == d.tolist()
        assert s2.dtype == np.float64 and s2.tobytes() == s.astype(np.float64).tobytes()


def test_missing_file_is_none_and_a_bad_file_is_an_error(tmp_path: Path) -> None:
    assert load_clip_scores(tmp_path) is None
    (tmp_path / CLIP_SCORES_FILE).write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="not a readable clip-score file"):
        load_clip_scores(tmp_path)


def test_refuses_empty_and_ragged_sections(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no sections"):
        save_clip_scores(tmp_path, {})
    with pytest.raises(ValueError, match="fan/00: 3 labels, 2 domains, 3 scores"):
        save_clip_scores(tmp_path, {("fan", "00"): (np.zeros(3), np.array(["a", "b"]),
                                                    np.zeros(3))})
    assert not (tmp_path / CLIP_SCORES_FILE).exists()
