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
    # beside the published cell (Dice 0.833268 with no prompt; ours 0.60 over seeds 0-2)
    assert "| SAM2LoRA | DRISHTI-GS [none] | Dice ↑ | 60.0 ± 10.00 | 3 | 83.3 |" in page


# Published (results notebook of SAM2LoRA, typed here from ../shared/sam2lora/published_optic_disc_r64.csv):
# DRISHTI-GS, no prompt: Dice 0.833268, AUC 0.996646, HD95 107.039167 px. Vessel chart (read by eye,
# +-0.01): CHASEDB1 Dice 0.82 averaged over the six modes.
SIX = ("none", "points:1", "points:2", "points:5", "box", "points:5+box")


def _vessel(seed: int, dices: dict[str, float]) -> dict:
    return {"method": "sam2lora", "backbone": "sam2_tiny", "domain": "fundus_vessel", "seed": seed, "status": "ok",
            "metrics": {"chasedb1": {"dice": dices["none"]}}, "trainable_params": 10, "total_params": 100,
            "metrics_by_prompt": {m: {"chasedb1": {"dice": d}} for m, d in dices.items()}}


def test_compare_judges_each_mode_against_the_published_cell_and_the_chart_by_the_six_mode_mean() -> None:
    from benchmark.report.prompt_compare import compare_prompt_records

    od = [_record(s, {"none": {"drishtigs": {"dice": dice, "auc_img": 0.996646, "hd95": hd}}}, {})
          for s, dice, hd in ((0, 0.80, 120.0), (1, 0.80, 120.0))]
    vessel = [_vessel(0, dict(zip(SIX, (0.79, 0.80, 0.81, 0.83, 0.84, 0.85), strict=True))),  # mean 0.82
              _vessel(1, {m: 0.5 for m in SIX[:5]})]  # lacks a mode: no six-mode mean, no chart cell
    got = {(v.test_set, v.prompt, v.metric): v for v in compare_prompt_records(od + vessel)}
    assert set(got) == {("drishtigs", "none", "dice"), ("drishtigs", "none", "auc_img"),
                        ("drishtigs", "none", "hd95"), ("chasedb1", "mean", "dice")}
    dice = got["drishtigs", "none", "dice"]
    assert dice.ours == pytest.approx(80.0) and dice.theirs == pytest.approx(83.3268) and dice.n == 2
    assert dice.verdict == "regressed" and dice.sd == 0.0  # two equal seeds: no spread to excuse 3.3 points
    assert got["drishtigs", "none", "auc_img"].verdict == "ok"
    hd95 = got["drishtigs", "none", "hd95"]  # pixels, lower is better: 13 px worse
    assert hd95.diff == pytest.approx(120.0 - 107.039167) and hd95.verdict == "regressed"
    chart = got["chasedb1", "mean", "dice"]
    assert chart.ours == pytest.approx(82.0) and chart.theirs == pytest.approx(82.0) and chart.verdict == "ok"
    assert chart.name == "SAM2LoRA / CHASEDB1 [mean of 6 modes] / Dice"


def test_compare_command_on_sam2lora_runs_names_the_mode(run_cli, tmp_path) -> None:
    folder = tmp_path / "runs" / "sam2_tiny" / "fundus_od" / "sam2lora"
    folder.mkdir(parents=True)
    rec = _record(0, {"box": {"drishtigs": _m(0.95, 0.99, 12.0)}, "none": {"drishtigs": _m(0.80, 0.996646, 107.0)}},
                  {"drishtigs": _m(0.80, 0.996646, 107.0)})
    (folder / "seed0.json").write_text(json.dumps(rec))
    code, out, err = run_cli("compare", "--runs", tmp_path / "runs", "--against", "paper", "--allow-nonofficial")
    assert code == 1
    assert "| SAM2LoRA | DRISHTI-GS [none] | Dice ↑ |" in out and "| SAM2LoRA | DRISHTI-GS [box] | Dice ↑ |" in out
    assert "regressed: SAM2LoRA / DRISHTI-GS [none] / Dice: ours 80.0 vs 83.3" in err
