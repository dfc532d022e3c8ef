"""SAM backbones and the small interface PEFT methods use to touch them.

Builders return a real segment-anything ``Sam``. Methods never index ``image_encoder.blocks[3]``
themselves: they go through :class:`BackboneView`, which names the encoder blocks, each block's
linear layers by role (``qkv``, ``proj``, ``fc1``, ``fc2``) and norms (``norm1``, ``norm2``), the
patch embedding, the neck and the mask decoder. A SAM2 Hiera view can expose the same roles
(its blocks have a fused ``attn.qkv`` and ``attn.proj`` and an ``mlp``), so methods written against
this interface carry over without change.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.core.registry import Registry

CHECKPOINT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM2_CHECKPOINT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone. ``image_size`` is the square input the model expects."""

    key: str
    image_size: int
    build: Callable[[], nn.Module]
    checkpoint_file: str | None = None
    description: str = ""
    checkpoint_base_url: str = CHECKPOINT_BASE_URL
    family: str = "sam"  # "sam" (segment-anything ViT) or "sam2" (Hiera); methods declare which they take


BACKBONES: Registry[BackboneSpec] = Registry("backbone")


def _vit_sam(
    *,
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn_indexes: tuple[int, ...],
    image_size: int = 1024,
    patch_size: int = 16,
    window_size: int = 14,
    prompt_dim: int = 256,
    decoder_mlp_dim: int = 2048,
    decoder_heads: int = 8,
    iou_hidden: int = 256,
) -> nn.Module:
    """A segment-anything ``Sam`` with the given ViT; the defaults are the official 1024 models."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    grid = image_size // patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=depth,
            embed_dim=embed_dim,
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=num_heads,
            patch_size=patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=global_attn_indexes,
            window_size=window_size,
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=prompt_dim, mlp_dim=decoder_mlp_dim, num_heads=decoder_heads
            ),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=iou_hidden,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam


# The three official models, with the hyper-parameters of segment_anything.build_sam.
BACKBONES.register(
    "sam_vit_b",
    BackboneSpec(
        "sam_vit_b", 1024,
        partial(_vit_sam, embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
        "sam_vit_b_01ec64.pth", "SAM ViT-B (91M), 1024x1024",
    ),
)
BACKBONES.register(
    "sam_vit_l",
    BackboneSpec(
        "sam_vit_l", 1024,
        partial(_vit_sam, embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
        "sam_vit_l_0b3195.pth", "SAM ViT-L (308M), 1024x1024",
    ),
)
BACKBONES.register(
    "sam_vit_h",
    BackboneSpec(
        "sam_vit_h", 1024,
        partial(_vit_sam, embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
        "sam_vit_h_4b8939.pth", "SAM ViT-H (641M), 1024x1024: the Conv-LoRA paper's backbone",
    ),
)
# Tiny: 64x64 input, patch 8 -> an 8x8 token grid; window 3 forces SAM's window padding (8 -> 9);
# blocks 1 and 3 are global. Same classes and code paths as the official models, ~0.1M params.
BACKBONES.register(
    "sam_tiny",
    BackboneSpec(
        "sam_tiny", 64,
        partial(
            _vit_sam, embed_dim=32, depth=4, num_heads=2, global_attn_indexes=(1, 3), image_size=64,
            patch_size=8, window_size=3, prompt_dim=32, decoder_mlp_dim=64, decoder_heads=2, iou_hidden=32,
        ),
        None, "tiny SAM for tests and the smoke preset (random init; `pretrain-mini` pretrains it on synthetic scenes)",
    ),
)


def _sam2(config: str, *, image_size: int | None = None) -> nn.Module:
    """A ``sam2`` SAM2Base from its packaged Hydra config, random weights (``ckpt_path=None``),
    moved to the current default device (``build_sam`` sets it). Only the image path (Hiera trunk
    + FPN neck, prompt encoder, mask decoder) is used; the video modules are built but idle.
    """
    try:
        from sam2.build_sam import build_sam2
    except ImportError:
        raise BenchError("SAM2 backbones need the sam2 package (pip install sam2)") from None
    overrides = [f"++model.image_size={image_size}"] if image_size else []
    device = torch.get_default_device()
    # Hiera's constructor calls .item(), which the meta device refuses: build on the CPU, then move.
    with torch.device("cpu"):
        model = build_sam2(config, ckpt_path=None, device="cpu", mode="eval", hydra_overrides_extra=overrides)
    return model.to(device)


_SAM2_CONFIGS = {
    "sam2_hiera_t": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt", "Hiera-T (38.96M)"),
    "sam2_hiera_s": ("configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt", "Hiera-S (46.06M)"),
    "sam2_hiera_b_plus": ("configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt", "Hiera-B+ (80.85M)"),
    "sam2_hiera_l": ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt", "Hiera-L (224.45M)"),
}
for _key, (_config, _file, _size) in _SAM2_CONFIGS.items():
    BACKBONES.register(_key, BackboneSpec(
        _key, 1024, partial(_sam2, _config), _file, f"SAM2.1 {_size}, 1024x1024, all modules counted (video ones idle)",
        SAM2_CHECKPOINT_BASE_URL, family="sam2",
    ))
# SAM2.1 Hiera-T at a 256x256 input, random: the SAM2 path in tests (a 64x64 token grid, every
# stage's windows padded or pooled as at 1024).
BACKBONES.register("sam2_tiny", BackboneSpec(
    "sam2_tiny", 256, partial(_sam2, _SAM2_CONFIGS["sam2_hiera_t"][0], image_size=256), None,
    "SAM2.1 Hiera-T at 256x256, random weights, for tests (not a pretrained model)", family="sam2",
))


def build_sam(
    key: str, *, checkpoint: str | Path | None = None, device: str | torch.device | None = None
) -> nn.Module:
    """Build backbone ``key``; on ``device="meta"`` no memory is allocated (for counting)."""
    spec = BACKBONES.get(key)
    with torch.device(device or "cpu"):
        sam = spec.build()
    if checkpoint is not None:
        load_checkpoint(sam, checkpoint, backbone=key)
    return sam


def _load_failure(path: Path, exc: Exception) -> str:
    """Why ``torch.load`` failed, in a few words (torch's own messages run to paragraphs)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK" and not zipfile.is_zipfile(path):
        return "is truncated or corrupt (a broken zip archive)"
    if head[:2] != b"PK" and head[:1] != b"\x80":
        return "is not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "Weights only load failed" in first or "weights_only" in first.lower():
        return "holds pickled objects other than tensors, which weights_only loading refuses"
    return f"is unreadable (truncated or corrupt?): {first[:160]}"


def load_checkpoint(model: nn.Module, path: str | Path, *, backbone: str = "model") -> None:
    """Load a SAM state dict with ``weights_only=True`` and strict keys and shapes.

    Every failure is a one-line ``BenchError`` naming the file and what did not match.
    """
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code: say so, never execute it
        raise BenchError(f"checkpoint {path} {_load_failure(path, exc)}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BenchError(f"checkpoint {path} is not a state dict of tensors")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} file {tuple(state[k].shape)} vs {backbone} {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
        raise BenchError(f"checkpoint {path} does not match {backbone}: " + "; ".join(parts))
    if next(model.parameters()).device.type != "meta":  # on meta, keys and shapes are the check
        model.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------------------------
# The interface methods use.


@dataclass
class EncoderBlock:
    """One encoder block. ``grid`` is the (H, W) token grid its attention sees (a window or all);
    ``dim`` its input width, ``dim_out`` its output width (they differ at Hiera's stage changes)."""

    index: int
    module: nn.Module
    dim: int
    dim_out: int
    num_heads: int
    is_global: bool
    grid: tuple[int, int]
    roles: dict[str, str]  # role -> attribute path inside ``module``

    def get(self, role: str) -> nn.Module:
        return self.module.get_submodule(self.roles[role])

    def replace(self, role: str, new: nn.Module) -> None:
        """Swap the module playing ``role`` (e.g. wrap ``qkv`` in a LoRA layer)."""
        parent_path, _, name = self.roles[role].rpartition(".")
        parent = self.module.get_submodule(parent_path) if parent_path else self.module
        setattr(parent, name, new)


class BackboneView:
    """Names the parts of a SAM (ViT) or SAM2 (Hiera) model that PEFT methods read, wrap or freeze.

    ``family`` is "sam" or "sam2"; a method that depends on one family's internals (VPT's
    attention, LST's side blocks, SAM-Adapter's fixed width) declares the families it takes when
    it registers, and :func:`benchmark.model.factory.build_model` refuses the others.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        if hasattr(model, "sam_mask_decoder"):
            self.family = "sam2"
            self.encoder = model.image_encoder
            self.decoder = model.sam_mask_decoder
            self.prompt_encoder = model.sam_prompt_encoder
            self._trunk = self.encoder.trunk
            self.image_size: int = model.image_size
            self.blocks = self._hiera_blocks()
        else:
            self.family = "sam"
            self.encoder = model.image_encoder
            self.decoder = model.mask_decoder
            self.prompt_encoder = model.prompt_encoder
            self._trunk = self.encoder
            self.image_size = self.encoder.img_size
            self.blocks = self._vit_blocks()
        self.embed_dim: int = self.patch_embed.proj.out_channels
        self.patch_size: int = self.patch_embed.proj.stride[0]

    _VIT_ROLES = {
        "attn": "attn", "qkv": "attn.qkv", "proj": "attn.proj", "mlp": "mlp",
        "fc1": "mlp.lin1", "fc2": "mlp.lin2", "norm1": "norm1", "norm2": "norm2",
    }
    _HIERA_ROLES = {
        "attn": "attn", "qkv": "attn.qkv", "proj": "attn.proj", "mlp": "mlp",
        "fc1": "mlp.layers.0", "fc2": "mlp.layers.1", "norm1": "norm1", "norm2": "norm2",
    }

    def _vit_blocks(self) -> list[EncoderBlock]:
        enc = self.encoder
        token_grid = enc.img_size // enc.patch_embed.proj.stride[0]
        dim = enc.patch_embed.proj.out_channels
        return [
            EncoderBlock(
                index=i, module=blk, dim=dim, dim_out=dim, num_heads=blk.attn.num_heads,
                is_global=blk.window_size == 0,
                grid=(token_grid, token_grid) if blk.window_size == 0 else (blk.window_size,) * 2,
                roles=dict(self._VIT_ROLES),
            )
            for i, blk in enumerate(enc.blocks)
        ]

    def _hiera_blocks(self) -> list[EncoderBlock]:
        grid = self.image_size // self._trunk.patch_embed.proj.stride[0]
        out = []
        for i, blk in enumerate(self._trunk.blocks):
            grid_in = grid  # what the block's qkv sees; a stage's first block then pools q
            if blk.pool is not None:
                grid //= blk.q_stride[0]
            out.append(EncoderBlock(
                index=i, module=blk, dim=blk.dim, dim_out=blk.dim_out, num_heads=blk.attn.num_heads,
                is_global=blk.window_size == 0,
                grid=(grid_in, grid_in) if blk.window_size == 0 else (blk.window_size,) * 2,
                roles=dict(self._HIERA_ROLES),
            ))
        return out

    @property
    def patch_embed(self) -> nn.Module:
        """Maps (B, 3, S, S) images to channel-last tokens (B, H, W, C); its ``proj`` is the conv."""
        return self._trunk.patch_embed

    def neck_layers(self) -> list[tuple[nn.Sequential, int, int]]:
        """The neck's conv/norm layers as (parent, index, channels); outputs are (B, C, H, W)."""
        if self.family == "sam":
            seqs = [self.encoder.neck]
        else:
            seqs = list(self.encoder.neck.convs)
        out = []
        for seq in seqs:
            for i, layer in enumerate(seq):
                channels = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.weight.numel()
                out.append((seq, i, channels))
        return out

    def decoder_attention(self) -> list[nn.Module]:
        """The mask decoder's attention layers (each with q_proj, k_proj, v_proj, out_proj Linears)."""
        return [m for m in self.decoder.transformer.modules() if hasattr(m, "q_proj") and hasattr(m, "out_proj")]

    def encoder_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.encoder.named_parameters())


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; works on the meta device."""
    total = trainable = 0
    for p in module.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
