"""The encoder attention through SDPA equals segment-anything's computation (issue 10).

Both SDPA kinds: the bias as a mask (``sdpa``) and folded into q and k (``folded``). Relative
difference <= 1e-5 in fp32, forward and gradients: on single segment-anything blocks (windowed
with padding, and global, both with random relative positions) and on every method built on
``sam_tiny`` (there also 1e-10 in fp64, which only float rounding can explain). The switch keeps
parameters and state-dict keys.
"""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
from segment_anything.modeling.image_encoder import Attention, Block

from benchmark.core.errors import BenchError
from benchmark.model.attention import resolve_attention, set_attention
from benchmark.model.backbones import count_parameters
from benchmark.model.factory import build_model, supports
from methods import METHODS
from methods.layers import FoldedAttention, SDPAAttention, fold_rel_pos, rel_pos_bias

TOL = 1e-5
KINDS = {"sdpa": SDPAAttention, "folded": FoldedAttention}
SAM_METHODS = [m for m in METHODS.keys() if supports(m, "sam_tiny") and METHODS.get(m).trains]  # gradients compared


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (0 when both are zero)."""
    scale = b.norm().item()
    return (a - b).norm().item() / scale if scale else (a - b).norm().item()


def _block(window: int, grid: int, *, dim: int = 32, heads: int = 2) -> Block:
    """A segment-anything Block with rel-pos; random relative positions (they start at zero)."""
    block = Block(dim=dim, num_heads=heads, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                  window_size=window, input_size=(grid, grid))
    with torch.no_grad():
        block.attn.rel_pos_h.normal_()
        block.attn.rel_pos_w.normal_()
    return block


def _forward_backward(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.square().mean().backward()
    grads = {n: p.grad for n, p in module.named_parameters()}
    grads["input"] = x.grad
    return out.detach(), grads


# Windowed: ViT-like 14x14 windows over a 32x32 grid (padded to 42); SAM tiny's 3x3 over 8x8
# (padded to 9); global: the whole 16x16 or 8x8 grid.
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("window", "grid"), [(14, 32), (3, 8), (0, 16), (0, 8), (0, 6)])
def test_sdpa_block_equals_segment_anything_forward_and_gradients(window: int, grid: int, kind: str) -> None:
    torch.manual_seed(0)
    sam = _block(window, grid)
    sdpa = copy.deepcopy(sam)
    assert set_attention(sdpa, kind) == 1 and type(sdpa.attn) is KINDS[kind]
    x = torch.randn(2, grid, grid, 32)
    out_sam, grads_sam = _forward_backward(sam, x)
    out_sdpa, grads_sdpa = _forward_backward(sdpa, x)
    assert rel_diff(out_sdpa, out_sam) <= TOL
    assert grads_sam.keys() == grads_sdpa.keys()
    for name, g in grads_sam.items():
        assert rel_diff(grads_sdpa[name], g) <= TOL, name
    # The relative-position bias matters here, so the comparison above can fail without it.
    no_bias = copy.deepcopy(sdpa)
    with torch.no_grad():
        no_bias.attn.rel_pos_h.zero_()
        no_bias.attn.rel_pos_w.zero_()
    assert rel_diff(no_bias(x), out_sam) > 1e-2


def test_switch_keeps_the_module_its_parameters_and_back() -> None:
    block = _block(0, 8)
    params = [id(p) for p in block.parameters()]
    keys = list(block.state_dict())
    set_attention(block, "sdpa")
    assert [id(p) for p in block.parameters()] == params and list(block.state_dict()) == keys
    set_attention(block, "folded")
    assert [id(p) for p in block.parameters()] == params and list(block.state_dict()) == keys
    set_attention(block, "sam")
    assert type(block.attn) is Attention
    with pytest.raises(BenchError, match="kind must be one of sam, sdpa, folded, got 'auto'"):
        set_attention(block, "auto")


@pytest.mark.parametrize(("h", "w"), [(3, 5), (4, 4)])
def test_folded_queries_and_keys_give_the_bias_in_the_dot_product(h: int, w: int) -> None:
    """q' . k' is scale * q . k plus the dense bias entry by entry: rows and columns of the
    one-hot codes are not swapped (a rectangular grid tells them apart)."""
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 3, h * w, 4, generator=g, dtype=torch.float64), torch.randn(2, 3, h * w, 4, generator=g, dtype=torch.float64)
    rel_h, rel_w = torch.randn(2 * h - 1, 4, generator=g, dtype=torch.float64), torch.randn(2 * w - 1, 4, generator=g, dtype=torch.float64)
    fq, fk = fold_rel_pos(q, k, rel_h, rel_w, (h, w), 0.5)
    assert fq.shape == fk.shape == (2, 3, h * w, 4 + h + w)
    bias = rel_pos_bias(q.reshape(6, h * w, 4), rel_h, rel_w, (h, w)).view(2, 3, h * w, h * w)
    assert torch.allclose(fq @ fk.transpose(-2, -1), 0.5 * q @ k.transpose(-2, -1) + bias, rtol=0, atol=1e-12)


def _perturb(model: torch.nn.Module) -> None:
    """Move every parameter off its init (zero-initialised LoRA B, gates, relative positions...),
    so each part of every method takes part in the forward. Gently: with std 0.2 the tiny model's
    gradients become so ill-conditioned that segment-anything's own fp32 path is 1e-4 off its
    fp64 result; at 0.05 it is within 3e-6 for every method but LST (below)."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def _train_step(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """Logits and gradients of one training forward/backward of the whole model."""
    model.train()
    torch.manual_seed(11)  # the same gating noise (Conv-LoRA) in both models
    out = model(x)
    (out.logits.square().mean() + out.aux_loss).backward()
    return out.logits.detach(), _grads(model)


def _encoder_step(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    """The same for the image encoder alone (segment-anything's prompt encoder is float32-only);
    the gradients include the input's, which flows through every attention even when the
    encoder is frozen (decoder-only)."""
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(11)
    out = model.sam.image_encoder(x)
    out.square().mean().backward()
    return out.detach(), {**_grads(model), "input": x.grad}


def assert_grads_close(got: dict[str, torch.Tensor | None], want: dict[str, torch.Tensor | None], tol: float) -> None:
    """The same gradients are None, and each other within ``tol`` relative. One whose exact value
    is zero (attention key biases: softmax ignores a shift shared by a query's scores) holds
    rounding noise only, so it is held to ``tol`` relative to the largest gradient instead."""
    assert [n for n, g in want.items() if g is None] == [n for n, g in got.items() if g is None]
    largest = max(g.norm().item() for g in want.values() if g is not None)
    for name, g in want.items():
        if g is None:
            continue
        if g.norm().item() < 1e-6 * largest:
            assert (got[name] - g).norm().item() <= tol * largest, name
        else:
            assert rel_diff(got[name], g) <= tol, name


def _flat(grads: dict[str, torch.Tensor | None]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads.values() if g is not None])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", SAM_METHODS)
def test_every_method_gives_the_same_logits_and_gradients_with_sdpa(method: str, kind: str) -> None:
    """fp32, whole model: logits and the whole gradient within 1e-5 relative, each parameter's
    within 1e-3 (LST's side network, 2 channels wide on sam_tiny, is so ill-conditioned that
    segment-anything's own fp32 gradient there is 3e-4 off its fp64 value). fp64, encoder: each
    parameter's gradient within 1e-10, so what differs in fp32 is float rounding, not the maths."""
    torch.manual_seed(3)
    sam, _ = build_model("sam_tiny", method, attention="sam")
    torch.manual_seed(3)
    sdpa, _ = build_model("sam_tiny", method, attention=kind)
    assert not any(isinstance(m, tuple(KINDS.values())) for m in sam.modules())
    assert sum(isinstance(m, KINDS[kind]) for m in sdpa.modules()) >= 4  # every encoder block
    assert count_parameters(sdpa) == count_parameters(sam)
    _perturb(sam)
    sdpa.load_state_dict(sam.state_dict(), strict=True)  # same keys: checkpoints load either way
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    logits_sam, grads_sam = _train_step(sam, x)
    logits_sdpa, grads_sdpa = _train_step(sdpa, x)
    assert rel_diff(logits_sdpa, logits_sam) <= TOL
    assert grads_sam.keys() == grads_sdpa.keys()
    assert rel_diff(_flat(grads_sdpa), _flat(grads_sam)) <= TOL
    assert_grads_close(grads_sdpa, grads_sam, 1e-3)

    x = x.double()
    out_sam, grads_sam = _encoder_step(sam.double(), x)
    out_sdpa, grads_sdpa = _encoder_step(sdpa.double(), x)
    assert rel_diff(out_sdpa, out_sam) <= 1e-10
    assert_grads_close(grads_sdpa, grads_sam, 1e-10)


def test_auto_is_exact_on_cpu_and_sdpa_on_cuda() -> None:
    assert resolve_attention("auto", "cpu") == "sam"
    assert resolve_attention("auto", None) == "sam"
    assert resolve_attention("auto", torch.device("cuda", 0)) == "sdpa"
    assert resolve_attention("sdpa", "cpu") == "sdpa"
    assert resolve_attention("folded", "cuda") == "folded"
    with pytest.raises(BenchError, match="option attention: 'flash' is not one of auto, sam, sdpa, folded"):
        resolve_attention("flash", "cpu")
    model, _ = build_model("sam_tiny", "lora")
    assert not any(isinstance(m, SDPAAttention) for m in model.modules())



def test_train_setting_reaches_build_model(monkeypatch, tmp_path) -> None:
    from benchmark.data.domains import get_domain
    from benchmark.train import engine

    seen: dict = {}

    def stop(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("built")

    monkeypatch.setattr(engine, "build_model", stop)
    assert engine.TrainConfig().attention == "auto" and engine.TrainConfig().moe_kernel == "loop"
    cfg = engine.train_config_from({"attention": "sdpa", "moe_kernel": "grouped"}, engine.TrainConfig())
    with pytest.raises(RuntimeError, match="built"):
        engine.train_and_evaluate(
            method="lora", backbone="sam_tiny", domain=get_domain("polyp"), seed=0, data_root=tmp_path,
            checkpoint=None, method_overrides={}, train_cfg=cfg, device=torch.device("cpu"), progress=False,
        )
    assert seen["attention"] == "sdpa" and seen["moe_kernel"] == "grouped"
    with pytest.raises(BenchError, match="moe_kernel"):
        engine.train_config_from({"moe_kernel": "dense"}, engine.TrainConfig())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["lst", "lora", "vpt"])
def test_heads_padded_to_a_multiple_of_8_give_the_same_logits_and_gradients(method: str, kind: str, monkeypatch) -> None:
    """CUDA pads heads to a multiple of 8 (LST's side blocks have heads of 7) for the fused
    kernels; forced here on the CPU, with 1 to 8 zero columns on every head."""
    import methods.layers as layers

    torch.manual_seed(3)
    model, _ = build_model("sam_tiny", method, attention=kind)
    _perturb(model)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    model = model.double()
    plain = _encoder_step(model, x.double())
    calls = []
    monkeypatch.setattr(layers, "head_dim_padding", lambda q: calls.append(q.shape[-1]) or 8 - q.shape[-1] % 8)
    padded = _encoder_step(model, x.double())
    assert calls and (method != "lst" or any(d % 8 for d in calls))  # LST's side heads are not aligned
    assert rel_diff(padded[0], plain[0]) <= 1e-12
    assert_grads_close(padded[1], plain[1], 1e-12)
