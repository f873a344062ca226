"""PNG plots of apply results: ROC curves per domain and score histograms.

Figures are drawn with matplotlib's object API on an Agg canvas, so no global backend is set
and nothing needs a display.

Each PNG carries a digest of what it shows (the clips' labels, domains and scores, the title,
the threshold and the drawing parameters, this module's format and matplotlib's version) in a
text chunk. A plot whose file already holds the same digest is not drawn again: ``apply
--resume`` on a finished run of 200 machine types spent about 150 s redrawing identical plots.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from automl_asd.components.files import naming_path

__all__ = ["plot_roc", "plot_score_histogram", "png_digest"]

_DOMAIN_COLOURS = {"source": "tab:blue", "target": "tab:orange"}


def _arrays(
    y_true: ArrayLike, domains: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.str_], NDArray[np.float64]]:
    y = np.asarray(y_true).astype(np.int64)
    d = np.asarray(domains).astype(str)
    s = np.asarray(scores, dtype=np.float64)
    if not (y.shape == d.shape == s.shape) or y.ndim != 1:
        raise ValueError(
            f"y_true, domains and scores must be 1-D of one length, got {y.shape}, {d.shape}, "
            f"{s.shape}"
        )
    return y, d, s


#: Bump when a plot's drawing changes, so that existing PNGs are drawn again.
_PLOT_FORMAT = 1
#: The PNG text chunk's keyword that holds the digest.
_DIGEST_KEY = "automl-asd-inputs"


def _digest(kind: str, y: NDArray[np.int64], d: NDArray[np.str_], s: NDArray[np.float64],
            **params: object) -> str:
    """sha256 of everything a plot shows (see the module docstring)."""
    import matplotlib  # noqa: PLC0415

    h = hashlib.sha256(f"{kind}|{_PLOT_FORMAT}|{matplotlib.__version__}|"
                       f"{sorted(params.items())!r}".encode())
    for array in (y, s):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update("\0".join(d.tolist()).encode())
    return h.hexdigest()


def png_digest(path: Path) -> str | None:
    """The input digest a PNG of this module carries (``None``: no such file, not a PNG, or
    none recorded). Reads the chunks before the image data only."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND"):
                    return None
                data = f.read(length)
                f.seek(4, 1)  # CRC
                if kind == b"tEXt":
                    key, _, text = data.partition(b"\0")
                    if key.decode("latin-1") == _DIGEST_KEY:
                        return text.decode("latin-1")
    except OSError:
        return None


def _save(fig: object, path: Path, digest: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    assert isinstance(fig, Figure)
    FigureCanvasAgg(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        # a full disk names the plot and leaves no temporary file (found 2026-12-07)
        with naming_path(path):
            fig.savefig(tmp, format="png", dpi=100, metadata={_DIGEST_KEY: digest})
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def plot_roc(
    path: Path,
    machine_type: str,
    y_true: ArrayLike,
    domains: ArrayLike,
    scores: ArrayLike,
    *,
    max_fpr: float = 0.1,
) -> Path:
    """ROC curves of one machine type: per domain as the official AUC-s/AUC-t are defined (that
    domain's normal clips against all anomalous clips) and over all clips, with the pAUC
    region ``FPR <= max_fpr`` shaded. ``y_true`` 1 = anomaly; ``domains`` "source"/"target";
    all shaped ``(n_clips,)``. Writes a PNG and returns its path.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415
    from sklearn.metrics import roc_auc_score, roc_curve  # noqa: PLC0415

    y, d, s = _arrays(y_true, domains, scores)
    digest = _digest("roc", y, d, s, title=machine_type, max_fpr=max_fpr)
    if png_digest(path) == digest:
        return Path(path)  # the same plot is there already
    fig = Figure(figsize=(5.0, 5.0))
    ax = fig.add_subplot()
    subsets = [(dom, (d == dom) | (y == 1)) for dom in ("source", "target")]
    subsets.append(("all", np.ones_like(y, dtype=bool)))
    for name, mask in subsets:
        ys, ss = y[mask], s[mask]
        if len(np.unique(ys)) < 2:
            continue  # no curve without both classes
        fpr, tpr, _ = roc_curve(ys, ss)
        auc = float(roc_auc_score(ys, ss))
        colour = _DOMAIN_COLOURS.get(name, "black")
        style = "--" if name == "all" else "-"
        ax.plot(fpr, tpr, style, color=colour, label=f"{name} (AUC {auc:.3f})")
    ax.axvspan(0.0, max_fpr, color="grey", alpha=0.15, label=f"pAUC region (FPR ≤ {max_fpr})")
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC — {machine_type}")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return _save(fig, path, digest)


def plot_score_histogram(
    path: Path,
    machine_type: str,
    y_true: ArrayLike,
    domains: ArrayLike,
    scores: ArrayLike,
    *,
    threshold: float | None = None,
    bins: int = 30,
) -> Path:
    """Histogram of anomaly scores split by domain (colour) and label (filled = normal,
    outline = anomaly), with the decision threshold as a vertical line when given.
    Shapes as in :func:`plot_roc`. Writes a PNG and returns its path.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415

    y, d, s = _arrays(y_true, domains, scores)
    digest = _digest("hist", y, d, s, title=machine_type, bins=bins,
                     threshold=None if threshold is None else float(threshold))
    if png_digest(path) == digest:
        return Path(path)  # the same plot is there already
    finite = s[np.isfinite(s)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if threshold is not None and np.isfinite(threshold):
        lo, hi = min(lo, float(threshold)), max(hi, float(threshold))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    for dom in ("source", "target"):
        colour = _DOMAIN_COLOURS[dom]
        for label, name in ((0, "normal"), (1, "anomaly")):
            sel = s[(d == dom) & (y == label) & np.isfinite(s)]
            if sel.size == 0:
                continue
            text = f"{dom} {name} ({sel.size})"
            if label == 0:
                ax.hist(sel, bins=list(edges), color=colour, label=text, alpha=0.45,
                        histtype="stepfilled")
            else:
                ax.hist(sel, bins=list(edges), color=colour, label=text, histtype="step",
                        linewidth=1.8)
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(float(threshold), color="black", linestyle="--", label="threshold")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("clips")
    ax.set_title(f"Anomaly scores — {machine_type}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path, digest)
