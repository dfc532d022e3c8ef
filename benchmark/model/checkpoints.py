"""``sam-peft-bench checkpoint download|verify``: SAM weights from Meta's public site, checked on arrival.

The download resumes a partial file (HTTP Range) and renames the finished file into place
(``benchmark.data.download.download_file``). Verification loads the file with ``weights_only=True``
against the backbone's architecture with strict keys and shapes, on the ``meta`` device (no
memory for the weights themselves). A file that fails is removed and reported, so a directory
only ever holds verified checkpoints. Whether the hex suffix of the official names
(``sam_vit_h_4b8939.pth``) is a hash prefix is not established, so we do not check it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urljoin

from benchmark.core.digest import sha256_file
from benchmark.core.errors import BenchError
from benchmark.model.backbones import BACKBONES, build_sam, load_checkpoint


def verify_checkpoint(path: str | Path, backbone: str) -> None:
    """Raise a one-line BenchError unless ``path`` loads strictly into ``backbone``."""
    load_checkpoint(build_sam(backbone, device="meta"), path, backbone=backbone)


def checkpoint_provenance(path: str | Path, *, progress: bool = False) -> dict:
    """``{"path", "sha256", "bytes"}`` of the checkpoint file a run starts from (``path`` absolute).

    Reads the whole file (2.5 GB for ViT-H): the runner asks once per grid, not once per run.
    """
    path = Path(path)
    return {"path": str(path.absolute()), "sha256": sha256_file(path, progress=progress),
            "bytes": path.stat().st_size}


def download_checkpoint(
    backbone: str, directory: str | Path, *, base_url: str | None = None,
    file: str | None = None, progress: bool = True,
) -> Path:
    """Fetch ``backbone``'s official checkpoint into ``directory`` (skipped when a verified copy is there)."""
    from benchmark.data.download import download_file

    spec = BACKBONES.get(backbone)
    name = file or spec.checkpoint_file
    if name is None:
        raise BenchError(f"backbone {backbone} has no official checkpoint; pass --file NAME")
    dest = Path(directory) / name
    if dest.exists():
        verify_checkpoint(dest, backbone)
        print(f"{dest} present and verified", file=sys.stderr)
        return dest
    base_url = base_url or spec.checkpoint_base_url
    download_file(urljoin(base_url.rstrip("/") + "/", name), dest, progress=progress)
    try:
        verify_checkpoint(dest, backbone)
    except BenchError as exc:
        dest.unlink(missing_ok=True)
        raise BenchError(f"{exc} (downloaded file removed)") from None
    print(f"{dest} downloaded and verified against {backbone}", file=sys.stderr)
    return dest


def _cmd_download(args: argparse.Namespace) -> int:
    download_checkpoint(args.backbone, args.dir, base_url=args.base_url, file=args.file,
                        progress=not args.no_progress)
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    verify_checkpoint(args.path, args.backbone)
    print(f"{args.path}: loads strictly into {args.backbone}")
    return 0


def add_commands(subparsers) -> None:
    ckpt = subparsers.add_parser("checkpoint", help="download or verify SAM checkpoints")
    sub = ckpt.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    p = sub.add_parser("download", help="fetch a backbone's official checkpoint and verify it")
    p.add_argument("--backbone", default="sam_vit_h")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--base-url", default=None, help="default: Meta's public folder for the backbone's family")
    p.add_argument("--file", default=None, help="file name under the base URL (default: the official one)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_download)
    p = sub.add_parser("verify", help="check that a file loads strictly into a backbone")
    p.add_argument("path", type=Path)
    p.add_argument("--backbone", default="sam_vit_h")
    p.set_defaults(func=_cmd_verify)
