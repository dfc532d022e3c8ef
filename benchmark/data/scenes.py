"""Broad synthetic scenes for pretraining the miniature SAM: objects of many kinds on varied backgrounds.

``paint_scene`` draws one square RGB image and its foreground mask (the union of the objects):
backgrounds are smooth two-colour noise, gradients, stripes or checkerboards in random colours;
one to four objects, each an ellipse, a polygon, a wavy blob, a rotated box, a ring or a thin
curve (1 to 3 px wide), filled flat, shaded, striped or with noise, sometimes outlined, some
occluding others; then sensor noise and, at times, a slight blur.

On purpose it shares no painter with the seven domains (``benchmark.data.synth``): colours are
uniform over RGB rather than a domain's palette, textures are generic, and the rule "every drawn
object is foreground" is not any domain's rule (a leaf is background on the leaf domain, hairs are
background on ISIC, a shadow is a darkening, not an object). A model pretrained here has to adapt
to each domain, as SAM does to the real ones.

Deterministic for a ``numpy.random.Generator`` state; about 0.3 ms per 64 x 64 scene.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _smooth(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Smooth noise in [0, 1], ``(S, S)`` float32: a coarse random grid upsampled bilinearly."""
    n = max(2, size // cell)
    small = rng.random((n, n), dtype=np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((size, size), Image.BILINEAR))


def _field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``(S, S)`` pattern in [0, 1]: smooth noise, a gradient, stripes or a checkerboard."""
    kind = rng.integers(4)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    if kind == 0:
        return _smooth(rng, size, int(rng.integers(3, 24)))
    if kind == 1:
        return (u - u.min()) / max(float(np.ptp(u)), 1e-6)
    if kind == 2:
        return 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 8) * u + rng.uniform(0, 2 * np.pi))
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    k = rng.uniform(3, 10)
    return ((np.floor(k * u) + np.floor(k * v)) % 2).astype(np.float32)


def _texture(rng: np.random.Generator, size: int, base: np.ndarray) -> np.ndarray:
    """``(S, S, 3)`` float: ``base`` blended with a second colour through a random pattern."""
    other = _colour(rng) if rng.random() < 0.5 else base * rng.uniform(0.5, 1.0)
    t = _field(rng, size)[..., None] * rng.uniform(0.2, 1.0)
    return (1 - t) * base + t * other


def _shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """One object's boolean ``(S, S)`` mask: ellipse, polygon, blob, box, ring or thin curve."""
    kind = int(rng.integers(6))
    cy, cx = rng.uniform(0.15, 0.85, size=2) * size
    r = rng.uniform(0.08, 0.3) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
    aspect = rng.uniform(0.4, 1.0)
    if kind == 0:
        return (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1
    if kind == 3:
        return (np.abs(u) <= r) & (np.abs(v) <= r * aspect)
    if kind == 4:
        d = np.hypot(u, v / aspect)
        return (d <= r) & (d >= r * rng.uniform(0.4, 0.8))
    if kind == 2:
        theta = np.arctan2(v, u)
        wave = 1 + sum(rng.uniform(0, 0.3) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
        return np.hypot(u, v) <= r * wave
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == 1:
        k = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=k))
        radii = r * rng.uniform(0.5, 1.2, size=k)
        draw.polygon([(float(cx + q * np.cos(a)), float(cy + q * np.sin(a))) for a, q in zip(angles, radii, strict=True)],
                     fill=255)
    else:  # a thin structure: a polyline crossing much of the image
        pts = rng.uniform(0, size, size=(int(rng.integers(2, 5)), 2))
        draw.line([tuple(map(float, p)) for p in pts], fill=255, width=int(rng.integers(1, 4)), joint="curve")
    return np.asarray(canvas) > 0


def paint_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: image ``(S, S, 3)`` uint8 and instance labels ``(S, S)`` uint8.

    Label 0 is the background, k = 1..K the visible part of the k-th object drawn (a later object
    occludes an earlier one, so an instance can be empty).
    """
    bg_colour = _colour(rng)
    img = _texture(rng, size, bg_colour) * (0.8 + 0.4 * _smooth(rng, size, 16))[..., None]
    labels = np.zeros((size, size), np.uint8)
    for k in range(1, int(rng.integers(1, 5)) + 1):
        obj = _shape(rng, size)
        # Contrast with the background runs from faint to stark: a colour at least 40 away in RGB.
        colour = _colour(rng)
        for _ in range(8):
            if np.linalg.norm(colour - bg_colour) >= 40:
                break
            colour = _colour(rng)
        fill = _texture(rng, size, colour) if rng.random() < 0.6 else np.broadcast_to(colour, (size, size, 3))
        img[obj] = fill[obj]
        if rng.random() < 0.25:  # an outline, darker or lighter than the fill
            edge = obj & ~_erode(obj)
            img[edge] = np.clip(colour * rng.choice([0.4, 1.6]), 0, 255)
        labels[obj] = k
    img = img + rng.normal(0, rng.uniform(0, 12), size=img.shape).astype(np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    return np.asarray(out), labels


def _erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour binary erosion (a one-pixel outline is ``mask & ~_erode(mask)``)."""
    m = np.pad(mask, 1)
    return m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
