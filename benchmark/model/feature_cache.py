"""Decoder-only feature cache: a frozen image encoder's output, computed once per (sample, flip).

When nothing in the image encoder trains, its output for a training image is the same in every
epoch; only the decoder needs recomputing. :class:`FeatureCache` replaces the encoder's
``forward`` (an instance attribute: parameters, state-dict keys and hooks are untouched) by one
that looks the batch up by keys the engine names, ``(split, dataset index, flipped)``; a batch
whose every sample is stored is served from the store, any other batch runs the encoder as
without the cache and stores what it computed.

What is cached (everything the head takes from the encoder): SAM (ViT): the (C, h, w) image
embedding; SAM2 (Hiera): the FPN levels ``backbone_fpn`` before the decoder's trainable
``conv_s0``/``conv_s1`` (which ``forward_image`` applies after the encoder), and the levels'
position encodings once per batch size (they depend on the shape only). Stored on the CPU in the
dtype the encoder produced (fp32 on CPU; bf16 under bf16 autocast). Per image at 1024x1024: SAM
ViT-B/L/H 256 x 64 x 64 = 4 MiB fp32, 2 MiB bf16 (the same for every ViT size); SAM2 Hiera
256 x (256^2 + 128^2 + 64^2) = 84 MiB fp32, 42 MiB bf16. Both flips of a training image are
stored, so twice that per training image. Past the byte budget nothing more is stored (the
encoder runs for the rest, results unchanged).

Both flips at first sight: under the official augmentation a sample comes flipped or not at
random, so caching only what was seen would leave half of epoch 2 to the encoder. On a miss in
training mode the encoder also runs on the batch flipped (``images.flip(-1)`` is exactly the
dataset's flip of the same decoded tensor), so every epoch after the first is served from the
store. The total encoder work over a run is the same (every flip of a sample appears within a
few epochs); epoch 1 does it all.

Exactness: the cache returns, for each sample, what the encoder computed for it, and a miss
computes the whole batch as the uncached path does. The one way a served value can differ from
the uncached computation is an encoder whose output for an image depends on the rest of its
batch. Measured on the CPU (torch 2.14): the output does not depend on the partners, but it can
depend on the batch size (oneDNN picks another convolution kernel for sam_tiny's neck at batch 1
than at batch 2; sam_vit_b and SAM2 are equal bit for bit at 1 and 3). Entries are therefore
keyed by the batch size too, and flips are computed in the batch they belong to: a batch is
served only by values computed at its own size, so the records equal the uncached ones bit for
bit (tests/test_feature_cache.py).

When the cache applies (:func:`why_not_cacheable`, derived from the built model, never from the
method's name): no image-encoder parameter requires a gradient; the encoder has the modules it
had before the method was applied (``factory.build_model`` records them; the SDPA attention swap
is the same maths and allowed); no module in it has hooks or a replaced ``forward``; none is
stochastic or batch-statistic dependent (dropout, drop-path, batch norm). The engine also needs
the augmentation to be the official flip or none (the keys say nothing of other augmentations:
``augment=sam2lora`` turns the cache off). Prompts change nothing here: they enter the decoder.
Under DDP every rank keeps its own cache of what its sampler hands it: the budget is per process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

EncoderStructure = tuple[tuple[str, str], ...]

# Class swaps that keep the maths (benchmark.model.attention): compared as the same class.
_SAME_MATHS = {"SDPAAttention": "Attention", "FoldedAttention": "Attention"}


def encoder_structure(model: nn.Module) -> EncoderStructure:
    """(qualified name, class name) of every module in the model's image encoder."""
    encoder = model.sam.image_encoder  # (the view needs parts a method may have wrapped)
    return tuple((name, _SAME_MATHS.get(type(m).__name__, type(m).__name__)) for name, m in encoder.named_modules())


def _stochastic(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return True  # training mode normalises by the batch's statistics and updates running ones
    return type(module).__name__ == "DropPath" and getattr(module, "drop_prob", 0.0) > 0


def why_not_cacheable(model: nn.Module) -> str | None:
    """None when the image encoder's output is a fixed function of its input; otherwise why not."""
    encoder = model.sam.image_encoder  # (the view needs parts a method may have wrapped)
    if any(p.requires_grad for p in encoder.parameters()):
        return "a parameter of the image encoder trains"
    built = getattr(model, "encoder_as_built", None)
    if built is None:
        return "the encoder's modules before the method was applied were not recorded"
    if encoder_structure(model) != built:
        return "the method injected or replaced modules in the image encoder"
    for name, m in encoder.named_modules():
        if m._forward_hooks or m._forward_pre_hooks:
            return f"module {name or 'encoder'} has forward hooks"
        if "forward" in vars(m):
            return f"module {name or 'encoder'} has a replaced forward"
        if _stochastic(m):
            return f"module {name or 'encoder'} ({type(m).__name__}) is stochastic or uses batch statistics"
    return None


Key = tuple[str, int, bool]


class FeatureCache:
    """The image encoder's outputs by (split, index, flipped) and batch size, on the CPU.

    Use :meth:`keys` around a model call to name the batch's samples; outside it the encoder runs
    as usual. ``flips``: on a training miss, also compute and store the batch flipped.
    """

    def __init__(self, encoder: nn.Module, *, budget_bytes: int, flips: bool) -> None:
        self.encoder = encoder
        self.budget_bytes = int(budget_bytes)
        self.flips = flips
        self.bytes = 0
        self.hits = self.misses = 0  # samples served from the store / computed by the encoder
        self._forward = encoder.forward
        self._keys: list[Key] | None = None
        self._store: dict[tuple[Key, int], list[torch.Tensor]] = {}
        self._shared: dict[int, list[torch.Tensor]] = {}  # SAM2 position encodings by batch size
        self._strides: dict[int, list[tuple[int, ...]]] = {}  # each level's batch layout (channels-last or not)
        self._is_dict = False  # SAM2's encoder returns a dict (set by the first output stored)
        encoder.forward = self._cached_forward

    def remove(self) -> None:
        """Give the encoder its own forward back and free the store."""
        if vars(self.encoder).get("forward") == self._cached_forward:
            del self.encoder.forward
        self._store.clear()
        self._shared.clear()
        self.bytes = 0

    @contextlib.contextmanager
    def keys(self, split: str, batch: dict) -> Iterator[None]:
        """Name the samples of ``batch`` (its ``index`` and ``flipped`` entries) for the next call."""
        flipped = batch.get("flipped", [False] * len(batch["index"]))
        self._keys = [(split, int(i), bool(f)) for i, f in zip(batch["index"], flipped, strict=True)]
        try:
            yield
        finally:
            self._keys = None

    def __len__(self) -> int:
        return len(self._store)

    @torch.compiler.disable  # a dictionary lookup: left out of a compiled model (benchmark.model.compiling)
    def _cached_forward(self, images: torch.Tensor):
        keys, self._keys = self._keys, None  # one model call per ``keys`` block
        if keys is None or len(keys) != images.shape[0]:
            return self._forward(images)
        size = len(keys)
        stored = [self._store.get((k, size)) for k in keys]
        if all(s is not None for s in stored) and (not self._is_dict or size in self._shared):
            self.hits += size
            return self._collate(stored, size, images.device)
        self.misses += size
        out = self._forward(images)
        self._put(keys, size, out)
        if self.flips and self.encoder.training:
            other = [(split, i, not f) for split, i, f in keys]
            if any((k, size) not in self._store for k in other):
                with torch.no_grad():
                    self._put(other, size, self._forward(images.flip(-1)))
        return out

    def _put(self, keys: list[Key], size: int, out) -> None:
        if isinstance(out, dict):
            self._is_dict = True
            levels = out["backbone_fpn"]
            if size not in self._shared:
                pos = [p.detach().to("cpu", copy=True) for p in out["vision_pos_enc"]]
                self._shared[size] = pos
                self.bytes += sum(p.numel() * p.element_size() for p in pos)
        else:
            levels = [out]
        # A served batch has the computed one's memory layout: kernels (and their rounding) follow it.
        self._strides.setdefault(size, [t.stride() for t in levels])
        for j, key in enumerate(keys):
            if (key, size) in self._store:
                continue
            per_sample = sum(t[j].numel() * t[j].element_size() for t in levels)
            if self.bytes + per_sample > self.budget_bytes:
                return
            self._store[key, size] = [t[j].detach().to("cpu", copy=True) for t in levels]
            self.bytes += per_sample

    def _collate(self, stored: list[list[torch.Tensor]], size: int, device: torch.device):
        levels = []
        for k, stride in enumerate(self._strides[size]):
            first = stored[0][k]
            batch = torch.empty_strided((size, *first.shape), stride, dtype=first.dtype, device=device)
            for j, s in enumerate(stored):
                batch[j].copy_(s[k])
            levels.append(batch)
        if not self._is_dict:
            return levels[0]
        pos = [p.to(device, copy=True) for p in self._shared[size]]
        return {"vision_features": levels[-1], "vision_pos_enc": pos, "backbone_fpn": levels}


def attach_feature_cache(model: nn.Module, *, mode: str, budget_gib: float, flips: bool) -> FeatureCache | None:
    """A :class:`FeatureCache` on the model's image encoder when ``mode`` is "auto" and the
    encoder is frozen and deterministic (:func:`why_not_cacheable`); else None."""
    if mode == "off" or budget_gib <= 0 or why_not_cacheable(model) is not None:
        return None
    return FeatureCache(model.sam.image_encoder, budget_bytes=int(budget_gib * 2**30), flips=flips)


def cached(cache: FeatureCache | None, split: str, batch: dict):
    """``cache.keys(split, batch)``, or a no-op without a cache."""
    return cache.keys(split, batch) if cache is not None else contextlib.nullcontext()
