"""SAM2LoRA: LoRA in both the image encoder and the mask decoder (Mandal et al., arXiv 2510.10288).

Paper: Mandal, Karthikeyan, Paldhe, "SAM2LoRA: Composite Loss-Guided, Parameter-Efficient
Finetuning of SAM2 for Retinal Fundus Segmentation" (2025). The defaults follow the authors'
public code (GitHub sayanmndl21/SAM2LoRA, commit 4dd3cde; docs/FIDELITY.md#sam2lora-lora), which
produced the published numbers:
- ``model/lora_adapters.py`` ``LoRALayer``: y = W x + (alpha / r) Dropout_0.1(x A B), A (in, r)
  ~ N(0, 1/r) (``randn * 1/sqrt(r)``), B zeros; rank 64 and alpha 128 (alpha = 2 x rank) in their
  recorded run;
- ``ImageEncoderAdapter``: every Linear named ``attn.qkv`` of the Hiera trunk (48 in Hiera-L; not
  ``proj``); ``MaskDecoderAdapter``: every Linear whose name contains ``attn`` in the decoder's
  two-way transformer: q/k/v/out_proj of the self-attention and both cross-attentions of both
  layers and of ``final_attn_token_to_image`` (28 Linears);
- nothing else trains: decoder tokens, IoU head, hypernetwork MLPs, prompt encoder, norms frozen.
Trainable on SAM2.1 Hiera-L at rank 64: 6,939,648 (encoder) + 753,664 (decoder) = 7,693,312
(``sam-peft-bench params --backbone sam2_hiera_l --methods sam2lora``; 3.43%).
Their wrapper builds SAM2Base so that ``no_mem_embed`` is not added to the image embedding
(SAM2's own image predictor adds it): ``no_mem_embed=false`` is their choice and our default;
``--set sam2lora.no_mem_embed=true`` gives SAM2's behaviour.
Declared at registration: ``mask_output=1``: with prompts (``--set prompt=points:5
--set eval_prompts=all``, their recorded run; docs/FIDELITY.md#sam2lora-prompts) the decoder runs
with ``multimask_output=True`` semantics and keeps output 0 of the multimask outputs, i.e. SAM's
mask token 1 and hypernetwork MLP 1, as their ``training_step`` and ``eval_step`` do
(``prd_masks[:, :1]``, ``masks[:1]``); ``trains_decoder=False``: the decoder trains only through
its LoRA factors. Deviations: without prompts (the default, the Conv-LoRA tables' head) the
decoder reads our mask token (frozen here, as theirs are, so the count matches; a multi-class
head's class Linear trains, a module theirs does not have) and not their output; prompts are
drawn at the model's input grid and seeded per image (theirs: a global seed, 0 at test); a thin
mask that the 2x2 erosion empties falls back to itself and an empty mask gets no prompt (theirs
skips or draws anywhere: benchmark/data/prompts.py); the training recipe is separate settings.
Works on SAM (ViT) backbones as well, through the same backbone interface.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.core.options import option
from methods import register_method
from methods.layers import LoRALinear

_DECODER_ROLES = ("q_proj", "k_proj", "v_proj", "out_proj")


@dataclass(frozen=True)
class SAM2LoRAConfig:
    rank: int = option(64, min=1)
    alpha_over_rank: float = option(2.0, gt=0)  # SAM2LoRA: alpha = 2 x rank
    encoder_targets: tuple[str, ...] = option(("qkv",), choices=("qkv", "proj", "fc1", "fc2"))
    decoder: bool = True
    dropout: float = option(0.1, min=0, lt=1)  # on the LoRA branch's output, as theirs
    no_mem_embed: bool = False  # add SAM2's no_mem_embed to the image embedding (theirs: no)


@register_method("sam2lora", SAM2LoRAConfig, trains_decoder=False, mask_output=1)
def apply_sam2lora(model, cfg: SAM2LoRAConfig) -> None:
    """Freeze the decoder-only part and our mask token(s), then add LoRA in encoder and decoder."""
    alpha = cfg.alpha_over_rank * cfg.rank
    for module in model.decoder_only_modules():
        for p in module.parameters():
            p.requires_grad_(False)
    model.mask_tokens.requires_grad_(False)
    model.add_no_mem_embed = cfg.no_mem_embed

    def lora(linear):
        return LoRALinear(linear, rank=cfg.rank, alpha=alpha, init="normal", dropout=cfg.dropout)

    view = model.view
    for block in view.blocks:
        for role in cfg.encoder_targets:
            block.replace(role, lora(block.get(role)))
    if cfg.decoder:
        for attn in view.decoder_attention():
            for name in _DECODER_ROLES:
                setattr(attn, name, lora(getattr(attn, name)))
