"""SAM2LoRA's published numbers (results/paper/sam2lora_*) against their verbatim sources, and the loader."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

import pytest

from benchmark.core.errors import BenchError
from benchmark.report.paper import load_sam2lora_paper
from metrics import METRICS

PAPER = Path(__file__).resolve().parents[1] / "results" / "paper"
OD_SOURCE = PAPER / "sam2lora_optic_disc_source.csv"
VESSEL_SOURCE = PAPER / "sam2lora_vessel_source.txt"
# The source's metric columns -> our metric keys (their "auc" is a per-image AUC).
THEIR_COLUMNS = {
    "iou": "iou",
    "auc": "auc_img",
    "dice": "dice",
    "hd95_px": "hd95",
    "accuracy": "acc_img",
    "sensitivity": "sens",
    "specificity": "spec",
    "precision": "prec",
    "mcc": "mcc",
}
DATASETS = ["drishtigs", "g1020", "grape", "origa", "papiladb", "refuge2"]
PROMPTS = ["none", "1 point", "2 points", "5 points", "box", "5 points + box"]


def test_the_source_is_the_verbatim_copy():
    # The hash of ../shared/sam2lora/published_optic_disc_r64.csv when it was copied.
    digest = hashlib.sha256(OD_SOURCE.read_bytes()).hexdigest()
    assert digest == "f10e2ba4908f0b8877a68e9fdaa2ff3c440ecacea9ef852c3d16859e047eec8f"


def test_optic_disc_every_cell_matches_the_source():
    with OD_SOURCE.open(newline="") as f:
        source = list(csv.DictReader(f))
    assert len(source) == 36
    df = load_sam2lora_paper("fundus_od")
    expected = [
        (
            row["dataset"],
            row["prompt"],
            row["pos_prompts"],
            row["neg_prompts"],
            row["box"],
            row["n_test"],
            key,
            row[column],
        )
        for row in source
        for column, key in THEIR_COLUMNS.items()
    ]
    got = list(
        zip(
            df["dataset"],
            df["prompt"],
            df["pos_points"],
            df["neg_points"],
            df["box"],
            df["n_test"],
            df["metric"],
            df["mean"],
            strict=True,
        )
    )
    assert got == expected


def test_optic_disc_holds_each_dataset_and_prompt_mode_once():
    df = load_sam2lora_paper("fundus_od")
    assert len(df) == 6 * 6 * 9
    cells = df.groupby(["dataset", "prompt"]).size()
    assert set(cells.index) == {(d, p) for d in DATASETS for p in PROMPTS}
    assert set(cells) == {9}
    assert set(df["metric"]) <= set(METRICS.keys())
    sizes = df.drop_duplicates("dataset").set_index("dataset")["n_test"].to_dict()
    assert sizes == {
        "drishtigs": "51",
        "g1020": "255",
        "grape": "158",
        "origa": "163",
        "papiladb": "122",
        "refuge2": "400",
    }


def test_eval_mode_matches_the_prompt():
    df = load_sam2lora_paper("fundus_od").drop_duplicates("prompt")
    got = {
        p: (m, n_pos, n_neg, box)
        for p, m, n_pos, n_neg, box in zip(
            df["prompt"], df["eval_mode"], df["pos_points"], df["neg_points"], df["box"], strict=True
        )
    }
    # their test.py: 0 none, 1/2/3 one/two/five points, 5 box, 6 five points + box (4 = 3 as released)
    assert got == {
        "none": ("0", "0", "0", "0"),
        "1 point": ("1", "1", "0", "0"),
        "2 points": ("2", "2", "0", "0"),
        "5 points": ("3", "5", "0", "0"),
        "box": ("5", "0", "0", "1"),
        "5 points + box": ("6", "5", "0", "1"),
    }


@pytest.mark.parametrize(
    ("dataset", "prompt", "metric", "mean"),
    [  # typed by hand from ../shared/sam2lora/published_optic_disc_r64.csv
        ("drishtigs", "none", "iou", "0.734039"),
        ("g1020", "none", "hd95", "348.691401"),
        ("grape", "1 point", "sens", "0.345968"),
        ("refuge2", "2 points", "dice", "0.943121"),
        ("papiladb", "5 points", "auc_img", "0.999337"),
        ("origa", "box", "mcc", "0.921691"),
        ("refuge2", "5 points + box", "prec", "0.921952"),
        ("drishtigs", "box", "auc_img", "0.999849"),
        ("grape", "5 points + box", "acc_img", "0.973432"),
        ("g1020", "2 points", "spec", "0.998526"),
    ],
)
def test_optic_disc_spot_values(dataset, prompt, metric, mean):
    df = load_sam2lora_paper("fundus_od")
    row = df[(df["dataset"] == dataset) & (df["prompt"] == prompt) & (df["metric"] == metric)]
    assert len(row) == 1
    assert row["mean"].item() == mean
    assert row["mean_value"].item() == float(mean)
    assert row["tolerance"].item() == pytest.approx(5e-7)


def test_vessel_chart_readings_match_the_quoted_source():
    quote = VESSEL_SOURCE.read_text(encoding="utf-8")
    line = next(ln for ln in quote.splitlines() if ln.startswith("Vessel at rank 64"))
    assert "+-0.01" in line
    readings = re.findall(r"([A-Z0-9]+) (\.\d+)/(\.\d+)", line)
    assert [name for name, _, _ in readings] == ["CHASEDB1", "DRIVE", "FIVES", "HRF", "STARE"]
    df = load_sam2lora_paper("fundus_vessel")
    expected = [
        (name.lower(), metric, value)
        for name, dice, auc in readings
        for metric, value in (("dice", dice), ("auc_img", auc))
    ]
    got = [
        (d, m, v.removeprefix("0")) for d, m, v in zip(df["dataset"], df["metric"], df["mean"], strict=True)
    ]
    assert got == expected
    assert set(df["prompt"]) == {"mean of 6 modes"}
    assert set(df["tolerance"]) == {0.01}


def test_vessel_hand_typed():
    df = load_sam2lora_paper("fundus_vessel").set_index(["dataset", "metric"])
    assert df.loc[("hrf", "dice"), "mean_value"] == 0.45
    assert df.loc[("drive", "auc_img"), "mean_value"] == 0.955


def test_unknown_domain_is_an_error():
    with pytest.raises(BenchError, match="fundus_od, fundus_vessel"):
        load_sam2lora_paper("fundus")


def test_table_sam2lora_from_paper_reproduces_the_36_published_rows(run_cli) -> None:
    code, out, _ = run_cli("table", "--table", "sam2lora", "--source", "paper", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    od = [r for r in rows if r["Task"] == "optic disc"]
    with OD_SOURCE.open(newline="") as f:
        source = list(csv.DictReader(f))
    assert len(od) == len(source) == 36
    labels = {"drishtigs": "DRISHTI-GS", "g1020": "G1020", "grape": "GRAPE", "origa": "ORIGA",
              "papiladb": "PAPILA", "refuge2": "REFUGE2"}
    ours = {(r["Dataset"], r["Prompt"]): (r["n"], r["Dice"], r["AUC"], r["HD95 (px)"]) for r in od}
    theirs = {(labels[r["dataset"]], r["prompt"]): (r["n_test"], r["dice"], r["auc"], r["hd95_px"]) for r in source}
    assert ours == theirs
    vessel = {r["Dataset"]: (r["Dice"], r["AUC"]) for r in rows if r["Task"] == "vessel (chart)"}
    assert vessel == {"CHASEDB1": ("0.82", "0.98"), "DRIVE": ("0.76", "0.955"), "FIVES": ("0.83", "0.975"),
                      "HRF": ("0.45", "0.835"), "STARE": ("0.80", "0.965")}  # the chart readings (docs/FIDELITY.md#sam2lora-published-numbers), typed by hand
