"""Learning-rate schedules, stepped once per optimiser step: ``poly`` (the Conv-LoRA recipe) and
``cosine_restarts`` (SAM2LoRA's).

- ``poly``: lr = lr0 * max(0, 1 - step / total) ** power, no warm-up (docs/FIDELITY.md#training-recipe);
  ``total`` is every optimiser step of the run.
- ``cosine_restarts``: torch's ``CosineAnnealingWarmRestarts(T_0=restart_steps, T_mult=1,
  eta_min=0)``: lr = lr0 * (1 + cos(pi * (step mod T_0) / T_0)) / 2, back to lr0 every T_0 steps
  (SAM2LoRA ``train.py:105-106``, ``argparser.py:62``: T_0 = 1000; docs/FIDELITY.md#sam2lora-optimisation).

Both keep their position in ``state_dict``, so a resumed run continues the same curve.
"""

from __future__ import annotations

import torch

SCHEDULES = ("poly", "cosine_restarts")


def build_schedule(opt: torch.optim.Optimizer, name: str, *, total_steps: int, poly_power: float,
                   restart_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler ``name`` on ``opt``; ``total_steps`` matters to ``poly`` only, ``restart_steps``
    to ``cosine_restarts`` only."""
    if name == "cosine_restarts":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=restart_steps, T_mult=1, eta_min=0.0)
    if name != "poly":
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total_steps) ** poly_power)
