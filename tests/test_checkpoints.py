"""Checkpoint download from a loopback HTTP server, verification, and removal of a bad file."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.model.backbones import build_sam


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep stderr for the CLI's own message
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_and_verify_a_checkpoint(server, tmp_path) -> None:
    root, url = server
    torch.manual_seed(0)
    sam = build_sam("sam_tiny")
    torch.save(sam.state_dict(), root / "tiny.pth")
    dest = tmp_path / "weights"
    args = ["checkpoint", "download", "--backbone", "sam_tiny", "--file", "tiny.pth", "--base-url", url,
            "--dir", str(dest), "--no-progress"]
    assert main(args) == 0
    loaded = build_sam("sam_tiny", checkpoint=dest / "tiny.pth")
    assert torch.equal(loaded.image_encoder.pos_embed, sam.image_encoder.pos_embed)
    (root / "tiny.pth").unlink()  # present and verified: not fetched again
    assert main(args) == 0
    assert main(["checkpoint", "verify", str(dest / "tiny.pth"), "--backbone", "sam_tiny"]) == 0


def test_wrong_checkpoint_is_reported_and_removed(server, tmp_path, capsys) -> None:
    root, url = server
    torch.save(build_sam("sam_tiny").state_dict(), root / "sam_vit_b_01ec64.pth")
    dest = tmp_path / "weights"
    code = main(["checkpoint", "download", "--backbone", "sam_vit_b", "--base-url", url, "--dir", str(dest),
                 "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "does not match sam_vit_b" in err and "removed" in err
    assert not any(Path(dest).iterdir())


def test_missing_file_on_server_is_one_line(server, tmp_path, capsys) -> None:
    _, url = server
    code = main(["checkpoint", "download", "--backbone", "sam_vit_b", "--base-url", url, "--dir",
                 str(tmp_path / "w"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sam_vit_b_01ec64.pth" in err[0]
