"""How loud are the generated faults? Fault-to-clip energy of every anomalous test clip.

``bench/ceiling.py`` finds that several anomaly kinds stay near chance even for a classifier
trained on hundreds of labelled anomalies. This bench asks the generator itself why: for every
anomalous test clip of the novel types of the family-held-out draws (``bench/draws.py``; the
same ``--work`` as the other benches reuses nothing here, the clips are re-synthesised in
memory), :func:`automl_asd.synth.clip_parts` splits the clip into the normal machine sound,
what the fault adds and the background, and the bench reports, per (family, kind), the median
over clips of

* ``clip dB``: fault energy / (machine + background) energy over the whole clip;
* ``band dB``: the same ratio in the mel band where it is largest (128 mel bands of the official
  log-mel; energy summed over time): a narrow-band fault in a quiet band scores high here;
* ``cell dB``: the 99th percentile over (frame, band) cells of that ratio: a fault confined to
  a few frames (an impact) scores high here;
* the same three for the strongest third of the kind's clips by the generator's severity.

``clip_parts`` renders the clean machine with the clip's fault kind at severity 0, so both
make the same random draws (an on/off cycle's phase drawn after the fault stays put). As a
guard the bench renders each clip once more at severity 1e-7 and leaves the clip out when that
"fault" is not 60 dB below the machine (a fault whose code drew differently with its severity
would give a new realisation of the normal sound, not the fault); ``kept`` counts the clips
that could be split (all of them since 2026-12-06). Kinds with no such clip are listed as
``n/a``. A fault that changes timing (``act`` timing:
events move) has a large difference energy although its spectrum hardly changes; read that row
with care.

Usage::

    nice -n 5 .venv/bin/python bench/fault_energy.py --work /tmp/small --draws 6
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from draws import add_draw_args, draws_from_args

from automl_asd import synth
from automl_asd.features import FeatureSpec, compute

#: Mel power (no log): the official log-mel's bands before the log.
MEL_POWER = FeatureSpec(log=False)
_FLOOR_DB = -60.0


def _db(x: float) -> float:
    return float(10.0 * np.log10(max(x, 1e-30)))


def fault_ratios(parts: synth.ClipParts) -> tuple[float, float, float]:
    """(clip, best band, 99th-percentile cell) fault-to-rest energy ratios in dB."""
    rest = (parts.machine + parts.background).astype(np.float32)
    f = compute(parts.fault.astype(np.float32), MEL_POWER).astype(np.float64)
    r = compute(rest, MEL_POWER).astype(np.float64) + 1e-20
    clip = _db(float(np.sum(parts.fault ** 2)) / float(np.sum(rest.astype(np.float64) ** 2)))
    band = _db(float(np.max(f.sum(axis=0) / r.sum(axis=0))))
    cell = _db(float(np.quantile(f / r, 0.99)))
    return clip, band, cell


def separable(mt: str, plan: synth.ClipPlan, duration_s: float) -> bool:
    """Whether the fault of ``plan`` vanishes with its severity (see the module docstring)."""
    import dataclasses  # noqa: PLC0415

    faint = synth.clip_parts(mt, dataclasses.replace(plan, severity=1e-7), duration_s)
    ratio = float(np.sum(faint.fault ** 2)) / max(float(np.sum(faint.machine ** 2)), 1e-30)
    return _db(ratio) < _FLOOR_DB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_draw_args(parser)
    args = parser.parse_args()
    duration = synth.SIZES[args.size].duration_s
    rows: dict[str, list[tuple[float, float, float, float]]] = collections.defaultdict(list)
    seen: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    for draw in draws_from_args(args):
        for mt in draw.novel_types:
            fam = synth.family_of(mt) or "?"
            for plan in synth.plan_machine(mt, args.size, draw.seed):
                if plan.split != "test" or plan.anomaly is None:
                    continue
                key = f"{fam} {plan.anomaly}"
                seen[key] += 1
                if separable(mt, plan, duration):
                    rows[key].append((plan.severity,
                                      *fault_ratios(synth.clip_parts(mt, plan, duration))))
        print(f"draw {draw.index} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n== fault-to-(machine + background) energy of the anomalous test clips of the novel "
          f"types, {args.draws} family-held-out draws (size {args.size}); median over clips")
    print(f"| {'family kind':<22} | kept/clips | clip dB | band dB | cell dB | strongest third: "
          "clip / band / cell dB |")
    order = sorted(rows, key=lambda k: np.median([r[2] for r in rows[k]]))
    for key in order:
        a = np.array(rows[key])
        strong = a[a[:, 0] >= np.quantile(a[:, 0], 2 / 3)]
        med, top = np.median(a[:, 1:], axis=0), np.median(strong[:, 1:], axis=0)
        print(f"| {key:<22} | {len(a):4d}/{seen[key]:<5d} | {med[0]:7.1f} | {med[1]:7.1f} | "
              f"{med[2]:7.1f} | {top[0]:.1f} / {top[1]:.1f} / {top[2]:.1f} |")
    for key in sorted(set(seen) - set(rows)):
        print(f"| {key:<22} |    0/{seen[key]:<5d} | n/a: every clip's fault shifts the "
              "generator's random stream |")


if __name__ == "__main__":
    main()
