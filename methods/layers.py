"""Layers shared by several methods: a LoRA-wrapped linear, a bottleneck adapter, a scale-and-shift,
and segment-anything's encoder attention through SDPA (chosen by ``benchmark.model.attention``)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, get_rel_pos
from torch import nn

from benchmark.core.errors import BenchError

# A routing layer (Conv-LoRA's MoEConv) keeps a non-persistent buffer of this name: samples sent to
# each expert in eval mode. Not in state dicts, so checkpoints and resume states are unchanged.
EXPERT_COUNTS = "expert_counts"


# A routing layer may compute its experts in more than one way, the same maths (Conv-LoRA's MoEConv:
# "loop" runs each routed expert apart, "grouped" all at once); the layer's ``moe_kernel`` says which.
MOE_KERNELS = ("loop", "grouped")


def check_moe_kernel(kernel: str) -> str:
    if kernel not in MOE_KERNELS:
        raise BenchError(f"option moe_kernel: {kernel!r} is not one of {', '.join(MOE_KERNELS)}")
    return kernel


def set_moe_kernel(model: nn.Module, kernel: str) -> int:
    """Put every routing layer in ``model`` on ``kernel``; returns how many it set (0: none there)."""
    check_moe_kernel(kernel)
    layers = [m for m in model.modules() if isinstance(getattr(type(m), "moe_kernel", None), str)]
    for layer in layers:
        layer.moe_kernel = kernel
    return len(layers)


def reset_expert_counts(model: nn.Module) -> None:
    for module in model.modules():
        counts = getattr(module, EXPERT_COUNTS, None)
        if isinstance(counts, torch.Tensor):
            counts.zero_()


def expert_counts(model: nn.Module) -> list[list[int]] | None:
    """Per routing layer (module order: encoder depth), samples routed to each expert since the
    last reset; None for a model without routing layers."""
    rows = [getattr(m, EXPERT_COUNTS).tolist() for m in model.modules()
            if isinstance(getattr(m, EXPERT_COUNTS, None), torch.Tensor)]
    return rows or None


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * Dropout(B(mid(A(x))))`` around a frozen ``base`` Linear.

    A: (r, in), ``init="kaiming"``: Kaiming-uniform (a = sqrt(5), nn.Linear's own init, as the
    Conv-LoRA code) or ``init="normal"``: N(0, 1/r) elementwise (SAM2LoRA's code); B: (out, r)
    zeros, so the wrapped layer equals ``base`` at initialisation. ``mid`` acts on the rank-r map
    (identity for plain LoRA, the MoE-conv step for Conv-LoRA) and sees the input's leading shape,
    e.g. (N, H, W, r) inside a SAM attention block. ``dropout`` acts on the LoRA branch's output
    (where SAM2LoRA puts it; 0 = none, the Conv-LoRA setting).
    """

    def __init__(self, base: nn.Linear, *, rank: int, alpha: float, mid: nn.Module | None = None,
                 init: str = "kaiming", dropout: float = 0.0) -> None:
        super().__init__()
        if init not in ("kaiming", "normal"):
            raise ValueError(f"LoRALinear init must be 'kaiming' or 'normal', got {init!r}")
        self.base = base
        self.rank = rank
        self.scaling = alpha / rank
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, **factory))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **factory))
        self.mid = mid if mid is not None else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if self.lora_a.device.type != "meta":
            if init == "kaiming":
                nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
            else:
                nn.init.normal_(self.lora_a, std=rank**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.mid(x @ self.lora_a.t())
        return self.base(x) + self.scaling * self.dropout(z @ self.lora_b.t())


class BottleneckAdapter(nn.Module):
    """Houlsby et al. (2019) adapter: ``x + up(act(down(x)))`` on the last dim; ``up`` zero-init,
    so the adapter starts as the identity."""

    def __init__(self, dim: int, bottleneck: int, *, bias: bool = True, device: torch.device | None = None) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck, bias=bias, device=device)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, dim, bias=bias, device=device)
        if device is None or torch.device(device).type != "meta":
            nn.init.zeros_(self.up.weight)
            if bias:
                nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


class ScaleShift(nn.Module):
    """SSF (Lian et al., 2022): ``module(x) * gamma + beta`` per channel of ``module``'s output.

    ``channel_dim`` is -1 for channel-last tokens (B, H, W, C) and 1 for (B, C, H, W) maps.
    Init as the SSF paper: gamma ~ N(1, 0.02), beta ~ N(0, 0.02).
    """

    def __init__(self, module: nn.Module, channels: int, *, channel_dim: int = -1, device: torch.device | None = None) -> None:
        super().__init__()
        self.module = module
        self.channel_dim = channel_dim
        self.gamma = nn.Parameter(torch.ones(channels, device=device))
        self.beta = nn.Parameter(torch.zeros(channels, device=device))
        if self.gamma.device.type != "meta":
            nn.init.normal_(self.gamma, mean=1.0, std=0.02)
            nn.init.normal_(self.beta, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x)
        shape = [1] * y.dim()
        shape[self.channel_dim] = -1
        return y * self.gamma.view(shape) + self.beta.view(shape)


def rel_pos_terms(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                  size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """segment-anything's two relative-position terms (``add_decomposed_rel_pos``'s einsums).

    ``q``: (..., H * W, d) unscaled queries; returns rel_h (..., H * W, H) and rel_w (..., H * W, W):
    rel_h[(y, x), y'] = q_yx . Rh[y, y'] and rel_w[(y, x), x'] = q_yx . Rw[x, x'].
    """
    h, w = size
    *lead, n, d = q.shape
    r_q = q.reshape(-1, h, w, d)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(h, h, rel_pos_h)).reshape(*lead, n, h)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(w, w, rel_pos_w)).reshape(*lead, n, w)
    return rel_h, rel_w


def rel_pos_bias(
    q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """segment-anything's decomposed relative-position bias as a dense additive mask.

    ``q``: (B', H * W, d) unscaled queries (B' = batch x heads); returns (B', H * W, H * W):
    entry [(y, x), (y', x')] = rel_h[(y, x), y'] + rel_w[(y, x), x'] (:func:`rel_pos_terms`).
    """
    h, w = size
    b = q.shape[0]
    rel_h, rel_w = (t.view(b, h, w, -1) for t in rel_pos_terms(q, rel_pos_h, rel_pos_w, size))
    return (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(b, h * w, h * w)


class SDPAAttention(Attention):
    """segment-anything's ``Attention`` computed by ``F.scaled_dot_product_attention``.

    (B, H, W, C) in and out, as the parent. Never constructed: ``set_attention``
    (:mod:`benchmark.model.attention`) gives an existing ``Attention`` this class, so it holds
    exactly the parent's parameters. The relative-position bias becomes SDPA's additive mask.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        q, k, v = _split_heads(self, x)
        bias = None
        if self.use_rel_pos:
            flat_q = q.reshape(b * self.num_heads, h * w, -1)
            bias = rel_pos_bias(flat_q, self.rel_pos_h, self.rel_pos_w, (h, w))
            # SDPA refuses a float mask of another dtype than the queries'; under autocast the
            # einsums' dtype follows the autocast policy, not q's.
            bias = bias.view(b, self.num_heads, h * w, h * w).to(q.dtype)
        out = attend(q, k, v, scale=self.scale, mask=bias)
        return self.proj(out.permute(0, 2, 1, 3).reshape(b, h, w, -1))


class FoldedAttention(Attention):
    """segment-anything's ``Attention`` with the relative-position bias folded into q and k.

    The bias of query (y, x) for key (y', x') is ``rel_h[(y, x), y'] + rel_w[(y, x), x']``
    (segment-anything's two einsums). Appending ``rel_h`` and ``rel_w`` to each (scaled) query
    and the one-hot codes of y' and x' to each key makes it part of the dot product
    (:func:`fold_rel_pos`), so SDPA runs without a mask: no (N, N) tensor is built, forward or
    backward, and the flash kernels (CUDA's, and the CPU's) take it. The heads grow by H + W
    columns (ViT-H: 80 -> 208 in a global block, 108 in a windowed one); the values are padded to
    the same width, which the flash kernels need (docs/FIDELITY.md#gpu-levers). Same maths, other
    summation order: equal to float rounding (tests/test_attention.py). Like
    :class:`SDPAAttention`, never constructed.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        q, k, v = _split_heads(self, x)
        scale = self.scale
        if self.use_rel_pos:
            q, k = fold_rel_pos(q, k, self.rel_pos_h, self.rel_pos_w, (h, w), scale)
            scale = 1.0
        out = attend(q, k, v, scale=scale)
        return self.proj(out.permute(0, 2, 1, 3).reshape(b, h, w, -1))


def _split_heads(attn: Attention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v of a (B, H, W, C) input, each (B, heads, H * W, d): SDPA takes the heads as a
    batch dimension, no reshape to B * heads."""
    b, h, w, _ = x.shape
    return attn.qkv(x).reshape(b, h * w, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)


def fold_rel_pos(q: torch.Tensor, k: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                 size: tuple[int, int], scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(q', k'), (..., H * W, d + H + W) each, with q' . k' = scale * q . k + the decomposed bias.

    q' = [scale * q, rel_h, rel_w] and k' = [k, onehot(y'), onehot(x')]: the dot product picks
    ``rel_h[(y, x), y']`` and ``rel_w[(y, x), x']``, the two terms segment-anything adds to the
    scores (:func:`rel_pos_terms`). ``q`` and ``k``: (..., H * W, d).
    """
    h, w = size
    rel_h, rel_w = rel_pos_terms(q, rel_pos_h, rel_pos_w, size)
    codes = key_codes(h, w, k.device, k.dtype)
    # Under autocast the einsums' dtype follows the autocast policy, not q's.
    q = torch.cat([q * scale, rel_h.to(q.dtype), rel_w.to(q.dtype)], dim=-1)
    k = torch.cat([k, codes.expand(*k.shape[:-1], h + w)], dim=-1)
    return q, k


def key_codes(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(H * W, H + W): each key's one-hot row and column, keys in row-major order. Cached per
    size, device and dtype in eager mode; built in the graph under torch.compile (which would
    trace through the cache and warn)."""
    if torch.compiler.is_compiling():
        return _one_hot_codes(h, w, device, dtype)
    return _cached_codes(h, w, device, dtype)


def _one_hot_codes(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    rows = torch.arange(h * w, device=device)
    return torch.cat([F.one_hot(rows // w, h), F.one_hot(rows % w, w)], dim=-1).to(dtype)


@functools.cache
def _cached_codes(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a plain tensor whatever the caller's mode: it is kept
        return _one_hot_codes(h, w, device, dtype)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float,
           mask: torch.Tensor | None = None) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` with the heads zero-padded to one width (v to q's, a
    multiple of 8 on CUDA: :func:`head_dim_padding`); returns v's width. Zero columns add nothing
    to q . k and give zero output columns, which are dropped."""
    width = q.shape[-1] + head_dim_padding(q)
    dv = v.shape[-1]
    q, k, v = (t if t.shape[-1] == width else F.pad(t, (0, width - t.shape[-1])) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out if dv == width else out[..., :dv]


def head_dim_padding(q: torch.Tensor) -> int:
    """Zero columns to add to the heads on CUDA: its fused SDPA kernels want 16-bit heads in
    multiples of 8 (the memory-efficient one, which takes an additive bias and its gradient, falls
    back to the materialised math path otherwise). SAM's heads are 64 (ViT-B) and 80 (ViT-H); LST's
    side blocks have 14 heads of 7 (docs/FIDELITY.md#gpu-levers). Same maths (the scale stays
    1/sqrt(d)); on the CPU nothing to gain."""
    return -q.shape[-1] % 8 if q.is_cuda else 0
