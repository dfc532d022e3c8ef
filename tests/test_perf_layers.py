"""``bench layers`` plumbing: the "before" variant really runs the reference resampling, on its
own layer only, and a measurement row says what it measured. No timing is asserted."""

from __future__ import annotations

import functools

import torch

from benchmark.perf.layers import build_layer, measure
from methods.conv_lora import ConvExpert
from methods.layers import SDPAAttention


def test_variants_build_what_they_name() -> None:
    cpu = torch.device("cpu")
    before = build_layer("moe", "interpolate", (2, 6, 6, 3), cpu)
    after = build_layer("moe", "matmul", (2, 6, 6, 3), cpu)
    assert all(isinstance(e.forward, functools.partial) for e in before.experts)
    assert all(e.forward.__func__ is ConvExpert.forward for e in after.experts)
    after.load_state_dict(before.state_dict())
    z = torch.randn(4, 3, 6, 6)
    for a, b in zip(before.experts, after.experts, strict=True):  # equal up to summation order
        torch.testing.assert_close(a(z), b(z), rtol=1e-5, atol=1e-6)
    assert build_layer("moe", "grouped", (4, 6, 6, 3), cpu).moe_kernel == "grouped"
    assert build_layer("conv_lora", "matmul", (4, 6, 6, 24), cpu).mid.moe_kernel == "loop"
    assert isinstance(build_layer("attention", "sdpa", (1, 4, 4, 24), cpu), SDPAAttention)
    assert not isinstance(build_layer("attention", "sam", (1, 4, 4, 24), cpu), SDPAAttention)


def test_a_measurement_row_names_case_shape_and_variant() -> None:
    row = measure("attention", "window", "sdpa", repeat=1, warmup=0, device="cpu", precision="fp32")
    assert row["dims"] == [25, 14, 14, 768] and row["variant"] == "sdpa" and row["device"] == "cpu"
    assert row["ms"] > 0 and row["peak_mib"] >= 0


def test_operators_and_syncs_are_counted_forward_and_backward() -> None:
    from benchmark.perf.layers import count_operators

    x = torch.randn(4, requires_grad=True)
    with count_operators() as counted:
        y = (x * 2).exp().sum()
        y.backward()
        x.detach().nonzero()
        x.detach().tolist()
        bool(x.detach().sum() > 0)
    assert counted["syncs"] == 3
    assert counted["ops"] >= 6  # mul, exp, sum forward; their backward; nonzero; sum; gt
    with count_operators() as none:
        x.detach().view(2, 2)
    assert none == {"ops": 0, "syncs": 0}  # a view launches nothing
