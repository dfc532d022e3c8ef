"""Saved predictions (``run --save-predictions N``): the layout, the encoding, and the round trip
through ``evaluate`` back to the record's metrics; Conv-LoRA's expert usage in the record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.data.datasets import list_samples
from benchmark.data.domains import DOMAINS
from benchmark.data.predictions import (
    GT_FOLDER,
    IMAGE_FOLDER,
    domain_folder,
    quantise_probability,
    run_folder,
)
from benchmark.data.synth import synth_domain
from benchmark.report.evaluate import evaluate_folders
from benchmark.train.runner import run_grid

FAST = ["epochs=1", "max_train_images=4"]
# Thresholded metrics (IoU/Jaccard, Dice at 0.5; BER at 125/255) must be equal: the 8-bit encoding
# keeps every pixel on its side of both thresholds. The SOD metrics (S-measure, E-measure, weighted
# F, MAE) are threshold-free and min-max normalise each map first (metrics/sod.py), so one level of
# rounding becomes 1/R of the normalised range for a map spanning R grey levels: about 1/255 for a
# trained model, but the smoke preset's random tiny SAM gives near-constant maps (R of 5 to 10), where
# 8-bit PNGs cannot hold its numbers. Their tolerance is therefore stated in levels of the saved map.
THRESHOLD_FREE = {"sm", "em", "wfm", "mae"}
LEVEL = 1 / 255


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for key in ("polyp", "isic2017", "sbu"):
        synth_domain(key, root, n=4, seed=0)
    return root


def _grey_range(path: Path) -> int:
    with Image.open(path) as im:
        arr = np.asarray(im, dtype=np.int64)
    return max(int(arr.max() - arr.min()), 1)


def test_quantised_levels_keep_every_threshold_side() -> None:
    # Probabilities around both thresholds the metrics apply, as float32 like the model's output.
    prob = np.concatenate([np.linspace(0.48, 0.52, 4001), np.linspace(0, 1, 1001), [0.5, 125 / 255]]).astype(np.float32)
    q = quantise_probability(prob[None, :])[0]
    back, prob = q / 255.0, prob.astype(np.float64)  # what `evaluate` reads; the metrics' dtype
    assert np.array_equal(back > 0.5, prob > 0.5)
    assert np.array_equal(back * 255 > 125, prob * 255 > 125)
    assert np.abs(back - prob).max() <= LEVEL + 1e-9


def test_saved_predictions_round_trip_through_evaluate(data_root, tmp_path) -> None:
    out = tmp_path / "runs"
    records = run_grid(methods=["lora"], domains=["polyp", "isic2017", "sbu"], seeds=[0], out=out,
                       data_root=data_root, sets=FAST, progress=False, save_predictions=1000)
    assert [r["status"] for r in records] == ["ok"] * 3
    for record in records:
        domain = DOMAINS.get(record["domain"])
        for test_set, recorded in record["metrics"].items():
            pred_dir = run_folder(out, "sam_tiny", domain.key, "lora", 0) / test_set
            gt_dir = domain_folder(out, "sam_tiny", domain.key) / GT_FOLDER / test_set
            scored = evaluate_folders(pred_dir, gt_dir, metrics=domain.test_metrics, progress=False)
            assert scored["n_images"] == len(list_samples(domain, data_root, test_set))  # all, paired by stem
            for metric, value in recorded.items():
                if metric in THRESHOLD_FREE:
                    levels = min(_grey_range(f) for f in pred_dir.glob("*.png"))
                    assert scored[metric] == pytest.approx(value, abs=4 / levels), (test_set, metric, levels)
                else:
                    assert scored[metric] == value, (test_set, metric)
    # The official protocol's size: the model's input square, for prediction, GT and image alike.
    image_dir = domain_folder(out, "sam_tiny", "sbu") / IMAGE_FOLDER / "sbu"
    files = sorted(image_dir.iterdir())
    with Image.open(files[0]) as im:
        assert (im.size, im.mode) == ((64, 64), "RGB")


def test_save_predictions_writes_the_first_n_and_conv_lora_records_expert_usage(data_root, tmp_path) -> None:
    out = tmp_path / "runs"
    record = run_grid(methods=["conv_lora"], domains=["polyp"], seeds=[0], out=out, data_root=data_root,
                      sets=FAST, progress=False, save_predictions=2)[0]
    for test_set in ("kvasir", "cvc_clinicdb"):
        saved = sorted((run_folder(out, "sam_tiny", "polyp", "conv_lora", 0) / test_set).glob("*.png"))
        assert len(saved) == 2
        with Image.open(saved[0]) as im:
            assert (im.size, im.mode) == ((64, 64), "L")
    usage = json.loads((out / "sam_tiny/polyp/conv_lora/seed0.json").read_text())["expert_usage"]
    assert usage == record["expert_usage"] and set(usage) == {"kvasir", "cvc_clinicdb"}
    counts = np.array(usage["kvasir"])
    assert counts.shape == (4, 8)  # sam_tiny's 4 blocks x 8 scales
    # Top-1 routing: each layer routes every sample (image or window) of the test images once.
    assert counts.sum(axis=1).min() >= len(list_samples("polyp", data_root, "kvasir"))
