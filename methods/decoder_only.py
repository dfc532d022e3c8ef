"""decoder-only: fine-tune SAM's mask decoder, the image encoder frozen (Conv-LoRA paper, Table 1 baseline).

Paper: Zhong et al., "Convolution Meets LoRA: Parameter Efficient Finetuning for Segment Anything
Model", ICLR 2024 (arXiv 2401.17868), Table 1 row "decoder-only".
Trainable: exactly the model's decoder-only part (two-way transformer, output upscaling, first
hypernetwork MLP, IoU token, mask token): 3,505,536 parameters for ViT-H (3.51M / 0.55%).
Injected: nothing. Deviations: none.
"""

from __future__ import annotations

from dataclasses import dataclass

from methods import register_method


@dataclass(frozen=True)
class DecoderOnlyConfig:
    """No options: the segmentation model's own trainable set is the method."""


@register_method("decoder_only", DecoderOnlyConfig, adds_parameters=False)
def apply_decoder_only(model, cfg: DecoderOnlyConfig) -> None:
    """Leave the model as built: encoder, prompt encoder and IoU head frozen."""
