"""Synthetic painters, registered by key: each draws one image and its mask imitating a domain
(polyps: bright blobs on mucosa texture; roads: thin connected lines; fundus: disc, cup and
vessels, ...). ``benchmark.data.synth`` writes what they draw in each domain's on-disk layout.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from benchmark.core.registry import Registry

MIN_SIDE, MAX_SIDE = 48, 160  # synthetic images: sides drawn separately, never square

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
