"""The prompt-free segmentation model of the Conv-LoRA paper, on top of a segment-anything ``Sam``.

As the official implementation (AutoMM ``semantic_segmentation``):

- no prompts: the sparse prompt embedding is empty and the dense one is SAM's ``no_mask_embed``;
- binary tasks use ONE mask token, initialised from SAM's first mask token, and only the FIRST
  output-hypernetwork MLP; the (B, 1, S/4, S/4) low-resolution logits are upsampled bilinearly
  (align_corners=False) to the input size S;
- multi-class (Trans10K): one mask token per class, all sharing that first MLP, and a class head
  Linear(C, classes + 1) on each token (Mask2Former style: the extra class is "no object");
- frozen: the prompt encoder, the IoU prediction head, the image encoder (a PEFT method unfreezes
  its own parameters), and SAM's own, now unused, mask tokens and hypernetwork MLPs 1..3.

Trainable at this point ("decoder-only"): the decoder's two-way transformer, its output upscaling,
the first hypernetwork MLP, the IoU token (it takes part in the transformer's attention) and the
mask token(s): 3,505,536 parameters for ViT-H.

Deliberate choice: SAM's modules are kept whole, so a checkpoint loads with strict keys and the
model's total equals SAM's own count plus our mask token(s) (ViT-H: 641,090,608 + 256; the paper
prints 641.09M). Multi-class tokens start from SAM's first token plus N(0, 0.02) noise: identical
tokens would receive identical gradients and never separate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.backbones import BackboneView


@dataclass
class SegOutput:
    """``logits``: (B, K, S, S) mask logits at input size (K = 1 binary, classes otherwise);
    ``class_logits``: (B, K, classes + 1) or None; ``aux_loss``: scalar (Conv-LoRA's balancing
    loss summed over layers; zero for other methods)."""

    logits: torch.Tensor
    aux_loss: torch.Tensor
    class_logits: torch.Tensor | None = None


class SegmentationModel(nn.Module):
    """Prompt-free SAM for semantic segmentation with ``num_classes`` outputs (1 = binary)."""

    def __init__(self, sam: nn.Module, *, num_classes: int = 1, seed_tokens: int = 0) -> None:
        super().__init__()
        self.sam = sam
        self.num_classes = num_classes
        view = self.view
        dim = view.decoder.transformer_dim
        first = view.decoder.mask_tokens.weight[:1].detach().clone()
        if num_classes == 1:
            tokens = first
        else:
            gen = torch.Generator().manual_seed(seed_tokens)
            noise = torch.randn(num_classes, dim, generator=gen).to(first.device) * 0.02
            tokens = first.expand(num_classes, dim) + noise if first.device.type != "meta" else first.repeat(num_classes, 1)
        self.mask_tokens = nn.Parameter(tokens.contiguous())
        self.class_head = nn.Linear(dim, num_classes + 1, device=first.device) if num_classes > 1 else None
        self.freeze_to_decoder()

    @property
    def view(self) -> BackboneView:
        # Rebuilt on demand: methods replace submodules, and a cached view would go stale.
        return BackboneView(self.sam)

    def freeze_to_decoder(self) -> None:
        """Freeze everything but the decoder-only part and our own tokens and class head."""
        for p in self.sam.parameters():
            p.requires_grad_(False)
        dec = self.sam.mask_decoder
        for module in (dec.transformer, dec.output_upscaling, dec.output_hypernetworks_mlps[0], dec.iou_token):
            for p in module.parameters():
                p.requires_grad_(True)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the parameters that train: what a best checkpoint keeps."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def forward(self, images: torch.Tensor) -> SegOutput:
        """``images``: (B, 3, S, S), already resized to the backbone's square and normalised."""
        aux_modules = [m for m in self.modules() if hasattr(m, "aux_loss")]
        for m in aux_modules:
            m.aux_loss = None
        embeddings = self.sam.image_encoder(images)
        low_res, class_logits = self._decode(embeddings)
        logits = F.interpolate(low_res, size=images.shape[-2:], mode="bilinear", align_corners=False)
        aux = [m.aux_loss for m in aux_modules if m.aux_loss is not None]
        aux_loss = torch.stack(aux).sum() if aux else logits.new_zeros(())
        return SegOutput(logits=logits, aux_loss=aux_loss, class_logits=class_logits)

    def _decode(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """SAM's ``MaskDecoder.predict_masks`` with our tokens and no prompts.

        ``embeddings``: (B, C, h, w) -> low-resolution logits (B, K, 4h, 4w).
        """
        dec = self.sam.mask_decoder
        pe = self.sam.prompt_encoder
        b, c, h, w = embeddings.shape
        k = self.mask_tokens.shape[0]
        tokens = torch.cat([dec.iou_token.weight, self.mask_tokens], dim=0).unsqueeze(0).expand(b, -1, -1)
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(b, -1, h, w)
        src = embeddings + dense
        pos = pe.get_dense_pe().expand(b, -1, -1, -1)
        hs, src = dec.transformer(src, pos, tokens)
        token_out = hs[:, 1 : 1 + k, :]
        upscaled = dec.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper = dec.output_hypernetworks_mlps[0](token_out)  # one MLP shared by every token
        _, cu, hu, wu = upscaled.shape
        masks = (hyper @ upscaled.reshape(b, cu, hu * wu)).reshape(b, k, hu, wu)
        class_logits = self.class_head(token_out) if self.class_head is not None else None
        return masks, class_logits
