"""A miniature pretrained SAM: ``sam_tiny`` pretrained once on broad synthetic scenes, then cached.

Why: the smoke preset fine-tunes a 64x64 SAM on synthetic stand-ins of the seven domains. From
random weights a frozen encoder carries no information, so every PEFT method scored near chance
and no better than decoder-only (issue 14). Pretrained here, the encoder carries features a
method can adapt, as SAM's do on the real domains.

What: SAM's own promptable objective, at miniature scale. Each scene of
:mod:`benchmark.data.scenes` (shapes, textures, colours, thin curves, one to four objects) gets
one or two positive points on one object and, at times, a negative point elsewhere; the target is
that object's visible mask. Image encoder, prompt encoder and mask decoder train together (AdamW,
warm-up then cosine decay, gradient clipping), decoding through mask token 0, the token SAM uses
for a single output and the one the prompt-free head copies. We chose prompts over training the
prompt-free head directly: prompt-free pretraining of "every object is foreground" already solved
the synthetic polyp and ISIC domains before any fine-tuning (S_alpha 0.94, Jaccard 0.88), so
adaptation would not have mattered; with prompts, the model before fine-tuning is as SAM is for
the paper: good features, no notion of the domain's foreground.

Output: a plain segment-anything state dict of the backbone (``load_checkpoint`` loads it
strictly), cached as ``$XDG_CACHE_HOME/sam-peft-bench/mini-<backbone>-<version>-seed<S>-<hash>.pth``,
the hash over the recipe. Deterministic for a recipe on one machine: a fixed torch thread count,
seeded numpy and torch generators, no data-loader workers. Written to a temporary file and
renamed into place under a file lock, so shards starting together build it once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from benchmark.core.errors import BenchError
from benchmark.core.io import save_torch_atomic
from benchmark.data.datasets import PIXEL_MEAN, PIXEL_STD
from benchmark.data.scenes import paint_scene
from benchmark.model.backbones import BACKBONES, build_sam
from benchmark.train.losses import structure_loss

PRETRAIN_VERSION = "v1"  # bump when the scenes, the objective or the file layout change


@dataclass(frozen=True)
class MiniSAMRecipe:
    """How a miniature SAM is pretrained. Every field is part of the cache key."""

    backbone: str = "sam_tiny"
    seed: int = 0
    scenes: int = 5000  # painted once (~1 ms each), then seen flipped and rotated
    steps: int = 1200  # optimiser steps; ~90 ms each for sam_tiny at batch 32 on one core (112 s in all)
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 60
    grad_clip: float = 1.0
    threads: int = 1  # fixed (bytes independent of the core count); 2 threads were 5x slower on a busy 2-core VM


# Backbones with a pretraining recipe (the smoke preset's default among them).
MINI_RECIPES: dict[str, MiniSAMRecipe] = {"sam_tiny": MiniSAMRecipe()}


def cache_root() -> Path:
    """The suite's cache folder, beside the smoke preset's synthetic data."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sam-peft-bench"


def recipe_for(backbone: str, *, seed: int = 0) -> MiniSAMRecipe:
    """The registered recipe of ``backbone`` with ``seed``; BenchError if it has none."""
    BACKBONES.get(backbone)
    if backbone not in MINI_RECIPES:
        raise BenchError(f"backbone {backbone} has no miniature pretraining recipe (only "
                         f"{', '.join(MINI_RECIPES)}); pass --checkpoint")
    return replace(MINI_RECIPES[backbone], seed=seed)


def checkpoint_path(recipe: MiniSAMRecipe, cache: Path | None = None) -> Path:
    """Where ``recipe``'s weights are cached: named by backbone, version and seed, hashed over all fields."""
    text = json.dumps({"version": PRETRAIN_VERSION, **asdict(recipe)}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    name = f"mini-{recipe.backbone}-{PRETRAIN_VERSION}-seed{recipe.seed}-{digest}.pth"
    return (cache or cache_root()) / name


# ------------------------------------------------------------------------------------------ data


def paint_pool(recipe: MiniSAMRecipe, size: int, rng: np.random.Generator, *, progress: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``recipe.scenes`` scenes: normalised images (N, 3, S, S) float32 and instance labels (N, S, S) uint8."""
    images = np.empty((recipe.scenes, size, size, 3), np.uint8)
    labels = np.empty((recipe.scenes, size, size), np.uint8)
    for i in tqdm(range(recipe.scenes), desc="mini-SAM scenes", leave=False, disable=not progress,
                  dynamic_ncols=True):
        images[i], labels[i] = paint_scene(rng, size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = (x - torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)) / torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    return x.contiguous(), torch.from_numpy(labels)


def sample_prompts(labels: torch.Tensor, rng: np.random.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Point prompts on one object per scene, as SAM's training samples them (simplified).

    ``labels`` (B, S, S) instance ids -> coords (B, 3, 2) as (x, y) pixels, point labels (B, 3)
    (1 positive, 0 negative, -1 an unused slot, SAM's "not a point"), targets (B, 1, S, S) float:
    the chosen object's mask. Slots: one positive point, a second one 30% of the time, a negative
    one on another pixel 30% of the time. A scene whose objects were all occluded has no target.
    """
    b = labels.shape[0]
    coords = np.zeros((b, 3, 2), np.float32)
    kinds = -np.ones((b, 3), np.float32)
    targets = np.zeros(labels.shape, np.float32)
    for i, lab in enumerate(labels.numpy()):
        ids = np.unique(lab)
        ids = ids[ids > 0]
        if not len(ids):
            continue
        obj = lab == rng.choice(ids)
        targets[i] = obj
        ys, xs = np.nonzero(obj)
        for slot in range(1 + int(rng.random() < 0.3)):
            j = rng.integers(len(ys))
            coords[i, slot], kinds[i, slot] = (xs[j], ys[j]), 1
        if rng.random() < 0.3:
            ys, xs = np.nonzero(~obj)
            j = rng.integers(len(ys))
            coords[i, 2], kinds[i, 2] = (xs[j], ys[j]), 0
    return torch.from_numpy(coords), torch.from_numpy(kinds), torch.from_numpy(targets).unsqueeze(1)


# ----------------------------------------------------------------------------------------- model


def prompted_logits(sam: nn.Module, images: torch.Tensor, coords: torch.Tensor, kinds: torch.Tensor
                    ) -> torch.Tensor:
    """SAM's single-output prediction for one prompt set per image: logits (B, 1, S, S).

    ``MaskDecoder.predict_masks`` with a batch of images (upstream repeats one image's embedding
    per prompt) and only mask token 0 in the token sequence, as in the prompt-free head, which
    then starts from the same sequence layout: [IoU token, mask token, prompt tokens...].
    """
    emb = sam.image_encoder(images)
    b, c, h, w = emb.shape
    sparse, dense = sam.prompt_encoder(points=(coords, kinds), boxes=None, masks=None)
    dec = sam.mask_decoder
    tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight[:1]], dim=0).unsqueeze(0).expand(b, -1, -1)
    pos = sam.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1)
    hs, src = dec.transformer(emb + dense, pos, torch.cat([tokens, sparse], dim=1))
    upscaled = dec.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = dec.output_hypernetworks_mlps[0](hs[:, 1:2, :])
    _, cu, hu, wu = upscaled.shape
    low = (hyper @ upscaled.reshape(b, cu, hu * wu)).reshape(b, 1, hu, wu)
    return F.interpolate(low, size=images.shape[-2:], mode="bilinear", align_corners=False)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pretrain(recipe: MiniSAMRecipe, *, progress: bool = True) -> dict[str, torch.Tensor]:
    """Pretrain ``recipe.backbone`` from its random init; returns SAM's state dict (CPU tensors)."""
    spec = BACKBONES.get(recipe.backbone)
    with torch_threads(recipe.threads):
        torch.manual_seed(recipe.seed)
        sam = build_sam(recipe.backbone)
        rng = np.random.default_rng([recipe.seed, 14])
        images, labels = paint_pool(recipe, spec.image_size, rng, progress=progress)
        params = list(sam.parameters())
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / recipe.warmup_steps)
                                                  * 0.5 * (1 + math.cos(math.pi * s / recipe.steps)))
        gen = torch.Generator().manual_seed(recipe.seed)
        bar = tqdm(range(recipe.steps), desc=f"pretraining mini {recipe.backbone}", disable=not progress,
                   dynamic_ncols=True)
        smooth = None
        for step in bar:
            idx = torch.randint(len(images), (recipe.batch_size,), generator=gen)
            x, lab = images[idx], labels[idx]
            # The eight flips and rotations of the square: one per batch, drawn from the generator.
            k = int(torch.randint(4, (1,), generator=gen))
            x, lab = torch.rot90(x, k, (2, 3)), torch.rot90(lab, k, (1, 2))
            if torch.rand((), generator=gen) < 0.5:
                x, lab = x.flip(-1), lab.flip(-1)
            coords, kinds, target = sample_prompts(lab, rng)
            loss = structure_loss(prompted_logits(sam, x, coords, kinds), target)
            if not torch.isfinite(loss):
                raise BenchError(f"mini-SAM pretraining diverged at step {step + 1} (loss {loss.item()})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            sched.step()
            smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{smooth:.3f}")
    return {k: v.detach().clone() for k, v in sam.state_dict().items()}


# ----------------------------------------------------------------------------------------- cache


def ensure_mini_sam(backbone: str = "sam_tiny", *, seed: int = 0, recipe: MiniSAMRecipe | None = None,
                    cache: Path | None = None, force: bool = False, progress: bool = True) -> Path:
    """The cached checkpoint of ``recipe`` (default: ``backbone``'s), pretrained first if absent.

    Under an exclusive lock on a file beside it: a second process (another shard) waits for the
    first to finish and then finds the file there. ``force`` rebuilds and replaces it.
    """
    import fcntl

    recipe = recipe or recipe_for(backbone, seed=seed)
    path = checkpoint_path(recipe, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file() and not force:
            return path
        t0 = time.perf_counter()
        state = pretrain(recipe, progress=progress)
        save_torch_atomic(state, path)  # the same bytes from any process (the test builds in another)
        if progress:
            print(f"mini-SAM pretrained in {time.perf_counter() - t0:.0f} s: {path}", file=sys.stderr)
    return path


def _cmd_pretrain_mini(args: argparse.Namespace) -> int:
    path = ensure_mini_sam(args.backbone, seed=args.seed, force=args.force, progress=not args.no_progress)
    print(path)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("pretrain-mini", help="pretrain and cache the miniature SAM the smoke preset starts from")
    p.add_argument("--backbone", default="sam_tiny", help=f"one of: {', '.join(MINI_RECIPES)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild even if a cached copy exists")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_pretrain_mini)
