"""Build the adapted model: backbone -> prompt-free segmentation model -> PEFT method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from benchmark.backbones import build_sam
from benchmark.model import SegmentationModel
from methods import METHODS, make_config


def build_model(
    backbone: str,
    method: str,
    *,
    num_classes: int = 1,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    overrides: dict[str, str] | None = None,
) -> tuple[SegmentationModel, Any]:
    """Return (model, method config). ``device="meta"`` builds without memory, for counting."""
    spec = METHODS.get(method)
    cfg = make_config(method, overrides)
    sam = build_sam(backbone, checkpoint=checkpoint, device=device)
    model = SegmentationModel(sam, num_classes=num_classes)
    spec.apply(model, cfg)
    return model, cfg
