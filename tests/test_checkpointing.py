"""Activation checkpointing of the encoder blocks changes memory, not maths: logits, every
gradient (None where the plain path has None) and the RNG state after the step equal the plain
path's bit for bit, for every method that trains through the encoder."""

from __future__ import annotations

import pytest
import torch
from torch.utils.checkpoint import CheckpointError

from benchmark.model import checkpointing
from benchmark.model.backbones import BACKBONES
from benchmark.model.factory import build_model, supports
from benchmark.train.losses import structure_loss
from methods import METHODS

CASES = [("sam_tiny", m) for m in METHODS.keys() if METHODS.get(m).trains and supports(m, "sam_tiny")]
CASES += [("sam2_tiny", "lora")]


def _step(backbone: str, method: str, mode: str, monkeypatch, moe_kernel: str = "loop") -> tuple:
    calls = {"n": 0}
    real = checkpointing.checkpoint

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpointing, "checkpoint", counted)
    torch.manual_seed(0)
    model, _ = build_model(backbone, method, moe_kernel=moe_kernel)
    blocks = checkpointing.set_checkpointing(model, mode)
    model.train()
    size = BACKBONES.get(backbone).image_size
    batch = 2 if backbone == "sam_tiny" else 1  # SAM2 at 256: one image keeps the test short
    x = torch.randn(batch, 3, size, size)
    y = (torch.rand(batch, 1, size, size) > 0.6).float()
    torch.manual_seed(1)  # Conv-LoRA's gating noise comes from here
    out = model(x)
    (structure_loss(out.logits, y) + out.aux_loss).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.detach(), grads, torch.get_rng_state(), blocks, calls["n"]


@pytest.mark.parametrize(("backbone", "method", "moe_kernel"),
                         [(b, m, "loop") for b, m in CASES] + [("sam_tiny", "conv_lora", "grouped")])
def test_checkpointed_encoder_gives_the_plain_logits_gradients_and_rng(backbone, method, moe_kernel, monkeypatch) -> None:
    logits, grads, rng, blocks, calls = _step(backbone, method, "off", monkeypatch, moe_kernel)
    logits_c, grads_c, rng_c, blocks_c, calls_c = _step(backbone, method, "encoder", monkeypatch, moe_kernel)
    n = len(checkpointing.encoder_blocks(build_model(backbone, "decoder_only")[0]))
    assert (blocks, calls) == (0, 0) and blocks_c == calls_c == n  # every block went through checkpoint
    assert torch.equal(logits, logits_c)
    assert grads.keys() == grads_c.keys()
    for name, g in grads.items():
        if g is None:  # an unrouted Conv-LoRA expert: no gradient, so AdamW skips it
            assert grads_c[name] is None, name
        else:
            assert grads_c[name] is not None and torch.equal(g, grads_c[name]), name
    assert torch.equal(rng, rng_c)


def test_conv_lora_gating_noise_is_replayed_in_the_recomputation(monkeypatch) -> None:
    # Without the saved RNG state the recomputed forward would draw other noise, route other
    # experts and give other gradients: the equality above depends on the replay.
    logits, grads, *_ = _step("sam_tiny", "conv_lora", "encoder", monkeypatch)
    real = checkpointing.checkpoint
    monkeypatch.setattr(checkpointing, "checkpoint",
                        lambda *a, **k: real(*a, preserve_rng_state=False, **k))
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "conv_lora")
    checkpointing.set_checkpointing(model, "encoder")
    model.train()
    x = torch.randn(2, 3, 64, 64)
    y = (torch.rand(2, 1, 64, 64) > 0.6).float()
    torch.manual_seed(1)
    out = model(x)
    assert torch.equal(out.logits.detach(), logits)  # the forward itself is the same
    try:
        (structure_loss(out.logits, y) + out.aux_loss).backward()
    except CheckpointError:  # torch saw the recomputation route elsewhere (other saved tensors)
        return
    other = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert any((g is None) != (other[n] is None) or (g is not None and not torch.equal(g, other[n]))
               for n, g in grads.items())


def test_evaluation_and_off_run_the_blocks_plainly() -> None:
    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "lora")
    assert checkpointing.set_checkpointing(model, "encoder") == 4
    assert checkpointing.set_checkpointing(model, "encoder") == 4  # not wrapped twice
    assert checkpointing.set_checkpointing(model, "off") == 0
    assert not any("forward" in vars(b) for b in checkpointing.encoder_blocks(model))
    with pytest.raises(ValueError, match="checkpointing"):
        checkpointing.set_checkpointing(model, "all")
