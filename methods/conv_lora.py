"""Conv-LoRA: LoRA whose rank-r bottleneck passes through a mixture of 3x3 convolutions at 8 scales.

Paper: Zhong, Tang, He, Fang, Yuan, "Convolution Meets LoRA: Parameter Efficient Finetuning for
Segment Anything Model", ICLR 2024 (arXiv 2401.17868); semantics of the official implementation
(AutoGluon MultiModal ``ConvLoRALinear``), as recorded in docs/FIDELITY.md#lora-and-conv-lora.

Injected: the fused ``qkv`` Linear of every image-encoder block. With x of shape (N, H, W, C)
(N counts windows in windowed blocks, H = W = 14 there; 64 in global blocks for ViT-H):
    z = x A^T                                    (N, H, W, r)
    gate: p = mean_{H,W} z (N, r); logits = p W_gate (+ noise in training: randn *
          (softplus(p W_noise) + 1e-2)); top-1 expert i per sample; gate weight softmax(top-1) = 1
    z' = z + E_i(z),  E_i = resize_back(GELU(Conv3x3(resize(z, x i))))   (bicubic; i = 1: no resize)
    out = qkv(x) + (alpha / r) z' B^T
The chosen expert's output is added to z, not multiplied by the gate (as the official code).
Resampling: bicubic by an integer factor (align_corners=False, borders clamped) and back is a
fixed linear map per axis, so each expert applies it as ``rows @ z @ cols^T`` with (sH x H) and
(H x sH) matrices read once off ``F.interpolate`` itself and cached per (size, scale, device,
dtype) (:func:`bicubic_matrix`). The result equals the official ``F.interpolate`` calls up to
float summation order (tested: fp32 within 1e-5, fp64 within 1e-12, forward and gradients, scales
1-8 at 3, 8, 14 and 64). Why: its backward is a matmul too (no atomic scatter-adds), and under
autocast it runs in the 16-bit dtype, where CUDA autocast returned interpolation in float32.
Balancing loss per layer: coef * (cv2(importance) + cv2(load)), importance = gates summed over
the batch, load = the smooth probability of being in the top-k under the noise (training) or the
routed counts (evaluation), cv2(x) = var(x) / (mean(x)^2 + 1e-10) with unbiased variance. Each
layer exposes it as ``aux_loss``; the model sums them and training adds the sum to the loss.

Trainable: decoder-only part + A, B (LoRA: 15,360 per block) + W_gate and W_noise (2 x r x 8 = 48,
zeros at init) + 8 experts x (r x r x 3 x 3 + r) = 672: 720 per block beyond LoRA; ViT-H
3,997,056 + 32 x 720 = 4,020,096 (4.02M / 0.63%). At init B = 0, so the model equals SAM exactly.
Checked against the reference code (AutoGluon MultiModal ``conv_lora/adaptation_layers.py`` and
``moe_conv.py``): bicubic resampling with align_corners=False both ways, Conv3x3 then GELU, gates
from the globally pooled rank-r map, ``multiply_by_gates=False``. The reference recombines expert
outputs in log space (log of summed exp); for top-1 that is E_i(z) itself up to float rounding
(GELU's output is >= -0.17, so exp never underflows), and we add E_i(z) directly.
Deviations: none known. In eval mode each layer counts the samples routed to each expert
(``expert_counts``; a sample is a window in windowed blocks), which the run records as ``expert_usage``.

Two computations of the same experts (``moe_kernel``, :func:`methods.layers.set_moe_kernel`): ``loop`` (the
default) runs each routed expert on its own samples, as the reference code (about ten operators
and a device sync per expert and layer); ``grouped`` runs every expert used in the batch at once
(:meth:`MoEConv.grouped`): each sample resamples with its expert's matrices zero-padded to the
largest scale used, and the 3x3 convolutions run as one grouped convolution, a group per sample.
Zero rows and columns change no valid value (the zero border is the convolution's own padding),
the unused experts stay out of the graph (their gradient stays None), and each sample gets its own
expert's output as in the loop; the rest is float summation order (tests/test_conv_lora.py). It
trades some FLOPs on tiny maps (the padding: up to 2.5x the loop's with all eight scales in use)
for fewer than half the loop's operators and one device sync per layer instead of one per expert: for a
GPU, where the loop's cost is, we infer, launching operators (docs/FIDELITY.md#gpu-measurements).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.core.options import option
from methods import register_method
from methods.layers import EXPERT_COUNTS, LoRALinear


@dataclass(frozen=True)
class ConvLoRAConfig:
    """Official defaults: rank 3, alpha 32, experts at scales 1..8, top-1 noisy gating.

    ``scales``: one expert per listed upsampling factor; the paper's scale ablation (its Table 4)
    is ``--set conv_lora.scales=1,2,4`` and the like.
    """

    rank: int = option(3, min=1)
    alpha: float = option(32.0, gt=0)
    scales: tuple[int, ...] = option((1, 2, 3, 4, 5, 6, 7, 8), min=1)
    top_k: int = option(1, min=1)
    balance_coef: float = option(1e-2, min=0)
    noisy_gating: bool = True

    def __post_init__(self) -> None:
        if self.top_k > len(self.scales):
            raise BenchError(f"option conv_lora.top_k: {self.top_k} is not allowed; expected at most the "
                             f"number of experts ({len(self.scales)})")


def cv_squared(x: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation, var / (mean^2 + 1e-10), unbiased var; 0 for one element."""
    if x.numel() <= 1:
        return x.new_zeros(())
    return x.float().var() / (x.float().mean() ** 2 + 1e-10)


def prob_in_top_k(clean: torch.Tensor, noisy: torch.Tensor, std: torch.Tensor, top: torch.Tensor, k: int) -> torch.Tensor:
    """P(expert e stays in the top-k if only its own noise is redrawn), per sample and expert.

    ``top``: the k+1 largest noisy logits per sample (N, k+1). An expert now in the top-k must
    beat the (k+1)-th value to stay; one outside must beat the k-th (Shazeer et al., 2017).
    """
    threshold_in = top[:, k : k + 1]
    threshold_out = top[:, k - 1 : k]
    # validate_args=False: the same cdf without the argument checks, each a device sync on a GPU.
    normal = torch.distributions.Normal(clean.new_zeros(()), clean.new_ones(()), validate_args=False)
    is_in = noisy > threshold_in
    p_in = normal.cdf((clean - threshold_in) / std)
    p_out = normal.cdf((clean - threshold_out) / std)
    return torch.where(is_in, p_in, p_out)


@functools.cache
def bicubic_matrix(n: int, scale: int, up: bool, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One axis of ``F.interpolate(mode="bicubic", align_corners=False)`` as a matrix.

    ``up``: length n -> scale * n with ``scale_factor=scale``, a (scale * n, n) matrix; else
    scale * n -> n with ``size=n``, (n, scale * n). Read off by interpolating an identity basis
    with the same call (the other axis kept at length 1, which bicubic maps onto itself exactly:
    its weights are then 0, 1, 0, 0), so the entries are the kernel's own weights, border
    clamping included. Cached per (n, scale, direction, device, dtype): a few KiB each.
    """
    n_in = n if up else n * scale
    work = torch.float64 if dtype == torch.float64 else torch.float32
    # A plain tensor whatever the caller's mode: inference tensors cannot be saved for backward,
    # and autocast must not round the weights.
    with torch.inference_mode(False), torch.no_grad(), torch.autocast(device.type, enabled=False):
        basis = torch.eye(n_in, device=device, dtype=work).reshape(n_in, 1, n_in, 1)
        if up:
            out = F.interpolate(basis, scale_factor=(scale, 1), mode="bicubic", align_corners=False)
        else:
            out = F.interpolate(basis, size=(n, 1), mode="bicubic", align_corners=False)
        return out.reshape(n_in, -1).t().to(dtype).contiguous()


def bicubic_resample(z: torch.Tensor, scale: int, *, up: bool) -> torch.Tensor:
    """(N, r, H, W) -> (N, r, sH, sW) (``up``) or (N, r, H/s, W/s): rows @ z @ cols^T.

    Equals ``F.interpolate(z, scale_factor=s)`` / ``F.interpolate(z, size=(H/s, W/s))`` (bicubic,
    align_corners=False) up to float summation order; the backward is two matmuls as well.
    """
    h, w = z.shape[-2:]
    if not up:
        h, w = h // scale, w // scale
    rows = bicubic_matrix(h, scale, up, z.device, z.dtype)
    cols = rows if w == h else bicubic_matrix(w, scale, up, z.device, z.dtype)
    return rows @ z @ cols.t()


class ConvExpert(nn.Module):
    """Resize by ``scale`` (bicubic), Conv3x3(r, r) + GELU, resize back; (N, r, H, W) -> same."""

    def __init__(self, rank: int, scale: int, device: torch.device | None = None) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(rank, rank, kernel_size=3, padding=1, device=device)
        if self.conv.bias.device.type != "meta":
            nn.init.zeros_(self.conv.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return F.gelu(self.conv(z))
        y = F.gelu(self.conv(bicubic_resample(z, self.scale, up=True)))
        return bicubic_resample(y, self.scale, up=False)


def official_expert(expert: ConvExpert, z: torch.Tensor) -> torch.Tensor:
    """``expert``'s computation as the reference code writes it, with ``F.interpolate``.

    (N, r, H, W) -> same. Not used in training: the equality tests and ``bench layers`` (the
    "before" side) compare :class:`ConvExpert` against it.
    """
    if expert.scale == 1:
        return F.gelu(expert.conv(z))
    y = F.interpolate(z, scale_factor=expert.scale, mode="bicubic", align_corners=False)
    y = F.gelu(expert.conv(y))
    return F.interpolate(y, size=z.shape[-2:], mode="bicubic", align_corners=False)


@functools.cache
def stacked_matrices(n: int, scales: tuple[int, ...], up: bool, device: torch.device,
                     dtype: torch.dtype) -> torch.Tensor:
    """One axis's resampling for each of a layer's scales, zero-padded to the largest: (E, S, n)
    (``up``) or (E, n, S), S = max(scales) * n; scale 1 is the identity (its expert does not
    resample). Cached per layer configuration: ViT-H's largest, n = 64 at scale 8, is 1 MiB."""
    size = max(scales) * n
    shape = (len(scales), size, n) if up else (len(scales), n, size)
    with torch.inference_mode(False), torch.no_grad():
        out = torch.zeros(shape, device=device, dtype=dtype)
        for e, s in enumerate(scales):
            m = torch.eye(n, device=device, dtype=dtype) if s == 1 else bicubic_matrix(n, s, up, device, dtype)
            if up:
                out[e, : s * n] = m
            else:
                out[e, :, : s * n] = m
    return out


class MoEConv(nn.Module):
    """The Conv-LoRA step on the rank-r map: ``z + E_i(z)`` with a gated choice of expert i.

    Input and output (N, H, W, r), channel-last as inside SAM's attention. Sets ``aux_loss``.
    ``moe_kernel``: how the routed experts are computed, ``loop`` or ``grouped`` (module docstring).
    """

    moe_kernel = "loop"  # set per layer by methods.layers.set_moe_kernel

    def __init__(self, cfg: ConvLoRAConfig, device: torch.device | None = None) -> None:
        super().__init__()
        self.top_k = cfg.top_k
        self.noisy = cfg.noisy_gating
        self.coef = cfg.balance_coef
        if not cfg.scales or min(cfg.scales) < 1:
            raise BenchError(f"conv_lora scales must be positive integers, got {cfg.scales}")
        self.w_gate = nn.Parameter(torch.zeros(cfg.rank, len(cfg.scales), device=device))
        self.w_noise = nn.Parameter(torch.zeros(cfg.rank, len(cfg.scales), device=device))
        self.experts = nn.ModuleList(ConvExpert(cfg.rank, s, device) for s in cfg.scales)
        self.aux_loss: torch.Tensor | None = None
        # Evaluation counts (not trained, not saved): which scale each sample chose, per layer.
        self.register_buffer(EXPERT_COUNTS, torch.zeros(len(cfg.scales), dtype=torch.long, device=device),
                             persistent=False)

    def gate(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pooled`` (N, r) -> (gates (N, E) with one weight 1 per row, load (E,))."""
        n_exp = self.w_gate.shape[1]
        clean = pooled @ self.w_gate
        if self.noisy and self.training:
            std = F.softplus(pooled @ self.w_noise) + 1e-2
            logits = clean + torch.randn_like(clean) * std
        else:
            logits = clean
        top, idx = logits.topk(min(self.top_k + 1, n_exp), dim=1)
        top_gates = torch.softmax(top[:, : self.top_k], dim=1)
        # The gates take the softmax's dtype (float32 under CUDA autocast, whatever the logits').
        gates = top_gates.new_zeros(logits.shape).scatter(1, idx[:, : self.top_k], top_gates)
        if self.noisy and self.training and self.top_k < n_exp:
            load = prob_in_top_k(clean, logits, std, top, self.top_k).sum(0)
        else:
            load = (gates > 0).sum(0).to(gates.dtype)
        return gates, load

    # Routing makes shapes depend on data (which samples go where), which torch.compile cannot
    # trace exactly (tests/test_compiling.py): under compile this step runs eagerly and the rest
    # of the block is compiled around it.
    @torch.compiler.disable
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        zc = z.permute(0, 3, 1, 2)  # (N, r, H, W)
        gates, load = self.gate(zc.mean(dim=(2, 3)))
        self.aux_loss = self.coef * (cv_squared(gates.sum(0)) + cv_squared(load))
        routed = gates > 0
        if not self.training:
            self.expert_counts += routed.sum(0)
        if self.moe_kernel == "grouped":
            return (zc + self.grouped(zc, routed)).permute(0, 2, 3, 1)
        out = torch.zeros_like(zc)
        for i, expert in enumerate(self.experts):
            rows = routed[:, i].nonzero(as_tuple=True)[0]
            if rows.numel():
                # z's dtype wins: index_add refuses mixed dtypes, and with F.interpolate CUDA
                # autocast returned the experts' output in float32 while z was 16-bit
                # (docs/FIDELITY.md#gpu-autocast). The matmul resampling now keeps 16 bits; the
                # cast stays as a guard.
                out = out.index_add(0, rows, expert(zc.index_select(0, rows)).to(out.dtype))
        return (zc + out).permute(0, 2, 3, 1)


    def grouped(self, zc: torch.Tensor, routed: torch.Tensor) -> torch.Tensor:
        """The routed experts of every sample at once: (N, r, H, W) -> sum over i routed for n
        of E_i(z_n), the loop's sum in the same order (module docstring).

        Each (sample, expert) pair p resamples with its expert's matrices, zero-padded to the
        largest scale used (index_select from :func:`stacked_matrices`), and convolves with its
        expert's weights (one convolution, a group per pair). Only the experts used are stacked,
        so the others stay out of the graph and keep a None gradient."""
        n, r, h, w = zc.shape
        routing = routed.tolist()  # the layer's one device sync
        pairs = [(i, e) for i, row in enumerate(routing) for e, on in enumerate(row) if on]
        if not pairs:
            return torch.zeros_like(zc)
        used = sorted({e for _, e in pairs})
        slot = {e: k for k, e in enumerate(used)}
        dev = zc.device
        sample = torch.tensor([i for i, _ in pairs], device=dev)
        expert = torch.tensor([e for _, e in pairs], device=dev)
        which = torch.tensor([slot[e] for _, e in pairs], device=dev)
        scales = tuple(e.scale for e in self.experts)
        size = max(scales[e] for e in used)  # pad to the largest scale used, not the layer's

        def axis(m: int) -> tuple[torch.Tensor, torch.Tensor]:
            """Each pair's up (sm x m) and down (m x sm) matrices of one axis, s = ``size``."""
            up = stacked_matrices(m, scales, True, dev, zc.dtype)[:, : size * m].index_select(0, expert)
            down = stacked_matrices(m, scales, False, dev, zc.dtype)[:, :, : size * m].index_select(0, expert)
            return up, down

        rows_up, rows_down = axis(h)
        cols_up, cols_down = (rows_up, rows_down) if w == h else axis(w)
        one_each = [i for i, _ in pairs] == list(range(n))  # top-1: pair p is sample p
        z = zc if one_each else zc.index_select(0, sample)
        y = rows_up.unsqueeze(1) @ z @ cols_up.transpose(1, 2).unsqueeze(1)  # (P, r, sH, sW)
        weight = torch.stack([self.experts[e].conv.weight for e in used]).index_select(0, which)
        bias = torch.stack([self.experts[e].conv.bias for e in used]).index_select(0, which)
        p = len(pairs)
        y = F.conv2d(y.reshape(1, p * r, *y.shape[-2:]), weight.flatten(0, 1), bias.flatten(), padding=1, groups=p)
        y = rows_down.unsqueeze(1) @ F.gelu(y).view(p, r, *y.shape[-2:]) @ cols_down.transpose(1, 2).unsqueeze(1)
        y = y.to(zc.dtype)
        return y if one_each else torch.zeros_like(zc).index_add(0, sample, y)


@register_method("conv_lora", ConvLoRAConfig)
def apply_conv_lora(model, cfg: ConvLoRAConfig) -> None:
    """Wrap every encoder block's qkv in a LoRALinear whose rank-r map goes through MoEConv."""
    for block in model.view.blocks:
        qkv = block.get("qkv")
        mid = MoEConv(cfg, device=qkv.weight.device)
        block.replace("qkv", LoRALinear(qkv, rank=cfg.rank, alpha=cfg.alpha, mid=mid))
