"""SAM-Adapter: the explicit-visual-prompt generator of Chen et al., "SAM Fails to Segment Anything?"
(ICCV-W 2023, arXiv 2304.09148), built on EVP (Liu et al., CVPR 2023, arXiv 2303.10883).

Injected, around the frozen image encoder:
  - embedding tune: Linear(C, f) on the patch embeddings (B, H, W, C);
  - handcrafted tune: the image's high-frequency component (FFT, a centred square of the shifted
    spectrum holding ``freq_rate`` of it is zeroed, inverse FFT, magnitude) patch-embedded by
    Conv2d(3, f, patch, stride patch);
  - per block i: prompt_i = shared(GELU(Linear_i(embedding + handcrafted))), shared = Linear(f, C),
    added to the tokens entering block i (after the absolute position embedding).
Trainable: decoder-only part + all of the above.
Size: the paper does not publish its SAM-Adapter configuration. With f = C / scale the added
count is 32 f^2 + 3362 f + 1280 (ViT-H); scale 16 (f = 80) gives 475,040 -> 3,980,576
(3.98M / 0.62%), the paper's count, so scale 16 is the default (SAM-Adapter's public config uses
scale 32, which gives 3.69M). Deviations: none known.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.options import option
from methods import register_method


@dataclass(frozen=True)
class SAMAdapterConfig:
    scale: int = option(16, min=1)
    freq_rate: float = option(0.25, gt=0, lt=1)


def high_frequency(images: torch.Tensor, rate: float) -> torch.Tensor:
    """(B, 3, H, W) -> the magnitude of the image with the central ``rate`` of its spectrum removed."""
    h, w = images.shape[-2:]
    spec = torch.fft.fftshift(torch.fft.fft2(images.float(), norm="forward"), dim=(-2, -1))
    half = int((h * w * rate) ** 0.5) // 2
    keep = torch.ones(h, w, device=images.device)
    keep[h // 2 - half : h // 2 + half, w // 2 - half : w // 2 + half] = 0
    spec = spec * keep
    out = torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1)), norm="forward").real.abs()
    return out.to(images.dtype)


class PromptGenerator(nn.Module):
    """Holds the generator's layers and the hooks that feed the frozen encoder."""

    def __init__(self, *, dim: int, depth: int, patch: int, cfg: SAMAdapterConfig, device: torch.device) -> None:
        super().__init__()
        f = dim // cfg.scale
        self.rate = cfg.freq_rate
        self.embedding_tune = nn.Linear(dim, f, device=device)
        self.handcrafted_tune = nn.Conv2d(3, f, kernel_size=patch, stride=patch, device=device)
        self.lightweight = nn.ModuleList(nn.Linear(f, f, device=device) for _ in range(depth))
        self.shared = nn.Linear(f, dim, device=device)
        self._image: torch.Tensor | None = None
        self._base: torch.Tensor | None = None

    def keep_image(self, module: nn.Module, args: tuple) -> None:
        self._image = args[0]

    def make_base(self, module: nn.Module, args: tuple, tokens: torch.Tensor) -> None:
        hfc = self.handcrafted_tune(high_frequency(self._image, self.rate)).permute(0, 2, 3, 1)
        self._base = self.embedding_tune(tokens) + hfc
        self._image = None

    def prompt(self, i: int) -> torch.Tensor:
        return self.shared(F.gelu(self.lightweight[i](self._base)))


@register_method("sam_adapter", SAMAdapterConfig, families=("sam",))
def apply_sam_adapter(model, cfg: SAMAdapterConfig) -> None:
    """Attach a PromptGenerator to the encoder and hook it in before every block."""
    view = model.view
    device = view.patch_embed.proj.weight.device
    gen = PromptGenerator(dim=view.embed_dim, depth=len(view.blocks), patch=view.patch_size, cfg=cfg, device=device)
    view.encoder.prompt_generator = gen
    view.encoder.register_forward_pre_hook(gen.keep_image)
    view.patch_embed.register_forward_hook(gen.make_base)
    for block in view.blocks:
        block.module.register_forward_pre_hook(lambda m, args, i=block.index: (args[0] + gen.prompt(i),))
