"""Data-parallel training under ``torchrun``: one process per GPU (or CPU process with gloo).

Without ``torchrun`` (WORLD_SIZE unset or 1) every helper here is a no-op, so the engine reads the
same in both cases. The effective batch stays 4: accumulation steps = 4 / (batch x world size).
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as td
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes; returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or td.is_initialized():
        return device
    backend = "nccl" if device.type == "cuda" else "gloo"
    td.init_process_group(backend=backend)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def world_size() -> int:
    return td.get_world_size() if td.is_initialized() else 1


def rank() -> int:
    return td.get_rank() if td.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def sampler(dataset, *, shuffle: bool, seed: int) -> DistributedSampler | None:
    if world_size() <= 1:
        return None
    return DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=False)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if world_size() <= 1 or not any(p.requires_grad for p in model.parameters()):
        return model  # DDP refuses a model with nothing to train (the zero-shot reference row)
    ids = [device.index] if device.type == "cuda" else None
    # Conv-LoRA routes each sample to one expert, and from-scratch trains modules the prompt-free
    # head never calls: some trainable parameters get no gradient in a step. Finding them costs
    # one graph traversal per step (torch warns about it for methods without such parameters).
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def maybe_no_sync(model: torch.nn.Module, skip_sync: bool):
    if skip_sync and isinstance(model, DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def barrier() -> None:
    if td.is_initialized():
        td.barrier()


def collective_device() -> torch.device:
    """Where small collective tensors live: the current GPU under NCCL, the CPU under gloo."""
    if td.is_initialized() and td.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
