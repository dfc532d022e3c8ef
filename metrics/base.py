"""What every metric accumulator looks like, the per-image-mean accumulator most binary metrics
share, and the input checks for the two input conventions.

Input conventions (the training engine calls ``update`` with exactly these):

- binary: ``pred`` float array ``(H, W)`` of probabilities in [0, 1]; ``gt`` bool or 0/1 array
  ``(H, W)``;
- multi-class: ``pred`` and ``gt`` int label maps ``(H, W)``; ``gt`` may hold 255 = ignore.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from benchmark.core.errors import BenchError

MetricValue = float | list[float]


@runtime_checkable
class Metric(Protocol):
    """A streaming accumulator: ``update`` adds sufficient statistics, ``compute`` reduces them.

    ``keys`` are the result keys ``compute`` returns (several keys may come from one accumulator,
    e.g. ``acc``/``miou``/``class_iou``); ``task`` is ``"binary"`` or ``"multiclass"`` and picks
    the input convention; ``merge`` adds another accumulator's statistics (parallel shards).
    Memory never grows with the number of images.
    """

    keys: ClassVar[tuple[str, ...]]
    higher_is_better: ClassVar[bool]
    task: ClassVar[str]

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None: ...

    def compute(self) -> dict[str, MetricValue]: ...

    def reset(self) -> None: ...

    def merge(self, other: Any) -> None: ...


class PerImageMean:
    """Base for metrics that score each image and report the plain mean over images.

    Sufficient statistics: the sum of per-image scores and the image count, so a shard's
    accumulator merges by addition. Subclasses set ``keys``/``higher_is_better`` and implement
    ``score(pred, gt) -> float`` on checked binary inputs (``pred`` float64, ``gt`` bool).
    """

    keys: ClassVar[tuple[str, ...]] = ()
    higher_is_better: ClassVar[bool] = True
    task: ClassVar[str] = "binary"

    def __init__(self) -> None:
        self.reset()

    def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
        raise NotImplementedError

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        pred, gt = check_binary(pred, gt)
        self.total += float(self.score(pred, gt))
        self.count += 1

    def compute(self) -> dict[str, MetricValue]:
        if self.count == 0:
            raise BenchError(f"metric {'/'.join(self.keys)}: compute() called before any update()")
        value = self.total / self.count
        return dict.fromkeys(self.keys, value)

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def merge(self, other: PerImageMean) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        self.total += other.total
        self.count += other.count


def check_binary(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate the binary convention; return ``pred`` as float64 and ``gt`` as bool (no copy if
    already so). Probabilities outside [0, 1] are rejected because passing logits by mistake
    would otherwise give plausible-looking wrong numbers."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"binary metrics need pred and gt of one (H, W) shape; got {pred.shape}, {gt.shape}")
    if pred.size == 0:
        raise ValueError("binary metrics need a non-empty image")
    if pred.min() < 0.0 or pred.max() > 1.0:
        raise ValueError("pred must hold probabilities in [0, 1] (apply a sigmoid to logits first)")
    if gt.dtype != np.bool_:
        if gt.min() < 0 or gt.max() > 1:
            raise ValueError("gt must be a bool or 0/1 mask")
        gt = gt > 0.5
    return pred, gt


def check_labels(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int) -> None:
    """Validate the multi-class convention: int label maps of one shape, classes in range."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(
            f"multi-class metrics need pred and gt of one (H, W) shape; got {pred.shape}, {gt.shape}"
        )
    for name, arr in (("pred", pred), ("gt", gt)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be an int label map, got dtype {arr.dtype}")
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"pred holds classes outside 0..{num_classes - 1}")
    labelled = gt[gt != ignore_index]
    if labelled.size and (labelled.min() < 0 or labelled.max() >= num_classes):
        raise ValueError(f"gt holds classes outside 0..{num_classes - 1} (and {ignore_index} = ignore)")
