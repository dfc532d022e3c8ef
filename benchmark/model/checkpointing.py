"""Activation checkpointing of the image encoder's blocks: activations recomputed in the backward.

``checkpointing="encoder"`` runs every encoder block (SAM ViT blocks, SAM2 Hiera blocks) through
``torch.utils.checkpoint(use_reentrant=False)`` while gradients are being recorded: the forward
keeps only each block's input, and the backward recomputes the block's inside before using it.
Memory then grows with one block's activations instead of all of them, for about one more
encoder forward of compute (the lever that lets ``from_scratch`` run at ViT-H on an 80 GB card).

The maths is unchanged: the recomputation runs the same operations on the same inputs, and
``preserve_rng_state`` (the default) replays the RNG state the forward saw, so Conv-LoRA's
noisy gating draws the same noise again and the RNG after the step is as without checkpointing
(tests/test_checkpointing.py: logits, gradients and RNG state equal bit for bit on the CPU).
Non-reentrant checkpointing also carries gradients of tensors a block computes on the side
(Conv-LoRA's balancing loss, set as an attribute). Hooks on a block (LST's ladders) run outside
the checkpointed region, once, as without it. Under ``no_grad`` (evaluation) blocks run as usual.

The block's ``forward`` is replaced by an instance attribute: parameters, state-dict keys and
hooks are untouched, so checkpoints and resume states are the same with or without it.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

CHECKPOINTING = ("off", "encoder")


def encoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The image encoder's blocks (SAM: ``image_encoder.blocks``; SAM2: ``image_encoder.trunk.blocks``),
    read directly: a method may have wrapped parts the backbone view reads (SSF's patch embedding)."""
    encoder = model.sam.image_encoder
    return list(encoder.trunk.blocks if hasattr(encoder, "trunk") else encoder.blocks)


def _checkpointed(forward):
    @functools.wraps(forward)
    def run(*args, **kwargs):
        if torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)

    run.checkpointed = True
    return run


def set_checkpointing(model: nn.Module, mode: str) -> int:
    """Checkpoint every image-encoder block (``mode="encoder"``) or none (``"off"``); returns how
    many blocks are checkpointed."""
    if mode not in CHECKPOINTING:
        raise ValueError(f"checkpointing must be one of {', '.join(CHECKPOINTING)}, got {mode!r}")
    count = 0
    for block in encoder_blocks(model):
        current = vars(block).get("forward")
        if current is not None and getattr(current, "checkpointed", False):
            del block.forward
        if mode == "encoder":
            block.forward = _checkpointed(block.forward)
            count += 1
    return count
