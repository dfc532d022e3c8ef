"""Downloads against an HTTP server on 127.0.0.1 with Range support and injectable faults."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark import cli
from benchmark.core.errors import BenchError
from benchmark.data.checks import check_domain
from benchmark.data.datasets import SYNTHETIC_MARKER, is_synthetic
from benchmark.data.download import archive_url, download_domain, download_file
from benchmark.data.synth import synth_domain


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_after: dict[str, int] = {}  # path -> bytes to send before dropping, once
        self.honour_range = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and srv.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.drop_after.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])  # then the connection closes (HTTP/1.0)


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _zip_domain(key: str, tmp: Path) -> bytes:
    """An archive shaped like the official one: its top folder is <archive>/."""
    src = synth_domain(key, tmp / "src", n=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file() and p.name != SYNTHETIC_MARKER:
                zf.write(p, p.relative_to(src).as_posix())
    return buf.getvalue()


PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def test_download_file_plain(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    dest = download_file(server.url + "/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()
    download_file(server.url + "/f.bin", dest, progress=False)  # present: no second request
    assert len(server.requests) == 1


def test_download_file_resumes_after_a_dropped_connection(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.drop_after["/f.bin"] = 30_000
    dest, part = tmp_path / "f.bin", tmp_path / "f.bin.part"
    with pytest.raises(BenchError, match="partial file kept") as err:
        download_file(server.url + "/f.bin", dest, progress=False)
    assert "30000 of 102400" in str(err.value)
    assert not dest.exists() and part.read_bytes() == PAYLOAD[:30_000]
    download_file(server.url + "/f.bin", dest, progress=False)
    assert server.requests == [("/f.bin", None), ("/f.bin", "bytes=30000-")]
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_download_file_restarts_when_the_server_ignores_range(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    server.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"x" * 500)
    dest = download_file(server.url + "/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_download_file_finishes_a_complete_part(server, tmp_path):
    server.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)  # complete, but never renamed
    dest = download_file(server.url + "/f.bin", tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD and server.requests == [("/f.bin", f"bytes={len(PAYLOAD)}-")]


def test_download_file_errors(server, tmp_path):
    with pytest.raises(BenchError, match="HTTP 404"):
        download_file(server.url + "/missing.bin", tmp_path / "m.bin", progress=False)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(BenchError, match=f"127.0.0.1:{port}/x.bin failed"):
        download_file(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", progress=False, timeout=5)
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "x.bin").exists()


def test_archive_urls():
    base = "https://automl-mm-bench.s3.amazonaws.com/semantic_segmentation/"
    assert archive_url("camo") == base + "camo_sem_seg.zip"
    assert archive_url("trans10k") == "https://automl-mm-bench.s3.amazonaws.com/unit-tests/tiny_trans10kcls12.zip"
    assert archive_url("sbu", "http://h:1/x") == "http://h:1/x/SBU-shadow.zip"


@pytest.mark.parametrize("key, path", [("polyp", "/semantic_segmentation/polyp.zip"),
                                       ("trans10k", "/unit-tests/tiny_trans10kcls12.zip")])
def test_download_domain_unpacks_and_is_idempotent(server, tmp_path, key, path):
    server.files[path] = _zip_domain(key, tmp_path)
    root = tmp_path / "DATA"
    base = server.url + "/semantic_segmentation/"
    found = download_domain(key, root, base_url=base, progress=False)
    assert found.parent.parent == root and found.name == found.parent.name
    summaries, problems = check_domain(key, root)
    assert problems == [] and summaries[0].count == 2
    assert sorted(p.name for p in root.iterdir()) == [found.parent.name]  # no zip, no temp folders
    assert download_domain(key, root, base_url=base, progress=False) == found
    assert len(server.requests) == 1


def test_download_replaces_a_synthetic_copy(server, tmp_path):
    server.files["/sbu/SBU-shadow.zip"] = _zip_domain("sbu", tmp_path)
    root = tmp_path / "DATA"
    synth_domain("sbu", root, n=5)
    assert is_synthetic("sbu", root)
    download_domain("sbu", root, base_url=server.url + "/sbu", progress=False)
    assert not is_synthetic("sbu", root)
    assert [s.count for s in check_domain("sbu", root)[0]] == [2, 2, 2]


def test_corrupt_archive_is_reported_and_not_unpacked(server, tmp_path):
    data = bytearray(_zip_domain("road", tmp_path))
    i = data.index(b"image,label")  # inside the stored train.csv member: breaks its CRC
    data[i] ^= 0xFF
    server.files["/road_segmentation.zip"] = bytes(data)
    root = tmp_path / "DATA"
    with pytest.raises(BenchError, match="corrupt archive .*fails its CRC check; not unpacked"):
        download_domain("road", root, base_url=server.url, progress=False)
    assert list(root.iterdir()) == []
    server.files["/road_segmentation.zip"] = b"not a zip at all"
    with pytest.raises(BenchError, match="corrupt archive"):
        download_domain("road", root, base_url=server.url, progress=False)
    assert list(root.iterdir()) == []


def test_cli_download_exit_codes(server, tmp_path, capsys):
    server.files["/leaf_disease_segmentation.zip"] = _zip_domain("leaf", tmp_path)
    args = ["data", "download", "--root", str(tmp_path / "DATA"), "--base-url", server.url, "--no-progress"]
    assert cli.main([*args, "--domain", "leaf"]) == 0
    assert cli.main(["data", "check", "--domain", "leaf", "--root", str(tmp_path / "DATA")]) == 0
    assert cli.main([*args, "--domain", "camo"]) == 2  # not on the server
    assert "error: download of" in capsys.readouterr().err
