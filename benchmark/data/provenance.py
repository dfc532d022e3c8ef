"""Where a run's data came from, as far as the files can tell: its kind, its folder, a fingerprint per split.

Kinds (:func:`data_kind`):

- ``synthetic``: written by ``data synth`` (its marker, :func:`~benchmark.data.datasets.is_synthetic`).
- ``official``: not synthetic, and the copy has the shape of the unpacked official archive: every
  split the domain declares is there under its declared name and lists cleanly (CSV files with
  ``image,label`` columns, or ``images``/``masks_12`` folders whose files pair up), and every file
  the splits reference lies inside the domain folder, as in the archive.
- ``custom``: anything else a data root can hold that still resolves: a declared split missing or
  not listing cleanly, or split files that reference images or masks outside the domain folder.

``official`` is a statement about the shape, not a proof of origin: we can show that the copy is
not ours and is laid out as the official archive is, not that its files are the published
release. Other data arranged in the same layout reads ``official`` too, and so does the public
tiny Trans10K sample (``tiny_trans10kcls12``), which is not the paper's full Trans10K-v2. The
fingerprints below are what lets a reader tell two such copies apart.

Fingerprint of a split: ``files``, the number of distinct image and mask files it references, and
``sha256``, the SHA-256 of their paths relative to the domain folder (POSIX separators, sorted, each
followed by a newline). It hashes names, not contents, so it costs a listing, not a read of every
image, and a copy moved to another folder keeps its fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from benchmark.data.datasets import is_synthetic, resolve_domain_root, scan_split
from benchmark.data.domains import Domain, get_domain

DataKind = Literal["official", "synthetic", "custom"]


def _relative(path: Path, folder: Path) -> str:
    # Lexical, not resolve(): a data folder symlinked from scratch space must not read as "outside".
    return Path(os.path.relpath(os.path.normpath(path.absolute()), folder.absolute())).as_posix()


def _is_inside(rel: str) -> bool:
    return rel != ".." and not rel.startswith("../")


def split_files(domain: Domain, droot: Path, split: str) -> tuple[list[str], bool]:
    """The sorted distinct image and mask paths ``split`` references, relative to ``droot``, and
    whether it listed without problems."""
    samples, problems = scan_split(domain, droot, split)
    rels = {_relative(p, droot) for s in samples for p in (s.image, s.mask)}
    return sorted(rels), not problems


def fingerprint(paths: list[str]) -> str:
    """SHA-256 of sorted relative paths, one per line (module docstring)."""
    return hashlib.sha256("".join(f"{p}\n" for p in sorted(paths)).encode("utf-8")).hexdigest()


def data_kind(synthetic: bool, listed_cleanly: bool, paths: list[str]) -> DataKind:
    """The kind rule of the module docstring, from what the listing found."""
    if synthetic:
        return "synthetic"
    if listed_cleanly and all(_is_inside(p) for p in paths):
        return "official"
    return "custom"


def data_provenance(domain: str | Domain, data_root: str | Path) -> dict:
    """``{"kind", "root", "splits": {split: {"files", "sha256"}}}`` for ``domain`` under ``data_root``.

    ``root`` is the absolute domain folder the runs read. Raises ``BenchError`` when the domain
    folder cannot be found (the grid checks that before any run).
    """
    domain = get_domain(domain)
    droot = resolve_domain_root(domain, data_root)
    splits, clean, every = {}, True, []
    for split in domain.splits:
        paths, ok = split_files(domain, droot, split)
        splits[split] = {"files": len(paths), "sha256": fingerprint(paths)}
        clean, every = clean and ok, every + paths
    kind = data_kind(is_synthetic(domain, data_root), clean, every)
    return {"kind": kind, "root": str(droot.absolute()), "splits": splits}
