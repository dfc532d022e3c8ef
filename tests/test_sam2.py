"""SAM2 (Hiera) through the same backbone interface: the prompt-free head, the methods that carry
over unchanged, SAM2LoRA, and the composite loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.model.attention import set_attention
from benchmark.model.backbones import BackboneView, build_sam, count_parameters
from benchmark.model.factory import build_model
from benchmark.model.head import SegmentationModel
from benchmark.train.losses import composite_loss, focal_tversky_loss, soft_dice_loss
from methods import METHODS, make_config
from methods.layers import LoRALinear

CARRY_OVER = ["decoder_only", "bitfit", "adapter", "ssf", "lora", "conv_lora", "sam2lora"]


@pytest.fixture(scope="module")
def sam2():
    torch.manual_seed(0)
    return build_sam("sam2_tiny")


def test_sam2_hiera_t_count_matches_the_package() -> None:
    # docs/FIDELITY.md#environment: sam2 1.1.0 hiera_t with random weights has 38.96M parameters.
    total = count_parameters(build_sam("sam2_hiera_t", device="meta"))[1]
    assert round(total / 1e6, 2) == 38.96


def test_view_exposes_hiera_blocks_with_stage_widths(sam2) -> None:
    view = BackboneView(sam2)
    assert view.family == "sam2"
    widths = {b.dim_out for b in view.blocks}
    assert widths == {96, 192, 384, 768}
    assert any(b.is_global for b in view.blocks) and not all(b.is_global for b in view.blocks)
    for b in view.blocks:
        assert b.get("qkv").out_features == 3 * b.dim_out
        assert b.get("fc2").out_features == b.dim_out
    assert len(view.decoder_attention()) == 7  # 2 layers x 3 attentions + the final one


@pytest.mark.parametrize("method", CARRY_OVER)
def test_methods_carry_over_to_sam2(sam2, method: str) -> None:
    torch.manual_seed(1)
    model = SegmentationModel(copy.deepcopy(sam2))
    before = {id(p) for p in model.parameters()}
    METHODS.get(method).apply(model, make_config(method))
    out = model(torch.randn(1, 3, 256, 256))
    assert out.logits.shape == (1, 1, 256, 256)
    (out.logits.square().mean() + out.aux_loss).backward()
    added = [p for p in model.parameters() if id(p) not in before]
    assert all(p.requires_grad for p in added)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("method", ["vpt", "lst", "sam_adapter"])
def test_sam_only_methods_refuse_sam2_clearly(method: str) -> None:
    with pytest.raises(BenchError, match=f"method {method} is defined for SAM backbones only"):
        build_model("sam2_hiera_t", method, device="meta")


def test_attention_switch_leaves_sam2_on_its_own_path(sam2) -> None:
    model = copy.deepcopy(sam2)
    classes = [type(m) for m in model.modules()]
    assert set_attention(model, "sdpa") == 0
    assert [type(m) for m in model.modules()] == classes


def test_lora_on_sam2_equals_base_at_init(sam2) -> None:
    base = SegmentationModel(copy.deepcopy(sam2)).eval()
    adapted = SegmentationModel(copy.deepcopy(sam2)).eval()
    METHODS.get("sam2lora").apply(adapted, make_config("sam2lora", {"no_mem_embed": "true"}))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(base(x).logits, adapted(x).logits)


def test_prompt_free_sam2_head_matches_sam2_decoder(sam2) -> None:
    """Our decode equals SAM2's own decoder cut to one mask token, with no prompts."""
    model = SegmentationModel(copy.deepcopy(sam2)).eval()
    s2 = model.sam
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        ours = model(x).logits
        out = s2.forward_image(x)
        _, feats, _, sizes = s2._prepare_backbone_features(out)
        if s2.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + s2.no_mem_embed
        maps = [f.permute(1, 2, 0).reshape(1, -1, *hw) for f, hw in zip(feats, sizes, strict=True)]
        dec = copy.deepcopy(s2.sam_mask_decoder)
        dec.mask_tokens = torch.nn.Embedding.from_pretrained(dec.mask_tokens.weight[:1])
        dec.num_mask_tokens = 1
        sparse, dense = s2.sam_prompt_encoder(points=None, boxes=None, masks=None)
        low, *_ = dec.predict_masks(maps[-1], s2.sam_prompt_encoder.get_dense_pe(), sparse, dense,
                                    repeat_image=False, high_res_features=maps[:-1])
        theirs = torch.nn.functional.interpolate(low, size=(256, 256), mode="bilinear", align_corners=False)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_sam2lora_trains_only_adapters_and_tokens() -> None:
    model, cfg = build_model("sam2_hiera_t", "sam2lora", device="meta")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or n == "mask_tokens" for n in names)
    assert any("sam_mask_decoder.transformer" in n for n in names)
    assert any("image_encoder.trunk" in n for n in names)
    trainable, total = count_parameters(model)
    assert trainable / total < 0.05  # the paper: fewer than 5% trainable
    lora = next(m for m in model.modules() if hasattr(m, "lora_a"))
    assert lora.scaling == pytest.approx(2.0)  # alpha = 2 x rank


def _np_parts(x: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    p = 1 / (1 + np.exp(-x))
    bce = float(np.mean(-(g * np.log(p) + (1 - g) * np.log(1 - p))))
    dice = float(np.mean([1 - (2 * (p[i] * g[i]).sum() + 1) / (p[i].sum() + g[i].sum() + 1) for i in range(len(x))]))
    ft = []
    for i in range(len(x)):
        tp, fn, fp = (p[i] * g[i]).sum(), ((1 - p[i]) * g[i]).sum(), (p[i] * (1 - g[i])).sum()
        ft.append((1 - (tp + 1) / (tp + 0.7 * fn + 0.3 * fp + 1)) ** 0.75)
    return bce, dice, float(np.mean(ft))


def test_composite_loss_is_bce_plus_soft_dice_plus_focal_tversky() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 1, 9, 7))
    g = (rng.random((3, 1, 9, 7)) > 0.5).astype(np.float64)
    bce, dice, ft = _np_parts(x, g)
    tx, tg = torch.tensor(x), torch.tensor(g)
    assert soft_dice_loss(tx, tg).item() == pytest.approx(dice, rel=1e-9)
    assert focal_tversky_loss(tx, tg).item() == pytest.approx(ft, rel=1e-9)
    assert composite_loss(tx, tg).item() == pytest.approx(bce + dice + ft, rel=1e-9)


def test_sam2lora_at_the_authors_defaults_counts_7693312_on_hiera_l() -> None:
    """Rank 64 on the 48 Hiera-L ``attn.qkv`` Linears and the decoder's 28 attention Linears."""
    model, cfg = build_model("sam2_hiera_l", "sam2lora", device="meta")
    trainable = [(n, p.numel()) for n, p in model.named_parameters() if p.requires_grad]
    assert (cfg.rank, cfg.alpha_over_rank * cfg.rank, cfg.encoder_targets, cfg.dropout) == (64, 128, ("qkv",), 0.1)
    assert sum(n for _, n in trainable) == 6_939_648 + 753_664 == 7_693_312
    assert all("lora_" in name for name, _ in trainable)
    assert sum("lora_a" in name and "image_encoder" in name for name, _ in trainable) == 48
    assert sum("lora_a" in name and "mask_decoder" in name for name, _ in trainable) == 28


def test_sam2lora_lora_form_init_dropout_and_no_mem_embed(sam2) -> None:
    torch.manual_seed(0)
    model = SegmentationModel(copy.deepcopy(sam2))
    METHODS.get("sam2lora").apply(model, make_config("sam2lora"))
    layer = next(m for m in model.modules() if isinstance(m, LoRALinear))
    # A ~ N(0, 1/r) elementwise, as their randn * r^-1/2; B zeros.
    assert abs(layer.lora_a.std().item() - 64**-0.5) < 0.1 * 64**-0.5
    assert torch.count_nonzero(layer.lora_b) == 0
    with torch.no_grad():
        layer.lora_b.normal_()
        x = torch.randn(4, layer.base.in_features)
        layer.train()
        a, b = layer(x), layer(x)
        layer.eval()
        c, d = layer(x), layer(x)
    assert not torch.equal(a, b) and torch.equal(c, d)  # dropout on the LoRA branch, training only
    expected = layer.base(x) + 2.0 * ((x @ layer.lora_a.t()) @ layer.lora_b.t())
    assert torch.allclose(c, expected, atol=1e-5)
    # Their SAM2Base does not add no_mem_embed; SAM2's predictor (and our head by default) does.
    assert model.add_no_mem_embed is False
    with torch.no_grad():
        model.sam.no_mem_embed.normal_()
        img = torch.randn(1, 3, 256, 256)
        theirs = model.eval()(img).logits
        model.add_no_mem_embed = True
        assert not torch.equal(theirs, model(img).logits)
