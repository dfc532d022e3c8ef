"""Prompts drawn from a ground-truth mask: the modes, and SAM2LoRA's training and test samplers.

A prompt mode names what one image gets (docs/FIDELITY.md#sam2lora-prompts):

- ``none``: nothing;
- ``points:K``: K positive points (1 <= K <= 99);
- ``box``: the tight box of the ground truth;
- ``points:K+box``: both.

``all`` stands for SAM2LoRA's six unique test modes (their ``--eval_mode`` 0, 1, 2, 3, 5, 6; mode
4 printed the same numbers as 3): ``none, points:1, points:2, points:5, box, points:5+box``.

Samplers (pure numpy, on a binary mask at the model's input grid; coordinates are (x, y) pixel
indices, as ``np.argwhere`` gives them to the authors' code, so the prompt encoders' +0.5 puts
them at pixel centres):

- ``base``: the GT eroded by a 2x2 kernel (``cv2.erode`` semantics, :func:`erode`);
- training points (their ``region='general'``, ``datautils.py:211-214``): K draws, uniform and
  with replacement, over ``base``;
- test points (their ``region='density'``, ``datautils.py:192-209``): K distinct pixels of
  ``base`` eroded again by the largest k x k kernel, k = 15 down to 1, that leaves at least K
  pixels (drawn with replacement only when ``base`` itself has fewer than K);
- box (``datautils.py:263-281``): the tight box (x0, y0, x1, y1) of ``base``; in training, with
  ``jitter`` > 0, each side moved out by t ~ U(0, jitter x max(H, W)) and clamped to [0, W] x
  [0, H] (theirs: 0.02, applied only when a box is drawn in training; their recorded run drew none).

Deviations, on purpose: a mask so thin that the 2x2 erosion empties it falls back to the mask
itself (theirs raises in ``get_boxes`` and skips the image, or, for points, draws "positive"
points anywhere in the image); an empty mask gets no prompt at all (theirs draws from every
pixel). Their "density" threshold (pixels >= 0.9 x max) acts on the 15x15-eroded *binary* mask,
so it selects that mask (max 1); where the erosion empties it, max is 0 and every pixel of the
image passes: the bug we do not copy. Shrinking the kernel until enough pixels remain is their
own fallback (``initial_erode_size -= 1``), applied here also to the emptied case.

Seeding: :func:`prompt_rng` derives a numpy Generator from (run seed, image name, mode, purpose,
epoch) through ``SeedSequence``, so a prompt depends on the image and never on batch order,
batch size or DataLoader workers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.core.errors import BenchError

# One mode, as the ``prompt`` and ``eval_prompts`` settings accept it (``all``: eval_prompts only).
MODE_PATTERN = r"none|box|points:[1-9][0-9]?(\+box)?"
PAPER_MODES = ("none", "points:1", "points:2", "points:5", "box", "points:5+box")
BASE_KERNEL = 2  # the 2x2 erosion of every prompt (their erode_kernel_size)
DENSITY_KERNEL = 15  # the test points' second erosion (their density_blur_size)


@dataclass(frozen=True)
class PromptMode:
    """``points`` positive points and/or a box."""

    points: int = 0
    box: bool = False

    @property
    def key(self) -> str:
        """The setting's spelling: ``none``, ``points:5``, ``box``, ``points:5+box``."""
        parts = ([f"points:{self.points}"] if self.points else []) + (["box"] if self.box else [])
        return "+".join(parts) or "none"

    @property
    def label(self) -> str:
        """As the SAM2LoRA results print it: ``none``, ``1 point``, ``5 points + box``."""
        parts = ([f"{self.points} point{'s' if self.points > 1 else ''}"] if self.points else [])
        return " + ".join(parts + (["box"] if self.box else [])) or "none"

    @property
    def prompted(self) -> bool:
        return self.points > 0 or self.box


def parse_mode(text: str) -> PromptMode:
    """``none`` / ``points:K`` / ``box`` / ``points:K+box`` -> :class:`PromptMode`."""
    text = text.strip()
    if not re.fullmatch(MODE_PATTERN, text):
        raise BenchError(f"prompt mode {text!r} is not allowed; expected none, points:K (K 1..99), box or points:K+box")
    points = re.match(r"points:(\d+)", text)
    return PromptMode(int(points.group(1)) if points else 0, text.endswith("box"))


def eval_modes(texts: Sequence[str]) -> tuple[PromptMode, ...]:
    """The ``eval_prompts`` list: ``all`` expanded in place, duplicates dropped, order kept."""
    keys = [k for t in texts for k in (PAPER_MODES if t.strip() == "all" else (t,))]
    return tuple(dict.fromkeys(parse_mode(k) for k in keys))


@dataclass(frozen=True)
class ImagePrompt:
    """One image's prompt: ``points`` (N, 2) float (x, y), N >= 0; ``box`` (4,) x0, y0, x1, y1 or None."""

    points: np.ndarray
    box: np.ndarray | None = None


NO_PROMPT = ImagePrompt(np.zeros((0, 2)), None)


def erode(mask: np.ndarray, k: int) -> np.ndarray:
    """``cv2.erode(mask, np.ones((k, k)))`` on a binary mask: the window of output (y, x) spans rows
    y - k//2 .. y - k//2 + k - 1 (likewise columns; OpenCV's default anchor) and pixels outside the
    image count as foreground (OpenCV's default border for erosion)."""
    mask = np.asarray(mask, dtype=bool)
    if k <= 1:
        return mask.copy()
    lo, hi = k // 2, k - 1 - k // 2
    holes = np.pad(~mask, ((lo, hi), (lo, hi)), constant_values=False).astype(np.int64)
    s = np.pad(holes.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = mask.shape
    window = s[k : k + h, k : k + w] - s[:h, k : k + w] - s[k : k + h, :w] + s[:h, :w]
    return window == 0


def prompt_base(mask: np.ndarray) -> np.ndarray:
    """The GT eroded 2x2; the GT itself where that erosion empties it (a thin mask)."""
    mask = np.asarray(mask, dtype=bool)
    eroded = erode(mask, BASE_KERNEL)
    return eroded if eroded.any() else mask


def _xy(coords: np.ndarray) -> np.ndarray:
    return coords[:, ::-1].astype(np.float64)  # argwhere's (row, col) -> (x, y)


def uniform_points(base: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K uniform draws with replacement over ``base`` (their ``region='general'``)."""
    coords = np.argwhere(base)
    return _xy(coords[rng.integers(len(coords), size=k)])


def density_points(base: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """K distinct pixels of ``base`` eroded by the largest kernel (15 down to 1) that leaves K."""
    region = base
    for size in range(DENSITY_KERNEL, 1, -1):
        candidate = erode(base, size)
        if candidate.sum() >= k:
            region = candidate
            break
    coords = np.argwhere(region)
    return _xy(coords[rng.choice(len(coords), size=k, replace=len(coords) < k)])


def tight_box(base: np.ndarray, *, jitter: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """(x0, y0, x1, y1) of ``base``'s pixels, inclusive; each side moved out by U(0, jitter x max(H, W))."""
    rows, cols = np.nonzero(base)
    box = np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float64)
    if jitter > 0:
        h, w = base.shape
        t = rng.uniform(0, jitter * max(h, w))
        box = np.array([max(0, box[0] - t), max(0, box[1] - t), min(w, box[2] + t), min(h, box[3] + t)])
    return box


def sample_prompt(mask: np.ndarray, mode: PromptMode, rng: np.random.Generator, *, test: bool,
                  jitter: float = 0.0) -> ImagePrompt:
    """One image's prompt for ``mode``: test-time (density) points or training (uniform) points,
    then the box (jittered in training only). An empty mask, or mode ``none``, gets none."""
    mask = np.asarray(mask, dtype=bool)
    if not mode.prompted or not mask.any():
        return NO_PROMPT
    base = prompt_base(mask)
    points = NO_PROMPT.points
    if mode.points:
        points = (density_points if test else uniform_points)(base, mode.points, rng)
    box = tight_box(base, jitter=0.0 if test else jitter, rng=rng) if mode.box else None
    return ImagePrompt(points, box)


def prompt_rng(seed: int, name: str, mode: PromptMode, purpose: str, epoch: int = 0) -> np.random.Generator:
    """A Generator owned by one (run seed, image, mode, purpose, epoch): reproducible, and the same
    whatever the batch order, batch size or worker count. ``purpose``: "train", "val" or "test"."""
    digest = hashlib.sha256(f"{name}\0{mode.key}\0{purpose}".encode()).digest()
    words = np.frombuffer(digest[:16], dtype=np.uint32).tolist()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, *words])))
