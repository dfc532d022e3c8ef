"""The prompt-free segmentation model of the Conv-LoRA paper, on top of a segment-anything ``Sam``.

As the official implementation (AutoMM ``semantic_segmentation``; docs/FIDELITY.md#backbone-and-head):

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
prints 641.09M). The official code instead deletes the unused tokens and MLPs (AutoMM
``SAMForSemanticSegmentation``); the forward computation is the same. Multi-class tokens all start
as copies of SAM's first mask token, as there.

SAM2 (Hiera) models take the same head on SAM2's own image path: FPN features, the decoder's
high-resolution projections and ``no_mem_embed``, as SAM2's image predictor runs a single image.

Prompts (``forward(images, prompts)``, :mod:`benchmark.model.prompted`): the decoder then runs as
SAM runs it, all four mask tokens in the sequence and the prompt tokens appended, and keeps output
``mask_output`` (declared by the method: 0, SAM's single-mask output, by default; SAM2LoRA 1, its
first multimask output). How our mask token relates to it, a choice: our token *is* mask token 0
of that sequence (it replaces SAM's frozen token 0), so what a method trains in the prompt-free
head is what the prompted path reads at output 0, and at build the prompted path is exactly SAM's
decoder. It is not the prompt-free head with prompt tokens added: that head's sequence has one
mask token (the official AutoMM head), SAM's has four, and the tokens attend to one another.
Without prompts (``prompts=None``) the prompt-free head runs, unchanged; ``Prompts`` whose images
carry no point and no box run SAM's decoder with no prompt token (SAM2LoRA's test mode 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.model.backbones import BackboneView
from benchmark.model.prompted import Prompts, decode_prompted


@dataclass
class SegOutput:
    """``logits``: (B, K, S, S) mask logits at input size (K = 1 binary, classes otherwise);
    ``class_logits``: (B, K, classes + 1) or None; ``aux_loss``: scalar (Conv-LoRA's balancing
    loss summed over layers; zero for other methods); ``iou_pred``: (B, 1), the decoder's (frozen)
    IoU head's prediction for the kept mask output (prompted: the output the method declares;
    prompt-free: mask token 0's, whose copy our token is), or None (multi-class: SAM's IoU head
    scores its own mask tokens, not our class tokens). SAM2LoRA's loss uses it."""

    logits: torch.Tensor
    aux_loss: torch.Tensor
    class_logits: torch.Tensor | None = None
    iou_pred: torch.Tensor | None = None


class SegmentationModel(nn.Module):
    """Prompt-free SAM for semantic segmentation with ``num_classes`` outputs (1 = binary)."""

    def __init__(self, sam: nn.Module, *, num_classes: int = 1, mask_output: int = 0) -> None:
        super().__init__()
        self.sam = sam
        self.num_classes = num_classes
        view = self.view
        self._family = view.family
        dim = view.decoder.transformer_dim
        first = view.decoder.mask_tokens.weight[:1].detach().clone()
        # As the official code: every class token starts as a copy of SAM's first mask token; the
        # set loss's one-to-one matching gives the copies different targets, so they separate.
        self.mask_tokens = nn.Parameter(first.repeat(num_classes, 1))
        self.class_head = nn.Linear(dim, num_classes + 1, device=first.device) if num_classes > 1 else None
        self.add_no_mem_embed = True  # SAM2: as its image predictor; a method may turn it off (SAM2LoRA)
        self.mask_output = mask_output  # the prompted path's kept output (mask token and MLP index)
        self.freeze_to_decoder()

    @property
    def view(self) -> BackboneView:
        # Rebuilt on demand: methods replace submodules, and a cached view would go stale.
        return BackboneView(self.sam)

    def decoder_only_modules(self) -> list[nn.Module]:
        """The decoder parts the prompt-free head uses and trains (SAM2 adds its high-resolution
        projections and the object-score token, which joins the token sequence like the IoU token)."""
        dec = self.view.decoder
        parts = [dec.transformer, dec.output_upscaling, dec.output_hypernetworks_mlps[0], dec.iou_token]
        if self.view.family == "sam2":
            if dec.use_high_res_features:
                parts += [dec.conv_s0, dec.conv_s1]
            if dec.pred_obj_scores:
                parts.append(dec.obj_score_token)
        return parts

    def freeze_to_decoder(self) -> None:
        """Freeze everything but the decoder-only part and our own tokens and class head."""
        for p in self.sam.parameters():
            p.requires_grad_(False)
        for module in self.decoder_only_modules():
            for p in module.parameters():
                p.requires_grad_(True)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the parameters that train: what a best checkpoint keeps."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def forward(self, images: torch.Tensor, prompts: Prompts | None = None) -> SegOutput:
        """``images``: (B, 3, S, S), already resized to the backbone's square and normalised;
        ``prompts``: None for the prompt-free head, else SAM's prompted decoding (module doc)."""
        aux_modules = [m for m in self.modules() if hasattr(m, "aux_loss")]
        for m in aux_modules:
            m.aux_loss = None
        out = self.decode(self.encode(images), prompts, size=images.shape[-2:])
        aux = [m.aux_loss for m in aux_modules if m.aux_loss is not None]
        return replace(out, aux_loss=torch.stack(aux).sum()) if aux else out

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The image embedding (B, C, h, w) and SAM2's high-resolution levels (empty for SAM)."""
        if self._family == "sam2":
            return self._sam2_features(images)
        return self.sam.image_encoder(images), []

    def decode(self, features: tuple[torch.Tensor, list[torch.Tensor]], prompts: Prompts | None = None, *,
               size: tuple[int, int]) -> SegOutput:
        """Logits at ``size`` from :meth:`encode`'s features (several prompt modes share one encoding)."""
        embeddings, high_res = features
        iou_pred = class_logits = None
        if prompts is not None:
            low_res, iou_pred = decode_prompted(self, embeddings, high_res, prompts)
        elif self._family == "sam2":
            low_res, class_logits, iou_pred = self._decode_sam2(embeddings, high_res)
        else:
            low_res, class_logits, iou_pred = self._decode(embeddings)
        logits = F.interpolate(low_res, size=size, mode="bilinear", align_corners=False)
        return SegOutput(logits=logits, aux_loss=logits.new_zeros(()), class_logits=class_logits, iou_pred=iou_pred)

    def _sam2_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """SAM2's image path as its image predictor runs it: Hiera + FPN -> the two high-resolution
        levels projected by the decoder's conv_s0/conv_s1, ``no_mem_embed`` added to the
        lowest-resolution level (a single image has no memory)."""
        sam2 = self.sam
        backbone_out = sam2.forward_image(images)
        _, feats, _, sizes = sam2._prepare_backbone_features(backbone_out)
        if sam2.directly_add_no_mem_embed and self.add_no_mem_embed:
            feats[-1] = feats[-1] + sam2.no_mem_embed
        b = images.shape[0]
        maps = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(feats, sizes, strict=True)]
        return maps[-1], maps[:-1]

    def _iou_pred(self, dec: nn.Module, iou_token_out: torch.Tensor) -> torch.Tensor | None:
        """SAM's IoU head on the IoU token's output, as its decoder computes it, keeping the score of
        mask token 0: our binary token is a copy of it and reads its hypernetwork MLP. (B, 1).
        SAM2LoRA's loss compares it with the realised IoU (docs/FIDELITY.md#sam2lora-loss)."""
        if self.mask_tokens.shape[0] != 1:
            return None
        return dec.iou_prediction_head(iou_token_out)[:, :1]

    def _decode_sam2(self, embeddings: torch.Tensor, high_res: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """SAM2's decoder with our tokens and no prompts: tokens [object score, IoU, ours];
        upscaling fused with the high-resolution features."""
        dec, pe = self.sam.sam_mask_decoder, self.sam.sam_prompt_encoder
        b, c, h, w = embeddings.shape
        k = self.mask_tokens.shape[0]
        first = [dec.obj_score_token.weight] if dec.pred_obj_scores else []
        s = len(first)
        tokens = torch.cat([*first, dec.iou_token.weight, self.mask_tokens], dim=0).unsqueeze(0).expand(b, -1, -1)
        src = embeddings + pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        pos = pe.get_dense_pe().expand(b, -1, -1, -1)
        hs, src = dec.transformer(src, pos, tokens)
        token_out = hs[:, s + 1 : s + 1 + k, :]
        upscaled = upscale(dec, src.transpose(1, 2).reshape(b, c, h, w), high_res)
        hyper = dec.output_hypernetworks_mlps[0](token_out)
        _, cu, hu, wu = upscaled.shape
        masks = (hyper @ upscaled.reshape(b, cu, hu * wu)).reshape(b, k, hu, wu)
        class_logits = self.class_head(token_out) if self.class_head is not None else None
        return masks, class_logits, self._iou_pred(dec, hs[:, s, :])

    def _decode(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """SAM's ``MaskDecoder.predict_masks`` with our tokens and no prompts.

        ``embeddings``: (B, C, h, w) -> low-resolution logits (B, K, 4h, 4w), class logits, IoU prediction.
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
        return masks, class_logits, self._iou_pred(dec, hs[:, 0, :])


def upscale(dec: nn.Module, src: torch.Tensor, high_res: list[torch.Tensor]) -> torch.Tensor:
    """The decoder's output upscaling of ``src`` (B, C, h, w); SAM2 fuses its high-resolution levels."""
    if not getattr(dec, "use_high_res_features", False):
        return dec.output_upscaling(src)
    dc1, ln1, act1, dc2, act2 = dec.output_upscaling
    upscaled = act1(ln1(dc1(src) + high_res[1]))
    return act2(dc2(upscaled) + high_res[0])
