"""Which computation SAM's ViT encoder attention uses: segment-anything's own, or PyTorch's SDPA
with the relative-position bias as a mask (``sdpa``) or folded into the queries and keys (``folded``).

segment-anything's ``Attention`` materialises the (B * heads, N, N) score matrix, adds the
decomposed relative-position bias to it and softmaxes it; in a global block of ViT-H at 1024 that
is (16, 4096, 4096) several times over. ``F.scaled_dot_product_attention`` computes the same
``softmax(q k^T * scale + bias) v`` with the bias as its additive float ``attn_mask`` and lets
the GPU pick a fused kernel (memory-efficient attention takes an additive bias and its gradient).
The maths is the same; the summation order is not, so results agree to float rounding (tested:
relative difference <= 1e-5 in fp32, outputs and gradients, for every method on ``sam_tiny``).

``folded`` (:class:`methods.layers.FoldedAttention`) goes one step further: the bias becomes part
of the dot product (each query gains its H + W bias terms, each key the one-hot codes of its row
and column), so SDPA runs with no mask at all. Nothing of size (N, N) exists, forward or
backward, and the flash kernels qualify (CUDA's flash and cuDNN kernels take no arbitrary bias;
the CPU's fused kernel refuses a mask that needs a gradient). The price is wider heads: a ViT-H
global block's 80 columns become 208. Same maths, same tolerance, same tests.

This module owns the switch; the SDPA computation, :class:`methods.layers.SDPAAttention`, lives
beside the other shared layers, where a method that computes attention itself (VPT) can use it
without importing upwards. :func:`set_attention` swaps the class of each segment-anything
``Attention`` module in place: the same object, parameters, state-dict keys and hooks, only
``forward`` differs, so checkpoints load strictly either way and parameter counts do not move.
The forward calls ``self.qkv`` and ``self.proj`` whatever a method has put there (LoRA,
Conv-LoRA, SSF). VPT's ``PromptedAttention`` asks the module it wraps which class it has.
SAM2's Hiera blocks have their own attention class (already on SDPA) and are never touched; nor
is the mask decoder's attention (a different class with no relative positions).

``auto`` (the default everywhere): ``sdpa`` on CUDA (the one measured on a GPU so far:
docs/BENCHMARKS.md), segment-anything's exact computation on the CPU, so CPU records stay
bit-identical to those made before this switch existed.
"""

from __future__ import annotations

import torch
from segment_anything.modeling.image_encoder import Attention
from torch import nn

from benchmark.core.errors import BenchError
from methods.layers import FoldedAttention, SDPAAttention

ATTENTION_KINDS = ("auto", "sam", "sdpa", "folded")


def resolve_attention(kind: str, device: str | torch.device | None) -> str:
    """``auto`` -> ``sdpa`` on CUDA, ``sam`` elsewhere; the others pass through."""
    if kind not in ATTENTION_KINDS:
        raise BenchError(f"option attention: {kind!r} is not one of {', '.join(ATTENTION_KINDS)}")
    if kind != "auto":
        return kind
    return "sdpa" if torch.device(device or "cpu").type == "cuda" else "sam"


_CLASSES = {"sam": Attention, "sdpa": SDPAAttention, "folded": FoldedAttention}


def set_attention(model: nn.Module, kind: str) -> int:
    """Put every segment-anything encoder ``Attention`` in ``model`` on ``kind`` ("sam" | "sdpa" | "folded").

    Returns how many modules it set (0 for SAM2 models). Call it after a method is applied, so
    modules a method adds (LST's side blocks) are included.
    """
    if kind not in _CLASSES:
        raise BenchError(f"set_attention: kind must be one of {', '.join(_CLASSES)}, got {kind!r}")
    count = 0
    for module in model.modules():
        if type(module) in _CLASSES.values():
            module.__class__ = _CLASSES[kind]
            count += 1
    return count
