"""Cost of one training step per method: median step time and peak memory.

``sam-peft-bench bench train-step --backbone sam_vit_b --methods all`` builds each method on
random weights (no checkpoint needed), runs ``warmup + steps`` optimiser steps on random images
at the backbone's input size with the official loss and autocast, and reports the median step
time and the peak memory. Each method runs in its own subprocess, so the CPU peak (process max
RSS) and the GPU peak (``torch.cuda.max_memory_allocated``) belong to that method alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch


def measure(backbone: str, method: str, *, image_size: int | None, batch: int, steps: int, warmup: int,
            precision: str, device: str, attention: str = "auto", feature_cache: str = "off",
            checkpointing: str = "off", adamw_kernel: str = "default", compile: str = "off",
            moe_kernel: str = "loop", profile: int = 0) -> dict:
    """One method's row; ``profile`` > 0 adds that many of the step's most expensive operators
    (self time on the device, or on the CPU without one), from one more step under torch.profiler."""
    from benchmark.model.attention import resolve_attention
    from benchmark.model.backbones import BACKBONES, count_parameters
    from benchmark.model.checkpointing import set_checkpointing
    from benchmark.model.compiling import compile_seconds, set_compile
    from benchmark.model.factory import build_model
    from benchmark.model.feature_cache import attach_feature_cache, cached
    from benchmark.train.amp import autocast, resolve_precision
    from benchmark.train.evaluation import peak_memory
    from benchmark.train.losses import structure_loss
    from benchmark.train.optim import make_adamw

    dev = torch.device(device)
    torch.manual_seed(0)
    model, _ = build_model(backbone, method, device=dev, attention=attention, moe_kernel=moe_kernel)
    model.train()
    trainable, total = count_parameters(model)
    size = image_size or BACKBONES.get(backbone).image_size
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_adamw(params, lr=1e-4, weight_decay=1e-4, kernel=adamw_kernel, device=dev)
    ctx, scaler = autocast(dev, precision)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = (torch.rand(batch, 1, size, size, device=dev) > 0.7).float()
    # The same images every step: with the cache, every step after the first is served (an epoch
    # after the first); a method whose encoder trains gets no cache.
    cache = attach_feature_cache(model, mode=feature_cache, budget_gib=64, flips=False)
    keys = {"index": torch.arange(batch)}
    if cache is None:
        set_checkpointing(model, checkpointing)
    set_compile(model, compile)  # compiled in the first (warm-up) step: time it with --warmup >= 1

    def step() -> None:
        with ctx, cached(cache, "train", keys):
            out = model(x)
            loss = structure_loss(out.logits.float(), y) + out.aux_loss.float()
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        (scaler.step(opt), scaler.update()) if scaler else opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times = []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        step()
        if i == 0:
            first = time.perf_counter() - t
        if i >= warmup:
            times.append(time.perf_counter() - t)
    peak, kind = peak_memory(dev)
    resolved = resolve_precision(dev, precision)
    return {
        "method": method, "backbone": backbone, "image_size": size, "batch": batch, "precision": resolved,
        "attention": resolve_attention(attention, dev), "feature_cache": "on" if cache is not None else "off",
        "checkpointing": checkpointing if cache is None else "off", "adamw_kernel": adamw_kernel,
        "compile": compile, "moe_kernel": moe_kernel, "compile_s": round(compile_seconds(), 1), "first_step_ms": round(1000 * first, 1),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "trainable": trainable, "total": total,
        "step_ms": round(1000 * statistics.median(times), 1), "peak_mib": round(peak, 1), "peak_kind": kind,
        **({"profile": profile_step(step, dev, top=profile)} if profile else {}),
    }


def profile_step(step, dev: torch.device, *, top: int) -> list[dict]:
    """The ``top`` operators of one call of ``step`` by self time on ``dev`` (device time on
    CUDA, CPU time otherwise): name, milliseconds, calls. Where a GPU step's time goes (the
    kernels of Conv-LoRA's experts, LST's side blocks...), for the next change to aim at."""
    from torch.profiler import ProfilerActivity, profile

    cuda = dev.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:top]
    return [{"op": e.key, "self_ms": round(getattr(e, key) / 1000, 2), "calls": e.count} for e in events]


def run_all(args: argparse.Namespace) -> list[dict]:
    from benchmark.model.attention import resolve_attention
    from methods import METHODS

    resolve_attention(args.attention, args.device)  # a bad name stops here, not once per method
    rows = []
    for method in (m for m in METHODS.parse_list(args.methods) if METHODS.get(m).trains):
        cmd = [sys.executable, "-m", "benchmark.perf.train_step", "--one", method, "--backbone", args.backbone,
               "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--precision", args.precision, "--device", args.device, "--attention", args.attention,
               "--feature-cache", args.feature_cache, "--checkpointing", args.checkpointing]
        cmd += ["--fused"] if args.fused else []
        cmd += ["--compile", args.compile, "--moe-kernel", args.moe_kernel, "--profile", str(args.profile)]
        if args.image_size:
            cmd += ["--image-size", str(args.image_size)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows.append({"method": method, "error": tail})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{method}: {rows[-1].get('step_ms', rows[-1].get('error'))}", file=sys.stderr)
    return rows


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    from tabulate import tabulate

    table = [
        (r["method"], f"{r['trainable'] / 1e6:.2f}", r["step_ms"], r["peak_mib"], _levers(r), r["first_step_ms"],
         r["compile_s"] if r["compile"] != "off" else "")
        if "error" not in r else (r["method"], "", "", r["error"], "", "", "")
        for r in rows
    ]
    ok = next((r for r in rows if "error" not in r), None)
    head = ""
    if ok:
        head = (f"{ok['backbone']} at {ok['image_size']}x{ok['image_size']}, batch {ok['batch']}, {ok['precision']}, "
                f"attention {ok['attention']}, {ok['device']} ({ok['peak_kind']})\n\n")
    text = head + tabulate(table, headers=("method", "trainable (M)", "step (ms, median)", "peak memory (MiB)",
                                           "levers", "first step (ms)", "compile (s)"), tablefmt="github")
    for r in rows:
        if r.get("profile"):
            ops = [(p["op"], p["self_ms"], p["calls"]) for p in r["profile"]]
            text += f"\n\n{r['method']}: one step's most expensive operators (self time)\n\n"
            text += tabulate(ops, headers=("operator", "ms", "calls"), tablefmt="github")
    return text


_LEVERS = (("feature_cache", "off", "feature cache"), ("checkpointing", "off", "checkpointing"),
           ("adamw_kernel", "default", "fused AdamW"), ("compile", "off", "compile"),
           ("moe_kernel", "loop", "grouped experts"))


def _levers(row: dict) -> str:
    """The speed levers a row ran with (those not at their default), in a few words."""
    words = [f"{label} {row[key]}" if key == "compile" else label
             for key, default, label in _LEVERS if row.get(key, default) != default]
    return ", ".join(words) or "-"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="sam_vit_b")
    p.add_argument("--methods", default="all")
    p.add_argument("--image-size", type=int, default=None, help="default: the backbone's (1024 for SAM)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--attention", default="auto",  # checked by build_model (segment-anything is slow to import)
                   help="SAM encoder attention, auto|sam|sdpa|folded (benchmark.model.attention); "
                        "auto: sdpa on CUDA, sam on CPU")
    p.add_argument("--feature-cache", default="off", choices=("auto", "off"),
                   help="auto: a frozen encoder's output is computed in the first step and served after "
                        "(decoder-only; the cost of an epoch after the first)")
    p.add_argument("--checkpointing", default="off", choices=("off", "encoder"),
                   help="encoder: activation checkpointing of the encoder blocks (benchmark.model.checkpointing)")
    p.add_argument("--fused", action="store_true",
                   help="AdamW's fused kernel on CUDA, the multi-tensor one elsewhere (benchmark.train.optim)")
    p.add_argument("--compile", default="off", choices=("off", "encoder", "model"),
                   help="torch.compile the encoder or the model; compile time in its own column")
    p.add_argument("--moe-kernel", default="loop", choices=("loop", "grouped"),
                   help="Conv-LoRA's experts one by one, or all at once (methods.conv_lora)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile one more step and list its N most expensive operators per method")
    p.add_argument("--format", default="markdown", choices=("markdown", "json"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one", default=None, help="measure one method in this process and print JSON")
    add_arguments(p)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.backbone, args.one, image_size=args.image_size, batch=args.batch,
                                 steps=args.steps, warmup=args.warmup, precision=args.precision,
                                 device=args.device, attention=args.attention,
                                 feature_cache=args.feature_cache, checkpointing=args.checkpointing,
                                 adamw_kernel="fused" if args.fused else "default", compile=args.compile,
                                 moe_kernel=args.moe_kernel, profile=args.profile)))
    else:
        print(render(run_all(args), args.format))


if __name__ == "__main__":
    main()
