"""Physical sound models of the synthetic machine types and their factory backgrounds.

Each machine type is a :class:`MachineModel`: operating-condition attributes (per domain), a
``render`` function that synthesises the machine-only signal for one clip (normal or with one
anomaly of a given kind and severity), the background environments of each domain and the kind
of its supplemental clips. Every model is a different mechanism (rotor + blade-pass, gear mesh,
rolling-element defects, valve transients, friction, commutator whine, rail joints, vane-pass +
cavitation, reciprocating strokes, abrasive contact, roller rattle), so detectors are ranked on
genuinely different sound structures.

Loudness never gives an anomaly away: the caller normalises every mixture to a random level, so
anomalies only change the *shape* of the sound (spectrum, periodicity, modulation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from automl_asd.synth._dsp import (
    Array,
    am,
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
    white,
)

__all__ = ["Ctx", "AttrSpec", "MachineModel", "MODELS", "render_background", "ENVIRONMENTS"]


@dataclass
class Ctx:
    """Per-clip synthesis context: the clip's own RNG, its length and sample rate."""

    rng: np.random.Generator
    n: int
    sr: int

    def u(self, lo: float, hi: float) -> float:
        """One uniform draw in ``[lo, hi)``."""
        return float(self.rng.uniform(lo, hi))

    def white(self) -> Array:
        return white(self.rng, self.n)


@dataclass(frozen=True)
class AttrSpec:
    """One operating-condition attribute: key and the values each domain draws from."""

    key: str
    source: tuple[str, ...]
    target: tuple[str, ...]


RenderFn = Callable[[Ctx, Mapping[str, str], "str | None", float], Array]


@dataclass(frozen=True)
class MachineModel:
    """A synthetic machine type.

    ``hidden``: attributes affect the sound but file names say ``noAttribute``.
    ``envs``: background environment names drawn per clip, per domain.
    ``snr_db``: (low, high) machine-to-background ratio range per domain.
    ``target_mic``: (centre Hz, gain dB) of the target-domain microphone response change.
    ``anomaly_scale``: overall anomaly strength (the per-type difficulty knob).
    """

    name: str
    description: str
    attributes: tuple[AttrSpec, ...]
    hidden: bool
    supplemental: Literal["machine", "noise"]
    anomalies: tuple[str, ...]
    render: RenderFn
    envs: Mapping[str, tuple[str, ...]]
    snr_db: Mapping[str, tuple[float, float]]
    target_mic: tuple[float, float]
    anomaly_scale: float = 1.0


# --------------------------------------------------------------------------------------------
# Background environments (factory / suburb noise mixed at clip-varying SNR)

@dataclass(frozen=True)
class _Env:
    slope: float  # power spectrum ~ f^-slope
    hum_hz: float
    hum: float
    knock_rate: float
    knock_hz: float
    band: tuple[float, float]
    band_amp: float


ENVIRONMENTS: dict[str, _Env] = {
    "hallA": _Env(1.0, 50.0, 0.25, 0.8, 1800.0, (250.0, 2500.0), 0.5),
    "hallB": _Env(0.6, 60.0, 0.2, 1.5, 900.0, (120.0, 900.0), 0.6),
    "shop": _Env(0.3, 50.0, 0.1, 3.0, 3200.0, (1200.0, 6000.0), 0.7),
    "suburb": _Env(1.6, 0.0, 0.0, 0.3, 500.0, (60.0, 500.0), 0.9),
    "plant": _Env(0.8, 100.0, 0.3, 6.0, 2400.0, (400.0, 4000.0), 0.8),
}


def render_background(ctx: Ctx, env_name: str) -> Array:
    """Unit-RMS background noise of environment ``env_name`` for one clip."""
    env = ENVIRONMENTS[env_name]
    n, sr, rng = ctx.n, ctx.sr, ctx.rng
    slope = env.slope * ctx.u(0.85, 1.15)
    x = colored_noise(rng, n, sr, lambda f: np.maximum(f, 30.0) ** (-slope / 2.0))
    if env.hum > 0.0:
        x += env.hum * ctx.u(0.5, 1.5) * harmonics(
            phase_of(env.hum_hz, n, sr), [1, 2, 3], [1.0, 0.5, 0.3], rng, sr)
    if env.knock_rate > 0.0:
        knocks = resonate(random_pulses(rng, n, sr, env.knock_rate), env.knock_hz, 6.0, sr)
        x += 6.0 * knocks
    band = bandpass(ctx.white(), env.band[0], env.band[1], sr)
    x += env.band_amp * unit(band) * drift(rng, n, sr, 0.7, 0.3)
    return unit(x)


# --------------------------------------------------------------------------------------------
# Helpers shared by the models

def _fundamental(ctx: Ctx, f0: float, wobble: float = 0.004, rate: float = 1.0) -> Array:
    """Instantaneous frequency around ``f0`` with slow speed fluctuation."""
    return f0 * drift(ctx.rng, ctx.n, ctx.sr, rate, wobble)


def _jit(ctx: Ctx, amps: list[float], spread: float = 0.3) -> list[float]:
    """Per-clip random variation of partial amplitudes (normal machine-to-machine spread)."""
    return [a * float(np.exp(spread * ctx.rng.standard_normal())) for a in amps]


def _lowpass_shape(fc: float, order: float = 1.0) -> Callable[[Array], Array]:
    return lambda f: 1.0 / np.sqrt(1.0 + (f / fc) ** (2.0 * order))


# --------------------------------------------------------------------------------------------
# Family cores. Each named type below maps its attributes to physical parameters and calls its
# family's core; the random types of ``_random.py`` call the same cores with drawn parameters.
# ``sweep`` (optional): a per-sample speed profile (mean ~1) multiplying the fundamental.

def _swept(fi: Array, sweep: Array | None) -> Array:
    return fi if sweep is None else fi * sweep


def fan_core(c: Ctx, f_r: float, anomaly: str | None, s: float, *, blades: int = 7,
             fc0: float = 250.0, fc_k: float = 14.0, blade_hz: float = 2600.0,
             bear_band: tuple[float, float] = (4200.0, 6200.0),
             sweep: Array | None = None) -> Array:
    """Rotor with ``blades`` blades at shaft rate ``f_r``: blade-pass tones, shaft harmonics,
    turbulence modulated at blade pass. Anomalies: imbalance, blade, clog, bearing."""
    fi = _swept(_fundamental(c, f_r), sweep)
    ph = phase_of(fi, c.n, c.sr)
    tones = harmonics(ph, [blades * k for k in (1, 2, 3, 4)], _jit(c, [1.0, 0.5, 0.25, 0.12]),
                      c.rng, c.sr, f0=f_r)
    tones += harmonics(ph, [1, 2, 3], _jit(c, [0.12, 0.06, 0.04]), c.rng, c.sr, f0=f_r)
    fc = fc0 + fc_k * f_r
    turb = am(colored_noise(c.rng, c.n, c.sr, _lowpass_shape(fc)), blades * f_r, 0.15, c.sr)
    x = 0.45 * unit(tones) + turb * c.u(0.8, 1.2)
    if anomaly == "imbalance":
        x = am(x + 0.9 * s * sine(ph), f_r, 0.6 * s, c.sr)
    elif anomaly == "blade":
        x += 0.7 * s * unit(resonate(pulse_train(c.rng, c.n, c.sr, f_r, jitter=0.01), blade_hz,
                                     5.0, c.sr))
    elif anomaly == "clog":
        x = x + 0.8 * s * colored_noise(c.rng, c.n, c.sr, _lowpass_shape(0.35 * fc, 2.0))
    elif anomaly == "bearing":
        rough = bandpass(c.white(), bear_band[0], bear_band[1], c.sr) * drift(c.rng, c.n, c.sr,
                                                                             30.0, 0.6)
        x += 0.45 * s * unit(rough)
    return x


def gear_core(c: Ctx, f_s: float, load: float, anomaly: str | None, s: float, *,
              teeth: int = 23, body_fc: float = 900.0, tooth_hz: float = 2100.0,
              sweep: Array | None = None) -> Array:
    """Gear mesh (``teeth`` teeth, shaft rate ``f_s``, load 0..1 shapes the harmonics) with
    shaft-rate sidebands. Anomalies: tooth, wear, misalign."""
    fi = _swept(_fundamental(c, f_s, 0.003), sweep)
    ph = phase_of(fi, c.n, c.sr)
    mesh = harmonics(ph, [teeth * k for k in (1, 2, 3, 4)],
                     _jit(c, [1.0, 0.35 + 0.4 * load, 0.2 + 0.3 * load, 0.1]), c.rng, c.sr, f0=f_s)
    mesh = mesh * (1.0 + 0.06 * sine(ph, 1.0, c.u(0, 6.28)))
    motor = harmonics(ph, [1, 2], _jit(c, [0.15, 0.08]), c.rng, c.sr, f0=f_s)
    body = colored_noise(c.rng, c.n, c.sr, _lowpass_shape(body_fc + 300.0 * load))
    x = 0.5 * unit(mesh) + 0.2 * motor + 0.7 * body
    if anomaly == "tooth":
        hit = resonate(pulse_train(c.rng, c.n, c.sr, f_s, jitter=0.005), tooth_hz, 6.0, c.sr)
        x = am(x, f_s, 0.3 * s, c.sr) + 0.5 * s * unit(hit)
    elif anomaly == "wear":
        side = harmonics(ph, [teeth - 2, teeth - 1, teeth + 1, teeth + 2, 2 * teeth - 2,
                              2 * teeth + 2], [1.0, 1.0, 1.0, 1.0, 0.5, 0.5], c.rng, c.sr, f0=f_s)
        x += 0.7 * s * unit(side)
    elif anomaly == "misalign":
        x = am(x, 2 * f_s, 0.7 * s, c.sr) + 0.6 * s * sine(ph, 2)
    return x


def valve_core(c: Ctx, period: float, duty: float, ring: float, anomaly: str | None, s: float,
               *, flow_band: tuple[float, float] = (600.0, 4000.0), pump_hz: float = 48.0,
               body_hz: float = 700.0) -> Array:
    """Solenoid-type actuator: open/close clicks every ``period`` s (open fraction ``duty``,
    ring resonance ``ring`` Hz) and gated flow hiss. Anomalies: leak, contamination, stuck,
    timing."""
    period *= c.u(0.98, 1.02)
    t = np.arange(c.n) / c.sr
    start = c.u(0.0, period)
    jitter = 0.35 * s * period if anomaly == "timing" else 0.0
    rate = 1.0 / period
    opens = pulse_train(c.rng, c.n, c.sr, rate, jitter=jitter / period, offset_s=start,
                        amp_jitter=0.1)
    closes = pulse_train(c.rng, c.n, c.sr, rate, jitter=jitter / period,
                         offset_s=start + duty * period, amp_jitter=0.1)
    click = resonate(opens, ring, 12.0, c.sr) + 0.6 * resonate(closes, 0.45 * ring, 8.0, c.sr)
    click += 0.5 * resonate(opens + closes, body_hz, 3.0, c.sr)
    gate = (((t - start) % period) / period < duty).astype(np.float64)
    gate = bandpass(gate, 0.5, 40.0, c.sr) + duty  # softened edges
    flow = unit(bandpass(c.white(), flow_band[0], flow_band[1], c.sr))
    pump = harmonics(phase_of(_fundamental(c, pump_hz), c.n, c.sr), [1, 2, 3], [1.0, 0.6, 0.3],
                     c.rng, c.sr)
    x = 3.0 * unit(click) + 0.4 * flow * np.clip(gate, 0.0, 1.2) + 0.15 * unit(pump)
    if anomaly == "leak":
        x += 0.35 * s * unit(bandpass(c.white(), 3500.0, 7000.0, c.sr))
    elif anomaly == "contamination":
        bounce = np.roll(opens, int(c.u(0.012, 0.03) * c.sr))
        x += 2.0 * s * unit(resonate(bounce, 1.35 * ring, 15.0, c.sr))
    elif anomaly == "stuck":
        x += 0.9 * s * flow * (1.0 - np.clip(gate, 0.0, 1.0))
    return x


def rail_core(c: Ctx, vel: float, acc: float, anomaly: str | None, s: float, *,
              stroke_scale: float = 1.0, fric_hz: float = 2500.0, fric_bw: float = 1500.0,
              motor_hz: float = 60.0, clunk_hz: float = 600.0, damage_hz: float = 5200.0,
              squeal: tuple[float, float] = (2800.0, 3800.0)) -> Array:
    """Slide rail moving back and forth at ``vel`` (profile exponent from ``acc``): friction
    noise and motor whine follow the speed, end-stop clunks at the reversals. Anomalies: squeal,
    damage, dry."""
    stroke = 0.9 * 300.0 / vel * c.u(0.97, 1.03) * stroke_scale  # seconds per one-way stroke
    ph0 = c.u(0.0, np.pi)
    speed = np.abs(sine(phase_of(0.5 / stroke, c.n, c.sr), 1.0, ph0)) ** (0.5 + acc)
    fric = colored_noise(c.rng, c.n, c.sr,
                         lambda f: np.exp(-0.5 * ((f - fric_hz) / fric_bw) ** 2))
    motor = sine(phase_of(motor_hz + 180.0 * speed * vel / 300.0, c.n, c.sr))
    motor += 0.4 * sine(phase_of(motor_hz + 180.0 * speed * vel / 300.0, c.n, c.sr), 2.0)
    clunk = resonate(pulse_train(c.rng, c.n, c.sr, 1.0 / stroke, jitter=0.002,
                                 offset_s=(np.pi - ph0) / np.pi * stroke % stroke),
                     clunk_hz, 4.0, c.sr)
    x = 0.8 * fric * speed + 0.3 * motor * speed + 2.0 * unit(clunk)
    if anomaly == "squeal":
        f_sq = c.u(*squeal) * drift(c.rng, c.n, c.sr, 4.0, 0.01)
        x += 0.6 * s * sine(phase_of(f_sq, c.n, c.sr)) * speed
    elif anomaly == "damage":
        hit = pulse_train(c.rng, c.n, c.sr, 1.0 / stroke, jitter=0.003,
                          offset_s=((np.pi / 2 - ph0) / np.pi * stroke) % stroke)
        x += 1.5 * s * unit(resonate(hit, damage_hz, 10.0, c.sr))
    elif anomaly == "dry":
        grit = colored_noise(c.rng, c.n, c.sr,
                             lambda f: np.exp(-0.5 * ((f - 4800.0) / 1200.0) ** 2))
        x += 0.8 * s * grit * speed * drift(c.rng, c.n, c.sr, 80.0, 0.5)
    return x


def flow_core(c: Ctx, f_r: float, flow: float, anomaly: str | None, s: float, *,
              vanes: int = 6, mains2: float = 100.0, flow_fc0: float = 200.0,
              cav_band: tuple[float, float] = (2500.0, 6500.0),
              sweep: Array | None = None) -> Array:
    """Centrifugal pump / fluid flow: vane-pass tones at ``vanes * f_r``, electrical hum at
    ``mains2`` Hz, flow noise whose bandwidth follows ``flow``. Anomalies: cavitation, impeller,
    clog."""
    ph = phase_of(_swept(_fundamental(c, f_r, 0.002), sweep), c.n, c.sr)
    vane = harmonics(ph, [vanes * k for k in (1, 2, 3)], _jit(c, [1.0, 0.45, 0.2]), c.rng, c.sr,
                     f0=f_r)
    elec = harmonics(phase_of(mains2, c.n, c.sr), [1, 2], [0.3, 0.1], c.rng, c.sr)
    fn = colored_noise(c.rng, c.n, c.sr, _lowpass_shape(flow_fc0 + 12.0 * flow))
    x = 0.45 * unit(vane) + 0.1 * elec + 0.8 * fn
    if anomaly == "cavitation":
        pops = random_pulses(c.rng, c.n, c.sr, 250.0, 0.8)
        x += 0.8 * s * unit(am(bandpass(pops, cav_band[0], cav_band[1], c.sr), vanes * f_r, 0.5,
                               c.sr))
    elif anomaly == "impeller":
        x = am(x, f_r, 0.6 * s, c.sr) + 0.8 * s * sine(ph, 3)
    elif anomaly == "clog":
        x += 0.9 * s * colored_noise(c.rng, c.n, c.sr, _lowpass_shape(90.0, 2.0))
    return x


def recip_core(c: Ctx, f_c: float, anomaly: str | None, s: float, *, thump_hz: float,
               click_delay: float, click_hz: float = 2800.0, mains: float = 50.0,
               intake_band: tuple[float, float] = (300.0, 2000.0), knock_hz: float = 900.0,
               belt_hz: float = 1500.0) -> Array:
    """Reciprocating pump/compressor at ``f_c`` strokes/s: compression thump (``thump_hz``
    resonance), valve click ``click_delay`` of a cycle later, motor hum, pulsing intake noise.
    Anomalies: leak, knock, belt."""
    off = c.u(0.0, 1.0 / f_c)
    train = pulse_train(c.rng, c.n, c.sr, f_c, jitter=0.004, offset_s=off, amp_jitter=0.1)
    thump = resonate(train, thump_hz, 3.0, c.sr)
    click = resonate(np.roll(train, int(click_delay / f_c * c.sr)), click_hz, 10.0, c.sr)
    hum = harmonics(phase_of(mains, c.n, c.sr), [1, 2, 3, 4], _jit(c, [1.0, 0.6, 0.3, 0.2]),
                    c.rng, c.sr)
    intake = am(bandpass(c.white(), intake_band[0], intake_band[1], c.sr), f_c, 0.6, c.sr)
    x = 1.5 * unit(thump) + 0.6 * unit(click) + 0.25 * unit(hum) + 0.5 * unit(intake)
    if anomaly == "leak":
        x += 0.4 * s * unit(am(bandpass(c.white(), 3000.0, 7000.0, c.sr), f_c, 0.7, c.sr))
    elif anomaly == "knock":
        k = np.roll(train, int(0.55 / f_c * c.sr))
        x += 0.5 * s * unit(resonate(k, knock_hz, 6.0, c.sr))
    elif anomaly == "belt":
        f_sq = belt_hz * drift(c.rng, c.n, c.sr, 3.0, 0.02)
        x += 0.7 * s * am(sine(phase_of(f_sq, c.n, c.sr)), f_c, 0.8, c.sr)
    return x


def belt_core(c: Ctx, load: float, anomaly: str | None, s: float, *, roll_hz: float = 6.0,
              motor_hz: float = 24.3, mains2: float = 100.0, rollers: int = 4,
              rattle_hz: float = 700.0, tick_rate: float = 0.7, tick_hz: float = 1800.0,
              bolt_hz: float = 330.0) -> Array:
    """Belt conveyor under ``load``: motor hum, roller rattle at the roller rate, belt-joint
    tick, load rumble. Anomalies: seized, rub, bolt."""
    f_roll = roll_hz * (1.0 - 0.008 * load) * c.u(0.98, 1.02)
    hum = harmonics(phase_of(_fundamental(c, motor_hz * (1.0 - 0.004 * load), 0.002), c.n, c.sr),
                    [1, 2, 4], _jit(c, [1.0, 0.5, 0.3]), c.rng, c.sr)
    hum += harmonics(phase_of(mains2, c.n, c.sr), [1, 3], [0.4, 0.2], c.rng, c.sr)
    rolls = sum((pulse_train(c.rng, c.n, c.sr, f_roll * c.u(0.95, 1.05), jitter=0.02,
                             amp_jitter=0.4) for _ in range(rollers)), np.zeros(c.n))
    rattle = resonate(rolls + 0.5 * random_pulses(c.rng, c.n, c.sr, 20.0), rattle_hz, 4.0, c.sr)
    rumble = colored_noise(c.rng, c.n, c.sr, _lowpass_shape(150.0 + 10.0 * load, 2.0))
    tick = resonate(pulse_train(c.rng, c.n, c.sr, tick_rate, jitter=0.01), tick_hz, 8.0, c.sr)
    x = 0.3 * unit(hum) + 1.0 * unit(rattle) + (0.4 + 0.04 * load) * rumble + 0.5 * unit(tick)
    if anomaly == "seized":
        f_sq = c.u(2000.0, 2600.0) * drift(c.rng, c.n, c.sr, 5.0, 0.01)
        x += 0.35 * s * sine(phase_of(f_sq, c.n, c.sr)) * drift(c.rng, c.n, c.sr, 4.0, 0.4)
    elif anomaly == "rub":
        x += 0.6 * s * unit(am(bandpass(c.white(), 1500.0, 4000.0, c.sr), f_roll, 0.8, c.sr))
    elif anomaly == "bolt":
        x += 1.4 * s * unit(resonate(pulse_train(c.rng, c.n, c.sr, f_roll, jitter=0.01), bolt_hz,
                                     3.0, c.sr))
    return x


# --------------------------------------------------------------------------------------------
# Development-style machine types

def _fan(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Axial fan: shaft harmonics, 7-blade blade-pass tones, turbulence modulated at blade pass."""
    f_r = {"1": 16.0, "2": 20.0, "3": 24.0, "4": 27.0}[a["spd"]] * c.u(0.985, 1.015)
    return fan_core(c, f_r, anomaly, s)


def _gearbox(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Gearbox: 23-tooth mesh harmonics with shaft-rate sidebands; load shapes the harmonics."""
    f_s = 9.0 * float(a["volt"]) * c.u(0.985, 1.015)
    load = {"30": 0.0, "80": 0.5, "120": 0.8}[a["wt"]]
    return gear_core(c, f_s, load, anomaly, s)


def _bearing(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Rolling bearing: broadband rolling noise through housing resonances, random weak impacts;
    defects add impulse trains at the characteristic defect frequencies (BPFO / BPFI)."""
    f_s = float(a["vel"]) * 2.0 * c.u(0.99, 1.01)
    res = {"A": (2200.0, 3800.0), "B": (1600.0, 4500.0), "C": (2500.0, 4300.0)}[a["loc"]]
    w = c.white()
    rolling = unit(resonate(w, res[0], 4.0, c.sr)) + 0.7 * unit(resonate(w, res[1], 5.0, c.sr))
    rolling = unit(rolling + 0.5 * colored_noise(c.rng, c.n, c.sr, _lowpass_shape(400.0)))
    ph = phase_of(_fundamental(c, f_s), c.n, c.sr)
    hum = harmonics(ph, [1, 2, 3], _jit(c, [1.0, 0.5, 0.3]), c.rng, c.sr)
    impacts = resonate(random_pulses(c.rng, c.n, c.sr, 4.0), res[0], 8.0, c.sr)
    x = rolling + 0.2 * unit(hum) + 0.25 * unit(impacts)
    if anomaly == "outer":
        tr = pulse_train(c.rng, c.n, c.sr, 3.58 * f_s, jitter=0.01, amp_jitter=0.2)
        x += 1.1 * s * unit(resonate(tr, res[1], 8.0, c.sr))
    elif anomaly == "inner":
        tr = pulse_train(c.rng, c.n, c.sr, 5.42 * f_s, jitter=0.01, amp_jitter=0.2)
        x += 1.1 * s * unit(am(resonate(tr, res[0], 8.0, c.sr), f_s, 0.8, c.sr))
    elif anomaly == "lubrication":
        hiss = bandpass(c.white(), 5000.0, 7500.0, c.sr) * drift(c.rng, c.n, c.sr, 50.0, 0.7)
        x += 0.4 * s * unit(hiss)
    return x


def _valve(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Solenoid valve: periodic open/close clicks (two resonances) and gated flow hiss."""
    period, duty = {"00": (0.50, 0.5), "01": (0.35, 0.3), "02": (0.70, 0.6),
                    "03": (0.5, 0.42)}[a["pat"]]
    ring = {"1": 3100.0, "2": 2800.0}[a["v"]]
    return valve_core(c, period, duty, ring, anomaly, s)



def _slider(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Slide rail: back-and-forth strokes; friction noise and motor whine follow the speed
    profile, end-stop clunks at the reversals."""
    return rail_core(c, float(a["vel"]), float(a["acc"]), anomaly, s)



def _toycar(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Toy car: DC-motor commutator whine tracking the supply voltage, gear whine, tyre noise."""
    volts = float(a["spd"].rstrip("V"))
    body = {"A1": 1400.0, "A2": 1700.0, "B1": 1100.0, "C1": 1900.0}[a["car"]]
    f_m = 9.0 * volts * c.u(0.98, 1.02)
    wobble_depth = 0.08 * s if anomaly == "shaft" else 0.0
    f_w = f_m / 36.0
    fi = _fundamental(c, f_m, 0.006, 2.0) * (1.0 + wobble_depth * sine(
        phase_of(f_w, c.n, c.sr)))
    ph = phase_of(fi, c.n, c.sr)
    whine = harmonics(ph, [1, 2, 3, 4, 6], _jit(c, [1.0, 0.6, 0.4, 0.25, 0.15]), c.rng, c.sr,
                      f0=f_m)
    gear = harmonics(ph, [1.0 / 3.0 * 10.0], [1.0], c.rng, c.sr)
    tyre = am(colored_noise(c.rng, c.n, c.sr, _lowpass_shape(500.0)), f_w, 0.2, c.sr)
    x = 0.5 * unit(whine) + 0.2 * gear + 0.8 * tyre
    x = peaking_eq(x, body, 6.0, 2.0, c.sr)
    if anomaly == "gear":
        hit = resonate(pulse_train(c.rng, c.n, c.sr, f_m / 10.0, jitter=0.01), 3300.0, 6.0, c.sr)
        x += 0.45 * s * unit(hit)
    elif anomaly == "tyre":
        thump = resonate(pulse_train(c.rng, c.n, c.sr, f_w, jitter=0.01), 220.0, 2.0, c.sr)
        x += 1.8 * s * unit(thump)
    return x


def _toytrain(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Toy train: motor whine, double clicks at rail joints (two bogies), wheel rumble."""
    spd = float(a["spd"])
    joint_hz = spd / 4.0 * c.u(0.97, 1.03)
    res = {"A": 1300.0, "B": 1600.0}[a["train"]]
    f_m = 40.0 * spd * c.u(0.98, 1.02)
    ph = phase_of(_fundamental(c, f_m, 0.008, 3.0), c.n, c.sr)
    whine = harmonics(ph, [1, 2, 3, 5], _jit(c, [1.0, 0.5, 0.3, 0.2]), c.rng, c.sr, f0=f_m)
    j = pulse_train(c.rng, c.n, c.sr, joint_hz, jitter=0.01, amp_jitter=0.2)
    j = j + 0.8 * np.roll(j, int(0.35 / joint_hz * c.sr / 4.0))
    clicks = resonate(j, res, 6.0, c.sr) + 0.5 * resonate(j, 350.0, 2.0, c.sr)
    rumble = colored_noise(c.rng, c.n, c.sr, _lowpass_shape(300.0, 2.0))
    x = 0.35 * unit(whine) + 1.5 * unit(clicks) + 0.7 * rumble
    if anomaly == "flat":
        x += 1.4 * s * unit(resonate(pulse_train(c.rng, c.n, c.sr, spd * 1.7, jitter=0.01),
                                     450.0, 2.5, c.sr))
    elif anomaly == "rattle":
        x += 1.5 * s * unit(resonate(random_pulses(c.rng, c.n, c.sr, 40.0), 2600.0, 5.0, c.sr))
    elif anomaly == "brush":
        crackle = bandpass(random_pulses(c.rng, c.n, c.sr, 300.0), 4000.0, 7500.0, c.sr)
        x += 0.6 * s * unit(crackle)
    return x


# --------------------------------------------------------------------------------------------
# Other machine types ("novel" types for first-shot evaluation)

def _pump(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Centrifugal pump: 6-vane vane-pass tones, flow noise whose bandwidth follows the flow."""
    flow = float(a["flow"])
    f_r = 24.5 * (1.0 - 0.0006 * flow) * c.u(0.99, 1.01)
    return flow_core(c, f_r, flow, anomaly, s)


def _compressor(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Reciprocating compressor: per-revolution compression thump and valve click, motor hum."""
    press = float(a["press"])
    f_c = (15.0 - 0.25 * press) * c.u(0.98, 1.02)
    return recip_core(c, f_c, anomaly, s, thump_hz=120.0 + 6.0 * press,
                      click_delay=0.15 + 0.02 * press)


def _grinder(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Angle grinder: high-speed motor whine and bursty abrasive contact noise."""
    f_m = {"A": 183.0, "B": 160.0, "C": 176.0}[a["rpm"]] * c.u(0.985, 1.015)
    centre = {"soft": 2500.0, "hard": 2650.0}[a["wheel"]]
    ph = phase_of(_fundamental(c, f_m, 0.005, 2.0), c.n, c.sr)
    whine = harmonics(ph, [1, 2, 3, 4], _jit(c, [1.0, 0.5, 0.3, 0.2]), c.rng, c.sr, f0=f_m)
    contact = colored_noise(c.rng, c.n, c.sr,
                            lambda f: np.exp(-0.5 * ((f - centre) / (0.5 * centre)) ** 2))
    env = np.clip(drift(c.rng, c.n, c.sr, 3.0, 0.5), 0.1, None)
    x = 0.5 * unit(whine) + 0.8 * contact * env
    if anomaly == "imbalance":
        x = am(x, f_m, 0.6 * s, c.sr) + 0.8 * s * sine(ph)
    elif anomaly == "chipped":
        x += 0.4 * s * unit(resonate(pulse_train(c.rng, c.n, c.sr, f_m, jitter=0.002), 5200.0,
                                     8.0, c.sr))
    elif anomaly == "glazing":
        f_g = c.u(6000.0, 7000.0) * drift(c.rng, c.n, c.sr, 2.0, 0.005)
        x += 0.12 * s * sine(phase_of(f_g, c.n, c.sr)) * env
    return x


def _conveyor(c: Ctx, a: Mapping[str, str], anomaly: str | None, s: float) -> Array:
    """Belt conveyor: motor hum, roller rattle at the roller rate, belt-joint tick, load rumble."""
    return belt_core(c, float(a["load"]), anomaly, s)


# --------------------------------------------------------------------------------------------
# The catalogue

_SRC_ENVS = ("hallA", "hallB")


def _m(name: str, desc: str, attrs: tuple[AttrSpec, ...], hidden: bool,
       supp: Literal["machine", "noise"], anomalies: tuple[str, ...], render: RenderFn,
       src_envs: tuple[str, ...], tgt_envs: tuple[str, ...], tgt_mic: tuple[float, float],
       scale: float = 1.0, snr_src: tuple[float, float] = (3.0, 12.0),
       snr_tgt: tuple[float, float] = (1.0, 10.0)) -> MachineModel:
    return MachineModel(
        name=name, description=desc, attributes=attrs, hidden=hidden, supplemental=supp,
        anomalies=anomalies, render=render,
        envs={"source": src_envs, "target": tgt_envs},
        snr_db={"source": snr_src, "target": snr_tgt}, target_mic=tgt_mic, anomaly_scale=scale,
    )


MODELS: dict[str, MachineModel] = {m.name: m for m in (
    _m("fan", "axial fan: blade-pass tones + turbulence",
       (AttrSpec("spd", ("1", "2", "3"), ("4",)), AttrSpec("mic", ("1", "2"), ("1", "2"))),
       False, "machine", ("imbalance", "blade", "clog", "bearing"), _fan,
       _SRC_ENVS, ("plant",), (3000.0, 3.0), scale=0.45),
    _m("gearbox", "gearbox: mesh harmonics with shaft-rate sidebands",
       (AttrSpec("volt", ("1.0", "1.3", "1.6"), ("1.8",)),
        AttrSpec("wt", ("30", "80"), ("120",))),
       False, "noise", ("tooth", "wear", "misalign"), _gearbox,
       _SRC_ENVS, ("shop",), (1200.0, -3.0), scale=0.45),
    _m("bearing", "rolling bearing: resonant rolling noise, BPFO/BPFI defect impulses",
       (AttrSpec("vel", ("6", "10", "14"), ("16",)), AttrSpec("loc", ("A", "B"), ("C",))),
       True, "machine", ("outer", "inner", "lubrication"), _bearing,
       _SRC_ENVS, ("suburb",), (4000.0, 3.0), scale=0.3),
    _m("valve", "solenoid valve: open/close transients and gated flow",
       (AttrSpec("pat", ("00", "01", "02"), ("03",)), AttrSpec("v", ("1",), ("1", "2"))),
       False, "noise", ("leak", "contamination", "stuck", "timing"), _valve,
       _SRC_ENVS, ("plant",), (2000.0, -3.0), scale=0.35),
    _m("slider", "slide rail: speed-profiled friction, end-stop clunks",
       (AttrSpec("vel", ("200", "300", "400"), ("480",)),
        AttrSpec("acc", ("0.3", "0.7"), ("0.3", "0.7"))),
       True, "noise", ("squeal", "damage", "dry"), _slider,
       _SRC_ENVS, ("shop",), (5000.0, 3.0), scale=0.32),
    _m("ToyCar", "toy car: commutator whine tracking voltage, tyre noise",
       (AttrSpec("car", ("A1", "A2", "B1"), ("C1",)),
        AttrSpec("spd", ("28V", "31V", "34V"), ("28V", "31V", "34V")),
        AttrSpec("mic", ("1",), ("2",))),
       False, "machine", ("gear", "tyre", "shaft"), _toycar,
       _SRC_ENVS, ("suburb",), (900.0, 3.0), scale=0.45),
    _m("ToyTrain", "toy train: rail-joint double clicks, motor whine",
       (AttrSpec("train", ("A",), ("B",)), AttrSpec("spd", ("5", "7"), ("8",))),
       True, "noise", ("flat", "rattle", "brush"), _toytrain,
       _SRC_ENVS, ("plant",), (2500.0, -3.0), scale=0.27),
    _m("pump", "centrifugal pump: vane-pass tones, flow noise",
       (AttrSpec("flow", ("40", "60", "80"), ("95",)),),
       False, "machine", ("cavitation", "impeller", "clog"), _pump,
       ("hallB", "plant"), ("shop",), (1800.0, 3.0), scale=0.35),
    _m("compressor", "reciprocating compressor: compression thumps, valve clicks",
       (AttrSpec("press", ("4", "6", "8"), ("10",)),),
       False, "noise", ("leak", "knock", "belt"), _compressor,
       ("hallA", "shop"), ("suburb",), (3500.0, -3.0), scale=0.38),
    _m("grinder", "angle grinder: motor whine, bursty abrasive contact",
       (AttrSpec("rpm", ("A", "B"), ("C",)), AttrSpec("wheel", ("soft",), ("soft", "hard"))),
       True, "machine", ("imbalance", "chipped", "glazing"), _grinder,
       ("hallA", "plant"), ("hallB",), (1500.0, 3.0), scale=0.27),
    _m("conveyor", "belt conveyor: roller rattle, belt-joint tick, load rumble",
       (AttrSpec("load", ("0", "5", "10"), ("16",)),),
       False, "noise", ("seized", "rub", "bolt"), _conveyor,
       ("hallB", "shop"), ("hallA",), (2800.0, 3.0), scale=0.27),
)}
