"""Per-image confusion-matrix rates of the SAM2LoRA evaluation: accuracy, sensitivity, specificity,
precision and the Matthews correlation coefficient.

Each is computed per image on ``pred > 0.5`` and averaged over images, as the SAM2LoRA authors'
``SegmentationEVAL.get_eval`` does (GitHub sayanmndl21/SAM2LoRA, commit 4dd3cde,
``utils/eval_metrics.py``: threshold line 116, the rates lines 56-90; their test loop averages the
per-image dictionaries, ``calculate_mean_metrics`` lines 177-195). A rate whose denominator is 0
scores 0, as theirs. Their Dice (= their F1) and IoU are our ``dice`` and ``iou``
(``metrics.overlap``), which differ from theirs only when prediction and ground truth are both
empty (theirs 0, ours 1). That case never reaches their numbers: every test set is built with
``num_boxes=1`` (``test.py`` lines 125, 140, 153), ``get_boxes`` raises on a mask whose 2x2
erosion is empty (``dataloader/datautils.py`` lines 263-271: ``row.min()`` of nothing) and their
test loop skips an image whose loading raised (``test.py`` lines 180-184).
The facts with their sources: docs/FIDELITY.md#sam2lora-metrics.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from metrics.base import PerImageMean
from metrics.overlap import THRESHOLD, confusion_counts
from metrics.registry import register_metric


def accuracy(tp: int, fp: int, fn: int, tn: int) -> float:
    """(tp + tn) / (tp + fp + fn + tn): the fraction of pixels classified right."""
    return (tp + tn) / (tp + fp + fn + tn)


def sensitivity(tp: int, fn: int) -> float:
    """Recall, TPR = tp / (tp + fn); 0 when the ground truth is empty (their line 68)."""
    return tp / (tp + fn) if tp + fn else 0.0


def specificity(tn: int, fp: int) -> float:
    """TNR = tn / (tn + fp); 0 when the ground truth covers the whole image (their line 76)."""
    return tn / (tn + fp) if tn + fp else 0.0


def precision(tp: int, fp: int) -> float:
    """PPV = tp / (tp + fp); 0 when the prediction is empty (their line 84)."""
    return tp / (tp + fp) if tp + fp else 0.0


def matthews_corrcoef(tp: int, fp: int, fn: int, tn: int) -> float:
    """MCC = (tp tn - fp fn) / sqrt((tp + fp)(tp + fn)(tn + fp)(tn + fn)), in [-1, 1].

    0 when a factor of the denominator is 0, i.e. when the prediction or the ground truth is all
    one class (even a perfect prediction of an empty mask): scikit-learn's ``matthews_corrcoef``
    does so, and the authors call it (their line 90). Counts are Python ints, so the products are
    exact however large the image.
    """
    denom = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    if denom == 0:
        return 0.0
    return (tp * tn - fp * fn) / math.sqrt(denom)


@register_metric
class Accuracy(PerImageMean):
    """``acc_img``: per image (tp + tn) / pixels with ``pred > 0.5``, averaged over images.
    (``acc`` is the multi-class pixel accuracy pooled over the dataset.)"""

    keys: ClassVar[tuple[str, ...]] = ("acc_img",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return accuracy(*confusion_counts(pred > THRESHOLD, gt))


@register_metric
class Sensitivity(PerImageMean):
    """``sens``: per image tp / (tp + fn) with ``pred > 0.5``, averaged over images; empty GT = 0."""

    keys: ClassVar[tuple[str, ...]] = ("sens",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        tp, _, fn, _ = confusion_counts(pred > THRESHOLD, gt)
        return sensitivity(tp, fn)


@register_metric
class Specificity(PerImageMean):
    """``spec``: per image tn / (tn + fp) with ``pred > 0.5``, averaged over images; GT covering the
    whole image = 0."""

    keys: ClassVar[tuple[str, ...]] = ("spec",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        _, fp, _, tn = confusion_counts(pred > THRESHOLD, gt)
        return specificity(tn, fp)


@register_metric
class Precision(PerImageMean):
    """``prec``: per image tp / (tp + fp) with ``pred > 0.5``, averaged over images; empty
    prediction = 0."""

    keys: ClassVar[tuple[str, ...]] = ("prec",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        tp, fp, _, _ = confusion_counts(pred > THRESHOLD, gt)
        return precision(tp, fp)


@register_metric
class MCC(PerImageMean):
    """``mcc``: per image Matthews correlation of ``pred > 0.5`` with the GT, averaged over
    images; 0 when prediction or GT is all one class."""

    keys: ClassVar[tuple[str, ...]] = ("mcc",)
    higher_is_better: ClassVar[bool] = True

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return matthews_corrcoef(*confusion_counts(pred > THRESHOLD, gt))
