"""Vectorised signal primitives for the synthetic machine sounds (numpy/scipy, no sample loops).

All functions take an explicit ``numpy.random.Generator``; nothing touches global RNG state.
Signals are float64 arrays of shape ``(n,)`` at ``sr`` Hz.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy import signal

Array = NDArray[np.float64]

__all__ = [
    "Array",
    "rms",
    "unit",
    "drift",
    "phase_of",
    "sine",
    "harmonics",
    "white",
    "colored_noise",
    "bandpass",
    "resonate",
    "pulse_train",
    "random_pulses",
    "am",
    "peaking_eq",
]


def rms(x: Array) -> float:
    """Root mean square of ``x`` (0.0 for silence)."""
    return float(np.sqrt(np.einsum("i,i->", x, x) / x.size)) if x.size else 0.0


def unit(x: Array) -> Array:
    """``x`` scaled to unit RMS (returned unchanged when silent)."""
    r = rms(x)
    return x / r if r > 1e-12 else x


def white(rng: np.random.Generator, n: int) -> Array:
    """Unit-variance white noise (uniform samples: several times cheaper than Gaussian draws;
    every use is filtered, which makes it Gaussian-like anyway)."""
    return (rng.random(n) - 0.5) * _SQRT12


_SQRT12 = float(np.sqrt(12.0))
_DECIM = 32


def drift(rng: np.random.Generator, n: int, sr: int, rate_hz: float, depth: float) -> Array:
    """Slow random fluctuation ``1 + depth * g(t)``, ``g`` a smooth unit-scale process.

    ``rate_hz`` sets how many independent control points per second are interpolated (computed
    at 1/32 of the sample rate and held, which is inaudible for such slow processes).
    """
    k = max(4, int(np.ceil(n / sr * rate_hz)) + 2)
    pts = rng.standard_normal(k)
    m = n // _DECIM + 1
    g = np.interp(np.linspace(0.0, k - 1.0, m), np.arange(k, dtype=np.float64), pts)
    return 1.0 + depth * np.repeat(g, _DECIM)[:n]


def phase_of(f_inst: Array | float, n: int, sr: int) -> Array:
    """Running phase *in cycles* of an oscillator with instantaneous frequency ``f_inst`` Hz."""
    if isinstance(f_inst, float | int):
        return float(f_inst) * np.arange(n) / sr
    return np.cumsum(f_inst) / sr


def sine(cycles: Array, order: float = 1.0, phase: float = 0.0) -> Array:
    """``sin(2 pi (order * cycles) + phase)``; wraps in float64, evaluates in float32 (fast)."""
    c = cycles * order + phase / (2.0 * np.pi)
    c -= np.floor(c)
    c32 = c.astype(np.float32)
    c32 *= np.float32(2.0 * np.pi)
    return np.sin(c32, out=c32).astype(np.float64)


def harmonics(
    cycles: Array, orders: Sequence[float], amps: Sequence[float], rng: np.random.Generator,
    sr: int, max_hz: float | None = None, f0: float | None = None,
) -> Array:
    """Sum of ``amps[i] * sin(orders[i] * phase + random phase)`` (``cycles`` from phase_of).

    Partials at or above ``max_hz`` (default 0.45 sr; needs ``f0``, the nominal fundamental)
    are skipped so nothing aliases.
    """
    limit = 0.45 * sr if max_hz is None else max_hz
    # Integer orders: frac(k * c) == frac(k * frac(c)), so one float64 wrap serves every partial
    # and each partial is a few float32 passes (exact enough: orders stay below ~100).
    c = cycles - np.floor(cycles)
    c32 = c.astype(np.float32)
    acc = np.zeros(cycles.shape[0], dtype=np.float32)
    out = np.zeros(cycles.shape[0])
    for order, amp in zip(orders, amps, strict=True):
        phi = rng.uniform(0.0, 2.0 * np.pi)
        if amp == 0.0 or (f0 is not None and order * f0 >= limit):
            continue
        if float(order).is_integer():
            arg = c32 * np.float32(order * 2.0 * np.pi)
            arg += np.float32(phi)
            np.sin(arg, out=arg)
            arg *= np.float32(amp)
            acc += arg
        else:
            out += amp * sine(cycles, order, phi)
    return out + acc


def colored_noise(
    rng: np.random.Generator, n: int, sr: int, shape: Callable[[Array], Array]
) -> Array:
    """Gaussian noise with amplitude spectrum ``shape(freqs_hz)``, unit RMS (one inverse FFT)."""
    m = n // 2 + 1
    # complex64: the inverse FFT is ~2.5x cheaper and float32 precision is ample for noise.
    spec = np.empty(m, dtype=np.complex64)
    spec.real = rng.random(m, dtype=np.float32) - np.float32(0.5)
    spec.imag = rng.random(m, dtype=np.float32) - np.float32(0.5)
    spec *= shape(_freqs(n, sr)).astype(np.float32)
    spec[0] = 0.0
    return unit(sp_fft.irfft(spec, n).astype(np.float64))


@functools.lru_cache(maxsize=16)
def _freqs(n: int, sr: int) -> Array:
    return np.asarray(np.fft.rfftfreq(n, 1.0 / sr), dtype=np.float64)


def _sos_band(lo: float, hi: float, sr: int, order: int) -> NDArray[np.float64]:
    nyq = 0.5 * sr
    lo = min(max(lo, 5.0), nyq * 0.95)
    hi = min(max(hi, lo * 1.05), nyq * 0.98)
    # Designs are cached (rounded to 1 Hz): scipy's design costs more than filtering a clip.
    return _sos_band_cached(round(lo), round(hi), sr, order)


@functools.lru_cache(maxsize=512)
def _sos_band_cached(lo: int, hi: int, sr: int, order: int) -> NDArray[np.float64]:
    return np.asarray(signal.butter(order, [lo, hi], btype="bandpass", fs=sr, output="sos"))


def bandpass(x: Array, lo: float, hi: float, sr: int, order: int = 2) -> Array:
    """Butterworth band-pass ``lo``..``hi`` Hz (causal, second-order sections)."""
    return np.asarray(signal.sosfilt(_sos_band(lo, hi, sr, order), x))


def resonate(x: Array, freq: float, q: float, sr: int) -> Array:
    """Excite a structural resonance at ``freq`` Hz with quality factor ``q`` (band-pass).

    Sparse inputs (impulse trains) are rendered by adding the filter's impulse response at each
    impulse (same result to 1e-6, several times cheaper than filtering every sample).
    """
    bw = freq / max(q, 0.5)
    lo, hi = freq - bw / 2.0, freq + bw / 2.0
    nz = np.flatnonzero(x)
    n = x.shape[0]
    if nz.size * 400 > n:
        return bandpass(x, lo, hi, sr, order=2)
    out = np.zeros(n)
    if nz.size == 0:
        return out
    kernel = _impulse_response(_sos_band(lo, hi, sr, 2))
    idx = (nz[:, None] + np.arange(kernel.size)[None, :]).ravel()
    w = (x[nz][:, None] * kernel[None, :]).ravel()
    keep = idx < n
    out += np.bincount(idx[keep], weights=w[keep], minlength=n)[:n]
    return out


_IR_CACHE: dict[bytes, Array] = {}


def _impulse_response(sos: NDArray[np.float64]) -> Array:
    """Impulse response of ``sos`` truncated where it has decayed below 1e-6 of its peak."""
    key = sos.tobytes()
    ir = _IR_CACHE.get(key)
    if ir is None:
        imp = np.zeros(32768)
        imp[0] = 1.0
        full = np.asarray(signal.sosfilt(sos, imp))
        above = np.flatnonzero(np.abs(full) > 1e-6 * np.abs(full).max())
        ir = full[: int(above[-1]) + 1].copy()
        if len(_IR_CACHE) < 512:
            _IR_CACHE[key] = ir
    return ir


def pulse_train(
    rng: np.random.Generator, n: int, sr: int, rate_hz: float, *, jitter: float = 0.0,
    amp_jitter: float = 0.0, offset_s: float | None = None,
) -> Array:
    """Unit impulses at ``rate_hz`` with relative timing ``jitter`` and amplitude ``amp_jitter``."""
    out = np.zeros(n)
    if rate_hz <= 0.0:
        return out
    period = sr / rate_hz
    start = rng.uniform(0.0, period) if offset_s is None else offset_s * sr
    count = int((n - start) / period) + 1
    if count <= 0:
        return out
    pos = start + period * np.arange(count) + jitter * period * rng.standard_normal(count)
    idx = np.round(pos).astype(np.int64)
    amp = 1.0 + amp_jitter * rng.standard_normal(count)
    ok = (idx >= 0) & (idx < n)
    np.add.at(out, idx[ok], amp[ok])
    return out


def random_pulses(
    rng: np.random.Generator, n: int, sr: int, rate_hz: float, amp_sigma: float = 0.5
) -> Array:
    """Poisson impulses (mean ``rate_hz`` per second) with log-normal amplitudes."""
    out = np.zeros(n)
    count = int(rng.poisson(rate_hz * n / sr))
    if count:
        idx = rng.integers(0, n, count)
        np.add.at(out, idx, rng.lognormal(0.0, amp_sigma, count) * rng.choice([-1.0, 1.0], count))
    return out


def am(x: Array, rate_hz: float, depth: float, sr: int, phase0: float = 0.0) -> Array:
    """Sinusoidal amplitude modulation ``x * (1 + depth * sin(2 pi rate t))``."""
    return x * (1.0 + depth * sine(phase_of(rate_hz, x.shape[0], sr), 1.0, phase0))


def peaking_eq(x: Array, freq: float, gain_db: float, q: float, sr: int) -> Array:
    """Peaking biquad (audio-EQ cookbook formulas); models a microphone or room resonance."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * min(freq, 0.45 * sr) / sr
    alpha = np.sin(w0) / (2.0 * q)
    b = np.array([1.0 + alpha * a_lin, -2.0 * np.cos(w0), 1.0 - alpha * a_lin])
    a = np.array([1.0 + alpha / a_lin, -2.0 * np.cos(w0), 1.0 - alpha / a_lin])
    return np.asarray(signal.lfilter(b / a[0], a / a[0], x))
