"""Environment checks: the locked torch/torchaudio pair, compiled ops, Ray, devices, cache.

``automl-asd doctor`` runs :func:`run_checks`; every command that computes features calls
:func:`require_torchaudio` first, so a torchaudio that does not load (a mismatched torch /
torchaudio pair: ``OSError: Could not load this library: .../libtorchaudio.so``) ends the
command with one line naming the installed pair and the fix instead of a traceback.

Importing this module imports neither torch nor Ray; the checks do, one at a time.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl_asd.errors import PermanentError, one_line

__all__ = [
    "EnvironmentProblem",
    "Check",
    "FIX",
    "VERIFY_AUDIO_ENV",
    "cache_write_failed",
    "default_cache_dir",
    "absolute_cache_env",
    "verify_audio_default",
    "installed_version",
    "pinned_versions",
    "require_torchaudio",
    "run_checks",
]

logger = logging.getLogger(__name__)

#: How to repair the torch pair (from a checkout, or by hand).
FIX = ("run `bash tools/install.sh .venv dev --editable` in the repository (rebuilds .venv from "
       "constraints.txt) or `pip install torch=={torch} torchaudio=={torchaudio}`")
#: Used when the package metadata is not available (a checkout run without installing it).
_DEFAULT_PINS = {"torch": "2.11.0", "torchaudio": "2.11.0"}


class EnvironmentProblem(PermanentError, RuntimeError):
    """The Python environment cannot run automl-asd (e.g. torchaudio does not load); the message
    is one line naming what is installed and the fix. A retry cannot heal it."""


def installed_version(dist: str) -> str | None:
    """Version of an installed distribution, or ``None`` (does not import it)."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def pinned_versions() -> dict[str, str]:
    """Exact pins (``name==version``) of automl-asd's requirements, from its metadata (the same
    pins as ``pyproject.toml`` and ``constraints.txt``)."""
    pins: dict[str, str] = {}
    try:
        requires = md.requires("automl-asd") or []
    except md.PackageNotFoundError:
        return dict(_DEFAULT_PINS)
    for req in requires:
        if "extra ==" in req:
            continue
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;,]+)", req)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins or dict(_DEFAULT_PINS)


def checkout_lock() -> Path:
    """``constraints.txt`` of the checkout this package runs from (an editable install); a
    wheel install has none there."""
    return Path(__file__).resolve().parents[1] / "constraints.txt"


def lock_pins(path: Path | None = None) -> dict[str, str]:
    """The torch / torchaudio pins of the checkout's lock (``{}`` without one): after a
    ``git pull`` that moves the lock, an editable install's metadata still holds the old pins."""
    lock = checkout_lock() if path is None else path
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {m.group(1).lower(): m.group(2) for m in re.finditer(
        r"^(torch|torchaudio)==([^\s;#]+)", text, flags=re.MULTILINE | re.IGNORECASE)}


def _public(version: str | None) -> str | None:
    """``2.11.0+cu128`` -> ``2.11.0``."""
    return None if version is None else version.split("+", 1)[0]


def _pair_text() -> str:
    return (f"torch {installed_version('torch') or 'not installed'} with torchaudio "
            f"{installed_version('torchaudio') or 'not installed'}")


def _fix_text() -> str:
    pins = {**_DEFAULT_PINS, **pinned_versions()}
    return FIX.format(torch=pins["torch"], torchaudio=pins["torchaudio"])


def require_torchaudio() -> None:
    """Import torchaudio (and its compiled library), or raise :class:`EnvironmentProblem`.

    Raises:
        EnvironmentProblem: one line, e.g. ``torchaudio does not load (torch 2.11.0 with
            torchaudio 2.11.1: OSError: Could not load this library: ...): run ...``.
    """
    if "torchaudio.transforms" in sys.modules:
        return
    try:
        import torchaudio.functional  # noqa: PLC0415, F401
        import torchaudio.transforms  # noqa: PLC0415, F401
    except (OSError, ImportError, RuntimeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if len(first) > 300:
            first = first[:300] + "..."
        raise EnvironmentProblem(
            f"torchaudio does not load ({_pair_text()}: {type(exc).__name__}: {first}); "
            f"automl-asd needs the locked pair: {_fix_text()}") from exc


# --------------------------------------------------------------------------------------------
# doctor
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One line of ``automl-asd doctor``: ``ok`` and what was found (or what is wrong)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<11} {self.detail}"


def _check_python() -> Check:
    v = sys.version_info
    ok = (v.major, v.minor) >= (3, 11)
    text = f"{v.major}.{v.minor}.{v.micro} ({sys.executable})"
    return Check("python", ok, text if ok else f"{text}: automl-asd needs Python >= 3.11")


def _check_pair() -> Check:
    pins = {**pinned_versions(), **lock_pins()}  # the checkout's lock wins over old metadata
    found = {d: installed_version(d) for d in ("torch", "torchaudio")}
    wrong = [f"{d} {found[d] or 'missing'} (lock: {pins[d]})" for d in ("torch", "torchaudio")
             if d in pins and _public(found[d]) != pins[d]]
    text = f"torch {found['torch']}, torchaudio {found['torchaudio']}"
    if wrong:
        return Check("torch pair", False, f"{'; '.join(wrong)}: {_fix_text()}")
    return Check("torch pair", True, f"{text} (the locked pair)")


def _check_torchaudio_ops() -> Check:
    try:
        require_torchaudio()
        import torch  # noqa: PLC0415
        import torchaudio  # noqa: PLC0415
        import torchaudio.functional as taf  # noqa: PLC0415
        import torchaudio.transforms as T  # noqa: PLC0415

        wave = torch.sin(torch.linspace(0.0, 800.0, 1600)).unsqueeze(0)
        mel = T.MelSpectrogram(sample_rate=16000, n_fft=256, hop_length=128, n_mels=16)(wave)
        half = taf.resample(wave, 16000, 8000)
        # lfilter runs torchaudio's compiled loop when the extension is loaded.
        filtered = taf.lfilter(wave, torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.5]))
        ext = bool(getattr(torchaudio._extension, "_IS_TORCHAUDIO_EXT_AVAILABLE", False))
    except EnvironmentProblem as exc:
        return Check("torchaudio", False, str(exc))
    except Exception as exc:  # any failure of the ops is the finding
        return Check("torchaudio", False, f"ops failed ({_pair_text()}): "
                                          f"{type(exc).__name__}: {exc}; {_fix_text()}")
    shapes_ok = (tuple(mel.shape) == (1, 16, 13) and tuple(half.shape) == (1, 800)
                 and bool(torch.isfinite(filtered).all()))
    detail = (f"MelSpectrogram {tuple(mel.shape)}, resample 16->8 kHz {tuple(half.shape)}, "
              f"lfilter ok; compiled extension {'loaded' if ext else 'not built'}")
    return Check("torchaudio", shapes_ok, detail if shapes_ok else f"wrong results: {detail}")


def _check_import(module: str, dist: str) -> Callable[[], Check]:
    def check() -> Check:
        try:
            mod: Any = __import__(module)
        except Exception as exc:  # the finding
            return Check(module, False, f"import failed: {type(exc).__name__}: {exc}; "
                                        f"{_fix_text()}")
        return Check(module, True, f"{getattr(mod, '__version__', installed_version(dist))}")

    return check


def _check_ray() -> Check:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return _check_import("ray", "ray")()


def _check_device() -> Check:
    try:
        import torch  # noqa: PLC0415

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            names = ", ".join(sorted({torch.cuda.get_device_name(i) for i in range(n)}))
            return Check("device", True, f"CUDA {torch.version.cuda}: {n} GPU(s) ({names})")
        threads = torch.get_num_threads()
    except Exception as exc:  # the finding
        return Check("device", False, f"torch device detection failed: "
                                      f"{type(exc).__name__}: {exc}")
    return Check("device", True, f"CPU only (CUDA not available), {os.cpu_count()} cores, "
                                 f"torch uses {threads} threads")


def default_cache_dir() -> Path:
    """``$AUTOML_ASD_CACHE`` if set, else ``~/.cache/automl-asd``."""
    env = os.environ.get("AUTOML_ASD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "automl-asd"


def absolute_cache_env() -> str | None:
    """Make a relative ``$AUTOML_ASD_CACHE`` absolute, against the current folder, in this
    process's environment, before it starts processes that run elsewhere: a local Ray's
    workers inherit it and Tune runs each trial in its own folder (found 2026-12-07:
    ``AUTOML_ASD_CACHE=cache automl-asd search`` built a new cache in every trial's folder
    under /tmp/ray, reused by none). Returns the new value, ``None`` when unchanged."""
    env = os.environ.get("AUTOML_ASD_CACHE")
    if not env or Path(env).expanduser().is_absolute():
        return None
    os.environ["AUTOML_ASD_CACHE"] = str(Path(env).expanduser().absolute())
    return os.environ["AUTOML_ASD_CACHE"]


#: cache folders in which this process failed to store an entry (each is warned about once)
_CACHE_FAILURES: set[str] = set()
_CACHE_FAILURES_LOCK = threading.Lock()


def cache_write_failed(log: logging.Logger, root: Path, kind: str, path: Path,
                       exc: OSError) -> None:
    """Log on ``log`` that the ``kind`` entry ``path`` of the cache folder ``root`` was not
    stored; the caller goes on without it (a cache is an optimisation).

    The first failure in a folder is a WARNING naming the folder and its free space (found
    2026-12-07 on a full tmpfs: a WARNING per entry, none saying how full the disk was, and
    a bare ``[Errno 28]``); later ones in this process are INFO, since a full disk fails every
    entry after it.
    """
    with _CACHE_FAILURES_LOCK:
        first = str(root) not in _CACHE_FAILURES
        _CACHE_FAILURES.add(str(root))
    if exc.filename is None and exc.errno is not None:  # a failed write() names no file
        exc = OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
    probe = Path(root)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = f"{shutil.disk_usage(probe).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    log.log(logging.WARNING if first else logging.INFO,
            "could not write %s %s; continuing uncached (cache folder %s: %s%s)", kind,
            one_line(exc), root, free,
            "; later failures there are logged at INFO" if first else "")


#: Environment switch (CLI ``--verify-audio`` sets it): key input clips by a digest of their bytes
#: instead of by ``stat`` (:func:`automl_asd.components.files.file_identity`), in the feature
#: cache, the representation cache and ``apply --resume``.
VERIFY_AUDIO_ENV = "AUTOML_ASD_VERIFY_AUDIO"


def verify_audio_default() -> bool:
    """Whether ``$AUTOML_ASD_VERIFY_AUDIO`` asks for content digests of the input clips."""
    return os.environ.get(VERIFY_AUDIO_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _check_cache() -> Check:
    folder = default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-", delete=True) as fh:
            fh.write(b"ok")
    except OSError as exc:
        return Check("cache", False, f"{folder} is not writable ({exc}); set AUTOML_ASD_CACHE "
                                     "to a writable folder (search and apply also take "
                                     "--cache-dir)")
    return Check("cache", True, f"{folder} writable"
                                + ("" if os.environ.get("AUTOML_ASD_CACHE") else
                                   " (set AUTOML_ASD_CACHE to move it)"))


#: The checks of ``automl-asd doctor``, in order.
CHECKS: tuple[Callable[[], Check], ...] = (
    _check_python, _check_pair, _check_torchaudio_ops, _check_ray,
    _check_import("optuna", "optuna"), _check_device, _check_cache,
)


def run_checks(say: Callable[[str], None] = print) -> list[Check]:
    """Run every check, printing one line each as it finishes; returns them."""
    results = []
    for check in CHECKS:
        result = check()
        say(result.line())
        results.append(result)
    return results

