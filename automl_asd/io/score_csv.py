"""The score CSV of ``automl-asd score``: ``name,score,decision`` rows, appended and read back.

Scores are written in Python's shortest round-trip float form, so reading them back gives the
identical float64.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

__all__ = ["SCORE_CSV_HEADER", "append_score_rows", "read_score_csv", "write_score_rows"]

#: Header of the CSV written by ``automl-asd score``.
SCORE_CSV_HEADER = ("name", "score", "decision")


def append_score_rows(path: str | Path, rows: Iterable[tuple[str, float, int]]) -> int:
    """Append ``name,score,decision`` rows to ``path`` (header written when the file is new
    or empty), flushed to disk; returns the number of rows. Scores use Python's shortest
    round-trip float form, so reading them back gives the identical float64."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    new = not p.exists() or p.stat().st_size == 0
    unterminated = False
    if not new:
        with p.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            unterminated = fh.read(1) != b"\n"
    with p.open("a", newline="", encoding="utf-8") as f:
        if unterminated:  # never glue a row onto an unterminated last line
            f.write("\n")
        n = write_score_rows(f, rows, header=new)
        os.fsync(f.fileno())
    return n


def write_score_rows(stream: IO[str], rows: Iterable[tuple[str, float, int]], *,
                     header: bool) -> int:
    """Write ``name,score,decision`` rows (CSV-quoted: a name may hold a comma) to
    ``stream``, the header first if ``header``; flushed after every row (a watcher's reader
    sees each clip as it is scored). Returns the number of rows."""
    writer = csv.writer(stream, lineterminator="\n")
    if header:
        writer.writerow(SCORE_CSV_HEADER)
        stream.flush()
    n = 0
    for name, score, decision in rows:
        writer.writerow((name, repr(float(score)), int(decision)))
        stream.flush()
        n += 1
    return n


def read_score_csv(path: str | Path) -> list[tuple[str, float, int]]:
    """Rows of a score CSV written by :func:`append_score_rows` (``[]`` if it does not exist),
    also after a spreadsheet saved it again with a byte-order mark and CRLF line ends."""
    p = Path(path)
    if not p.exists():
        return []
    # found 2026-12-07: a watch CSV saved again by Excel ("CSV UTF-8") was refused on resume:
    # its header read as '\ufeffname', which looks like "name" in the message
    with p.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return []
        if tuple(header) != SCORE_CSV_HEADER:
            raise ValueError(f"{p}: header {header} is not {list(SCORE_CSV_HEADER)}; not a "
                             "score CSV written by `automl-asd score`; pick another --out")
        rows = []
        for row in reader:
            if not row:
                continue
            try:
                if len(row) != 3:
                    raise ValueError(f"{len(row)} field(s)")
                rows.append((row[0], float(row[1]), int(row[2])))
            except ValueError:
                raise ValueError(
                    f"{p}, line {reader.line_num}: {','.join(row)[:80]!r} is not a "
                    "name,score,decision row (a run stopped while writing it?); delete that "
                    "line and run again (its clip is scored again)") from None
        return rows
