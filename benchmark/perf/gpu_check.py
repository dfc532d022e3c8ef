"""``sam-peft-bench bench gpu-check``: does the suite work on this machine's GPU, and what does it cost?

One command for a fresh GPU machine with nothing downloaded. In a work folder it

1. writes a random checkpoint for the backbone with the upstream builder (segment-anything's
   ``sam_model_registry``, sam2's ``build_sam2``; our tiny test configurations use our builder,
   which composes the same upstream classes), built on the GPU;
2. writes synthetic data in the official on-disk layout for one binary domain and Trans10K;
3. runs the paper preset for every method the backbone's family takes, one short epoch, on both
   domains in bf16, and LoRA and Conv-LoRA once more in fp16 with a GradScaler, each run trained,
   validated, reloaded from its best state and tested, exactly as ``run`` does;
4. times one training step per method (``bench train-step``'s measurement, in bf16) and reads the
   peak memory;

then prints one table (method, status per pass, ms per step, peak GiB) and exits 1 naming every
failure (2 for bad input, such as no CUDA device). ``--device cpu`` runs the same plan on the CPU
under bf16/fp16 CPU autocast with CUDA's cast policy imitated (:mod:`benchmark.train.amp`), so the check
itself is tested without a GPU.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmark.core.errors import BenchError

FP16_METHODS = ("lora", "conv_lora")  # the paper's baseline and its method, once more in fp16


def write_random_checkpoint(backbone: str, path: Path, device: torch.device) -> Path:
    """A random state dict of ``backbone`` as the upstream builder makes it, saved with torch.save."""
    from benchmark.model.backbones import BACKBONES, build_sam

    spec = BACKBONES.get(backbone)
    torch.manual_seed(0)
    with torch.device(device):
        if spec.checkpoint_file is None:  # our test configurations: our builder of upstream classes
            model = build_sam(backbone, device=device)
            state = model.state_dict()
        elif spec.family == "sam":
            from segment_anything import sam_model_registry

            model = sam_model_registry[backbone.removeprefix("sam_")]()
            state = model.state_dict()
        else:
            model = build_sam(backbone, device=device)  # sam2's build_sam2 on its packaged config
            state = {"model": model.state_dict()}  # the layout of Meta's SAM2 checkpoints
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    del model, state
    return path


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _grid(label: str, *, methods: list[str], domains: list[str], precision: str, work: Path, backbone: str,
          checkpoint: Path, data_root: Path, epochs: int, device: torch.device, progress: bool) -> dict:
    """One pass of the paper preset; {(method, domain): record}."""
    from benchmark.train.runner import run_grid

    records = run_grid(
        methods=methods, domains=domains, seeds=[0], out=work / f"runs-{label}", preset="paper",
        backbone=backbone, checkpoint=checkpoint, data_root=data_root,
        sets=[f"epochs={epochs}", f"precision={precision}", "save_best=false"], force=True,
        device=str(device), progress=progress,
    )
    _free(device)
    return {(r["method"], r["domain"]): r for r in records}


def gpu_check(*, backbone: str = "sam_vit_h", device: str = "cuda", domain: str = "polyp", methods: str = "all",
              n: int = 4, epochs: int = 1, steps: int = 3, warmup: int = 1, work: Path | None = None,
              progress: bool = True) -> tuple[list[dict], dict]:
    """Run the plan; returns (rows, header). A row: method, one status per pass, step_ms, peak_gib."""
    from contextlib import nullcontext

    from benchmark.data.domains import DOMAINS
    from benchmark.data.synth import synth_domain
    from benchmark.model.backbones import BACKBONES
    from benchmark.model.factory import supports
    from benchmark.perf.train_step import measure
    from benchmark.train.amp import cuda_cast_policy
    from methods import METHODS

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"no CUDA device here (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                         f"`bench gpu-check --device cpu --backbone sam_tiny` runs the same plan on the CPU")
    BACKBONES.get(backbone)
    if DOMAINS.get(domain).task != "binary":
        raise BenchError(f"gpu-check --domain takes a binary domain; {domain} is not (Trans10K always runs)")
    chosen = [m for m in METHODS.parse_list(methods) if supports(m, backbone) and METHODS.get(m).trains]
    if not chosen:
        raise BenchError(f"no selected method is defined for {backbone}")
    fp16 = [m for m in FP16_METHODS if m in chosen]
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="gpu-check-")) if own_work else Path(work)
    # On the CPU, imitate CUDA's autocast (float32 interpolation, norms, reductions in 16-bit regions).
    policy = cuda_cast_policy() if dev.type == "cpu" else nullcontext()
    t0 = time.perf_counter()
    try:
        print(f"gpu-check: {backbone} on {device}, work folder {work}", file=sys.stderr)
        ckpt = write_random_checkpoint(backbone, work / "random_checkpoint.pth", dev)
        data = work / "data"
        for key in (domain, "trans10k"):
            synth_domain(key, data, n=n, seed=0)
        common = dict(work=work, backbone=backbone, checkpoint=ckpt, data_root=data, epochs=epochs, device=dev,
                      progress=progress)
        with policy:
            bf16 = _grid("bf16", methods=chosen, domains=[domain, "trans10k"], precision="bf16", **common)
            half = _grid("fp16", methods=fp16, domains=[domain], precision="fp16", **common) if fp16 else {}
            costs = {}
            for m in chosen:
                try:
                    if dev.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(dev)
                    costs[m] = measure(backbone, m, image_size=None, batch=1, steps=steps, warmup=warmup,
                                       precision="bf16", device=device)
                except Exception as exc:  # a cost failure is reported in its row, the check goes on
                    costs[m] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
                _free(dev)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    passes = [(f"bf16 {domain}", bf16, domain), ("bf16 trans10k", bf16, "trans10k"), (f"fp16 {domain}", half, domain)]
    rows = []
    for m in chosen:
        row = {"method": m}
        for label, records, dom in passes:
            rec = records.get((m, dom))
            row[label] = "-" if rec is None else ("ok" if rec["status"] == "ok" else f"FAILED: {rec['error']}")
        cost = costs[m]
        row["step_ms"] = cost.get("step_ms")
        row["peak_gib"] = round(cost["peak_mib"] / 1024, 2) if "peak_mib" in cost else None
        row["cost_error"] = cost.get("error")
        row["peak_kind"] = cost.get("peak_kind")
        rows.append(row)
    header = {
        "backbone": backbone, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda or "none", "passes": [p[0] for p in passes],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return rows, header


def failures(rows: list[dict], header: dict) -> list[str]:
    out = []
    for r in rows:
        out += [f"{r['method']} {label}: {r[label][8:]}" for label in header["passes"] if r[label].startswith("FAILED")]
        if r["cost_error"]:
            out.append(f"{r['method']} step timing: {r['cost_error']}")
    return out


def render(rows: list[dict], header: dict) -> str:
    from tabulate import tabulate

    def cell(text: str) -> str:
        return "FAILED" if text.startswith("FAILED") else text

    table = [
        [r["method"], *(cell(r[p]) for p in header["passes"]),
         r["step_ms"] if r["step_ms"] is not None else "FAILED",
         r["peak_gib"] if r["peak_gib"] is not None else "-"]
        for r in rows
    ]
    kind = next((r["peak_kind"] for r in rows if r["peak_kind"]), "")
    head = (f"gpu-check: {header['backbone']} on {header['device']}, torch {header['torch']}, CUDA {header['cuda']}; "
            f"{header['seconds']} s in all. Step: batch 1 at the backbone's input size, bf16, median; peak: {kind}.\n\n")
    return head + tabulate(table, headers=["method", *header["passes"], "ms/step", "peak GiB"], tablefmt="github")


def _cmd(args: argparse.Namespace) -> int:
    rows, header = gpu_check(backbone=args.backbone, device=args.device, domain=args.domain, methods=args.methods,
                             n=args.n, epochs=args.epochs, steps=args.steps, warmup=args.warmup,
                             work=Path(args.work) if args.work else None, progress=not args.no_progress)
    print(render(rows, header))
    bad = failures(rows, header)
    for line in bad:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if bad else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="sam_vit_h")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:1, or cpu (the same plan on the CPU)")
    p.add_argument("--domain", default="polyp", help="the binary domain beside Trans10K (default: polyp)")
    p.add_argument("--methods", default="all")
    p.add_argument("--n", type=int, default=4, help="synthetic training images per domain (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed training steps per method")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--work", default=None, help="keep the work folder here (default: a temporary one, removed)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd)
