"""Random machine types drawn from physical families (``synth --random-types N``).

A random type is named ``rnd<family><index>`` (e.g. ``rndfan03``, ``rndgear12``): lower-case
letters and digits only, no ``_``, so it never collides with a real DCASE type or one of the 11
named synthetic types, and its family code is part of its name. Everything about it (family
parameters, attributes and their values per domain, operating cycle, backgrounds, SNR ranges,
microphone change, anomaly kinds and strength, supplemental kind) is drawn from
``(seed, name)`` alone, so a type's bytes do not depend on which other types are generated or
on the worker count. :func:`random_type_names` spreads ``N`` types evenly over the families (a
seed-dependent order per block of ``len(FAMILIES)`` types).

Families reuse the named types' renderers (``*_core`` in ``_machines.py``) with drawn
parameters; ``hum`` (electrical hum) is the one family without a named counterpart. On top of
the family core a type may have an operating cycle: ``onoff`` (intermittent running with a
coasting idle level) or ``sweep`` (slow speed sweep of the fundamental), and a ``mic``
attribute (placement-dependent microphone response).
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from automl_asd.components.files import atomic_write_text
from automl_asd.synth._dsp import (
    Array,
    bandpass,
    colored_noise,
    drift,
    harmonics,
    peaking_eq,
    phase_of,
    pulse_train,
    random_pulses,
    resonate,
    sine,
    unit,
)
from automl_asd.synth._machines import (
    ENVIRONMENTS,
    AttrSpec,
    Ctx,
    MachineModel,
    _jit,
    _lowpass_shape,
    belt_core,
    fan_core,
    flow_core,
    gear_core,
    rail_core,
    recip_core,
    valve_core,
)

__all__ = [
    "FAMILIES",
    "NAMED_FAMILY",
    "INFO_FILE",
    "random_type_names",
    "is_random_type",
    "random_model",
    "family_of",
    "write_info",
]

#: Family code -> what it models. Codes are lower-case letters (they end up in type names).
FAMILIES: dict[str, str] = {
    "fan": "rotating shaft / fan (blade pass, turbulence)",
    "rec": "reciprocating pump / compressor (strokes, valve clicks)",
    "act": "impulsive intermittent actuator (valve / solenoid)",
    "gear": "gear mesh (mesh harmonics, shaft sidebands)",
    "rail": "sliding rail (strokes, friction, end stops)",
    "belt": "belt conveyor (roller rattle, belt joints)",
    "flow": "fluid flow (centrifugal pump, flow noise)",
    "hum": "electrical hum (transformer / motor magnetostriction)",
}
#: Family of each named synthetic type (codes without a random family: bear, toy, grind).
NAMED_FAMILY: dict[str, str] = {
    "fan": "fan", "gearbox": "gear", "bearing": "bear", "valve": "act", "slider": "rail",
    "ToyCar": "toy", "ToyTrain": "toy", "pump": "flow", "compressor": "rec", "grinder": "grind",
    "conveyor": "belt",
}
#: Anomaly kinds each family's core can render.
_ANOMALIES: dict[str, tuple[str, ...]] = {
    "fan": ("imbalance", "blade", "clog", "bearing"),
    "rec": ("leak", "knock", "belt"),
    "act": ("leak", "contamination", "stuck", "timing"),
    "gear": ("tooth", "wear", "misalign"),
    "rail": ("squeal", "damage", "dry"),
    "belt": ("seized", "rub", "bolt"),
    "flow": ("cavitation", "impeller", "clog"),
    "hum": ("arc", "loose", "saturation"),
}
#: Anomaly strength per family relative to the others (rails' end-stop hits and the hum
#: family's faults stand out more than the rest at the same severity).
_STRENGTH = {"rail": 0.7, "hum": 0.75}
_SWEEPABLE = frozenset({"fan", "gear", "flow", "hum"})
#: Root-level file recording each generated type's family (read by :func:`family_of`).
INFO_FILE = "synth_info.json"
_NAME_RE = re.compile(r"^rnd([a-z]+)(\d+)$")
_KEYS = {"speed": ("spd", "rpm", "vel", "freq"), "load": ("load", "wt", "press", "torque"),
         "mic": ("mic", "pos")}

Cycle = Literal["steady", "onoff", "sweep"]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def random_type_names(n: int, seed: int = 0) -> list[str]:
    """``n`` random type names for ``seed``: ``rnd<family><index>``, families spread evenly.

    Names for ``n`` are a prefix of the names for ``n + 1`` (same seed).
    """
    codes = sorted(FAMILIES)
    out = []
    for i in range(n):
        order = _rng(seed, 0x5EED, i // len(codes)).permutation(len(codes))
        out.append(f"rnd{codes[int(order[i % len(codes)])]}{i:02d}")
    return out


def is_random_type(name: str) -> bool:
    """True when ``name`` is a valid random type name (``rnd`` + family code + digits)."""
    m = _NAME_RE.match(name)
    return m is not None and m.group(1) in FAMILIES


@dataclass(frozen=True)
class _Attr:
    key: str
    kind: str  # speed | load | mic
    values: Mapping[str, tuple[float, ...]]  # value label -> effect parameters


@dataclass(frozen=True)
class _Spec:
    """Everything drawn for one random type (its render parameters)."""

    family: str
    params: Mapping[str, float]
    attrs: tuple[_Attr, ...]
    cycle: Cycle
    cycle_params: tuple[float, ...]


def _labels(factors: list[float]) -> list[str]:
    """Distinct short labels for attribute values (percent of nominal, rounded)."""
    out: list[str] = []
    for f in factors:
        lab = str(int(round(100.0 * f)))
        while lab in out:
            lab = str(int(lab) + 1)
        out.append(lab)
    return out


def _draw_attrs(r: np.random.Generator, shift: set[str]) -> tuple[tuple[_Attr, ...],
                                                                  tuple[AttrSpec, ...]]:
    n = int(r.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
    kinds = [str(r.choice(["speed", "load"]))]
    rest = [k for k in ("speed", "load", "mic") if k not in kinds]
    kinds += [str(k) for k in r.permutation(rest)[: n - 1]]
    attrs: list[_Attr] = []
    specs: list[AttrSpec] = []
    for kind in kinds:
        key = str(r.choice(_KEYS[kind]))
        n_src = int(r.integers(2, 4))
        values: dict[str, tuple[float, ...]]
        if kind == "mic":
            labels = [str(i + 1) for i in range(n_src + 1)]
            eqs = [(float(r.uniform(700.0, 6000.0)), float(r.uniform(-4.0, 4.0)))
                   for _ in labels]
            values = dict(zip(labels, eqs, strict=True))
        else:
            lo, hi = (0.8, 1.2) if kind == "speed" else (0.0, 0.6)
            src_f = sorted(float(v) for v in r.uniform(lo, hi, n_src))
            if kind == "speed":
                tgt_f = float(r.uniform(1.3, 1.45) if r.random() < 0.5 else r.uniform(0.62, 0.72))
            else:
                tgt_f = float(r.uniform(0.8, 1.0))
            labels = _labels([*src_f, tgt_f])
            values = {lab: (f,) for lab, f in zip(labels, [*src_f, tgt_f], strict=True)}
        src = tuple(labels[:n_src])
        tgt = (labels[n_src],) if kind in shift else src
        attrs.append(_Attr(key, kind, values))
        specs.append(AttrSpec(key, src, tgt))
    return tuple(attrs), tuple(specs)


def _draw_params(family: str, r: np.random.Generator) -> dict[str, float]:
    u = r.uniform
    if family == "fan":
        return {"f": u(12.0, 40.0), "blades": float(r.integers(3, 13)), "fc0": u(150.0, 400.0),
                "fck": u(8.0, 20.0), "blade_hz": u(1500.0, 4500.0), "bear_lo": u(3000.0, 5500.0),
                "bear_w": u(1200.0, 2000.0)}
    if family == "gear":
        return {"f": u(5.0, 22.0), "teeth": float(r.integers(12, 41)), "body": u(500.0, 1500.0),
                "tooth_hz": u(1500.0, 4000.0)}
    if family == "act":
        lo = u(300.0, 1200.0)
        return {"period": u(0.25, 0.9), "duty": u(0.25, 0.65), "ring": u(1800.0, 4500.0),
                "flow_lo": lo, "flow_hi": lo * u(3.0, 6.0), "pump": u(30.0, 70.0),
                "body": u(400.0, 1200.0)}
    if family == "rail":
        sq = u(2000.0, 4000.0)
        return {"vel": u(150.0, 450.0), "acc": u(0.2, 0.9), "stroke": u(0.6, 1.5),
                "fric": u(1500.0, 3500.0), "fric_bw": u(800.0, 2000.0), "motor": u(40.0, 120.0),
                "clunk": u(300.0, 1200.0), "damage": u(3500.0, 6500.0), "sq_lo": sq,
                "sq_hi": sq + 1000.0}
    if family == "flow":
        lo = u(1800.0, 3500.0)
        return {"f": u(15.0, 45.0), "vanes": float(r.integers(3, 10)),
                "mains2": float(r.choice([100.0, 120.0])), "flow": u(20.0, 100.0),
                "fc0": u(120.0, 350.0), "cav_lo": lo, "cav_hi": min(lo + u(2500.0, 4000.0), 7500.0)}
    if family == "rec":
        lo = u(200.0, 600.0)
        return {"f": u(5.0, 18.0), "thump": u(80.0, 250.0), "delay": u(0.1, 0.4),
                "click": u(1800.0, 4200.0), "mains": float(r.choice([50.0, 60.0])),
                "in_lo": lo, "in_hi": lo * u(3.0, 6.0), "knock": u(500.0, 1500.0),
                "belt": u(1000.0, 2500.0)}
    if family == "belt":
        return {"roll": u(3.0, 12.0), "motor": u(15.0, 40.0),
                "mains2": float(r.choice([100.0, 120.0])), "rollers": float(r.integers(2, 7)),
                "rattle": u(400.0, 1200.0), "tick_rate": u(0.3, 1.5), "tick": u(1000.0, 3000.0),
                "bolt": u(200.0, 600.0), "load0": u(0.0, 8.0)}
    if family == "hum":
        return {"mains": float(r.choice([50.0, 60.0])), "decay": u(0.35, 0.8),
                "cool": u(300.0, 1500.0), "cool_amp": u(0.3, 0.9), "loose": u(800.0, 2500.0),
                "arc_lo": u(2500.0, 4500.0)}
    raise AssertionError(family)


def hum_core(c: Ctx, mains: float, load: float, cool_scale: float, anomaly: str | None,
             s: float, p: Mapping[str, float], sweep: Array | None = None) -> Array:
    """Transformer / motor hum: magnetostriction tones at even multiples of ``mains`` whose
    balance follows ``load``, cooling-fan noise. Anomalies: arc (crackle bursts), loose
    (lamination rattle at twice mains), saturation (odd mains harmonics)."""
    f2 = 2.0 * mains
    fi = f2 * drift(c.rng, c.n, c.sr, 0.5, 0.0005)
    if sweep is not None:  # a variable-frequency drive: the hum follows the drive frequency
        fi = fi * sweep
    ph = phase_of(fi, c.n, c.sr)
    amps = [p["decay"] ** k * (1.0 + load * k / 3.0) for k in range(6)]
    tones = harmonics(ph, [1, 2, 3, 4, 5, 6], _jit(c, amps, 0.2), c.rng, c.sr, f0=f2)
    cool = colored_noise(c.rng, c.n, c.sr, _lowpass_shape(p["cool"] * cool_scale, 1.5))
    x = unit(tones) + p["cool_amp"] * cool
    if anomaly == "arc":
        burst = np.clip(drift(c.rng, c.n, c.sr, 4.0, 1.0) - 1.0, 0.0, None)
        crackle = bandpass(random_pulses(c.rng, c.n, c.sr, 400.0), p["arc_lo"], 7500.0, c.sr)
        x += 0.8 * s * unit(crackle * burst + 1e-9)
    elif anomaly == "loose":
        rattle = resonate(pulse_train(c.rng, c.n, c.sr, f2, jitter=0.02, amp_jitter=0.5),
                          p["loose"], 6.0, c.sr)
        x += 0.6 * s * unit(rattle)
    elif anomaly == "saturation":
        odd = harmonics(phase_of(mains * drift(c.rng, c.n, c.sr, 0.5, 0.0005), c.n, c.sr),
                        [3, 5, 7, 9], [1.0, 0.6, 0.4, 0.25], c.rng, c.sr, f0=mains)
        x += 0.5 * s * unit(odd)
    return x


def _render_family(sp: _Spec, c: Ctx, speed: float, load: float, sweep: Array | None,
                   anomaly: str | None, s: float) -> Array:
    p, fam = sp.params, sp.family
    if fam == "fan":
        return fan_core(c, p["f"] * speed * c.u(0.985, 1.015), anomaly, s,
                        blades=int(p["blades"]), fc0=p["fc0"] * (1.0 + 0.6 * load), fc_k=p["fck"],
                        blade_hz=p["blade_hz"], bear_band=(p["bear_lo"], p["bear_lo"] +
                                                           p["bear_w"]), sweep=sweep)
    if fam == "gear":
        return gear_core(c, p["f"] * speed * c.u(0.985, 1.015), min(load, 1.0), anomaly, s,
                         teeth=int(p["teeth"]), body_fc=p["body"], tooth_hz=p["tooth_hz"],
                         sweep=sweep)
    if fam == "act":
        return valve_core(c, p["period"] / speed, float(np.clip(p["duty"] + 0.3 * load - 0.1,
                                                                0.15, 0.8)),
                          p["ring"], anomaly, s, flow_band=(p["flow_lo"], p["flow_hi"]),
                          pump_hz=p["pump"], body_hz=p["body"])
    if fam == "rail":
        return rail_core(c, p["vel"] * speed, p["acc"], anomaly, s, stroke_scale=p["stroke"],
                         fric_hz=p["fric"] * (1.0 - 0.25 * load), fric_bw=p["fric_bw"],
                         motor_hz=p["motor"], clunk_hz=p["clunk"], damage_hz=p["damage"],
                         squeal=(p["sq_lo"], p["sq_hi"]))
    if fam == "flow":
        return flow_core(c, p["f"] * speed * c.u(0.99, 1.01), p["flow"] * (0.6 + load), anomaly,
                         s, vanes=int(p["vanes"]), mains2=p["mains2"], flow_fc0=p["fc0"],
                         cav_band=(p["cav_lo"], p["cav_hi"]), sweep=sweep)
    if fam == "rec":
        return recip_core(c, p["f"] * speed * c.u(0.98, 1.02), anomaly, s,
                          thump_hz=p["thump"] * (1.0 + 0.5 * load),
                          click_delay=p["delay"] + 0.1 * load, click_hz=p["click"],
                          mains=p["mains"], intake_band=(p["in_lo"], p["in_hi"]),
                          knock_hz=p["knock"], belt_hz=p["belt"])
    if fam == "belt":
        return belt_core(c, p["load0"] + 12.0 * load, anomaly, s, roll_hz=p["roll"] * speed,
                         motor_hz=p["motor"] * speed, mains2=p["mains2"],
                         rollers=int(p["rollers"]), rattle_hz=p["rattle"],
                         tick_rate=p["tick_rate"] * speed, tick_hz=p["tick"], bolt_hz=p["bolt"])
    return hum_core(c, p["mains"], load, speed, anomaly, s, p, sweep)


def _render(sp: _Spec, c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Render one clip of a random type (the ``MachineModel.render`` of random types)."""
    speed, load, mics = 1.0, 0.0, []
    for at in sp.attrs:
        v = at.values[a[at.key]]
        if at.kind == "speed":
            speed *= v[0]
        elif at.kind == "load":
            load += v[0]
        else:
            mics.append(v)
    sweep = None
    if sp.cycle == "sweep":
        depth, rate = sp.cycle_params
        sweep = 1.0 + depth * sine(phase_of(rate, c.n, c.sr), 1.0, c.u(0.0, 2.0 * np.pi))
    x = _render_family(sp, c, speed, load, sweep, anomaly, s)
    if sp.cycle == "onoff":
        period, duty, idle = sp.cycle_params
        t = (np.arange(c.n) / c.sr + c.u(0.0, period)) % period
        on = duty * period
        ramp = 0.04
        gate = np.clip(np.minimum(t, on - t) / ramp, 0.0, 1.0) * (t < on)
        x = unit(x) * (idle + (1.0 - idle) * gate)
    for freq, gain in mics:
        x = peaking_eq(x, freq, gain, 1.0, c.sr)
    return x


@functools.lru_cache(maxsize=256)
def random_model(name: str, seed: int) -> MachineModel:
    """The :class:`MachineModel` of random type ``name`` under ``seed`` (drawn from both)."""
    m = _NAME_RE.match(name)
    if m is None or m.group(1) not in FAMILIES:
        raise ValueError(f"{name!r} is not a random type name (rnd<family><digits>, family one "
                         f"of {', '.join(FAMILIES)})")
    family = m.group(1)
    r = _rng(seed, zlib.crc32(name.encode()), 17)
    params = _draw_params(family, r)
    # Domain shift: the target differs in one or two of speed / load / mic / background, and
    # always in SNR (lower) and microphone response.
    shift = {str(k) for k in r.choice(["speed", "load", "mic", "background"],
                                      size=int(r.integers(1, 3)), replace=False)}
    attrs, specs = _draw_attrs(r, shift)
    if not any(sp.source != sp.target for sp in specs):
        shift.add("background")
    hidden = bool(r.random() < 0.35)
    envs = sorted(ENVIRONMENTS)
    perm = [envs[int(i)] for i in r.permutation(len(envs))]
    n_src_env = int(r.integers(1, 3))
    src_envs = tuple(perm[:n_src_env])
    tgt_envs = (perm[n_src_env],) if "background" in shift else src_envs
    cycles: list[Cycle] = ["steady", "onoff", "sweep"] if family in _SWEEPABLE else \
        ["steady", "onoff"]
    cycle: Cycle = "steady" if family == "act" else cycles[int(r.integers(len(cycles)))]
    cycle_params: tuple[float, ...] = ()
    if cycle == "onoff":
        cycle_params = (float(r.uniform(0.6, 2.5)), float(r.uniform(0.5, 0.85)),
                        float(r.uniform(0.05, 0.25)))
    elif cycle == "sweep":
        cycle_params = (float(r.uniform(0.04, 0.15)), float(r.uniform(0.1, 0.6)))
    kinds = _ANOMALIES[family]
    n_kinds = int(r.integers(2, len(kinds) + 1))
    chosen = {str(k) for k in r.permutation(kinds)[:n_kinds]}
    anomalies = tuple(k for k in kinds if k in chosen)
    snr_lo = float(r.uniform(-3.0, 8.0))
    snr_src = (snr_lo, snr_lo + float(r.uniform(5.0, 10.0)))
    drop = float(r.uniform(0.0, 3.0))
    snr_tgt = (snr_src[0] - drop, snr_src[1] - drop)
    mic_gain = float(r.uniform(2.5, 5.0)) * (1.0 if "mic" in shift else 0.4)
    tgt_mic = (float(r.uniform(800.0, 5000.0)), mic_gain * float(r.choice([-1.0, 1.0])))
    # Anomaly strength: like the named types, lifted where the machine sits deeper in noise.
    lift = 10.0 ** ((7.0 - (snr_src[0] + snr_src[1]) / 2) / 40.0)
    scale = _STRENGTH.get(family, 1.0) * float(r.uniform(0.2, 0.38)) * lift
    supplemental: Literal["machine", "noise"] = "machine" if r.random() < 0.5 else "noise"
    spec = _Spec(family, params, attrs, cycle, cycle_params)
    shifted = {at.kind for at, sp in zip(attrs, specs, strict=True) if sp.source != sp.target}
    shifted |= {k for k, on in (("background", tgt_envs != src_envs), ("mic", "mic" in shift))
                if on}
    summary = ", ".join(f"{k}={v:.3g}" for k, v in list(params.items())[:3])
    desc = (f"random {FAMILIES[family]}: {summary}; cycle {cycle}; target shift "
            f"{'+'.join(sorted(shifted))}; SNR {snr_src[0]:.0f}..{snr_src[1]:.0f} dB")
    return MachineModel(
        name=name, description=desc, attributes=specs, hidden=hidden, supplemental=supplemental,
        anomalies=anomalies, render=functools.partial(_render, spec),
        envs={"source": src_envs, "target": tgt_envs},
        snr_db={"source": snr_src, "target": snr_tgt}, target_mic=tgt_mic, anomaly_scale=scale)


def family_of(type_name: str, root: Path | str | None = None) -> str | None:
    """Family code of a synthetic machine type (``None`` for a type that is not synthetic).

    Random types carry it in their name; named types map through :data:`NAMED_FAMILY`. With
    ``root``, the tree's ``synth_info.json`` (written by ``generate``) is consulted first.
    """
    if root is not None:
        info = Path(root) / INFO_FILE
        if info.is_file():
            fam = json.loads(info.read_text()).get("types", {}).get(type_name, {}).get("family")
            if isinstance(fam, str):
                return fam
    m = _NAME_RE.match(type_name)
    if m is not None and m.group(1) in FAMILIES:
        return m.group(1)
    return NAMED_FAMILY.get(type_name)


def write_info(root: Path, entries: Mapping[str, MachineModel], seed: int, *,
               anomaly_gain: float = 1.0) -> None:
    """Merge the generated types' family and description into ``<root>/synth_info.json``
    (with ``anomaly_gain`` when the anomalies were not rendered at the default strength)."""
    path = root / INFO_FILE
    data: dict[str, dict[str, object]] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            data = dict(loaded.get("types", {})) if isinstance(loaded, dict) else {}
        except ValueError:
            data = {}
    for name, model in entries.items():
        data[name] = {"family": family_of(name), "description": model.description,
                      "seed": seed, "random": is_random_type(name),
                      "anomalies": list(model.anomalies), "hidden": model.hidden}
        if anomaly_gain != 1.0:
            data[name]["anomaly_gain"] = anomaly_gain
    # atomic: a full disk leaves the old file, never a cut one (and the error names it)
    atomic_write_text(path, json.dumps({"types": dict(sorted(data.items()))}, indent=1,
                                       sort_keys=True) + "\n")
