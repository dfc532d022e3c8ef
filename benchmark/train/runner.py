"""``sam-peft-bench run``: the (method x domain x seed) grid, resumable, shardable, one record per run.

A record is one JSON file, ``<out>/<backbone>/<domain>/<method>/seed<seed>.json``, written
atomically (temporary file, then rename), also for a failed run. An ok record is neither rerun nor
rewritten unless ``--force``; a failed one is retried. ``--shard K/N`` takes every N-th run of the
grid's fixed order starting at the K-th, so N array jobs writing into one folder cover it exactly
once. Bad input that concerns the whole grid (unknown method, missing checkpoint, wrong data root)
fails at once, before any compute; a failing run is recorded and the grid goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import torch
from tqdm import tqdm

from benchmark.core.errors import BenchError
from benchmark.core.io import remove_stale_temporaries, write_json_atomic
from benchmark.data.domains import DOMAINS, Domain
from benchmark.data.predictions import PredictionWriter, domain_folder, run_folder
from benchmark.model.backbones import BACKBONES
from benchmark.train import dist
from benchmark.train.engine import TRAIN_KEYS, RunFailed, TrainConfig, train_and_evaluate, train_config_from
from benchmark.train.provenance import GridProvenance
from benchmark.train.resume import (
    PREEMPTED_EXIT,
    Preempted,
    StateMismatch,
    install_signal_handlers,
    state_path_for,
)
from methods import METHODS, make_config

SYNTH_VERSION = "v1"


@dataclass(frozen=True)
class Preset:
    """A named set of grid defaults. ``train`` overrides the domain's recipe where set."""

    name: str
    backbone: str
    train: TrainConfig
    needs_checkpoint: bool
    needs_data: bool
    synth_n: int = 8
    mini_sam: bool = False  # without --checkpoint, start from the cached miniature pretrained SAM
    description: str = ""


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper", "sam_vit_h", TrainConfig(), needs_checkpoint=True, needs_data=True,
        description="the official settings: SAM ViT-H at 1024x1024, per-domain epochs and lr",
    ),
    # Smoke: 64 optimiser steps per run (32 images, 4 epochs, effective batch 2 rather than the
    # official 4: twice the steps for the same compute; from scratch needs them to find thin roads).
    "smoke": Preset(
        "smoke", "sam_tiny",
        TrainConfig(epochs=4, lr=5e-3, batch_size=2, effective_batch=2, patience=10, save_best=False, num_threads=1),
        needs_checkpoint=False, needs_data=False, synth_n=32, mini_sam=True,
        description="pipeline check: the miniature pretrained SAM fine-tuned on synthetic data, 4 epochs",
    ),
    # SAM2LoRA as its authors trained it (docs/FIDELITY.md#sam2lora-optimisation): 120,000 micro-
    # batches of 2 with 4 accumulations = 30,000 optimiser steps; fp16 with a GradScaler as theirs,
    # clipped after unscaling (their clipping of scaled gradients is not copied); the lowest
    # training loss kept as theirs; their augmentation on 8 loader workers (it is CPU work); trained
    # with 5 positive points and tested under their six prompt modes (docs/FIDELITY.md#sam2lora-prompts).
    "sam2lora": Preset(
        "sam2lora", "sam2_hiera_l",
        TrainConfig(
            lr=1e-4, weight_decay=3e-4, schedule="cosine_restarts", restart_steps=1000, batch_size=2,
            effective_batch=8, max_steps=30_000, loss="sam2lora", augment="sam2lora", precision="fp16",
            grad_clip=1.0, select="train_loss", patience=None, num_workers=8,
            prompt="points:5", eval_prompts=("all",),  # their training prompts; their six test modes
        ),
        needs_checkpoint=True, needs_data=True,
        description="SAM2LoRA's recipe: SAM2.1 Hiera-L, their loss, schedule, augmentation, 30k optimiser steps",
    ),
}


@dataclass(frozen=True)
class RunKey:
    method: str
    backbone: str
    domain: str
    seed: int

    def path(self, out: Path) -> Path:
        return out / self.backbone / self.domain / self.method / f"seed{self.seed}.json"

    def label(self) -> str:
        return f"{self.method}/{self.domain}/seed{self.seed}"


def grid(methods: list[str], domains: list[str], seeds: list[int], backbone: str) -> list[RunKey]:
    """The grid in its fixed order: domain, then method, then seed."""
    return [RunKey(m, backbone, d, s) for d in domains for m in methods for s in seeds]


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 1, 1
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise BenchError(f"--shard must look like K/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= k <= n:
        raise BenchError(f"--shard {text}: need 1 <= K <= N")
    return k, n


def shard_of(keys: list[RunKey], k: int, n: int) -> list[RunKey]:
    return keys[k - 1 :: n]


def read_status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None  # unreadable: treat as absent and redo


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("sam-peft-bench", "torch", "torchvision", "segment-anything", "numpy", "pysodmetrics", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    out["cuda"] = torch.version.cuda or "none"
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def smoke_data_root(n: int, seed: int = 0, domains: list[str] | None = None) -> Path:
    """Synthetic data for ``domains`` (default: every domain) in a cache folder, each generated once
    per (version, n, seed)."""
    import fcntl

    from benchmark.data.datasets import is_synthetic
    from benchmark.data.synth import synth_domain

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sam-peft-bench"
    root = cache / f"synth-{SYNTH_VERSION}-n{n}-seed{seed}"
    root.mkdir(parents=True, exist_ok=True)
    # Shards of one grid start together: one writes, the others wait and then find it done.
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for key in domains or DOMAINS.keys():
            if not is_synthetic(key, root):
                synth_domain(key, root, n=n, seed=seed)
    return root


def split_overrides(sets: list[str], methods: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``--set`` items -> (per-method options, train options). ``method.key=v`` targets one method;
    a bare key goes to the train settings if it names one, else to every method that has it."""
    per_method: dict[str, dict[str, str]] = {m: {} for m in methods}
    train: dict[str, str] = {}
    for item in sets:
        if "=" not in item:
            raise BenchError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        if "." in key:
            m, k = key.split(".", 1)
            if m not in per_method:
                raise BenchError(f"--set {item}: method {m!r} is not in this grid")
            per_method[m][k] = value
        elif key in TRAIN_KEYS:
            train[key] = value
        else:
            takers = [m for m in methods if key in asdict(make_config(m))]
            if not takers:
                raise BenchError(f"--set {item}: no selected method has option {key!r} and it is not a train setting")
            for m in takers:
                per_method[m][key] = value
    for m, opts in per_method.items():
        make_config(m, opts)  # validate now, before any compute
    return per_method, train


def check_losses(train_cfg: TrainConfig, domains: list[str]) -> None:
    """A loss override must suit every selected domain's task (binary losses vs the set loss)."""
    from benchmark.train.losses import LOSSES, MULTICLASS_LOSSES

    if train_cfg.loss is None:
        return
    LOSSES.get(train_cfg.loss)
    wanted = "multiclass" if train_cfg.loss in MULTICLASS_LOSSES else "binary"
    clash = [d for d in domains if DOMAINS.get(d).task != wanted]
    if clash:
        raise BenchError(f"loss {train_cfg.loss} is for {wanted} domains; {', '.join(clash)} "
                         f"{'is' if len(clash) == 1 else 'are'} not (leave them out of --domains)")


def _record(key: RunKey, *, preset: str, status: str, error: str | None, provenance: dict, extra: dict) -> dict:
    return {
        "method": key.method, "backbone": key.backbone, "domain": key.domain, "seed": key.seed,
        "status": status, "error": error, "preset": preset,
        **provenance,  # data, checkpoint, method_pretrained (benchmark/train/provenance.py)
        **extra,
        "versions": versions(), "git_commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_grid(
    *,
    methods: list[str],
    domains: list[str],
    seeds: list[int],
    out: Path,
    preset: str = "smoke",
    backbone: str | None = None,
    checkpoint: Path | None = None,
    data_root: Path | None = None,
    sets: list[str] | None = None,
    shard: str | None = None,
    force: bool = False,
    device: str | None = None,
    progress: bool = True,
    save_predictions: int = 0,
) -> list[dict]:
    """Run (or resume) the grid; returns the records of the runs done now (ok and failed).

    ``save_predictions``: write each run's first N predictions per test set as PNG
    (:mod:`benchmark.data.predictions`); an ok record that is skipped writes none.
    """
    p = PRESETS.get(preset)
    if p is None:
        raise BenchError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    backbone = backbone or p.backbone
    BACKBONES.get(backbone)
    per_method, train_sets = split_overrides(sets or [], methods)
    train_cfg = train_config_from(train_sets, p.train)
    check_losses(train_cfg, domains)
    for d in domains:
        train_cfg.prompt_plan(DOMAINS.get(d))  # prompts on a multi-class domain: refused now
    if p.needs_checkpoint and checkpoint is None and any(METHODS.get(m).pretrained for m in methods):
        raise BenchError(f"the {preset} preset needs --checkpoint (e.g. sam_vit_h_4b8939.pth)")
    if checkpoint is not None:
        from benchmark.model.checkpoints import verify_checkpoint

        verify_checkpoint(checkpoint, backbone)  # a wrong or corrupt file fails the grid now
    if data_root is None:
        if p.needs_data:
            raise BenchError(f"the {preset} preset needs --data-root (see `sam-peft-bench data download`)")
        data_root = smoke_data_root(p.synth_n, domains=domains)
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise BenchError(f"data root not found: {data_root}")
    from benchmark.data.checks import validate_or_raise
    from benchmark.data.datasets import resolve_domain_root

    for d in domains:
        resolve_domain_root(d, data_root)  # a wrong or empty data root fails now, before any compute
    from benchmark.train.pretrain import MINI_RECIPES, ensure_mini_sam

    # After the checks above: an uncached build takes a minute or two, and only methods that start
    # from a checkpoint wait for it (run_all.sh runs from_scratch while it builds). A backbone
    # without a recipe (sam2_tiny, the SAM2 smoke step) starts from random weights, and its records say so.
    if checkpoint is None and p.mini_sam and any(METHODS.get(m).pretrained for m in methods):
        if backbone in MINI_RECIPES:
            checkpoint = ensure_mini_sam(backbone, progress=progress and dist.is_main())
        elif dist.is_main():
            print(f"note: {backbone} has no miniature pretraining recipe: the smoke runs start from "
                  f"random weights", file=sys.stderr)
    dev = dist.init_from_env(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
    provenance = GridProvenance(data_root, checkpoint, progress=progress and dist.is_main())
    k, n = parse_shard(shard)
    todo = shard_of(grid(methods, domains, seeds, backbone), k, n)
    remove_stale_temporaries(out)
    done: list[dict] = []
    data_errors: dict[str, str | None] = {}
    bar = tqdm(todo, desc="grid", disable=not (progress and dist.is_main()), dynamic_ncols=True)
    for key in bar:
        path = key.path(out)
        if not force and read_status(path) == "ok":
            continue
        bar.set_postfix_str(key.label())
        if key.domain not in data_errors:
            try:
                validate_or_raise(key.domain, data_root)
                data_errors[key.domain] = None
            except BenchError as exc:
                data_errors[key.domain] = str(exc)
        record = _run_one(key, preset=preset, data_root=data_root, checkpoint=checkpoint,
                          method_overrides=per_method[key.method], train_cfg=train_cfg, device=dev,
                          data_error=data_errors[key.domain], out=out, progress=progress,
                          provenance=provenance, save_predictions=save_predictions)
        if dist.is_main():
            write_json_atomic(path, record)
            state_path_for(path).unlink(missing_ok=True)  # the record is the run's final word
            tqdm.write(summary_line(record, DOMAINS.get(key.domain)), file=sys.stderr)
        done.append(record)
    dist.barrier()
    return done


def _run_one(key: RunKey, *, preset: str, data_root: Path, checkpoint: Path | None, method_overrides: dict,
             train_cfg: TrainConfig, device: torch.device, data_error: str | None, out: Path, progress: bool,
             provenance: GridProvenance, save_predictions: int = 0) -> dict:
    domain: Domain = DOMAINS.get(key.domain)
    prov = provenance.of(key.method, key.domain)  # failed records carry it too: a failure's inputs matter
    read = checkpoint if METHODS.get(key.method).pretrained else None  # from_scratch reads no weights
    base = {"data_root": str(data_root), "checkpoint": str(read) if read else None,
            "device": str(device), "world_size": dist.world_size()}
    if data_error is not None:
        return _record(key, preset=preset, status="failed", provenance=prov, error=data_error,
                       extra={"config": base})
    writer = PredictionWriter(
        domain_folder(out, key.backbone, key.domain), run_folder(out, key.backbone, key.domain, key.method, key.seed),
        domain.task, save_predictions) if save_predictions > 0 else None
    try:
        res = train_and_evaluate(
            method=key.method, backbone=key.backbone, domain=domain, seed=key.seed, data_root=data_root,
            checkpoint=checkpoint, method_overrides=method_overrides, train_cfg=train_cfg, device=device,
            best_path=out / "checkpoints" / key.backbone / key.domain / key.method / f"seed{key.seed}.pt",
            state_path=state_path_for(key.path(out)), progress=progress, writer=writer,
        )
    except (Preempted, StateMismatch):
        raise  # not a failed run: the state is written (or kept), the command resumes it
    except (RunFailed, BenchError) as exc:
        return _record(key, preset=preset, status="failed", provenance=prov, error=str(exc),
                       extra={"config": base})
    except torch.OutOfMemoryError as exc:
        return _record(key, preset=preset, status="failed", provenance=prov,
                       error=f"out of memory: {str(exc).splitlines()[0]}",
                       extra={"config": base})
    except Exception as exc:  # any other failure is this run's, recorded; the grid goes on
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return _record(key, preset=preset, status="failed", provenance=prov,
                       error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                       extra={"config": base, "traceback_tail": tb})
    return _record(key, preset=preset, status="ok", error=None, provenance=prov, extra={
        "metrics": res.metrics, "val_history": res.val_history, "best_epoch": res.best_epoch,
        "trainable_params": res.trainable_params, "total_params": res.total_params,
        "train_seconds": round(res.train_seconds, 3), "eval_seconds": round(res.eval_seconds, 3),
        "peak_memory_mb": round(res.peak_memory_mb, 1), "peak_memory_kind": res.peak_memory_kind,
        "resumed_from": res.resumed_from,
        **({"expert_usage": res.expert_usage} if res.expert_usage is not None else {}),
        **({"metrics_by_prompt": res.metrics_by_prompt} if res.metrics_by_prompt is not None else {}),
        **({"compile_seconds": round(res.compile_seconds, 3)} if res.compile_seconds is not None else {}),
        "config": {**base, **res.config},
    })


def summary_line(record: dict, domain: Domain) -> str:
    head = f"{record['method']:<13} {record['domain']:<9} seed {record['seed']:<3}"
    if record["status"] != "ok":
        return f"{head} FAILED: {record['error']}"
    first = next(iter(domain.tests))
    metric = domain.test_metrics[0] if domain.test_metrics[0] != "class_iou" else "miou"
    value = record["metrics"][first][metric]
    return f"{head} {first}.{metric}={value:.4f}  {record['train_seconds'] + record['eval_seconds']:.1f}s"


def seed_value(text: str) -> int:
    """argparse type of ``--seeds``: a non-negative integer (a seed feeds numpy, which refuses < 0)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a non-negative integer")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    methods = METHODS.parse_list(args.methods)
    domains = DOMAINS.parse_list(args.domains)
    out = Path(args.out)
    install_signal_handlers()
    try:
        records = _grid_from_args(args, methods, domains, out)
    except Preempted as exc:
        if dist.is_main():
            print(f"preempted: {exc}; the state is saved, rerun the same command to resume "
                  f"(exit {PREEMPTED_EXIT})", file=sys.stderr)
        return PREEMPTED_EXIT
    failed = [r for r in records if r["status"] != "ok"]
    if dist.is_main():
        print(f"{len(records) - len(failed)} run(s) ok, {len(failed)} failed, records in {out}", file=sys.stderr)
        for r in failed:
            print(f"failed: {r['method']}/{r['domain']}/seed{r['seed']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


def _grid_from_args(args: argparse.Namespace, methods: list[str], domains: list[str], out: Path) -> list[dict]:
    return run_grid(
        methods=methods, domains=domains, seeds=args.seeds, out=out, preset=args.preset,
        backbone=args.backbone, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        data_root=Path(args.data_root) if args.data_root else None, sets=args.set, shard=args.shard,
        force=args.force, device=args.device, progress=not args.no_progress,
        save_predictions=args.save_predictions,
    )


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("run", help="train and evaluate a grid of methods x domains x seeds")
    p.add_argument("--methods", required=True, help="comma-separated method keys or 'all'")
    p.add_argument("--domains", required=True, help="comma-separated domain keys or 'all'")
    p.add_argument("--seeds", type=seed_value, nargs="+", default=[0], help="non-negative integers")
    p.add_argument("--preset", choices=tuple(PRESETS), default="smoke")
    p.add_argument("--backbone", default=None,
                   help="default: the preset's (paper: sam_vit_h, smoke: sam_tiny, sam2lora: sam2_hiera_l)")
    p.add_argument("--checkpoint", default=None, help="SAM weights, e.g. sam_vit_h_4b8939.pth")
    p.add_argument("--data-root", default=None, help="folder holding the unpacked archives")
    p.add_argument("--out", default="runs", help="records go to OUT/<backbone>/<domain>/<method>/seed<S>.json")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="method option (rank=4, conv_lora.rank=4) or train setting (epochs=5, lr=1e-4)")
    p.add_argument("--shard", default=None, metavar="K/N", help="run the K-th of N deterministic shares")
    p.add_argument("--force", action="store_true", help="rerun and overwrite ok records")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--save-predictions", type=seed_value, default=0, metavar="N",
                   help="write each run's first N test predictions per test set as PNG under "
                        "OUT/predictions/<backbone>/<domain>/<method>/seed<S>/<test set>/")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_run)
