"""Atomic writes: the one mechanism by which the suite puts a file or a folder in place.

A file is written to ``.<name>.<pid>.tmp`` beside its target, flushed to disk and renamed over it,
so a reader (or a resumed grid) sees the old file or the new one, never a partial one; a process
killed mid-write leaves only a temporary that :func:`remove_stale_temporaries` clears. A folder is
built in a temporary sibling and swapped in by :func:`replace_folder`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on failure it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """JSON with an indent of 2 and a final newline; NaN and infinities are refused (not JSON)."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_torch_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through a buffer: saved to a file, the zip's root folder is named after the
    file (here a temporary holding a pid); from a buffer it is "archive", so equal objects give
    equal bytes whichever process wrote them."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete ``.<name>.<pid>.tmp`` files under ``folder`` whose writer (that pid) is gone."""
    folder = Path(folder)
    for tmp in folder.rglob(".*.tmp") if folder.is_dir() else ():
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            tmp.unlink(missing_ok=True)


def replace_folder(built: Path, target: Path) -> None:
    """Swap the folder ``built`` (a sibling of ``target``) into place, replacing any old ``target``."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "x")
        os.replace(built, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(built, target)
