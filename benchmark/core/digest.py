"""SHA-256 of a file read in chunks, with a progress bar: the one way the suite fingerprints a file.

A SAM ViT-H checkpoint is 2.5 GB: it is streamed, never read whole into memory, and the bar (on
stderr) says why a grid pauses before its first run.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from tqdm import tqdm

_CHUNK = 8 << 20


def sha256_file(path: str | Path, *, progress: bool = False) -> str:
    """Hex SHA-256 of the file at ``path``."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, file=sys.stderr,
                                     desc=f"sha256 {path.name}", disable=not progress, leave=False) as bar:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()
