"""Train one (method, backbone, domain, seed) and evaluate its best checkpoint: the official recipe.

REFERENCE.md, "Training": AdamW (weight decay 1e-4), per-domain lr and epochs, polynomial decay
without warm-up, gradient clipping at norm 1.0, an effective batch of 4 by gradient accumulation,
16-bit autocast on GPU (bf16 where supported, else fp16 with loss scaling) and fp32 on CPU,
Conv-LoRA's balancing loss added, validation every epoch on the domain's metric, the best
checkpoint (trainable parameters only) kept, early stopping with patience 10, then the best
checkpoint evaluated on every test set with the domain's metrics at the model's input size (the
official protocol). One process, or several under ``torchrun`` (DDP; see :mod:`benchmark.train.dist`).

Choices where the reference is silent: the polynomial decay has power 1 (transformers' default
for ``get_polynomial_decay_schedule_with_warmup``) and decays to 0 over all optimiser steps;
the effective batch counts images, so a partial last accumulation still steps.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from benchmark.core.errors import BenchError
from benchmark.data.datasets import FOREGROUND_THRESHOLD, SegmentationDataset, load_mask
from benchmark.data.domains import Domain
from benchmark.model.backbones import BACKBONES, count_parameters
from benchmark.model.factory import build_model
from benchmark.train import dist
from benchmark.train.amp import autocast
from benchmark.train.losses import LOSSES, semantic_map
from metrics import MetricSuite


class RunFailed(Exception):
    """A run that cannot complete (NaN loss, ...): recorded as failed, the grid goes on."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``None`` fields take the domain's value (epochs, lr, loss)."""

    epochs: int | None = None
    lr: float | None = None
    loss: str | None = None
    weight_decay: float = 1e-4
    batch_size: int = 1  # per device
    effective_batch: int = 4  # reached by gradient accumulation (and DDP ranks)
    grad_clip: float = 1.0
    poly_power: float = 1.0  # lr = lr0 * (1 - step / total) ** power, no warm-up
    patience: int = 10
    image_size: int | None = None  # default: the backbone's input size
    precision: str = "auto"  # auto: bf16 (else fp16) autocast on GPU, fp32 on CPU; or fp32|bf16|fp16 anywhere
    num_workers: int = 0
    num_threads: int | None = None  # torch intra-op threads; 1 is fastest for the tiny smoke model
    hflip: bool = True  # the official augmentation; off only to compare runs image for image
    optimizer: str = "adamw"  # adamw (official); sgd only to check gradient plumbing (DDP test)
    eval_protocol: str = "official"  # official: at the model's input size; original: at each GT's size
    max_train_images: int | None = None  # cap per epoch (smoke runs)
    save_best: bool = True
    attention: str = "auto"  # SAM encoder attention: auto (sdpa on CUDA, sam on CPU) | sam | sdpa (benchmark.model.attention)

    def resolved(self, domain: Domain, backbone: str) -> TrainConfig:
        return replace(
            self,
            epochs=self.epochs if self.epochs is not None else domain.epochs,
            lr=self.lr if self.lr is not None else domain.lr,
            loss=self.loss if self.loss is not None else domain.loss,
            image_size=self.image_size or BACKBONES.get(backbone).image_size,
        )


TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig))


def train_config_from(overrides: dict[str, str], base: TrainConfig) -> TrainConfig:
    """Apply ``--set`` strings to the train settings they name."""
    values: dict[str, Any] = {}
    for f in fields(TrainConfig):
        if f.name in overrides:
            text = overrides[f.name]
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            try:
                if "bool" in kind:
                    if text.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                        raise ValueError(text)
                    values[f.name] = text.lower() in ("1", "true", "yes", "on")
                elif "int" in kind:
                    values[f.name] = None if text.lower() == "none" else int(text)
                elif "float" in kind:
                    values[f.name] = None if text.lower() == "none" else float(text)
                else:
                    values[f.name] = text
            except ValueError:
                raise BenchError(f"option {f.name}: cannot read {text!r} as {kind}") from None
    return replace(base, **values)


@dataclass
class RunResult:
    metrics: dict[str, dict[str, Any]]
    val_history: list[dict[str, float]]
    best_epoch: int
    trainable_params: int
    total_params: int
    train_seconds: float
    eval_seconds: float
    peak_memory_mb: float
    peak_memory_kind: str
    config: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def compute_loss(out, batch: dict, domain: Domain, loss_key: str) -> torch.Tensor:
    fn = LOSSES.get(loss_key)
    if domain.task == "multiclass":
        return fn(out.logits, out.class_logits, batch["mask"])
    return fn(out.logits.float(), batch["mask"])


def predictions(out, domain: Domain) -> list[np.ndarray]:
    """Per image: binary probabilities (H, W) float32, or class maps (H, W) int64."""
    if domain.task == "multiclass":
        return list(semantic_map(out.logits, out.class_logits).cpu().numpy())
    return list(torch.sigmoid(out.logits.float())[:, 0].cpu().numpy())


def targets(batch: dict, domain: Domain) -> list[np.ndarray]:
    if domain.task == "multiclass":
        return list(batch["mask"].cpu().numpy())
    return list((batch["mask"][:, 0] > 0.5).cpu().numpy())


def _at_original_size(out, index: int, sample, domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """One image's prediction with its logits resized (bilinear) to the original GT, and that GT."""
    gt = load_mask(sample.mask, domain)
    size = gt.shape
    logits = F.interpolate(out.logits[index : index + 1].float(), size=size, mode="bilinear", align_corners=False)
    if domain.task == "multiclass":
        pred = semantic_map(logits, out.class_logits[index : index + 1])[0].cpu().numpy()
        return pred, gt.astype(np.int64)
    return torch.sigmoid(logits)[0, 0].cpu().numpy(), gt > FOREGROUND_THRESHOLD


@torch.no_grad()
def evaluate(model, loader, domain: Domain, keys: tuple[str, ...], device, precision: str, desc: str,
             protocol: str = "official", progress: bool = True) -> dict:
    """Metric values over a loader.

    ``official``: the model's output at its input size against the GT resized to it (nearest), as
    the official evaluation. ``original``: logits resized to each image's original size against
    its original GT (a common protocol elsewhere; not the paper's).
    """
    model.eval()
    suite = MetricSuite(list(keys), num_classes=domain.num_classes if domain.task == "multiclass" else None)
    ctx, _ = autocast(device, precision)
    seen = 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and dist.is_main()), dynamic_ncols=True)
    for batch in bar:
        with ctx:
            out = model(batch["image"].to(device))
        if protocol == "original":
            for i in range(len(batch["image"])):
                suite.update(*_at_original_size(out, i, loader.dataset.samples[seen + i], domain))
        else:
            for pred, gt in zip(predictions(out, domain), targets(batch, domain), strict=True):
                suite.update(pred, gt)
        seen += len(batch["image"])
    values = suite.compute()
    return {k: (float(v) if not isinstance(v, list) else [float(x) for x in v]) for k, v in values.items()}


def _loader(ds, *, batch_size: int, shuffle: bool, seed: int, num_workers: int, shard: bool = False) -> DataLoader:
    """``shard``: split across DDP ranks (training only; every rank evaluates the whole set)."""
    sampler = dist.sampler(ds, shuffle=shuffle, seed=seed) if shard else None
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=num_workers, generator=gen, drop_last=False,
    )


def _peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    # ru_maxrss is in KiB on Linux; it is the process's high-water mark, not this run's alone.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_process_max_rss"


def train_and_evaluate(
    *,
    method: str,
    backbone: str,
    domain: Domain,
    seed: int,
    data_root: Path,
    checkpoint: Path | None,
    method_overrides: dict[str, str],
    train_cfg: TrainConfig,
    device: torch.device,
    best_path: Path | None = None,
    progress: bool = True,
) -> RunResult:
    """One run; raises RunFailed (or BenchError for bad input) on failure."""
    cfg = train_cfg.resolved(domain, backbone)
    if cfg.eval_protocol not in ("official", "original"):
        raise BenchError(f"unknown eval_protocol {cfg.eval_protocol!r}; valid: official, original")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    classes = domain.num_classes if domain.task == "multiclass" else 1
    model, method_cfg = build_model(
        backbone, method, num_classes=classes,
        checkpoint=None if method == "from_scratch" else checkpoint, overrides=method_overrides,
        device=device,  # built where it runs: a ViT-H initialised on the CPU costs seconds per run
        attention=cfg.attention,
    )
    trainable, total = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    train_model = dist.wrap(model, device)

    size = cfg.image_size
    train_ds = SegmentationDataset(domain, data_root, "train", size=size, train=cfg.hflip)
    if cfg.max_train_images:
        train_ds.samples = train_ds.samples[: cfg.max_train_images]
    val_loader = _loader(SegmentationDataset(domain, data_root, "val", size=size, train=False),
                         batch_size=cfg.batch_size, shuffle=False, seed=seed, num_workers=cfg.num_workers)
    train_loader = _loader(
        train_ds, batch_size=cfg.batch_size, shuffle=True, seed=seed, num_workers=cfg.num_workers, shard=True
    )
    if len(train_ds) == 0:
        raise BenchError(f"domain {domain.key}: the train split is empty under {data_root}")

    accum = max(1, cfg.effective_batch // (cfg.batch_size * dist.world_size()))
    steps_per_epoch = math.ceil(len(train_loader) / accum)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr)
    else:
        raise BenchError(f"unknown optimizer {cfg.optimizer!r}; valid: adamw, sgd")
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: max(0.0, 1 - s / total_steps) ** cfg.poly_power
    )
    ctx, scaler = autocast(device, cfg.precision)
    higher = domain.val_higher_is_better
    best_score, best_epoch, best_state, stale = None, -1, None, 0
    history: list[dict[str, float]] = []

    t0 = time.perf_counter()
    epochs = tqdm(range(cfg.epochs), desc=f"{method}/{domain.key}/s{seed}", leave=False,
                  disable=not (progress and dist.is_main()), dynamic_ncols=True)
    for epoch in epochs:
        train_model.train()
        if hasattr(train_loader.sampler, "set_epoch"):
            train_loader.sampler.set_epoch(epoch)
        opt.zero_grad(set_to_none=True)
        running, n_batches = 0.0, 0
        for i, batch in enumerate(train_loader):
            last = (i + 1) % accum == 0 or i + 1 == len(train_loader)
            images = batch["image"].to(device)
            batch = {**batch, "mask": batch["mask"].to(device)}
            with dist.maybe_no_sync(train_model, not last), ctx:
                out = train_model(images)
                loss = compute_loss(out, batch, domain, cfg.loss) + out.aux_loss.float()
            if not torch.isfinite(loss):
                raise RunFailed(f"loss became {loss.item()} at epoch {epoch + 1}, batch {i + 1}")
            scaled = loss / accum
            (scaler.scale(scaled) if scaler else scaled).backward()
            running += loss.item()
            n_batches += 1
            if last:
                if scaler:
                    scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                if scaler:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                opt.zero_grad(set_to_none=True)
                sched.step()
        val = evaluate(model, val_loader, domain, (domain.val_metric,), device, cfg.precision, "val",
                       progress=progress)
        score = val[domain.val_metric]
        history.append({"epoch": epoch + 1, "train_loss": running / max(n_batches, 1), domain.val_metric: score})
        improved = best_score is None or (score > best_score if higher else score < best_score)
        if improved:
            best_score, best_epoch, stale = score, epoch + 1, 0
            best_state = model.trainable_state_dict()
        else:
            stale += 1
        epochs.set_postfix(loss=f"{running / max(n_batches, 1):.4f}", **{domain.val_metric: f"{score:.4f}"})
        if stale >= cfg.patience:
            break
    train_seconds = time.perf_counter() - t0

    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
        if best_path is not None and cfg.save_best and dist.is_main():
            best_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = best_path.with_name(best_path.name + ".tmp")
            torch.save(best_state, tmp)
            tmp.replace(best_path)

    t1 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for test_set in domain.tests:
        loader = _loader(SegmentationDataset(domain, data_root, test_set, size=size, train=False),
                         batch_size=cfg.batch_size, shuffle=False, seed=seed, num_workers=cfg.num_workers)
        results[test_set] = evaluate(model, loader, domain, domain.test_metrics, device, cfg.precision, test_set,
                                     protocol=cfg.eval_protocol, progress=progress)
    eval_seconds = time.perf_counter() - t1
    peak, kind = _peak_memory(device)
    return RunResult(
        metrics=results, val_history=history, best_epoch=best_epoch,
        trainable_params=trainable, total_params=total,
        train_seconds=train_seconds, eval_seconds=eval_seconds,
        peak_memory_mb=peak, peak_memory_kind=kind,
        config={"method": asdict(method_cfg), "train": asdict(cfg)},
    )
