"""``MetricSuite``: the accumulators for a list of metric keys, updated and reduced together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchmark.core.errors import BenchError
from metrics.base import Metric, MetricValue
from metrics.registry import METRICS, create_metric


class MetricSuite:
    """One accumulator per accumulator class behind ``keys`` (``acc``, ``miou`` and ``class_iou``
    share one confusion matrix; ``iou`` and ``jaccard`` one IoU mean).

    ``keys`` is a sequence of metric keys or a comma list (``"sm,em"``). All keys must share one
    task, since binary and multi-class metrics take different inputs.
    ``compute()`` returns ``{key: value}`` in the given key order; ``higher_is_better`` maps each
    key to its direction; ``merge`` adds a suite built with the same keys (a parallel shard).
    """

    def __init__(self, keys: Sequence[str] | str, *, num_classes: int | None = None) -> None:
        if isinstance(keys, str):
            keys = METRICS.parse_list(keys)
        self.keys: tuple[str, ...] = tuple(dict.fromkeys(keys))
        if not self.keys:
            raise BenchError(f"no metric given; valid: {', '.join(METRICS.keys())}")
        classes = [METRICS.get(key) for key in self.keys]
        tasks = {cls.task for cls in classes}
        if len(tasks) > 1:
            raise BenchError(
                f"metrics {','.join(self.keys)} mix binary and multi-class inputs; evaluate them separately"
            )
        self.task: str = tasks.pop()
        self.num_classes = num_classes
        self.higher_is_better: dict[str, bool] = {
            key: cls.higher_is_better for key, cls in zip(self.keys, classes, strict=True)
        }
        self._metrics: dict[type, Metric] = {}
        for key, cls in zip(self.keys, classes, strict=True):
            if cls not in self._metrics:
                self._metrics[cls] = create_metric(key, num_classes=num_classes)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image (see ``metrics.base`` for the binary and multi-class input conventions)."""
        for metric in self._metrics.values():
            metric.update(pred, gt)

    def compute(self) -> dict[str, MetricValue]:
        results: dict[str, MetricValue] = {}
        for metric in self._metrics.values():
            results.update(metric.compute())
        return {key: results[key] for key in self.keys}

    def reset(self) -> None:
        for metric in self._metrics.values():
            metric.reset()

    def merge(self, other: MetricSuite) -> None:
        if other.keys != self.keys:
            raise ValueError(f"cannot merge a suite of {other.keys} into one of {self.keys}")
        for cls, metric in self._metrics.items():
            metric.merge(other._metrics[cls])
