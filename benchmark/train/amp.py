"""Mixed precision: the autocast context a run uses, and a CPU imitation of CUDA's cast policy.

Every reproduction runs on a GPU under 16-bit autocast, every test on a CPU. The two autocasts
cast different ops: CUDA's runs its "fp32" ops (interpolation, layer and group norm, softplus,
exp/log/pow, the losses, ...) in float32 and its "fp32_set_opt_dtype" reductions (sum, softmax,
cumsum, prod, norms) with a float32 result, while CPU autocast leaves most of them in bf16. Code
that meets a float32 and a bf16 tensor in an indexed or in-place op (``index_add``, ``scatter``,
``copy_``) therefore runs on the CPU and crashes on the GPU (docs/FIDELITY.md#gpu-autocast).
:func:`cuda_cast_policy` closes that gap in tests: under it, CPU autocast returns float32 from
every op CUDA autocast would, by casting their floating inputs to float32 (what CUDA autocast
does); the backward follows through the casts, as on the GPU.

Source of the op lists: PyTorch ``aten/src/ATen/autocast_mode.h`` (``AT_FORALL_FP32`` and
``AT_FORALL_FP32_SET_OPT_DTYPE``), as of torch 2.11 (the version the crash was seen with) to 2.14
(the one tested here); the interpolation entry was also observed on an H200 (bicubic
``F.interpolate`` returned float32 inside a bf16 region).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from benchmark.core.errors import BenchError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(device: torch.device, precision: str) -> str:
    """``auto``: bf16 on a GPU that supports it, else fp16 there; fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise BenchError(f"option precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler | None]:
    """(autocast context, GradScaler or None) for ``precision`` on ``device``.

    fp16 gets a GradScaler (its range needs loss scaling); bf16 has fp32's range and needs none.
    """
    resolved = resolve_precision(device, precision)
    if resolved == "fp32":
        return torch.autocast(device_type=device.type, enabled=False), None
    dtype = torch.bfloat16 if resolved == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    return torch.autocast(device_type=device.type, dtype=dtype), scaler


def _names(module, *names: str) -> list[Callable]:
    return [getattr(module, n) for n in names if hasattr(module, n)]


# CUDA autocast "fp32": inputs cast to float32, so the result is float32.
_FP32 = (
    _names(torch, "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
           "reciprocal", "rsqrt", "sinh", "tan", "pow", "layer_norm", "group_norm", "cosine_similarity",
           "dist", "pdist", "cdist", "renorm", "logsumexp", "binary_cross_entropy_with_logits")
    + _names(torch.Tensor, "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
             "reciprocal", "rsqrt", "sinh", "tan", "pow", "__pow__", "__rpow__", "dist", "renorm", "logsumexp")
    + _names(F, "interpolate", "upsample", "upsample_bilinear", "upsample_nearest", "layer_norm", "group_norm",
             "softplus", "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss",
             "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss",
             "margin_ranking_loss", "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss",
             "multi_margin_loss", "binary_cross_entropy_with_logits", "pdist")
)
# CUDA autocast "fp32_set_opt_dtype": reductions given dtype=float32, so the result is float32.
_FP32_RESULT = (
    _names(torch, "prod", "softmax", "log_softmax", "cumprod", "cumsum", "sum", "norm")
    + _names(torch.Tensor, "prod", "softmax", "log_softmax", "cumprod", "cumsum", "sum", "norm")
    + _names(F, "softmax", "log_softmax", "softmin", "normalize", "cross_entropy")
    + _names(torch.linalg, "vector_norm", "matrix_norm", "norm")
)
CUDA_FP32_OPS: frozenset[Callable] = frozenset(_FP32 + _FP32_RESULT)


def _to_float32(x):
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float64:
        return x.float()
    return x


class _CudaPolicy(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in CUDA_FP32_OPS and torch.is_autocast_enabled("cpu"):
            args, kwargs = tree_map(_to_float32, (args, kwargs))
            with torch.autocast("cpu", enabled=False):
                return func(*args, **kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def cuda_cast_policy() -> Iterator[None]:
    """Inside CPU autocast, give every op that CUDA autocast runs in float32 a float32 result."""
    with _CudaPolicy():
        yield
