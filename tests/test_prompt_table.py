"""The sam2lora table from runs (datasets x prompt modes), from hand-written records."""

from __future__ import annotations

import json

import pytest

from benchmark.core.errors import BenchError
from benchmark.report.report import build_report
from benchmark.report.tables import table_text


def _record(seed: int, by_prompt: dict | None, metrics: dict) -> dict:
    r = {"method": "sam2lora", "backbone": "sam2_tiny", "domain": "fundus_od", "seed": seed, "status": "ok",
         "metrics": metrics, "trainable_params": 10, "total_params": 100}
    if by_prompt is not None:
        r["metrics_by_prompt"] = by_prompt
    return r


def _m(dice: float, auc: float, hd: float) -> dict:
    return {"dice": dice, "auc_img": auc, "hd95": hd, "iou": 0.1}


RECORDS = [
    _record(0, {"box": {"drishtigs": _m(0.80, 0.90, 10.0)}, "none": {"drishtigs": _m(0.50, 0.70, 30.0)}},
            {"drishtigs": _m(0.80, 0.90, 10.0)}),
    _record(1, {"box": {"drishtigs": _m(0.90, 0.94, 14.0)}, "none": {"drishtigs": _m(0.60, 0.72, 34.0)}},
            {"drishtigs": _m(0.90, 0.94, 14.0)}),
    # Evaluated prompt-free only: its metrics are mode none.
    _record(2, None, {"drishtigs": _m(0.70, 0.74, 32.0), "refuge2": _m(0.40, 0.60, 50.0)}),
    {"method": "sam2lora", "domain": "fundus_od", "seed": 3, "status": "failed", "error": "boom"},
]


def test_rows_are_datasets_by_mode_in_the_papers_order_with_mean_and_sample_std() -> None:
    text = table_text(table="sam2lora", source="runs", fmt="markdown", records=RECORDS)
    rows = [line for line in text.splitlines() if line.startswith("| SAM2LoRA")]
    # none over seeds 0, 1, 2: dice (0.5, 0.6, 0.7) -> 0.6 ± 0.1; AUC (0.70, 0.72, 0.74) -> 0.72 ± 0.02;
    # HD95 (30, 34, 32) -> 32 ± 2. box over seeds 0, 1: dice 0.85 ± 0.0707..., HD95 12 ± 2.83.
    assert rows == [
        "| SAM2LoRA | fundus_od | DRISHTI-GS | none | 3 | 0.6000 ± 0.1000 | 0.7200 ± 0.0200 | 32.00 ± 2.00 |",
        "| SAM2LoRA | fundus_od | DRISHTI-GS | box | 2 | 0.8500 ± 0.0707 | 0.9200 ± 0.0283 | 12.00 ± 2.83 |",
        "| SAM2LoRA | fundus_od | REFUGE2 | none | 1 | 0.4000 | 0.6000 | 50.00 |",
    ]
    assert "| Method | Task | Dataset | Prompt | n | Dice | AUC | HD95 (px) |" in text


def test_csv_and_json_carry_the_same_cells() -> None:
    csv = table_text(table="sam2lora", source="runs", fmt="csv", records=RECORDS).splitlines()
    assert csv[0] == "Method,Task,Dataset,Prompt,n,Dice,AUC,HD95 (px)"
    assert csv[3] == "SAM2LoRA,fundus_od,REFUGE2,none,1,0.4000,0.6000,50.00"
    items = json.loads(table_text(table="sam2lora", source="runs", fmt="json", records=RECORDS))
    assert [(i["test_set"], i["prompt"]) for i in items] == [("drishtigs", "none"), ("drishtigs", "box"),
                                                             ("refuge2", "none")]
    assert items[1]["metrics"]["hd95"]["mean"] == pytest.approx(12.0)
    assert items[2]["metrics"]["dice"] == {"n": 1, "mean": 0.4, "std": None}
    assert "iou" not in items[0]["metrics"]  # the layout's metrics only


def test_latex_renders_and_side_by_side_is_refused() -> None:
    assert "\\begin{tabular}" in table_text(table="sam2lora", source="runs", fmt="latex", records=RECORDS)
    with pytest.raises(BenchError, match="--side-by-side is not offered for table sam2lora"):
        table_text(table="sam2lora", source="runs", fmt="markdown", records=RECORDS, side=True)


def test_the_report_carries_the_table() -> None:
    page = build_report(RECORDS)
    assert "## SAM2LoRA: retinal fundus by prompt mode" in page
    assert "| SAM2LoRA | fundus_od | DRISHTI-GS | box | 2 | 0.8500 ± 0.0707 |" in page
