"""PNG plots: drawn once per content (stop 48's review: `apply --resume` on a finished run of
200 types redrew every identical plot, about 150 s)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from automl_asd.io.plots import plot_roc, plot_score_histogram, png_digest


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array([0] * 20 + [1] * 10)
    d = np.array(["source", "target"] * 15)
    return y, d, rng.normal(size=30) + y


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def test_an_unchanged_plot_is_not_drawn_again_and_a_changed_one_is(tmp_path: Path) -> None:
    y, d, s = _inputs()
    roc = plot_roc(tmp_path / "roc_fan.png", "fan", y, d, s)
    hist = plot_score_histogram(tmp_path / "hist_fan.png", "fan", y, d, s, threshold=0.5)
    assert roc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = {p: (_stamp(p), png_digest(p)) for p in (roc, hist)}
    assert all(len(digest or "") == 64 for _, digest in first.values())
    assert first[roc][1] != first[hist][1]

    os.utime(roc, ns=(1, 1))  # an old file is not a changed one
    os.utime(hist, ns=(1, 1))
    kept = {p: _stamp(p) for p in (roc, hist)}
    plot_roc(roc, "fan", y, d, s)
    plot_score_histogram(hist, "fan", y, d, s, threshold=0.5)
    assert {p: _stamp(p) for p in (roc, hist)} == kept

    # any change to what is shown draws it again: scores, labels, domains, title, threshold
    s2 = s.copy()
    s2[0] += 1e-9
    for args in ((y, d, s2, "fan"), (1 - y, d, s, "fan"), (y, d[::-1].copy(), s, "fan"),
                 (y, d, s, "fan_section_00")):
        plot_roc(roc, args[3], *args[:3])
        assert png_digest(roc) not in (None, first[roc][1])
        plot_roc(roc, "fan", y, d, s)
        assert png_digest(roc) == first[roc][1]
    plot_score_histogram(hist, "fan", y, d, s, threshold=0.6)
    assert png_digest(hist) != first[hist][1]
    plot_score_histogram(hist, "fan", y, d, s)
    assert png_digest(hist) != first[hist][1]


def test_a_file_that_is_not_one_of_these_plots_is_replaced(tmp_path: Path) -> None:
    y, d, s = _inputs()
    path = tmp_path / "roc_fan.png"
    for junk in (b"not a png", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00"):
        path.write_bytes(junk)
        assert png_digest(path) is None
        plot_roc(path, "fan", y, d, s)
        assert png_digest(path) is not None
    assert png_digest(tmp_path / "missing.png") is None


def test_a_full_disk_names_the_plot_and_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found on a real full tmpfs (2026-12-07): `apply` said only `error: [Errno 28] No space
    left on device` when a plot did not fit, and left `.roc_<mt>.png.tmp` in --out."""
    import errno

    from matplotlib.figure import Figure

    def full(self: Figure, fname: object, **kwargs: object) -> None:
        Path(str(fname)).write_bytes(b"\x89PNG")  # what fitted
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    y, dom, scores = _inputs()
    with pytest.raises(OSError) as exc:
        plot_roc(tmp_path / "roc_fan.png", "fan", y, dom, scores)
    assert exc.value.filename == str(tmp_path / "roc_fan.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
