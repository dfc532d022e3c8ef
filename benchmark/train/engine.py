"""Train one (method, backbone, domain, seed) and evaluate its best checkpoint: the official recipe.

docs/FIDELITY.md#training-recipe: AdamW (weight decay 1e-4), per-domain lr and epochs, polynomial decay
without warm-up, gradient clipping at norm 1.0, an effective batch of 4 by gradient accumulation,
16-bit autocast on GPU (bf16 where supported, else fp16 with loss scaling) and fp32 on CPU,
Conv-LoRA's balancing loss added, validation every epoch on the domain's metric, the best
checkpoint (trainable parameters only) kept, early stopping with patience 10, then the best
checkpoint evaluated on every test set with the domain's metrics at the model's input size (the
official protocol). One process, or several under ``torchrun`` (DDP; see :mod:`benchmark.train.dist`).

The run reads top to bottom as named steps: :func:`build_run` (model, data, optimiser),
:func:`train_epoch`, :func:`validate_and_keep_best`, :func:`test_best`. Between steps the loop
writes its resume state (:mod:`benchmark.train.resume`), so a killed or preempted run continues
where it stopped when the same command runs again.

Choices where the reference is silent: the polynomial decay has power 1 (transformers' default
for ``get_polynomial_decay_schedule_with_warmup``) and decays to 0 over all optimiser steps;
the effective batch counts images, so a partial last accumulation still steps.

Other recipes are settings of the same loop (SAM2LoRA's: the ``sam2lora`` preset,
docs/FIDELITY.md#sam2lora-optimisation): the lr schedule (``schedule``, :mod:`benchmark.train.schedules`),
the augmentation (``augment``, :mod:`benchmark.data.augment`), the kept state (``select``: best
validation score or lowest mean training loss of an epoch, docs/FIDELITY.md#sam2lora-selection),
no early stopping (``patience=none``) and a length in optimiser steps (``max_steps``: the epochs
needed, the last one cut after the run's last step).
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
from torch.utils.data import DataLoader
from tqdm import tqdm

from benchmark.core.errors import BenchError
from benchmark.core.io import save_torch_atomic
from benchmark.core.options import apply_overrides, check_config, option
from benchmark.data.augment import AUGMENTATIONS, build_augment
from benchmark.data.datasets import SegmentationDataset
from benchmark.data.domains import Domain
from benchmark.data.predictions import PredictionWriter
from benchmark.data.prompts import MODE_PATTERN
from benchmark.model.attention import ATTENTION_KINDS
from benchmark.model.backbones import BACKBONES, count_parameters
from benchmark.model.checkpointing import CHECKPOINTING, set_checkpointing
from benchmark.model.compiling import COMPILE, compile_seconds, set_compile
from benchmark.model.factory import build_model
from benchmark.model.feature_cache import FeatureCache, attach_feature_cache, cached
from benchmark.train import dist
from benchmark.train.amp import PRECISIONS, autocast
from benchmark.train.evaluation import evaluate, evaluate_modes, peak_memory
from benchmark.train.losses import IOU_LOSSES, LOSSES
from benchmark.train.optim import ADAMW_KERNELS, make_adamw
from benchmark.train.prompting import PromptPlan, prompt_plan
from benchmark.train.resume import Preempted, Progress, load_state, save_state, set_rng_state, stop_requested
from benchmark.train.schedules import SCHEDULES, build_schedule
from methods import METHODS
from methods.layers import MOE_KERNELS, expert_counts, reset_expert_counts


class RunFailed(Exception):
    """A run that cannot complete (NaN loss, ...): recorded as failed, the grid goes on."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``None`` fields take the domain's value (epochs, lr, loss). Every field's
    allowed values are declared here and checked by :mod:`benchmark.core.options`."""

    epochs: int | None = option(None, min=1)
    lr: float | None = option(None, gt=0)
    loss: str | None = option(None, choices=tuple(LOSSES.keys()))
    weight_decay: float = option(1e-4, min=0)
    batch_size: int = option(1, min=1)  # per device
    effective_batch: int = option(4, min=1)  # reached by gradient accumulation (and DDP ranks)
    grad_clip: float = option(1.0, gt=0)
    poly_power: float = option(1.0, min=0)  # lr = lr0 * (1 - step / total) ** power, no warm-up
    schedule: str = option("poly", choices=SCHEDULES)  # cosine_restarts: SAM2LoRA's
    restart_steps: int = option(1000, min=1)  # cosine_restarts: optimiser steps per cosine cycle
    max_steps: int | None = option(None, min=1)  # run length in optimiser steps (epochs then follow)
    patience: int | None = option(10, min=1)  # none: no early stopping
    select: str = option("val", choices=("val", "train_loss"))  # the kept state: best val score or lowest train loss
    image_size: int | None = option(None, min=16)  # default: the backbone's input size
    precision: str = option("auto", choices=PRECISIONS)  # auto: bf16 (else fp16) on GPU, fp32 on CPU
    num_workers: int = option(0, min=0)
    num_threads: int | None = option(None, min=1)  # torch intra-op threads; 1 is fastest for the tiny smoke model
    hflip: bool = True  # false: no augmentation (the older switch; augment=none says the same)
    augment: str = option("hflip", choices=AUGMENTATIONS)  # sam2lora: SAM2LoRA's (benchmark/data/augment.py)
    optimizer: str = option("adamw", choices=("adamw", "sgd"))  # sgd only to check gradient plumbing (DDP test)
    eval_protocol: str = option("official", choices=("official", "original"))  # original: at each GT's size
    max_train_images: int | None = option(None, min=1)  # cap per epoch (smoke runs)
    save_best: bool = True
    attention: str = option("auto", choices=ATTENTION_KINDS)  # SAM encoder attention: auto = sdpa on CUDA, sam on CPU
    moe_kernel: str = option("loop", choices=MOE_KERNELS)  # Conv-LoRA's experts: one by one, or grouped (same maths)
    # Prompts (benchmark/train/prompting.py): training mode, its box jitter (SAM2LoRA's code 0.02),
    # and the test modes, each test set evaluated once per mode (all = SAM2LoRA's six).
    prompt: str = option("none", pattern=MODE_PATTERN, help="none, points:K (K 1..99), box or points:K+box")
    box_jitter: float = option(0.0, min=0, max=0.5)
    eval_prompts: tuple[str, ...] = option(("none",), pattern=f"all|{MODE_PATTERN}",
                                           help="modes none, points:K, box, points:K+box, or all")
    max_eval_images: int | None = option(None, min=1)  # cap per validation and test set (smoke runs)
    feature_cache: str = option("auto", choices=("auto", "off"))  # frozen encoder: its outputs cached (model.feature_cache)
    feature_cache_gib: float = option(16.0, min=0)  # the cache's budget per process, host memory
    checkpointing: str = option("off", choices=CHECKPOINTING)  # encoder: blocks recomputed in the backward
    adamw_kernel: str = option("default", choices=ADAMW_KERNELS)  # fused: one kernel on CUDA, foreach elsewhere
    compile: str = option("off", choices=COMPILE)  # torch.compile the encoder or the whole model

    def prompt_plan(self, domain: Domain) -> PromptPlan:
        return prompt_plan(prompt=self.prompt, eval_prompts=self.eval_prompts, box_jitter=self.box_jitter,
                           domain=domain)

    def __post_init__(self) -> None:
        if not self.hflip and self.augment not in ("hflip", "none"):
            raise BenchError(f"hflip=false and augment={self.augment} disagree; hflip=false means augment=none, "
                             "leave hflip out")

    @property
    def augmentation(self) -> str:
        """What augments the training samples: ``augment``, or ``none`` where ``hflip`` is off."""
        return self.augment if self.hflip else "none"

    def check_length(self) -> None:
        """With ``max_steps`` the epochs follow from the data (:func:`build_run`): setting both is
        refused, as one would silently win."""
        if self.max_steps is not None and self.epochs is not None:
            raise BenchError(f"epochs={self.epochs} and max_steps={self.max_steps} both set; set one "
                             "(max_steps=none to count epochs)")

    def resolved(self, domain: Domain, backbone: str) -> TrainConfig:
        self.check_length()
        return replace(
            self,
            epochs=self.epochs if self.epochs is not None or self.max_steps is not None else domain.epochs,
            lr=self.lr if self.lr is not None else domain.lr,
            loss=self.loss if self.loss is not None else domain.loss,
            image_size=self.image_size or BACKBONES.get(backbone).image_size,
        )


TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig))


def train_config_from(overrides: dict[str, str], base: TrainConfig) -> TrainConfig:
    """Apply ``--set`` strings to the train settings they name (parsed and range-checked)."""
    cfg = apply_overrides(base, overrides)
    cfg.check_length()
    return cfg


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
    resumed_from: dict[str, int] | None = None  # where a resumed run picked up (1-based epoch, batches done)
    expert_usage: dict[str, list[list[int]]] | None = None  # test set -> layers x experts routed counts
    metrics_by_prompt: dict[str, dict[str, dict[str, Any]]] | None = None  # mode -> test set -> metrics
    compile_seconds: float | None = None  # time torch.compile spent (compile != off)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def compute_loss(out, batch: dict, domain: Domain, loss_key: str) -> torch.Tensor:
    fn = LOSSES.get(loss_key)
    if domain.task == "multiclass":
        return fn(out.logits, out.class_logits, batch["mask"])
    if loss_key in IOU_LOSSES:
        if out.iou_pred is None:
            raise BenchError(f"loss {loss_key} needs the IoU head's prediction, which this model does not give")
        return fn(out.logits.float(), batch["mask"], iou_pred=out.iou_pred.float())
    return fn(out.logits.float(), batch["mask"])


def _loader(ds, *, batch_size: int, shuffle: bool, seed: int, num_workers: int, shard: bool = False) -> DataLoader:
    """``shard``: split across DDP ranks (training only; every rank evaluates the whole set)."""
    sampler = dist.sampler(ds, shuffle=shuffle, seed=seed) if shard else None
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=num_workers, generator=gen, drop_last=False,
    )


@dataclass
class Run:
    """Everything one run's steps share, built once by :func:`build_run`."""

    cfg: TrainConfig
    domain: Domain
    data_root: Path
    seed: int
    device: torch.device
    model: Any
    method_cfg: Any
    train_model: torch.nn.Module  # the model, or its DDP wrapper
    params: list[torch.nn.Parameter]
    train_loader: DataLoader
    val_loader: DataLoader
    accum: int
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    ctx: Any
    fingerprint: dict
    state_path: Path | None
    progress_bars: bool
    best_state: dict | None = None
    expert_usage: dict[str, list[list[int]]] | None = None  # set by test_best for a routing method
    metrics_by_prompt: dict[str, dict[str, dict[str, Any]]] | None = None  # set by test_best for a prompted run
    cache: FeatureCache | None = None  # the frozen encoder's outputs (train and val), when it applies

    def save(self, progress: Progress, epoch_generator: torch.Tensor) -> None:
        if self.state_path is not None:
            save_state(self.state_path, fingerprint=self.fingerprint, progress=progress, model=self.model,
                       opt=self.opt, sched=self.sched, scaler=self.scaler, best_state=self.best_state,
                       epoch_generator_state=epoch_generator)


def build_run(*, method: str, backbone: str, domain: Domain, seed: int, data_root: Path, checkpoint: Path | None,
              method_overrides: dict[str, str], cfg: TrainConfig, device: torch.device,
              state_path: Path | None, progress: bool) -> Run:
    """Model (built where it runs), loaders, optimiser, lr schedule and autocast of one run."""
    seed_everything(seed)
    classes = domain.num_classes if domain.task == "multiclass" else 1
    read = checkpoint if METHODS.get(method).pretrained else None  # from_scratch reads no weights
    model, method_cfg = build_model(
        backbone, method, num_classes=classes, checkpoint=read, overrides=method_overrides,
        device=device,  # built where it runs: a ViT-H initialised on the CPU costs seconds per run
        attention=cfg.attention, moe_kernel=cfg.moe_kernel,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    trains = METHODS.get(method).trains
    if not trains:  # a reference row (zero-shot): no epoch, evaluated as built
        cfg = replace(cfg, epochs=0)
        params = [torch.nn.Parameter(torch.zeros((), device=device))]  # AdamW refuses an empty list; never stepped
    size = cfg.image_size
    augment = build_augment(cfg.augmentation, size=size, binary=domain.task == "binary")
    train_ds = SegmentationDataset(domain, data_root, "train", size=size, train=cfg.augmentation == "hflip",
                                   augment=augment)
    if cfg.max_train_images:
        train_ds.samples = train_ds.samples[: cfg.max_train_images]
    if len(train_ds) == 0:
        raise BenchError(f"domain {domain.key}: the train split is empty under {data_root}")
    val_loader = _loader(_eval_dataset(cfg, domain, data_root, "val"),
                         batch_size=cfg.batch_size, shuffle=False, seed=seed, num_workers=cfg.num_workers)
    train_loader = _loader(train_ds, batch_size=cfg.batch_size, shuffle=True, seed=seed,
                           num_workers=cfg.num_workers, shard=True)
    accum = max(1, cfg.effective_batch // (cfg.batch_size * dist.world_size()))
    if cfg.max_steps is not None and trains:
        cfg = replace(cfg, epochs=math.ceil(cfg.max_steps / math.ceil(len(train_loader) / accum)))
    total_steps = cfg.max_steps or max(1, math.ceil(len(train_loader) / accum) * cfg.epochs)
    if cfg.optimizer == "adamw":
        opt = make_adamw(params, lr=cfg.lr, weight_decay=cfg.weight_decay, kernel=cfg.adamw_kernel, device=device)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr)
    sched = build_schedule(opt, cfg.schedule, total_steps=total_steps, poly_power=cfg.poly_power,
                           restart_steps=cfg.restart_steps)
    ctx, scaler = autocast(device, cfg.precision)
    fingerprint = {"method": method, "backbone": backbone, "domain": domain.key, "seed": seed,
                   "method_config": asdict(method_cfg), "train": asdict(cfg), "data_root": str(data_root),
                   "checkpoint": str(read) if read else None}
    # The cache's keys name the official flip only: any other augmentation makes every image new.
    cache_mode = cfg.feature_cache if cfg.augmentation in ("hflip", "none") else "off"
    cache = attach_feature_cache(model, mode=cache_mode, budget_gib=cfg.feature_cache_gib,
                                 flips=cfg.augmentation == "hflip")
    if cache is None:  # a cached encoder keeps no activations to recompute
        set_checkpointing(model, cfg.checkpointing)
    set_compile(model, cfg.compile)  # last: it compiles what the levers above installed
    return Run(cfg, domain, data_root, seed, device, model, method_cfg, dist.wrap(model, device), params,
               train_loader, val_loader, accum, opt, sched, scaler, ctx, fingerprint, state_path, progress,
               cache=cache)


def _eval_dataset(cfg: TrainConfig, domain: Domain, data_root: Path, split: str) -> SegmentationDataset:
    ds = SegmentationDataset(domain, data_root, split, size=cfg.image_size, train=False)
    if cfg.max_eval_images:
        ds.samples = ds.samples[: cfg.max_eval_images]
    return ds


def _optimizer_step(run: Run) -> None:
    """Clip (after unscaling, under fp16) and step; then zero the gradients and advance the lr."""
    if run.scaler:
        run.scaler.unscale_(run.opt)
    torch.nn.utils.clip_grad_norm_(run.params, run.cfg.grad_clip)
    if run.scaler:
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    run.sched.step()


def epoch_batches(run: Run, epoch: int) -> int:
    """The batches epoch ``epoch`` (0-based) trains: all, but in a ``max_steps`` run only up to the
    run's last optimiser step (whole accumulations, so the last batch steps)."""
    n = len(run.train_loader)
    if run.cfg.max_steps is None:
        return n
    steps_left = run.cfg.max_steps - epoch * math.ceil(n / run.accum)
    return max(0, min(n, steps_left * run.accum))


def train_epoch(run: Run, progress: Progress, *, resume_rng: dict | None = None) -> None:
    """Train the epoch ``progress.epoch`` from batch ``progress.batch`` on (0: from the start).

    Resuming mid-epoch replays the epoch's data order (the loader's generator was restored by the
    caller), skips the batches already trained and then restores the RNG states saved after them.
    A stop request (SIGTERM/SIGUSR1) is honoured after the optimiser step in progress: the state
    is written and :class:`Preempted` raised.
    """
    loader, domain, cfg = run.train_loader, run.domain, run.cfg
    plan = cfg.prompt_plan(domain)
    run.train_model.train()
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(progress.epoch)
    epoch_generator = loader.generator.get_state()
    batches = iter(loader)
    for _ in range(progress.batch):
        next(batches)
    if resume_rng is not None:
        set_rng_state(resume_rng)
    run.opt.zero_grad(set_to_none=True)
    end = epoch_batches(run, progress.epoch)
    for i in range(progress.batch, end):
        batch = next(batches)
        last = (i + 1) % run.accum == 0 or i + 1 == end
        images = batch["image"].to(run.device)
        batch = {**batch, "mask": batch["mask"].to(run.device)}
        prompts = plan.training(batch, seed=run.seed, epoch=progress.epoch)
        with dist.maybe_no_sync(run.train_model, not last), run.ctx, cached(run.cache, "train", batch):
            out = run.train_model(images) if prompts is None else run.train_model(images, prompts)
            loss = compute_loss(out, batch, domain, cfg.loss) + out.aux_loss.float()
        if not torch.isfinite(loss):
            raise RunFailed(f"loss became {loss.item()} at epoch {progress.epoch + 1}, batch {i + 1}")
        scaled = loss / run.accum
        (run.scaler.scale(scaled) if run.scaler else scaled).backward()
        progress.running += loss.item()
        progress.n_batches += 1
        if last:
            _optimizer_step(run)
            if i + 1 < end and stop_requested():
                progress.batch = i + 1
                run.save(progress, epoch_generator)
                raise Preempted(f"stopped at epoch {progress.epoch + 1}, batch {i + 1}")
    progress.batch = end


def _mean_over_ranks(value: float) -> float:
    """``value`` averaged over the DDP ranks (itself in one process): every rank must keep the same epoch."""
    if dist.world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=dist.collective_device())
    torch.distributed.all_reduce(t)
    return t.item() / dist.world_size()


def validate_and_keep_best(run: Run, progress: Progress) -> float:
    """Score the epoch on the validation split; keep the trainable state if it is the best so far:
    by the validation metric (``select=val``) or by the epoch's mean training loss (``train_loss``)."""
    metric = run.domain.val_metric
    plan = run.cfg.prompt_plan(run.domain)
    if plan.train.prompted:  # the training mode, test-time sampling (benchmark/train/prompting.py)
        modes = {plan.train.key: plan.validation(seed=run.seed)}
        val = evaluate_modes(run.model, run.val_loader, run.domain, (metric,), run.device, run.cfg.precision,
                             "val", modes, progress=run.progress_bars, cache=run.cache)[plan.train.key]
    else:
        val = evaluate(run.model, run.val_loader, run.domain, (metric,), run.device, run.cfg.precision, "val",
                       progress=run.progress_bars, cache=run.cache)
    score = val[metric]
    mean_loss = progress.running / max(progress.n_batches, 1)
    progress.history.append({"epoch": progress.epoch + 1, "train_loss": mean_loss, metric: score})
    best = progress.best_score
    if run.cfg.select == "train_loss":
        value, higher = _mean_over_ranks(mean_loss), False
    else:
        value, higher = score, run.domain.val_higher_is_better  # the metric's own direction
    if best is None or (value > best if higher else value < best):
        progress.best_score, progress.best_epoch, progress.stale = value, progress.epoch + 1, 0
        run.best_state = run.model.trainable_state_dict()
    else:
        progress.stale += 1
    return score


def test_best(run: Run, progress: Progress, best_path: Path | None,
              writer: PredictionWriter | None = None) -> dict[str, dict[str, Any]]:
    """Load the best trainable state (saving it if asked), then score every test set (``writer``:
    save its first predictions); a routing method's expert counts go to ``run.expert_usage``. A
    prompted run scores each test set once per ``eval_prompts`` mode (``run.metrics_by_prompt``)
    and returns the first mode's metrics."""
    if run.best_state is not None:
        run.model.load_state_dict(run.best_state, strict=False)
        if best_path is not None and run.cfg.save_best and dist.is_main():
            save_torch_atomic(run.best_state, best_path)
    results: dict[str, dict[str, Any]] = {}
    plan = run.cfg.prompt_plan(run.domain)
    modes = plan.tests(seed=run.seed) if plan.by_mode else None
    for test_set in run.domain.tests:
        ds = _eval_dataset(run.cfg, run.domain, run.data_root, test_set)
        loader = _loader(ds, batch_size=run.cfg.batch_size, shuffle=False, seed=run.seed,
                         num_workers=run.cfg.num_workers)
        reset_expert_counts(run.model)
        by_mode = evaluate_modes(run.model, loader, run.domain, run.domain.test_metrics, run.device,
                                 run.cfg.precision, test_set, modes, protocol=run.cfg.eval_protocol,
                                 progress=run.progress_bars,
                                 sink=writer.sink(test_set) if writer is not None else None)
        results[test_set] = next(iter(by_mode.values()))
        if modes is not None:
            run.metrics_by_prompt = run.metrics_by_prompt or {m: {} for m in modes}
            for m, values in by_mode.items():
                run.metrics_by_prompt[m][test_set] = values
        counts = expert_counts(run.model)
        if counts is not None:
            run.expert_usage = {**(run.expert_usage or {}), test_set: counts}
    return results


def _restore(run: Run, state: dict) -> Progress:
    """Put a saved state back into the run's model, optimiser, schedule, scaler and loader."""
    run.model.load_state_dict(state["trainable"], strict=False)
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    if run.scaler is not None and state["scaler"] is not None:
        run.scaler.load_state_dict(state["scaler"])
    run.best_state = state["best_state"]
    run.train_loader.generator.set_state(state["epoch_generator"])
    return state["progress"]


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
    state_path: Path | None = None,
    progress: bool = True,
    writer: PredictionWriter | None = None,
) -> RunResult:
    """One run; raises RunFailed (or BenchError for bad input) on failure, Preempted on a stop request.

    With ``state_path``, the run resumes from the state found there and writes its own at the end
    of every epoch (the caller removes it once the record is written).
    """
    cfg = train_cfg.resolved(domain, backbone)
    check_config(cfg)
    cfg.prompt_plan(domain)  # a bad prompt setting fails before any compute
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    compiled_before = compile_seconds()
    run = build_run(method=method, backbone=backbone, domain=domain, seed=seed, data_root=data_root,
                    checkpoint=checkpoint, method_overrides=method_overrides, cfg=cfg, device=device,
                    state_path=state_path, progress=progress)
    state = load_state(state_path, run.fingerprint) if state_path is not None else None
    prog = _restore(run, state) if state is not None else Progress()
    resumed_from = {"epoch": prog.epoch + 1, "batch": prog.batch} if state is not None else None
    resume_rng = state["rng"] if state is not None else None

    t0 = time.perf_counter() - prog.train_seconds
    cfg = run.cfg  # a reference row that trains nothing has 0 epochs
    bar = tqdm(total=cfg.epochs, initial=prog.epoch, desc=f"{method}/{domain.key}/s{seed}", leave=False,
               disable=not (progress and dist.is_main()), dynamic_ncols=True)
    while not prog.done and prog.epoch < cfg.epochs:
        if prog.batch == 0 and resume_rng is not None:  # resumed at an epoch boundary
            set_rng_state(resume_rng)
            resume_rng = None
        train_epoch(run, prog, resume_rng=resume_rng)
        resume_rng = None
        score = validate_and_keep_best(run, prog)
        prog.done = (cfg.patience is not None and prog.stale >= cfg.patience) or prog.epoch + 1 == cfg.epochs
        prog.epoch, prog.batch, prog.running, prog.n_batches = prog.epoch + 1, 0, 0.0, 0
        prog.train_seconds = time.perf_counter() - t0
        run.save(prog, run.train_loader.generator.get_state())
        bar.update(1)
        bar.set_postfix(**{domain.val_metric: f"{score:.4f}"})
        if not prog.done and stop_requested():
            raise Preempted(f"stopped after epoch {prog.epoch}")
    bar.close()
    train_seconds = prog.train_seconds

    t1 = time.perf_counter()
    results = test_best(run, prog, best_path, writer if dist.is_main() else None)
    eval_seconds = time.perf_counter() - t1
    peak, kind = peak_memory(device)
    trainable, total = count_parameters(run.model)
    return RunResult(
        metrics=results, val_history=prog.history, best_epoch=prog.best_epoch,
        trainable_params=trainable, total_params=total,
        train_seconds=train_seconds, eval_seconds=eval_seconds,
        peak_memory_mb=peak, peak_memory_kind=kind,
        config={"method": asdict(run.method_cfg), "train": asdict(cfg)},
        resumed_from=resumed_from, expert_usage=run.expert_usage, metrics_by_prompt=run.metrics_by_prompt,
        compile_seconds=max(0.0, compile_seconds() - compiled_before) if cfg.compile != "off" else None,
    )
