"""The fused / multi-tensor AdamW makes the default AdamW's updates (within float rounding) and,
like it, leaves a parameter with a None gradient (an unrouted Conv-LoRA expert) untouched."""

from __future__ import annotations

import pytest
import torch

from benchmark.model.factory import build_model
from benchmark.train.losses import structure_loss
from benchmark.train.optim import adamw_kwargs, make_adamw


def test_the_kernel_keyword_per_device() -> None:
    assert adamw_kwargs("default", torch.device("cuda")) == {}
    assert adamw_kwargs("fused", torch.device("cuda")) == {"fused": True}
    assert adamw_kwargs("fused", torch.device("cpu")) == {"foreach": True}
    with pytest.raises(ValueError, match="adamw_kernel"):
        adamw_kwargs("apex", torch.device("cpu"))


def _conv_lora_grads() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | None]]:
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "conv_lora")
    model.train()
    x, y = torch.randn(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.6).float()
    out = model(x)
    (structure_loss(out.logits, y) + out.aux_loss).backward()
    params = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return params, {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("variant", [{"foreach": True}, {"fused": True}])  # "fused" here: the CPU's fused kernel
def test_fused_and_foreach_adamw_equal_the_default_and_skip_none_gradients(variant) -> None:
    start, grads = _conv_lora_grads()
    unrouted = [n for n, g in grads.items() if g is None]
    assert unrouted, "the case needs an expert without a gradient"
    results = []
    for kwargs in ({}, variant):
        params = {n: torch.nn.Parameter(p.clone()) for n, p in start.items()}
        opt = torch.optim.AdamW(params.values(), lr=1e-2, weight_decay=1e-4, **kwargs)
        for step in range(3):  # three steps, the gradients scaled differently each time
            for n, p in params.items():
                p.grad = None if grads[n] is None else grads[n] * (1 + step)
            opt.step()
        results.append((params, opt))
    (plain, plain_opt), (other, other_opt) = results
    moved = 0
    for n in start:
        if n in unrouted:  # no decay, no moment, no step: bit for bit where it started
            assert torch.equal(other[n], start[n]) and torch.equal(plain[n], start[n]), n
            assert other[n] not in other_opt.state and plain[n] not in plain_opt.state, n
        else:
            torch.testing.assert_close(other[n], plain[n], rtol=1e-6, atol=1e-7)
            moved += not torch.equal(plain[n], start[n])
    assert moved > 0


def test_make_adamw_builds_the_chosen_kernel() -> None:
    p = [torch.nn.Parameter(torch.zeros(3))]
    assert make_adamw(p, lr=1e-3, weight_decay=0.0, kernel="fused", device=torch.device("cpu")).defaults["foreach"]
    assert make_adamw(p, lr=1e-3, weight_decay=0.0, kernel="default", device=torch.device("cpu")).defaults["foreach"] is None
