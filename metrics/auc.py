"""Pixel-level ROC-AUC for binary segmentation (the SAM2LoRA fundus tables), in constant memory."""

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
