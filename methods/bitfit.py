"""BitFit: train every bias term of the image encoder (Ben Zaken et al., ACL 2022, arXiv 2106.10199).

Trainable: the decoder-only part plus every bias of SAM's image encoder: qkv, proj, both MLP
linears and both LayerNorms of each block, the patch embedding and the neck's LayerNorm2d
(ViT-H: 452,352 -> 3,957,888 = 3.96M / 0.62%, the paper's count).
Injected: nothing. Deviations: none.
"""

from __future__ import annotations

from dataclasses import dataclass

from methods import register_method


@dataclass(frozen=True)
class BitFitConfig:
    """No options."""


@register_method("bitfit", BitFitConfig, unfreezes=("sam.image_encoder.*bias",), adds_parameters=False)
def apply_bitfit(model, cfg: BitFitConfig) -> None:
    """Unfreeze the encoder parameters whose name ends in ``bias``."""
    for name, p in model.view.encoder_parameters():
        if name.endswith("bias"):
            p.requires_grad_(True)
