"""SAM's promptable decoding, for prompted training and evaluation, on both backbone families.

The prompt-free head (:mod:`benchmark.model.head`) decodes one mask token and nothing else. With
prompts, the decoder runs as SAM itself runs it: the prompt encoder's sparse tokens appended to
the output tokens [SAM2: object score], IoU, mask tokens 0..3, the dense embedding
``no_mask_embed`` (no mask prompt), and one output kept: ``model.mask_output``, the index of the
mask token and of its hypernetwork MLP (declared by the method, ``MethodSpec.mask_output``): 0 is
SAM's single-mask output, 1 SAM's first multimask output (SAM2LoRA's choice).

Mask token 0 is the head's own trained token (``model.mask_tokens``, a copy of SAM's token 0 at
build), so a method that trains it (decoder-only and those that keep it) trains the token the
prompted path reads at output 0; SAM's frozen token 0 is never read. At build the two are equal,
so the prompted path then computes exactly what SAM's decoder computes.

Prompts follow each family's image predictor: segment-anything embeds points (padded with a
"not a point" token when there is no box) then the box's two corners; SAM2 puts the box's corners
first, as points with labels 2 and 3, then the points, always padded (its predictor passes
``boxes=None``). Images whose prompts have the same shape (number of points, box or not) are decoded together,
each with exactly the tokens it would have alone, so a result never depends on the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Prompts:
    """Per image of a batch, in pixels of the model's input grid: ``points`` (N_i, 2) positive
    points (x, y), N_i >= 0; ``boxes`` (4,) x0, y0, x1, y1, or None."""

    points: tuple[np.ndarray, ...]
    boxes: tuple[np.ndarray | None, ...]

    def __post_init__(self) -> None:
        if len(self.points) != len(self.boxes):
            raise ValueError("Prompts: one points array and one box (or None) per image")

    def groups(self) -> dict[tuple[int, bool], list[int]]:
        """Image indices by prompt shape (number of points, has a box)."""
        out: dict[tuple[int, bool], list[int]] = {}
        for i, (p, b) in enumerate(zip(self.points, self.boxes, strict=True)):
            out.setdefault((len(p), b is not None), []).append(i)
        return out


def sparse_tokens(pe, family: str, points: torch.Tensor | None, boxes: torch.Tensor | None,
                  n: int) -> torch.Tensor:
    """The prompt encoder's sparse embeddings (n, T, C) for n images sharing one prompt shape:
    ``points`` (n, K, 2) positive, ``boxes`` (n, 4); T = 0 without any prompt."""
    device = pe.no_mask_embed.weight.device
    if points is None and boxes is None:
        return torch.zeros(n, 0, pe.embed_dim, device=device)
    labels = torch.ones(points.shape[:2], dtype=torch.int, device=device) if points is not None else None
    if family == "sam2":
        coords, tags = [], []
        if boxes is not None:
            coords.append(boxes.reshape(n, 2, 2))
            tags.append(torch.tensor([[2, 3]], dtype=torch.int, device=device).expand(n, 2))
        if points is not None:
            coords.append(points)
            tags.append(labels)
        sparse, _ = pe(points=(torch.cat(coords, 1), torch.cat(tags, 1)), boxes=None, masks=None)
    else:
        sparse, _ = pe(points=(points, labels) if points is not None else None, boxes=boxes, masks=None)
    return sparse


def decode_prompted(model, embeddings: torch.Tensor, high_res: Sequence[torch.Tensor],
                    prompts: Prompts) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, h', w') low-resolution logits of output ``model.mask_output`` and its (B, 1) IoU
    prediction, for ``embeddings`` (B, C, h, w) and SAM2's ``high_res`` levels."""
    from benchmark.model.head import upscale

    view = model.view
    dec, pe, family = view.decoder, view.prompt_encoder, view.family
    if model.num_classes > 1:
        raise ValueError("prompts are for binary tasks (one mask); this model has class tokens")
    k = model.mask_output
    _, c, h, w = embeddings.shape
    first = [dec.obj_score_token.weight] if family == "sam2" and dec.pred_obj_scores else []
    s = len(first)
    mask_tokens = torch.cat([model.mask_tokens[:1], dec.mask_tokens.weight[1:]], dim=0)
    output_tokens = torch.cat([*first, dec.iou_token.weight, mask_tokens], dim=0)
    dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
    pos = pe.get_dense_pe()
    order, outputs = [], []
    for (n_points, has_box), idx in prompts.groups().items():
        n = len(idx)
        points = boxes = None
        if n_points:
            points = torch.as_tensor(np.stack([prompts.points[i] for i in idx]), dtype=torch.float32,
                                     device=embeddings.device)
        if has_box:
            boxes = torch.as_tensor(np.stack([prompts.boxes[i] for i in idx]), dtype=torch.float32,
                                    device=embeddings.device)
        sparse = sparse_tokens(pe, family, points, boxes, n)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(n, -1, -1), sparse], dim=1)
        src = embeddings[idx] + dense
        hs, src = dec.transformer(src, pos.expand(n, -1, -1, -1), tokens)
        up = upscale(dec, src.transpose(1, 2).reshape(n, c, h, w), [f[idx] for f in high_res])
        hyper = dec.output_hypernetworks_mlps[k](hs[:, s + 1 + k, :]).unsqueeze(1)
        _, cu, hu, wu = up.shape
        masks = (hyper @ up.reshape(n, cu, hu * wu)).reshape(n, 1, hu, wu)
        iou = dec.iou_prediction_head(hs[:, s, :])[:, k : k + 1]
        order += idx
        outputs.append((masks, iou))
    back = torch.as_tensor(np.argsort(order, kind="stable"), device=embeddings.device)
    masks = torch.cat([m for m, _ in outputs])[back]
    iou = torch.cat([i for _, i in outputs])[back]
    return masks, iou
