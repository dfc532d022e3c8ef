"""Prompts: the samplers on hand-worked masks, the mode syntax and settings, seeding, and SAM's
promptable decoding on both families against SAM's own decoder called by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.data.domains import DOMAINS
from benchmark.data.prompts import (
    PAPER_MODES,
    PromptMode,
    erode,
    eval_modes,
    parse_mode,
    prompt_base,
    prompt_rng,
    sample_prompt,
    tight_box,
)
from benchmark.model.factory import build_model
from benchmark.model.prompted import Prompts
from benchmark.train.engine import TrainConfig, train_config_from
from benchmark.train.prompting import prompt_plan


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---- erosion, base, box ------------------------------------------------------------------------


def test_erode_2x2_keeps_pixels_whose_upper_left_neighbours_are_set() -> None:
    # cv2.erode with a 2x2 kernel: the window of (y, x) spans rows y-1..y, columns x-1..x.
    m = np.zeros((5, 6), bool)
    m[1:4, 1:5] = True  # rows 1..3, columns 1..4
    expected = np.zeros((5, 6), bool)
    expected[2:4, 2:5] = True  # the first row and column of the block go
    assert (erode(m, 2) == expected).all()


def test_erode_treats_outside_the_image_as_foreground() -> None:
    assert erode(np.ones((3, 3), bool), 3).all()  # nothing erodes at the border
    m = np.ones((4, 4), bool)
    m[2, 2] = False
    out = erode(m, 3)
    assert out.sum() == 16 - 9 and not out[1:4, 1:4].any()


def test_erode_15_keeps_the_centre_of_a_square() -> None:
    m = np.zeros((40, 40), bool)
    m[5:25, 5:25] = True  # 20 x 20
    out = erode(m, 15)
    assert out.sum() == 6 * 6 and out[12:18, 12:18].all()  # 20 - 14 per side


def test_thin_mask_falls_back_to_itself_and_empty_gets_no_prompt() -> None:
    line = np.zeros((10, 10), bool)
    line[4, 2:8] = True  # one pixel thick: the 2x2 erosion empties it
    assert not erode(line, 2).any() and (prompt_base(line) == line).all()
    p = sample_prompt(line, PromptMode(3, True), _rng(), test=True)
    assert p.points.shape == (3, 2)
    assert all(line[int(y), int(x)] for x, y in p.points)
    assert p.box.tolist() == [2, 4, 7, 4]
    empty = sample_prompt(np.zeros((8, 8), bool), PromptMode(5, True), _rng(), test=True)
    assert empty.points.shape == (0, 2) and empty.box is None


def test_box_is_tight_around_the_eroded_mask_and_jitter_stays_in_bounds() -> None:
    m = np.zeros((20, 30), bool)
    m[3:9, 10:21] = True  # rows 3..8, columns 10..20
    assert sample_prompt(m, PromptMode(0, True), _rng(), test=True).box.tolist() == [11, 4, 20, 8]
    for seed in range(20):
        box = tight_box(prompt_base(m), jitter=0.1, rng=_rng(seed))  # t < 3: never clamped here
        assert 0 <= box[0] <= 11 and 0 <= box[1] <= 4 and 20 <= box[2] <= 30 and 8 <= box[3] <= 20
        moved = [d for d, clamped in ((11 - box[0], box[0] == 0), (4 - box[1], box[1] == 0),
                                      (box[2] - 20, box[2] == 30), (box[3] - 8, box[3] == 20)) if not clamped]
        assert len(moved) == 4 and max(moved) - min(moved) < 1e-9 and 0 < moved[0] < 3  # one draw, every side
    # Test-time boxes are never jittered, whatever the setting.
    assert sample_prompt(m, PromptMode(0, True), _rng(), test=True, jitter=0.5).box.tolist() == [11, 4, 20, 8]


def test_density_points_come_from_the_15x15_eroded_core() -> None:
    m = np.zeros((64, 64), bool)
    m[10:50, 10:50] = True  # 40 x 40; base: rows/cols 11..49; core: 11+7 .. 49-7
    p = sample_prompt(m, PromptMode(5, False), _rng(), test=True)
    assert p.points.shape == (5, 2) and len({tuple(x) for x in p.points}) == 5  # distinct
    assert ((p.points >= 18) & (p.points <= 42)).all()


def test_density_shrinks_the_kernel_until_k_pixels_remain() -> None:
    m = np.zeros((30, 30), bool)
    m[5:12, 5:12] = True  # 7 x 7 -> base 6 x 6 (rows 6..11); a 15x15 erosion empties it
    p = sample_prompt(m, PromptMode(4, False), _rng(), test=True)
    # The largest kernel leaving >= 4 pixels of the 6x6 base is 5 (a 2x2 core: rows/cols 8..9).
    assert sorted(map(tuple, p.points.astype(int).tolist())) == [(8, 8), (8, 9), (9, 8), (9, 9)]


def test_training_points_are_uniform_over_the_base_with_replacement() -> None:
    m = np.zeros((6, 6), bool)
    m[1:3, 1:3] = True  # base: the single pixel (2, 2)
    p = sample_prompt(m, PromptMode(5, False), _rng(), test=False)
    assert p.points.tolist() == [[2.0, 2.0]] * 5


# ---- modes and settings ------------------------------------------------------------------------


@pytest.mark.parametrize("text,mode", [("none", PromptMode()), ("points:5", PromptMode(5)), ("box", PromptMode(0, True)),
                                       ("points:12+box", PromptMode(12, True))])
def test_parse_mode_round_trips(text: str, mode: PromptMode) -> None:
    assert parse_mode(text) == mode and mode.key == text


def test_all_is_sam2loras_six_test_modes_with_their_labels() -> None:
    modes = eval_modes(("all",))
    assert [m.key for m in modes] == list(PAPER_MODES)
    assert [m.label for m in modes] == ["none", "1 point", "2 points", "5 points", "box", "5 points + box"]
    assert [m.key for m in eval_modes(("box", "all", "none"))] == ["box", "none", "points:1", "points:2", "points:5",
                                                                   "points:5+box"]


@pytest.mark.parametrize("key,value", [("prompt", "points:0"), ("prompt", "points"), ("prompt", "box+points:2"),
                                       ("prompt", "all"), ("prompt", "points:100"), ("eval_prompts", "none,pts:1"),
                                       ("box_jitter", "-0.1")])
def test_settings_refuse_bad_prompt_strings_in_one_line(key: str, value: str) -> None:
    with pytest.raises(BenchError, match=f"option {key}: ") as err:
        train_config_from({key: value}, TrainConfig())
    assert "\n" not in str(err.value)


def test_settings_accept_the_paper_modes() -> None:
    cfg = train_config_from({"prompt": "points:5", "eval_prompts": "all,points:3+box"}, TrainConfig())
    assert cfg.eval_prompts == ("all", "points:3+box")


def test_multiclass_domain_refuses_prompts() -> None:
    with pytest.raises(BenchError, match="prompts are for binary domains; trans10k"):
        prompt_plan(prompt="none", eval_prompts=("none", "box"), box_jitter=0.0, domain=DOMAINS.get("trans10k"))
    assert not prompt_plan(prompt="none", eval_prompts=("none",), box_jitter=0.0, domain=DOMAINS.get("trans10k")).by_mode


def test_batch_prompts_are_seeded_per_image_not_per_batch_order() -> None:
    plan = prompt_plan(prompt="points:3", eval_prompts=("all",), box_jitter=0.1, domain=DOMAINS.get("fundus_od"))
    g = np.random.default_rng(7)
    masks = torch.from_numpy(g.random((4, 1, 32, 32)) > 0.3).float()
    names = ["a", "b", "c", "d"]
    order = [2, 0, 3, 1]
    for purpose in ("train", "test"):
        mode = plan.train if purpose == "train" else PromptMode(5, True)
        one = plan.batch({"mask": masks, "name": names}, mode, seed=3, purpose=purpose)
        two = plan.batch({"mask": masks[order], "name": [names[i] for i in order]}, mode, seed=3, purpose=purpose)
        for j, i in enumerate(order):
            assert np.array_equal(one.points[i], two.points[j]) and np.array_equal(one.boxes[i], two.boxes[j])
        again = plan.batch({"mask": masks[:1], "name": names[:1]}, mode, seed=4, purpose=purpose)
        assert not np.array_equal(again.points[0], one.points[0])  # another run seed, other points
    epoch1 = plan.training({"mask": masks, "name": names}, seed=3, epoch=1)
    epoch0 = plan.training({"mask": masks, "name": names}, seed=3, epoch=0)
    assert any(not np.array_equal(a, b) for a, b in zip(epoch0.points, epoch1.points, strict=True))


def test_prompt_rng_is_a_function_of_its_arguments() -> None:
    a = prompt_rng(0, "img", PromptMode(1), "test").integers(1 << 30, size=4)
    assert (a == prompt_rng(0, "img", PromptMode(1), "test").integers(1 << 30, size=4)).all()
    assert not (a == prompt_rng(0, "img", PromptMode(2), "test").integers(1 << 30, size=4)).all()


# ---- the prompted forward ----------------------------------------------------------------------

MODES = [PromptMode(), PromptMode(1), PromptMode(5), PromptMode(0, True), PromptMode(5, True)]


def _by_hand(model, emb, high_res, i: int, points, box, out_index: int) -> torch.Tensor:
    """SAM's decoder as its image predictor calls it, for image i; output ``out_index`` of its
    four (0: single-mask output; k >= 1: multimask output k - 1), upsampled to the input."""
    view = model.view
    dec, pe = view.decoder, view.prompt_encoder
    p = torch.tensor(points, dtype=torch.float32)[None] if len(points) else None
    labels = torch.ones(1, len(points), dtype=torch.int) if len(points) else None
    b = torch.tensor(box, dtype=torch.float32)[None] if box is not None else None
    if view.family == "sam":
        sparse, dense = pe(points=(p, labels) if p is not None else None, boxes=b, masks=None)
        masks, _ = dec(emb[i : i + 1], pe.get_dense_pe(), sparse, dense, multimask_output=out_index > 0)
    else:
        coords = [t for t in (b.reshape(1, 2, 2) if b is not None else None, p) if t is not None]
        tags = [t for t in (torch.tensor([[2, 3]], dtype=torch.int) if b is not None else None, labels) if t is not None]
        both = (torch.cat(coords, 1), torch.cat(tags, 1)) if coords else None
        sparse, dense = pe(points=both, boxes=None, masks=None)
        masks, *_ = dec(emb[i : i + 1], pe.get_dense_pe(), sparse, dense, multimask_output=out_index > 0,
                        repeat_image=False, high_res_features=[f[i : i + 1] for f in high_res])
    low = masks[:, max(out_index - 1, 0) : max(out_index, 1)]
    size = view.image_size
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module", params=[("sam_tiny", "decoder_only"), ("sam_tiny", "sam2lora"), ("sam2_tiny", "sam2lora")])
def prompted_model(request):
    torch.manual_seed(0)
    model, _ = build_model(*request.param)
    return model.eval()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.key)
def test_prompted_forward_keeps_the_declared_output_of_sams_decoder(prompted_model, mode: PromptMode) -> None:
    model = prompted_model
    size = model.view.image_size
    g = np.random.default_rng(1)
    masks = np.zeros((2, size, size), bool)
    masks[0, size // 8 : size // 2, size // 4 : size // 2] = True
    masks[1, size // 3 : -size // 8, size // 3 : -size // 5] = True
    drawn = [sample_prompt(m, mode, g, test=True) for m in masks]
    prompts = Prompts(tuple(p.points for p in drawn), tuple(p.box for p in drawn))
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(images, prompts)
        emb, high_res = model.encode(images)
        assert out.logits.shape == (2, 1, size, size) and out.iou_pred.shape == (2, 1)
        for i, p in enumerate(drawn):
            # sam2lora declares output 1 (multimask output 0); decoder-only SAM's single output 0.
            ref = _by_hand(model, emb, high_res, i, p.points, p.box, model.mask_output)
            assert torch.allclose(out.logits[i : i + 1], ref, atol=1e-5), (i, float((out.logits[i] - ref).abs().max()))


def test_sam2lora_declares_multimask_output_0() -> None:
    from methods import METHODS

    assert METHODS.get("sam2lora").mask_output == 1
    assert all(METHODS.get(k).mask_output == 0 for k in METHODS.keys() if k != "sam2lora")


def test_an_image_decodes_the_same_alone_and_beside_another_prompt_shape() -> None:
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "lora")
    model.eval()
    images = torch.randn(3, 3, 64, 64)
    pts = (np.array([[10.0, 12.0]]), np.zeros((0, 2)), np.array([[30.0, 31.0], [33.0, 30.0]]))
    boxes = (None, np.array([5.0, 5.0, 40.0, 40.0]), None)
    with torch.no_grad():
        together = model(images, Prompts(pts, boxes)).logits
        for i in range(3):
            alone = model(images[i : i + 1], Prompts(pts[i : i + 1], boxes[i : i + 1])).logits
            assert torch.allclose(together[i : i + 1], alone, atol=1e-5)


def test_prompted_path_trains_our_mask_token_at_output_0() -> None:
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "decoder_only")
    out = model(torch.randn(1, 3, 64, 64), Prompts((np.array([[20.0, 20.0]]),), (None,)))
    out.logits.mean().backward()
    assert model.mask_tokens.grad is not None and model.mask_tokens.grad.abs().sum() > 0
    assert model.sam.mask_decoder.mask_tokens.weight.grad is None  # SAM's frozen token 0 is not read
