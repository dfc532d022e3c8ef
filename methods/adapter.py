"""Adapter: Houlsby bottleneck adapters in every image-encoder block (Houlsby et al., ICML 2019, arXiv 1902.00751).

Injected: two residual bottleneck adapters per block, one after the attention output projection
and one after the MLP (the Houlsby placement), each ``x + up(GELU(down(x)))`` with biases and
``up`` zero-initialised (identity at init). Trainable: decoder-only part + adapters.
Size: the paper does not publish its adapter configuration. Bottleneck m = 2 gives
64 adapters x (1280*2 + 2 + 2*1280 + 1280) = 64 x 6,402 = 409,728 -> 3,915,264 (3.92M / 0.61%),
the paper's count, so m = 2 is the default. (One adapter per block with m = 5 and no biases,
409,600, would match too; we keep Houlsby's published two-adapter design.)
Deviations: GELU rather than Houlsby's unspecified nonlinearity (SAM's own activation).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from benchmark.core.options import option
from methods import register_method
from methods.layers import BottleneckAdapter


@dataclass(frozen=True)
class AdapterConfig:
    bottleneck: int = option(2, min=1, help="adapter bottleneck width m")
    bias: bool = True


@register_method("adapter", AdapterConfig)
def apply_adapter(model, cfg: AdapterConfig) -> None:
    """Follow each block's attention projection and its MLP with an adapter."""
    for block in model.view.blocks:
        for role in ("proj", "mlp"):
            inner = block.get(role)
            device = next(inner.parameters()).device
            adapter = BottleneckAdapter(block.dim_out, cfg.bottleneck, bias=cfg.bias, device=device)
            block.replace(role, nn.Sequential(inner, adapter))
