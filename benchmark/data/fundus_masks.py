"""The fundus datasets' ground truths, decoded as the authors' loaders decode them (the entries,
with their sources, are in ``benchmark.data.fundus``; docs/FIDELITY.md#sam2lora-data).

Masks (every encoding ends as a boolean (H, W) at the image's size):
- ``threshold``: each file read as 8-bit grey and binarised at (max + min) / 2, strictly above
  (datautils.py:96-100), then the union over the files (the graders: chasedb.py:61-67,
  stare.py:65-69, drive.py:69-77). DRISHTI-GS's OD soft map is binarised the same way
  (drishtigs.py:67-69).
- ``labelme``: the polygon whose ``label`` is ``label``, filled with its outline by PIL on a canvas
  of the image's size (g1020.py:67-69, grape.py:71-73; labels datautils.py:335, grape.py:107).
  Several polygons with that label: the last one, as their dict keeps it.
- ``origa_mat``: ``scipy.io.loadmat(f)["mask"]``, 1 = rim, 2 = cup, disc = rim or cup; a mask wider
  than the image loses (width difference) // 2 columns on each side, a taller one its bottom rows
  (origa.py:66-79).
- ``contour``: expert contours, one ``x y`` pair per line (``np.loadtxt``), each filled at pixel
  centres (even-odd rule, the test of ``skimage.draw.polygon``) and the experts united
  (papiladb.py:12-17, 85-87).
- ``refuge``: one grey map, 0 = cup, 128 = rim, 255 = background; disc = 0 or 128
  (refuge2.py:70-74).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw

from benchmark.data.fundus import FUNDUS_DATASETS, FundusDataset


class MaskError(ValueError):
    """A ground-truth file that cannot be turned into a mask (message names what is wrong)."""


def binarise(grey: np.ndarray) -> np.ndarray:
    """datautils.py:96-100: foreground = value > (max + min) / 2."""
    grey = grey.astype(np.float32)
    return grey > (float(grey.max()) + float(grey.min())) / 2


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def _threshold(entry: FundusDataset, files: tuple[Path, ...], hw: tuple[int, int]) -> np.ndarray:
    masks = [binarise(_grey(f)) for f in files]
    for f, m in zip(files, masks, strict=True):
        if m.shape != masks[0].shape:
            raise MaskError(f"{f.name}: size {m.shape[0]}x{m.shape[1]} differs from {files[0].name}'s")
    return np.logical_or.reduce(masks)


def _labelme(entry: FundusDataset, files: tuple[Path, ...], hw: tuple[int, int]) -> np.ndarray:
    try:
        shapes = json.loads(files[0].read_text(encoding="utf-8"))["shapes"]
        points = [s["points"] for s in shapes if s.get("label") == entry.label]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MaskError(f"not a labelme file ({type(exc).__name__}: {exc})") from None
    if not points:
        raise MaskError(f"no polygon labelled {entry.label!r}")
    canvas = Image.new("L", (hw[1], hw[0]), 0)
    ImageDraw.Draw(canvas).polygon([tuple(map(float, p)) for p in points[-1]], outline=1, fill=1)
    return np.asarray(canvas) > 0


def _origa_mat(entry: FundusDataset, files: tuple[Path, ...], hw: tuple[int, int]) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mask = np.asarray(loadmat(files[0])["mask"])
    except (OSError, ValueError, KeyError, NotImplementedError, TypeError) as exc:
        raise MaskError(f"no 'mask' in the .mat file ({type(exc).__name__}: {exc})") from None
    bad = np.setdiff1d(np.unique(mask), (0, 1, 2))
    if mask.ndim != 2 or bad.size:
        raise MaskError(f"expected a 2-D map of 0, 1 (rim), 2 (cup); got shape {mask.shape}, values {bad[:8].tolist()}")
    cut = (mask.shape[1] - hw[1]) // 2
    if cut > 0:  # origa.py:70-73; a narrower mask is left for the size check to report
        mask = mask[:, cut : mask.shape[1] - cut]
    return (mask[: hw[0]] == 1) | (mask[: hw[0]] == 2)


def fill_polygon(xs: np.ndarray, ys: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Pixels (row r, column c) whose centre (c, r) is inside the polygon, by the even-odd rule
    with ``skimage.draw.polygon``'s test (a vertex counts for the edge it starts)."""
    out = np.zeros(hw, bool)
    r0, r1 = max(0, math.floor(ys.min())), min(hw[0] - 1, math.ceil(ys.max()))
    c0, c1 = max(0, math.floor(xs.min())), min(hw[1] - 1, math.ceil(xs.max()))
    if r0 > r1 or c0 > c1:
        return out
    rows, cols = np.mgrid[r0 : r1 + 1, c0 : c1 + 1].astype(np.float64)  # the bounding box only
    inside = np.zeros(rows.shape, bool)
    for xi, yi, xj, yj in zip(xs, ys, np.roll(xs, 1), np.roll(ys, 1), strict=True):
        if yi == yj:
            continue
        crosses = (yi <= rows) & (rows < yj) | (yj <= rows) & (rows < yi)
        inside ^= crosses & (cols < (xj - xi) * (rows - yi) / (yj - yi) + xi)
    out[r0 : r1 + 1, c0 : c1 + 1] = inside
    return out


def _contour(entry: FundusDataset, files: tuple[Path, ...], hw: tuple[int, int]) -> np.ndarray:
    out = np.zeros(hw, bool)
    for f in files:
        try:
            c = np.loadtxt(f, ndmin=2)
        except (OSError, ValueError) as exc:
            raise MaskError(f"{f.name}: not an 'x y' contour ({exc})") from None
        if c.shape[0] < 3 or c.shape[1] < 2:
            raise MaskError(f"{f.name}: a contour needs at least 3 points of 2 coordinates, got shape {c.shape}")
        out |= fill_polygon(c[:, 0], c[:, 1], hw)  # papiladb.py:15: rows from column 1, columns from column 0
    return out


def _refuge(entry: FundusDataset, files: tuple[Path, ...], hw: tuple[int, int]) -> np.ndarray:
    grey = _grey(files[0])
    bad = np.setdiff1d(np.unique(grey), (0, 128, 255))
    if bad.size:
        raise MaskError(f"values outside 0 (cup), 128 (rim), 255 (background): {bad[:8].tolist()}")
    return (grey == 0) | (grey == 128)


DECODERS: Mapping[str, Callable[[FundusDataset, tuple[Path, ...], tuple[int, int]], np.ndarray]] = MappingProxyType({
    "threshold": _threshold, "labelme": _labelme, "origa_mat": _origa_mat, "contour": _contour, "refuge": _refuge,
})


def image_hw(path: Path) -> tuple[int, int]:
    """(H, W) from the header, without decoding the pixels."""
    with Image.open(path) as im:
        return im.height, im.width


def decode_mask(dataset: str, image: Path, masks: tuple[Path, ...], hw: tuple[int, int] | None = None
                ) -> np.ndarray:
    """The boolean ground truth of one image of ``dataset`` from its files ``masks``; ``MaskError``
    (or PIL's errors) when it cannot be read. ``hw``: the image's size if already known (the
    canvas of the drawn encodings, ORIGA's crop)."""
    entry = FUNDUS_DATASETS[dataset]
    return DECODERS[entry.encoding](entry, masks, hw or image_hw(image))
