"""SAM trained from scratch: every parameter trainable, randomly initialised (Conv-LoRA paper, Table 1).

Paper: Zhong et al., ICLR 2024 (arXiv 2401.17868), Table 1 row "SAM trained from scratch"
(641.09M / 100%). Trainable: all parameters of the model, including the prompt encoder and IoU
head (they receive no gradient in the prompt-free model, but the paper counts them).
Injected: nothing; pretrained weights, if any were loaded, are replaced by segment-anything's own
initialisation (each module's ``reset_parameters``; SAM's absolute and relative position
embeddings are zero-initialised as in its constructor). Our mask token(s) are re-drawn too.
Deviations: none known (the official script's init of this baseline is not published).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods import register_method


@dataclass(frozen=True)
class FromScratchConfig:
    """No options."""


@torch.no_grad()
def reinitialise(module: nn.Module) -> None:
    """Give ``module`` the random init its constructors would, whatever was loaded into it."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight)
        elif type(m).__name__ == "LayerNorm2d":  # segment-anything's norm has no reset_parameters
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for name, p in module.named_parameters():
        if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
            p.zero_()


@register_method("from_scratch", FromScratchConfig, pretrained=False, unfreezes=("*",), adds_parameters=False)
def apply_from_scratch(model, cfg: FromScratchConfig) -> None:
    """Re-initialise SAM and unfreeze every parameter."""
    if next(model.parameters()).device.type != "meta":
        reinitialise(model.sam)
        nn.init.normal_(model.mask_tokens)
        if model.class_head is not None:
            model.class_head.reset_parameters()
    for p in model.parameters():
        p.requires_grad_(True)
