"""Plan, render and write a synthetic DCASE-2025-layout tree."""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import io
import json
import logging
import math
import multiprocessing
import shutil
import signal
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from automl_asd.components.files import atomic_write_text, naming_path
from automl_asd.components.locks import file_lock
from automl_asd.data import SYNTH_MARKER
from automl_asd.synth._dsp import Array, peaking_eq, rms, unit
from automl_asd.synth._machines import MODELS, Ctx, MachineModel, render_background
from automl_asd.synth._random import is_random_type, random_model, write_info
from automl_asd.synth._sizes import SAMPLE_RATE, SIZES, SizeSpec, SynthError

__all__ = [
    "SizeSpec",
    "SIZES",
    "SAMPLE_RATE",
    "ClipPlan",
    "SynthError",
    "plan_machine",
    "render_clip",
    "generate",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the generated audio changes for a given seed (part of the tree marker).
GENERATOR_VERSION = 4
_MARKER = SYNTH_MARKER  # the tree marker: its one name is the data layer's, which reads it
#: Lock file in the output folder while a generator writes it (one generator at a time).
LOCK_FILE = ".synth.lock"
_LEVEL_DB = (-40.0, -30.0)  # clip RMS in dBFS, stratified per group; impulsive types peak < 1

@dataclass(frozen=True)
class ClipPlan:
    """Everything about one clip except its audio; cheap to compute for the whole tree."""

    split: str  # train | test | supplemental
    domain: str  # source | target
    label: str  # normal | anomaly (supplemental: machine | noise)
    index: int
    attributes: tuple[tuple[str, str], ...]
    anomaly: str | None
    severity: float
    env: str
    snr_db: float
    level_db: float
    labelled_name: str  # the DCASE labelled file name
    seed_key: tuple[int, ...]

    @property
    def attribute_string(self) -> str:
        return "_".join(f"{k}_{v}" for k, v in self.attributes)


_SPLIT_CODE = {"train": 0, "test": 1, "supplemental": 2}
_DOMAIN_CODE = {"source": 0, "target": 1}
_LABEL_CODE = {"normal": 0, "anomaly": 1, "machine": 2, "noise": 3}


def _mt_code(machine_type: str) -> int:
    return zlib.crc32(machine_type.encode())


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def _group(model: MachineModel, seed: int, split: str, domain: str, label: str,
           count: int, anomaly_gain: float = 1.0) -> list[ClipPlan]:
    """Plan one (split, domain, label) group; per-clip randomness comes from the clip's key.
    ``anomaly_gain`` multiplies every anomaly's severity after it is drawn, so it changes no
    other draw (normal clips are the same bytes at any gain)."""
    gkey = (seed, _mt_code(model.name), _SPLIT_CODE[split], _DOMAIN_CODE[domain],
            _LABEL_CODE[label])
    # Stratified levels: each group covers the level range evenly, in a random order, so clip
    # loudness carries no information about the label even for small groups.
    perm = _rng(*gkey, 1).permutation(count)
    out: list[ClipPlan] = []
    lo, hi = _LEVEL_DB
    for i in range(count):
        key = (*gkey, 0, i)
        r = _rng(*key, 0)
        attrs = tuple((a.key, str(r.choice(getattr(a, domain)))) for a in model.attributes)
        anomaly = model.anomalies[i % len(model.anomalies)] if label == "anomaly" else None
        # Severity log-uniform from subtle (0.2) to obvious (1.0), times the type's scale.
        sev = float(np.exp(r.uniform(np.log(0.2), 0.0))) * model.anomaly_scale * anomaly_gain
        env = str(r.choice(model.envs["source" if split == "supplemental" else domain]))
        snr = float(r.uniform(*model.snr_db[domain]))
        level = lo + (hi - lo) * (perm[i] + float(r.uniform())) / count
        attr_s = "noAttribute" if model.hidden else "_".join(f"{k}_{v}" for k, v in attrs)
        if split == "supplemental":
            name = f"section_00_source_supplemental_{label}_{i:04d}.wav"
        elif split == "train":
            name = f"section_00_{domain}_train_normal_{i:04d}_{attr_s}.wav"
        else:
            name = f"section_00_{domain}_test_{label}_{i:04d}_{attr_s}.wav"
        out.append(ClipPlan(split, domain, label, i, attrs, anomaly, sev if anomaly else 0.0, env,
                            snr, level, name, key))
    return out


def plan_machine(machine_type: str, size: str = "tiny", seed: int = 0,
                 anomaly_gain: float = 1.0) -> list[ClipPlan]:
    """All clips of one machine type, in order train (source, target), test (4 groups), supp."""
    model = _model(machine_type, seed)
    spec = _size(size)
    gain = check_anomaly_gain(anomaly_gain)
    plans = _group(model, seed, "train", "source", "normal", spec.n_source_train)
    plans += _group(model, seed, "train", "target", "normal", spec.n_target_train)
    for domain in ("source", "target"):
        for label in ("normal", "anomaly"):
            plans += _group(model, seed, "test", domain, label, spec.n_test_per_group, gain)
    plans += _group(model, seed, "supplemental", "source", model.supplemental,
                    spec.n_supplemental)
    return plans


def plan_extra(machine_type: str, size: str, seed: int, *, domain: str, label: str,
               count: int, anomaly_gain: float = 1.0) -> list[ClipPlan]:
    """``count`` more test-like clips of one (domain, label) group of the tree that
    ``generate(..., size=size, seed=seed)`` writes: the same machine, environments, SNRs and
    anomaly kinds, drawn from the same random streams at clip indices past the tree's own
    test clips, so no extra clip repeats one of them. Not written by :func:`generate`; for
    studies that need many labelled clips (``bench/ceiling.py --labelled``). Render each with
    :func:`render_clip`."""
    if domain not in ("source", "target") or label not in ("normal", "anomaly"):
        raise ValueError(f"plan_extra: domain {domain!r} / label {label!r}; expected "
                         "source|target and normal|anomaly")
    if count < 1:
        raise ValueError(f"plan_extra: count {count}; expected at least 1")
    n_test = _size(size).n_test_per_group
    model = _model(machine_type, seed)
    gain = check_anomaly_gain(anomaly_gain)
    return _group(model, seed, "test", domain, label, n_test + count, gain)[n_test:]


@dataclass(frozen=True)
class _Drawn:
    """The random draws of one clip, in the order :func:`render_clip` makes them from the
    clip's stream: the raw machine sound (``None`` for a noise-only clip), the per-clip EQ's
    (frequency, gain) and the unit-RMS background (``None`` for clean machine clips)."""

    model: MachineModel
    n: int
    raw: Array | None
    eq: tuple[float, float]
    background: Array | None


def _draw(machine_type: str, plan: ClipPlan, duration_s: float, sample_rate: int) -> _Drawn:
    model = _model(machine_type, plan.seed_key[0])  # seed_key starts with the tree's seed
    n = int(round(duration_s * sample_rate))
    ctx = Ctx(_rng(*plan.seed_key, 1), n, sample_rate)
    if plan.split == "supplemental" and plan.label == "noise":
        return _Drawn(model, n, None, (0.0, 0.0), render_background(ctx, plan.env))
    raw = model.render(ctx, dict(plan.attributes), plan.anomaly, plan.severity)
    # Small per-clip microphone/placement variation (normal nuisance).
    freq = ctx.u(1500.0, 4500.0)
    eq = (freq, ctx.u(-2.0, 2.0))
    # clean machine supplemental clips have no background
    bg = render_background(ctx, plan.env) if plan.split != "supplemental" else None
    return _Drawn(model, n, raw, eq, bg)


def render_clip(machine_type: str, plan: ClipPlan, duration_s: float,
                sample_rate: int = SAMPLE_RATE) -> NDArrayF32:
    """Synthesise one clip: float32 ``(n_samples,)`` with RMS at ``plan.level_db`` dBFS."""
    drawn = _draw(machine_type, plan, duration_s, sample_rate)
    if drawn.raw is None:
        assert drawn.background is not None
        x = drawn.background
    else:
        x = peaking_eq(unit(drawn.raw), drawn.eq[0], drawn.eq[1], 1.0, sample_rate)
        if drawn.background is not None:
            x = unit(x) + drawn.background * 10.0 ** (-plan.snr_db / 20.0)
        if plan.domain == "target":
            freq, gain = drawn.model.target_mic
            x = peaking_eq(x, freq, gain, 1.2, sample_rate)
    x = unit(x) * 10.0 ** (plan.level_db / 20.0)
    out: NDArrayF32 = np.clip(x, -0.999, 0.999).astype(np.float32)
    return out


NDArrayF32 = np.ndarray[tuple[int], np.dtype[np.float32]]


@dataclass(frozen=True)
class ClipParts:
    """What one generated clip is made of, at the scale the clip mixes them (before the
    per-clip and target-domain microphone EQs and the final level): ``machine`` (the normal
    machine sound), ``fault`` (what the anomaly adds or changes: the anomalous machine minus the
    same machine rendered without it from the same random stream; zeros for a normal clip) and
    ``background`` (the clip's own background at its SNR; zeros for supplemental clips)."""

    machine: Array
    fault: Array
    background: Array


def clip_parts(machine_type: str, plan: ClipPlan, duration_s: float,
               sample_rate: int = SAMPLE_RATE) -> ClipParts:
    """Split the clip :func:`render_clip` makes from ``plan`` into :class:`ClipParts`, for
    studies of how audible the generated faults are (``bench/fault_energy.py``). ``machine +
    fault`` is the clip's machine sound exactly and ``background`` its background exactly (the
    same draws as :func:`render_clip`); the EQs are left out."""
    drawn = _draw(machine_type, plan, duration_s, sample_rate)
    silent = np.zeros(drawn.n)
    if drawn.raw is None:
        assert drawn.background is not None
        return ClipParts(silent, silent, drawn.background)
    level = rms(drawn.raw)
    scale = 1.0 / level if level > 1e-12 else 1.0  # what unit() divides by
    if plan.anomaly is None:
        clean = drawn.raw
    else:  # the same machine from the same stream, without the fault: the same fault kind at
        # severity 0 makes the same random draws (rendering with no fault would skip the
        # fault's draws and shift everything drawn after it, e.g. an on/off cycle's phase)
        ctx = Ctx(_rng(*plan.seed_key, 1), drawn.n, sample_rate)
        clean = drawn.model.render(ctx, dict(plan.attributes), plan.anomaly, 0.0)
    bg = (silent if drawn.background is None
          else drawn.background * 10.0 ** (-plan.snr_db / 20.0))
    return ClipParts(clean * scale, (drawn.raw - clean) * scale, bg)


def _model(machine_type: str, seed: int) -> MachineModel:
    """A named type's model, or a random type's (``rnd<family><index>``, drawn from ``seed``)."""
    if machine_type in MODELS:
        return MODELS[machine_type]
    if is_random_type(machine_type):
        return random_model(machine_type, seed)
    raise SynthError(f"unknown synthetic machine type {machine_type!r}; valid: "
                     f"{', '.join(MODELS)}, or a random type rnd<family><index> "
                     "(see random_type_names)")


def _size(size: str) -> SizeSpec:
    try:
        return SIZES[size]
    except KeyError:
        raise SynthError(f"unknown size {size!r}; valid: {', '.join(SIZES)}") from None


def _write_wav(path: Path, x: Array | NDArrayF32) -> None:
    # Encode in memory, then write the bytes: closing a file written by libsndfile directly
    # syncs it to disk, which costs more than synthesising the clip.
    buf = io.BytesIO()
    sf.write(buf, x, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    with naming_path(path):  # a full disk's error names no file (found 2026-12-07)
        path.write_bytes(buf.getvalue())


def _render_and_write(machine_type: str, jobs: list[tuple[ClipPlan, str]],
                      duration_s: float) -> int:
    """Render and write ``(plan, destination path)`` jobs; returns the number written."""
    for plan, dest in jobs:
        _write_wav(Path(dest), render_clip(machine_type, plan, duration_s))
    return len(jobs)


def check_anomaly_gain(gain: float) -> float:
    """``gain`` as a float when it is a finite number > 0, else a :class:`SynthError`."""
    try:
        value = float(gain)
    except (TypeError, ValueError):
        raise SynthError(f"anomaly gain must be a number > 0, got {gain!r}") from None
    if not (math.isfinite(value) and value > 0.0):
        raise SynthError(f"anomaly gain must be a finite number > 0, got {gain!r}")
    return value


def _eval_order(machine_type: str, seed: int, n_test: int) -> np.ndarray:
    """Permutation that anonymises the test clips: position k gets eval name ``k``."""
    return _rng(seed, _mt_code(machine_type), 7).permutation(n_test)


#: files a desktop drops into a folder it shows (macOS Finder, Windows Explorer): nobody's
_DESKTOP_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")

#: what a tree written before its marker listed its files holds of the generator's own
_OWN_PATTERNS = ("train/*.wav", "test/*.wav", "supplemental/*.wav", "attributes_*.csv")


def _settings(marker: object) -> str:
    """A marker's generator settings as ``seed 0, size tiny`` (for a log line)."""
    if not isinstance(marker, dict):
        return "unknown settings"
    keys = ("seed", "size", "eval_layout", "anomaly_gain", "generator_version")
    return ", ".join(f"{k.replace('_', ' ')} {marker[k]}" for k in keys if k in marker)


def _prepare_dir(mdir: Path, marker: dict[str, object], overwrite: bool) -> bool:
    """Return True when ``mdir`` already holds this exact tree; when regenerating, remove it,
    which the generator does only when it holds nothing but the generator's files (and
    desktop litter such as ``.DS_Store``; empty folders go too), or with ``overwrite``. A tree
    of the generator that holds files it did not write is refused without ``overwrite``,
    naming them (found 2026-12-07: a rerun with another seed deleted a user's notes and clips
    silently)."""
    mfile = mdir / _MARKER
    if mfile.is_file():
        try:
            old = json.loads(mfile.read_text())
        except (OSError, ValueError):
            old = None
        same = isinstance(old, dict) and {k: v for k, v in old.items() if k != "files"} \
            == {**marker, "complete": True}
        if same:
            return True
        present = sorted(p.relative_to(mdir).as_posix() for p in mdir.rglob("*")
                         if p.is_file() or p.is_symlink())
        listed = old.get("files") if isinstance(old, dict) else None
        own = ({str(f) for f in listed} if isinstance(listed, list) else
               {rel for rel in present if any(fnmatch.fnmatchcase(rel, pat)
                                              for pat in _OWN_PATTERNS)}) | {_MARKER}
        # a marker's temporary copy a killed write left is the generator's too, and the
        # files desktops drop into folders they show are nobody's
        foreign = [rel for rel in present
                   if rel not in own and not fnmatch.fnmatchcase(rel, f".{_MARKER}.*.tmp")
                   and Path(rel).name not in _DESKTOP_FILES
                   and not Path(rel).name.startswith("._")]
        if foreign and not overwrite:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise SynthError(f"{mdir / foreign[0]}{more}: not written by the generator, in a "
                             f"tree it wrote with other settings ({_settings(old)}) that this "
                             "run would replace; move them away, choose another output folder "
                             "or pass overwrite=True (--overwrite) to delete them too")
        if isinstance(old, dict) and old.get("complete"):
            logger.warning("%s: replacing the tree written with %s", mdir, _settings(old))
        shutil.rmtree(mdir)  # only the generator's files (and litter) left, or overwrite
    elif mdir.exists() and any(mdir.iterdir()):
        if not overwrite:
            raise SynthError(f"{mdir} exists and was not written by the generator; choose another "
                             "output folder or pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(mdir)
    return False


def _write_machine(out: Path, machine_type: str, spec: SizeSpec, size: str, seed: int,
                   eval_layout: bool, overwrite: bool, pool: Executor | None,
                   anomaly_gain: float = 1.0) -> Path:
    model = _model(machine_type, seed)
    mdir = out / machine_type
    marker: dict[str, object] = {"generator_version": GENERATOR_VERSION, "machine_type":
                                 machine_type, "size": size, "seed": seed,
                                 "eval_layout": eval_layout}
    if anomaly_gain != 1.0:  # trees at the default gain keep the marker they always had
        marker["anomaly_gain"] = anomaly_gain
    plans = plan_machine(machine_type, size, seed, anomaly_gain)
    tests = [p for p in plans if p.split == "test"]
    order = _eval_order(machine_type, seed, len(tests))
    eval_names = {tests[j].labelled_name: f"section_00_{k:04d}.wav" for k, j in enumerate(order)}
    # Checked before anything is written or removed: ground truth for this type that no tree
    # of the generator sits beside is someone else's (a refused run changes nothing).
    truth = [out / sub / f"ground_truth_{machine_type}_section_00_test.csv"
             for sub in _TRUTH_DIRS]
    ours = (mdir / _MARKER).is_file()
    if not (ours or overwrite) and (found := [p for p in truth if p.exists()]):
        raise SynthError(f"{found[0]}: ground truth for {machine_type} that the generator did "
                         "not write; choose another output folder or pass overwrite=True "
                         "(--overwrite) to replace it")
    up_to_date = _prepare_dir(mdir, marker, overwrite)
    if up_to_date:
        _place_ground_truth(out, machine_type, tests, eval_names if eval_layout else None)
        logger.info("%s: up to date in %s", machine_type, mdir)
        return mdir
    t0 = time.perf_counter()
    for sub in ("train", "test", "supplemental"):
        (mdir / sub).mkdir(parents=True, exist_ok=True)
    jobs = []
    for p in plans:
        name = eval_names[p.labelled_name] if (eval_layout and p.split == "test") else \
            p.labelled_name
        jobs.append((p, str(mdir / p.split / name)))
    # the files this tree will hold, listed before any is written: a rerun with other settings
    # deletes only these (an interrupted tree's too)
    marker["files"] = sorted([*(f"{p.split}/{Path(path).name}" for p, path in jobs),
                              *_ATTRIBUTE_FILES])
    atomic_write_text(mdir / _MARKER, json.dumps({**marker, "complete": False}, sort_keys=True))
    if eval_layout:  # written in anonymised-name order: write order (mtimes, inodes) tells
        # nothing of a clip's domain or label
        jobs.sort(key=lambda job: (job[0].split != "test", Path(job[1]).name))
    if pool is None:
        _render_and_write(machine_type, jobs, spec.duration_s)
    else:
        chunk = 32
        futures = [pool.submit(_render_and_write, machine_type, jobs[i:i + chunk],
                               spec.duration_s) for i in range(0, len(jobs), chunk)]
        written = sum(f.result() for f in futures)
        assert written == len(jobs)
    _write_attributes(mdir, machine_type, model, plans, eval_layout)
    _place_ground_truth(out, machine_type, tests, eval_names if eval_layout else None)
    atomic_write_text(mdir / _MARKER, json.dumps({**marker, "complete": True}, sort_keys=True))
    logger.info("%s: %d clips of %.1f s in %.1f s -> %s", machine_type, len(plans),
                spec.duration_s, time.perf_counter() - t0, mdir)
    return mdir


#: the per-type files the generator writes beside the clips
_ATTRIBUTE_FILES = ("attributes_00.csv",)


def _write_attributes(mdir: Path, machine_type: str, model: MachineModel, plans: list[ClipPlan],
                      eval_layout: bool) -> None:
    """``attributes_00.csv``: ``file_name,d1p,d1v,...`` for train (and labelled test) clips.

    Hidden-attribute types get one pair ``noAttribute,`` (empty value) per row.
    """
    n_pairs = 1 if model.hidden else len(model.attributes)
    header = ["file_name"] + [f"d{i + 1}{c}" for i in range(n_pairs) for c in ("p", "v")]
    with naming_path(mdir / "attributes_00.csv"), \
            open(mdir / "attributes_00.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for p in plans:
            if p.split == "supplemental" or (eval_layout and p.split == "test"):
                continue
            pairs = ["noAttribute", ""] if model.hidden else [v for kv in p.attributes for v in kv]
            w.writerow([f"{machine_type}/{p.split}/{p.labelled_name}", *pairs])


#: The evaluator's ground-truth folders under the tree's root.
_TRUTH_DIRS = ("ground_truth_data", "ground_truth_domain", "ground_truth_attributes")


def _place_ground_truth(out: Path, machine_type: str, tests: list[ClipPlan],
                        eval_names: dict[str, str] | None) -> None:
    """The type's ground-truth CSVs as its tree needs them: written for the eval layout
    (``eval_names``), removed for a labelled tree (they would describe names it lacks)."""
    if eval_names is not None:
        _write_ground_truth(out, machine_type, tests, eval_names)
        return
    for sub in _TRUTH_DIRS:
        (out / sub / f"ground_truth_{machine_type}_section_00_test.csv").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # an empty folder reads as "no ground truth here"
            (out / sub).rmdir()  # only when empty (other types' files keep it)


def _write_ground_truth(out: Path, machine_type: str, tests: list[ClipPlan],
                        eval_names: dict[str, str]) -> None:
    """Headerless evaluator CSVs: label, domain and labelled name per anonymised test clip."""
    rows = sorted((eval_names[p.labelled_name], p) for p in tests)
    fname = f"ground_truth_{machine_type}_section_00_test.csv"
    columns: tuple[Callable[[ClipPlan], str], ...] = (
        lambda p: str(int(p.label == "anomaly")), lambda p: str(int(p.domain == "target")),
        lambda p: p.labelled_name[:-4])
    for sub, value in zip(_TRUTH_DIRS, columns, strict=True):
        d = out / sub
        d.mkdir(parents=True, exist_ok=True)
        with naming_path(d / fname), open(d / fname, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            for name, p in rows:
                w.writerow([name, value(p)])


def generate(out: Path | str, *, machine_types: list[str] | tuple[str, ...] | None = None,
             size: str = "tiny", seed: int = 0, eval_layout: bool = False,
             overwrite: bool = False, workers: int = 1,
             anomaly_gain: float = 1.0) -> dict[str, Path]:
    """Write a synthetic DCASE-2025-layout tree; see :mod:`automl_asd.synth` for the layout.

    Args:
        out: root folder; gets ``<out>/<machine_type>/{train,test,supplemental}/*.wav`` and
            ``attributes_00.csv`` (plus ``<out>/ground_truth_*/`` with ``eval_layout``), and
            ``<out>/synth_info.json`` (each type's family and description, merged).
        machine_types: names from ``MACHINE_TYPES`` and/or random types
            (``random_type_names(n, seed)``; default: the named types, in catalogue order).
        size: ``"tiny"``, ``"small"`` or ``"full"`` (see ``SIZES``).
        seed: any non-negative int; the same seed gives byte-identical files, and a type's
            files do not depend on which other types are generated.
        eval_layout: anonymise test names (``section_00_NNNN.wav``) and write ground truth.
        overwrite: replace a machine folder that the generator did not write. Folders that it
            wrote are reused when complete with the same parameters, else regenerated.
        workers: processes that render clips (1 = in this process). The bytes written do not
            depend on it.
        anomaly_gain: multiplies every anomaly's strength (1 = the calibrated default that
            ``bench/synth_difficulty.py`` checks; 2 = faults 6 dB louder). Only anomalous clips
            change; normal clips are the same bytes at any gain. For studies of how results
            depend on how audible the faults are (``bench/fault_gain.py``).

    Returns:
        ``{machine_type: <out>/<machine_type>}`` sorted by machine type.
    """
    if seed < 0:
        raise SynthError(f"seed must be >= 0, got {seed}")
    gain = check_anomaly_gain(anomaly_gain)
    spec = _size(size)
    types = list(MODELS) if machine_types is None else list(machine_types)
    models = {mt: _model(mt, seed) for mt in types}
    if len(set(types)) != len(types):
        raise SynthError(f"machine_types has duplicates: {types}")
    if workers < 1:  # before the folder exists: a refused run leaves nothing
        raise SynthError(f"workers must be >= 1, got {workers}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    # "spawn": the caller may hold threads (torch, Ray) that make fork unsafe.
    # Workers ignore SIGINT: Ctrl+C reaches the whole process group, and each worker then
    # printed a KeyboardInterrupt traceback (found 2026-12-08 interrupting `demo`); this
    # process alone stops the run and shuts the pool down.
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                initializer=signal.signal,
                                initargs=(signal.SIGINT, signal.SIG_IGN))
            if workers > 1 else None)
    try:
        if pool is not None:
            # Start the workers before taking the folder's lock: a script that calls this
            # without an ``if __name__ == "__main__":`` guard is re-run by every spawned worker,
            # and there Python's own "bootstrapping phase" error must stop it, not a wait for
            # the lock that its parent holds (which never ends).
            try:
                pool.submit(int).result()
            except BrokenProcessPool as exc:
                raise SynthError(
                    f"the {workers} worker processes could not start (see their error above); "
                    "a script that calls generate(workers > 1) must guard the call with "
                    "'if __name__ == \"__main__\":' (each worker re-imports the script), or "
                    "use workers=1") from exc
        # Two generators on one folder (two benches sharing a --work) take turns: the second
        # one then finds the first one's complete machine folders and reuses them instead of
        # clearing what is still being written.
        with file_lock(root / LOCK_FILE, waiting=f"waiting for another generator writing {root}"):
            result = {mt: _write_machine(root, mt, spec, size, seed, eval_layout, overwrite,
                                         pool, gain) for mt in types}
            write_info(root, models, seed, anomaly_gain=gain)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return dict(sorted(result.items()))
