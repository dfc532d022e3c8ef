"""The SAM2LoRA per-image metrics (``acc_img``, ``sens``, ``spec``, ``prec``, ``mcc``, ``biou``,
``hd95``, ``auc_img``) against scikit-learn, brute-force distances and hand-worked masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import (
    accuracy_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from metrics import MetricSuite, create_metric
from metrics.boundary import inner_boundary

KEYS = ["acc_img", "sens", "spec", "prec", "mcc", "biou", "hd95", "auc_img"]


def score(key: str, pred, gt) -> float:
    metric = create_metric(key)
    metric.update(np.asarray(pred, dtype=float), np.asarray(gt, dtype=bool))
    return metric.compute()[key]


def blob(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy probability map and a mask: ellipses (some cut by the image edge) or scattered pixels."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(8, 40)), int(rng.integers(8, 40)))
    h, w = shape
    if seed % 3 == 2:
        gt = rng.random(shape) < 0.3
    else:
        gt = blob(shape, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, h), rng.uniform(2, w))
    pred = np.clip(0.55 * gt + 0.6 * rng.random(shape) - 0.1, 0, 1)
    pred[rng.random(shape) < 0.05] = 0.5  # exactly at the threshold: background
    return pred, gt


# ---------------------------------------------------------------------------------------------
# Against independent computations


@pytest.mark.parametrize("seed", range(12))
def test_rates_and_auc_match_scikit_learn(seed):
    pred, gt = random_case(seed)
    t, p = gt.ravel(), (pred > 0.5).ravel()
    assert score("acc_img", pred, gt) == pytest.approx(accuracy_score(t, p), abs=1e-12)
    # zero_division=0: the authors' 0 for an empty denominator
    assert score("sens", pred, gt) == pytest.approx(recall_score(t, p, zero_division=0), abs=1e-12)
    assert score("spec", pred, gt) == pytest.approx(recall_score(~t, ~p, zero_division=0), abs=1e-12)
    assert score("prec", pred, gt) == pytest.approx(precision_score(t, p, zero_division=0), abs=1e-12)
    assert score("mcc", pred, gt) == pytest.approx(matthews_corrcoef(t, p), abs=1e-12)
    assert score("auc_img", pred, gt) == pytest.approx(roc_auc_score(t, pred.ravel()), abs=1e-12)


@pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn on one-class input
@pytest.mark.parametrize("gt_fill", [False, True], ids=["empty_gt", "full_gt"])
@pytest.mark.parametrize("pred_value", [0.0, 0.9])
def test_one_class_images_match_scikit_learn(gt_fill, pred_value):
    gt = np.full((6, 7), gt_fill)
    pred = np.full((6, 7), 0.2)
    pred[1:3, 2:5] = pred_value
    t, p = gt.ravel(), (pred > 0.5).ravel()
    assert score("sens", pred, gt) == recall_score(t, p, zero_division=0)
    assert score("spec", pred, gt) == recall_score(~t, ~p, zero_division=0)
    assert score("prec", pred, gt) == precision_score(t, p, zero_division=0)
    assert score("mcc", pred, gt) == matthews_corrcoef(t, p) == 0.0


def contour(mask: np.ndarray, outside: bool) -> np.ndarray:
    """Mask pixels with a 4-neighbour not in the mask, by explicit loops; beyond the image = ``outside``."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for y in range(h):
        for x in range(w):
            if not mask[y, x]:
                continue
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                inside = 0 <= ny < h and 0 <= nx < w
                if not (mask[ny, nx] if inside else outside):
                    out[y, x] = True
    return out


def brute_hd95(fg: np.ndarray, gt: np.ndarray) -> float:
    """medpy's hd95 written out: surfaces with the image edge as background, all pairwise distances."""
    a, b = np.argwhere(contour(fg, False)), np.argwhere(contour(gt, False))
    d = cdist(a, b)
    return float(np.percentile(np.concatenate((d.min(axis=1), d.min(axis=0))), 95))


@pytest.mark.parametrize("seed", range(12))
def test_hd95_and_boundary_iou_match_brute_force(seed):
    pred, gt = random_case(seed)
    fg = pred > 0.5
    assert fg.any() and gt.any()
    assert score("hd95", pred, gt) == pytest.approx(brute_hd95(fg, gt), abs=1e-9)
    b_pred, b_gt = contour(fg, True), contour(gt, True)
    union = np.sum(b_pred | b_gt)
    expected = np.sum(b_pred & b_gt) / union if union else 0.0
    assert score("biou", pred, gt) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Hand-worked


def test_boundary_iou_hand_worked():
    gt = np.zeros((7, 7), bool)
    gt[1:5, 1:5] = True  # 4x4: a ring of 12 pixels
    pred = np.zeros((7, 7), bool)
    pred[1:5, 1:6] = True  # 4x5: a ring of 14; GT's column 4 rows 2-3 is inside it
    # shared: rows 1 and 4 at columns 1..4 (8) and column 1 at rows 2, 3 (2) -> 10 of 12 + 14 - 10
    assert score("biou", pred, gt) == pytest.approx(10 / 16)
    assert score("biou", gt, gt) == 1.0


def test_boundary_uses_the_cross_and_not_the_image_edge():
    mask = np.ones((5, 5), bool)
    mask[0, 0] = False
    # (1, 1) touches the background only diagonally: no boundary under the 3x3 cross; the image
    # edge is not a contour (scikit-image's erosion treats outside pixels as foreground).
    expected = np.zeros((5, 5), bool)
    expected[0, 1] = expected[1, 0] = True
    np.testing.assert_array_equal(inner_boundary(mask), expected)
    np.testing.assert_array_equal(inner_boundary(mask, width=2).sum(), 2 + 3)  # + (0,2), (1,1), (2,0)
    half = np.zeros((4, 6), bool)
    half[:, :3] = True  # touches three image edges: only column 2 is boundary
    np.testing.assert_array_equal(np.argwhere(inner_boundary(half))[:, 1], [2, 2, 2, 2])
    wider = np.zeros((4, 6), bool)
    wider[:, :4] = True
    assert score("biou", wider, half) == 0.0  # boundaries at columns 3 and 2: disjoint


def test_hd95_hand_worked():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[1, 1] = True
    b[4, 5] = True  # (3, 4) away: every surface distance is 5
    assert score("hd95", a, b) == pytest.approx(5.0)
    assert score("hd95", a, a) == 0.0
    # The image edge is surface for HD95: a full GT's surface is the frame; a full prediction
    # matches it exactly.
    assert score("hd95", np.ones((6, 8)), np.ones((6, 8), bool)) == 0.0


def test_empty_masks_score_the_grid_diagonal():
    empty = np.zeros((1024, 1024), bool)
    disc = blob((1024, 1024), 500, 500, 100, 100)
    assert score("hd95", empty, disc) == pytest.approx(1448.1547, abs=1e-4)
    assert score("hd95", disc, empty) == pytest.approx(math.sqrt(2) * 1024)
    assert score("hd95", np.zeros((3, 4)), np.zeros((3, 4), bool)) == 5.0  # even when both are empty


def test_degenerate_images_follow_the_authors():
    empty = np.zeros((6, 6), bool)
    assert score("sens", empty, empty) == 0.0  # tp / (tp + fn) = 0 / 0 -> 0
    assert score("spec", empty, empty) == 1.0
    assert score("prec", empty, empty) == 0.0  # no prediction -> 0
    assert score("mcc", empty, empty) == 0.0  # one class -> 0, even when perfect
    assert score("acc_img", empty, empty) == 1.0
    assert score("biou", empty, empty) == 0.0  # no boundary -> 0
    full = np.ones((6, 6), bool)
    assert score("spec", full, full) == 0.0  # tn / (tn + fp) = 0 / 0 -> 0
    assert score("sens", full, full) == score("prec", full, full) == 1.0
    assert score("biou", full, full) == 0.0  # no in-image background: no boundary
    # iou and dice keep their convention (both empty = 1; the authors' 0 never reaches their numbers)
    assert score("iou", empty, empty) == score("dice", empty, empty) == 1.0


def test_mcc_hand_worked():
    gt = np.array([[1, 1, 1, 0, 0, 0, 0, 0]], bool)
    pred = np.array([[1, 1, 0, 1, 0, 0, 0, 0]], float)
    # tp 2, fn 1, fp 1, tn 4: (8 - 1) / sqrt(3 * 3 * 5 * 5)
    assert score("mcc", pred, gt) == pytest.approx(7 / 15)
    assert score("acc_img", pred, gt) == pytest.approx(6 / 8)


# ---------------------------------------------------------------------------------------------
# Per-image AUC: exact ranks, undefined images


def test_image_auc_hand_worked_and_exact_near_one():
    pred = np.array([[0.1, 0.4, 0.35, 0.8, 0.4]])
    gt = np.array([[0, 0, 1, 1, 1]], bool)
    # pairs (pos, neg): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both, 0.4 > 0.1, 0.4 = 0.4 -> (1+0+2+1+0.5) / 6
    assert score("auc_img", pred, gt) == pytest.approx(4.5 / 6)
    # Scores 1e-7 apart are not ties here; the pooled AUC's 16-bit histogram merges them.
    close = np.array([[1 - 1e-7, 1 - 2e-7]])
    one_pos = np.array([[True, False]])
    assert score("auc_img", close, one_pos) == 1.0
    assert score("auc", close, one_pos) == 0.5


def test_image_auc_leaves_one_class_images_out_of_the_mean():
    pred = np.array([[0.1, 0.4, 0.35, 0.8]])
    gt = np.array([[0, 0, 1, 1]], bool)
    metric = create_metric("auc_img")
    metric.update(pred, gt)  # 0.75
    metric.update(pred, np.zeros_like(gt))  # undefined: left out
    metric.update(1 - pred, gt)  # 0.25
    metric.update(pred, np.ones_like(gt))  # undefined: left out
    assert metric.compute()["auc_img"] == pytest.approx(0.5)
    metric.reset()
    metric.update(pred, gt)
    assert metric.compute()["auc_img"] == pytest.approx(0.75)
    only_undefined = create_metric("auc_img")
    only_undefined.update(pred, np.zeros_like(gt))
    assert only_undefined.compute()["auc_img"] == 0.5  # chance, never NaN


# ---------------------------------------------------------------------------------------------
# Streaming


def test_streaming_one_pass_equals_shards_and_per_image_mean():
    cases = [random_case(seed) for seed in range(9)]
    cases.append((np.full((10, 12), 0.7), np.zeros((10, 12), bool)))  # undefined AUC, diagonal HD95
    one = MetricSuite(KEYS)
    shards = [MetricSuite(KEYS) for _ in range(4)]
    for i, (pred, gt) in enumerate(cases):
        one.update(pred, gt)
        shards[i % 4].update(pred, gt)
    for shard in shards[1:]:
        shards[0].merge(shard)
    result = one.compute()
    assert shards[0].compute() == pytest.approx(result, abs=1e-12)
    for key in KEYS:
        per_image = [score(key, pred, gt) for pred, gt in cases if key != "auc_img" or 0 < gt.mean() < 1]
        assert result[key] == pytest.approx(np.mean(per_image), abs=1e-12), key
