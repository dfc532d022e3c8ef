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
import io
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmark.core.errors import BenchError
from benchmark.core.io import replace_folder
from benchmark.core.registry import Registry
from benchmark.data import fundus
from benchmark.data.datasets import SYNTHETIC_MARKER
from benchmark.data.domains import Domain, get_domain

MIN_SIDE, MAX_SIDE = 48, 160

Painter = Callable[[np.random.Generator, int, int, int], tuple[np.ndarray, np.ndarray]]
PAINTERS: Registry[Painter] = Registry("synthetic painter")


def register_painter(key: str) -> Callable[[Painter], Painter]:
    """Register ``paint(rng, h, w, num_classes) -> (image (H, W, 3) uint8, mask (H, W) uint8)``."""
    return lambda fn: PAINTERS.register(key, fn)


# ----------------------------------------------------------------------------------- drawing kit


def _noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth noise in [0, 1], ``(H, W)`` float32: a coarse random grid upsampled bilinearly."""
    small = rng.random((max(2, h // cell), max(2, w // cell)), dtype=np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BILINEAR))


def _blob(rng: np.random.Generator, h: int, w: int, *, radius: float, wobble: float = 0.2,
          center: tuple[float, float] | None = None) -> np.ndarray:
    """A boolean ``(H, W)`` star-shaped blob: a circle of ``radius`` (pixels) with wavy outline."""
    cy, cx = center if center is not None else (rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = np.arctan2(yy - cy, xx - cx)
    r = np.ones_like(theta)
    for k in (2, 3, 5):
        r += rng.uniform(0, wobble) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    sy, sx = rng.uniform(0.7, 1.3, size=2)  # stretch, so blobs are ellipses more often than circles
    dist = np.hypot((yy - cy) / sy, (xx - cx) / sx)
    return dist <= radius * r


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def _tint(base: tuple[float, float, float], shade: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float: a colour modulated by a ``(H, W)`` shade field."""
    return shade[..., None] * np.asarray(base, dtype=np.float32)


def _finish(img: np.ndarray, fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.clip(img, 0, 255).astype(np.uint8), np.where(fg, 255, 0).astype(np.uint8)


# --------------------------------------------------------------------------------------- painters


@register_painter("blobs")
def paint_blobs(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Generic binary stand-in: one brighter blob on grey texture (for domains without a painter)."""
    fg = _blob(rng, h, w, radius=rng.uniform(0.15, 0.3) * min(h, w))
    img = _tint((150, 150, 150), 0.6 + 0.6 * _noise(rng, h, w, 8))
    img[fg] += 60
    return _finish(img, fg)


@register_painter("polyp")
def paint_polyp(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Pink mucosa with dark folds; one or two bright, shaded polyps."""
    img = _tint((205, 95, 85), 0.55 + 0.5 * _noise(rng, h, w, 10))
    img *= (0.8 + 0.2 * _noise(rng, h, w, 3))[..., None]
    fg = np.zeros((h, w), bool)
    for _ in range(rng.integers(1, 3)):
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        r = rng.uniform(0.1, 0.22) * min(h, w)
        blob = _blob(rng, h, w, radius=r, wobble=0.12, center=(cy, cx))
        yy, xx = np.mgrid[0:h, 0:w]
        highlight = np.exp(-((yy - cy + 0.3 * r) ** 2 + (xx - cx - 0.3 * r) ** 2) / (0.5 * r * r))
        img[blob] = _tint((240, 160, 140), 0.8 + 0.35 * highlight)[blob]
        fg |= blob
    return _finish(img, fg)


@register_painter("skin_lesion")
def paint_skin_lesion(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Skin with hair-like streaks; one irregular brown lesion, darker towards its centre."""
    img = _tint((225, 180, 150), 0.85 + 0.2 * _noise(rng, h, w, 12))
    fg = _blob(rng, h, w, radius=rng.uniform(0.2, 0.35) * min(h, w), wobble=0.3)
    inner = _noise(rng, h, w, 6)
    img[fg] = _tint((125, 75, 45), 0.6 + 0.5 * inner)[fg]
    draw_img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(draw_img)
    for _ in range(rng.integers(0, 4)):
        pts = rng.uniform(0, 1, size=4) * [w, h, w, h]
        draw.line(list(map(float, pts)), fill=(60, 40, 30), width=1)
    return _finish(np.asarray(draw_img, dtype=np.float32), fg)


@register_painter("camouflage")
def paint_camouflage(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mottled scene; the object shares its texture with a slight colour shift (low contrast)."""
    base = np.asarray((110, 120, 80), dtype=np.float32)
    img = _tint(tuple(base), 0.6 + 0.8 * _noise(rng, h, w, 5))
    fg = _blob(rng, h, w, radius=rng.uniform(0.18, 0.32) * min(h, w), wobble=0.35)
    shift = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    img[fg] = _tint(tuple(base * shift), 0.6 + 0.8 * _noise(rng, h, w, 5))[fg]
    return _finish(img, fg)


@register_painter("shadow")
def paint_shadow(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Bright ground; shadows are dark polygons (a cast shape) darkening whatever lies under them."""
    img = _tint(tuple(rng.uniform(170, 230, size=3)), 0.75 + 0.35 * _noise(rng, h, w, 8))
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 3)):
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        k = int(rng.integers(4, 7))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=k))
        radii = rng.uniform(0.12, 0.35, size=k) * min(h, w)
        draw.polygon([(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a, r in zip(angles, radii, strict=True)],
                     fill=255)
    fg = np.asarray(canvas) > 0
    img[fg] *= rng.uniform(0.3, 0.5)
    return _finish(img, fg)


@register_painter("leaf_disease")
def paint_leaf_disease(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A green leaf on a dark background; the disease (the mask) is brown-yellow spots on the leaf."""
    img = _tint((40, 50, 35), 0.6 + 0.6 * _noise(rng, h, w, 10))
    leaf = _ellipse(h, w, h / 2, w / 2, 0.42 * h, 0.3 * w, rng.uniform(-0.5, 0.5))
    img[leaf] = _tint((70, 150, 55), 0.8 + 0.3 * _noise(rng, h, w, 6))[leaf]
    ys, xs = np.nonzero(leaf)
    fg = np.zeros((h, w), bool)
    for _ in range(rng.integers(2, 7)):
        i = rng.integers(len(ys))
        fg |= _blob(rng, h, w, radius=rng.uniform(0.05, 0.1) * min(h, w), wobble=0.3,
                    center=(float(ys[i]), float(xs[i])))
    fg &= leaf
    img[fg] = _tint((160, 115, 45), 0.7 + 0.4 * _noise(rng, h, w, 3))[fg]
    return _finish(img, fg)


def _border_point(rng: np.random.Generator, h: int, w: int, side: int) -> tuple[float, float]:
    t = float(rng.uniform(0.1, 0.9))
    return [(t * w, 0.0), (t * w, h - 1.0), (0.0, t * h), (w - 1.0, t * h)][side]


def _crossing(rng: np.random.Generator, h: int, w: int) -> list[tuple[float, float]]:
    """Two points on different sides of the tile (a road along one edge would hide in the border)."""
    a, b = rng.choice(4, size=2, replace=False)
    return [_border_point(rng, h, w, int(a)), _border_point(rng, h, w, int(b))]


@register_painter("road")
def paint_road(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Aerial green-grey texture; roads are thin lines crossing the tile, with branches off them."""
    img = _tint((105, 120, 95), 0.65 + 0.6 * _noise(rng, h, w, 6))
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    roads = []
    for _ in range(rng.integers(1, 3)):
        a, b = _crossing(rng, h, w)
        roads.append((a, b))
        draw.line([a, b], fill=255, width=int(rng.integers(2, 5)))
    for _ in range(rng.integers(1, 3)):  # a branch starts on an existing road, so the net is connected
        (ax, ay), (bx, by) = roads[int(rng.integers(len(roads)))]
        t = float(rng.uniform(0.2, 0.8))
        start = (ax + t * (bx - ax), ay + t * (by - ay))
        draw.line([start, _crossing(rng, h, w)[0]], fill=255, width=int(rng.integers(2, 4)))
    fg = np.asarray(canvas) > 0
    img[fg] = _tint((150, 148, 140), 0.85 + 0.2 * _noise(rng, h, w, 4))[fg]
    return _finish(img, fg)


@register_painter("transparent_objects")
def paint_transparent_objects(rng: np.random.Generator, h: int, w: int, num_classes: int
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Indoor background (class 0) with one to three see-through objects of classes 1..K-1.

    Each class has its own tint and shape family (boxes for even ids, ellipses for odd ids); an
    object blends 60% background with its tint and gets a bright rim, like glass catching light.
    """
    img = _tint((190, 175, 155), 0.6 + 0.5 * _noise(rng, h, w, 12))
    mask = np.zeros((h, w), np.uint8)
    palette = np.random.default_rng(12345).uniform(40, 255, size=(num_classes, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(rng.integers(1, 4)):
        c = int(rng.integers(1, num_classes))
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        ry, rx = rng.uniform(0.12, 0.3) * h, rng.uniform(0.12, 0.3) * w

        def shape(scale: float, c: int = c, cy: float = cy, cx: float = cx, ry: float = ry, rx: float = rx):
            dy, dx = np.abs(yy - cy) / (scale * ry), np.abs(xx - cx) / (scale * rx)
            return dy**2 + dx**2 <= 1.0 if c % 2 else np.maximum(dy, dx) <= 1.0

        obj = shape(1.0)
        rim = obj & ~shape(0.85)
        img[obj] = 0.6 * img[obj] + 0.4 * palette[c]
        img[rim] = np.minimum(img[rim] + 60, 255)
        mask[obj] = c
    return np.clip(img, 0, 255).astype(np.uint8), mask


# Bits of the fundus painter's mask: each dataset's writer stores what its format holds.
FUNDUS_VESSEL, FUNDUS_DISC, FUNDUS_CUP = 1, 2, 4


def _vessel(draw: ImageDraw.ImageDraw, rng: np.random.Generator, start: tuple[float, float], angle: float,
            *, width: int, depth: int, step: float, inside: Callable[[float, float], bool]) -> None:
    """One vessel: a random walk with slowly turning heading; branches thinner, two levels deep."""
    x, y = start
    for _ in range(400):
        angle += float(rng.normal(0, 0.18))
        nx, ny = x + step * np.cos(angle), y + step * np.sin(angle)
        if not inside(nx, ny):
            return
        draw.line([(x, y), (nx, ny)], fill=255, width=width)
        if depth < 2 and rng.random() < 0.08:
            turn = float(rng.uniform(0.4, 0.9)) * (1 if rng.random() < 0.5 else -1)
            _vessel(draw, rng, (nx, ny), angle + turn, width=max(1, width - 1), depth=depth + 1, step=step,
                    inside=inside)
        x, y = nx, ny


@register_painter("fundus")
def paint_fundus(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A retinal photograph: a dark frame around a circular field of view, orange-red retina shaded
    towards the rim, a bright optic disc with a brighter cup off the centre, and vessels as thin
    dark curves branching out of the disc. The mask is a bit field (``FUNDUS_VESSEL`` 1,
    ``FUNDUS_DISC`` 2, ``FUNDUS_CUP`` 4), not 0/255: the fundus writers take their masks from it."""
    cy, cx, radius = h / 2, w / 2, 0.49 * min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rr = np.hypot(yy - cy, xx - cx) / radius
    fov = rr <= 1.0
    side = 1 if rng.random() < 0.5 else -1  # left or right eye
    dy, dx = cy + rng.uniform(-0.1, 0.1) * radius, cx + side * rng.uniform(0.3, 0.5) * radius
    r_disc = max(4.0, rng.uniform(0.14, 0.2) * radius)
    disc = _ellipse(h, w, dy, dx, r_disc * rng.uniform(1.0, 1.15), r_disc, rng.uniform(-0.3, 0.3))
    cup = _ellipse(h, w, dy, dx, r_disc * rng.uniform(0.35, 0.6), r_disc * rng.uniform(0.35, 0.6), 0.0)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    start = float(rng.uniform(0, 2 * np.pi))
    for k in range(4):  # two arcades up, two down, as retinal vessels leave the disc
        _vessel(draw, rng, (dx, dy), start + k * np.pi / 2 + float(rng.normal(0, 0.2)),
                width=2 if min(h, w) < 120 else 3, depth=0, step=max(2.0, min(h, w) / 30),
                inside=lambda x, y: np.hypot(y - cy, x - cx) < radius)
    vessels = (np.asarray(canvas) > 0) & fov
    img = _tint((195, 80, 40), (0.8 + 0.3 * _noise(rng, h, w, 8)) * (1 - 0.35 * np.clip(rr, 0, 1) ** 2))
    img[disc] = _tint((250, 215, 150), 0.9 + 0.1 * _noise(rng, h, w, 4))[disc]
    img[cup] = _tint((255, 240, 205), np.ones((h, w), np.float32))[cup]
    img[vessels] = _tint((115, 28, 18), 0.9 + 0.2 * _noise(rng, h, w, 3))[vessels]
    img[~fov] = 6 * _noise(rng, h, w, 4)[~fov, None]
    mask = FUNDUS_VESSEL * vessels + FUNDUS_DISC * disc + FUNDUS_CUP * (cup & disc)
    return np.clip(img, 0, 255).astype(np.uint8), mask.astype(np.uint8)


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


# ------------------------------------------------------------------------------------------- fundus
# Every dataset in its own public layout and formats, from the facts of ``fundus.FUNDUS_DATASETS``
# (where files go, which encodings they hold), so that every reader is exercised. What is only
# synthetic (file names, how the second grader differs) lives here.

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
