"""SAM2LoRA: LoRA in both the image encoder and the mask decoder (Mandal et al., arXiv 2510.10288).

Paper: Mandal, Karthikeyan, Paldhe, "SAM2LoRA: Composite Loss-Guided, Parameter-Efficient
Finetuning of SAM2 for Retinal Fundus Segmentation" (2025). Published facts (abstract and the
authors' code, docs/FIDELITY.md#sam2lora): SAM2 (Hiera) backbone; a low-rank adapter in BOTH
the image encoder and the mask decoder; alpha = 2 x rank; fewer than 5% of the parameters
trainable; trained with the composite loss BCE + SoftDice + FocalTversky (``--set loss=composite``,
:mod:`benchmark.train.losses`).
Injected: LoRA on every encoder block's fused ``qkv`` and ``proj`` Linears, and on the
``q_proj``/``k_proj``/``v_proj``/``out_proj`` of every attention layer of the mask decoder's
two-way transformer (self-attention and both cross-attentions).
Trainable: the LoRA factors and our mask token(s) (plus the class head for multi-class); the rest
of the decoder is frozen, the adapters being the paper's decoder update.
Size: the rank is not in the abstract; we default to 8 (SAM2.1 Hiera-T: 314,880 trainable of
39.28M, 0.80%, inside the paper's < 5%; SAM ViT-H: 2.06M, 0.32%). Works on SAM (ViT) backbones as well, through the same
backbone interface. Deviations: rank, exact placement within the encoder, and the loss weights
are our choices where the abstract is silent; ablate them with ``--set``.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.options import option
from methods import register_method
from methods.layers import LoRALinear

_DECODER_ROLES = ("q_proj", "k_proj", "v_proj", "out_proj")


@dataclass(frozen=True)
class SAM2LoRAConfig:
    rank: int = option(8, min=1)
    alpha_over_rank: float = option(2.0, gt=0)  # SAM2LoRA: alpha = 2 x rank
    encoder_targets: tuple[str, ...] = option(("qkv", "proj"), choices=("qkv", "proj", "fc1", "fc2"))
    decoder: bool = True


@register_method("sam2lora", SAM2LoRAConfig, trains_decoder=False)
def apply_sam2lora(model, cfg: SAM2LoRAConfig) -> None:
    """Freeze the decoder-only part (keeping our tokens), then add LoRA in encoder and decoder."""
    alpha = cfg.alpha_over_rank * cfg.rank
    for module in model.decoder_only_modules():
        for p in module.parameters():
            p.requires_grad_(False)
    view = model.view
    for block in view.blocks:
        for role in cfg.encoder_targets:
            block.replace(role, LoRALinear(block.get(role), rank=cfg.rank, alpha=alpha))
    if cfg.decoder:
        for attn in view.decoder_attention():
            for name in _DECODER_ROLES:
                setattr(attn, name, LoRALinear(getattr(attn, name), rank=cfg.rank, alpha=alpha))
