"""Weighted F-measure F_beta^w (Margolin et al., CVPR 2014) with beta^2 = 0.3, the paper's F_beta^w.

Trap: py-sod-metrics 1.6.2's ``WeightedFmeasure`` defaults to ``beta=1``; the official evaluation
uses 0.3 (its ``beta`` argument is beta^2: Q = (1 + b) R P / (R + b P)). We fix 0.3 here
(docs/FIDELITY.md#metrics).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.ndimage import correlate1d, distance_transform_edt

from metrics.base import PerImageMean
from metrics.registry import register_metric
from metrics.sod import EPS, normalize_sod

BETA2 = 0.3


def matlab_gaussian_1d(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    """One axis of MATLAB ``fspecial('gaussian', size, sigma)``, normalised to sum 1.

    The 2-D kernel is the outer product of this with itself (exp(-(x^2+y^2)/2s^2) factors and
    the normalisation factors too), and for 7x7, sigma 5 MATLAB's zeroing of values below
    eps * max removes nothing, so two 1-D passes equal the 7x7 convolution to rounding.
    """
    half = (size - 1) / 2
    x = np.arange(-half, half + 1)
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


def gaussian_blur_7x7(image: np.ndarray, kernel: np.ndarray, block: int = 64) -> np.ndarray:
    """Separable 7-tap blur with zero padding (``scipy.ndimage.convolve(mode="constant")`` of the
    outer-product kernel, to rounding). The column pass is a sum of 7 shifted row blocks: scipy's
    ``correlate1d`` along axis 0 walks strided columns and takes ~20 ms on 1024x1024, this ~6 ms."""
    height = image.shape[0]
    padded = np.zeros((height + 6, image.shape[1]), dtype=np.float64)
    padded[3:-3] = image
    out = np.empty_like(padded[3:-3])
    scratch = np.empty_like(padded[:block])
    for start in range(0, height, block):
        stop = min(start + block, height)
        acc, tmp = out[start:stop], scratch[: stop - start]
        np.multiply(padded[start:stop], kernel[0], out=acc)
        for j in range(1, 7):
            np.multiply(padded[start + j : stop + j], kernel[j], out=tmp)
            acc += tmp
    return correlate1d(out, kernel, axis=1, mode="constant")


def weighted_f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = BETA2) -> float:
    """F^w = (1 + b) R^w P^w / (R^w + b P^w + eps) on a normalised map; 0 for an empty GT.

    Follows the MATLAB reference line by line (as py-sod-metrics does): the error E = |pred - gt|
    is propagated to each background pixel from its nearest foreground pixel (Euclidean distance
    transform with indices), smoothed by a 7x7 Gaussian (sigma 5, zero padding), the smaller of E
    and the smoothed error is kept inside the foreground, and background errors are weighted by
    2 - exp(log(0.5) / 5 * distance). Two exact rewrites make it ~2x faster than py-sod-metrics:
    the Gaussian is applied as two separable 1-D passes, and the nearest-pixel copy is one flat
    ``take`` (a foreground pixel is its own nearest foreground pixel).
    """
    n_fg = int(np.count_nonzero(gt))
    if n_fg == 0:
        return 0.0
    height, width = gt.shape
    dist, (rows, cols) = distance_transform_edt(~gt, return_indices=True)
    err = np.abs(pred - gt)
    nearest = rows * width + cols
    err_t = np.take(err.ravel(), nearest.ravel()).reshape(height, width)
    err_a = gaussian_blur_7x7(err_t, matlab_gaussian_1d(7, 5.0))
    # MATLAB's Ew = MIN_E_EA .* B split by region: inside the GT, B = 1 and MIN_E_EA = min(E, EA);
    # outside, MIN_E_EA = E and B = 2 - exp(log(0.5) / 5 * Dst). Same numbers, fewer passes.
    err_fg = float(np.sum(np.minimum(err_a, err), where=gt))
    err_bg = float(np.sum(err * (2 - np.exp(np.log(0.5) / 5 * dist)), where=~gt))
    tp_w = n_fg - err_fg
    recall = 1 - err_fg / n_fg
    precision = tp_w / (tp_w + err_bg + EPS)
    return (1 + beta2) * recall * precision / (recall + beta2 * precision + EPS)


@register_metric
class WeightedFMeasure(PerImageMean):
    """``wfm``: weighted F-measure, beta^2 = 0.3, per image on the normalised map, averaged over
    images; an image with an empty GT scores 0 (as py-sod-metrics and the official code)."""

    keys: ClassVar[tuple[str, ...]] = ("wfm",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return weighted_f_measure(normalize_sod(pred), gt, beta2=BETA2)
