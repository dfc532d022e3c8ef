"""VPT-deep: learnable prompt tokens at every image-encoder block (Jia et al., ECCV 2022, arXiv 2203.12119).

Injected: ``tokens`` new prompt embeddings per block (VPT-deep), prepended to the sequence that
block's attention sees. Trainable: decoder-only part + prompts (Xavier-uniform init as VPT).
Size: the paper does not publish its VPT configuration; 12 tokens per block gives
32 x 12 x 1280 = 491,520 -> 3,997,056 (4.00M / 0.62%), the paper's count and LoRA's budget.
How it meets SAM's windowed ViT: SAM attends inside 14x14 windows (N = B x windows) with
relative-position biases. The block's prompts are shared by every window of the image and enter
the attention as extra keys and values (through the frozen qkv projection, with no relative
position bias); only the spatial tokens are queried and passed on. In VPT-deep the prompt tokens'
own outputs are discarded at the next block anyway, so for the spatial tokens this is exactly
VPT-deep's computation. Deviation: none beyond this adaptation to windowed attention.
Attention backend: segment-anything's computation, or with ``attention=sdpa``
(:mod:`benchmark.model.attention`) the same through ``F.scaled_dot_product_attention``, the
relative-position bias as its additive mask with zeros in the prompt columns; with
``attention=folded`` the bias folded into the queries and keys, the prompt keys' folded columns
zero (the same zero bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import add_decomposed_rel_pos
from torch import nn

from benchmark.core.options import option
from methods import register_method
from methods.layers import FoldedAttention, SDPAAttention, attend, fold_rel_pos, rel_pos_bias


@dataclass(frozen=True)
class VPTConfig:
    tokens: int = option(12, min=1)


class PromptedAttention(nn.Module):
    """SAM's ``Attention`` with ``tokens`` learnable prompts as extra keys/values; (N, H, W, C) in and out."""

    def __init__(self, attn: nn.Module, tokens: int) -> None:
        super().__init__()
        self.attn = attn
        dim = attn.qkv.in_features
        self.prompts = nn.Parameter(torch.zeros(tokens, dim, device=attn.qkv.weight.device))
        if self.prompts.device.type != "meta":
            bound = math.sqrt(6.0 / (tokens + dim))
            nn.init.uniform_(self.prompts, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attn
        n, h, w, _ = x.shape
        heads = a.num_heads
        qkv = a.qkv(x).reshape(n, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)  # (3, N, heads, HW, d)
        p = self.prompts.shape[0]
        pkv = a.qkv(self.prompts).reshape(p, 3, heads, -1)[:, 1:].permute(1, 2, 0, 3)  # (2, heads, P, d)
        if isinstance(a, (SDPAAttention, FoldedAttention)):
            out = self._sdpa(qkv, pkv, (h, w), folded=isinstance(a, FoldedAttention))
        else:
            out = self._sam(qkv, pkv, (h, w))
        return a.proj(out.permute(0, 2, 1, 3).reshape(n, h, w, -1))

    def _sam(self, qkv: torch.Tensor, pkv: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """segment-anything's computation, prompts prepended; (N, heads, HW, d)."""
        a = self.attn
        _, n, heads, hw, _ = qkv.shape
        p = pkv.shape[2]
        q, k, v = qkv.reshape(3, n * heads, hw, -1).unbind(0)
        pk = pkv[0].unsqueeze(0).expand(n, -1, -1, -1).reshape(n * heads, p, -1)
        pv = pkv[1].unsqueeze(0).expand(n, -1, -1, -1).reshape(n * heads, p, -1)
        attn = (q * a.scale) @ k.transpose(-2, -1)
        if a.use_rel_pos:
            attn = add_decomposed_rel_pos(attn, q, a.rel_pos_h, a.rel_pos_w, size, size)
        attn = torch.cat([(q * a.scale) @ pk.transpose(-2, -1), attn], dim=-1).softmax(dim=-1)
        return (attn @ torch.cat([pv, v], dim=1)).view(n, heads, hw, -1)

    def _sdpa(self, qkv: torch.Tensor, pkv: torch.Tensor, size: tuple[int, int], *, folded: bool) -> torch.Tensor:
        """The same through ``F.scaled_dot_product_attention``, the bias as a mask or folded; (N, heads, HW, d)."""
        a = self.attn
        q, k, v = qkv.unbind(0)
        n, heads, hw, d = q.shape
        p = pkv.shape[2]
        prompt_keys, prompt_values = pkv[0].expand(n, -1, -1, -1), pkv[1].expand(n, -1, -1, -1)
        values = torch.cat([prompt_values, v], dim=2)  # (N, heads, P + HW, d)
        if not a.use_rel_pos:
            return attend(q, torch.cat([prompt_keys, k], dim=2), values, scale=a.scale)
        if folded:
            q, k = fold_rel_pos(q, k, a.rel_pos_h, a.rel_pos_w, size, a.scale)
            # Prompt keys carry no relative position: zeros in the folded columns, a zero bias.
            prompt_keys = F.pad(prompt_keys, (0, q.shape[-1] - d))
            return attend(q, torch.cat([prompt_keys, k], dim=2), values, scale=1.0)
        rel = rel_pos_bias(q.reshape(n * heads, hw, -1), a.rel_pos_h, a.rel_pos_w, size)
        # Prompt columns carry no relative position: a zero bias, as in the computation above.
        bias = F.pad(rel.view(n, heads, hw, hw), (p, 0)).to(q.dtype)
        return attend(q, torch.cat([prompt_keys, k], dim=2), values, scale=a.scale, mask=bias)


@register_method("vpt", VPTConfig, families=("sam",))
def apply_vpt(model, cfg: VPTConfig) -> None:
    """Replace every block's attention with a PromptedAttention around it."""
    for block in model.view.blocks:
        block.replace("attn", PromptedAttention(block.get("attn"), cfg.tokens))
