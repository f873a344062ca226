"""``automl-asd synth``: write a synthetic DCASE-2025-layout data set."""

from __future__ import annotations

import argparse
import time

from automl_asd import synth
from automl_asd.commands.args import path_arg
from automl_asd.errors import UsageError

HELP = "write a synthetic machine-sound data set in the DCASE 2025 Task 2 layout"

#: Group names accepted by --machine-types besides single type names.
_GROUPS = {"dev": synth.DEV_MACHINE_TYPES, "novel": synth.NOVEL_MACHINE_TYPES,
           "all": synth.MACHINE_TYPES}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=path_arg, default=None, metavar="DIR",
                        help="output root: DIR/<machine_type>/{train,test,supplemental}/ "
                             "(required unless --list)")
    parser.add_argument("--machine-types", nargs="+", default=None, metavar="MT",
                        help="types to write (default: all); 'dev' and 'novel' name the two "
                             f"groups. Types: {', '.join(synth.MACHINE_TYPES)}")
    parser.add_argument("--random-types", type=int, default=None, metavar="N",
                        help="also write N random machine types drawn from physical families "
                             "(named rnd<family><index>, e.g. rndfan03; drawn from --seed); "
                             "without --machine-types only the random types are written")
    parser.add_argument("--size", choices=tuple(synth.SIZES), default="small",
                        help="full: real DCASE counts, 10 s; small: 200 train, 25 per test "
                             "group, 6 s; tiny: 60 train, 10 per group, 2 s (default: small)")
    parser.add_argument("--seed", type=int, default=0, metavar="SEED",
                        help="seed (same seed = same bytes; default 0)")
    parser.add_argument("--eval-layout", action="store_true",
                        help="anonymise test names (section_00_NNNN.wav) and write the "
                             "evaluator's ground_truth_{data,domain,attributes}/ under DIR")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing machine folders not written by this generator")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes rendering clips (default 1; output bytes are the same)")
    parser.add_argument("--anomaly-gain", type=float, default=1.0, metavar="G",
                        help="multiply every anomaly's strength by G (default 1: the calibrated "
                             "difficulty; 2 = faults 6 dB louder, easier). Normal clips are the "
                             "same bytes at any G")
    parser.add_argument("--list", action="store_true",
                        help="list the machine types, their attributes and anomalies; exit")


def _expand(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    out: list[str] = []
    for name in names:
        for mt in _GROUPS.get(name, (name,)):
            if mt not in out:
                out.append(mt)
    return out


def _catalogue(random_types: list[str], seed: int) -> str:
    lines = []
    for mt in [*synth.MACHINE_TYPES, *random_types]:
        m = synth.machine_model(mt, seed)
        group = ("dev" if mt in synth.DEV_MACHINE_TYPES else "novel") if mt in \
            synth.MACHINE_TYPES else f"rnd/{synth.family_of(mt)}"
        attrs = "; ".join(f"{a.key}: S={','.join(a.source)} T={','.join(a.target)}"
                          for a in m.attributes)
        hidden = " (hidden: noAttribute)" if m.hidden else ""
        lines.append(f"{mt:<11} {group:<5} {m.description}\n"
                     f"{'':17}attributes{hidden}: {attrs}\n"
                     f"{'':17}anomalies: {', '.join(m.anomalies)}; supplemental: "
                     f"{m.supplemental}; background S={','.join(m.envs['source'])} "
                     f"T={','.join(m.envs['target'])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.random_types == 0 and not args.machine_types and not args.list:
        # found 2026-12-07: it wrote all 11 named types, where the help says that without
        # --machine-types only the random types are written
        raise UsageError("--random-types 0 without --machine-types writes nothing: give N >= 1 "
                         "or name the types (--machine-types)")
    randoms = synth.random_type_names(args.random_types or 0, args.seed)
    if args.list:
        print(_catalogue(randoms, args.seed))
        return 0
    if args.out is None:
        raise UsageError("--out DIR is required (where to write the data set)")
    spec = synth.SIZES[args.size]
    types = _expand(args.machine_types)
    if randoms:
        types = [*(types or []), *randoms]
    t0 = time.perf_counter()
    dirs = synth.generate(args.out, machine_types=types, size=args.size,
                          seed=args.seed, eval_layout=args.eval_layout, overwrite=args.overwrite,
                          workers=args.workers, anomaly_gain=args.anomaly_gain)
    elapsed = time.perf_counter() - t0
    print(f"wrote {len(dirs)} machine type(s) to {args.out} in {elapsed:.1f} s "
          f"(size {args.size}: {spec.n_source_train}+{spec.n_target_train} train, "
          f"4x{spec.n_test_per_group} test, {spec.n_supplemental} supplemental, "
          f"{spec.duration_s:g} s clips, seed {args.seed}"
          f"{'' if args.anomaly_gain == 1.0 else f', anomaly gain {args.anomaly_gain:g}'})")
    for mt, path in dirs.items():
        model = synth.machine_model(mt, args.seed)
        attrs = "noAttribute" if model.hidden else "attributes"
        fam = f"family {synth.family_of(mt)}, " if synth.is_random_type(mt) else ""
        print(f"  {mt:<11} {path}  ({fam}{attrs}, supplemental={model.supplemental})")
    if args.eval_layout:
        print(f"  ground truth: {args.out} (its ground_truth_data/ + ground_truth_domain/; pass "
              f"--ground-truth {args.out})")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted ``synth`` kept and how to go on (the CLI's last line)."""
    return (f"the machine types written in full are kept in {args.out}; the same synth command "
            "writes the rest")
