"""Write the golden inputs and values in tests/golden/ (run once; the outputs are committed).

    PYTHONPATH=. python tests/golden/make_golden.py

Independent of the code under test: it never imports ``metrics`` or ``benchmark``. S, E, F^w and
MAE come from py-sod-metrics called directly with the protocol's arguments (min-max normalised
map, GT > 128, ``WeightedFmeasure(beta=0.3)``, mean E-measure = mean of the 256-threshold curve);
AUC from scikit-learn on all pixels; IoU, Dice, BER, accuracy and class IoU from plain numpy
written out below; the resized case from torch ``interpolate`` (bilinear / nearest). The SAM2LoRA
per-image metrics: accuracy, sensitivity, specificity, precision, MCC and per-image AUC from
scikit-learn (``zero_division=0`` as the authors' 0 for an empty denominator); boundary IoU and
HD95 from contours found by comparing each pixel with its four neighbours (padding: foreground for
boundary IoU as scikit-image's erosion, background for HD95 as medpy's) and, for HD95, all
pairwise distances (scipy ``cdist``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import py_sod_metrics
import torch
from PIL import Image
from scipy.spatial.distance import cdist
from sklearn.metrics import (
    accuracy_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

HERE = Path(__file__).parent
H, W = 48, 64
NUM_CLASSES = 4


def blob(cy: float, cx: float, ry: float, rx: float, shape=(H, W)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def smooth_noise(rng: np.random.Generator, shape=(H, W)) -> np.ndarray:
    low = rng.random((shape[0] // 8 + 1, shape[1] // 8 + 1))
    return np.kron(low, np.ones((8, 8)))[: shape[0], : shape[1]] * 0.5 + rng.random(shape) * 0.5


def binary_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """stem -> (pred uint8, gt uint8 0/255)."""
    rng = np.random.default_rng(2024)
    gt = blob(22, 30, 12, 18)
    soft = np.clip(0.75 * gt + 0.35 * smooth_noise(rng) - 0.1, 0, 1)
    full = np.ones((H, W), bool)
    empty = np.zeros((H, W), bool)
    cases = {
        "blob": (soft, gt),
        "blob2": (np.clip(0.6 * blob(20, 36, 14, 12) + 0.4 * rng.random((H, W)), 0, 1), blob(24, 34, 12, 14)),
        "perfect": (gt.astype(float), gt),
        "inverted": (1.0 - gt, gt),
        "empty_gt": (np.where(rng.random((H, W)) < 0.05, 0.9, 0.1), empty),
        "empty_both": (np.zeros((H, W)), empty),
        "full_gt": (np.clip(0.5 + 0.6 * smooth_noise(rng) - 0.3, 0, 1), full),
        "constant": (np.full((H, W), 77 / 255), gt),
    }
    out = {
        stem: ((p * 255).round().astype(np.uint8), g.astype(np.uint8) * 255) for stem, (p, g) in cases.items()
    }
    # A prediction at half resolution: the evaluator resizes it to the GT (bilinear).
    small = (np.clip(0.7 * blob(11, 15, 6, 9, (24, 32)) + 0.3 * rng.random((24, 32)), 0, 1) * 255).round()
    out["resized"] = (small.astype(np.uint8), gt.astype(np.uint8) * 255)
    return out


def prepared(pred_u8: np.ndarray, gt_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protocol input: probabilities (torch bilinear to the GT size if needed) and GT > 128."""
    pred = pred_u8.astype(np.float64) / 255
    if pred.shape != gt_u8.shape:
        t = torch.from_numpy(pred)[None, None]
        pred = torch.nn.functional.interpolate(t, size=gt_u8.shape, mode="bilinear", align_corners=False)[
            0, 0
        ]
        pred = pred.numpy().clip(0, 1)
    return pred, gt_u8 > 128


def sod_reference(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    p = pred if pred.max() == pred.min() else (pred - pred.min()) / (pred.max() - pred.min())
    sm, em, wfm, mae = (
        py_sod_metrics.Smeasure(alpha=0.5),
        py_sod_metrics.Emeasure(),
        py_sod_metrics.WeightedFmeasure(beta=0.3),
        py_sod_metrics.MAE(),
    )
    for meter in (sm, em, wfm, mae):
        meter.step(p, gt, normalize=False)
    return {
        "sm": float(sm.get_results()["sm"]),
        "em": float(em.get_results()["em"]["curve"].mean()),
        "wfm": float(wfm.get_results()["wfm"]),
        "mae": float(mae.get_results()["mae"]),
    }


def overlap_reference(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    fg = pred > 0.5
    inter, union = np.sum(fg & gt), np.sum(fg | gt)
    iou = inter / union if union else 1.0
    dice = 2 * inter / (fg.sum() + gt.sum()) if (fg.sum() + gt.sum()) else 1.0
    # BER as torchmetrics' macro accuracy: per class recall, a class with no GT, no prediction
    # left out; a class with no GT but predicted counts recall 0.
    fg_ber = pred * 255 > 125
    recalls = []
    for cls_pred, cls_gt in ((fg_ber, gt), (~fg_ber, ~gt)):
        if not (cls_pred.any() or cls_gt.any()):
            continue
        recalls.append(np.sum(cls_pred & cls_gt) / cls_gt.sum() if cls_gt.any() else 0.0)
    return {"iou": float(iou), "jaccard": float(iou), "dice": float(dice), "ber": float(1 - np.mean(recalls))}


def four_neighbour_contour(mask: np.ndarray, outside: bool) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask; pixels beyond the image are ``outside``."""
    padded = np.pad(mask, 1, constant_values=outside)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def sam2lora_reference(pred: np.ndarray, gt: np.ndarray) -> dict[str, float | None]:
    fg = pred > 0.5
    b_pred, b_gt = four_neighbour_contour(fg, True), four_neighbour_contour(gt, True)
    union = np.sum(b_pred | b_gt)
    if fg.any() and gt.any():
        s_pred = np.argwhere(four_neighbour_contour(fg, False))
        s_gt = np.argwhere(four_neighbour_contour(gt, False))
        d = cdist(s_pred, s_gt)
        hd95 = float(np.percentile(np.concatenate((d.min(axis=1), d.min(axis=0))), 95))
    else:
        hd95 = float(np.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    return {
        "acc_img": float(accuracy_score(gt.ravel(), fg.ravel())),
        "sens": float(recall_score(gt.ravel(), fg.ravel(), zero_division=0)),
        "spec": float(recall_score(~gt.ravel(), ~fg.ravel(), zero_division=0)),
        "prec": float(precision_score(gt.ravel(), fg.ravel(), zero_division=0)),
        "mcc": float(matthews_corrcoef(gt.ravel(), fg.ravel())),
        "biou": float(np.sum(b_pred & b_gt) / union) if union else 0.0,
        "hd95": hd95,
        "auc_img": float(roc_auc_score(gt.ravel(), pred.ravel())) if 0 < gt.mean() < 1 else None,
    }


def write_binary() -> None:
    folder = HERE / "binary"
    (folder / "pred").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(parents=True, exist_ok=True)
    per_image, all_pred, all_gt = {}, [], []
    for stem, (pred_u8, gt_u8) in binary_cases().items():
        Image.fromarray(pred_u8).save(folder / "pred" / f"{stem}.png")
        Image.fromarray(gt_u8).save(folder / "gt" / f"{stem}.png")
        pred_u8 = np.asarray(Image.open(folder / "pred" / f"{stem}.png"))
        gt_u8 = np.asarray(Image.open(folder / "gt" / f"{stem}.png"))
        pred, gt = prepared(pred_u8, gt_u8)
        values = sod_reference(pred, gt) | overlap_reference(pred, gt) | sam2lora_reference(pred, gt)
        values["auc"] = float(roc_auc_score(gt.ravel(), pred.ravel())) if 0 < gt.mean() < 1 else None
        per_image[stem] = values
        all_pred.append(pred.ravel())
        all_gt.append(gt.ravel())
    keys = ["sm", "em", "wfm", "mae", "iou", "jaccard", "dice", "ber"]
    keys += ["acc_img", "sens", "spec", "prec", "mcc", "biou", "hd95"]
    mean = {k: float(np.mean([v[k] for v in per_image.values()])) for k in keys}
    # Per-image AUC: the mean over the images whose GT holds both classes.
    mean["auc_img"] = float(np.mean([v["auc_img"] for v in per_image.values() if v["auc_img"] is not None]))
    mean["auc"] = float(roc_auc_score(np.concatenate(all_gt), np.concatenate(all_pred)))
    with open(HERE / "binary.json", "w") as f:
        json.dump({"per_image": per_image, "dataset": mean, "n_images": len(per_image)}, f, indent=2)


def write_multiclass() -> None:
    rng = np.random.default_rng(7)
    folder = HERE / "multiclass"
    (folder / "pred").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(parents=True, exist_ok=True)
    pairs = {}
    for i in range(3):
        gt = np.kron(rng.integers(0, NUM_CLASSES, (5, 8)), np.ones((8, 8), int)).astype(np.uint8)[:40, :]
        pred = gt.copy()
        flip = rng.random(gt.shape) < 0.15
        pred[flip] = rng.integers(0, NUM_CLASSES, flip.sum())
        gt[rng.random(gt.shape) < 0.05] = 255
        pairs[f"img{i}"] = (pred, gt)
    # Half-resolution prediction: nearest-neighbour resize to the GT size.
    gt = np.kron(rng.integers(0, NUM_CLASSES, (5, 8)), np.ones((8, 8), int)).astype(np.uint8)
    pairs["resized"] = (gt[::2, ::2].copy(), gt)
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    correct = labelled = 0
    for stem, (pred, gt) in pairs.items():
        Image.fromarray(pred).save(folder / "pred" / f"{stem}.png")
        Image.fromarray(gt).save(folder / "gt" / f"{stem}.png")
        if pred.shape != gt.shape:
            t = torch.from_numpy(pred.astype(np.float32))[None, None]
            pred = (
                torch.nn.functional.interpolate(t, size=gt.shape, mode="nearest")[0, 0]
                .numpy()
                .astype(np.uint8)
            )
        valid = gt != 255
        correct += np.sum((pred == gt) & valid)
        labelled += np.sum(valid)
        for c in range(NUM_CLASSES):
            inter[c] += np.sum((pred == c) & (gt == c) & valid)
            union[c] += np.sum(((pred == c) | (gt == c)) & valid)
    iou = inter / union
    with open(HERE / "multiclass.json", "w") as f:
        json.dump(
            {
                "num_classes": NUM_CLASSES,
                "acc": float(correct / labelled),
                "miou": float(iou.mean()),
                "class_iou": [float(v) for v in iou],
                "n_images": len(pairs),
            },
            f,
            indent=2,
        )


if __name__ == "__main__":
    write_binary()
    write_multiclass()
