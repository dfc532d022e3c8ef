"""Training augmentation, applied to a sample after the decoded-sample cache (never in place: the
cached tensors stay as decoded).

- ``hflip``: a random horizontal flip, the Conv-LoRA recipe (docs/FIDELITY.md#backbone-and-head);
  :class:`benchmark.data.datasets.SegmentationDataset` does it itself (``train=True``), unchanged.
- ``sam2lora``: the SAM2LoRA authors' augmentation (:class:`SAM2LoRAAugment`).
- ``none``: the decoded sample as it is.

Every draw comes from the global torch RNG (torchvision's transforms draw with ``torch.rand`` and
friends), so ``torch.manual_seed`` reproduces a run's augmentations, a resumed run restores them
with the other RNG states, and DataLoader workers get their own seeds derived from it by torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from benchmark.data.datasets import IGNORE_INDEX, PIXEL_MEAN, PIXEL_STD

AUGMENTATIONS = ("hflip", "sam2lora", "none")
Augment = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class SAM2LoRAAugment:
    """SAM2LoRA's training augmentation (``train.py:119-137``, applied by ``datautils.py:102-123``;
    docs/FIDELITY.md#sam2lora-augmentation), drawn afresh for every sample every epoch.

    Image and mask together: horizontal and vertical flips (p 0.5 each); then, with p 0.5, all of
    perspective (distortion 0.1, its own p 0.6), random resized crop (scale 0.08-1, ratio 3/4-4/3),
    rotation (+-8 deg), affine (+-8 deg, translate 0.2, scale 0.2-0.8). The image alone, with p 0.5,
    all of colour jitter (brightness 0.1, hue 0.02), Gaussian blur (kernel 3, sigma 0.1-0.4) and
    sharpness 1.2 (its own p 0.5). Their inner probabilities are torchvision's defaults and their
    explicit arguments; their interpolations too: the image bilinear in perspective and crop,
    nearest in rotation and affine. Uncovered pixels are black (fill 0 of the 0..255 image), the
    mask's background (multi-class: ignore).

    Differences, each written down in docs/FIDELITY.md#sam2lora-augmentation: the mask is resampled
    nearest everywhere (theirs travels as a fourth channel, bilinear in perspective and crop, then
    re-binarised at (max + min) / 2); the crop goes straight to the model's size ``size`` (theirs
    crops to 1000 x 1000 and resizes to 1024 nearest); the input is the decoded square (theirs
    keeps the aspect ratio until the end); colours stay floats in 0..1 (theirs are truncated to
    uint8 first).

    ``image``: normalised (3, S, S) float32; ``mask``: binary (1, S, S) float32 or multi-class
    (S, S) int64. Returns new tensors of the same kinds.
    """

    def __init__(self, size: int, *, binary: bool = True) -> None:
        self.binary = binary
        fill = {tv_tensors.Image: 0.0, tv_tensors.Mask: 0 if binary else IGNORE_INDEX}
        self.geometry = v2.Compose([
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomVerticalFlip(p=0.5),
            v2.RandomApply([
                v2.RandomPerspective(distortion_scale=0.1, p=0.6, fill=fill),
                v2.RandomResizedCrop(size=(size, size), antialias=True),
                v2.RandomRotation(degrees=8, fill=fill),
                v2.RandomAffine(degrees=8, translate=(0.2, 0.2), scale=(0.2, 0.8), fill=fill),
            ], p=0.5),
        ])
        self.colour = v2.RandomApply([
            v2.ColorJitter(brightness=0.1, hue=0.02),
            v2.GaussianBlur(kernel_size=3, sigma=(0.1, 0.4)),
            v2.RandomAdjustSharpness(sharpness_factor=1.2),
        ], p=0.5)
        self._mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
        self._std = torch.tensor(PIXEL_STD).view(3, 1, 1)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Back to 0..1 RGB: torchvision's colour ops (and a black fill) assume it.
        rgb = ((image * self._std + self._mean) / 255).clamp(0, 1)
        rgb, mask = self.geometry(tv_tensors.Image(rgb), tv_tensors.Mask(mask))
        rgb = self.colour(rgb).as_subclass(torch.Tensor)
        mask = mask.as_subclass(torch.Tensor)
        mask = (mask > 0.5).to(torch.float32) if self.binary else mask.clone()
        return ((rgb * 255 - self._mean) / self._std).contiguous(), mask.contiguous()


def build_augment(name: str, *, size: int, binary: bool) -> Augment | None:
    """The augmentation ``name`` for samples of ``size`` x ``size``; None for ``hflip`` (the
    dataset's own flip) and ``none``."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTATIONS)}")
    return SAM2LoRAAugment(size, binary=binary) if name == "sam2lora" else None
