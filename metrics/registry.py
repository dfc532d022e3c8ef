"""The metric registry: result key -> accumulator class, and the one factory that builds them.

A new metric is one accumulator class (see ``metrics.base.Metric``) decorated with
``@register_metric``: every key in its ``keys`` becomes a valid ``--metrics`` value.
"""

from __future__ import annotations

from benchmark.core.errors import BenchError
from benchmark.core.registry import Registry
from metrics.base import Metric

METRICS: Registry[type] = Registry("metric")
TASKS = ("binary", "multiclass")


def register_metric(cls: type) -> type:
    """Class decorator: register ``cls`` under each of its ``keys``; rejects malformed classes at import."""
    for attr in ("keys", "higher_is_better", "task", "update", "compute", "reset", "merge"):
        if not hasattr(cls, attr):
            raise ValueError(f"metric class {cls.__name__} lacks {attr!r}")
    if not cls.keys:
        raise ValueError(f"metric class {cls.__name__} declares no keys")
    if cls.task not in TASKS:
        raise ValueError(f"metric class {cls.__name__}: task must be one of {TASKS}, got {cls.task!r}")
    for key in cls.keys:
        METRICS.register(key, cls)
    return cls


def create_metric(key: str, *, num_classes: int | None = None) -> Metric:
    """Build the accumulator that produces ``key``. Multi-class metrics need ``num_classes``
    (background included); binary metrics ignore it."""
    cls = METRICS.get(key)
    if cls.task == "multiclass":
        if num_classes is None:
            raise BenchError(f"metric {key!r} is multi-class: give the number of classes (--num-classes)")
        return cls(num_classes=num_classes)
    return cls()
