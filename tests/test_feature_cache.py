"""The decoder-only feature cache: it applies exactly when the built model's encoder is frozen and
untouched, it serves stored outputs, and a run with it writes the record a run without it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.data.domains import DOMAINS
from benchmark.data.synth import synth_domain
from benchmark.model import feature_cache
from benchmark.model.factory import build_model, supports
from benchmark.train import engine
from benchmark.train.engine import TrainConfig, train_and_evaluate
from benchmark.train.resume import Preempted
from methods import METHODS

EQUAL = ("metrics", "val_history", "best_epoch")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth_domain("isic2017", root, n=8, seed=0)  # 8 train, 4 val images
    return root


@pytest.mark.parametrize("method", [m for m in METHODS.keys() if supports(m, "sam_tiny")])
def test_cacheable_exactly_when_the_method_adds_and_unfreezes_nothing_in_the_encoder(method: str) -> None:
    # Two owners of the same fact: the method's declarations and the built model's structure.
    spec = METHODS.get(method)
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", method)
    declared = not spec.adds_parameters and not spec.unfreezes
    assert (feature_cache.why_not_cacheable(model) is None) == declared, feature_cache.why_not_cacheable(model)


def test_hooks_injected_modules_and_stochastic_modules_rule_the_cache_out() -> None:
    def fresh():
        torch.manual_seed(0)
        return build_model("sam_tiny", "decoder_only")[0]

    model = fresh()
    model.sam.image_encoder.neck.register_forward_hook(lambda m, a, out: out * 2)
    assert "hooks" in feature_cache.why_not_cacheable(model)
    model = fresh()
    model.sam.image_encoder.blocks[0].mlp.act = nn.Sequential(nn.GELU(), nn.Identity())  # frozen, no parameters
    assert "injected" in feature_cache.why_not_cacheable(model)
    model = fresh()
    model.sam.image_encoder.blocks[0].attn.proj.forward = lambda x: x
    assert "replaced forward" in feature_cache.why_not_cacheable(model)
    model = fresh()
    model.sam.image_encoder.neck[1].weight.requires_grad_(True)
    assert "trains" in feature_cache.why_not_cacheable(model)
    assert engine.attach_feature_cache(model, mode="auto", budget_gib=1, flips=True) is None
    model = fresh()
    assert engine.attach_feature_cache(model, mode="off", budget_gib=1, flips=True) is None
    assert engine.attach_feature_cache(model, mode="auto", budget_gib=1, flips=True) is not None


@pytest.mark.parametrize("backbone", ["sam_tiny", "sam2_tiny"])
def test_a_hit_is_served_from_the_store_for_both_flips(backbone: str) -> None:
    torch.manual_seed(0)
    model, _ = build_model(backbone, "decoder_only")
    model.train()
    cache = feature_cache.attach_feature_cache(model, mode="auto", budget_gib=1, flips=True)
    size = model.view.image_size
    x = torch.randn(2, 3, size, size)
    batch = {"index": torch.tensor([0, 1]), "flipped": torch.tensor([False, True])}
    with cache.keys("train", batch):
        first = model(x).logits
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 4)  # both flips of both samples stored
    for p in model.view.encoder.parameters():  # an encoder that ran now would give other outputs
        p.data.mul_(0.5)
    with torch.no_grad():
        changed = model(x).logits
    with cache.keys("train", batch):
        again = model(x).logits
    other = {"index": torch.tensor([0, 1]), "flipped": torch.tensor([True, False])}
    with cache.keys("train", other):
        flipped = model(x.flip(-1)).logits
    assert cache.hits == 4 and cache.misses == 2
    assert not torch.equal(changed, first)
    assert torch.equal(again, first)
    # The flipped entries were computed by the encoder before the change: a fresh model of the
    # same seed (no step was taken) gives them.
    torch.manual_seed(0)
    ref, _ = build_model(backbone, "decoder_only")
    ref.train()
    assert torch.equal(flipped, ref(x.flip(-1)).logits)
    cache.remove()
    assert "forward" not in vars(model.view.encoder) and len(cache) == 0


def test_a_batch_of_another_size_is_a_miss() -> None:
    # The encoder's output may depend on the batch size (oneDNN: sam_tiny's neck at batch 1 vs 2).
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "decoder_only")
    cache = feature_cache.attach_feature_cache(model, mode="auto", budget_gib=1, flips=False)
    x = torch.randn(2, 3, 64, 64)
    with cache.keys("val", {"index": torch.tensor([0, 1])}):
        model(x)
    with cache.keys("val", {"index": torch.tensor([0])}):
        model(x[:1])
    assert (cache.hits, cache.misses) == (0, 3)


def test_the_budget_caps_what_is_stored() -> None:
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "decoder_only")
    per_image = 32 * 8 * 8 * 4  # (C, h, w) fp32
    cache = feature_cache.FeatureCache(model.view.encoder, budget_bytes=3 * per_image, flips=False)
    with cache.keys("val", {"index": torch.arange(4)}):
        model(torch.randn(4, 3, 64, 64))
    assert len(cache) == 3 and cache.bytes == 3 * per_image


def _run(data_root: Path, cfg: TrainConfig, backbone: str = "sam_tiny", state: Path | None = None):
    return train_and_evaluate(method="decoder_only", backbone=backbone, domain=DOMAINS.get("isic2017"), seed=1,
                              data_root=data_root, checkpoint=None, method_overrides={}, train_cfg=cfg,
                              device=torch.device("cpu"), state_path=state, progress=False)


def _spy(monkeypatch) -> tuple[list, list]:
    """The caches the engine attaches, and the trainable weights after every epoch (a record's
    metrics can hide a last-bit difference; the weights cannot)."""
    made, weights = [], []
    validate = engine.validate_and_keep_best

    def attach(*args, **kwargs):
        made.append(feature_cache.attach_feature_cache(*args, **kwargs))
        return made[-1]

    def keep(run, progress):
        weights.append(run.model.trainable_state_dict())
        return validate(run, progress)

    monkeypatch.setattr(engine, "attach_feature_cache", attach)
    monkeypatch.setattr(engine, "validate_and_keep_best", keep)
    return made, weights


def _bitwise_equal(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# batch 1; batch 2 with a partial last batch (5 images: 2 + 2 + 1), whose size changes its sample's entry.
@pytest.mark.parametrize(("batch", "images"), [(1, 8), (2, 5)])
def test_a_run_with_the_cache_writes_the_record_of_a_run_without(batch, images, data_root, monkeypatch) -> None:
    cfg = TrainConfig(epochs=4, lr=1e-3, batch_size=batch, max_train_images=images, num_threads=1, save_best=False)
    made, weights = _spy(monkeypatch)
    plain = _run(data_root, engine.replace(cfg, feature_cache="off"))
    n = len(weights)
    cached_run = _run(data_root, cfg)
    assert made[0] is None and made[1] is not None
    assert made[1].hits > made[1].misses > 0  # epochs 2-4 and validations 2-4 came from the store
    for key in EQUAL:
        assert getattr(cached_run, key) == getattr(plain, key), key
    _bitwise_equal(weights[:n], weights[n:])


def test_sam2_run_with_the_cache_equals_one_without(data_root, monkeypatch) -> None:
    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=2, max_train_images=4, num_threads=1, save_best=False)
    made, weights = _spy(monkeypatch)
    plain = _run(data_root, engine.replace(cfg, feature_cache="off"), backbone="sam2_tiny")
    cached_run = _run(data_root, cfg, backbone="sam2_tiny")
    assert made[1] is not None and made[1].hits > 0
    for key in EQUAL:
        assert getattr(cached_run, key) == getattr(plain, key), key
    _bitwise_equal(weights[:2], weights[2:])


def test_a_resumed_run_refills_the_cache_and_ends_with_the_same_record(data_root, tmp_path, monkeypatch) -> None:
    cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=2, num_threads=1, save_best=False)
    whole = _run(data_root, engine.replace(cfg, feature_cache="off"))
    state = tmp_path / "seed1.state.pt"
    calls = {"n": 0}

    def stop_once() -> bool:  # the 3rd check: inside epoch 2, after its first optimiser step
        calls["n"] += 1
        return calls["n"] == 3

    monkeypatch.setattr(engine, "stop_requested", stop_once)
    with pytest.raises(Preempted):
        _run(data_root, cfg, state=state)
    made, _ = _spy(monkeypatch)
    resumed = _run(data_root, cfg, state=state)
    assert resumed.resumed_from == {"epoch": 2, "batch": 2}
    assert made[0].hits > 0
    for key in EQUAL:
        assert getattr(resumed, key) == getattr(whole, key), key


@pytest.mark.parametrize(("augment", "expected"), [("hflip", True), ("none", True), ("sam2lora", False)])
def test_only_the_official_flip_or_no_augmentation_keeps_the_cache(augment, expected, data_root) -> None:
    # The keys say (index, flipped): an augmentation drawing new images each epoch would be served stale features.
    domain = DOMAINS.get("isic2017")
    cfg = TrainConfig(epochs=1, lr=1e-3, augment=augment, num_threads=1).resolved(domain, "sam_tiny")
    run = engine.build_run(method="decoder_only", backbone="sam_tiny", domain=domain, seed=0, data_root=data_root,
                           checkpoint=None, method_overrides={}, cfg=cfg, device=torch.device("cpu"),
                           state_path=None, progress=False)
    assert (run.cache is not None) == expected
    if expected:
        assert run.cache.flips == (augment == "hflip")
