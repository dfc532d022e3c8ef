"""Cost of single layers, forward + backward, before and after the speed levers of issue 10.

``sam-peft-bench bench layers`` times, at the shapes they meet inside SAM at 1024x1024:

- ``conv_lora``: a Conv-LoRA qkv layer (frozen Linear C -> 3C, rank 3, the MoE of 8 experts in
  training mode, noisy top-1 routing) at ViT-H's windowed (25, 14, 14, 1280) and global
  (1, 64, 64, 1280) shapes; variants ``interpolate`` (the experts resample with ``F.interpolate``,
  as the reference code), ``matmul`` (the cached per-axis matrices, what the suite runs) and
  ``grouped`` (the same experts computed all at once: ``moe_kernel=grouped``);
- ``moe``: the same MoE-conv step alone, on its rank-3 map (what the variants change);
- ``lora``: a plain LoRA qkv layer at the same shapes, for scale;
- ``attention``: a ViT-B encoder attention with relative positions, global (1, 64, 64, 768) and
  windowed (25, 14, 14, 768), variants ``sam`` (segment-anything's computation), ``sdpa`` (the
  bias as SDPA's mask) and ``folded`` (the bias folded into q and k, no mask).

The input requires a gradient (as inside the encoder, where earlier blocks train too). Every
(case, shape, variant) runs in its own subprocess, so the peak memory belongs to it alone: on
CUDA ``max_memory_allocated``, on the CPU the process's max RSS minus its RSS once the layer and
input exist. Routing noise is seeded per iteration, the same for both variants. Times: mean,
median and min over the iterations (a global block routes its one sample to one expert per
iteration, so its median and min are one expert's cost; on a shared CPU the min is the most
stable figure, and ``--threads 1`` avoids the stalls of OpenMP threads waiting for busy cores).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

CASES = {
    "conv_lora": ("interpolate", "matmul", "grouped"),
    "moe": ("interpolate", "matmul", "grouped"),
    "lora": ("-",),
    "attention": ("sam", "sdpa", "folded"),
}
SHAPES = {  # case family -> {shape name: (N, H, W, C)}
    "vit_h": {"window": (25, 14, 14, 1280), "global": (1, 64, 64, 1280)},
    "vit_b": {"window": (25, 14, 14, 768), "global": (1, 64, 64, 768)},
}


def _rss_mib() -> float:
    """Current resident set size (Linux), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_layer(case: str, variant: str, shape: tuple[int, int, int, int], device: torch.device) -> nn.Module:
    """The module a case times; (N, H, W, C) in, same leading shape out."""
    from methods.conv_lora import ConvLoRAConfig, MoEConv, official_expert
    from methods.layers import LoRALinear

    c = shape[-1]
    if case == "attention":
        from segment_anything.modeling.image_encoder import Attention

        from benchmark.model.attention import set_attention

        grid = shape[1]
        layer = Attention(c, num_heads=12, qkv_bias=True, use_rel_pos=True, input_size=(grid, grid))
        with torch.no_grad():  # zero at init; random, so the bias is real work
            layer.rel_pos_h.normal_()
            layer.rel_pos_w.normal_()
        set_attention(layer, variant)
        return layer.to(device)
    if case == "lora":
        base = nn.Linear(c, 3 * c, device=device).requires_grad_(False)
        return LoRALinear(base, rank=3, alpha=32.0).train()
    moe = MoEConv(ConvLoRAConfig(), device=device).train()
    moe.moe_kernel = "grouped" if variant == "grouped" else "loop"
    if variant == "interpolate":  # the reference resampling, on these experts only
        for expert in moe.experts:
            expert.forward = functools.partial(official_expert, expert)
    if case == "moe":
        return moe
    base = nn.Linear(c, 3 * c, device=device).requires_grad_(False)
    return LoRALinear(base, rank=3, alpha=32.0, mid=moe).train()


def measure(case: str, shape_name: str, variant: str, *, repeat: int, warmup: int, device: str,
            precision: str, threads: int | None = None) -> dict:
    """Mean fwd+bwd time and peak memory of one (case, shape, variant) in this process."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    family = "vit_b" if case == "attention" else "vit_h"
    shape = SHAPES[family][shape_name]
    torch.manual_seed(0)
    layer = build_layer(case, variant, shape, dev)
    in_shape = (*shape[:3], 3) if case == "moe" else shape
    x = torch.randn(in_shape, device=dev, requires_grad=True)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    ctx = torch.autocast(dev.type, dtype=dtype) if dtype else torch.autocast(dev.type, enabled=False)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev) / 2**20 if dev.type == "cuda" else _rss_mib()
    times = []
    for i in range(warmup + repeat):
        torch.manual_seed(1000 + i)  # the same routing noise for both variants
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        with ctx:
            out = layer(x)
        out.float().square().mean().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t)
        x.grad = None
        layer.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _max_rss_mib()
    torch.manual_seed(1000)
    with count_operators() as counted, ctx:
        out = layer(x)
    with count_operators() as counted_bwd:
        out.float().square().mean().backward()
    return {
        "case": case, "shape": shape_name, "dims": list(in_shape), "variant": variant,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "precision": precision,
        "ms": round(1000 * statistics.mean(times), 2), "ms_median": round(1000 * statistics.median(times), 2),
        "ms_min": round(1000 * min(times), 2), "peak_mib": round(peak - base, 1),
        "ops": counted["ops"] + counted_bwd["ops"], "syncs": counted["syncs"] + counted_bwd["syncs"],
    }


# Calls whose result the host must read before it can go on: each a device sync on a GPU.
_SYNCING = frozenset({"tolist", "item", "nonzero", "__bool__", "__int__", "__float__", "__index__"})


@contextlib.contextmanager
def count_operators():
    """Count the ATen operators that run below autograd (forward and backward alike), views
    excluded: about the kernels a GPU launches, whose launch cost dominates a layer of tiny maps;
    and the ``syncs``, calls that make the host wait for the device (``nonzero``, ``.tolist()``,
    ``.item()``, a tensor's truth value), counted where they are called."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = {"ops": 0, "syncs": 0}

    class Operators(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts["ops"] += not func.is_view
            return func(*args, **(kwargs or {}))

    class Syncs(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            counts["syncs"] += getattr(func, "__name__", "") in _SYNCING
            return func(*args, **(kwargs or {}))

    with Syncs(), Operators():
        yield counts


def run_all(args: argparse.Namespace) -> list[dict]:
    rows = []
    for case in args.cases.split(","):
        if case not in CASES:
            from benchmark.core.errors import BenchError

            raise BenchError(f"bench layers: unknown case {case!r}; valid: {', '.join(CASES)}")
        for shape in args.shapes.split(","):
            for variant in CASES[case]:
                cmd = [sys.executable, "-m", "benchmark.perf.layers", "--one", f"{case}:{shape}:{variant}",
                       "--repeat", str(args.repeat), "--warmup", str(args.warmup), "--device", args.device,
                       "--precision", args.precision]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    rows.append({"case": case, "shape": shape, "variant": variant, "error": tail})
                else:
                    rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(f"{case} {shape} {variant}: {rows[-1].get('ms', rows[-1].get('error'))}", file=sys.stderr)
    return rows


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    from tabulate import tabulate

    table = [
        (r["case"], r["shape"], "x".join(map(str, r["dims"])), r["variant"], r["ms"], r["ms_median"], r["ms_min"],
         r["peak_mib"], r["ops"], r["syncs"])
        if "error" not in r else (r["case"], r["shape"], "", r["variant"], "", "", "", r["error"], "", "")
        for r in rows
    ]
    ok = next((r for r in rows if "error" not in r), None)
    head = f"{ok['device']}, {ok['threads']} threads, {ok['precision']}\n\n" if ok else ""
    return head + tabulate(table, headers=("case", "block", "input", "variant", "fwd+bwd ms (mean)", "median",
                                           "min", "peak MiB (added)", "operators", "syncs"), tablefmt="github")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated among {', '.join(CASES)}")
    p.add_argument("--shapes", default="window,global")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast dtype")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--format", default="markdown", choices=("markdown", "json"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one", default=None, help="case:shape:variant, measured in this process, printed as JSON")
    add_arguments(p)
    args = p.parse_args()
    if args.one:
        case, shape, variant = args.one.split(":")
        print(json.dumps(measure(case, shape, variant, repeat=args.repeat, warmup=args.warmup, device=args.device,
                                 precision=args.precision, threads=args.threads)))
    else:
        print(render(run_all(args), args.format))


if __name__ == "__main__":
    main()
