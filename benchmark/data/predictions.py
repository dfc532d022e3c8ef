"""Saved test predictions on disk (``run --save-predictions N``): where they go and how they are encoded.

Layout under a runs folder ``OUT`` (each file ``<image stem>.png``, written atomically)::

    OUT/predictions/<backbone>/<domain>/<method>/seed<S>/<test set>/   the run's predictions
    OUT/predictions/<backbone>/<domain>/_gt/<test set>/                 the ground truth, same size
    OUT/predictions/<backbone>/<domain>/_image/<test set>/              the RGB input, same size

Everything is at the size the official protocol scores (the model's input square): the ground truth
is the nearest-resized mask the evaluation compares with, so ``sam-peft-bench evaluate --pred
<run>/<test set> --gt _gt/<test set>`` scores exactly what the run scored. ``_gt`` and ``_image``
start with ``_``, which no method key can (registry keys start with a letter).

Encoding: binary, the probability on 0..255 as 8-bit grey; multi-class, the class map as 8-bit
labels. The grey level is the nearest one, moved by one level where rounding would put a pixel on
the other side of a threshold the metrics apply (``pred > 0.5``; BER's ``pred * 255 > 125``), so
every thresholded metric of a saved folder equals the run's; threshold-free ones (S, E, F_w, MAE,
AUC) move by the 8-bit rounding (at most one level per pixel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.io import atomic_path

PREDICTIONS_FOLDER = "predictions"
GT_FOLDER = "_gt"
IMAGE_FOLDER = "_image"
# The thresholds of metrics/overlap.py (IoU, Dice and the per-image rates at 0.5; BER at 125/255).
_HALF_LEVEL = 127  # q / 255 > 0.5 exactly when q >= 128
_BER_LEVEL = 125


def domain_folder(out: str | Path, backbone: str, domain: str) -> Path:
    return Path(out) / PREDICTIONS_FOLDER / backbone / domain


def run_folder(out: str | Path, backbone: str, domain: str, method: str, seed: int) -> Path:
    return domain_folder(out, backbone, domain) / method / f"seed{seed}"


def quantise_probability(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities -> uint8 grey levels on the same side of 0.5 and of 125/255 as ``prob``.

    The sides are decided with the metrics' own expressions in float64 (``metrics.base.check_binary``
    converts before thresholding), so a saved map thresholds exactly as the in-memory one did.
    """
    prob = np.asarray(prob, dtype=np.float64)
    q = np.clip(np.rint(prob * 255), 0, 255).astype(np.int16)
    above_half = prob > 0.5
    above_ber = prob * 255 > _BER_LEVEL
    q = np.where(above_half & (q <= _HALF_LEVEL), _HALF_LEVEL + 1, q)
    q = np.where(~above_half & (q > _HALF_LEVEL), _HALF_LEVEL, q)
    q = np.where(above_ber & (q <= _BER_LEVEL), _BER_LEVEL + 1, q)
    q = np.where(~above_ber & (q > _BER_LEVEL), _BER_LEVEL, q)
    return q.astype(np.uint8)


def encode_prediction(pred: np.ndarray, task: str) -> np.ndarray:
    """A prediction as 8-bit: grey levels (binary) or class ids (multi-class, < 255)."""
    if task == "multiclass":
        return np.asarray(pred).astype(np.uint8)
    return quantise_probability(pred)


def encode_gt(gt: np.ndarray, task: str) -> np.ndarray:
    """Binary boolean mask -> 0/255; multi-class class ids (255 = ignore) as they are."""
    if task == "multiclass":
        return np.asarray(gt).astype(np.uint8)
    return np.where(gt, 255, 0).astype(np.uint8)


def decode_image(image) -> np.ndarray:
    """A dataset's normalised ``(3, H, W)`` image back to uint8 ``(H, W, 3)`` (exact: it was 8-bit)."""
    # Imported here: the datasets module imports torch, which the report side (figures) never needs.
    from benchmark.data.datasets import PIXEL_MEAN, PIXEL_STD

    arr = np.asarray(image, dtype=np.float64).transpose(1, 2, 0)
    return np.clip(np.rint(arr * np.array(PIXEL_STD) + np.array(PIXEL_MEAN)), 0, 255).astype(np.uint8)


def save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


@dataclass(frozen=True)
class PredictionWriter:
    """Writes the first ``limit`` images of each test set of one run (and their GT and input)."""

    domain_dir: Path  # OUT/predictions/<backbone>/<domain>
    run_dir: Path  # OUT/predictions/<backbone>/<domain>/<method>/seed<S>
    task: str
    limit: int

    def sink(self, test_set: str) -> Callable[[dict, list[np.ndarray], list[np.ndarray]], None]:
        """``(batch, predictions, targets)`` callback for one test set's evaluation loop."""
        written = 0

        def write(batch: dict, preds: list[np.ndarray], gts: list[np.ndarray]) -> None:
            nonlocal written
            for i, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
                if written >= self.limit:
                    return
                name = f"{batch['name'][i]}.png"
                save_png(self.run_dir / test_set / name, encode_prediction(pred, self.task))
                # Every run of the domain writes the same files; rewriting keeps them consistent
                # with the latest run's image size instead of trusting an old copy.
                save_png(self.domain_dir / GT_FOLDER / test_set / name, encode_gt(gt, self.task))
                save_png(self.domain_dir / IMAGE_FOLDER / test_set / name, decode_image(batch["image"][i]))
                written += 1

        return write
