"""Figures from fixed records and files: each writes a PNG and returns what it plotted; the report
embeds the ones its records allow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.predictions import GT_FOLDER, IMAGE_FOLDER, domain_folder, run_folder, save_png
from benchmark.report.figures import plot_cost, plot_experts, plot_qualitative
from benchmark.report.paper import load_paper

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def record(method, seed, jaccard, *, params=40_000, usage=None, domain="isic2017"):
    rec = {
        "method": method, "backbone": "sam_tiny", "domain": domain, "seed": seed, "status": "ok",
        "error": None, "preset": "smoke", "data": {"kind": "synthetic", "root": "/x", "splits": {}},
        "checkpoint": None, "method_pretrained": True,
        "metrics": {"isic2017": {"jaccard": jaccard, "dice": jaccard + 0.1}},
        "trainable_params": params, "total_params": 1_000_000, "train_seconds": 1.0, "eval_seconds": 0.1,
        "peak_memory_mb": 100.0, "config": {"method": {"scales": [1, 2, 3]}}, "versions": {}, "git_commit": "abc",
    }
    if usage is not None:
        rec["expert_usage"] = usage
    return rec


def png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        return im.size


def test_cost_figure_plots_our_means_beside_the_published_points(tmp_path) -> None:
    records = [record("lora", 0, 0.50), record("lora", 1, 0.60), record("vpt", 0, 0.40, params=30_000),
               record("zero_shot", 0, 0.20, params=0)]  # drawn as a line: 0 has no place on a log axis
    data = plot_cost(records, tmp_path / "cost.png")
    width, height = png_size(tmp_path / "cost.png")
    assert width > 400 and height > 300
    ours = {p["method"]: p for p in data["isic2017"] if p["source"] == "ours"}
    assert ours["lora"]["value"] == pytest.approx(55.0) and ours["lora"]["n"] == 2
    assert ours["vpt"]["params"] == 30_000
    assert ours["zero_shot"]["params"] == 0 and ours["zero_shot"]["value"] == pytest.approx(20.0)
    paper = load_paper("1")
    published = {p["method"]: p for p in data["isic2017"] if p["source"] == "paper"}
    row = paper[(paper["method"] == "LoRA") & (paper["dataset"] == "ISIC 2017") & (paper["metric"] == "Jac")].iloc[0]
    assert published["lora"]["value"] == row["mean_value"]
    assert published["lora"]["params"] == pytest.approx(float(row["params_m"]) * 1e6)
    assert "domain_specific" not in published  # a reference row, not a method, and no #Params


def test_expert_figure_shares_sum_over_seeds_and_test_sets(tmp_path) -> None:
    records = [
        record("conv_lora", 0, 0.5, usage={"isic2017": [[4, 0, 0], [1, 1, 2]]}),
        record("conv_lora", 1, 0.5, usage={"isic2017": [[0, 4, 0], [0, 0, 4]]}),
        record("lora", 0, 0.5),
    ]
    data = plot_experts(records, tmp_path / "experts.png")
    assert png_size(tmp_path / "experts.png")[0] > 300
    entry = data["isic2017"]
    assert entry["runs"] == 2 and entry["scales"] == [1, 2, 3]
    assert entry["counts"].tolist() == [[4, 4, 0], [1, 1, 6]]
    assert entry["share"].tolist() == [[0.5, 0.5, 0.0], [0.125, 0.125, 0.75]]


def _write_predictions(out: Path, methods: tuple[str, ...]) -> None:
    rng = np.random.default_rng(0)
    droot = domain_folder(out, "sam_tiny", "isic2017")
    for stem in ("b", "a", "c"):
        save_png(droot / IMAGE_FOLDER / "isic2017" / f"{stem}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        save_png(droot / GT_FOLDER / "isic2017" / f"{stem}.png", np.where(rng.random((16, 16)) > 0.5, 255, 0).astype(np.uint8))
        for m in methods:
            save_png(run_folder(out, "sam_tiny", "isic2017", m, 1) / "isic2017" / f"{stem}.png",
                     rng.integers(0, 255, (16, 16), dtype=np.uint8))


def test_qualitative_grid_shows_the_first_images_and_marks_missing_methods(tmp_path) -> None:
    _write_predictions(tmp_path, ("vpt", "conv_lora"))
    rows = plot_qualitative(tmp_path / "predictions" / "sam_tiny", tmp_path / "q.png", per_domain=2)
    assert png_size(tmp_path / "q.png")[1] > 200
    assert [r["stem"] for r in rows] == ["a", "b"]  # the first two by name
    assert rows[0]["predictions"]["lora"] is None  # not saved: a labelled blank panel
    assert rows[0]["predictions"]["conv_lora"] == run_folder(tmp_path, "sam_tiny", "isic2017", "conv_lora", 1) / "isic2017" / "a.png"


def test_report_embeds_the_figures_its_records_allow(run_cli, tmp_path) -> None:
    runs = tmp_path / "runs"
    for r in [record("vpt", 0, 0.4), record("lora", 0, 0.5), record("conv_lora", 0, 0.6, usage={"isic2017": [[1, 2, 3]]})]:
        path = runs / "sam_tiny" / "isic2017" / r["method"] / "seed0.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    out = tmp_path / "out" / "report.md"
    assert run_cli("report", "--runs", runs, "--out", out)[0] == 0
    page = out.read_text(encoding="utf-8")
    assert "![Accuracy against trainable parameters](report_cost.png)" in page
    assert "![Conv-LoRA expert usage per block](report_experts.png)" in page
    assert "report_qualitative.png" not in page  # no saved predictions yet
    _write_predictions(runs, ("vpt", "lora", "conv_lora"))
    assert run_cli("report", "--runs", runs, "--out", out)[0] == 0
    assert "![Qualitative results](report_qualitative.png)" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "report.md", "report_cost.png", "report_experts.png", "report_qualitative.png"]


def test_figure_command_writes_one_png_or_says_what_is_missing(tmp_path, capsys) -> None:
    from benchmark.cli import main

    runs = tmp_path / "runs"
    path = runs / "sam_tiny" / "isic2017" / "lora" / "seed0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record("lora", 0, 0.5)))
    assert main(["figure", "cost", "--runs", str(runs), "--out", str(tmp_path / "c.png")]) == 0
    assert png_size(tmp_path / "c.png")[0] > 300
    assert main(["figure", "qualitative", "--runs", str(runs), "--out", str(tmp_path / "q.png")]) == 2
    assert "--save-predictions" in capsys.readouterr().err and not (tmp_path / "q.png").exists()
