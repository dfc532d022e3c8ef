"""Synthetic stand-ins for every domain, in exactly the layout its data has on disk.

For each domain ``synth_domain`` writes ``<out>/<archive>/<archive>/`` with the same CSV names and
``image,label`` columns (or the Trans10K ``<split>/images`` + ``masks_12`` folders), JPEG images and
PNG masks (0/255 for binary domains, class ids for Trans10K). Images are small (48..160 px a side,
height and width drawn separately) so that tests and smoke grids can train on them; their content
imitates the domain (polyps: bright blobs on mucosa texture; roads: thin connected lines; ...).

Split sizes: ``n`` training images; the validation set and every test set get ``max(2, n // 2)``.
Deterministic for a seed (numpy ``Generator`` seeded by the seed and the domain key). The domain is
written into a hidden temporary folder and renamed into place, so an interrupted run leaves no
half folder that looks complete; a ``.synthetic`` marker beside the layout says it is synthetic, and
only a synthetic copy is ever replaced.

Fundus domains: each dataset is written into ``<out>/Fundus/<folder>`` in its own public layout
and formats (tif, gif, ppm, jpg, png, bmp, ``.mat``, labelme json, contour txt, soft maps), from
the facts of ``benchmark.data.fundus.FUNDUS_DATASETS``, one atomic folder and marker per dataset,
so the two fundus domains share ``Fundus/`` as the real datasets do. :func:`fundus_files` images per
dataset (official splits: a third of them, at least one, in the test folder); the painter draws
the optic disc, cup and vessels at once, the second grader or expert differs slightly so that
unions matter.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.errors import BenchError
from benchmark.core.io import replace_folder
from benchmark.data.datasets import SYNTHETIC_MARKER
from benchmark.data.domains import Domain, get_domain
from benchmark.data.painters import MAX_SIDE, MIN_SIDE, PAINTERS
from benchmark.data.synth_fundus import _fundus_split_counts, _synth_fundus

# ---------------------------------------------------------------------------------------- writing


def split_counts(domain: Domain, n: int) -> dict[str, int]:
    """Images per split: ``n`` for train, ``max(2, n // 2)`` for val and each test set; fundus: what
    the dataset splits make of :func:`fundus_files` images per dataset."""
    if domain.layout == "fundus":
        return _fundus_split_counts(domain, n)
    small = max(2, n // 2)
    return {split: (n if split == "train" else small) for split in domain.splits}


def _domain_rng(domain: Domain, seed: int) -> np.random.Generator:
    # crc32, not hash(): str hashes are salted per process and would break reproducibility.
    return np.random.default_rng([seed, zlib.crc32(domain.key.encode())])


def _write_pair(img: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, mode="RGB").save(image_path, quality=92)
    Image.fromarray(mask, mode="L").save(mask_path)


def _write_layout(domain: Domain, droot: Path, n: int, rng: np.random.Generator) -> None:
    paint = PAINTERS.get(domain.painter)
    counter = 0
    for split, count in split_counts(domain, n).items():
        source = domain.split_source(split)
        rows = []
        for _ in range(count):
            counter += 1
            h, w = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
            if h == w:  # keep every image non-square, as the real photographs are
                w = w - 1 if w > MIN_SIDE else w + 1
            img, mask = paint(rng, h, w, domain.num_classes)
            if domain.layout == "csv":
                folder = Path(source).stem  # e.g. "test_CVC-ClinicDB"
                image_rel = f"{folder}/images/{counter:04d}.jpg"
                label_rel = f"{folder}/masks/{counter:04d}.png"
                rows.append((image_rel, label_rel))
            else:  # Trans10K names: <id>.jpg with <id>_mask.png
                image_rel = f"{source}/images/{counter}.jpg"
                label_rel = f"{source}/masks_12/{counter}_mask.png"
            _write_pair(img, mask, droot / image_rel, droot / label_rel)
        if domain.layout == "csv":
            with (droot / source).open("w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["image", "label"])
                writer.writerows(rows)


def synth_domain(domain: str | Domain, out: str | Path, *, n: int = 8, seed: int = 0) -> Path:
    """Write a synthetic ``<out>/<archive>`` for ``domain``; returns that folder.

    Replaces an earlier synthetic copy; refuses (``BenchError``) to overwrite any other data.
    """
    domain = get_domain(domain)
    if n < 1:
        raise BenchError(f"--n must be at least 1, got {n}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if domain.layout == "fundus":
        return _synth_fundus(domain, out, n, seed)
    target = out / domain.archive
    if target.exists() and not (target / SYNTHETIC_MARKER).exists():
        raise BenchError(f"{target} exists and is not synthetic; refusing to overwrite it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{domain.archive}.synth-", dir=out))
    try:
        _write_layout(domain, tmp / domain.archive, n, _domain_rng(domain, seed))
        (tmp / SYNTHETIC_MARKER).write_text(json.dumps({"domain": domain.key, "n": n, "seed": seed}) + "\n")
        replace_folder(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


