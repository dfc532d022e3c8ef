"""Segmentation metrics as streaming accumulators, registered by key.

``create_metric(key)`` builds one accumulator, ``MetricSuite(keys)`` several; each accumulator has
``update(pred, gt)``, ``compute() -> {key: value}``, ``reset()``, ``merge(other)`` and
``higher_is_better`` (the one home of a metric's direction). Importing this package imports every
module in it, so a new metric is one file whose class carries ``@register_metric``; the listing
order is the modules' alphabetical order.
"""

import importlib
import pkgutil

from metrics.base import Metric, MetricValue, PerImageMean
from metrics.registry import METRICS, create_metric, register_metric
from metrics.suite import MetricSuite

_INFRASTRUCTURE = {"base", "registry", "suite"}


def _import_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_") and info.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{__name__}.{info.name}")


_import_all()

__all__ = [
    "METRICS",
    "Metric",
    "MetricSuite",
    "MetricValue",
    "PerImageMean",
    "create_metric",
    "register_metric",
]
