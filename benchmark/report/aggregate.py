"""Records -> numbers: values per (method, test set, metric) over seeds, the published side in the
same shape, the #Params cell, and the row order. Pure functions of records and ``results/paper/``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import pandas as pd

from benchmark.core.errors import BenchError
from benchmark.report.labels import EXTRA_METHOD_LABELS, METHOD_LABELS, METRIC_LABELS, REFERENCE_LABELS
from benchmark.report.layouts import dataset_labels, domain_of
from benchmark.report.paper import load_paper


def method_order(keys: Iterable[str]) -> list[str]:
    """References, then the registry's methods in the paper's order, then other keys sorted."""
    known = list(REFERENCE_LABELS) + list(METHOD_LABELS) + list(EXTRA_METHOD_LABELS)
    keys = set(keys)
    return [k for k in known if k in keys] + sorted(keys - set(known))


def record_values(record: dict) -> Iterator[tuple[str, str, float]]:
    """(test set, metric, value x100) of one record; ``class_iou`` becomes one metric per class."""
    for test_set, metrics in (record.get("metrics") or {}).items():
        for metric, value in (metrics or {}).items():
            if metric == "class_iou" and isinstance(value, list):
                names = domain_of(test_set).class_names  # the domain names its classes
                if len(value) != len(names):
                    where = record.get("_path", record.get("method"))
                    raise BenchError(
                        f"{where}: class_iou has {len(value)} values, expected {len(names)}"
                    )
                for name, v in zip(names, value, strict=True):
                    if isinstance(v, (int, float)) and v == v:
                        yield test_set, name, 100.0 * v
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                yield test_set, metric, 100.0 * value


def aggregate(records: Sequence[dict]) -> pd.DataFrame:
    """Per (method, test_set, metric): n seeds, mean and sample std (ddof=1; NaN for one seed), x100."""
    rows = [
        (r["method"], ts, m, r.get("seed"), v)
        for r in records
        if r.get("status") == "ok"
        for ts, m, v in record_values(r)
    ]
    df = pd.DataFrame(rows, columns=["method", "test_set", "metric", "seed", "value"])
    if df.empty:
        return pd.DataFrame(columns=["method", "test_set", "metric", "n", "mean", "std"])
    out = (
        df.groupby(["method", "test_set", "metric"], sort=True)["value"]
        .agg(n="size", mean="mean", std=lambda s: s.std(ddof=1))
        .reset_index()
    )
    return out


def _paper_keys(df: pd.DataFrame) -> pd.DataFrame:
    """Registry keys (method, test_set, metric) of published rows, from the paper's labels."""
    key_of = {v: k for k, v in {**METHOD_LABELS, **REFERENCE_LABELS}.items()}
    ds_of = {v: k for k, v in dataset_labels().items()}
    metric_of = {v: k for k, v in METRIC_LABELS.items()}
    return pd.DataFrame(
        {
            "method": [key_of.get(s, s) for s in df["method"]],
            "test_set": [ds_of.get(s, s) for s in df["dataset"]],
            "metric": [metric_of.get(s, s) for s in df["metric"]],
        }
    )


def paper_aggregate() -> pd.DataFrame:
    """The published cells in :func:`aggregate`'s shape (registry keys; n = 3 where a std is printed)."""
    df = load_paper()
    out = _paper_keys(df)
    out["n"] = [3 if s else None for s in df["std"]]
    out["mean"] = df["mean_value"].to_numpy()
    out["std"] = df["std_value"].to_numpy()
    return out


def _span(texts: list[str]) -> str:
    unique = list(dict.fromkeys(texts))
    return "" if not unique else unique[0] if len(unique) == 1 else f"{unique[0]}–{unique[-1]}"


def params_of(records: Sequence[dict]) -> tuple[str, str]:
    """(#Params M, ratio %) texts, two decimals; a range "a–b" where records disagree."""
    pairs = sorted(
        (r["trainable_params"], r["total_params"])
        for r in records
        if isinstance(r.get("trainable_params"), int)
        and isinstance(r.get("total_params"), int)
        and r["total_params"] > 0
    )
    params = _span([f"{t / 1e6:.2f}" for t, _ in pairs])
    ratios = _span([f"{r:.2f}" for r in sorted(t / n * 100 for t, n in pairs)])
    return params, ratios


