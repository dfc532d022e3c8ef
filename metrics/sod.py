"""S-measure, mean E-measure and MAE: the salient/camouflaged-object metrics of the official protocol.

Protocol (py-sod-metrics' ``prepare_data``, as the Conv-LoRA evaluation calls it on
``sigmoid(logits) * 255``): the prediction is min-max normalised to [0, 1] when its max differs
from its min (else used as is); the ground truth is foreground where it is > 128 on the 0..255
scale, i.e. ``gt`` True here. All three are computed per image and averaged over images
(docs/FIDELITY.md#metrics).

A 0..255 image read from disk and divided by 255 gives exactly py-sod-metrics' numbers on that
image. The official code hands py-sod-metrics the float map ``prob * 255`` (not rounded to uint8),
so a float prediction here is used unrounded too.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import py_sod_metrics

from metrics.base import PerImageMean
from metrics.registry import register_metric

# py-sod-metrics (and MATLAB) use eps = spacing(1) to avoid divisions by zero; kept for equal numbers.
EPS = np.spacing(1)


def normalize_sod(pred: np.ndarray) -> np.ndarray:
    """MATLAB ``mapminmax``: rescale ``pred`` (float64, [0, 1]) to span [0, 1] unless it is constant."""
    lo, hi = pred.min(), pred.max()
    # (p - 0) / (1 - 0) is p exactly: skip the two full-image passes for maps spanning [0, 1].
    if hi != lo and (lo, hi) != (0.0, 1.0):
        return (pred - lo) / (hi - lo)
    return pred


def s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """S = alpha * S_object + (1 - alpha) * S_region (Fan et al., ICCV 2017) on a normalised map.

    Empty GT: 1 - mean(pred); full GT: mean(pred). The kernel is py-sod-metrics' own
    ``Smeasure.cal_sm`` (about 25 ms on 1024x1024, not the bottleneck).
    """
    return float(py_sod_metrics.Smeasure(alpha=alpha).cal_sm(pred, gt))


def e_measure_curve(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """E-measure (Fan et al., IJCAI 2018) of ``pred >= t`` for t = 255..0 on the 0..255 scale, shape (256,).

    Same math as py-sod-metrics' ``cal_em_with_cumsumhistogram``: the map is truncated to uint8,
    the counts of foreground/background GT pixels at or above each threshold come from one
    ``bincount`` (py-sod-metrics runs two ``np.histogram``; the counts are identical), and each
    threshold's enhanced-alignment sum is closed-form in those counts. Empty GT: the fraction of
    predicted background; full GT: the fraction of predicted foreground (both over N - 1 pixels).
    """
    size = gt.size
    levels = (pred * 255).astype(np.uint8)
    hist = np.bincount(levels.ravel().astype(np.intp) + 256 * gt.ravel(), minlength=512)
    fg_fg = np.cumsum(np.flip(hist[256:]))  # predicted fg (>= threshold) on GT fg
    fg_bg = np.cumsum(np.flip(hist[:256]))  # predicted fg on GT bg
    pred_fg = fg_fg + fg_bg
    pred_bg = size - pred_fg
    gt_fg = int(hist[256:].sum())
    if gt_fg == 0:
        enhanced_sum = pred_bg.astype(np.float64)
    elif gt_fg == size:
        enhanced_sum = pred_fg.astype(np.float64)
    else:
        bg_fg = gt_fg - fg_fg
        bg_bg = pred_bg - bg_fg
        mean_pred = pred_fg / size
        mean_gt = gt_fg / size
        parts = (
            (fg_fg, 1 - mean_pred, 1 - mean_gt),
            (fg_bg, 1 - mean_pred, 0 - mean_gt),
            (bg_fg, 0 - mean_pred, 1 - mean_gt),
            (bg_bg, 0 - mean_pred, 0 - mean_gt),
        )
        enhanced_sum = np.zeros(256, dtype=np.float64)
        for numel, dp, dg in parts:
            align = 2 * (dp * dg) / (dp**2 + dg**2 + EPS)
            enhanced_sum += (align + 1) ** 2 / 4 * numel
    return enhanced_sum / (size - 1 + EPS)


def mean_absolute_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """MAE = mean |pred - gt| over the pixels of one image."""
    return float(np.mean(np.abs(pred - gt)))


@register_metric
class SMeasure(PerImageMean):
    """``sm``: S-measure with alpha = 0.5 on the normalised map, averaged over images."""

    keys: ClassVar[tuple[str, ...]] = ("sm",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return s_measure(normalize_sod(pred), gt, alpha=0.5)


@register_metric
class EMeasure(PerImageMean):
    """``em``: mean E-measure (the paper's E_phi): per image the E-measure averaged over the 256
    thresholds, then averaged over images (py-sod-metrics' ``em["curve"].mean()``)."""

    keys: ClassVar[tuple[str, ...]] = ("em",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return float(e_measure_curve(normalize_sod(pred), gt).mean())


@register_metric
class MAE(PerImageMean):
    """``mae``: mean absolute error of the normalised map against the 0/1 mask, averaged over images."""

    keys: ClassVar[tuple[str, ...]] = ("mae",)
    higher_is_better: ClassVar[bool] = False

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return mean_absolute_error(normalize_sod(pred), gt)
