"""Pixel-level ROC-AUC for binary segmentation, in constant memory: pooled over the dataset
(``auc``) and per image then averaged (``auc_img``, the SAM2LoRA fundus tables;
docs/FIDELITY.md#sam2lora-metrics)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchmark.core.errors import BenchError
from metrics.base import MetricValue, check_binary
from metrics.registry import register_metric

# 65536 levels: 65535 = 255 * 257, so every 8-bit score k/255 lands exactly on level 257 k and
# 16-bit scores land on their own level too.
LEVELS = 65536


def quantize_scores(pred: np.ndarray) -> np.ndarray:
    """Map probabilities in [0, 1] to integer levels round(p * 65535), shape as ``pred``."""
    return np.rint(pred * (LEVELS - 1)).astype(np.intp)


def auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC-AUC = P(score_pos > score_neg) + 0.5 P(equal), from per-level counts of positive and
    negative pixels (Mann-Whitney U / (P N), which equals the trapezoidal ROC area with ties).

    0.5 (chance) when there are no positives or no negatives: the AUC is undefined there (sklearn
    raises); we return chance so a training log never breaks on a one-class validation set.
    """
    pos = pos.astype(np.float64)
    neg = neg.astype(np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return 0.5
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (n_pos * n_neg))


@register_metric
class PixelAUC:
    """``auc``: ROC-AUC over all pixels of the dataset, pooled (not averaged per image).

    Sufficient statistics: two histograms of scores (positives, negatives) over 65536 levels
    (1 MiB), so memory is constant. Exactness: for 8- or 16-bit predictions (e.g. PNG maps) the
    result equals the exact pooled pixel AUC (sklearn ``roc_auc_score`` on all pixels); a float
    prediction is rounded to 16 bits first, which only changes pairs of scores closer than 1/65535
    (they count as ties, i.e. 1/2).
    """

    keys: ClassVar[tuple[str, ...]] = ("auc",)
    higher_is_better: ClassVar[bool] = True
    task: ClassVar[str] = "binary"

    def __init__(self) -> None:
        self.reset()

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        pred, gt = check_binary(pred, gt)
        index = quantize_scores(pred).ravel() + LEVELS * gt.ravel()
        counts = np.bincount(index, minlength=2 * LEVELS)
        self.neg += counts[:LEVELS]
        self.pos += counts[LEVELS:]

    def compute(self) -> dict[str, MetricValue]:
        if not self.pos.any() and not self.neg.any():
            raise BenchError("metric auc: compute() called before any update()")
        return {"auc": auc_from_histograms(self.pos, self.neg)}

    def reset(self) -> None:
        self.pos = np.zeros(LEVELS, dtype=np.int64)
        self.neg = np.zeros(LEVELS, dtype=np.int64)

    def merge(self, other: PixelAUC) -> None:
        self.pos += other.pos
        self.neg += other.neg


def image_auc(pred: np.ndarray, gt: np.ndarray) -> float | None:
    """Exact ROC-AUC of one image's pixels, ``pred`` (H, W) scores and ``gt`` (H, W) bool:
    (#(pos, neg) pairs with s_pos > s_neg + 1/2 #pairs with s_pos = s_neg) / (P N), the
    Mann-Whitney U over P positive and N negative pixels; equals scikit-learn's ``roc_auc_score``.

    None when ``gt`` holds one class: the AUC is undefined there (scikit-learn raises, newer
    versions return NaN with a warning). No quantisation: confident maps put most pixels within
    1e-5 of 0 or 1, where the 16 bits of the pooled histogram would merge them into ties.
    """
    n_pos = int(np.count_nonzero(gt))
    n_neg = gt.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    neg = np.sort(pred[~gt])
    pos = pred[gt]
    # left: negatives strictly below a positive; right - left: negatives tied with it.
    twice_u = int(np.searchsorted(neg, pos, "left").sum()) + int(np.searchsorted(neg, pos, "right").sum())
    return twice_u / 2 / (n_pos * n_neg)


@register_metric
class ImageAUC:
    """``auc_img``: ROC-AUC of each image's pixels (``image_auc``), averaged over the images whose
    GT holds both classes. The SAM2LoRA authors call ``roc_auc_score`` on each image's
    probabilities (GitHub sayanmndl21/SAM2LoRA, commit 4dd3cde, ``utils/eval_metrics.py`` line 29).

    Images whose GT is all background or all foreground: the authors' code has no answer (the
    exception is not caught, so their evaluation stops; a recent scikit-learn warns and returns
    NaN instead, which makes the dataset mean NaN), and none is in their test sets (their loader
    skips an image whose GT has no box). Here such an image is left out of the mean, which is then
    the mean over the images where the AUC is defined; when no image defines it the result is 0.5
    (chance, as ``auc``), so a record never holds NaN. Sufficient statistics: the sum of defined
    AUCs, their count and the image count; memory constant in the number of images, the ranking
    itself needs O(pixels) for one image at a time.
    """

    keys: ClassVar[tuple[str, ...]] = ("auc_img",)
    higher_is_better: ClassVar[bool] = True
    task: ClassVar[str] = "binary"

    def __init__(self) -> None:
        self.reset()

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        pred, gt = check_binary(pred, gt)
        value = image_auc(pred, gt)
        if value is not None:
            self.total += value
            self.defined += 1
        self.images += 1

    def compute(self) -> dict[str, MetricValue]:
        if self.images == 0:
            raise BenchError("metric auc_img: compute() called before any update()")
        return {"auc_img": self.total / self.defined if self.defined else 0.5}

    def reset(self) -> None:
        self.total = 0.0
        self.defined = 0
        self.images = 0

    def merge(self, other: ImageAUC) -> None:
        self.total += other.total
        self.defined += other.defined
        self.images += other.images
