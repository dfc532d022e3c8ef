"""Backbones: builders, the tiny SAM, checkpoint loading and its errors, the prompt-free head."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.model.backbones import BACKBONES, BackboneView, build_sam, count_parameters, load_checkpoint
from benchmark.model.head import SegmentationModel


def test_official_backbones_have_segment_anything_counts() -> None:
    # Counts of segment_anything's own builders (docs/FIDELITY.md#backbone-and-head: ViT-H 641,090,608).
    from segment_anything import sam_model_registry

    for key, official in (("sam_vit_b", "vit_b"), ("sam_vit_h", "vit_h")):
        with torch.device("meta"):
            theirs = sam_model_registry[official]()
        ours = build_sam(key, device="meta")
        assert count_parameters(ours)[1] == count_parameters(theirs)[1]
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert count_parameters(build_sam("sam_vit_h", device="meta"))[1] == 641_090_608


def test_tiny_sam_has_windowed_and_global_blocks_and_padding() -> None:
    view = BackboneView(build_sam("sam_tiny"))
    kinds = [b.is_global for b in view.blocks]
    assert True in kinds and False in kinds
    grid = view.image_size // view.patch_size
    windowed = [b for b in view.blocks if not b.is_global]
    assert grid % windowed[0].grid[0] != 0  # the window partition pads
    assert BACKBONES.get("sam_tiny").image_size == view.image_size


def test_view_roles_resolve_to_linears_and_norms() -> None:
    view = BackboneView(build_sam("sam_tiny"))
    block = view.blocks[0]
    assert isinstance(block.get("qkv"), torch.nn.Linear)
    assert block.get("qkv").out_features == 3 * view.embed_dim
    assert isinstance(block.get("fc1"), torch.nn.Linear)
    assert isinstance(block.get("norm1"), torch.nn.LayerNorm)


def test_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    src = build_sam("sam_tiny")
    path = tmp_path / "tiny.pth"
    torch.save(src.state_dict(), path)
    torch.manual_seed(1)
    loaded = build_sam("sam_tiny", checkpoint=path)
    for (n, a), (_, b) in zip(src.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), n


def test_truncated_checkpoint_fails_with_one_line_naming_file(tmp_path) -> None:
    path = tmp_path / "broken.pth"
    torch.save(build_sam("sam_tiny").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError) as err:
        build_sam("sam_tiny", checkpoint=path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg and "truncated or corrupt" in msg


def test_text_file_is_not_a_checkpoint(tmp_path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(BenchError, match="is not a PyTorch checkpoint"):
        build_sam("sam_tiny", checkpoint=path)


def test_mismatched_checkpoint_names_keys_and_shapes(tmp_path) -> None:
    state = build_sam("sam_tiny").state_dict()
    state.pop("image_encoder.pos_embed")
    state["extra.weight"] = torch.zeros(1)
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(BenchError) as err:
        load_checkpoint(build_sam("sam_tiny"), path, backbone="sam_tiny")
    msg = str(err.value)
    assert "1 missing keys (e.g. image_encoder.pos_embed)" in msg
    assert "1 unexpected keys (e.g. extra.weight)" in msg
    assert "mask_decoder.iou_token.weight file (1, 7) vs sam_tiny (1, 32)" in msg
    assert str(path) in msg


def test_checkpoint_with_pickled_code_is_refused(tmp_path) -> None:
    path = tmp_path / "code.pth"
    torch.save({"weights": build_sam("sam_tiny").state_dict(), "fn": print}, path)
    with pytest.raises(BenchError, match="pickled objects other than tensors"):
        build_sam("sam_tiny", checkpoint=path)


def test_missing_checkpoint_and_unknown_backbone(tmp_path, capsys) -> None:
    with pytest.raises(BenchError, match="checkpoint not found"):
        build_sam("sam_tiny", checkpoint=tmp_path / "nope.pth")
    with pytest.raises(BenchError, match="unknown backbone 'sam_vit_x'; valid: .*sam_vit_h.*sam_tiny"):
        build_sam("sam_vit_x")
    assert main(["params", "--backbone", "sam_vit_x"]) == 2
    assert "unknown backbone" in capsys.readouterr().err


def test_prompt_free_head_uses_first_token_and_mlp_only() -> None:
    torch.manual_seed(0)
    sam = build_sam("sam_tiny")
    model = SegmentationModel(sam).eval()
    assert torch.equal(model.mask_tokens.detach(), sam.mask_decoder.mask_tokens.weight[:1])
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(x).logits
        # SAM's own decoder cut to one mask token (token 0, so MLP 0), no prompts, upsampled.
        dec = copy.deepcopy(sam.mask_decoder)
        dec.mask_tokens = torch.nn.Embedding.from_pretrained(sam.mask_decoder.mask_tokens.weight[:1])
        dec.num_mask_tokens = 1
        emb = sam.image_encoder(x)
        sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
        low, _ = dec(emb, sam.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=False)
        theirs = torch.nn.functional.interpolate(low, size=(64, 64), mode="bilinear", align_corners=False)
    assert torch.allclose(ours, theirs, atol=1e-6)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("iou_prediction_head" in n for n in frozen)
    assert any("prompt_encoder" in n for n in frozen)
    assert all("output_hypernetworks_mlps.0" not in n for n in frozen)
    assert any("output_hypernetworks_mlps.1" in n for n in frozen)


def test_decoder_only_count_at_vit_h_is_the_papers() -> None:
    model = SegmentationModel(build_sam("sam_vit_h", device="meta"))
    assert count_parameters(model)[0] == 3_505_536


def test_multiclass_head_shares_one_mlp_and_has_class_head() -> None:
    model = SegmentationModel(build_sam("sam_tiny"), num_classes=12)
    assert model.mask_tokens.shape == (12, 32)
    assert model.class_head.out_features == 13
    # As the official code: each class token starts as a copy of SAM's first mask token.
    first = model.sam.mask_decoder.mask_tokens.weight[0]
    assert all(torch.equal(row, first) for row in model.mask_tokens.detach())
