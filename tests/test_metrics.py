"""Metrics: registry, hand-worked cases, kernels against py-sod-metrics, golden values, streaming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import py_sod_metrics
import pytest
from PIL import Image
from scipy.ndimage import convolve

from benchmark.core.errors import BenchError
from metrics import METRICS, MetricSuite, create_metric, register_metric
from metrics.auc import auc_from_histograms
from metrics.sod import e_measure_curve
from metrics.wfm import gaussian_blur_7x7, matlab_gaussian_1d, weighted_f_measure

GOLDEN = Path(__file__).parent / "golden"
BINARY_KEYS = [k for k in METRICS.keys() if METRICS.get(k).task == "binary"]
ALL_KEYS = ["sm", "em", "wfm", "mae", "iou", "jaccard", "dice", "ber", "acc", "miou", "class_iou", "auc"]
SAM2LORA_KEYS = ["acc_img", "sens", "spec", "prec", "mcc", "biou", "hd95", "auc_img"]
ALL_KEYS += SAM2LORA_KEYS


def score(key: str, pred, gt, **kwargs):
    metric = create_metric(key, **kwargs)
    metric.update(np.asarray(pred, dtype=float), np.asarray(gt, dtype=bool))
    return metric.compute()[key]


def square_mask(shape=(16, 16), lo=5, hi=11) -> np.ndarray:
    gt = np.zeros(shape, bool)
    gt[lo:hi, lo:hi] = True
    return gt


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry_holds_the_paper_metrics():
    assert sorted(METRICS.keys()) == sorted(ALL_KEYS)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_key_builds_and_reports_itself(key):
    metric = create_metric(key, num_classes=3)
    assert key in metric.keys
    assert isinstance(metric.higher_is_better, bool)
    if metric.task == "binary":
        metric.update(np.array([[0.2, 0.9], [0.6, 0.1]]), np.array([[0, 1], [1, 0]], bool))
    else:
        metric.update(np.array([[0, 1], [2, 1]]), np.array([[0, 1], [2, 255]]))
    assert key in metric.compute()
    metric.reset()
    with pytest.raises(BenchError):
        metric.compute()


def test_lower_is_better_only_for_errors():
    suite = MetricSuite(BINARY_KEYS)
    assert {k for k, up in suite.higher_is_better.items() if not up} == {"mae", "ber", "hd95"}


def test_a_new_metric_is_one_class_and_one_registration(monkeypatch):
    # Register into a copy of the registry's table, restored after the test.
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))

    @register_metric
    class MeanPrediction:
        """``toy_mean``: mean predicted probability, averaged over images."""

        keys = ("toy_mean",)
        higher_is_better = True
        task = "binary"

        def __init__(self):
            self.reset()

        def update(self, pred, gt):
            self.total += float(np.mean(pred))
            self.count += 1

        def compute(self):
            return {"toy_mean": self.total / self.count}

        def reset(self):
            self.total, self.count = 0.0, 0

        def merge(self, other):
            self.total += other.total
            self.count += other.count

    suite = MetricSuite("toy_mean,mae")
    suite.update(np.full((4, 4), 0.25), np.zeros((4, 4), bool))
    suite.update(np.full((4, 4), 0.75), np.zeros((4, 4), bool))
    assert suite.compute() == {"toy_mean": 0.5, "mae": 0.5}
    assert create_metric("toy_mean").keys == ("toy_mean",)
    with pytest.raises(ValueError, match="duplicate"):
        register_metric(MeanPrediction)


def test_toy_metric_does_not_leak():
    assert "toy_mean" not in METRICS


def test_registration_rejects_malformed_classes():
    class NoKeys:
        keys = ()
        higher_is_better = True
        task = "binary"
        update = compute = reset = merge = None

    with pytest.raises(ValueError, match="no keys"):
        register_metric(NoKeys)


def test_suite_shares_one_accumulator_per_class():
    suite = MetricSuite(["miou", "acc", "class_iou"], num_classes=3)
    assert len(suite._metrics) == 1
    assert len(MetricSuite("iou,jaccard,dice")._metrics) == 2


def test_suite_errors():
    with pytest.raises(BenchError, match="unknown metric 'nope'"):
        MetricSuite("sm,nope")
    with pytest.raises(BenchError, match="mix binary and multi-class"):
        MetricSuite("sm,miou", num_classes=3)
    with pytest.raises(BenchError, match="num-classes"):
        MetricSuite("miou")
    with pytest.raises(BenchError, match="num_classes"):
        MetricSuite("miou", num_classes=300)


def test_input_checks():
    with pytest.raises(ValueError, match="sigmoid"):
        create_metric("iou").update(np.full((2, 2), 3.0), np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="shape"):
        create_metric("sm").update(np.zeros((2, 2)), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="0/1"):
        create_metric("mae").update(np.zeros((2, 2)), np.full((2, 2), 255))
    with pytest.raises(ValueError, match="outside 0..2"):
        create_metric("miou", num_classes=3).update(np.array([[0, 3]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="outside 0..2"):
        create_metric("miou", num_classes=3).update(np.array([[0, 1]]), np.array([[0, 7]]))


# ---------------------------------------------------------------------------------------------
# Hand-worked cases


def test_perfect_prediction():
    gt = square_mask()
    pred = gt.astype(float)
    n = gt.size
    assert score("sm", pred, gt) == pytest.approx(1.0)
    # Thresholds 255..1 give the exact mask (E = n / (n - 1) each); threshold 0 predicts all
    # foreground, where the alignment is 0 and E = (n / 4) / (n - 1).
    assert score("em", pred, gt) == pytest.approx((255 * n / (n - 1) + n / 4 / (n - 1)) / 256)
    assert score("wfm", pred, gt) == pytest.approx(1.0)
    assert score("mae", pred, gt) == 0.0
    for key in ("iou", "jaccard", "dice", "auc"):
        assert score(key, pred, gt) == 1.0
    assert score("ber", pred, gt) == 0.0


def test_all_wrong_prediction():
    gt = square_mask()
    pred = 1.0 - gt
    assert score("sm", pred, gt) == 0.0
    assert score("mae", pred, gt) == 1.0
    # The error is 1 everywhere and the mask is > 3 px from the border, so the blurred error is
    # 1 inside it too: weighted recall 0.
    assert score("wfm", pred, gt) == 0.0
    for key in ("iou", "dice", "auc"):
        assert score(key, pred, gt) == 0.0
    assert score("ber", pred, gt) == 1.0


def test_empty_gt():
    gt = np.zeros((10, 10), bool)
    clean = np.zeros((10, 10))
    noisy = clean.copy()
    noisy[0, :4] = 0.9  # 4 false positives of 100 pixels
    assert score("iou", clean, gt) == 1.0  # empty prediction of an empty mask: perfect
    assert score("dice", clean, gt) == 1.0
    assert score("iou", noisy, gt) == 0.0
    assert score("dice", noisy, gt) == 0.0
    assert score("ber", clean, gt) == 0.0  # only TNR is defined: 1 - 1
    assert score("ber", noisy, gt) == pytest.approx(1 - (0.96 + 0.0) / 2)  # fg recall 0/0 -> 0, kept
    assert score("wfm", noisy, gt) == 0.0
    assert score("sm", noisy, gt) == pytest.approx(1 - 4 / 100)  # 1 - mean(normalised pred)
    assert score("mae", noisy, gt) == pytest.approx(4 / 100)
    assert score("auc", noisy, gt) == 0.5  # undefined: chance


def test_full_gt():
    gt = np.ones((10, 10), bool)
    pred = np.ones((10, 10))
    pred[:, :3] = 0.2  # 30 misses; normalised to 0
    assert score("sm", pred, gt) == pytest.approx(0.7)  # mean(normalised pred)
    assert score("iou", pred, gt) == pytest.approx(0.7)
    assert score("dice", pred, gt) == pytest.approx(2 * 70 / (70 + 100))
    assert score("ber", pred, gt) == pytest.approx(1 - (0.7 + 0.0) / 2)  # bg absent but predicted
    assert score("ber", np.ones((10, 10)), gt) == 0.0
    assert score("mae", pred, gt) == pytest.approx(0.3)


def test_constant_prediction_is_not_normalised():
    gt = square_mask((10, 10), 0, 5)  # 25 of 100 pixels
    pred = np.full((10, 10), 0.3)
    assert score("mae", pred, gt) == pytest.approx((25 * 0.7 + 75 * 0.3) / 100)
    assert score("sm", pred, gt) > 0.0
    assert score("iou", pred, gt) == 0.0
    assert score("ber", pred, gt) == pytest.approx(0.5)
    assert score("auc", pred, gt) == 0.5  # all ties


def test_thresholds_follow_the_official_code():
    gt = np.array([[True, True, False, False]])
    # IoU/Dice use pred > 0.5 (0.5 itself is background); BER uses pred * 255 > 125.
    pred = np.array([[0.5, 0.51, 0.495, 0.1]])
    assert score("iou", pred, gt) == pytest.approx(1 / 2)
    assert score("ber", pred, gt) == pytest.approx(1 - (1.0 + 0.5) / 2)


def test_auc_hand_worked():
    pred = np.array([[0.1, 0.4, 0.35, 0.8]])
    gt = np.array([[0, 0, 1, 1]], bool)
    assert score("auc", pred, gt) == pytest.approx(0.75)  # 3 of 4 (pos, neg) pairs ordered
    pos = np.array([0, 1, 1])
    neg = np.array([1, 1, 0])
    assert auc_from_histograms(pos, neg) == pytest.approx((1 + 0.5 + 1 + 1) / 4)  # one tie


def test_multiclass_hand_worked():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    out = score_multi(pred, gt, num_classes=3)
    # labelled pixels: 6; correct: (0,0), (1,1), (1,1), (2,2) -> 4
    assert out["acc"] == pytest.approx(4 / 6)
    # class 0: inter 1, union {gt 2 px} + {pred 2 px} - 1 = 3; class 1: 2 / 3; class 2: 1 / 2
    assert out["class_iou"] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert out["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_multiclass_absent_class_counts_zero():
    out = score_multi(np.array([[0, 1]]), np.array([[0, 1]]), num_classes=3)
    assert out["class_iou"] == [1.0, 1.0, 0.0]
    assert out["miou"] == pytest.approx(2 / 3)
    assert score_multi(np.array([[0, 1]]), np.array([[255, 255]]), num_classes=2)["acc"] == 0.0


def score_multi(pred, gt, num_classes):
    suite = MetricSuite("acc,miou,class_iou", num_classes=num_classes)
    suite.update(pred, gt)
    return suite.compute()


# ---------------------------------------------------------------------------------------------
# Re-implemented kernels against py-sod-metrics on random maps


def random_pair(seed: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.random(shape) < rng.uniform(0.1, 0.9)
    pred = np.clip(0.6 * gt + 0.5 * rng.random(shape), 0, 1)
    return pred, gt


SHAPES = [(37, 53), (64, 64), (1, 40), (90, 12)]


@pytest.mark.parametrize("seed", range(len(SHAPES)))
def test_e_measure_matches_py_sod_metrics(seed):
    pred, gt = random_pair(seed, SHAPES[seed])
    for g in (gt, np.zeros_like(gt), np.ones_like(gt)):
        ref = py_sod_metrics.Emeasure()
        ref.gt_fg_numel, ref.gt_size = int(g.sum()), g.size
        np.testing.assert_allclose(
            e_measure_curve(pred, g), ref.cal_em_with_cumsumhistogram(pred, g), atol=1e-12
        )


@pytest.mark.parametrize("seed", range(len(SHAPES)))
def test_weighted_f_matches_py_sod_metrics_with_beta_03(seed):
    pred, gt = random_pair(seed, SHAPES[seed])
    ref = py_sod_metrics.WeightedFmeasure(beta=0.3).cal_wfm(pred, gt)
    assert weighted_f_measure(pred, gt) == pytest.approx(ref, abs=1e-12)
    # The trap: py-sod-metrics' default beta=1 gives a different number.
    assert py_sod_metrics.WeightedFmeasure().cal_wfm(pred, gt) != pytest.approx(ref, abs=1e-6)


def test_separable_blur_equals_the_7x7_convolution():
    image = np.random.default_rng(3).random((70, 45))
    kernel_2d = py_sod_metrics.WeightedFmeasure().matlab_style_gauss2D((7, 7), sigma=5)
    expected = convolve(image, kernel_2d, mode="constant", cval=0)
    np.testing.assert_allclose(gaussian_blur_7x7(image, matlab_gaussian_1d(), block=16), expected, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Golden values (computed once by tests/golden/make_golden.py, independently of this code)


def load_golden_pair(stem: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(Image.open(GOLDEN / "binary" / "pred" / f"{stem}.png")) / 255
    gt = np.asarray(Image.open(GOLDEN / "binary" / "gt" / f"{stem}.png")) > 128
    return pred, gt


GOLDEN_BINARY = json.loads((GOLDEN / "binary.json").read_text())
SAME_SIZE = [s for s in GOLDEN_BINARY["per_image"] if s != "resized"]


@pytest.mark.parametrize("stem", SAME_SIZE)
def test_golden_per_image(stem):
    pred, gt = load_golden_pair(stem)
    expected = GOLDEN_BINARY["per_image"][stem]
    for key in BINARY_KEYS:
        if expected[key] is None:
            continue
        assert score(key, pred, gt) == pytest.approx(expected[key], abs=1e-9), key


# ---------------------------------------------------------------------------------------------
# Streaming: one pass == many small ones == merged shards


def test_streaming_and_merge_invariance():
    pairs = [load_golden_pair(stem) for stem in SAME_SIZE]
    one = MetricSuite(BINARY_KEYS)
    for pred, gt in pairs:
        one.update(pred, gt)
    shards = [MetricSuite(BINARY_KEYS) for _ in range(3)]
    for i, (pred, gt) in enumerate(pairs):
        shards[i % 3].update(pred, gt)
    merged = MetricSuite(BINARY_KEYS)
    for shard in shards:
        merged.merge(shard)
    expected = one.compute()
    for key, value in merged.compute().items():
        assert value == pytest.approx(expected[key], abs=1e-12), key
    # reset empties the statistics: the same images again give the same numbers
    one.reset()
    for pred, gt in pairs:
        one.update(pred, gt)
    assert one.compute() == pytest.approx(expected, abs=1e-12)


def test_multiclass_merge_equals_one_pass():
    rng = np.random.default_rng(1)
    images = [
        (rng.integers(0, 4, (9, 7)), np.where(rng.random((9, 7)) < 0.1, 255, rng.integers(0, 4, (9, 7))))
        for _ in range(5)
    ]
    one = MetricSuite("acc,miou,class_iou", num_classes=4)
    a, b = (MetricSuite("acc,miou,class_iou", num_classes=4) for _ in range(2))
    for i, (pred, gt) in enumerate(images):
        one.update(pred, gt)
        (a if i < 2 else b).update(pred, gt)
    a.merge(b)
    assert a.compute() == one.compute()


def test_merge_rejects_other_keys():
    with pytest.raises(ValueError, match="cannot merge"):
        MetricSuite("sm").merge(MetricSuite("mae"))


def test_every_metric_module_is_discovered_and_registers_metrics() -> None:
    """A new metric is one file in metrics/: discovered by import, no list to edit."""
    import pkgutil

    import metrics
    from metrics import METRICS

    modules = {f"metrics.{m.name}" for m in pkgutil.iter_modules(metrics.__path__)} - {
        "metrics.base", "metrics.registry", "metrics.suite"}
    registered = {METRICS.get(k).__module__ for k in METRICS.keys()}
    assert modules == registered
