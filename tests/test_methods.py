"""Every registered method on a tiny SAM: what trains, what stays frozen, exact counts at ViT-H."""

from __future__ import annotations

import copy
import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass

import pytest
import torch

import methods
from benchmark.core.errors import BenchError
from benchmark.model.backbones import build_sam, count_parameters
from benchmark.model.factory import build_model
from benchmark.model.head import SegmentationModel
from methods import METHODS, make_config, register_method
from methods.conv_lora import ConvExpert, ConvLoRAConfig, MoEConv, cv_squared

ALL = METHODS.keys()
TRAINING = [m for m in ALL if METHODS.get(m).trains]  # zero-shot, a reference row, trains nothing


def _apply(method: str, num_classes: int = 1) -> tuple[SegmentationModel, dict[int, str], set[int]]:
    """The model, {id: name} of the parameters it had before the method, and the decoder-only ids."""
    model = SegmentationModel(build_sam("sam_tiny"), num_classes=num_classes)
    before = {id(p): n for n, p in model.named_parameters()}
    decoder = {id(p) for p in model.parameters() if p.requires_grad}
    METHODS.get(method).apply(model, make_config(method))
    return model, before, decoder


def _allowed_base(method: str, name: str) -> bool:
    """Pre-existing parameters a method may unfreeze beyond the decoder-only part: what it declares."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in METHODS.get(method).unfreezes)


@pytest.mark.parametrize("num_classes", [1, 12])
@pytest.mark.parametrize("method", TRAINING)
def test_forward_backward_and_trainable_set(method: str, num_classes: int) -> None:
    torch.manual_seed(0)
    model, before, decoder = _apply(method, num_classes)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.logits.shape == (2, num_classes, 64, 64)
    assert torch.isfinite(out.logits).all()
    if num_classes > 1:
        assert out.class_logits.shape == (2, num_classes, num_classes + 1)
    (out.logits.square().mean() + out.aux_loss).backward()

    params = list(model.parameters())
    added = [p for p in params if id(p) not in before]
    assert all(p.requires_grad for p in added), f"{method}: an added parameter is frozen"
    assert bool(added) == METHODS.get(method).adds_parameters, f"{method}: adds_parameters is declared wrongly"
    for p in params:
        if id(p) in before and id(p) not in decoder:
            assert p.requires_grad == _allowed_base(method, before[id(p)]), before[id(p)]
    if not METHODS.get(method).trains_decoder:
        own = {id(model.mask_tokens)} | {id(p) for p in (model.class_head.parameters() if model.class_head else ())}
        assert not any(p.requires_grad for p in params if id(p) in decoder - own)
    else:
        assert all(p.requires_grad for p in params if id(p) in decoder)
    # Something the method trains received a gradient.
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in added or params if p.requires_grad)


@pytest.mark.parametrize("method", TRAINING)
def test_optimizer_step_leaves_frozen_weights_bit_identical(method: str) -> None:
    torch.manual_seed(1)
    model, _ = build_model("sam_tiny", method)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=1e-4)
    out = model(torch.randn(2, 3, 64, 64))
    (out.logits.sigmoid().mean() + out.aux_loss).backward()
    opt.step()
    moved = 0
    for n, p in model.named_parameters():
        if p.requires_grad:
            moved += int(not torch.equal(before[n], p.detach()))
        else:
            assert torch.equal(before[n], p.detach()), f"frozen {n} moved"
    assert moved > 0


@pytest.mark.parametrize("method", ["lora", "conv_lora"])
@pytest.mark.parametrize("train", [False, True])
def test_lora_family_equals_base_model_at_init(method: str, train: bool) -> None:
    torch.manual_seed(2)
    sam = build_sam("sam_tiny")
    base = SegmentationModel(copy.deepcopy(sam))
    adapted = SegmentationModel(sam)
    METHODS.get(method).apply(adapted, make_config(method))
    base.train(train)
    adapted.train(train)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(base(x).logits, adapted(x).logits)


def test_conv_lora_scale_one_expert_is_a_plain_conv() -> None:
    torch.manual_seed(3)
    expert = ConvExpert(rank=3, scale=1)
    z = torch.randn(2, 3, 5, 5)
    expected = torch.nn.functional.gelu(torch.nn.functional.conv2d(z, expert.conv.weight, expert.conv.bias, padding=1))
    assert torch.equal(expert(z), expected)
    assert torch.count_nonzero(expert.conv.bias) == 0


def test_conv_lora_larger_scales_resample_and_return_input_size() -> None:
    expert = ConvExpert(rank=3, scale=4)
    z = torch.randn(1, 3, 7, 7)
    assert expert(z).shape == z.shape
    # Resampling changes the result: it is not the same conv applied at the input scale.
    assert not torch.allclose(expert(z), torch.nn.functional.gelu(expert.conv(z)))


def test_balancing_loss_zero_when_balanced_positive_otherwise() -> None:
    cfg = ConvLoRAConfig(scales=(1, 2, 3, 4), rank=4)
    moe = MoEConv(cfg).eval()
    with torch.no_grad():
        moe.w_gate.copy_(torch.eye(4))  # pooled one-hot e_i routes to expert i
    balanced = torch.eye(4).repeat(2, 1)  # 8 samples, 2 per expert
    gates, load = moe.gate(balanced)
    assert torch.equal(load, torch.full((4,), 2.0))
    loss = cfg.balance_coef * (cv_squared(gates.sum(0)) + cv_squared(load))
    assert loss.item() == 0.0
    skewed = torch.eye(4)[[0, 0, 0, 1]]
    gates, load = moe.gate(skewed)
    assert (cv_squared(gates.sum(0)) + cv_squared(load)).item() > 0
    # The module reports the same quantity it was given routing for.
    z = skewed[:, None, None, :].expand(4, 3, 3, 4).contiguous()
    moe(z)
    assert moe.aux_loss.item() > 0


def test_conv_lora_scale_ablation_is_a_config_option() -> None:
    cfg = make_config("conv_lora", {"scales": "1,2,4"})
    assert cfg.scales == (1, 2, 4)
    base = _count("sam_vit_h", "lora")
    model, _ = build_model("sam_vit_h", "conv_lora", device="meta", overrides={"scales": "1,2,4"})
    # per block: gate and noise 2 x 3 x 3, experts 3 x (3 x 3 x 9 + 3)
    assert count_parameters(model)[0] == base + 32 * (2 * 3 * 3 + 3 * 84)
    assert [e.scale for e in next(m for m in model.modules() if isinstance(m, MoEConv)).experts] == [1, 2, 4]
    with pytest.raises(BenchError, match=r"option conv_lora.scales: .0,2. is not allowed; expected a comma-separated list of integers >= 1"):
        build_model("sam_tiny", "conv_lora", overrides={"scales": "0,2"})


def test_cv_squared_matches_its_formula() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 6.0])
    mean, var = 3.0, ((4 + 1 + 0 + 9) / 3)
    assert cv_squared(x).item() == pytest.approx(var / mean**2)


def test_conv_lora_model_reports_summed_balancing_loss() -> None:
    torch.manual_seed(4)
    model, _ = build_model("sam_tiny", "conv_lora")
    model.train()
    out = model(torch.randn(4, 3, 64, 64))
    layers = [m for m in model.modules() if isinstance(m, MoEConv)]
    assert len(layers) == 4
    assert out.aux_loss.item() == pytest.approx(sum(m.aux_loss.item() for m in layers))
    assert out.aux_loss.requires_grad


# Exact trainable counts at ViT-H, from each method's formula (C = 1280, 32 blocks, decoder part D).
C, L, D = 1280, 32, 3_505_536


def _lst_count() -> int:
    """LST follows its own design, not the paper's count (methods/lst.py): side width 98, 14 heads."""
    w, heads = 1280 // 13, 14
    hd = w // heads
    block = 12 * w * w + 13 * w  # qkv, proj, 2 MLP linears, 2 norms
    rel = 28 * 2 * (2 * 14 - 1) * hd + 4 * 2 * (2 * 64 - 1) * hd
    return D + 33 * (C * w + w) + 32 + L * block + rel + (w * C + C)


FORMULAS = {
    "decoder_only": D,
    "bitfit": D + L * (3 * C + C + 4 * C + C + C + C) + C + 2 * 256,
    "adapter": D + 2 * L * (C * 2 + 2 + 2 * C + C),
    "vpt": D + L * 12 * C,
    "lora": D + L * 3 * (C + 3 * C),
    "conv_lora": D + L * (3 * (C + 3 * C) + 2 * 3 * 8 + 8 * (3 * 3 * 9 + 3)),
    "sam_adapter": D + 32 * 80**2 + 3362 * 80 + 1280,
    "ssf": D + L * 2 * (3 * C + C + 4 * C + C + C + C) + 2 * C + 4 * 2 * 256,
    "from_scratch": 641_090_608 + 256,
    "zero_shot": 0,
    # rank 64 on qkv of 32 blocks; on q/k/v/out of the decoder's 7 attentions (2 self-attentions
    # at width 256, 5 cross-attentions at 128 inside); nothing else (the mask token frozen).
    "sam2lora": L * 64 * (C + 3 * C) + 2 * 4 * 64 * 512 + 5 * 4 * 64 * 384,
    "lst": _lst_count(),
}


@pytest.mark.parametrize("method", sorted(FORMULAS))
def test_trainable_count_at_vit_h_equals_formula(method: str) -> None:
    model, _ = build_model("sam_vit_h", method, device="meta")
    trainable, total = count_parameters(model)
    assert trainable == FORMULAS[method]
    assert total >= 641_090_608


def test_every_registered_method_has_its_exact_count_formula() -> None:
    assert set(FORMULAS) == set(METHODS.keys()), "a registered method needs its ViT-H count formula here"


def test_every_file_in_methods_is_registered() -> None:
    registered = {METHODS.get(k).apply.__module__ for k in METHODS}
    files = {f"methods.{m.name}" for m in pkgutil.iter_modules(methods.__path__) if m.name != "layers"}
    assert files == registered


def test_a_new_method_is_one_registration() -> None:
    @dataclass(frozen=True)
    class ScaleOnlyConfig:
        init: float = 1.0

    try:
        @register_method("toy_scale", ScaleOnlyConfig)
        def apply_toy(model, cfg):
            model.sam.image_encoder.toy = torch.nn.Parameter(torch.tensor(cfg.init))

        model, cfg = build_model("sam_tiny", "toy_scale", overrides={"init": "2.5"})
        assert cfg.init == 2.5
        assert model.sam.image_encoder.toy.requires_grad
        with pytest.raises(ValueError, match="duplicate"):
            register_method("toy_scale", ScaleOnlyConfig)(apply_toy)
    finally:
        METHODS._items.pop("toy_scale", None)


def test_config_overrides_are_typed_and_checked() -> None:
    assert make_config("conv_lora", {"rank": "4", "noisy_gating": "false"}).rank == 4
    assert make_config("lora", {"targets": "qkv,proj"}).targets == ("qkv", "proj")
    with pytest.raises(BenchError, match="unknown option 'rnk'.*rank"):
        make_config("conv_lora", {"rnk": "4"})
    with pytest.raises(BenchError, match="option conv_lora.rank: 'four' is not allowed; expected an integer >= 1"):
        make_config("conv_lora", {"rank": "four"})
    model, cfg = build_model("sam_tiny", "lora", overrides={"rank": "5"})
    assert count_parameters(model)[0] == _count("sam_tiny", "decoder_only") + 4 * 5 * (32 + 96)


def _count(backbone: str, method: str) -> int:
    return count_parameters(build_model(backbone, method, device="meta")[0])[0]


def test_unknown_method_lists_valid_ones() -> None:
    with pytest.raises(BenchError, match="unknown method 'nope'; valid: .*conv_lora"):
        build_model("sam_tiny", "nope")


@pytest.mark.parametrize("method", ALL)
def test_method_module_docstring_cites_paper_and_trainable_part(method: str) -> None:
    doc = importlib.import_module(METHODS.get(method).apply.__module__).__doc__ or ""
    assert "Trainable" in doc or "trainable" in doc
    assert "arXiv" in doc or "Conv-LoRA paper" in doc


def test_zero_shot_trains_nothing_and_predicts_as_the_loaded_model(tmp_path) -> None:
    torch.manual_seed(5)
    ckpt = tmp_path / "sam_tiny.pth"
    torch.save(build_sam("sam_tiny").state_dict(), ckpt)
    model, _ = build_model("sam_tiny", "zero_shot", checkpoint=ckpt)
    base, _ = build_model("sam_tiny", "decoder_only", checkpoint=ckpt)
    assert count_parameters(model)[0] == 0
    assert not METHODS.get("zero_shot").trains and all(METHODS.get(m).trains for m in TRAINING)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x).logits, base.eval()(x).logits, atol=1e-6)
