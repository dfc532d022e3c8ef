"""Losses against their formulas written out independently, and the Trans10K set loss's behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.train.losses import (
    LOSSES,
    balanced_bce_loss,
    mask2former_loss,
    semantic_map,
    structure_loss,
    structure_weighted_loss,
)


def _np_weights(g: np.ndarray) -> np.ndarray:
    """1 + 5 |mean over the 31x31 window (zero padded, divided by 961) - g|, by brute force."""
    h, w = g.shape
    pad = np.pad(g, 15)
    avg = np.array([[pad[i : i + 31, j : j + 31].sum() / 961 for j in range(w)] for i in range(h)])
    return 1 + 5 * np.abs(avg - g)


def _np_bce(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-x))
    return -(g * np.log(p) + (1 - g) * np.log(1 - p))


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 1, 12, 10))
    mask = (rng.random((2, 1, 12, 10)) > 0.6).astype(np.float64)
    return logits, mask


def _wiou(x, g, w):
    p = 1 / (1 + np.exp(-x))
    inter = (p * g * w).sum()
    union = ((p + g) * w).sum()
    return 1 - (inter + 1) / (union - inter + 1)


def test_structure_loss_is_official_quirk_mean_bce_plus_weighted_iou(case) -> None:
    logits, mask = case
    expected_bce = _np_bce(logits, mask).mean()
    wiou = np.mean([_wiou(logits[i, 0], mask[i, 0], _np_weights(mask[i, 0])) for i in range(2)])
    got = structure_loss(torch.tensor(logits), torch.tensor(mask)).item()
    assert got == pytest.approx(expected_bce + wiou, rel=1e-9)


def test_structure_weighted_uses_pixel_weights(case) -> None:
    logits, mask = case
    vals = []
    for i in range(2):
        w = _np_weights(mask[i, 0])
        wbce = (w * _np_bce(logits[i, 0], mask[i, 0])).sum() / w.sum()
        vals.append(wbce + _wiou(logits[i, 0], mask[i, 0], w))
    got = structure_weighted_loss(torch.tensor(logits), torch.tensor(mask)).item()
    assert got == pytest.approx(np.mean(vals), rel=1e-9)
    assert got != pytest.approx(structure_loss(torch.tensor(logits), torch.tensor(mask)).item(), rel=1e-6)


def test_balanced_bce_formula(case) -> None:
    logits, mask = case
    pos = mask.sum()
    neg = mask.size - pos
    p = 1 / (1 + np.exp(-logits))
    per_pixel = -((neg / pos) * mask * np.log(p) + (1 - mask) * np.log(1 - p))
    expected = per_pixel.mean() * pos / (pos + neg)
    got = balanced_bce_loss(torch.tensor(logits), torch.tensor(mask)).item()
    assert got == pytest.approx(expected, rel=1e-9)


def test_balanced_bce_finite_without_foreground() -> None:
    loss = balanced_bce_loss(torch.randn(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    assert torch.isfinite(loss)


def test_mask2former_loss_prefers_the_right_answer_and_ignores_255() -> None:
    torch.manual_seed(0)
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, :8] = 2
    labels[0, 12:, 12:] = 255
    q, classes = 4, 3
    good_masks = torch.full((1, q, 16, 16), -10.0)
    good_masks[0, 0][labels[0] == 0] = 10.0
    good_masks[0, 1][labels[0] == 2] = 10.0
    good_cls = torch.full((1, q, classes + 1), -10.0)
    good_cls[0, 0, 0] = 10.0
    good_cls[0, 1, 2] = 10.0
    good_cls[0, 2:, classes] = 10.0  # the rest say "no object"
    good = mask2former_loss(good_masks, good_cls, labels).item()
    bad = mask2former_loss(-good_masks, good_cls.flip(1), labels).item()
    assert good < 0.05 < bad
    # Pixels labelled 255 do not count: changing predictions there changes nothing.
    other = good_masks.clone()
    other[..., 12:, 12:] = 10.0
    assert mask2former_loss(other, good_cls, labels).item() == pytest.approx(good, abs=1e-6)
    assert semantic_map(good_masks, good_cls)[0, 0, 0].item() == 2
    assert semantic_map(good_masks, good_cls)[0, 10, 3].item() == 0


def test_loss_registry_has_the_official_and_sam2lora_keys() -> None:
    assert set(LOSSES.keys()) == {"structure", "structure_weighted", "balanced_bce", "mask2former", "composite",
                                  "sam2lora"}


def test_set_loss_separates_identical_class_tokens() -> None:
    """The official init copies one token to every class; the matching must still give them
    different gradients, or they would stay copies forever."""
    from benchmark.model.backbones import build_sam
    from benchmark.model.head import SegmentationModel

    torch.manual_seed(0)
    model = SegmentationModel(build_sam("sam_tiny"), num_classes=12)
    assert len(torch.unique(model.mask_tokens.detach(), dim=0)) == 1
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 10:40, 5:30] = 3
    labels[1, 45:, 45:] = 7
    out = model(torch.randn(2, 3, 64, 64))
    mask2former_loss(out.logits, out.class_logits, labels).backward()
    assert len(torch.unique(model.mask_tokens.grad, dim=0)) > 1
