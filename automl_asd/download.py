"""Fetch, verify and unpack the public DCASE Task 2 data sets (2023-2025).

The known Zenodo records are listed in :data:`RECORDS`. A record's metadata (the public records
API, ``<base_url>/<record_id>``) lists every file with its ``key``, ``size``, ``checksum``
(``"md5:<hex>"``) and download link (``links.self``). :func:`download_dataset` downloads the zip
of each requested machine type into ``<dest>/.downloads/`` and extracts it into ``<dest>`` so that
``automl_asd.data.scan(dest)`` reads ``<dest>/<machine_type>/{train,test,supplemental}``.

Robustness rules:

* a download goes to ``<zip>.part``; an interrupted one is resumed with an HTTP ``Range``
  request; transient failures (5xx, 408, 429, connection errors, truncated bodies, a 200 answer
  to a resume whose length is not the file's, e.g. an error page) are retried with exponential
  backoff up to ``retries`` attempts, keeping the ``.part``;
* the md5 checksum (and size) is verified before the ``.part`` file is renamed to its final
  name; a file that fails verification is discarded, never kept as valid;
* before anything is written, free disk space is checked for the download and for the
  extracted members;
* every archive member is checked before any member is extracted: absolute paths, ``..``
  components, backslashes, symlinks and anything that would land outside ``dest`` are refused;
* members are written to a temporary name and renamed into place; an extraction that fails or
  is interrupted removes the files and folders it made (a half-extracted type would read as a
  complete one), and one killed part-way leaves ``<type>/.extracting-<zip>``, which makes
  scan() refuse the folder until a rerun finishes it; a marker file
  ``<zip>.extracted.json`` lists what was extracted, so a second run only verifies;
* a verified zip is never deleted because a later step failed;
* the marker names its record: another record's zip of the same name (``dev_fan.zip`` of
  2024 and of 2025) is refused where the first one's files or zip are, not mixed in;
* a zip is not extracted into a ``<type>/`` folder holding files that neither it nor another
  download put there (a synthetic tree, the user's own clips);
* the record metadata is cached in ``<dest>/.downloads/`` (published Zenodo records never
  change), so a second run with everything present makes no request and only verifies; a run
  that has to download a file, or finds a kept zip that fails the cached entry, reads the
  record again first (once per run), so a corrected record is never shadowed by its cache;
* a response that is complete (its ``Content-Length``) but not the record's size is a
  mismatch at once, not a transient error retried with more full downloads;
* an advisory lock per zip keeps two concurrent runs from writing the same files.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from tqdm import tqdm

from automl_asd.components.files import atomic_write_text, naming_path
from automl_asd.components.locks import file_lock
from automl_asd.data import EXTRACTING_PREFIX
from automl_asd.errors import AutomlAsdError, one_line
from automl_asd.progress import few_names

__all__ = [
    "DEFAULT_BASE_URL",
    "DEV_MACHINE_TYPES",
    "RECORDS",
    "SPLITS",
    "ChecksumError",
    "DownloadError",
    "FileResult",
    "InsufficientSpaceError",
    "Record",
    "RemoteFile",
    "UnsafeArchiveError",
    "download_dataset",
    "download_file",
    "fetch_record_files",
    "find_record",
    "format_records",
    "md5sum",
    "safe_extract",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Public Zenodo records API; ``<DEFAULT_BASE_URL>/<record_id>`` returns the record's JSON.
DEFAULT_BASE_URL = "https://zenodo.org/api/records"

#: ``dev``: development data; ``add``: additional training data of the evaluation machine
#: types; ``eval``: evaluation test data (extracts into the same ``<mt>/test/`` folders).
SPLITS: tuple[str, ...] = ("dev", "add", "eval")

DEV_MACHINE_TYPES: tuple[str, ...] = (
    "ToyCar", "ToyTrain", "fan", "gearbox", "bearing", "slider", "valve",
)
_EVAL_MACHINE_TYPES: dict[int, tuple[str, ...]] = {
    2023: ("ToyDrone", "ToyNscale", "ToyTank", "Vacuum", "bandsaw", "grinder", "shaker"),
    2024: ("3DPrinter", "AirCompressor", "Scanner", "ToyCircuit", "HoveringDrone", "HairDryer",
           "ToothBrush", "RoboticArm", "BrushlessMotor"),
    2025: ("ToyRCCar", "ToyPet", "HomeCamera", "AutoTrash", "Polisher", "ScrewFeeder",
           "BandSealer", "CoffeeGrinder"),
}

_CHUNK = 1 << 20
_USER_AGENT = "automl-asd-download/1 (+python urllib)"
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Longest wait between two attempts (also caps a server's Retry-After hint).
_MAX_DELAY_S = 120.0
#: Without a progress bar, a log line is written at most this often during a download.
_LOG_EVERY_S = 30.0
#: Free space kept in reserve on top of what a download or extraction needs.
DEFAULT_MIN_FREE_BYTES = 64 << 20


class DownloadError(AutomlAsdError, RuntimeError):
    """A download, verification or extraction that failed; the message names the file."""


class ChecksumError(DownloadError):
    """A downloaded file whose md5 or size differs from the record metadata."""


class UnsafeArchiveError(DownloadError):
    """An archive with a member that would be written outside the destination."""


class InsufficientSpaceError(DownloadError):
    """Not enough free disk space for a download or an extraction."""


class _TransientError(Exception):
    """A failure worth retrying (server error, dropped connection, truncated body).

    ``retry_after_s`` is the server's ``Retry-After`` hint in seconds, if it sent one.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Record:
    """One known Zenodo record of DCASE Task 2 data.

    ``zip_pattern`` contains ``{mt}``; ``r2_machine_types`` use the ``_train_r2`` re-release
    (2024 additional training data of 3DPrinter and RoboticArm).
    """

    year: int
    split: str
    record_id: int
    zip_pattern: str
    machine_types: tuple[str, ...]
    r2_machine_types: tuple[str, ...] = ()

    def zip_name(self, machine_type: str) -> str:
        """The record's file key of one machine type's zip, e.g. ``dev_fan.zip``."""
        if machine_type not in self.machine_types:
            raise ValueError(
                f"{self.year} {self.split}: unknown machine type {machine_type!r}; "
                f"choose from {', '.join(self.machine_types)}"
            )
        name = self.zip_pattern.format(mt=machine_type)
        if machine_type in self.r2_machine_types:
            name = name.removesuffix(".zip") + "_r2.zip"
        return name


RECORDS: tuple[Record, ...] = (
    Record(2023, "dev", 7882613, "dev_{mt}.zip", DEV_MACHINE_TYPES),
    Record(2023, "add", 7830345, "eval_data_{mt}_train.zip", _EVAL_MACHINE_TYPES[2023]),
    Record(2023, "eval", 7860847, "eval_data_{mt}_test.zip", _EVAL_MACHINE_TYPES[2023]),
    Record(2024, "dev", 10902294, "dev_{mt}.zip", DEV_MACHINE_TYPES),
    Record(2024, "add", 11259435, "eval_data_{mt}_train.zip", _EVAL_MACHINE_TYPES[2024],
           r2_machine_types=("3DPrinter", "RoboticArm")),
    Record(2024, "eval", 11363076, "eval_data_{mt}_test.zip", _EVAL_MACHINE_TYPES[2024]),
    Record(2025, "dev", 15097779, "dev_{mt}.zip", DEV_MACHINE_TYPES),
    Record(2025, "add", 15392814, "eval_data_{mt}_train.zip", _EVAL_MACHINE_TYPES[2025]),
    Record(2025, "eval", 15519362, "eval_data_{mt}_test.zip", _EVAL_MACHINE_TYPES[2025]),
)


def find_record(year: int, split: str) -> Record:
    """The known record of ``year`` and ``split`` (``dev``, ``add`` or ``eval``)."""
    for record in RECORDS:
        if record.year == year and record.split == split:
            return record
    years = sorted({r.year for r in RECORDS})
    raise ValueError(
        f"no known record for year={year} split={split!r}; years: {years}, splits: {SPLITS}"
    )


def format_records(records: Iterable[Record] = RECORDS) -> str:
    """A human-readable table of records, zip names and machine types (for ``--list``)."""
    lines = []
    for r in records:
        quirk = f" ({', '.join(r.r2_machine_types)}: _train_r2)" if r.r2_machine_types else ""
        lines.append(f"{r.year} {r.split:<4} record {r.record_id:<9} {r.zip_pattern}{quirk}")
        lines.append(f"    {len(r.machine_types)} machine types: {' '.join(r.machine_types)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class RemoteFile:
    """One file of a record: its key (file name), size in bytes, md5 hex digest and URL."""

    key: str
    size: int | None
    md5: str | None
    url: str


@dataclass(frozen=True)
class FileResult:
    """What :func:`download_dataset` did for one zip.

    ``status`` is ``"downloaded"``, ``"resumed"`` (a ``.part`` file was continued),
    ``"extracted"`` (a verified zip was already present) or ``"verified"`` (nothing to do).
    """

    machine_type: str
    key: str
    status: str
    bytes_downloaded: int
    n_members: int


# --------------------------------------------------------------------------------------------
# HTTP helpers


def _check_url(url: str) -> None:
    # urllib also opens file:// and ftp:// URLs; a record's metadata must not make us do that.
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http(s) URLs are downloaded")


def _request(url: str, headers: Mapping[str, str] | None = None) -> urllib.request.Request:
    _check_url(url)
    return urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, **(headers or {})})


def _with_retries(what: str, fn: Callable[[], _T], *, retries: int, backoff_s: float,
                  hint: str = "run the command again to resume") -> _T:
    """Call ``fn()`` until it does not raise :class:`_TransientError`, at most ``retries`` times
    in all (the first try included: ``retries`` counts attempts, not repeats).

    The delay before attempt ``k + 1`` is ``backoff_s * 2**(k - 1)`` seconds; ``hint`` ends
    the final error message.
    """
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    for attempt in range(1, retries + 1):
        try:
            return fn()
        except _TransientError as exc:
            if attempt == retries:
                raise DownloadError(
                    f"{what}: giving up after {retries} attempts, last error: {exc}; {hint}"
                ) from exc
            delay = min(backoff_s * 2 ** (attempt - 1), _MAX_DELAY_S)
            if exc.retry_after_s is not None:
                delay = min(max(delay, exc.retry_after_s), _MAX_DELAY_S)
            # "attempt k of N", as --retries counts them (found 2026-12-07: "--retries 2" logged
            # "retry 1/1" and the final error "giving up after 2 attempts")
            logger.warning("%s: %s; attempt %d of %d failed, trying again in %.1f s", what, exc,
                           attempt, retries, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _classify_http_error(url: str, exc: urllib.error.HTTPError) -> Exception:
    if exc.code in _RETRY_STATUS or exc.code >= 500:
        hint = (exc.headers.get("Retry-After") or "").strip() if exc.headers else ""
        retry_after = float(hint) if hint.isdigit() else None
        return _TransientError(f"HTTP {exc.code} {exc.reason}", retry_after)
    return DownloadError(f"{url}: HTTP {exc.code} {exc.reason}")


def _get_json(url: str, *, timeout_s: float, retries: int, backoff_s: float) -> Any:
    def attempt() -> Any:
        try:
            with urllib.request.urlopen(_request(url, {"Accept": "application/json"}),
                                        timeout=timeout_s) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise _classify_http_error(url, exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:  # truncated body or a proxy's error page: try again
            raise _TransientError(f"the response is not JSON ({exc})") from exc

    # Record metadata comes first: when it fails nothing was downloaded, so no "resume".
    return _with_retries(url, attempt, retries=retries, backoff_s=backoff_s,
                         hint="nothing was downloaded; check the network connection or "
                              "--base-url and run the command again")


def _parse_files(url: str, base_url: str, record_id: int, meta: Any) -> dict[str, RemoteFile]:
    files = meta.get("files") if isinstance(meta, dict) else None
    if isinstance(files, dict):  # some API versions nest the list under files.entries
        entries = files.get("entries")
        files = list(entries.values()) if isinstance(entries, dict) else entries
    if not isinstance(files, list):
        raise DownloadError(f"{url}: record metadata has no 'files' list")
    out: dict[str, RemoteFile] = {}
    for entry in files:
        if not isinstance(entry, dict):
            raise DownloadError(f"{url}: a 'files' entry is not an object: {entry!r}")
        key = entry.get("key", entry.get("filename"))
        if not isinstance(key, str) or not key:
            raise DownloadError(f"{url}: a 'files' entry has no 'key': {entry!r}")
        size = entry.get("size", entry.get("filesize"))
        checksum = entry.get("checksum")
        md5: str | None = None
        if isinstance(checksum, str):
            algo, _, value = checksum.partition(":") if ":" in checksum else ("md5", "", checksum)
            if algo.lower() == "md5" and re.fullmatch(r"[0-9a-fA-F]{32}", value):
                md5 = value.lower()
        raw_links = entry.get("links")
        links: dict[str, Any] = raw_links if isinstance(raw_links, dict) else {}
        # "content" (InvenioRDM entries) is the file itself; there "self" is its metadata. In
        # the default (legacy) JSON, "self" is the file's .../content URL.
        file_url = (links.get("content") or links.get("self") or links.get("download")
                    or f"{base_url.rstrip('/')}/{record_id}/files/{key}/content")
        out[key] = RemoteFile(key=key, size=int(size) if isinstance(size, int) else None,
                              md5=md5, url=str(file_url))
    return out


def fetch_record_files(
    record_id: int,
    *,
    base_url: str = DEFAULT_BASE_URL,
    cache_path: Path | None = None,
    refresh: bool = False,
    timeout_s: float = 60.0,
    retries: int = 5,
    backoff_s: float = 1.0,
) -> dict[str, RemoteFile]:
    """Read a record's file list (key -> :class:`RemoteFile`) from ``<base_url>/<record_id>``.

    With ``cache_path``, the metadata read earlier from the same ``base_url`` is reused unless
    ``refresh`` is set (a published Zenodo record's files never change; a new version is a new
    record), so a second run verifies without touching the network.
    """
    return _read_record(record_id, base_url=base_url, cache_path=cache_path, refresh=refresh,
                        timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)[0]


def _read_record(record_id: int, *, base_url: str, cache_path: Path | None, refresh: bool,
                 timeout_s: float, retries: int, backoff_s: float,
                 ) -> tuple[dict[str, RemoteFile], bool]:
    """:func:`fetch_record_files`, and whether the list was read from the network now (``False``:
    from the cache)."""
    url = f"{base_url.rstrip('/')}/{record_id}"
    if cache_path is not None and cache_path.is_file() and not refresh:
        try:
            cached = json.loads(cache_path.read_text())
            if cached.get("url") == url:
                logger.debug("%s: using cached metadata %s", url, cache_path)
                return _parse_files(url, base_url, record_id, cached["record"]), False
        except (OSError, ValueError, KeyError, AttributeError, DownloadError) as exc:
            logger.warning("%s: ignoring unreadable cached metadata (%s)", cache_path, exc)
    meta = _get_json(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
    files = _parse_files(url, base_url, record_id, meta)
    if cache_path is not None:
        atomic_write_text(cache_path, json.dumps({"url": url, "record": meta}, indent=1))
    return files, True


class _RunRecord:
    """One run's view of a record's file list: the cached copy when there is one, read from the
    network at most once more in the run, when a file has to be downloaded or a kept zip fails
    the cached entry (found 2026-12-07: a record that listed a wrong md5 and was corrected later
    stayed wrong in the cache, so every rerun downloaded the whole zip and discarded it again).
    Without a download the cache is enough, so a complete data set still verifies offline.
    """

    def __init__(self, record_id: int, *, base_url: str, cache_path: Path, refresh: bool,
                 timeout_s: float, retries: int, backoff_s: float) -> None:
        self.record_id = record_id
        self.url = f"{base_url.rstrip('/')}/{record_id}"
        self.cache_path = cache_path
        self._options: dict[str, Any] = {"base_url": base_url, "cache_path": cache_path,
                                         "timeout_s": timeout_s, "retries": retries,
                                         "backoff_s": backoff_s}
        self.files, self.fresh = _read_record(record_id, refresh=refresh, **self._options)
        self.reread_error: str | None = None  # why reading it again failed, if it did

    def reread(self) -> bool:
        """Read the record from the network unless this run did (or tried) already; whether
        :attr:`files` now comes from the network."""
        if not self.fresh and self.reread_error is None:
            try:
                self.files, self.fresh = _read_record(self.record_id, refresh=True,
                                                      **self._options)
            except DownloadError as exc:
                self.reread_error = str(exc.__cause__ or exc)  # the last error, no advice
                logger.warning("%s: could not read the record again (%s); using the copy "
                               "cached in %s", self.url, self.reread_error, self.cache_path)
        return self.fresh

    def current(self, remote: RemoteFile) -> RemoteFile:
        """``remote`` as the record read in this run lists it (reading it if needed); ``remote``
        itself when the record cannot be read."""
        if not self.reread():
            return remote
        fresh = self.files.get(remote.key)
        if fresh is None:
            raise DownloadError(
                f"{remote.key}: no longer in record {self.record_id} (read again from "
                f"{self.url}); check --year/--split, or --base-url for a mirror"
            )
        if fresh != remote:
            logger.warning("%s: the record read again lists size %s, md5 %s (the copy cached "
                           "in %s said size %s, md5 %s); using it", remote.key, fresh.size,
                           fresh.md5, self.cache_path, remote.size, remote.md5)
        return fresh

    def mismatch_hint(self) -> str:
        """The end of the message for a download that does not match the record."""
        if self.fresh:
            return (f"the record was read from {self.url} in this run, so the file sent "
                    "differs from what the record lists. Run again (each run that downloads "
                    "reads the record again, so a corrected record is used); if this repeats, "
                    "the record at --base-url lists a wrong md5 or size, or its server sends "
                    "another file")
        return (f"the record could not be read again ({self.reread_error}), so its copy cached "
                f"in {self.cache_path} may be stale. Run again once {self.url} answers: a run "
                "that downloads reads the record again first (--refresh-metadata makes any "
                "run read it)")


# --------------------------------------------------------------------------------------------
# Files on disk


def md5sum(path: Path) -> str:
    """The md5 hex digest of a file."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_free_space(path: Path, needed: int, min_free_bytes: int, what: str) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + min_free_bytes:
        raise InsufficientSpaceError(
            f"{what}: needs {needed / 2**20:.1f} MiB plus {min_free_bytes / 2**20:.1f} MiB "
            f"reserve, but only {free / 2**20:.1f} MiB are free on {probe}; free some space "
            "or choose another --dest"
        )


def _verify(path: Path, remote: RemoteFile) -> str | None:
    """``None`` if ``path`` matches the remote size and md5, else the reason it does not."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, record says {remote.size}"
    if remote.md5 is not None:
        got = md5sum(path)
        if got != remote.md5:
            return f"md5 {got}, record says {remote.md5}"
    return None


def _transfer(remote: RemoteFile, part: Path, received: list[int], *, timeout_s: float,
              progress: bool) -> None:
    """Append the missing bytes of ``remote`` to ``part``, adding their count to ``received[0]``.

    Raises :class:`_TransientError` when the transfer should be retried (the bytes received so
    far stay in ``part`` so the retry resumes after them).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = urllib.request.urlopen(_request(remote.url, headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The range starts at or after the end: the part is complete or longer than the
            # file. Verification decides; a part that is too long is restarted.
            if remote.size is not None and offset > remote.size:
                part.unlink()
                raise _TransientError(f"{part.name} is longer than the file; restarting") from exc
            return
        raise _classify_http_error(remote.url, exc) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _TransientError(f"{type(exc).__name__}: {exc}") from exc
    with resp:
        if offset and resp.status == 206:
            match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink()
                raise _TransientError(
                    f"server answered Range {offset}- with Content-Range "
                    f"{resp.headers.get('Content-Range')!r}; restarting from 0"
                )
            logger.info("%s: resuming at byte %d", remote.key, offset)
        elif resp.status == 200:
            sent = resp.headers.get("Content-Length", "")
            if offset and remote.size is not None and sent.isdigit() \
                    and int(sent) != remote.size:
                # not the file (an error or login page sent as 200): keep the partial bytes
                # (found 2026-12-07: a 42-byte HTML page answering a resume replaced a .part
                # of 700 KB, and then was discarded as a mismatch)
                raise _TransientError(
                    f"the server answered the request for bytes {offset}- with HTTP 200 and "
                    f"{sent} bytes ({resp.headers.get('Content-Type') or 'no Content-Type'}), "
                    f"not the {remote.size}-byte file; {part.name} ({offset} bytes) is kept"
                )
            if offset:
                logger.info("%s: server ignored the Range request; restarting", remote.key)
            offset = 0
        else:
            raise DownloadError(f"{remote.url}: unexpected HTTP status {resp.status}")
        total = remote.size
        length = resp.headers.get("Content-Length")
        if total is None and length is not None and length.isdigit():
            total = offset + int(length)
        try:
            with naming_path(part), part.open("ab" if offset else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=remote.key, disable=not progress, leave=False,
            ) as bar:
                last_log = time.monotonic()
                body = 0
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _TransientError(
                            f"connection lost: {type(exc).__name__}: {exc}"
                        ) from exc
                    if not chunk:
                        break
                    f.write(chunk)
                    received[0] += len(chunk)
                    body += len(chunk)
                    bar.update(len(chunk))
                    if not progress and time.monotonic() - last_log >= _LOG_EVERY_S:
                        last_log = time.monotonic()
                        done = f.tell()
                        logger.info("%s: %.1f MiB%s", remote.key, done / 2**20,
                                    f" of {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)"
                                    if total else "")
        except OSError as exc:
            # a local write error (a full disk) is not transient: no retry, this file fails
            # and the others are still tried (found 2026-12-07: a bare "[Errno 28]" ended the
            # whole download); the bytes received stay for the next run to resume from
            raise DownloadError(f"downloading {remote.key}: {one_line(exc)}; the bytes "
                                "received are kept and the same command resumes") from exc
    have = part.stat().st_size
    if total is not None and have != total and length is not None and length.isdigit() \
            and body == int(length):
        # The whole body the server announced came, and the file has another size than the
        # record lists: no retry sends other bytes, so verification reports it (found
        # 2026-12-07: each of --retries attempts downloaded the whole zip again)
        return
    if total is not None and have < total:
        raise _TransientError(f"connection closed at byte {have} of {total}")
    if total is not None and have > total:
        part.unlink()
        raise _TransientError(f"received {have} bytes, expected {total}; restarting")


def download_file(
    remote: RemoteFile,
    target: Path,
    *,
    timeout_s: float = 60.0,
    retries: int = 5,
    backoff_s: float = 1.0,
    progress: bool = True,
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
) -> tuple[str, int]:
    """Download ``remote`` to ``target`` via ``<target>.part`` and verify it.

    An existing ``.part`` file is resumed with an HTTP Range request. Transient failures are
    retried (``retries`` attempts, exponential backoff from ``backoff_s``). The part is renamed to
    ``target`` only after the size and md5 match the record; a mismatching download is deleted
    and raises :class:`ChecksumError` (after one fresh restart if the download was resumed).

    Returns ``(status, bytes_downloaded)`` with status ``"downloaded"`` or ``"resumed"``.
    """
    return _download_verified(
        remote, target, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
        progress=progress, min_free_bytes=min_free_bytes,
        mismatch_hint="run again; if this repeats, the mirror at --base-url serves a different "
                      "file",
    )


def _download_verified(remote: RemoteFile, target: Path, *, timeout_s: float, retries: int,
                       backoff_s: float, progress: bool, min_free_bytes: int,
                       mismatch_hint: str) -> tuple[str, int]:
    """:func:`download_file`; ``mismatch_hint`` ends the message of a :class:`ChecksumError`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    resumed = part.exists() and part.stat().st_size > 0
    received = [0]
    for fresh_restart in (False, True):
        have = part.stat().st_size if part.exists() else 0
        if remote.size is not None:
            _check_free_space(target.parent, max(remote.size - have, 0), min_free_bytes,
                              f"downloading {remote.key}")

        def attempt() -> None:
            _transfer(remote, part, received, timeout_s=timeout_s, progress=progress)

        logger.info("%s: downloading %s%s", remote.key, remote.url,
                    f" (have {have} bytes)" if have else "")
        _with_retries(remote.key, attempt, retries=retries, backoff_s=backoff_s)
        problem = _verify(part, remote)
        if problem is None:
            os.replace(part, target)
            if remote.md5:
                logger.info("%s: verified (md5 %s)", remote.key, remote.md5)
            else:
                logger.warning("%s: verified by size only: the record lists no md5, so the "
                               "content cannot be checked", remote.key)
            return ("resumed" if resumed else "downloaded"), received[0]
        part.unlink()
        if resumed and not fresh_restart:
            # The earlier partial bytes may be stale (e.g. a re-released file): start over once.
            logger.warning("%s: %s after resuming; downloading it again from scratch",
                           remote.key, problem)
            continue
        break
    raise ChecksumError(
        f"{remote.key}: downloaded file has {problem}; the file was discarded; {mismatch_hint}"
    )


# --------------------------------------------------------------------------------------------
# Extraction


def _member_target(info: zipfile.ZipInfo, dest: Path, archive: Path) -> Path | None:
    """Where a member would be written under ``dest``; ``None`` for entries to skip.

    Raises :class:`UnsafeArchiveError` for absolute paths, ``..`` components, backslashes,
    NUL bytes, symlinks and any path that would land outside ``dest``.
    """
    name = info.filename

    def refuse(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"{archive}: member {name!r} {why}; refusing to extract anything from this archive "
            "(nothing was written)"
        )

    if "\x00" in name or "\\" in name:
        raise refuse("contains a NUL byte or a backslash")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise refuse("is an absolute path")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise refuse("contains a '..' component")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise refuse("is a symbolic link")
    if not parts:
        return None
    if parts[0] == "__MACOSX" or parts[-1] == ".DS_Store":
        return None  # macOS archive metadata, not data
    target = dest.joinpath(*parts)
    root = os.path.normpath(dest)
    if os.path.commonpath([root, os.path.normpath(target)]) != root:
        raise refuse("would be written outside the destination")
    return target


def safe_extract(
    archive: Path,
    dest: Path,
    *,
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    require_folder: str | None = None,
    sentinel: Path | None = None,
) -> dict[str, int]:
    """Extract a zip into ``dest`` after checking every member; returns ``{relpath: size}``.

    All members are checked before anything is written (see :func:`_member_target`), free space
    is checked against the members' uncompressed sizes, and each file is written to a temporary
    name and renamed into place, so existing files are never left half-written. With
    ``require_folder``, an archive with no file under ``<require_folder>/`` is refused before
    anything is written (a machine type's zip must unpack into ``<dest>/<machine_type>/``).
    ``sentinel`` is a file that exists while members are written: an extraction killed
    part-way leaves it beside the members written so far (scan() refuses such a folder).
    """
    dest = Path(os.path.abspath(dest))
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{archive}: not a readable zip file ({exc})") from exc
    with zf:
        plan: list[tuple[zipfile.ZipInfo, Path]] = []
        for info in zf.infolist():
            target = _member_target(info, dest, archive)
            if target is not None:
                plan.append((info, target))
        if require_folder is not None:
            _check_folder_in_plan(archive, dest, require_folder, plan)
        needed = sum(info.file_size for info, _ in plan if not info.is_dir())
        _check_free_space(dest, needed, min_free_bytes, f"extracting {archive.name}")
        members: dict[str, int] = {}
        created: list[Path] = []  # the files and folders this call made, in creation order
        try:
            if sentinel is not None:
                _make_folders(sentinel.parent, created)
                if not sentinel.exists():  # one left by a killed run stays until this one ends
                    created.append(sentinel)
                    sentinel.write_text(f"extracting {archive}\n")
            for info, target in plan:
                _make_folders(target if info.is_dir() else target.parent, created)
                if info.is_dir():
                    continue
                tmp = target.with_name(target.name + ".extracting")
                existed = target.exists()
                try:
                    # a full disk names the member's path, in the CLI's words (errors.one_line)
                    with naming_path(target), zf.open(info) as src, tmp.open("wb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)
                except (zipfile.BadZipFile, OSError) as exc:
                    tmp.unlink(missing_ok=True)
                    raise DownloadError(
                        f"{archive}: cannot extract {info.filename!r}: {one_line(exc)}; the "
                        "files extracted before it were removed"
                    ) from exc
                except BaseException:  # Ctrl-C: leave no half-written member behind
                    tmp.unlink(missing_ok=True)
                    raise
                os.replace(tmp, target)
                if not existed:
                    created.append(target)
                members[target.relative_to(dest).as_posix()] = info.file_size
        except BaseException:
            # found 2026-12-07: a member failing its CRC (or Ctrl-C) part-way left the
            # members before it, which `info` and scan() read as a complete machine type with
            # fewer clips; what this call made goes (only a killed call leaves its sentinel)
            _remove_created(created)
            raise
        if sentinel is not None:
            sentinel.unlink()
    tops = sorted({rel.split("/", 1)[0] for rel in members})
    logger.info("%s: extracted %d files into %s (%s)", archive.name, len(members), dest,
                ", ".join(tops))
    return members


def _make_folders(folder: Path, created: list[Path]) -> None:
    """``folder.mkdir(parents=True)``, appending the folders it makes to ``created``."""
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    created.extend(reversed(missing))


def _remove_created(created: Sequence[Path]) -> None:
    """Remove what an extraction made, newest first (folders only once empty)."""
    for path in reversed(created):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass  # a folder that holds files of another zip or of the user stays


def _check_folder_in_plan(archive: Path, dest: Path, folder: str,
                          plan: Sequence[tuple[zipfile.ZipInfo, Path]]) -> None:
    # found 2026-12-07: a zip without its <type>/ folder gave a WARNING, then the type was
    # counted "ready" although scan(dest) cannot find it; a later search or apply would miss it
    # far from the cause, so the type fails here, naming the zip
    rels = [target.relative_to(dest).as_posix() for info, target in plan if not info.is_dir()]
    if any(rel.startswith(f"{folder}/") for rel in rels):
        return
    tops = sorted({rel.split("/", 1)[0] + ("/" if "/" in rel else "") for rel in rels})
    raise DownloadError(
        f"{archive}: has no {folder}/ folder (top-level entries: {few_names(tops) or 'none'}); "
        f"nothing was extracted, since scan() reads {folder} from {dest / folder}. Check that "
        f"this is the {folder} zip of the record, or unpack it there by hand"
    )


def _extracted_crcs(archive: Path, dest: Path) -> dict[str, int]:
    """``{relpath: CRC-32}`` of the files :func:`safe_extract` wrote from ``archive`` (the
    zip's own checksums, which ``zipfile`` checked while extracting)."""
    dest = Path(os.path.abspath(dest))
    with zipfile.ZipFile(archive) as zf:
        return {target.relative_to(dest).as_posix(): info.CRC for info in zf.infolist()
                if not info.is_dir() and (target := _member_target(info, dest, archive))
                is not None}


def _file_crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _marker_ok(marker: Path, dest: Path, remote: RemoteFile) -> bool:
    """Whether ``marker`` records an extraction of this exact file whose members are intact:
    present with their sizes and, for a record that lists them (since 2026-12-06), with the
    zip's CRC-32 of their bytes (an edit that keeps the size is found too)."""
    try:
        info = json.loads(marker.read_text())
        members: dict[str, int] = info["members"]
        crcs: dict[str, int] = info.get("crc32") or {}
        if remote.md5 is not None and info.get("md5") != remote.md5:
            return False
        if remote.size is not None and info.get("size") != remote.size:
            return False
        for rel, size in members.items():
            path = dest / rel
            if not path.is_file() or path.stat().st_size != size:
                logger.info("%s: %s is missing or changed; extracting again", remote.key, path)
                return False
        for rel, crc in crcs.items():
            if _file_crc(dest / rel) != crc:
                logger.info("%s: %s changed (CRC-32); extracting again", remote.key, dest / rel)
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


# --------------------------------------------------------------------------------------------
# A whole record


@contextmanager
def _exclusive(lock_path: Path, what: str) -> Iterator[None]:
    """Hold an advisory lock so two processes never write the same ``.part`` or members."""
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock_path, wait=False))
        except BlockingIOError as exc:
            raise DownloadError(
                f"{what}: another automl-asd download holds {lock_path}; wait for it to finish"
            ) from exc
        yield


def _fetch_one(
    machine_type: str,
    remote: RemoteFile,
    dest: Path,
    zip_dir: Path,
    *,
    record: _RunRecord,
    keep_zips: bool,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    progress: bool,
    min_free_bytes: int,
) -> FileResult:
    zip_path = zip_dir / remote.key
    marker = zip_dir / f"{remote.key}.extracted.json"
    _check_same_record(marker, record.record_id, dest / machine_type, remote)
    status = "extracted"
    received = 0
    refetch = False
    if zip_path.exists():
        problem = _verify(zip_path, remote)
        if problem is not None:
            # the cached record may be the stale side: compare with the record read again
            remote = record.current(remote)
            problem = _verify(zip_path, remote)
        if problem is not None:
            # Not a verified file (corrupted on disk or replaced upstream): fetch it again.
            logger.warning("%s: %s; downloading it again", zip_path, problem)
            zip_path.unlink()
            refetch = keep_zips
    if not zip_path.exists() and not refetch and _marker_ok(marker, dest, remote):
        return FileResult(machine_type, remote.key, "verified", 0, _count_members(marker))
    if not zip_path.exists():
        remote = record.current(remote)  # the network is needed anyway: no stale md5 or size
        status, received = _download_verified(
            remote, zip_path, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
            progress=progress, min_free_bytes=min_free_bytes,
            mismatch_hint=record.mismatch_hint(),
        )
    elif _marker_ok(marker, dest, remote):
        logger.info("%s: verified, extracted files intact", remote.key)
        if not keep_zips:
            # verified and extracted, as after a first download (found 2026-12-07: a rerun
            # with --remove-zips left the zips kept by an earlier run in place)
            zip_path.unlink()
            logger.info("%s: removed (--remove-zips)", zip_path)
        return FileResult(machine_type, remote.key, "verified", 0, _count_members(marker))
    # an extraction of this zip made the folder (a file changed since): extracting repairs it
    foreign = [] if marker.exists() else _foreign_files(zip_path, zip_dir, dest / machine_type)
    if foreign:
        raise DownloadError(
            f"{remote.key}: {dest / machine_type} already holds {len(foreign)} file(s) that no "
            f"download put there ({few_names(foreign, 3)}); extracting would mix them with this "
            f"zip's clips. Give another --dest, or move that folder away (the verified zip is "
            "kept: the rerun extracts it without downloading)"
        )
    marker.unlink(missing_ok=True)  # re-extracting: the old record no longer vouches for it
    members = safe_extract(zip_path, dest, min_free_bytes=min_free_bytes,
                           require_folder=machine_type,
                           sentinel=dest / machine_type / f"{EXTRACTING_PREFIX}{remote.key}")
    if any(not rel.startswith(f"{machine_type}/") for rel in members):
        logger.warning("%s: some members are not under %s/; scan(dest) may not find them",
                       remote.key, machine_type)
    atomic_write_text(marker, json.dumps(
        {"key": remote.key, "md5": remote.md5, "size": remote.size, "members": members,
         "crc32": _extracted_crcs(zip_path, dest), "record_id": record.record_id},
        indent=0, sort_keys=True,
    ))
    if not keep_zips:
        zip_path.unlink()  # deliberate: extracted and recorded; not a failure path
    return FileResult(machine_type, remote.key, status, received, len(members))


def _foreign_files(zip_path: Path, zip_dir: Path, folder: Path) -> list[str]:
    """Files under ``folder`` (relative to its parent, hidden ones aside) that are neither
    members of ``zip_path`` nor recorded by an extraction marker in ``zip_dir`` (found
    2026-12-07: a download into a `synth` tree extracted the real fan clips into the synthetic
    fan/ folder, replacing its attributes file: one folder with both data sets' clips)."""
    if not folder.is_dir():
        return []
    present = {path.relative_to(folder.parent).as_posix() for path in folder.rglob("*")
               if path.is_file() and not any(part.startswith(".")
                                             for part in path.relative_to(folder).parts)}
    if not present:
        return []
    with zipfile.ZipFile(zip_path) as zf:
        known = {"/".join(p for p in PurePosixPath(name).parts if p not in ("", "."))
                 for name in zf.namelist()}
    for other in zip_dir.glob("*.extracted.json"):
        try:
            known.update(json.loads(other.read_text())["members"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable marker vouches for nothing
    # a member's temporary file that a killed extraction left (`<name>.extracting`, which the
    # rerun writes over) is a download's too
    return sorted(p for p in present - known
                  if p.removesuffix(".extracting") not in known)


def _record_label(record_id: int) -> str:
    """``2025 dev (record 15097779)``, or the bare record for one not in :data:`RECORDS`."""
    for r in RECORDS:
        if r.record_id == record_id:
            return f"{r.year} {r.split} (record {record_id})"
    return f"record {record_id}"


def _check_same_record(marker: Path, record_id: int, folder: Path, remote: RemoteFile) -> None:
    """Refuse to fetch ``remote`` where ``marker`` says another record's other zip of that name
    was extracted into ``folder`` and that folder or zip is still there (found 2026-12-07: 2025
    dev then 2024 dev into one --dest deleted the verified 2025 dev_fan.zip as "corrupt" and
    merged both years' clips into one fan/ folder). The same file (md5) in two records is
    fine."""
    try:
        info = json.loads(marker.read_text())
        other, md5 = info.get("record_id"), info.get("md5")
    except (OSError, ValueError, AttributeError):
        return  # no marker (or one from before markers named their record): nothing to compare
    key = remote.key
    kept = marker.parent / key
    if (not isinstance(other, int) or other == record_id or (md5 and md5 == remote.md5)
            or not (folder.exists() or kept.exists())):
        return
    raise DownloadError(
        f"{key}: {folder if folder.exists() else kept} holds {_record_label(other)}'s {key}; "
        f"{_record_label(record_id)} has another file of that name: its clips would mix with "
        f"those in {folder}, and the kept zip would be replaced. Give this download another "
        "--dest (and --zip-dir, if you set one)"
    )


def _count_members(marker: Path) -> int:
    return len(json.loads(marker.read_text())["members"])


def _check_folder(path: Path, what: str, fix: str = "give a folder path") -> None:
    """Raise :class:`DownloadError` unless ``path`` is a folder or can be created as one (found
    2026-12-07: a file there gave "[Errno 17] File exists", a file as a parent "[Errno 20]
    Not a directory", neither saying which option was wrong)."""
    probe = path
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir():
        return
    if probe == path:
        raise DownloadError(f"{what} {path}: exists and is not a folder; {fix}")
    raise DownloadError(f"{what} {path}: {probe} is a file, not a folder; {fix}")


def download_dataset(
    year: int,
    split: str,
    dest: Path,
    *,
    machine_types: Sequence[str] | None = None,
    base_url: str = DEFAULT_BASE_URL,
    zip_dir: Path | None = None,
    keep_zips: bool = True,
    refresh_metadata: bool = False,
    timeout_s: float = 60.0,
    retries: int = 5,
    backoff_s: float = 1.0,
    progress: bool = True,
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
) -> list[FileResult]:
    """Download, verify and extract one record's zips into ``dest`` (one per machine type).

    Args:
        year, split: select the record (see :data:`RECORDS`).
        dest: data root; afterwards ``dest/<machine_type>/{train,test,...}`` exist.
        machine_types: subset of the record's machine types (default: all); a repeated name
            counts once.
        base_url: records API; ``<base_url>/<record_id>`` must return the record JSON.
        zip_dir: where zips, ``.part`` files and markers live (default ``dest/.downloads``).
        keep_zips: keep verified zips after extraction (a later run re-checks their md5).
        refresh_metadata: read the record metadata again instead of the copy cached in
            ``zip_dir`` by an earlier run (a run that downloads a file reads it again anyway).
        retries, backoff_s, timeout_s: attempts per request, first retry delay, socket timeout.

    Returns:
        One :class:`FileResult` per machine type, in the order requested.

    Raises:
        DownloadError: after trying every file, naming each one that failed. Files that were
        verified stay in place.
    """
    record = find_record(year, split)
    # each type once, in the order given (found 2026-12-07: "fan fan" fetched fan twice and
    # reported 2 machine types ready)
    wanted = list(dict.fromkeys(machine_types or record.machine_types))
    for mt in wanted:
        record.zip_name(mt)  # validates the name
    dest = Path(dest)
    _check_folder(dest, "--dest")
    if zip_dir is not None:
        zip_dir = Path(zip_dir)
        _check_folder(zip_dir, "--zip-dir")
    else:
        zip_dir = dest / ".downloads"
        _check_folder(zip_dir, "the downloads folder", fix="move it away or give --zip-dir")
    created = [p for p in (dest, zip_dir) if not p.exists()]
    dest.mkdir(parents=True, exist_ok=True)
    zip_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _download_into(record, wanted, dest, zip_dir, year=year, split=split,
                              base_url=base_url, refresh_metadata=refresh_metadata,
                              keep_zips=keep_zips, timeout_s=timeout_s, retries=retries,
                              backoff_s=backoff_s, progress=progress,
                              min_free_bytes=min_free_bytes)
    except BaseException:
        for folder in reversed(created):  # leave no empty folders behind on a failure
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: it holds verified or partial downloads
        raise


def _download_into(record: Record, wanted: list[str], dest: Path, zip_dir: Path, *, year: int,
                   split: str, base_url: str, refresh_metadata: bool, keep_zips: bool,
                   timeout_s: float, retries: int, backoff_s: float, progress: bool,
                   min_free_bytes: int) -> list[FileResult]:
    run_record = _RunRecord(
        record.record_id, base_url=base_url, cache_path=zip_dir / f"record_{record.record_id}.json",
        refresh=refresh_metadata, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
    )
    if any(record.zip_name(mt) not in run_record.files for mt in wanted):
        # The cached metadata may predate a file; read the record again before giving up.
        run_record.reread()
    remote_files = run_record.files
    results: list[FileResult] = []
    failures: list[str] = []
    for i, mt in enumerate(wanted):
        key = record.zip_name(mt)
        remote = remote_files.get(key)
        if remote is None:
            failures.append(f"{key}: not in record {record.record_id} (it lists "
                            f"{', '.join(sorted(remote_files)) or 'no files'})")
            continue
        try:
            with _exclusive(zip_dir / f"{remote.key}.lock", remote.key):
                results.append(_fetch_one(
                    mt, remote, dest, zip_dir, record=run_record, keep_zips=keep_zips,
                    timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
                    progress=progress, min_free_bytes=min_free_bytes,
                ))
        except DownloadError as exc:
            left = len(wanted) - i - 1
            if left:  # said now (a long download goes on); the last one only in the summary
                logger.error("%s (going on with the %d file(s) left; every failure is listed "
                             "at the end)", exc, left)
            failures.append(str(exc))
    if failures:
        raise DownloadError(
            f"{len(failures)} of {len(wanted)} files of {year} {split} failed "
            f"(verified files were kept):\n  " + "\n  ".join(failures)
            + (f"\n  ready under {dest}: {', '.join(r.machine_type for r in results)}"
               if results else "")
        )
    return results
