"""Synthetic fundus datasets: each of the eleven written in its own public layout and formats.

Every dataset in its own public layout and formats, from the facts of ``fundus.FUNDUS_DATASETS``
(where files go, which encodings they hold), so that every reader is exercised. What is only
synthetic (file names, how the second grader differs) lives here.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.errors import BenchError
from benchmark.core.io import replace_folder
from benchmark.data import fundus
from benchmark.data.datasets import SYNTHETIC_MARKER
from benchmark.data.domains import Domain
from benchmark.data.painters import FUNDUS_CUP, FUNDUS_DISC, FUNDUS_VESSEL, MAX_SIDE, MIN_SIDE, paint_fundus

_NAMES: dict[str, Callable[[str, int], str]] = {  # (split, index) -> image stem, imitating each dataset
    "chasedb1": lambda split, i: f"Image_{i // 2 + 1:02d}{'LR'[i % 2]}",
    "drive": lambda split, i: f"{i + 21:02d}_training" if split == "train" else f"{i + 1:02d}_test",
    "fives": lambda split, i: f"{i + 1 + (0 if split == 'train' else 600)}_{'ADGN'[i % 4]}",
    "hrf": lambda split, i: f"{i // 3 + 1:02d}_{('dr', 'g', 'h')[i % 3]}",
    "stare": lambda split, i: f"im{i + 1:04d}",
    "drishtigs": lambda split, i: f"drishtiGS_{2 * i + (2 if split == 'train' else 1):03d}",
    "g1020": lambda split, i: f"image_{i}",
    "grape": lambda split, i: f"{i // 2 + 1}_{('OD', 'OS')[i % 2]}_1",
    "origa": lambda split, i: f"{i + 1:03d}",
    "papiladb": lambda split, i: f"RET{i // 2 + 1:03d}O{'DS'[i % 2]}",
    "refuge2": lambda split, i: f"{'gn'[i % 2]}{i + 1:04d}" if split == "train" else f"T{i + 1:04d}",
}
_CUP_LABELS = {"g1020": "cup", "grape": "OC"}  # written for realism; the disc reader skips them
_ORIGA_PAD = 3  # columns of zeros either side: ORIGA's .mat is cropped to the image (origa.py:70-73)


def fundus_files(n: int) -> int:
    """Synthetic images per fundus dataset for ``--n n``: ``max(4, n // 2 + 2)``."""
    return max(4, n // 2 + 2)


def _fundus_parts(entry: fundus.FundusDataset, n: int) -> dict[str, int]:
    """Images written per split folder of one dataset ("" = its one folder of a ratio split)."""
    m = fundus_files(n)
    if entry.test_size is not None:
        return {"": m}
    return {"train": m - max(1, m // 3), "test": max(1, m // 3)}


def _fundus_split_counts(domain: Domain, n: int) -> dict[str, int]:
    counts = dict.fromkeys(domain.splits, 0)
    for test_set, key in domain.tests.items():
        entry = fundus.FUNDUS_DATASETS[key]
        parts = _fundus_parts(entry, n)
        if entry.test_size is not None:
            train, test = fundus.train_test_split(list(range(parts[""])), entry.test_size)
        else:
            train, test = list(range(parts["train"])), list(range(parts["test"]))
        rest, val = fundus.carve_val(train)
        counts["train"] += len(rest)
        counts["val"] += len(val)
        counts[test_set] = len(test)
    return counts


def _outline(region: np.ndarray, k: int = 24, scale: float = 1.0) -> list[list[float]]:
    """``k`` (x, y) points around a star-shaped region: the farthest pixel inside along each ray."""
    ys, xs = np.nonzero(region)
    cy, cx = float(ys.mean()), float(xs.mean())
    pts = []
    for a in np.linspace(0, 2 * np.pi, k, endpoint=False):
        r = 0.0
        while True:
            y, x = int(round(cy + (r + 0.5) * np.sin(a))), int(round(cx + (r + 0.5) * np.cos(a)))
            if not (0 <= y < region.shape[0] and 0 <= x < region.shape[1] and region[y, x]):
                break
            r += 0.5
        r = (r + 0.5) * scale
        pts.append([round(cx + r * np.cos(a), 2), round(cy + r * np.sin(a), 2)])
    return pts


def _soft_map(region: np.ndarray) -> np.ndarray:
    """A DRISHTI-GS-style soft map: the region blurred, so its rim takes intermediate values."""
    from PIL import ImageFilter

    im = Image.fromarray(np.where(region, 255, 0).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    return np.asarray(im)


def _save_grey(arr: np.ndarray, path: Path, *, rgb: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="L")
    (im.convert("RGB") if rgb else im).save(path)


def _write_annotations(entry: fundus.FundusDataset, files: list[Path], extra: list[Path], bits: np.ndarray) -> None:
    """The ground-truth files of one image, each in its dataset's encoding (fundus module doc)."""
    vessel, disc, cup = (bits & FUNDUS_VESSEL) > 0, (bits & FUNDUS_DISC) > 0, (bits & FUNDUS_CUP) > 0
    for f in (*files, *extra):
        f.parent.mkdir(parents=True, exist_ok=True)
    if entry.encoding == "threshold" and entry.task == "vessel":
        for k, f in enumerate(files):  # grader k + 1: the second one sees the vessels a pixel to the right
            grader = vessel if k == 0 else np.roll(vessel, 1, axis=1)
            _save_grey(np.where(grader, 255, 0), f, rgb=(k == 0 and entry.key == "stare"))
    elif entry.encoding == "threshold":  # DRISHTI-GS: OD soft map, then the cup's
        _save_grey(_soft_map(disc), files[0])
        for f in extra:
            _save_grey(_soft_map(cup), f)
    elif entry.encoding == "labelme":
        shapes = [{"label": entry.label, "points": _outline(disc), "group_id": None, "shape_type": "polygon",
                   "flags": {}}]
        if cup.any():
            shapes.append({"label": _CUP_LABELS[entry.key], "points": _outline(cup), "group_id": None,
                           "shape_type": "polygon", "flags": {}})
        doc = {"version": "4.5.6", "flags": {}, "shapes": shapes, "imagePath": files[0].with_suffix(".jpg").name,
               "imageData": None, "imageHeight": int(bits.shape[0]), "imageWidth": int(bits.shape[1])}
        files[0].write_text(json.dumps(doc, indent=2))
    elif entry.encoding == "origa_mat":
        from scipy.io import savemat

        label = np.where(cup, 2, np.where(disc, 1, 0)).astype(np.uint8)
        buf = io.BytesIO()
        savemat(buf, {"mask": np.pad(label, ((0, 0), (_ORIGA_PAD, _ORIGA_PAD)))})
        data = bytearray(buf.getvalue())
        data[:116] = b"MATLAB 5.0 MAT-file, sam-peft-bench data synth".ljust(116)  # no timestamp: reproducible
        files[0].write_bytes(bytes(data))
    elif entry.encoding == "contour":  # expert 2 draws 6% wider; cup contours are the required extras
        for k, f in enumerate(files):
            np.savetxt(f, np.asarray(_outline(disc, scale=1.0 + 0.06 * k)), fmt="%.2f")
        for k, f in enumerate(extra):
            np.savetxt(f, np.asarray(_outline(cup, scale=1.0 + 0.06 * k)), fmt="%.2f")
    elif entry.encoding == "refuge":
        _save_grey(np.where(cup, 0, np.where(disc, 128, 255)), files[0])
    else:  # pragma: no cover - a new encoding needs its writer
        raise BenchError(f"no synthetic writer for encoding {entry.encoding!r}")


def _pick(droot: Path, template: str, fields: dict[str, str], i: int) -> Path:
    """The file of ``template``; of ``a|b`` alternatives the i-th in turn, so that each is read."""
    alts = template.split("|")
    return droot / alts[i % len(alts)].format(**fields)


def _write_fundus_dataset(entry: fundus.FundusDataset, droot: Path, n: int, rng: np.random.Generator) -> None:
    for split, count in _fundus_parts(entry, n).items():
        folder = entry.split_dirs.get(split, "")
        templates = entry.masks
        if split == "test" and entry.test_variants:  # every variant's files, as the release has them
            templates = tuple(dict.fromkeys(t for v in entry.test_variants.values() for t in v))
        for i in range(count):
            stem = _NAMES[entry.key](split, i)
            suffix = entry.images.rpartition(".")[2]
            if entry.key == "hrf" and stem.endswith("_dr"):
                suffix = suffix.upper()  # HRF mixes .JPG and .jpg
            where = entry.images.format(split=folder).replace("**/", "").rpartition("/")[0]
            image = droot / where / f"{stem}.{suffix}"
            fields = {"split": folder, "stem": stem, "id2": f"{stem}.{suffix}"[:2]}

            h, w = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
            if h == w:
                w = w - 1 if w > MIN_SIDE else w + 1
            img, bits = paint_fundus(rng, h, w, 2)
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img, mode="RGB").save(image, quality=92)
            _write_annotations(entry, [_pick(droot, t, fields, i) for t in templates],
                               [_pick(droot, t, fields, i) for t in entry.requires], bits)


def _synth_fundus(domain: Domain, out: Path, n: int, seed: int) -> Path:
    """Each dataset of a fundus domain into ``<out>/Fundus/<folder>``, one atomic folder each."""
    base = out / fundus.FUNDUS_FOLDER
    base.mkdir(parents=True, exist_ok=True)
    entries = [fundus.FUNDUS_DATASETS[k] for k in domain.tests.values()]
    for entry in entries:  # refuse before writing anything
        target = base / entry.top
        if target.exists() and not (target / SYNTHETIC_MARKER).exists():
            raise BenchError(f"{target} exists and is not synthetic; refusing to overwrite it")
    for entry in entries:
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.top}.synth-", dir=base))
        try:
            inner = entry.folder.partition("/")[2]
            rng = np.random.default_rng([seed, zlib.crc32(entry.key.encode())])
            _write_fundus_dataset(entry, tmp / inner if inner else tmp, n, rng)
            (tmp / SYNTHETIC_MARKER).write_text(json.dumps({"dataset": entry.key, "n": n, "seed": seed}) + "\n")
            replace_folder(tmp, base / entry.top)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return base
