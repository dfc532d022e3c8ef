"""The optimiser of a run: AdamW with PyTorch's default kernel, or the fused / multi-tensor one.

``adamw_kernel="default"`` is ``torch.optim.AdamW(params, lr, weight_decay)`` as the recipe has
always built it (the per-parameter loop on the CPU, the multi-tensor ``foreach`` path on CUDA).
``"fused"`` asks for one fused kernel per step on CUDA (``fused=True``) and the multi-tensor
``foreach`` path elsewhere: the same update rule, computed with other operation grouping, so the
parameters agree within float rounding (tests/test_optim.py: 1e-6 relative after several steps),
not bit for bit; hence not the default. Every variant skips a parameter whose gradient is
``None`` (no weight decay, no moment update, no step count), which Conv-LoRA's unrouted experts
rely on (docs/FIDELITY.md; a zero gradient would decay and move them).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

ADAMW_KERNELS = ("default", "fused")


def adamw_kwargs(kernel: str, device: torch.device) -> dict[str, bool]:
    """The ``torch.optim.AdamW`` keyword that selects ``kernel`` on ``device``."""
    if kernel not in ADAMW_KERNELS:
        raise ValueError(f"adamw_kernel must be one of {', '.join(ADAMW_KERNELS)}, got {kernel!r}")
    if kernel == "default":
        return {}
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def make_adamw(params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float, kernel: str,
               device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **adamw_kwargs(kernel, device))
