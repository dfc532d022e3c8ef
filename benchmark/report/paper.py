"""The published numbers, as data: the Conv-LoRA paper (arXiv 2401.17868, Tables 1 and 2) and the
SAM2LoRA authors' fundus results (GitHub sayanmndl21/SAM2LoRA @ 4dd3cde).

``results/paper/paper_tables.csv`` holds every printed cell in long form, with the strings exactly
as printed (``"92.0"``, ``"0.40"``, ``"3.16"`` / ``"0.128"``), so rendering reproduces the paper's
precision. ``results/paper/sam2lora_*.csv`` hold SAM2LoRA's optic-disc table and its vessel chart
readings the same way. See ``results/paper/README.md`` for the sources and the column meanings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core.errors import BenchError
from benchmark.report.labels import METHOD_LABELS

PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"
PAPER_CSV = PAPER_DIR / "paper_tables.csv"
TEXT_COLUMNS = (
    "table",
    "method",
    "dataset",
    "metric",
    "mean",
    "std",
    "params_m",
    "ratio_pct",
    "printed_mark",
)


SAM2LORA_CSV = {
    "fundus_od": PAPER_DIR / "sam2lora_optic_disc.csv",
    "fundus_vessel": PAPER_DIR / "sam2lora_vessel_chart.csv",
}
SAM2LORA_COLUMNS = {
    "fundus_od": (
        "dataset",
        "prompt",
        "eval_mode",
        "pos_points",
        "neg_points",
        "box",
        "n_test",
        "metric",
        "mean",
    ),
    "fundus_vessel": ("dataset", "prompt", "metric", "mean", "read_tolerance"),
}


def _to_float(text: str) -> float:
    return float(text) if text else np.nan


def load_paper(table: str | int | None = None) -> pd.DataFrame:
    """One row per printed cell, in printed order (row by row, left to right).

    Columns: ``table`` ("1" or "2"), ``method``, ``dataset``, ``metric`` (the paper's labels),
    ``mean``, ``std``, ``params_m``, ``ratio_pct`` (strings as printed, "" where nothing is
    printed: no std, or Domain Specific's "*" params), ``printed_mark`` ("underline" where the
    source underlines the value, else ""), and ``mean_value``, ``std_value`` (floats, NaN when
    not printed). Values are on the paper's x100 scale.
    """
    try:
        df = pd.read_csv(PAPER_CSV, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise BenchError(f"cannot read the published numbers {PAPER_CSV}: {exc}") from None
    if tuple(df.columns) != TEXT_COLUMNS:
        raise BenchError(f"{PAPER_CSV}: expected columns {', '.join(TEXT_COLUMNS)}")
    if table is not None:
        if str(table) not in set(df["table"]):
            raise BenchError(
                f"the paper has no table {table!r}; valid: {', '.join(sorted(set(df['table'])))}"
            )
        df = df[df["table"] == str(table)].reset_index(drop=True)
    df["mean_value"] = df["mean"].map(_to_float).astype(float)
    df["std_value"] = df["std"].map(_to_float).astype(float)
    return df


def paper_params() -> dict[str, tuple[float | None, float]]:
    """Registry key -> (#Params in millions or None where "*" is printed, ratio in percent), from Table 1."""
    df = load_paper("1").drop_duplicates("method")
    key_of = {label: key for key, label in METHOD_LABELS.items()}
    out: dict[str, tuple[float | None, float]] = {}
    for row in df.itertuples():
        if row.method in key_of:
            out[key_of[row.method]] = (float(row.params_m) if row.params_m else None, float(row.ratio_pct))
    return out


def _half_unit(text: str) -> float:
    """Half a unit of the last printed digit: the rounding error of a value printed as ``text``."""
    decimals = len(text.partition(".")[2])
    return 0.5 * 10.0**-decimals


def load_sam2lora_paper(domain: str = "fundus_od") -> pd.DataFrame:
    """SAM2LoRA's published rank-64 numbers of one fundus domain, one row per value.

    ``fundus_od``: the 36 rows (6 datasets x 6 prompt modes) of the authors' results notebook
    times 9 metrics, columns ``dataset``, ``prompt``, ``eval_mode``, ``pos_points``,
    ``neg_points``, ``box``, ``n_test``, ``metric`` (our metric key: ``auc_img`` is their
    per-image AUC), ``mean``. ``fundus_vessel``: Dice and per-image AUC of 5 datasets averaged
    over the prompt modes, READ FROM A BAR CHART (``read_tolerance`` 0.01). All columns are strings
    as in the file; added: ``mean_value`` (float, fraction; HD95 in pixels) and ``tolerance``
    (float: half a unit of the last printed digit for the table, the reading's uncertainty for
    the chart).
    """
    if domain not in SAM2LORA_CSV:
        raise BenchError(f"no published SAM2LoRA numbers for {domain!r}; valid: {', '.join(SAM2LORA_CSV)}")
    path = SAM2LORA_CSV[domain]
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise BenchError(f"cannot read the published numbers {path}: {exc}") from None
    if tuple(df.columns) != SAM2LORA_COLUMNS[domain]:
        raise BenchError(f"{path}: expected columns {', '.join(SAM2LORA_COLUMNS[domain])}")
    df["mean_value"] = df["mean"].astype(float)
    if domain == "fundus_vessel":
        df["tolerance"] = df["read_tolerance"].astype(float)
    else:
        df["tolerance"] = df["mean"].map(_half_unit)
    return df
