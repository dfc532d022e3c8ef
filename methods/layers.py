"""Layers shared by several methods: a LoRA-wrapped linear, a bottleneck adapter, a scale-and-shift."""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(mid(A(x)))`` around a frozen ``base`` Linear.

    A: (r, in) Kaiming-uniform (a = sqrt(5), nn.Linear's own init); B: (out, r) zeros, so the
    wrapped layer equals ``base`` at initialisation. ``mid`` acts on the rank-r map (identity for
    plain LoRA, the MoE-conv step for Conv-LoRA) and sees the input's leading shape, e.g.
    (N, H, W, r) inside a SAM attention block.
    """

    def __init__(self, base: nn.Linear, *, rank: int, alpha: float, mid: nn.Module | None = None) -> None:
        super().__init__()
        self.base = base
        self.rank = rank
        self.scaling = alpha / rank
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, **factory))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **factory))
        self.mid = mid if mid is not None else nn.Identity()
        if self.lora_a.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.mid(x @ self.lora_a.t())
        return self.base(x) + self.scaling * (z @ self.lora_b.t())


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
