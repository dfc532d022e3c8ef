"""torch.compile as an option: the compiled encoder / model computes the eager model's logits and
gradients (within float rounding). The default suite traces with the ``aot_eager`` backend
(TorchDynamo's capture and AOTAutograd's graphs, no code generation: seconds); the inductor
backend (C++ code generation, about a minute on the 2-core VM) runs with SAM_PEFT_BENCH_INDUCTOR=1."""

from __future__ import annotations

import os

import pytest
import torch

from benchmark.model.compiling import compile_seconds, set_compile
from benchmark.model.factory import build_model
from benchmark.model.feature_cache import attach_feature_cache, cached
from benchmark.train.losses import structure_loss


def _step(method: str, mode: str, backend: str, *, cache: bool = False, attention: str = "auto") -> tuple:
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", method, attention=attention)
    model.train()
    store = attach_feature_cache(model, mode="auto", budget_gib=1, flips=False) if cache else None
    set_compile(model, mode, backend=backend)
    x, y = torch.randn(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.6).float()
    keys = {"index": torch.arange(2)}
    for _ in range(2 if cache else 1):  # with the cache: the second call is served from it
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        with cached(store, "train", keys):
            out = model(x)
        (structure_loss(out.logits, y) + out.aux_loss).backward()
    if store is not None:
        assert store.hits == 2
    return out.logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def _assert_close(method: str, mode: str, backend: str, **kw) -> None:
    torch._dynamo.reset()
    logits, grads = _step(method, "off", backend, **kw)
    logits_c, grads_c = _step(method, mode, backend, **kw)
    torch.testing.assert_close(logits_c, logits, rtol=1e-5, atol=1e-6)
    scale = max(g.abs().max().item() for g in grads.values() if g is not None)
    for name, g in grads.items():
        if g is None:
            assert grads_c[name] is None, name
        else:  # absolute tolerance on the gradients' scale: some (key biases) are zero up to rounding
            torch.testing.assert_close(grads_c[name], g, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize(("method", "mode", "cache", "attention"), [
    ("lora", "encoder", False, "auto"), ("lora", "model", False, "auto"), ("decoder_only", "model", True, "auto"),
    ("conv_lora", "encoder", False, "auto"),  # its routing step eager, the rest compiled around it
    ("lora", "encoder", False, "folded"),  # the attention a GPU run would compile
])
def test_compiled_model_equals_eager(method, mode, cache, attention) -> None:
    _assert_close(method, mode, "aot_eager", cache=cache, attention=attention)


@pytest.mark.skipif(os.environ.get("SAM_PEFT_BENCH_INDUCTOR") != "1",
                    reason="inductor compiles C++ (about a minute on 2 cores): set SAM_PEFT_BENCH_INDUCTOR=1")
# Conv-LoRA: its routing step runs eagerly (torch.compiler.disable) and the rest compiles around
# it; traced whole, inductor failed on the routing's data-dependent shapes (torch 2.14, CPU).
@pytest.mark.parametrize(("method", "mode"), [("lora", "encoder"), ("conv_lora", "model")])
def test_inductor_compiled_model_equals_eager_and_reports_its_compile_time(method, mode) -> None:
    _assert_close(method, mode, "inductor")  # resets dynamo first, its compile-time metric with it
    assert compile_seconds() > 0


def test_off_compiles_nothing_and_a_bad_mode_is_refused() -> None:
    model, _ = build_model("sam_tiny", "lora")
    set_compile(model, "off")
    assert model._compiled_call_impl is None and model.sam.image_encoder._compiled_call_impl is None
    set_compile(model, "encoder", backend="aot_eager")
    assert model.sam.image_encoder._compiled_call_impl is not None
    with pytest.raises(ValueError, match="compile"):
        set_compile(model, "decoder")
