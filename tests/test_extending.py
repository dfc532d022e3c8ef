"""A new table and a new metric are each one entry (methods and domains: tests/test_methods.py and
tests/test_data.py show the same)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchmark.report.layouts import LAYOUTS, TableLayout, register_layout
from benchmark.report.tables import table_text
from metrics import METRICS, MetricSuite, PerImageMean, register_metric
from tests.test_tables import record


def test_a_new_table_is_one_layout_entry() -> None:
    register_layout(TableLayout(key="toy", title="Toy: Kvasir only", columns=(("kvasir", "sm"), ("kvasir", "mae")),
                                methods=("lora",), decimals=(2, 2)))
    try:
        records = [record("lora", "polyp", s, {"kvasir": {"sm": v, "mae": m}}) for s, v, m in
                   [(0, 0.9, 0.05), (1, 0.8, 0.07)]]
        text = table_text(table="toy", source="runs", fmt="markdown", records=records)
        header, _, row = text.splitlines()[:3]
        # Labels come from the domain (Kvasir) and the metrics (their own direction: MAE lower).
        assert header == "| Method | #Params (M) / Ratio (%) | Kvasir S_alpha ↑ | Kvasir MAE ↓ |"
        assert row == "| LoRA | 4.00 / 0.62% | 85.00 ± 7.07 | 6.00 ± 1.41 |"
    finally:
        LAYOUTS._items.pop("toy")


def test_a_new_metric_is_one_registered_class() -> None:
    @register_metric
    class Coverage(PerImageMean):
        """Fraction of the image predicted foreground (p > 0.5), per image, averaged."""

        keys: ClassVar[tuple[str, ...]] = ("toy_cover",)
        higher_is_better: ClassVar[bool] = False
        task: ClassVar[str] = "binary"

        def score(self, pred: np.ndarray, gt: np.ndarray) -> float:
            return float((pred > 0.5).mean())

    try:
        suite = MetricSuite(["toy_cover", "iou"])
        suite.update(np.array([[0.9, 0.1], [0.2, 0.7]]), np.array([[1, 0], [0, 0]], dtype=bool))
        suite.update(np.zeros((2, 2)), np.zeros((2, 2), dtype=bool))
        values = suite.compute()
        assert values["toy_cover"] == 0.25  # (2/4 + 0) / 2
        assert suite.higher_is_better["toy_cover"] is False
    finally:
        METRICS._items.pop("toy_cover")
