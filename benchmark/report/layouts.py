"""Table layouts, registered by key: a new table is one ``register_layout`` entry.

A layout owns its rows (reference models, then methods, in printed order), its columns
((test-set key, metric key) in printed order) and its printed precision. Everything else is asked
of its owner: a column's dataset label of the domain that holds the test set, a metric's
direction of the metric itself (``metrics``), a class column's name of the multi-class domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.errors import BenchError
from benchmark.core.registry import Registry
from benchmark.data.domains import DOMAINS
from benchmark.report.labels import METHOD_LABELS, METRIC_LABELS

Column = tuple[str, str]  # (test-set key, metric key); a class name as metric key = that class's IoU


@dataclass(frozen=True)
class TableLayout:
    """One published table. ``decimals``: (mean, std) on the x100 scale as printed;
    ``lower_decimals`` the same for lower-is-better metrics where the paper prints more."""

    key: str
    title: str
    columns: tuple[Column, ...]
    methods: tuple[str, ...]
    references: tuple[str, ...] = ()
    decimals: tuple[int, int] = (1, 2)
    lower_decimals: tuple[int, int] | None = None
    paper: str = "conv_lora"  # which published source ``--source paper`` renders (benchmark.report.paper)
    by_prompt: bool = False  # rows are datasets x prompt modes (benchmark.report.prompt_table)

    def decimals_of(self, metric: str) -> tuple[int, int]:
        if self.lower_decimals is not None and not higher_is_better(metric):
            return self.lower_decimals
        return self.decimals


LAYOUTS: Registry[TableLayout] = Registry("table", pattern=r"^[a-z0-9][a-z0-9_]*$")


def register_layout(layout: TableLayout) -> TableLayout:
    return LAYOUTS.register(layout.key, layout)


def _class_metric(metric: str) -> bool:
    return any(metric in d.class_names for d in DOMAINS.values())


def higher_is_better(metric: str) -> bool:
    """The metric's own direction; a class column is that class's IoU (higher is better)."""
    from metrics import METRICS

    return METRICS.get("class_iou" if _class_metric(metric) else metric).higher_is_better


def domain_of(test_set: str):
    for d in DOMAINS.values():
        if test_set in d.tests:
            return d
    raise BenchError(f"test set {test_set!r} belongs to no registered domain")


def table_of(test_set: str) -> str:
    """The layout a test set's columns belong to: its domain says."""
    return domain_of(test_set).table


def dataset_label(test_set: str) -> str:
    try:
        return domain_of(test_set).test_labels[test_set]
    except BenchError:
        return test_set


def dataset_labels() -> dict[str, str]:
    """Every registered test set's label (test-set key -> label)."""
    return {ts: label for d in DOMAINS.values() for ts, label in d.test_labels.items()}


def column_labels(col: Column) -> tuple[str, str, str]:
    """(dataset label, metric label, direction arrow) of a column."""
    test_set, metric = col
    return dataset_label(test_set), METRIC_LABELS.get(metric, metric), "↑" if higher_is_better(metric) else "↓"


def decimals(table: str, metric: str) -> tuple[int, int]:
    return LAYOUTS.get(table).decimals_of(metric)


register_layout(TableLayout(
    key="1", title="Table 1: binary domains (Conv-LoRA, ICLR 2024)",
    columns=(
        ("kvasir", "sm"), ("kvasir", "em"),
        ("cvc_clinicdb", "sm"), ("cvc_clinicdb", "em"),
        ("isic2017", "jaccard"), ("isic2017", "dice"),
        ("camo", "sm"), ("camo", "em"), ("camo", "wfm"),
        ("sbu", "ber"),
        ("leaf", "iou"), ("leaf", "dice"),
        ("road", "iou"), ("road", "dice"),
    ),
    methods=tuple(METHOD_LABELS), references=("domain_specific",), decimals=(1, 2), lower_decimals=(2, 3),
))
register_layout(TableLayout(
    key="2", title="Table 2: Trans10K-v2 (Conv-LoRA, ICLR 2024)",
    columns=(("trans10k", "acc"), ("trans10k", "miou"))
    + tuple(("trans10k", c) for c in DOMAINS.get("trans10k").class_names),
    methods=("decoder_only", "vpt", "lora", "conv_lora"), references=("translab", "trans2seg"), decimals=(2, 2),
))
# SAM2LoRA's per-dataset Dice, AUC and HD95 by prompt mode (its results notebook, cell 32).
register_layout(TableLayout(
    key="sam2lora", title="SAM2LoRA: retinal fundus, per dataset (Mandal et al., arXiv 2510.10288)",
    columns=tuple((ts, metric) for key in ("fundus_vessel", "fundus_od") for ts in DOMAINS.get(key).tests
                  for metric in ("dice", "auc_img", "hd95")),
    methods=("sam2lora",), paper="sam2lora", by_prompt=True,
))
