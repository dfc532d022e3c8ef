"""Tables from records: fixed records in, expected text out (expected strings typed by hand)."""

from __future__ import annotations

import json

import pytest

from benchmark.core.errors import BenchError
from benchmark.report.records import load_records, select_backbone
from benchmark.report.tables import render_table, runs_table

COLS = [("kvasir", "sm"), ("sbu", "ber")]
LORA_SIZE = {"trainable_params": 3_997_056, "total_params": 641_582_128}  # 4.00 M, 0.62 %
CONV_SIZE = {"trainable_params": 4_020_096, "total_params": 641_605_168}  # 4.02 M, 0.63 %
# Provenance of a real run (official data, the ViT-H checkpoint): comparable with the paper.
REAL = {
    "data": {"kind": "official", "root": "/data/polyp/polyp", "splits": {}},
    "checkpoint": {"path": "/weights/sam_vit_h_4b8939.pth", "sha256": "0" * 64, "bytes": 2_564_550_879},
    "method_pretrained": True,
}


def record(method, domain, seed, metrics, *, backbone="sam_vit_h", status="ok", preset="paper", size=None):
    return {
        "method": method,
        "backbone": backbone,
        "domain": domain,
        "seed": seed,
        "status": status,
        "error": None if status == "ok" else "boom",
        "preset": preset,
        **REAL,
        "metrics": metrics,
        **(size or LORA_SIZE),
        "train_seconds": 10.0,
        "eval_seconds": 1.0,
        "peak_memory_mb": 512.0,
        "config": {},
        "versions": {},
        "git_commit": "abc1234",
    }


def small_records():
    """LoRA: 2 seeds; Conv-LoRA: 1 seed (no std); BitFit: no record at all."""
    return [
        record("lora", "polyp", 1, {"kvasir": {"sm": 0.900}, "cvc_clinicdb": {"sm": 0.5}}),
        record("lora", "polyp", 2, {"kvasir": {"sm": 0.910}, "cvc_clinicdb": {"sm": 0.5}}),
        record("lora", "sbu", 1, {"sbu": {"ber": 0.0300}}),
        record("lora", "sbu", 2, {"sbu": {"ber": 0.0320}}),
        record("conv_lora", "polyp", 1, {"kvasir": {"sm": 0.920}}, size=CONV_SIZE),
        record("conv_lora", "sbu", 1, {"sbu": {"ber": 0.0350}}, size=CONV_SIZE),
        record("conv_lora", "sbu", 2, {}, status="failed", size=CONV_SIZE),  # failed: never in a table
    ]


def small_table():
    return runs_table("1", small_records(), columns=COLS, methods=("bitfit",))


def write_runs(folder, records):
    for i, r in enumerate(records):
        sub = folder / r["method"] / r["domain"]
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"seed{r['seed']}_{i}.json").write_text(json.dumps(r))
    (folder / "not_a_record.json").write_text(json.dumps({"lr": 1e-4}))
    return folder


# ---- pure rendering, small case ---------------------------------------------------------------------

NOTES = (
    "Ours: x100, mean ± sample std (ddof=1) over seeds; a cell from one seed shows no std.\n"
    "Bold: best method per column (BER: lowest).\n"
)


def test_markdown_small_case():
    expected = (
        "| Method | #Params (M) / Ratio (%) | Kvasir S_alpha ↑ | SBU BER ↓ |\n"
        "|---|---|---|---|\n"
        "| BitFit |  |  |  |\n"
        "| LoRA | 4.00 / 0.62% | 90.5 ± 0.71 | **3.10 ± 0.141** |\n"
        "| Conv-LoRA | 4.02 / 0.63% | **92.0** | 3.50 |\n"
        "\n" + NOTES
    )
    assert render_table(small_table(), "markdown") == expected


def test_latex_small_case():
    expected = (
        "\\begin{tabular}{llcc}\n"
        "\\toprule\n"
        "Method & \\#Params (M) / Ratio (\\%) & \\multicolumn{1}{c}{Kvasir} & \\multicolumn{1}{c}{SBU} \\\\\n"
        "\\cmidrule(lr){3-3} \\cmidrule(lr){4-4}\n"
        " &  & $S_{\\alpha}$ $\\uparrow$ & BER $\\downarrow$ \\\\\n"
        "\\midrule\n"
        "BitFit &  &  &  \\\\\n"
        "LoRA & 4.00 / 0.62\\% & 90.5 $\\pm$ 0.71 & \\textbf{3.10 $\\pm$ 0.141} \\\\\n"
        "Conv-LoRA & 4.02 / 0.63\\% & \\textbf{92.0} & 3.50 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
        "% Ours: x100, mean ± sample std (ddof=1) over seeds; a cell from one seed shows no std.\n"
        "% Bold: best method per column (BER: lowest).\n"
    )
    assert render_table(small_table(), "latex") == expected


def test_csv_small_case():
    expected = (
        "method,dataset,metric,mean,std,n\n"
        "LoRA,Kvasir,S_alpha,90.5,0.71,2\n"
        "LoRA,SBU,BER,3.10,0.141,2\n"
        "Conv-LoRA,Kvasir,S_alpha,92.0,,1\n"
        "Conv-LoRA,SBU,BER,3.50,,1\n"
    )
    assert render_table(small_table(), "csv") == expected


def test_json_small_case():
    assert json.loads(render_table(small_table(), "json")) == [
        {"method": "LoRA", "dataset": "Kvasir", "metric": "S_alpha", "mean": 90.5, "std": 0.71, "n": 2},
        {"method": "LoRA", "dataset": "SBU", "metric": "BER", "mean": 3.10, "std": 0.141, "n": 2},
        {"method": "Conv-LoRA", "dataset": "Kvasir", "metric": "S_alpha", "mean": 92.0, "std": None, "n": 1},
        {"method": "Conv-LoRA", "dataset": "SBU", "metric": "BER", "mean": 3.50, "std": None, "n": 1},
    ]


def test_bold_follows_direction_and_ties_bold_both():
    recs = [
        record("lora", "sbu", 1, {"sbu": {"ber": 0.020}}),
        record("vpt", "sbu", 1, {"sbu": {"ber": 0.040}}),
        record("lora", "polyp", 1, {"kvasir": {"sm": 0.8501}}),
        record("vpt", "polyp", 1, {"kvasir": {"sm": 0.8499}}),  # both print 85.0: a tie as printed
    ]
    rows = {r.key: r for r in runs_table("1", recs, columns=COLS, methods=()).rows}
    assert rows["lora"].cells[("sbu", "ber")].mark == "bold"
    assert rows["vpt"].cells[("sbu", "ber")].mark == ""
    assert rows["lora"].cells[("kvasir", "sm")].mark == rows["vpt"].cells[("kvasir", "sm")].mark == "bold"


def test_single_method_column_is_not_bold():
    recs = [record("lora", "sbu", 1, {"sbu": {"ber": 0.020}})]
    (row,) = runs_table("1", recs, columns=COLS, methods=()).rows
    assert row.cells[("sbu", "ber")].mark == ""


def test_table_2_flattens_class_iou_with_two_decimals():
    recs = [
        record(
            "conv_lora",
            "trans10k",
            s,
            {"trans10k": {"acc": 0.95, "miou": 0.6, "class_iou": [0.9] + [0.5] * 10 + [0.1 + s / 100]}},
            size=CONV_SIZE,
        )
        for s in (1, 2)
    ]
    csv_text = render_table(runs_table("2", recs, methods=()), "csv")
    assert "Conv-LoRA,Trans10K,bg,90.00,0.00,2\n" in csv_text
    assert "Conv-LoRA,Trans10K,box,11.50,0.71,2\n" in csv_text
    assert "Conv-LoRA,Trans10K,mIoU,60.00,0.00,2\n" in csv_text


# ---- records ----------------------------------------------------------------------------------------


def test_load_records_recursive_skips_non_records_and_failed(tmp_path):
    write_runs(tmp_path, small_records())
    recs = load_records(tmp_path)
    assert len(recs) == 6
    assert all(r["status"] == "ok" for r in recs)
    assert len(load_records(tmp_path, status=None)) == 7
    assert load_records(tmp_path, backbone="sam_tiny") == []


def test_unreadable_json_names_the_file(tmp_path):
    write_runs(tmp_path, small_records())
    (tmp_path / "lora" / "broken.json").write_text("{not json")
    with pytest.raises(BenchError, match="broken.json"):
        load_records(tmp_path)


def test_duplicate_ok_records_are_an_error(tmp_path):
    recs = small_records()
    write_runs(tmp_path, recs + [recs[0]])
    with pytest.raises(BenchError, match="two ok records for method=lora"):
        load_records(tmp_path)


def test_several_backbones_need_a_choice():
    recs = [record("lora", "sbu", 1, {}), record("lora", "sbu", 1, {}, backbone="sam_tiny")]
    with pytest.raises(BenchError, match=r"sam_tiny \(1\), sam_vit_h \(1\); choose one with --backbone"):
        select_backbone(recs, None)
    assert select_backbone(recs, "sam_tiny")[1] == [recs[1]]


def test_several_presets_need_a_choice(tmp_path, run_cli):
    runs = write_runs(tmp_path / "runs", [
        record("lora", "sbu", 1, {"sbu": {"ber": 0.03}}, preset="paper"),
        record("lora", "sbu", 2, {"sbu": {"ber": 0.40}}, preset="smoke"),
    ])
    code, _, err = run_cli("table", "--table", "1", "--runs", runs, "--format", "json")
    assert code == 2 and "paper (1), smoke (1); choose one with --preset" in err
    code, out, _ = run_cli("table", "--table", "1", "--runs", runs, "--format", "json", "--preset", "paper")
    assert code == 0
    cells = [c for c in json.loads(out) if c["method"] == "LoRA" and c["metric"] == "BER"]
    assert [c["mean"] for c in cells] == [3.0]


# ---- the command ------------------------------------------------------------------------------------


def test_cli_paper_table_1_rows_as_published(run_cli):
    code, out, _ = run_cli("table", "--table", "1", "--source", "paper")
    assert code == 0
    # typed by hand from the paper; bold = best method, underline = Domain Specific beating every method
    assert (
        "| Domain Specific | * / 100% | 90.9 | 94.4 | <u>92.6</u> | <u>95.5</u> | <u>80.1</u> | <u>87.5</u> "
        "| 80.8 | 85.8 | 73.1 | 3.56 | 62.3 | 74.1 | 59.1 | 73.0 |\n"
    ) in out
    assert (
        "| BitFit | 3.96 / 0.62% | 90.8 ± 0.57 | 93.8 ± 0.98 | 89.0 ± 0.40 | 91.6 ± 0.98 | 76.4 ± 0.45 "
        "| 84.7 ± 0.35 | 86.8 ± 0.33 | 90.7 ± 0.28 | 81.5 ± 0.19 | 3.16 ± 0.128 | 71.4 ± 1.15 | 81.7 ± 1.01 "
        "| 60.6 ± 0.15 | 75.2 ± 0.11 |\n"
    ) in out
    assert (
        "| Conv-LoRA | 4.02 / 0.63% | **92.0 ± 0.15** | **94.7 ± 0.16** | **91.3 ± 0.69** | **94.0 ± 0.78** "
        "| **77.6 ± 0.57** | **85.7 ± 0.36** | **88.3 ± 0.40** | **92.4 ± 0.31** | **84.0 ± 0.34** "
        "| **2.54 ± 0.081** | **74.5 ± 0.39** | **84.3 ± 0.34** | **62.6 ± 0.36** | **76.8 ± 0.27** |\n"
    ) in out
    assert (
        "| decoder-only | 3.51 / 0.55% | 86.5 | 89.5 | 85.5 | 89.9 | 69.7 | 79.5 | 78.5 | 83.1 | 69.8 | 14.58 |"
        in out
    )


def test_cli_paper_table_2_bold_per_column(run_cli):
    code, out, _ = run_cli("table", "--table", "2", "--source", "paper")
    assert code == 0
    assert (
        "| LoRA | 4.00 / 0.62% | 94.80 | 66.01 | 97.50 | 42.17 | 57.82 | **64.35** | 53.44 | 64.08 | **87.28** "
        "| **85.28** | 80.43 | 63.67 | 77.97 | 49.56 |\n"
    ) in out


def test_cli_paper_json_values_as_printed(run_cli):
    code, out, _ = run_cli("table", "--source", "paper", "--format", "json")
    assert code == 0
    items = json.loads(out)
    assert len(items) == 11 * 14
    assert {
        "method": "BitFit",
        "dataset": "SBU",
        "metric": "BER",
        "mean": 3.16,
        "std": 0.128,
        "n": None,
    } in items
    assert {
        "method": "Domain Specific",
        "dataset": "Road",
        "metric": "Dice",
        "mean": 73.0,
        "std": None,
        "n": None,
    } in items


def test_cli_paper_latex_underlines_and_bold(run_cli):
    code, out, _ = run_cli("table", "--source", "paper", "--format", "latex")
    assert code == 0
    assert "Domain Specific & * / 100\\% & 90.9 & 94.4 & \\underline{92.6} & \\underline{95.5} &" in out
    assert "\\textbf{2.54 $\\pm$ 0.081}" in out
    assert out.startswith("\\begin{tabular}{llcccccccccccccc}\n\\toprule\n")


def test_cli_runs_table_missing_methods_are_empty_rows(run_cli, tmp_path):
    write_runs(tmp_path, small_records())
    code, out, _ = run_cli("table", "--runs", tmp_path)
    assert code == 0
    assert "| BitFit |" + "  |" * 15 + "\n" in out
    assert "| LoRA | 4.00 / 0.62% | 90.5 ± 0.71 |  | 50.0 ± 0.00 |" in out
    assert "| Conv-LoRA | 4.02 / 0.63% | **92.0** |  |  |  |" in out


def test_cli_side_by_side(run_cli, tmp_path):
    write_runs(tmp_path, small_records())
    code, out, _ = run_cli("table", "--runs", tmp_path, "--side-by-side")
    assert code == 0
    assert out.startswith("| Method | Dataset | Metric | Ours | n | Paper | Δ (ours − paper) |\n")
    assert "| LoRA | Kvasir | S_alpha ↑ | 90.5 ± 0.71 | 2 | 91.2 ± 0.28 | -0.7 |\n" in out
    assert "| LoRA | SBU | BER ↓ | 3.10 ± 0.141 | 2 | 2.74 ± 0.079 | +0.36 |\n" in out
    assert "| BitFit | Kvasir | S_alpha ↑ |  |  | 90.8 ± 0.57 |  |\n" in out


def test_cli_params_from_runs_and_side_by_side(run_cli, tmp_path):
    write_runs(tmp_path, small_records())
    code, out, _ = run_cli("table", "--table", "params", "--runs", tmp_path)
    assert code == 0
    assert "| LoRA | 4.00 | 0.62 |\n| Conv-LoRA | 4.02 | 0.63 |\n" in out
    assert "| BitFit |  |  |\n" in out
    code, out, _ = run_cli("table", "--table", "params", "--runs", tmp_path, "--side-by-side")
    assert "| LoRA | 4.00 | 4.00 | 0.62 | 0.62 |\n" in out
    assert "| SAM trained from scratch |  | 641.09 |  | 100 |\n" in out


def test_cli_params_from_paper(run_cli):
    code, out, _ = run_cli("table", "--table", "params", "--source", "paper", "--format", "csv")
    assert code == 0
    assert out.startswith(
        "Method,#Params (M),Ratio (%)\nDomain Specific,*,100\nSAM trained from scratch,641.09,100\n"
    )
    assert "Trans2Seg,56.20,100\n" in out


def test_cli_errors_are_one_line_exit_2(run_cli, tmp_path):
    code, _, err = run_cli("table", "--source", "runs")
    assert (code, err) == (2, "error: --source runs needs --runs DIR\n")
    code, _, err = run_cli("table", "--runs", tmp_path / "missing")
    assert code == 2 and err.startswith("error: runs folder not found")
    code, _, err = run_cli("table", "--source", "paper", "--side-by-side")
    assert code == 2 and "--side-by-side" in err
    write_runs(tmp_path, [record("lora", "sbu", 1, {}), record("vpt", "sbu", 1, {}, backbone="sam_tiny")])
    code, _, err = run_cli("table", "--runs", tmp_path)
    assert code == 2 and "several backbones" in err
    code, out, _ = run_cli("table", "--runs", tmp_path, "--backbone", "sam_tiny", "--table", "params")
    assert code == 0 and "| VPT | 4.00 | 0.62 |" in out


def test_smoke_records_say_so_under_the_table(run_cli, tmp_path):
    write_runs(tmp_path, [record("lora", "sbu", 1, {"sbu": {"ber": 0.5}}, preset="smoke")])
    code, out, _ = run_cli("table", "--runs", tmp_path)
    assert code == 0
    assert "SMOKE PRESET: pipeline-check numbers" in out
