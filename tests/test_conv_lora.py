"""Conv-LoRA's experts resample with precomputed per-axis matrices (issue 10): equal to the
official ``F.interpolate`` bicubic resampling, forward and gradients; unrouted experts still get
no gradient at all; no float32 output under CUDA's autocast policy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import BenchError
from benchmark.train.amp import cuda_cast_policy
from methods.conv_lora import ConvExpert, ConvLoRAConfig, MoEConv, bicubic_matrix, official_expert
from methods.layers import set_moe_kernel


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _output_and_grads(fn, expert: ConvExpert, z: torch.Tensor) -> list[torch.Tensor]:
    z = z.clone().requires_grad_(True)
    out = fn(z)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    grads = torch.autograd.grad((out * weights).sum(), (z, expert.conv.weight, expert.conv.bias))
    return [out.detach(), *grads]


# 14: a ViT window, 64: a ViT global block at 1024; 3 and 8: sam_tiny's window and global grid.
# fp32 within 1e-5 everywhere; fp64 within 1e-12 (only float rounding differs), where it is quick.
CASES = [(size, scale, torch.float32, 1e-5) for size in (3, 8, 14, 64) for scale in range(1, 9)] + [
    (size, scale, torch.float64, 1e-12) for size in (3, 14) for scale in range(1, 9)
]


@pytest.mark.parametrize(("size", "scale", "dtype", "tol"), CASES)
def test_expert_equals_official_interpolation_forward_and_gradients(
    size: int, scale: int, dtype: torch.dtype, tol: float
) -> None:
    torch.manual_seed(scale)
    expert = ConvExpert(rank=3, scale=scale).to(dtype)
    with torch.no_grad():
        expert.conv.bias.normal_()  # zero at init; random here so GELU sees both signs off zero
    z = torch.randn(2, 3, size, size, dtype=dtype)
    ours = _output_and_grads(expert, expert, z)
    official = _output_and_grads(lambda t: official_expert(expert, t), expert, z)
    for what, a, b in zip(("output", "d z", "d weight", "d bias"), ours, official, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel_diff(a, b) <= tol, what


def test_matrices_are_the_kernels_weights_cached_per_size_and_dtype() -> None:
    cpu = torch.device("cpu")
    up = bicubic_matrix(5, 3, True, cpu, torch.float32)
    assert up.shape == (15, 5) and bicubic_matrix(5, 3, True, cpu, torch.float32) is up
    assert bicubic_matrix(5, 3, False, cpu, torch.float32).shape == (5, 15)
    assert bicubic_matrix(5, 3, True, cpu, torch.bfloat16).dtype == torch.bfloat16
    assert not up.requires_grad and not up.is_inference()
    # Rows sum to 1 (bicubic reproduces constants) and the borders are clamped, not zero-padded:
    # the first output row leans on input 0 only through weights that include the clamped taps.
    torch.testing.assert_close(up.sum(1), torch.ones(15))
    x = torch.arange(5.0)
    torch.testing.assert_close(up @ x, F.interpolate(x.view(1, 1, 5, 1), scale_factor=(3, 1), mode="bicubic").view(15))


def test_matrix_built_under_inference_mode_still_trains() -> None:
    bicubic_matrix.cache_clear()
    expert = ConvExpert(rank=3, scale=2)
    with torch.inference_mode():
        expert(torch.randn(1, 3, 4, 4))  # builds and caches the (8, 4) and (4, 8) matrices
    z = torch.randn(1, 3, 4, 4, requires_grad=True)
    expert(z).sum().backward()
    assert z.grad is not None and expert.conv.weight.grad is not None


@pytest.mark.parametrize("kernel", ["loop", "grouped"])
def test_unrouted_experts_keep_a_none_gradient(kernel: str) -> None:
    # The official code never calls an expert no sample is routed to, so its parameters get no
    # gradient (None) and AdamW skips them: no weight decay, no moment update
    # (docs/FIDELITY.md#lora-and-conv-lora).
    cfg = ConvLoRAConfig(scales=(1, 2, 3, 4), rank=4)
    moe = MoEConv(cfg).eval()
    assert set_moe_kernel(moe, kernel) == 1
    with torch.no_grad():
        moe.w_gate.copy_(torch.eye(4))  # a pooled one-hot e_i routes to expert i
    z = torch.eye(4)[[0, 2, 2]].view(3, 1, 1, 4).expand(3, 6, 6, 4).clone()  # (N, H, W, r) for experts 0, 2
    (moe(z).square().sum() + moe.aux_loss).backward()
    routed = [e.conv.weight.grad is not None for e in moe.experts]
    assert routed == [True, False, True, False]
    assert all(e.conv.bias.grad is None for i, e in enumerate(moe.experts) if i in (1, 3))
    assert moe.experts[2].conv.weight.grad.abs().sum() > 0


def test_expert_stays_16_bit_under_cuda_autocast_policy() -> None:
    # F.interpolate returns float32 inside a bf16 region on CUDA (docs/FIDELITY.md#gpu-autocast);
    # the matmuls take autocast's 16-bit dtype, so the expert's output matches z's.
    expert = ConvExpert(rank=3, scale=4)
    z = torch.randn(2, 3, 7, 7, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), cuda_cast_policy():
        zb = z @ torch.eye(7)  # a 16-bit z, as LoRA's A gives it under autocast
        out = expert(zb)
    assert zb.dtype == out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def _moe_step(moe: MoEConv, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Output, balancing loss and gradients (z's and every parameter's, None kept) of one step."""
    moe.zero_grad(set_to_none=True)
    z = z.clone().requires_grad_(True)
    torch.manual_seed(5)  # the same gating noise for both kernels
    out = moe(z)
    (out.square().mean() + moe.aux_loss).backward()
    grads = {n: p.grad for n, p in moe.named_parameters()}
    return out.detach(), moe.aux_loss.detach(), {**grads, "z": z.grad}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n", "h", "w", "scales", "top_k"), [
    (25, 14, 14, (1, 2, 3, 4, 5, 6, 7, 8), 1),  # ViT windows, the official experts
    (1, 16, 16, (1, 2, 3, 4, 5, 6, 7, 8), 1),   # a global block at batch 1: one expert used
    (6, 5, 7, (1, 3, 2), 1),                     # not square, scales out of order
    (6, 5, 5, (2, 1, 4, 3), 2),                  # two experts per sample, summed in the loop's order
])
def test_grouped_experts_equal_the_loop(n: int, h: int, w: int, scales: tuple, top_k: int, dtype: torch.dtype) -> None:
    """Forward, balancing loss and gradients within 1e-5 (fp32) / 1e-12 (fp64); the same
    experts keep a None gradient. Random biases, so the padded region carries values that must
    not leak into the valid one."""
    torch.manual_seed(0)
    moe = MoEConv(ConvLoRAConfig(scales=scales, top_k=top_k)).train().to(dtype)
    with torch.no_grad():
        for p in moe.parameters():
            p.normal_(0, 0.5)
    z = torch.randn(n, h, w, 3, dtype=dtype)
    set_moe_kernel(moe, "loop")
    want = _moe_step(moe, z)
    set_moe_kernel(moe, "grouped")
    got = _moe_step(moe, z)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert rel_diff(got[0], want[0]) <= tol and rel_diff(got[1], want[1]) <= tol
    assert [k for k, g in want[2].items() if g is None] == [k for k, g in got[2].items() if g is None]
    for name, g in want[2].items():
        if g is not None:
            assert rel_diff(got[2][name], g) <= tol, name
    used = sum(want[2][f"experts.{i}.conv.weight"] is not None for i in range(len(scales)))
    assert used >= 2 if n > 1 else used == 1
    # The experts' part matters: without it the outputs differ.
    assert rel_diff(z.to(dtype), want[0]) > 1e-3


def test_grouped_experts_stay_16_bit_under_cuda_autocast_policy() -> None:
    torch.manual_seed(0)
    moe = MoEConv(ConvLoRAConfig()).train()
    set_moe_kernel(moe, "grouped")
    z = torch.randn(25, 14, 14, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), cuda_cast_policy():
        zb = z @ torch.eye(3)
        out = moe(zb)
    assert zb.dtype == out.dtype == torch.bfloat16
    (out.float().sum() + moe.aux_loss).backward()
    assert torch.isfinite(z.grad).all()


def test_an_unknown_moe_kernel_is_refused() -> None:
    with pytest.raises(BenchError, match="option moe_kernel: 'dense' is not one of loop, grouped"):
        set_moe_kernel(MoEConv(ConvLoRAConfig()), "dense")
    assert set_moe_kernel(torch.nn.Linear(2, 2), "grouped") == 0


def test_grouped_experts_in_the_whole_model() -> None:
    """build_model's ``moe_kernel`` reaches every layer; one training step of Conv-LoRA on
    sam_tiny gives the loop's logits and gradients (None kept) within 1e-5."""
    from benchmark.model.factory import build_model

    results = []
    for kernel in ("loop", "grouped"):
        torch.manual_seed(3)
        model, _ = build_model("sam_tiny", "conv_lora", moe_kernel=kernel)
        assert {m.moe_kernel for m in model.modules() if isinstance(m, MoEConv)} == {kernel}
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.train()
        torch.manual_seed(11)
        out = model(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)))
        (out.logits.square().mean() + out.aux_loss).backward()
        results.append((out.logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}))
    (want, want_grads), (got, got_grads) = results
    assert rel_diff(got, want) <= 1e-5
    assert [n for n, g in want_grads.items() if g is None] == [n for n, g in got_grads.items() if g is None]
    assert any(g is None for g in want_grads.values())  # some experts were not routed to
    flat = lambda grads: torch.cat([g.flatten() for g in grads.values() if g is not None])  # noqa: E731
    assert rel_diff(flat(got_grads), flat(want_grads)) <= 1e-5
