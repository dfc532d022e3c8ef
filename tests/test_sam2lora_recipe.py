"""SAM2LoRA's training recipe (docs/FIDELITY.md#sam2lora-optimisation): its loss against the
formulas written out by hand, the schedules against their closed forms, the augmentation's
seeding and alignment, the two selections, ``max_steps`` and the preset against the numbers of
the authors' code (typed here from their ``train.py``, ``argparser.py`` and ``train_script.ps1``)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.core.errors import BenchError
from benchmark.data.augment import SAM2LoRAAugment, build_augment
from benchmark.data.cache import DECODED
from benchmark.data.datasets import PIXEL_MEAN, PIXEL_STD, SegmentationDataset
from benchmark.data.domains import DOMAINS
from benchmark.data.synth import synth_domain
from benchmark.model.backbones import build_sam
from benchmark.model.head import SegmentationModel
from benchmark.train import engine
from benchmark.train.engine import TrainConfig, train_and_evaluate, train_config_from, validate_and_keep_best
from benchmark.train.losses import iou_score_loss, realised_iou, sam2lora_loss
from benchmark.train.resume import Progress
from benchmark.train.runner import PRESETS, run_grid
from benchmark.train.schedules import build_schedule
from methods import METHODS, make_config

# ------------------------------------------------------------------------------------------ loss


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@pytest.fixture
def case():
    rng = np.random.default_rng(3)
    logits = rng.normal(scale=2.0, size=(3, 1, 9, 7))
    mask = (rng.random((3, 1, 9, 7)) > 0.55).astype(np.float64)
    iou_pred = rng.random((3, 1))
    return logits, mask, iou_pred


def _hand_terms(logits, mask):
    """The authors' three terms, each over the whole batch (their loss_funcs.py), in float64."""
    s = _sig(logits)
    bce = np.mean(-(mask * np.log(s + 1e-6) + (1 - mask) * np.log(1 - s + 1e-6)))
    dice = 1 - (2 * (s * mask).sum() + 1) / (s.sum() + mask.sum() + 1)
    tp, fn, fp = (s * mask).sum(), ((1 - s) * mask).sum(), (s * (1 - mask)).sum()
    ft = (1 - (tp + 1) / (tp + 0.7 * fn + 0.3 * fp + 1)) ** 0.75
    return bce, dice, ft


def _hand_iou(logits, mask):
    """Per image: |pred and gt| / (|pred or gt| + 1e-6), pred = sigmoid > 0.5, by counting."""
    out = []
    for x, g in zip(logits, mask, strict=True):
        p = _sig(x) > 0.5
        gt = g > 0.5
        out.append([np.logical_and(p, gt).sum() / (np.logical_or(p, gt).sum() + 1e-6)])
    return np.array(out)


def test_sam2lora_loss_is_the_sum_of_the_hand_computed_terms(case) -> None:
    logits, mask, iou_pred = case
    bce, dice, ft = _hand_terms(logits, mask)
    iou_term = np.abs(iou_pred - _hand_iou(logits, mask)).mean()
    got = sam2lora_loss(torch.tensor(logits), torch.tensor(mask), iou_pred=torch.tensor(iou_pred)).item()
    assert got == pytest.approx(bce + dice + ft + 0.1 * iou_term, rel=1e-9)


def test_dice_and_tversky_are_pooled_not_averaged_per_image(case) -> None:
    logits, mask, _ = case
    _, dice_pooled, _ = _hand_terms(logits, mask)
    per_image = np.mean([_hand_terms(logits[i : i + 1], mask[i : i + 1])[1] for i in range(3)])
    assert abs(dice_pooled - per_image) > 1e-3  # the case tells the two apart
    zero = torch.zeros(3, 1)  # an IoU term we know: |0 - IoU|
    got = sam2lora_loss(torch.tensor(logits), torch.tensor(mask), iou_pred=zero).item()
    bce, dice, ft = _hand_terms(logits, mask)
    assert got == pytest.approx(bce + dice + ft + 0.1 * _hand_iou(logits, mask).mean(), rel=1e-9)


def test_realised_iou_counts_pixels_and_scores_zero_when_both_are_empty() -> None:
    logits = torch.full((3, 1, 2, 3), -5.0)
    mask = torch.zeros(3, 1, 2, 3)
    logits[0, 0, 0, :] = 5.0  # predicts 3 pixels
    mask[0, 0, :, 0] = 1.0  # GT 2 pixels, 1 shared: 1 / 4
    logits[1] = 5.0
    mask[1] = 1.0  # perfect: 6 / 6
    got = realised_iou(logits, mask)  # image 2: both empty
    assert got.shape == (3, 1)
    assert got[:, 0].tolist() == pytest.approx([1 / (4 + 1e-6), 6 / (6 + 1e-6), 0.0], rel=1e-6)


def test_iou_term_gradient_flows_into_the_prediction_only(case) -> None:
    logits, mask, iou_pred = (torch.tensor(a, requires_grad=i != 1) for i, a in enumerate(case))
    g_logits, g_pred = torch.autograd.grad(iou_score_loss(iou_pred, logits, mask), [logits, iou_pred],
                                           allow_unused=True)
    assert g_logits is None  # the realised IoU is a constant
    realised = torch.tensor(_hand_iou(*case[:2]))
    assert torch.equal(g_pred, torch.sign(iou_pred.detach() - realised) / iou_pred.numel())
    # In the whole loss the logits' gradient is the three terms' alone.
    total = sam2lora_loss(logits, mask, iou_pred=iou_pred)
    seg = sam2lora_loss(logits, mask, iou_pred=iou_pred, iou_weight=0.0)
    g_total = torch.autograd.grad(total, logits)[0]
    assert torch.allclose(g_total, torch.autograd.grad(seg, logits)[0], rtol=0, atol=0)


@pytest.mark.parametrize(("backbone", "iou_index"), [("sam_tiny", 0), ("sam2_tiny", 1)])
def test_head_gives_the_iou_heads_score_of_mask_token_zero(backbone: str, iou_index: int) -> None:
    """SAM's decoder reads its IoU token at position 0 of the transformer's token outputs, SAM2's
    at 1 (after the object-score token); the head's ``iou_pred`` is the IoU head's first score."""
    torch.manual_seed(0)
    model = SegmentationModel(build_sam(backbone))
    METHODS.get("sam2lora").apply(model, make_config("sam2lora", {"rank": "4"}))
    model.eval()
    dec = model.view.decoder
    seen = {}
    hook = dec.transformer.register_forward_hook(lambda m, args, out: seen.update(hs=out[0]))
    size = 64 if backbone == "sam_tiny" else 256
    out = model(torch.randn(2, 3, size, size))
    hook.remove()
    assert out.iou_pred.shape == (2, 1)
    want = dec.iou_prediction_head(seen["hs"][:, iou_index, :])[:, 0]
    assert torch.equal(out.iou_pred[:, 0], want)


def test_iou_term_reaches_the_lora_factors_and_not_the_frozen_iou_head() -> None:
    torch.manual_seed(0)
    model = SegmentationModel(build_sam("sam_tiny"))
    METHODS.get("sam2lora").apply(model, make_config("sam2lora", {"rank": "4"}))
    out = model(torch.randn(2, 3, 64, 64))
    iou_score_loss(out.iou_pred, out.logits, (torch.rand(2, 1, 64, 64) > 0.5).float()).backward()
    head = model.view.decoder.iou_prediction_head
    assert all(p.grad is None and not p.requires_grad for p in head.parameters())
    lora = [p for n, p in model.named_parameters() if p.requires_grad]
    assert lora and any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)


def test_multiclass_head_has_no_iou_prediction() -> None:
    torch.manual_seed(0)
    model = SegmentationModel(build_sam("sam_tiny"), num_classes=3)
    assert model(torch.randn(1, 3, 64, 64)).iou_pred is None


# -------------------------------------------------------------------------------------- schedule


def _lrs(name: str, steps: int, **kw) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched = build_schedule(opt, name, **{"total_steps": 10, "poly_power": 1.0, "restart_steps": 1000, **kw})
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_restarts_follows_the_closed_form_and_torchs_scheduler() -> None:
    lrs = _lrs("cosine_restarts", 2600)
    for s in (0, 1, 250, 500, 999, 1000, 1001, 1500, 2000, 2599):
        assert lrs[s] == pytest.approx(1e-4 * (1 + math.cos(math.pi * (s % 1000) / 1000)) / 2, abs=1e-12), s
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1000, eta_min=0)
    theirs = []
    for _ in range(2600):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert lrs == theirs


def test_poly_is_unchanged() -> None:
    lrs = _lrs("poly", 12, total_steps=10, poly_power=2.0)
    assert lrs == pytest.approx([1e-4 * max(0.0, 1 - s / 10) ** 2 for s in range(12)], abs=1e-15)
    assert TrainConfig().schedule == "poly"


def test_a_resumed_schedule_continues_the_same_curve() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched = build_schedule(opt, "cosine_restarts", total_steps=1, poly_power=1.0, restart_steps=7)
    for _ in range(10):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched2 = build_schedule(opt2, "cosine_restarts", total_steps=1, poly_power=1.0, restart_steps=7)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    sched2.load_state_dict(copy.deepcopy(sched.state_dict()))
    for _ in range(5):
        for o, sc in ((opt, sched), (opt2, sched2)):
            o.step()
            sc.step()
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


# ---------------------------------------------------------------------------------- augmentation


def _normalise(rgb01: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(PIXEL_MEAN).view(3, 1, 1), torch.tensor(PIXEL_STD).view(3, 1, 1)
    return (rgb01 * 255 - mean) / std


def _rgb01(image: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(PIXEL_MEAN).view(3, 1, 1), torch.tensor(PIXEL_STD).view(3, 1, 1)
    return (image * std + mean) / 255


def _blob(size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """An asymmetric L-shaped mask and an image that is white exactly there, black elsewhere."""
    mask = torch.zeros(1, size, size)
    mask[0, 10:70, 12:34] = 1
    mask[0, 50:70, 12:80] = 1
    return _normalise(mask.repeat(3, 1, 1)), mask


def test_augmentation_is_seeded() -> None:
    image, mask = _blob()
    aug = SAM2LoRAAugment(96)
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        outs.append([aug(image, mask) for _ in range(4)])
    same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(outs[0], outs[1], strict=True))
    assert same
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(outs[0], outs[2], strict=True))


def test_augmentation_keeps_masks_binary_and_on_the_image() -> None:
    image, mask = _blob()
    aug = SAM2LoRAAugment(96)
    torch.manual_seed(0)
    moved = 0
    for _ in range(24):
        img, m = aug(image, mask)
        assert img.shape == (3, 96, 96) and m.shape == (1, 96, 96) and m.dtype == torch.float32
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
        white = (_rgb01(img).mean(0, keepdim=True) > 0.5).float()
        # Edges may differ by the image's bilinear resampling (up to 3 pixels where the crop zooms).
        near_mask = F.max_pool2d(m[None], 7, stride=1, padding=3)[0]
        core = -F.max_pool2d(-m[None], 7, stride=1, padding=3)[0]
        assert (white <= near_mask).all() and (core <= white).all()
        moved += not torch.equal(m, mask)
    assert moved > 12  # the geometry does act (flips alone move the L half of the time)


def test_augmentation_leaves_the_cached_sample_alone_and_differs_every_epoch(tmp_path: Path) -> None:
    synth_domain("isic2017", tmp_path, n=2, seed=0)
    ds = SegmentationDataset("isic2017", tmp_path, "train", size=64, train=False,
                             augment=build_augment("sam2lora", size=64, binary=True))
    plain = SegmentationDataset("isic2017", tmp_path, "train", size=64, train=False)
    before = plain[0]
    torch.manual_seed(0)
    draws = [ds[0] for _ in range(6)]
    after = plain[0]
    assert torch.equal(before["image"], after["image"]) and torch.equal(before["mask"], after["mask"])
    assert len({d["image"].sum().item() for d in draws}) > 1  # drawn afresh each time it is read
    assert DECODED.used > 0


def test_augment_settings_and_the_older_hflip_switch() -> None:
    assert build_augment("hflip", size=64, binary=True) is None  # the dataset's own flip, unchanged
    assert build_augment("none", size=64, binary=True) is None
    assert TrainConfig().augmentation == "hflip"
    assert TrainConfig(hflip=False).augmentation == "none"
    assert TrainConfig(augment="sam2lora").augmentation == "sam2lora"
    with pytest.raises(BenchError, match="hflip=false and augment=sam2lora disagree"):
        train_config_from({"hflip": "false", "augment": "sam2lora"}, TrainConfig())


# ------------------------------------------------------------------------------------- selection


def _fake_run(select: str, monkeypatch, scores: list[float]) -> tuple[SimpleNamespace, dict]:
    """A run whose validation returns ``scores`` in turn and whose model's state names the epoch."""
    it = iter(scores)
    monkeypatch.setattr(engine, "evaluate", lambda *a, **k: {"iou": next(it)})
    epoch = {"n": 0}
    model = SimpleNamespace(trainable_state_dict=lambda: {"epoch": epoch["n"]})
    run = SimpleNamespace(cfg=TrainConfig(select=select), domain=DOMAINS.get("isic2017"), model=model,
                          val_loader=None, device=torch.device("cpu"), progress_bars=False, best_state=None,
                          cache=None)
    return run, epoch


@pytest.mark.parametrize(("select", "best"), [("train_loss", 3), ("val", 2)])
def test_selection_keeps_the_chosen_epoch(select: str, best: int, monkeypatch) -> None:
    losses = [0.9, 0.7, 0.4, 0.5]  # lowest training loss: epoch 3
    scores = [0.2, 0.8, 0.5, 0.6]  # best validation IoU: epoch 2
    run, epoch = _fake_run(select, monkeypatch, scores)
    prog = Progress()
    for e, loss in enumerate(losses):
        epoch["n"] = e + 1
        prog.epoch, prog.running, prog.n_batches = e, loss * 4, 4
        validate_and_keep_best(run, prog)
    assert prog.best_epoch == best and run.best_state == {"epoch": best}
    assert [h["train_loss"] for h in prog.history] == pytest.approx(losses)
    assert prog.stale == 4 - best


# ----------------------------------------------------------------------------- max_steps, preset


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth_domain("isic2017", root, n=8, seed=0)
    return root


def test_max_steps_ends_training_after_that_many_optimiser_steps(data_root, monkeypatch) -> None:
    # 8 images, batch 2, effective batch 4: 2 steps an epoch; 5 steps = 2 epochs and a half.
    steps, original = {"n": 0}, engine._optimizer_step

    def counted(run) -> None:
        steps["n"] += 1
        original(run)

    monkeypatch.setattr(engine, "_optimizer_step", counted)
    cfg = TrainConfig(max_steps=5, lr=1e-3, batch_size=2, num_threads=1, save_best=False, patience=None,
                      schedule="cosine_restarts", restart_steps=2)
    res = train_and_evaluate(method="lora", backbone="sam_tiny", domain=DOMAINS.get("isic2017"), seed=0,
                             data_root=data_root, checkpoint=None, method_overrides={}, train_cfg=cfg,
                             device=torch.device("cpu"), progress=False)
    assert steps["n"] == 5
    assert len(res.val_history) == 3 and res.config["train"]["epochs"] == 3


def test_epochs_and_max_steps_together_are_refused() -> None:
    with pytest.raises(BenchError, match="both set"):
        train_config_from({"epochs": "3"}, PRESETS["sam2lora"].train)
    assert train_config_from({"epochs": "3", "max_steps": "none"}, PRESETS["sam2lora"].train).epochs == 3


def test_sam2lora_preset_is_the_authors_recipe() -> None:
    """Their numbers: train_script.ps1 (lr 1e-4, 120,000 steps of batch 2, 4 accumulations),
    argparser.py (AdamW, weight decay 3e-4, cosinewarm with step size 1000, model size l),
    train.py (fp16 autocast + GradScaler, clip 1.0, the lowest training loss kept)."""
    p = PRESETS["sam2lora"]
    t = p.train
    assert p.backbone == "sam2_hiera_l" and p.needs_checkpoint and p.needs_data
    assert (t.lr, t.weight_decay, t.optimizer) == (1e-4, 3e-4, "adamw")
    assert (t.schedule, t.restart_steps) == ("cosine_restarts", 1000)
    assert (t.batch_size, t.effective_batch) == (2, 2 * 4)
    assert t.max_steps == 120_000 // 4 and t.epochs is None
    assert (t.loss, t.augment, t.hflip) == ("sam2lora", "sam2lora", True)
    assert (t.precision, t.grad_clip) == ("fp16", 1.0)
    assert (t.select, t.patience) == ("train_loss", None)
    # train_script.ps1: 5 positive points, no negatives, no box; test.py: modes 0-6, 4 equal to 3
    assert t.prompt == "points:5" and t.box_jitter == 0.0
    plan = t.prompt_plan(DOMAINS.get("fundus_od"))
    assert [m.key for m in plan.evals] == ["none", "points:1", "points:2", "points:5", "box", "points:5+box"]


def test_sam2lora_preset_asks_for_its_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="sam2lora preset needs --checkpoint"):
        run_grid(methods=["sam2lora"], domains=["fundus_vessel", "fundus_od"], seeds=[0], out=tmp_path,
                 preset="sam2lora", progress=False)
