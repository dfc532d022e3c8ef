"""Binary overlap metrics on thresholded masks: IoU (= Jaccard), Dice and the balanced error rate.

All three are computed per image and averaged over images, as the official code does (it loops
torchmetrics over the images of the test set). Thresholds follow it exactly: torchmetrics binarises
``pred > 0.5`` for IoU/Dice; the BER code binarises ``pred * 255 > 125`` and ``gt * 255 > 125``
(docs/FIDELITY.md#metrics).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from metrics.base import PerImageMean
from metrics.registry import register_metric

THRESHOLD = 0.5
BER_THRESHOLD = 125  # on the 0..255 scale


def confusion_counts(pred_fg: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) pixel counts of a boolean prediction against a boolean mask."""
    tp = int(np.count_nonzero(pred_fg & gt))
    n_pred = int(np.count_nonzero(pred_fg))
    n_gt = int(np.count_nonzero(gt))
    fp = n_pred - tp
    fn = n_gt - tp
    tn = gt.size - tp - fp - fn
    return tp, fp, fn, tn


def iou_score(tp: int, fp: int, fn: int) -> float:
    """IoU = tp / (tp + fp + fn); 1 when prediction and GT are both empty.

    The official code would give NaN there (torchmetrics 1.0 divides 0 by 0; later versions
    return 0). An empty prediction of an empty mask is perfect, so we score it 1, never NaN.
    """
    union = tp + fp + fn
    return tp / union if union else 1.0


def dice_score(tp: int, fp: int, fn: int) -> float:
    """Dice = 2 tp / (2 tp + fp + fn); 1 when prediction and GT are both empty (as IoU)."""
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 1.0


def balanced_error_rate(tp: int, fp: int, fn: int, tn: int) -> float:
    """BER = 1 - mean over classes of the class's recall (TPR for fg, TNR for bg), in [0, 1].

    Empty classes exactly as the official code (torchmetrics ``Accuracy(task="multiclass",
    num_classes=2, average="macro", multidim_average="samplewise")``): a class absent from both GT
    and prediction is left out of the mean, so only the defined rate counts (empty GT, empty
    prediction: BER = 1 - TNR = 0); a class absent from the GT but predicted has recall 0/0 = 0
    and stays in (empty GT with false positives: BER = 1 - TNR / 2 >= 0.5).
    """
    recalls = []
    for hit, miss, false_alarm in ((tp, fn, fp), (tn, fp, fn)):
        if hit + miss + false_alarm == 0:
            continue
        recalls.append(hit / (hit + miss) if hit + miss else 0.0)
    return 1.0 - sum(recalls) / len(recalls)


@register_metric
class IoU(PerImageMean):
    """``iou`` / ``jaccard`` (the same number): per image tp / (tp + fp + fn) with ``pred > 0.5``,
    averaged over images; empty prediction of an empty mask = 1."""

    keys: ClassVar[tuple[str, ...]] = ("iou", "jaccard")
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        tp, fp, fn, _ = confusion_counts(pred > THRESHOLD, gt)
        return iou_score(tp, fp, fn)


@register_metric
class Dice(PerImageMean):
    """``dice``: per image 2 tp / (2 tp + fp + fn) with ``pred > 0.5``, averaged over images;
    empty prediction of an empty mask = 1."""

    keys: ClassVar[tuple[str, ...]] = ("dice",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        tp, fp, fn, _ = confusion_counts(pred > THRESHOLD, gt)
        return dice_score(tp, fp, fn)


@register_metric
class BER(PerImageMean):
    """``ber``: balanced error rate 1 - (TPR + TNR) / 2 per image with ``pred * 255 > 125``,
    averaged over images, as a fraction (the paper prints it x100)."""

    keys: ClassVar[tuple[str, ...]] = ("ber",)
    higher_is_better: ClassVar[bool] = False

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return balanced_error_rate(*confusion_counts(pred * 255 > BER_THRESHOLD, gt))
