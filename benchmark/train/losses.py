"""Training losses of the official Conv-LoRA run script, registered by key.

``structure`` is the official behaviour (PraNet's structure loss with the legacy-argument quirk),
``structure_weighted`` the pixel-weighted BCE PraNet intended, ``balanced_bce`` the SBU loss,
``mask2former`` the set loss for Trans10K, ``composite`` the three terms of SAM2LoRA's loss per
image, and ``sam2lora`` the SAM2LoRA authors' loss as they compute it (pooled over the batch, plus
the IoU-head term). Binary losses take logits (B, 1, H, W) and a float mask in {0, 1} of the same
shape (``sam2lora`` also the IoU head's prediction, keyword ``iou_pred``, (B, 1)); ``mask2former``
takes the model output and int labels (B, H, W).
The facts with their sources: docs/FIDELITY.md#losses and docs/FIDELITY.md#sam2lora-loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from benchmark.core.registry import Registry

IGNORE_INDEX = 255
LOSSES: Registry[Callable[..., torch.Tensor]] = Registry("loss")
MULTICLASS_LOSSES = frozenset({"mask2former"})  # take (mask logits, class logits, labels)
IOU_LOSSES = frozenset({"sam2lora"})  # take (logits, mask, iou_pred=...)


def structure_weights(mask: torch.Tensor) -> torch.Tensor:
    """PraNet's boundary weights: 1 + 5 |avgpool31(gt) - gt| (stride 1, padding 15)."""
    # The 31x31 box mean as a column pass then a row pass: the same mean (zero padding counted,
    # as avg_pool2d's default), 2 x 31 instead of 961 reads per pixel. CPU avg_pool2d has no fast
    # path for a window this large: the one-pass pool was a fifth of a smoke run's time.
    box = F.avg_pool2d(F.avg_pool2d(mask, (31, 1), stride=1, padding=(15, 0)), (1, 31), stride=1, padding=(0, 15))
    return 1 + 5 * (box - mask).abs()


def weighted_iou_term(logits: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-image 1 - (sum w p g + 1) / (sum w (p + g) - sum w p g + 1), p = sigmoid(logits); (B, 1)."""
    p = torch.sigmoid(logits)
    inter = (p * mask * weight).sum(dim=(2, 3))
    union = ((p + mask) * weight).sum(dim=(2, 3))
    return 1 - (inter + 1) / (union - inter + 1)


def structure_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The official structure loss: plain mean BCE + mean weighted IoU.

    Quirk kept for fidelity: the official code calls BCE with the legacy ``reduce='none'``, which
    PyTorch reads as *mean* reduction, so the "weighted" BCE is the unweighted mean BCE (a scalar
    that the weighting then leaves unchanged).
    """
    bce = F.binary_cross_entropy_with_logits(logits, mask)
    return bce + weighted_iou_term(logits, mask, structure_weights(mask)).mean()


def structure_weighted_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The structure loss as PraNet intended: per-pixel BCE weighted by the boundary weights."""
    weight = structure_weights(mask)
    bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    wbce = (weight * bce).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
    return (wbce + weighted_iou_term(logits, mask, weight)).mean()


def balanced_bce_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SBU's class-balanced BCE: pos_weight = #neg / #pos over the batch, times #pos / (#pos + #neg).

    A batch without foreground would make pos_weight infinite; #pos is floored at 1 there (the
    loss is then the plain BCE scaled by 1 / #pixels, small but finite).
    """
    pos = mask.sum()
    neg = mask.numel() - pos
    pos_c = pos.clamp(min=1.0)
    loss = F.binary_cross_entropy_with_logits(logits, mask, pos_weight=neg / pos_c)
    return loss * pos_c / (pos_c + neg)


def _sums(x: torch.Tensor, pooled: bool) -> torch.Tensor:
    """Sums per image (B,), or one sum over the whole batch (a scalar) when ``pooled``."""
    per_image = x.sum(dim=(1, 2, 3))
    return per_image.sum() if pooled else per_image


def soft_dice_loss(logits: torch.Tensor, mask: torch.Tensor, *, smooth: float = 1.0, pooled: bool = False
                   ) -> torch.Tensor:
    """1 - (2 sum p g + s) / (sum p + sum g + s) per image, averaged; p = sigmoid(logits).
    ``pooled``: the sums run over the whole batch (SAM2LoRA's ``SoftDiceLossV1``)."""
    p = torch.sigmoid(logits)
    inter = _sums(p * mask, pooled)
    return (1 - (2 * inter + smooth) / (_sums(p, pooled) + _sums(mask, pooled) + smooth)).mean()


def focal_tversky_loss(
    logits: torch.Tensor, mask: torch.Tensor, *, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75,
    smooth: float = 1.0, pooled: bool = False,
) -> torch.Tensor:
    """(1 - TI)^gamma, TI = (TP + s) / (TP + alpha FN + beta FP + s) (Abraham & Khan, 2019).

    alpha weights false negatives (0.7: recall matters for thin vessels), gamma = 0.75 as proposed.
    ``pooled``: TP, FN and FP counted over the whole batch (SAM2LoRA's ``FocalTverskyLoss``).
    """
    p = torch.sigmoid(logits)
    tp = _sums(p * mask, pooled)
    fn = _sums((1 - p) * mask, pooled)
    fp = _sums(p * (1 - mask), pooled)
    ti = (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)
    return ((1 - ti).clamp(min=0) ** gamma).mean()


def probability_bce(logits: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """SAM2LoRA's ``SegmentationBCELoss``: mean of -[g log(s + eps) + (1 - g) log(1 - s + eps)],
    s = sigmoid(logits). Not the logits form: eps bounds each pixel's loss at -log(1e-6) = 13.8."""
    s = torch.sigmoid(logits)
    return -(mask * torch.log(s + eps) + (1 - mask) * torch.log(1 - s + eps)).mean()


@torch.no_grad()
def realised_iou(logits: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """IoU of ``sigmoid(logits) > 0.5`` with ``mask > 0.5`` per image and output, (B, K): inter /
    (union + eps), 0 when both are empty (SAM2LoRA's ``calculate_batch_iou``). No gradient."""
    pred = (torch.sigmoid(logits) > 0.5).float().flatten(2)
    gt = (mask > 0.5).float().flatten(2)
    inter = (pred * gt).sum(-1)
    return inter / (pred.sum(-1) + gt.sum(-1) - inter + eps)


def iou_score_loss(iou_pred: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean |IoU_pred - IoU(s > 0.5)|: the IoU head's prediction (B, K) against the realised IoU,
    which is a constant here, so the gradient flows into ``iou_pred`` only."""
    return (iou_pred - realised_iou(logits, mask)).abs().mean()


def sam2lora_loss(logits: torch.Tensor, mask: torch.Tensor, *, iou_pred: torch.Tensor,
                  iou_weight: float = 0.1) -> torch.Tensor:
    """The SAM2LoRA authors' training loss (docs/FIDELITY.md#sam2lora-loss): BCE on probabilities
    + SoftDice + FocalTversky, both pooled over the batch, weights 1/1/1, + 0.1 x the IoU-head term."""
    seg = (probability_bce(logits, mask) + soft_dice_loss(logits, mask, pooled=True)
           + focal_tversky_loss(logits, mask, pooled=True))
    return seg + iou_weight * iou_score_loss(iou_pred, logits, mask)


def composite_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SAM2LoRA's composite loss: BCE + SoftDice + FocalTversky, equal weights (the abstract
    names the three terms; the authors' code weighs them 1/1/1: docs/FIDELITY.md#sam2lora-loss).
    Per image, BCE on logits, no IoU term: usable by any binary model; ``sam2lora`` is theirs."""
    bce = F.binary_cross_entropy_with_logits(logits, mask)
    return bce + soft_dice_loss(logits, mask) + focal_tversky_loss(logits, mask)


def _dice_matrix(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Pairwise dice loss between sigmoid predictions (Q, P) and binary targets (T, P) -> (Q, T)."""
    p = pred.sigmoid()
    num = 2 * p @ tgt.t()
    den = p.sum(-1)[:, None] + tgt.sum(-1)[None, :]
    return 1 - (num + 1) / (den + 1)


def _bce_matrix(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Pairwise mean BCE between logits (Q, P) and binary targets (T, P) -> (Q, T)."""
    n = pred.shape[-1]
    pos = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred), reduction="none")
    neg = F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none")
    return (pos @ tgt.t() + neg @ (1 - tgt).t()) / n


def mask2former_loss(
    mask_logits: torch.Tensor,
    class_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weight: float = 10.0,
    mask_weight: float = 5.0,
    dice_weight: float = 5.0,
    no_object_weight: float = 0.1,
    num_points: int = 12544,
) -> torch.Tensor:
    """Mask2Former-style set loss (Cheng et al., CVPR 2022) with the official weights 10 / 5 / 5.

    ``mask_logits`` (B, Q, H, W), ``class_logits`` (B, Q, C + 1) (last = no object), ``labels``
    (B, H, W) with 255 ignored. Targets per image: one binary mask per class present. Queries and
    targets are matched by the Hungarian algorithm on the same weighted cost; unmatched queries
    learn "no object" (weight 0.1). Mask terms are computed on ``num_points`` pixels drawn
    uniformly at random among the non-ignored ones (all of them when fewer): Mask2Former's point
    sampling without its importance sampling, a simplification we document.
    """
    b, q, h, w = mask_logits.shape
    n_cls = class_logits.shape[-1] - 1
    ce_weight = torch.ones(n_cls + 1, device=class_logits.device)
    ce_weight[-1] = no_object_weight
    total_ce, total_mask, total_dice, n_masks = 0.0, 0.0, 0.0, 0
    for i in range(b):
        lab = labels[i].reshape(-1)
        valid = (lab != IGNORE_INDEX).nonzero(as_tuple=True)[0]
        if valid.numel() > num_points:
            valid = valid[torch.randperm(valid.numel(), device=valid.device)[:num_points]]
        lab_v = lab[valid]
        classes = torch.unique(lab_v)
        pred = mask_logits[i].reshape(q, -1)[:, valid].float()
        tgt = (lab_v[None, :] == classes[:, None]).float()
        target_cls = torch.full((q,), n_cls, dtype=torch.long, device=class_logits.device)
        if classes.numel():
            with torch.no_grad():
                prob = class_logits[i].float().softmax(-1)[:, classes]
                cost = (
                    -class_weight * prob
                    + mask_weight * _bce_matrix(pred, tgt)
                    + dice_weight * _dice_matrix(pred, tgt)
                )
                rows, cols = linear_sum_assignment(cost.cpu().numpy())
            rows_t = torch.as_tensor(rows, device=pred.device)
            cols_t = torch.as_tensor(cols, device=pred.device)
            target_cls[rows_t] = classes[cols_t]
            mp, mt = pred[rows_t], tgt[cols_t]
            total_mask = total_mask + F.binary_cross_entropy_with_logits(mp, mt, reduction="none").mean(-1).sum()
            total_dice = total_dice + _dice_matrix(mp, mt).diagonal().sum()
            n_masks += len(rows)
        total_ce = total_ce + F.cross_entropy(class_logits[i].float(), target_cls, weight=ce_weight)
    n_masks = max(n_masks, 1)
    return class_weight * total_ce / b + mask_weight * total_mask / n_masks + dice_weight * total_dice / n_masks


def semantic_map(mask_logits: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
    """Mask2Former semantic inference: argmax_c sum_q softmax(class)[q, c] sigmoid(mask)[q]; (B, H, W)."""
    cls = class_logits.float().softmax(-1)[..., :-1]
    seg = torch.einsum("bqc,bqhw->bchw", cls, mask_logits.float().sigmoid())
    return seg.argmax(dim=1)


LOSSES.register("structure", structure_loss)
LOSSES.register("structure_weighted", structure_weighted_loss)
LOSSES.register("balanced_bce", balanced_bce_loss)
LOSSES.register("mask2former", mask2former_loss)
LOSSES.register("composite", composite_loss)
LOSSES.register("sam2lora", sam2lora_loss)
