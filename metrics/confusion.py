"""Multi-class segmentation metrics (Trans10K, Trans2Seg protocol): one confusion matrix pooled
over the whole test set gives pixel accuracy, per-class IoU and mIoU (docs/FIDELITY.md#metrics)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchmark.core.errors import BenchError
from metrics.base import MetricValue, check_labels
from metrics.registry import register_metric

IGNORE_INDEX = 255


def class_iou(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU = diag / (row sum + column sum - diag) of a (gt, pred) confusion matrix.

    A class absent from both GT and prediction over the whole dataset scores 0, as Trans2Seg's
    ``inter / (eps + union)`` does (it only happens on partial test sets), and never NaN.
    """
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Correct pixels / labelled pixels over the dataset; 0 if every pixel was ignored."""
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else 0.0


@register_metric
class ConfusionMatrix:
    """``acc``, ``miou``, ``class_iou`` from a (num_classes x num_classes) matrix of pixel counts
    (rows: GT class, columns: predicted class) summed over all images; GT pixels equal to 255 are
    ignored. ``acc`` = trace / total; ``class_iou[c]`` = TP_c / (TP_c + FP_c + FN_c) pooled over
    the dataset; ``miou`` = mean of ``class_iou`` over all classes, background included.
    """

    keys: ClassVar[tuple[str, ...]] = ("acc", "miou", "class_iou")
    higher_is_better: ClassVar[bool] = True
    task: ClassVar[str] = "multiclass"

    def __init__(self, num_classes: int) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise BenchError(f"num_classes must be an integer, got {num_classes!r}")
        if not 2 <= num_classes <= IGNORE_INDEX:
            # 255 is the ignore label, so class ids must stay below it.
            raise BenchError(f"num_classes must be in 2..{IGNORE_INDEX}, got {num_classes}")
        self.num_classes = int(num_classes)
        self.reset()

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        check_labels(pred, gt, self.num_classes, IGNORE_INDEX)
        gt = np.asarray(gt).ravel()
        pred = np.asarray(pred).ravel()
        labelled = gt != IGNORE_INDEX
        index = gt[labelled].astype(np.intp) * self.num_classes + pred[labelled]
        counts = np.bincount(index, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)
        self.images += 1

    def compute(self) -> dict[str, MetricValue]:
        if self.images == 0:
            raise BenchError("metric acc/miou/class_iou: compute() called before any update()")
        ious = class_iou(self.confusion)
        return {
            "acc": pixel_accuracy(self.confusion),
            "miou": float(ious.mean()),
            "class_iou": [float(v) for v in ious],
        }

    def reset(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.images = 0

    def merge(self, other: ConfusionMatrix) -> None:
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class counts into {self.num_classes}-class")
        self.confusion += other.confusion
        self.images += other.images
