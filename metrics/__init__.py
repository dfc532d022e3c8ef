"""Segmentation metrics as streaming accumulators, registered by key.

``create_metric(key)`` builds one accumulator, ``MetricSuite(keys)`` several; each accumulator has
``update(pred, gt)``, ``compute() -> {key: value}``, ``reset()``, ``merge(other)`` and
``higher_is_better``. Importing this package registers every metric module listed below.
"""

# isort: off
# Importing a module registers its metrics; this order is the listing order of ``METRICS.keys()``.
from metrics import sod, wfm, overlap, rates, boundary, confusion, auc  # noqa: F401

# isort: on
from metrics.base import Metric, MetricValue, PerImageMean
from metrics.registry import METRICS, create_metric, register_metric
from metrics.suite import MetricSuite

__all__ = [
    "METRICS",
    "Metric",
    "MetricSuite",
    "MetricValue",
    "PerImageMean",
    "create_metric",
    "register_metric",
]
