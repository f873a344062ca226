"""``automl-asd info``: per machine type counts of a DCASE data tree."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from automl_asd import ground_truth
from automl_asd.commands.args import path_arg
from automl_asd.data import Domain, Label, MachineSummary, Split, scan, summarize

HELP = "show the clips of a DCASE data tree per machine type (split/domain/label counts)"

_S, _T, _U = Domain.SOURCE, Domain.TARGET, Domain.UNKNOWN
_N, _A, _UL = Label.NORMAL, Label.ANOMALY, Label.UNKNOWN

#: (column title, split, domain, label); ``None`` = any.
_COLUMNS: tuple[tuple[str, Split, Domain | None, Label | None], ...] = (
    ("train-S", Split.TRAIN, _S, None),
    ("train-T", Split.TRAIN, _T, None),
    ("test-S-n", Split.TEST, _S, _N),
    ("test-S-a", Split.TEST, _S, _A),
    ("test-T-n", Split.TEST, _T, _N),
    ("test-T-a", Split.TEST, _T, _A),
    ("test-?", Split.TEST, None, None),  # filled below: clips whose label or domain is unknown
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=path_arg, required=True, metavar="ROOT",
                        help="data root: <ROOT>/<machine_type>/{train,test,supplemental}/ or "
                             "<ROOT>/{dev_data,eval_data}/raw/<machine_type>/")
    parser.add_argument("--ground-truth", type=path_arg, default=None, metavar="DIR",
                        help="official evaluator folder with ground_truth_data/ and "
                             "ground_truth_domain/ (labels for anonymised eval test clips)")
    parser.add_argument("--machine-types", nargs="+", default=None, metavar="MT",
                        help="only these machine types")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _unknown_test(s: MachineSummary) -> int:
    return sum(n for (sp, d, lab), n in s.counts.items()
               if sp is Split.TEST and (d is _U or lab is _UL))


def _row(s: MachineSummary) -> list[str]:
    cells = [s.machine_type, ",".join(s.sections)]
    for title, split, domain, label in _COLUMNS:
        n = _unknown_test(s) if title == "test-?" else s.count(split, domain, label)
        cells.append(str(n))
    kinds = ",".join(f"{k or '-'}:{n}" for k, n in s.supplemental_kinds.items())
    cells.append(f"{s.count(Split.SUPPLEMENTAL)}" + (f" ({kinds})" if kinds else ""))
    attrs = s.attribute_mode + (f" ({','.join(s.attribute_keys)})" if s.attribute_keys else "")
    cells.append(attrs)
    return cells


def format_table(summaries: Sequence[MachineSummary]) -> str:
    """Plain-text table, one row per machine type, plus a total row."""
    header = ["machine", "sec", *[c[0] for c in _COLUMNS], "supplemental", "attributes"]
    rows = [_row(s) for s in summaries]
    if len(rows) > 1:
        total = ["TOTAL", ""]
        for j in range(2, 2 + len(_COLUMNS)):
            total.append(str(sum(int(r[j]) for r in rows)))
        total += [str(sum(s.count(Split.SUPPLEMENTAL) for s in summaries)), ""]
        rows.append(total)
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    lines = ["  ".join(c.ljust(w) if j in (0, 1, len(header) - 2, len(header) - 1)
                       else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
             .rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(summaries: Sequence[MachineSummary]) -> str:
    """The summaries as JSON (counts keyed ``split/domain/label``)."""
    doc = [{"machine_type": s.machine_type, "sections": list(s.sections),
            "counts": {f"{sp}/{d}/{lab}": n for (sp, d, lab), n in sorted(s.counts.items())},
            "attribute_mode": s.attribute_mode, "attribute_keys": list(s.attribute_keys),
            "supplemental_kinds": dict(s.supplemental_kinds)} for s in summaries]
    return json.dumps(doc, indent=2)


def run(args: argparse.Namespace) -> int:
    machines = scan(args.data, machine_types=args.machine_types)
    if args.ground_truth is not None:
        machines = ground_truth.attach(machines, args.ground_truth)
    summaries = [summarize(m) for m in machines.values()]
    if args.json:
        print(to_json(summaries))
        return 0
    print(f"{args.data}: {len(summaries)} machine type(s), "
          f"{sum(s.count() for s in summaries)} clips")
    print(format_table(summaries))
    print("S/T = source/target domain, n/a = normal/anomaly, test-? = label or domain unknown "
          "(anonymised eval clips; pass --ground-truth to fill them)")
    for problem in incomplete(summaries):
        print(f"automl-asd info: warning: {problem}", file=sys.stderr)
    return 0


def incomplete(summaries: Sequence[MachineSummary]) -> list[str]:
    """One line per machine type without test clips: ``apply`` cannot score it and a search
    cannot measure it. (A type without training clips is already refused by the scan.)"""
    return [f"{s.machine_type}: no test clips; apply cannot score it and a search cannot "
            "measure it (extract its test zip, or leave it out with --machine-types)"
            for s in summaries if s.count(Split.TEST) == 0]
