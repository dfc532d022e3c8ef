"""Time per epoch of real runs, with and without the decoder-only feature cache.

``sam-peft-bench bench epochs --backbone sam_vit_b --images 2`` writes a synthetic domain
(``--images`` training images, half as many validation images, at least 2), builds the run as
``run`` does (:func:`benchmark.train.engine.build_run`, random weights) and times each epoch's
training (:func:`~benchmark.train.engine.train_epoch`) and validation separately, once per
``--feature-cache`` value. Epoch 1 with the cache runs the encoder on both flips of every
training image; the epochs after it run the decoder alone. Each setting runs in this process
one after the other (the second run's imports are warm; the cache's store is freed between).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def measure(backbone: str, method: str, *, images: int, epochs: int, feature_cache: str, batch: int,
            precision: str, device: str, domain_key: str, data_root: Path) -> list[dict]:
    from benchmark.data.domains import DOMAINS
    from benchmark.train import engine
    from benchmark.train.resume import Progress

    dev = torch.device(device)
    domain = DOMAINS.get(domain_key)
    cfg = engine.TrainConfig(epochs=epochs, lr=1e-4, batch_size=batch, effective_batch=max(4, batch),
                             precision=precision, feature_cache=feature_cache, save_best=False,
                             max_train_images=images).resolved(domain, backbone)
    run = engine.build_run(method=method, backbone=backbone, domain=domain, seed=0, data_root=data_root,
                           checkpoint=None, method_overrides={}, cfg=cfg, device=dev, state_path=None,
                           progress=False)
    progress, rows = Progress(), []
    for epoch in range(epochs):
        progress.epoch, progress.batch = epoch, 0
        t0, c0 = time.perf_counter(), time.process_time()
        engine.train_epoch(run, progress)
        _sync(dev)
        t1, c1 = time.perf_counter(), time.process_time()
        engine.validate_and_keep_best(run, progress)
        _sync(dev)
        t2, c2 = time.perf_counter(), time.process_time()
        cache = run.cache
        rows.append({
            "backbone": backbone, "method": method, "feature_cache": feature_cache, "epoch": epoch + 1,
            "train_images": len(run.train_loader.dataset), "val_images": len(run.val_loader.dataset),
            "train_s": round(t1 - t0, 2), "val_s": round(t2 - t1, 2),
            "train_cpu_s": round(c1 - c0, 2), "val_cpu_s": round(c2 - c1, 2),  # other jobs do not inflate these
            "cached": cache is not None, "hits": cache.hits if cache else 0, "misses": cache.misses if cache else 0,
            "cache_mib": round(cache.bytes / 2**20, 1) if cache else 0.0, "threads": torch.get_num_threads(),
        })
    if run.cache is not None:
        run.cache.remove()
    return rows


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_all(args: argparse.Namespace) -> list[dict]:
    from benchmark.data.synth import synth_domain

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-epochs-") as tmp:
        synth_domain(args.domain, tmp, n=max(2, args.images), seed=0)
        for mode in args.feature_cache.split(","):
            rows += measure(args.backbone, args.method, images=args.images, epochs=args.epochs, feature_cache=mode,
                            batch=args.batch, precision=args.precision, device=args.device, domain_key=args.domain,
                            data_root=Path(tmp))
    return rows


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    from tabulate import tabulate

    head = ""
    if rows:
        r = rows[0]
        head = (f"{r['backbone']}, {r['method']}, {r['train_images']} training and {r['val_images']} validation "
                f"images, {r['threads']} threads\n\n")
    table = [(r["feature_cache"], r["epoch"], r["train_s"], r["val_s"], r["train_cpu_s"], r["val_cpu_s"],
              f"{r['hits']}/{r['misses']}", r["cache_mib"]) for r in rows]
    return head + tabulate(table, headers=("feature cache", "epoch", "train (s)", "val (s)", "train (CPU s)",
                                           "val (CPU s)", "served/computed (cumulative)", "cache (MiB)"),
                           tablefmt="github")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="sam_vit_b")
    p.add_argument("--method", default="decoder_only")
    p.add_argument("--domain", default="isic2017")
    p.add_argument("--images", type=int, default=2, help="training images (validation: half, at least 2)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--feature-cache", default="auto,off", help="comma-separated settings to time, in order")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--format", default="markdown", choices=("markdown", "json"))
