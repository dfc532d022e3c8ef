"""LoRA on every image-encoder block's fused qkv (Hu et al., ICLR 2022, arXiv 2106.09685).

Configured as the Conv-LoRA paper's LoRA baseline and its official code: rank 3, alpha 32
(scaling alpha / r), A Kaiming-uniform, B zeros, no dropout, on the fused ``qkv`` Linear of all
encoder blocks. Trainable: decoder-only part + A and B: ViT-H 32 x (3x1280 + 3840x3) = 491,520
-> 3,997,056 (4.00M / 0.62%). At initialisation the model equals the base model exactly.
Deviations: none.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.options import option
from methods import register_method
from methods.layers import LoRALinear


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = option(3, min=1)
    alpha: float = option(32.0, gt=0)
    targets: tuple[str, ...] = option(("qkv",), choices=("qkv", "proj", "fc1", "fc2"))  # block roles to wrap


@register_method("lora", LoRAConfig)
def apply_lora(model, cfg: LoRAConfig) -> None:
    """Wrap each target Linear of every encoder block in a LoRALinear."""
    for block in model.view.blocks:
        for role in cfg.targets:
            block.replace(role, LoRALinear(block.get(role), rank=cfg.rank, alpha=cfg.alpha))
