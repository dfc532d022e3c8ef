"""Build the adapted model: backbone -> prompt-free segmentation model -> PEFT method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.core.errors import BenchError
from benchmark.model.attention import resolve_attention, set_attention
from benchmark.model.backbones import BACKBONES, build_sam
from benchmark.model.feature_cache import encoder_structure
from benchmark.model.head import SegmentationModel
from methods import METHODS, make_config
from methods.layers import check_moe_kernel, set_moe_kernel


def supports(method: str, backbone: str) -> bool:
    """Whether ``method`` is defined for ``backbone``'s family (its registration says)."""
    return BACKBONES.get(backbone).family in METHODS.get(method).families


def check_family(method: str, backbone: str) -> None:
    family = BACKBONES.get(backbone).family
    if not supports(method, backbone):
        allowed = " and ".join(f.upper() for f in METHODS.get(method).families)
        raise BenchError(f"method {method} is defined for {allowed} backbones only, not {family.upper()} ({backbone})")


def build_model(
    backbone: str,
    method: str,
    *,
    num_classes: int = 1,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    overrides: dict[str, str] | None = None,
    attention: str = "auto",
    moe_kernel: str = "loop",
) -> tuple[SegmentationModel, Any]:
    """Return (model, method config). ``device="meta"`` builds without memory, for counting.

    ``attention``: how SAM's encoder attention is computed, "sam" (segment-anything's code),
    "sdpa" or "folded" (the same maths through ``F.scaled_dot_product_attention``, the bias as a
    mask or folded into q and k) or "auto" (sdpa on CUDA, sam elsewhere); see
    :mod:`benchmark.model.attention`. SAM2 models keep their own. ``moe_kernel``: how a routing
    layer computes its experts, "loop" or "grouped" (the same maths; :mod:`methods.conv_lora`).
    """
    kind = resolve_attention(attention, device)
    check_moe_kernel(moe_kernel)  # both checked before anything is built
    spec = METHODS.get(method)
    check_family(method, backbone)
    cfg = make_config(method, overrides)
    sam = build_sam(backbone, checkpoint=checkpoint, device=device)
    model = SegmentationModel(sam, num_classes=num_classes, mask_output=spec.mask_output)
    model.encoder_as_built = encoder_structure(model)  # what the feature cache compares against
    spec.apply(model, cfg)
    set_attention(model, kind)  # after apply: modules a method adds (LST's side blocks) follow too
    set_moe_kernel(model, moe_kernel)
    return model, cfg
