"""Contour metrics of the SAM2LoRA evaluation: boundary IoU and HD95, per image on ``pred > 0.5``
and averaged over images, as the authors' ``SegmentationEVAL`` (GitHub sayanmndl21/SAM2LoRA,
commit 4dd3cde, ``utils/eval_metrics.py``: ``get_biou`` lines 92-100, ``get_hd95`` lines 39-48;
docs/FIDELITY.md#sam2lora-metrics).

The two take different contours, because the authors call two libraries:

- boundary IoU erodes with scikit-image's ``binary_erosion`` (default footprint: the 3x3 cross;
  pixels outside the image count as foreground, so the image edge is no contour);
- HD95 is medpy's ``hd95`` (connectivity 1: the 3x3 cross; scipy's erosion, where pixels outside
  the image count as background, so a mask touching the image edge has a contour along it).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, generate_binary_structure

from metrics.base import PerImageMean
from metrics.overlap import THRESHOLD
from metrics.registry import register_metric

CROSS = generate_binary_structure(2, 1)


def inner_boundary(mask: np.ndarray, *, width: int = 1) -> np.ndarray:
    """The pixels of ``mask`` (H, W) bool at 4-connected distance <= ``width`` from a background
    pixel of the image: ``mask`` minus its ``width``-fold erosion by the 3x3 cross, pixels outside
    the image counting as foreground (scikit-image's convention)."""
    if width < 1:
        raise ValueError(f"boundary width must be >= 1 pixel, got {width}")
    return mask & ~binary_erosion(mask, structure=CROSS, iterations=width, border_value=1)


def boundary_iou(pred_fg: np.ndarray, gt: np.ndarray, *, width: int = 1) -> float:
    """Boundary IoU = |B(P) & B(G)| / |B(P) | B(G)| with B = ``inner_boundary`` (Cheng et al.,
    CVPR 2021, without the intersection with the masks, which B already lies in).

    The authors use width 1 (one erosion by the cross, their line 96), not Cheng's default
    d = 2% of the image diagonal (29 px at 1024x1024) with a 3x3 square and the image edge as a
    contour. 0 when both boundaries are empty (their line 100): both masks empty, or both without
    an in-image background neighbour (two full masks, even a perfect prediction of one).
    """
    pred_b = inner_boundary(pred_fg, width=width)
    gt_b = inner_boundary(gt, width=width)
    union = int(np.count_nonzero(pred_b | gt_b))
    return int(np.count_nonzero(pred_b & gt_b)) / union if union else 0.0


def surface(mask: np.ndarray) -> np.ndarray:
    """medpy's object surface of ``mask`` (H, W) bool: ``mask`` minus its erosion by the 3x3 cross,
    pixels outside the image counting as background (the image edge is surface)."""
    return mask & ~binary_erosion(mask, structure=CROSS, border_value=0)


def hd95(pred_fg: np.ndarray, gt: np.ndarray) -> float:
    """95th percentile of the symmetric surface distances, in pixels (medpy ``hd95`` semantics).

    Distances from every surface pixel of the prediction to the nearest surface pixel of the GT
    and from every GT surface pixel to the prediction's surface (Euclidean distance transform),
    pooled into one set; ``np.percentile(., 95)`` with linear interpolation, as medpy.
    When either mask is empty (medpy raises; the authors catch it, their lines 43-47) the image
    scores the diagonal of the grid, sqrt(H^2 + W^2): 1448.15 at 1024x1024, also for an empty
    prediction of an empty mask.
    """
    if not pred_fg.any() or not gt.any():
        return math.hypot(*pred_fg.shape)
    pred_s, gt_s = surface(pred_fg), surface(gt)
    # The distance transform is the cost; the nearest surface pixel of each query lies in the box
    # around both surfaces, so distances computed inside it are those of the whole grid.
    rows = np.flatnonzero((pred_s | gt_s).any(axis=1))
    cols = np.flatnonzero((pred_s | gt_s).any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    pred_s, gt_s = pred_s[box], gt_s[box]
    distances = np.concatenate((distance_transform_edt(~gt_s)[pred_s], distance_transform_edt(~pred_s)[gt_s]))
    return float(np.percentile(distances, 95))


@register_metric
class BoundaryIoU(PerImageMean):
    """``biou``: per image the IoU of the 1-pixel inner boundaries (4-connected) of ``pred > 0.5``
    and the GT, averaged over images; both boundaries empty = 0 (see ``boundary_iou``)."""

    keys: ClassVar[tuple[str, ...]] = ("biou",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return boundary_iou(pred > THRESHOLD, gt)


@register_metric
class HD95(PerImageMean):
    """``hd95``: per image the 95th-percentile symmetric surface distance of ``pred > 0.5`` and the
    GT in pixels of the evaluation grid, averaged over images; an image with an empty prediction or
    an empty GT scores the grid's diagonal (see ``hd95``)."""

    keys: ClassVar[tuple[str, ...]] = ("hd95",)
    higher_is_better: ClassVar[bool] = False

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return hd95(pred > THRESHOLD, gt)
