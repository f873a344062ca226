"""Tests of ``automl_asd.download`` against a fake records API on 127.0.0.1 (no other network)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from automl_asd import download as dl
from automl_asd.cli import main

YEAR, SPLIT, RECORD_ID = 2025, "dev", 15097779
FAST = {"backoff_s": 0.001, "timeout_s": 5.0, "progress": False, "min_free_bytes": 0}


def _wav_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    sf.write(buf, (0.1 * rng.standard_normal(1600)).astype(np.float32), 16000, format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


def _dev_members(mt: str) -> dict[str, bytes]:
    """A tiny DCASE-2025 style machine folder as zip members (top-level ``<mt>/``)."""
    members = {f"{mt}/attributes_00.csv": b"file_name,d1p,d1v\n"}
    for i in range(2):
        members[f"{mt}/train/section_00_source_train_normal_{i:04d}_a_{i}.wav"] = _wav_bytes(i)
    members[f"{mt}/train/section_00_target_train_normal_0000_a_9.wav"] = _wav_bytes(10)
    for label in ("normal", "anomaly"):
        for dom in ("source", "target"):
            name = f"{mt}/test/section_00_{dom}_test_{label}_0000_a_1.wav"
            members[name] = _wav_bytes(hash((label, dom)) % 1000)
    return members


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


class FakeRecords:
    """A minimal Zenodo-like records API: ``/api/records/<id>`` and ``.../files/<key>/content``.

    ``fail[key] = n`` answers the next n file requests with HTTP 500; ``truncate[key] = n`` sends
    only the first n bytes of the next response and closes the connection;
    ``honour_range = False`` ignores Range headers; ``md5_override[key]`` and
    ``size_override[key]`` lie in the metadata; ``page[key] = n`` answers the next n file
    requests with a small HTML page and status 200 (a proxy's error or login page).
    """

    def __init__(self) -> None:
        self.files: dict[int, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.fail: dict[str, int] = {}
        self.truncate: dict[str, int] = {}
        self.md5_override: dict[str, str] = {}
        self.size_override: dict[str, int] = {}
        self.honour_range = True
        self.page: dict[str, int] = {}
        self.record_down = False  # the record (not its files) answers HTTP 503
        self.entries_shape = False  # InvenioRDM shape: files.entries{key: ...}, links.content
        self.retry_after: str | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/records"

    def file_requests(self, key: str) -> list[str | None]:
        """The Range header (or None) of every request for ``key``, in order."""
        return [rng for path, rng in self.requests if path.endswith(f"/files/{key}/content")]

    def record_json(self, record_id: int) -> dict[str, Any]:
        files = []
        for key, data in self.files[record_id].items():
            md5 = self.md5_override.get(key, hashlib.md5(data).hexdigest())
            url = f"{self.base_url}/{record_id}/files/{key}"
            links = ({"self": url, "content": f"{url}/content"} if self.entries_shape
                     else {"self": f"{url}/content"})
            size = self.size_override.get(key, len(data))
            files.append({"key": key, "size": size, "checksum": f"md5:{md5}",
                          "links": links})
        if self.entries_shape:
            return {"id": record_id, "files": {"enabled": True,
                                               "entries": {f["key"]: f for f in files}}}
        return {"id": record_id, "files": files}


def _handler(state: FakeRecords) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            state.requests.append((self.path, self.headers.get("Range")))
            m = re.fullmatch(r"/api/records/(\d+)", self.path)
            if m and state.record_down:
                self._send(503, b"down")
                return
            if m and int(m.group(1)) in state.files:
                self._send(200, json.dumps(state.record_json(int(m.group(1)))).encode(),
                           {"Content-Type": "application/json"})
                return
            m = re.fullmatch(r"/api/records/(\d+)/files/([^/]+)/content", self.path)
            if not m or m.group(2) not in state.files.get(int(m.group(1)), {}):
                self._send(404, b"not found")
                return
            key = m.group(2)
            data = state.files[int(m.group(1))][key]
            if state.fail.get(key, 0) > 0:
                state.fail[key] -= 1
                if state.retry_after is None:
                    self._send(500, b"server error")
                else:
                    self._send(429, b"slow down", {"Retry-After": state.retry_after})
                return
            if state.page.get(key, 0) > 0:
                state.page[key] -= 1
                self._send(200, b"<html>please log in</html>", {"Content-Type": "text/html"})
                return
            start = 0
            rng = self.headers.get("Range")
            if rng and state.honour_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))  # type: ignore[union-attr]
                if start >= len(data):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = state.truncate.pop(key, None)
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            self.close_connection = True

    return Handler


@pytest.fixture
def server() -> Iterator[FakeRecords]:
    state = FakeRecords()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _serve_dev(server: FakeRecords, mts: tuple[str, ...] = ("fan", "valve")) -> dict[str, bytes]:
    zips = {f"dev_{mt}.zip": _zip(_dev_members(mt)) for mt in mts}
    server.files[RECORD_ID] = dict(zips)
    return zips


def _run(server: FakeRecords, dest: Path, mts: tuple[str, ...] = ("fan", "valve"),
         **kw: Any) -> list[dl.FileResult]:
    opts = {**FAST, **kw}
    return dl.download_dataset(YEAR, SPLIT, dest, machine_types=list(mts),
                               base_url=server.base_url, **opts)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ records


def test_records_table_names_and_quirks() -> None:
    assert [r.record_id for r in dl.RECORDS if r.year == 2025] == [15097779, 15392814, 15519362]
    assert dl.find_record(2025, "dev").zip_name("fan") == "dev_fan.zip"
    add24 = dl.find_record(2024, "add")
    assert add24.zip_name("3DPrinter") == "eval_data_3DPrinter_train_r2.zip"
    assert add24.zip_name("RoboticArm") == "eval_data_RoboticArm_train_r2.zip"
    assert add24.zip_name("Scanner") == "eval_data_Scanner_train.zip"
    assert dl.find_record(2023, "eval").zip_name("bandsaw") == "eval_data_bandsaw_test.zip"
    assert len(dl.find_record(2024, "eval").machine_types) == 9
    assert len(dl.find_record(2025, "add").machine_types) == 8
    with pytest.raises(ValueError, match="choose from ToyRCCar"):
        dl.find_record(2025, "eval").zip_name("fan")
    with pytest.raises(ValueError, match="no known record"):
        dl.find_record(2022, "dev")
    assert all("_" not in mt for r in dl.RECORDS for mt in r.machine_types)


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    for r in dl.RECORDS:
        assert str(r.record_id) in out
    assert "CoffeeGrinder" in out and "_train_r2" in out


# ---------------------------------------------------------------------------------- downloads


def test_normal_download_extracts_dcase_layout(server: FakeRecords, tmp_path: Path) -> None:
    zips = _serve_dev(server)
    dest = tmp_path / "data"
    results = _run(server, dest)
    assert [(r.machine_type, r.status) for r in results] == [
        ("fan", "downloaded"), ("valve", "downloaded")]
    assert [r.bytes_downloaded for r in results] == [len(zips["dev_fan.zip"]),
                                                    len(zips["dev_valve.zip"])]
    for mt in ("fan", "valve"):
        expected = _dev_members(mt)
        assert _tree(dest / mt) == {k.split("/", 1)[1]: v for k, v in expected.items()}
        assert (dest / ".downloads" / f"dev_{mt}.zip").read_bytes() == zips[f"dev_{mt}.zip"]
    assert not list(dest.rglob("*.part")) and not list(dest.rglob("*.extracting"))
    assert results[0].n_members == len(_dev_members("fan"))


def test_second_run_only_verifies(server: FakeRecords, tmp_path: Path) -> None:
    _serve_dev(server)
    dest = tmp_path / "data"
    _run(server, dest)
    wav = dest / "fan" / "test" / "section_00_source_test_anomaly_0000_a_1.wav"
    mtime = wav.stat().st_mtime_ns
    server.requests.clear()
    results = _run(server, dest)
    assert [r.status for r in results] == ["verified", "verified"]
    assert server.requests == []  # cached record metadata + local md5/size checks only
    assert wav.stat().st_mtime_ns == mtime
    # A deleted member is restored from the verified zip without the network ...
    wav.unlink()
    results = _run(server, dest)
    assert [r.status for r in results] == ["extracted", "verified"] and server.requests == []
    assert wav.is_file()
    # ... and a zip corrupted on disk is no longer trusted: it is fetched again.
    zip_path = dest / ".downloads" / "dev_valve.zip"
    good = zip_path.read_bytes()
    zip_path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    results = _run(server, dest)
    assert [r.status for r in results] == ["verified", "downloaded"]
    assert zip_path.read_bytes() == good


def test_second_run_without_zips_and_offline(server: FakeRecords, tmp_path: Path) -> None:
    _serve_dev(server, ("fan",))
    dest = tmp_path / "data"
    _run(server, dest, ("fan",), keep_zips=False)
    assert not (dest / ".downloads" / "dev_fan.zip").exists()
    server.requests.clear()
    results = _run(server, dest, ("fan",), keep_zips=False)
    assert [r.status for r in results] == ["verified"] and server.requests == []
    # The cached metadata belongs to its base URL: another URL (nothing listens on port 9)
    # or --refresh-metadata reads the record again.
    with pytest.raises(dl.DownloadError, match="giving up after 1 attempts"):
        dl.download_dataset(YEAR, SPLIT, dest, machine_types=["fan"], retries=1,
                            base_url="http://127.0.0.1:9/api/records", **FAST)
    results = _run(server, dest, ("fan",), refresh_metadata=True)
    assert [r.status for r in results] == ["verified"]
    assert [p for p, _ in server.requests] == [f"/api/records/{RECORD_ID}"]
    # A damaged extracted file makes the next run fetch and extract again.
    (dest / "fan" / "attributes_00.csv").write_bytes(b"x")
    results = _run(server, dest, ("fan",))
    assert [r.status for r in results] == ["downloaded"]
    assert (dest / "fan" / "attributes_00.csv").read_bytes() == b"file_name,d1p,d1v\n"
    # So does one with the same size and other bytes (the record keeps each member's CRC-32).
    (dest / "fan" / "attributes_00.csv").write_bytes(b"file_name,d1p,d1V\n")
    results = _run(server, dest, ("fan",), keep_zips=False)
    assert [r.status for r in results] == ["extracted"]  # the kept zip, no network
    assert (dest / "fan" / "attributes_00.csv").read_bytes() == b"file_name,d1p,d1v\n"


def test_remove_zips_on_a_rerun_that_only_verifies(server: FakeRecords, tmp_path: Path) -> None:
    """Found 2026-12-07: `--remove-zips` after a run that kept the zips reported `verified`
    and left both zips in .downloads."""
    _serve_dev(server)
    dest = tmp_path / "data"
    _run(server, dest)
    downloads = dest / ".downloads"
    assert sorted(p.name for p in downloads.glob("*.zip")) == ["dev_fan.zip", "dev_valve.zip"]
    tree = {k: v for k, v in _tree(dest).items() if not k.startswith(".downloads/")}
    server.requests.clear()
    assert [r.status for r in _run(server, dest, keep_zips=False)] == ["verified", "verified"]
    assert list(downloads.glob("*.zip")) == [] and server.requests == []
    assert {k: v for k, v in _tree(dest).items() if not k.startswith(".downloads/")} == tree
    # and the run after that still only verifies the extracted files (the markers stay)
    assert [r.status for r in _run(server, dest, keep_zips=False)] == ["verified", "verified"]
    assert server.requests == []


def test_partial_file_is_resumed_with_range(server: FakeRecords, tmp_path: Path) -> None:
    zips = _serve_dev(server, ("fan",))
    data = zips["dev_fan.zip"]
    dest = tmp_path / "data"
    part = dest / ".downloads" / "dev_fan.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    (result,) = _run(server, dest, ("fan",))
    assert server.file_requests("dev_fan.zip") == ["bytes=1000-"]
    assert result.status == "resumed"
    assert result.bytes_downloaded == len(data) - 1000
    assert (dest / ".downloads" / "dev_fan.zip").read_bytes() == data
    assert not part.exists()


def test_dropped_connection_is_resumed(server: FakeRecords, tmp_path: Path) -> None:
    zips = _serve_dev(server, ("fan",))
    server.truncate["dev_fan.zip"] = 3000
    (result,) = _run(server, tmp_path / "data", ("fan",))
    assert server.file_requests("dev_fan.zip") == [None, "bytes=3000-"]
    assert result.status == "downloaded"
    assert result.bytes_downloaded == len(zips["dev_fan.zip"])
    assert (tmp_path / "data" / "fan" / "train").is_dir()


def test_server_ignoring_range_restarts(server: FakeRecords, tmp_path: Path) -> None:
    zips = _serve_dev(server, ("fan",))
    server.honour_range = False
    part = tmp_path / "data" / ".downloads" / "dev_fan.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(zips["dev_fan.zip"][:500])
    _run(server, tmp_path / "data", ("fan",))
    assert (tmp_path / "data" / ".downloads" / "dev_fan.zip").read_bytes() == zips["dev_fan.zip"]


def test_a_page_sent_as_200_to_a_resume_keeps_the_partial_file(
        server: FakeRecords, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: an HTML page with status 200 answering a resume (a proxy's error or
    login page) was written over the .part (700 KB replaced by 42 bytes), then discarded as a
    mismatch: the partial download was lost. A 200 whose length is not the file's is retried
    and the .part kept."""
    zips = _serve_dev(server, ("fan",))
    data = zips["dev_fan.zip"]
    part = tmp_path / "data" / ".downloads" / "dev_fan.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:500])
    server.page["dev_fan.zip"] = 2
    argv = ["download", "--split", "dev", "--dest", str(tmp_path / "data"), "--machine-types",
            "fan", "--base-url", server.base_url, "--no-progress", "--retries", "2"]
    assert main(argv) == 1
    assert (f"giving up after 2 attempts, last error: the server answered the request for "
            f"bytes 500- with HTTP 200 and 26 bytes (text/html), not the {len(data)}-byte file; "
            "dev_fan.zip.part (500 bytes) is kept; run the command again to resume"
            ) in capsys.readouterr().err
    assert part.read_bytes() == data[:500]
    server.requests.clear()
    assert main(argv) == 0  # the page is gone: the rerun resumes after byte 500
    assert server.file_requests("dev_fan.zip") == ["bytes=500-"]
    assert (tmp_path / "data" / ".downloads" / "dev_fan.zip").read_bytes() == data


def test_stale_partial_file_restarts_once(server: FakeRecords, tmp_path: Path) -> None:
    zips = _serve_dev(server, ("fan",))
    part = tmp_path / "data" / ".downloads" / "dev_fan.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 700)  # wrong bytes: resuming gives a bad md5, then a fresh start
    (result,) = _run(server, tmp_path / "data", ("fan",))
    assert server.file_requests("dev_fan.zip") == ["bytes=700-", None]
    assert (tmp_path / "data" / ".downloads" / "dev_fan.zip").read_bytes() == zips["dev_fan.zip"]
    assert result.n_members == len(_dev_members("fan"))


def test_checksum_mismatch_is_an_error_and_not_kept(server: FakeRecords, tmp_path: Path) -> None:
    _serve_dev(server)
    server.md5_override["dev_fan.zip"] = "0" * 32
    dest = tmp_path / "data"
    with pytest.raises(dl.DownloadError, match=r"dev_fan.zip: downloaded file has md5 [0-9a-f]+"):
        _run(server, dest)
    downloads = dest / ".downloads"
    assert not (downloads / "dev_fan.zip").exists()
    assert not (downloads / "dev_fan.zip.part").exists()
    assert not (dest / "fan").exists()
    # The other file was verified and extracted and stays.
    assert (downloads / "dev_valve.zip").is_file() and (dest / "valve" / "train").is_dir()
    with pytest.raises(dl.ChecksumError):
        remote = dl.fetch_record_files(RECORD_ID, base_url=server.base_url)["dev_fan.zip"]
        dl.download_file(remote, tmp_path / "x.zip", **FAST)
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize("wrong", ["md5", "size_smaller", "size_larger"])
def test_corrected_record_is_read_again_by_the_next_run(server: FakeRecords, tmp_path: Path,
                                                        wrong: str) -> None:
    """Found 2026-12-07: a record that listed a wrong md5 (or size) and was corrected later
    stayed wrong in `.downloads/record_<id>.json`: every rerun downloaded the whole zip again
    and discarded it. A run that downloads reads the record again first; a size that differs
    from a complete response is a mismatch at once, not --retries full downloads."""
    zips = _serve_dev(server, ("fan",))
    size = len(zips["dev_fan.zip"])
    if wrong == "md5":
        server.md5_override["dev_fan.zip"] = "0" * 32
        problem = rf"md5 [0-9a-f]{{32}}, record says {'0' * 32}"
    else:
        server.size_override["dev_fan.zip"] = size - 1 if wrong == "size_smaller" else size + 1
        problem = f"size {size} bytes, record says {server.size_override['dev_fan.zip']}"
    dest = tmp_path / "data"
    url = f"{server.base_url}/{RECORD_ID}"
    with pytest.raises(dl.DownloadError, match=(
            rf"dev_fan.zip: downloaded file has {problem}; the file was discarded; the record "
            rf"was read from {url} in this run.*Run again \(each run that downloads reads the "
            r"record again")):
        _run(server, dest, ("fan",))
    assert len(server.file_requests("dev_fan.zip")) == 1  # a mismatch is not retried
    cache = dest / ".downloads" / f"record_{RECORD_ID}.json"
    assert cache.is_file()
    # The record is corrected: the next run reads it again and the download verifies.
    server.md5_override.clear()
    server.size_override.clear()
    server.requests.clear()
    (result,) = _run(server, dest, ("fan",))
    assert result.status == "downloaded"
    assert [p for p, _ in server.requests] == [f"/api/records/{RECORD_ID}",
                                               f"/api/records/{RECORD_ID}/files/dev_fan.zip/content"]
    assert (dest / ".downloads" / "dev_fan.zip").read_bytes() == zips["dev_fan.zip"]
    assert json.loads(cache.read_text())["record"] == server.record_json(RECORD_ID)
    server.requests.clear()  # and the run after that verifies offline again
    assert [r.status for r in _run(server, dest, ("fan",))] == ["verified"]
    assert server.requests == []


def test_kept_zip_failing_a_stale_cached_record_is_not_fetched_again(
        server: FakeRecords, tmp_path: Path) -> None:
    """A kept zip that fails the cached record is compared with the record read again before it
    is deleted: when the record changed and the zip matches it, nothing is downloaded."""
    zips = _serve_dev(server, ("fan",))
    dest = tmp_path / "data"
    _run(server, dest, ("fan",))
    cache = dest / ".downloads" / f"record_{RECORD_ID}.json"
    stale = json.loads(cache.read_text())
    stale["record"]["files"][0]["checksum"] = "md5:" + "0" * 32
    cache.write_text(json.dumps(stale))
    (dest / ".downloads" / "dev_fan.zip.extracted.json").unlink()  # force a re-check
    server.requests.clear()
    (result,) = _run(server, dest, ("fan",))
    assert result.status == "extracted"
    assert [p for p, _ in server.requests] == [f"/api/records/{RECORD_ID}"]
    assert (dest / ".downloads" / "dev_fan.zip").read_bytes() == zips["dev_fan.zip"]


def test_mismatch_with_a_cached_record_that_cannot_be_read_again(
        server: FakeRecords, tmp_path: Path) -> None:
    """When the record cannot be read again, the download uses the cached copy and a mismatch
    says that copy may be stale and names --refresh-metadata."""
    _serve_dev(server, ("fan",))
    dest = tmp_path / "data"
    _run(server, dest, ("fan",), keep_zips=False)
    cache = dest / ".downloads" / f"record_{RECORD_ID}.json"
    stale = json.loads(cache.read_text())
    stale["record"]["files"][0]["checksum"] = "md5:" + "0" * 32
    cache.write_text(json.dumps(stale))
    (dest / "fan" / "attributes_00.csv").unlink()  # the next run has to download
    server.record_down = True
    with pytest.raises(dl.DownloadError, match=(
            r"record says 0{32}; the file was discarded; the record could not be read again "
            rf"\(HTTP 503 Service Unavailable\), so its copy cached in {re.escape(str(cache))} "
            r"may be stale\. Run again once .* answers: a run that downloads reads the record "
            r"again first \(--refresh-metadata makes any run read it\)")):
        _run(server, dest, ("fan",), retries=1)
    server.record_down = False
    (result,) = _run(server, dest, ("fan",))
    assert result.status == "downloaded"


def test_server_errors_are_retried(server: FakeRecords, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(dl.time, "sleep", sleeps.append)
    _serve_dev(server, ("fan",))
    server.fail["dev_fan.zip"] = 2
    (result,) = _run(server, tmp_path / "data", ("fan",), retries=3, backoff_s=0.5)
    assert server.file_requests("dev_fan.zip") == [None, None, None]
    assert result.status == "downloaded"
    assert sleeps == [0.5, 1.0]  # exponential backoff
    # 429 with Retry-After: the server's hint wins over a shorter backoff.
    server.fail["dev_valve.zip"] = 1
    server.retry_after = "7"
    server.files[RECORD_ID]["dev_valve.zip"] = _zip(_dev_members("valve"))
    sleeps.clear()
    (result,) = _run(server, tmp_path / "data", ("valve",), backoff_s=0.5)
    assert sleeps == [7.0] and result.status == "downloaded"


def test_invenio_entries_shape_and_log_lines(server: FakeRecords, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    _serve_dev(server, ("fan",))
    server.entries_shape = True
    monkeypatch.setattr(dl, "_LOG_EVERY_S", 0.0)
    with caplog.at_level("INFO", logger="automl_asd.download"):
        (result,) = _run(server, tmp_path / "data", ("fan",))
    assert result.status == "downloaded"
    assert len(server.file_requests("dev_fan.zip")) == 1  # links.content, not links.self
    assert any(re.search(r"dev_fan.zip: 0.0 MiB of 0.0 MiB \(100%\)", m)
               for m in caplog.messages)


def test_retries_are_capped_and_404_is_not_retried(server: FakeRecords, tmp_path: Path) -> None:
    _serve_dev(server, ("fan",))
    server.fail["dev_fan.zip"] = 5
    with pytest.raises(dl.DownloadError, match="giving up after 2 attempts.*HTTP 500"):
        _run(server, tmp_path / "data", ("fan",), retries=2)
    assert len(server.file_requests("dev_fan.zip")) == 2
    assert not (tmp_path / "data" / ".downloads" / "dev_fan.zip").exists()
    url = f"{server.base_url}/{RECORD_ID}/files/nope.zip/content"
    missing = dl.RemoteFile("nope.zip", 10, None, url)
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download_file(missing, tmp_path / "nope.zip", **FAST)
    assert len(server.file_requests("nope.zip")) == 1


def test_retry_log_counts_attempts_as_the_flag_does(server: FakeRecords, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `--retries 2` (2 attempts: "giving up after 2 attempts") logged
    "retry 1/1"; the help, the log and the final error all count attempts now."""
    _serve_dev(server, ("fan", "valve"))
    server.fail["dev_fan.zip"] = 1
    server.fail["dev_valve.zip"] = 5
    with caplog.at_level("WARNING", logger="automl_asd.download"), \
            pytest.raises(dl.DownloadError, match="valve.zip: giving up after 2 attempts"):
        _run(server, tmp_path / "data", ("fan", "valve"), retries=2)
    tries = [m.split(": ", 1)[0] + ": " + m.rsplit("; ", 1)[1].split(",")[0]
             for m in caplog.messages if "HTTP 500" in m and "giving up" not in m]
    assert tries == ["dev_fan.zip: attempt 1 of 2 failed",
                     "dev_valve.zip: attempt 1 of 2 failed"]
    assert (tmp_path / "data" / "fan" / "train").is_dir()  # fan's second attempt succeeded
    assert main(["download", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--retries N attempts per request, the first one included" in help_text


def test_concurrent_run_on_same_file_is_refused(server: FakeRecords, tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    _serve_dev(server, ("fan",))
    lock = tmp_path / "data" / ".downloads" / "dev_fan.zip.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(dl.DownloadError, match="another automl-asd download holds"):
            _run(server, tmp_path / "data", ("fan",))
        fcntl.flock(handle, fcntl.LOCK_UN)
    assert server.file_requests("dev_fan.zip") == []
    assert [r.status for r in _run(server, tmp_path / "data", ("fan",))] == ["downloaded"]


def test_key_missing_from_record(server: FakeRecords, tmp_path: Path) -> None:
    _serve_dev(server, ("fan",))
    with pytest.raises(dl.DownloadError, match="dev_valve.zip: not in record 15097779.*dev_fan"):
        _run(server, tmp_path / "data", ("fan", "valve"))
    assert (tmp_path / "data" / "fan" / "train").is_dir()


def test_free_space_is_checked_before_writing(server: FakeRecords, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _serve_dev(server, ("fan",))

    class Usage:
        free = 100

    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(dl.DownloadError, match="only 0.0 MiB are free"):
        _run(server, tmp_path / "data", ("fan",))
    assert server.file_requests("dev_fan.zip") == []


# ---------------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    "kind", ["dotdot", "nested_dotdot", "inner_dotdot", "absolute", "symlink", "backslash"])
def test_unsafe_archives_are_refused(server: FakeRecords, tmp_path: Path, kind: str) -> None:
    dest = tmp_path / "data"
    outside = tmp_path / "outside_evil.txt"
    members = {"fan/train/section_00_source_train_normal_0000_a_1.wav": _wav_bytes(1)}
    symlinks: dict[str, str] = {}
    if kind == "dotdot":
        members["../outside_evil.txt"] = b"evil"
    elif kind == "nested_dotdot":
        members["fan/../../outside_evil.txt"] = b"evil"
    elif kind == "inner_dotdot":  # stays inside dest, but '..' components are refused outright
        members["fan/../fan/train/sneaky.wav"] = b"evil"
    elif kind == "absolute":
        members[str(outside)] = b"evil"
    elif kind == "symlink":
        symlinks["fan/train/link"] = str(outside)
    else:
        members["fan\\..\\..\\outside_evil.txt"] = b"evil"
    data = _zip(members, symlinks)
    server.files[RECORD_ID] = {"dev_fan.zip": data}
    with pytest.raises(dl.DownloadError, match="refusing to extract anything"):
        _run(server, dest, ("fan",))
    assert not outside.exists()
    assert not (dest / "fan").exists()  # checked before extracting anything
    # The verified zip is kept (a later failure never deletes a verified file) ...
    assert (dest / ".downloads" / "dev_fan.zip").read_bytes() == data
    assert not (dest / ".downloads" / "dev_fan.zip.extracted.json").exists()
    # ... and a second run re-checks it without downloading it again.
    server.requests.clear()
    with pytest.raises(dl.UnsafeArchiveError):
        dl.safe_extract(dest / ".downloads" / "dev_fan.zip", dest, min_free_bytes=0)
    assert server.file_requests("dev_fan.zip") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_zip_without_its_machine_folder_is_an_error(server: FakeRecords, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Found 2026-12-07: a zip without a `<type>/` top folder gave a WARNING, then "1 machine
    types ready" although scan(dest) cannot find the type."""
    members = {k.removeprefix("fan/"): v for k, v in _dev_members("fan").items()}
    data = _zip(members)
    server.files[RECORD_ID] = {"dev_fan.zip": data, "dev_valve.zip": _zip(_dev_members("valve"))}
    dest = tmp_path / "data"
    argv = ["download", "--split", "dev", "--dest", str(dest), "--machine-types", "fan", "valve",
            "--base-url", server.base_url, "--no-progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    zip_path = dest / ".downloads" / "dev_fan.zip"
    assert "1 of 2 files of 2025 dev failed" in captured.err
    problem = (f"{zip_path}: has no fan/ folder (top-level entries: attributes_00.csv, test/, "
               f"train/); nothing was extracted")
    assert problem in captured.err
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and logged[0].startswith(problem)  # said as it happens, and
    assert logged[0].endswith("(going on with the 1 file(s) left; every failure is listed at "
                              "the end)")  # once more in the summary
    assert "ready" not in captured.out
    assert f"ready under {dest}: valve" in captured.err  # what did arrive is said too
    assert sorted(p.name for p in dest.iterdir()) == [".downloads", "valve"]  # nothing stray
    assert zip_path.read_bytes() == data  # verified: kept, and not downloaded again
    server.requests.clear()
    assert main(argv) == 1
    assert "has no fan/ folder" in capsys.readouterr().err
    assert server.file_requests("dev_fan.zip") == []
    # found 2026-12-07: the last (or only) failing file was printed twice, one line apart
    caplog.clear()
    assert main(argv[:-4] + argv[-3:]) == 1  # fan only
    assert problem in capsys.readouterr().err
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def _zip_with_bad_crc(members: dict[str, bytes], bad: str) -> bytes:
    """``_zip(members)`` stored, with one byte of member ``bad`` flipped (its CRC-32 fails)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo(bad)
    raw[info.header_offset + 30 + len(info.filename.encode()) + 100] ^= 0xFF
    return bytes(raw)


@pytest.mark.parametrize("failure", ["bad_crc", "ctrl_c"])
def test_extraction_that_fails_part_way_leaves_no_partial_type(
        server: FakeRecords, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        failure: str) -> None:
    """Found 2026-12-07: a member failing its CRC (or Ctrl-C) part-way through a zip left the
    members before it in `<type>/`, and `info` then showed a machine type with fewer test clips
    as if it were complete. The files the extraction made are removed; an earlier zip's files
    in the same folder (`add` then `eval`) stay."""
    mt = "ToyPet"
    train = {f"{mt}/train/section_00_source_train_normal_0000_a_1.wav": _wav_bytes(1),
             f"{mt}/attributes_00.csv": b"file_name\n"}
    test = {f"{mt}/test/section_00_{i:04d}.wav": _wav_bytes(i) for i in range(4)}
    bad = f"{mt}/test/section_00_0002.wav"
    test_zip = _zip_with_bad_crc(test, bad) if failure == "bad_crc" else _zip(test)
    server.files[dl.find_record(2025, "add").record_id] = {
        f"eval_data_{mt}_train.zip": _zip(train)}
    server.files[dl.find_record(2025, "eval").record_id] = {
        f"eval_data_{mt}_test.zip": test_zip}
    dest = tmp_path / "eval"
    dl.download_dataset(2025, "add", dest, machine_types=[mt], base_url=server.base_url, **FAST)
    before = _tree(dest / mt)
    if failure == "ctrl_c":
        copy = dl.shutil.copyfileobj
        seen: list[int] = []

        def interrupted_copy(src: Any, dst: Any, length: int = 0) -> None:
            seen.append(1)
            if len(seen) == 3:
                raise KeyboardInterrupt
            copy(src, dst, length)

        monkeypatch.setattr(dl.shutil, "copyfileobj", interrupted_copy)
    with pytest.raises(dl.DownloadError if failure == "bad_crc" else KeyboardInterrupt) as exc:
        dl.download_dataset(2025, "eval", dest, machine_types=[mt], base_url=server.base_url,
                            **FAST)
    if failure == "bad_crc":
        assert f"cannot extract {bad!r}" in str(exc.value)
        assert "the files extracted before it were removed" in str(exc.value)
    assert _tree(dest / mt) == before  # no test/ folder, no stray .extracting file
    assert (dest / ".downloads" / f"eval_data_{mt}_test.zip").read_bytes() == test_zip
    if failure == "ctrl_c":  # the rerun extracts the kept zip without downloading it again
        monkeypatch.undo()
        server.requests.clear()
        (r,) = dl.download_dataset(2025, "eval", dest, machine_types=[mt],
                                   base_url=server.base_url, **FAST)
        assert r.status == "extracted" and server.file_requests(f"eval_data_{mt}_test.zip") == []
        assert sorted(_tree(dest / mt)) == sorted(k.split("/", 1)[1] for k in {**train, **test})


def _killed_while_extracting(server: FakeRecords, dest: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Download dev fan into ``dest`` and stop it as ``kill -9`` would while it extracts the
    third member (no clean-up runs)."""
    _serve_dev(server, ("fan",))
    copy = dl.shutil.copyfileobj
    seen: list[int] = []

    def killed_copy(src: Any, dst: Any, length: int = 0) -> None:
        seen.append(1)
        if len(seen) == 4:
            raise SystemExit(137)
        copy(src, dst, length)

    monkeypatch.setattr(dl.shutil, "copyfileobj", killed_copy)
    monkeypatch.setattr(dl, "_remove_created", lambda created: None)  # a killed run cleans nothing
    with pytest.raises(SystemExit):
        _run(server, dest, ("fan",))
    monkeypatch.undo()

def test_a_killed_extraction_leaves_a_folder_that_scan_refuses(
        server: FakeRecords, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: a download killed (kill -9, power loss) while it extracted left a
    part of `fan/`, which `info` and scan() read as a complete machine type with fewer clips.
    The folder holds `.extracting-<zip>` until an extraction finishes; scan() refuses it."""
    from automl_asd.data import DataError, scan

    dest = tmp_path / "data"
    _killed_while_extracting(server, dest, monkeypatch)
    sentinel = dest / "fan" / ".extracting-dev_fan.zip"
    assert sentinel.is_file() and len(list((dest / "fan").rglob("*.wav"))) == 2
    message = (f"{dest / 'fan'}: an interrupted extraction of dev_fan.zip by `automl-asd "
               "download` (its .extracting-dev_fan.zip is still there): run the same download "
               "command again to finish it")
    with pytest.raises(DataError) as exc:
        scan(dest)
    assert str(exc.value) == message
    assert main(["info", "--data", str(dest)]) == 1
    assert capsys.readouterr().err == f"automl-asd info: error: {message}\n"
    (r,) = _run(server, dest, ("fan",))  # the rerun extracts the kept zip again
    assert r.status == "extracted" and not sentinel.exists()
    assert len(scan(dest)["fan"].test) == 4


def test_a_member_half_written_by_a_killed_extraction_does_not_refuse_the_rerun(
        server: FakeRecords, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download killed outright (kill -9) while it wrote a member leaves that member's
    `<name>.extracting` beside the sentinel; the rerun that scan() asks for counted it as a
    file no download put there and refused to extract (found in review, 2026-12-07)."""
    from automl_asd.data import scan

    dest = tmp_path / "data"
    _killed_while_extracting(server, dest, monkeypatch)
    with zipfile.ZipFile(dest / ".downloads" / "dev_fan.zip") as zf:
        unwritten = [n for n in zf.namelist() if not n.endswith("/")
                     and not (dest / n).exists()]
    half = dest / f"{unwritten[0]}.extracting"  # the member kill -9 stopped half-way
    half.write_bytes(b"RIFF")
    (r,) = _run(server, dest, ("fan",))
    assert r.status == "extracted" and not half.exists()
    assert len(scan(dest)["fan"].test) == 4


def test_a_folder_holding_other_clips_is_not_extracted_into(
        server: FakeRecords, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `download --dest` on a `synth` tree extracted the real fan clips into
    the synthetic fan/ folder (its attributes file replaced): one folder, both data sets. Files
    of the zip itself (a hand-unzipped copy, a killed extraction) and of an earlier download's
    zip (add, then eval) are not foreign."""
    zips = _serve_dev(server, ("fan",))
    dest = tmp_path / "data"
    mine = dest / "fan" / "train" / "section_00_source_train_normal_0000_mine.wav"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(_wav_bytes(99))
    (dest / "fan" / ".DS_Store").write_bytes(b"hidden files are not counted")
    argv = ["download", "--split", "dev", "--dest", str(dest), "--machine-types", "fan",
            "--base-url", server.base_url, "--no-progress"]
    assert main(argv) == 1
    assert (f"dev_fan.zip: {dest / 'fan'} already holds 1 file(s) that no download put there "
            "(fan/train/section_00_source_train_normal_0000_mine.wav); extracting would mix "
            "them with this zip's clips. Give another --dest, or move that folder away (the "
            "verified zip is kept: the rerun extracts it without downloading)"
            ) in capsys.readouterr().err
    assert sorted(p.name for p in (dest / "fan").rglob("*") if p.is_file()) == [
        ".DS_Store", mine.name]
    assert (dest / ".downloads" / "dev_fan.zip").read_bytes() == zips["dev_fan.zip"]
    mine.unlink()
    # a part of the zip's own files (unzipped by hand) is no reason to refuse
    with zipfile.ZipFile(dest / ".downloads" / "dev_fan.zip") as zf:
        zf.extract("fan/attributes_00.csv", dest)
    server.requests.clear()
    assert main(argv) == 0 and server.file_requests("dev_fan.zip") == []
    assert "extracted" in capsys.readouterr().out


def test_eval_test_zip_merges_into_machine_folder(server: FakeRecords, tmp_path: Path) -> None:
    mt = "ToyPet"
    train = {f"{mt}/train/section_00_source_train_normal_0000_a_1.wav": _wav_bytes(1),
             f"{mt}/attributes_00.csv": b"file_name\n"}
    test = {f"{mt}/test/section_00_{i:04d}.wav": _wav_bytes(i) for i in range(3)}
    server.files[dl.find_record(2025, "add").record_id] = {
        f"eval_data_{mt}_train.zip": _zip(train)}
    server.files[dl.find_record(2025, "eval").record_id] = {
        f"eval_data_{mt}_test.zip": _zip(test)}
    dest = tmp_path / "eval"
    for split in ("add", "eval"):
        dl.download_dataset(2025, split, dest, machine_types=[mt], base_url=server.base_url,
                            **FAST)
    assert sorted(_tree(dest / mt)) == sorted(k.split("/", 1)[1] for k in {**train, **test})
    server.requests.clear()
    (r,) = dl.download_dataset(2025, "add", dest, machine_types=[mt], base_url=server.base_url,
                               **FAST)
    assert r.status == "verified" and server.requests == []


def test_another_years_zip_of_the_same_name_is_refused(server: FakeRecords, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    """Found 2026-12-07: `download --year 2025 --split dev` then `--year 2024 --split dev`
    into one --dest deleted the verified 2025 dev_fan.zip ("md5 ..., downloading it again")
    and extracted 2024's fan clips beside 2025's: one fan/ folder with both years' data. The
    same file in two records is not refused."""
    _serve_dev(server, ("fan",))
    old = dl.find_record(2024, "dev").record_id
    members_2024 = {k.replace("_a_", "_b_"): v for k, v in _dev_members("fan").items()}
    server.files[old] = {"dev_fan.zip": _zip(members_2024)}
    dest = tmp_path / "data"
    _run(server, dest, ("fan",))
    before = _tree(dest)
    argv = ["download", "--year", "2024", "--split", "dev", "--dest", str(dest),
            "--machine-types", "fan", "--base-url", server.base_url, "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert (f"dev_fan.zip: {dest / 'fan'} holds 2025 dev (record {RECORD_ID})'s dev_fan.zip; "
            f"2024 dev (record {old}) has another file of that name: its clips would mix with "
            f"those in {dest / 'fan'}, and the kept zip would be replaced. Give this download "
            "another --dest (and --zip-dir, if you set one)") in err
    assert server.file_requests("dev_fan.zip") == [None]  # 2025's only
    assert {k: v for k, v in _tree(dest).items() if "record_" not in k} == {
        k: v for k, v in before.items() if "record_" not in k}
    # a record whose zip of that name is the same file (md5) just verifies
    server.files[dl.find_record(2023, "dev").record_id] = dict(server.files[RECORD_ID])
    assert main([argv[0], argv[1], "2023", *argv[3:]]) == 0
    assert "verified" in capsys.readouterr().out
    # its own --dest is fine, and once the 2025 files are gone the folder can take 2024's
    assert main([*argv[:6], str(tmp_path / "dev2024"), *argv[7:]]) == 0
    shutil.rmtree(dest / "fan")
    (dest / ".downloads" / "dev_fan.zip").unlink()
    assert main(argv) == 0
    assert sorted(p.name for p in (dest / "fan" / "train").iterdir()) == sorted(
        k.rsplit("/", 1)[1] for k in members_2024 if "/train/" in k)


def test_cli_download_end_to_end(server: FakeRecords, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _serve_dev(server, ("fan",))
    dest = tmp_path / "data"
    argv = ["download", "--year", "2025", "--split", "dev", "--dest", str(dest),
            "--machine-types", "fan", "--base-url", server.base_url, "--no-progress"]
    assert main(argv) == 0
    assert "downloaded" in capsys.readouterr().out
    assert main(argv) == 0
    assert "verified" in capsys.readouterr().out
    server.md5_override["dev_fan.zip"] = "1" * 32
    (dest / ".downloads" / "dev_fan.zip").unlink()
    assert main([*argv, "--refresh-metadata"]) == 1
    assert "md5" in capsys.readouterr().err
    assert main(["download", "--split", "dev", "--dest", str(dest), "--machine-types",
                 "ToyPet", "--base-url", server.base_url]) == 1


def test_repeated_machine_type_is_fetched_once(server: FakeRecords, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Found 2026-12-07: `--machine-types fan fan` processed fan twice and printed
    "2 machine types ready"."""
    _serve_dev(server)
    results = _run(server, tmp_path / "data", ("valve", "fan", "valve"))
    assert [r.machine_type for r in results] == ["valve", "fan"]
    assert len(server.file_requests("dev_valve.zip")) == 1
    assert main(["download", "--split", "dev", "--dest", str(tmp_path / "data"),
                 "--machine-types", "fan", "fan", "--base-url", server.base_url,
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("dev_fan.zip") == 1 and "1 machine types ready" in out


@pytest.mark.parametrize(("where", "message"), [
    ("dest", "--dest {dest}: exists and is not a folder; give a folder path"),
    ("dest_parent", "--dest {dest}: {file} is a file, not a folder; give a folder path"),
    ("zip_dir", "the downloads folder {dest}/.downloads: exists and is not a folder; move it "
                "away or give --zip-dir"),
    ("zip_dir_option", "--zip-dir {file}/z: {file} is a file, not a folder; give a folder "
                       "path"),
])
def test_dest_that_is_a_file_is_one_line_naming_the_option(
        server: FakeRecords, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        where: str, message: str) -> None:
    """Found 2026-12-07: `download --dest FILE` said "[Errno 17] File exists: ...", a file as
    a parent "[Errno 20] Not a directory", naming neither the option nor what was wrong."""
    _serve_dev(server, ("fan",))
    file = tmp_path / "afile"
    file.write_text("keep me")
    dest = {"dest": file, "dest_parent": file / "data"}.get(where, tmp_path / "data")
    argv = ["download", "--split", "dev", "--dest", str(dest), "--machine-types", "fan",
            "--base-url", server.base_url, "--no-progress"]
    if where == "zip_dir":
        dest.mkdir()
        (dest / ".downloads").write_text("not a folder")
    if where == "zip_dir_option":
        argv += ["--zip-dir", str(file / "z")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"automl-asd download: error: {message.format(dest=dest, file=file)}\n"
    assert server.requests == [] and file.read_text() == "keep me"
    assert not (tmp_path / "data" / "fan").exists()


def test_scan_reads_downloaded_tree(server: FakeRecords, tmp_path: Path) -> None:
    from automl_asd.data import Domain, Label, scan

    _serve_dev(server)
    dest = tmp_path / "data"
    _run(server, dest)
    machines = scan(dest)
    assert sorted(machines) == ["fan", "valve"]
    assert len(machines["fan"].train) == 3 and len(machines["fan"].test) == 4
    assert {(c.domain, c.label) for c in machines["valve"].test} == {
        (d, lab) for d in (Domain.SOURCE, Domain.TARGET) for lab in (Label.NORMAL, Label.ANOMALY)}


def test_a_disk_that_fills_during_a_download_fails_that_file_naming_it(
        server: FakeRecords, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found on a real full tmpfs (2026-12-07): a disk that filled while a zip was written (the
    record understated its size, or another program wrote there) ended the whole download with
    a bare `[Errno 28] No space left on device`, naming no file and trying no other file. Now
    that file fails naming its .part, the others are tried, and the next run resumes it."""
    import errno

    from automl_asd.errors import one_line

    zips = _serve_dev(server)
    real_open = Path.open

    class Full:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            self.fh.write(data[:100])  # what fitted
            raise OSError(errno.ENOSPC, "No space left on device")

    def fills(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(self, mode, *args, **kwargs)
        return Full(fh) if self.name == "dev_fan.zip.part" else fh

    monkeypatch.setattr(Path, "open", fills)
    with pytest.raises(dl.DownloadError) as exc:
        _run(server, tmp_path / "data")
    part = tmp_path / "data" / ".downloads" / "dev_fan.zip.part"
    assert f"downloading dev_fan.zip: {part}: no space left on the device" in one_line(exc.value)
    assert "ready under" in str(exc.value) and (tmp_path / "data" / "valve").is_dir()
    assert 0 < part.stat().st_size < len(zips["dev_fan.zip"])
    monkeypatch.undo()  # space freed
    results = _run(server, tmp_path / "data")
    assert [r.status for r in results if r.machine_type == "fan"] == ["resumed"]


def test_a_disk_that_fills_while_extracting_names_the_member_s_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found on a real full tmpfs probe (2026-12-07): an extraction that ran out of disk said
    `cannot extract 'fan/...wav': [Errno 28] No space left on device`, not the CLI's words."""
    import errno

    archive = tmp_path / "dev_fan.zip"
    archive.write_bytes(_zip(_dev_members("fan")))

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dl.shutil, "copyfileobj", full)
    dest = tmp_path / "data"
    with pytest.raises(dl.DownloadError) as exc:
        dl.safe_extract(archive, dest, min_free_bytes=0)
    assert f": {dest / 'fan'}/" in str(exc.value)
    assert "no space left on the device; free space or write elsewhere" in str(exc.value)
    assert not [p for p in dest.rglob("*") if p.is_file()]
