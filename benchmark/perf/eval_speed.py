"""Throughput of ``evaluate`` on synthetic 1024x1024 pairs: images/s per worker count.

    python -m benchmark.perf.eval_speed --n 200 --workers 1 2

Writes N prediction/ground-truth PNG pairs to a temporary folder (smooth blobs: a low-resolution
random field upsampled, thresholded for the mask and squashed for the probability map), scores
them with every binary metric once per worker count, checks that the numbers agree across worker
counts, and times py-sod-metrics itself (S, E, F^w with beta^2 = 0.3, MAE) on a few pairs for
reference. Wall-clock images/s depend on what else runs on the machine; CPU-ms per image does
not, so both are printed. A benchmark, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.report.evaluate import evaluate_folders

BINARY_METRICS = "sm,em,wfm,mae,iou,dice,ber,auc"


def write_pairs(folder: Path, n: int, size: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``n`` pred/gt PNG pairs of ``size`` x ``size``; returns (pred_dir, gt_dir)."""
    rng = np.random.default_rng(seed)
    pred_dir, gt_dir = folder / "pred", folder / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for i in range(n):
        field = Image.fromarray(rng.random((12, 12), dtype=np.float32)).resize((size, size), Image.BICUBIC)
        noise = Image.fromarray(rng.random((48, 48), dtype=np.float32)).resize((size, size), Image.BICUBIC)
        field, noise = np.asarray(field), np.asarray(noise)
        gt = field > 0.55
        prob = 1 / (1 + np.exp(-12 * (field - 0.55) - 3 * (noise - 0.5)))
        Image.fromarray((gt * 255).astype(np.uint8)).save(gt_dir / f"{i:05d}.png")
        Image.fromarray((prob * 255).astype(np.uint8)).save(pred_dir / f"{i:05d}.png")
    return pred_dir, gt_dir


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the pool's workers):
    unlike wall time, it does not grow when other programs share the cores."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_py_sod_metrics(pred_dir: Path, gt_dir: Path, n: int) -> float:
    """Seconds per image of py-sod-metrics' own S, E, F^w (beta 0.3) and MAE on one core."""
    import py_sod_metrics

    names = sorted(p.name for p in pred_dir.iterdir())[:n]
    meters = [
        py_sod_metrics.Smeasure(),
        py_sod_metrics.Emeasure(),
        py_sod_metrics.WeightedFmeasure(beta=0.3),
        py_sod_metrics.MAE(),
    ]
    start = time.perf_counter()
    for name in names:
        pred = np.asarray(Image.open(pred_dir / name))
        gt = np.asarray(Image.open(gt_dir / name))
        for meter in meters:
            meter.step(pred, gt)
    return (time.perf_counter() - start) / len(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.eval_speed", description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="image pairs (default: %(default)s)")
    parser.add_argument("--size", type=int, default=1024, help="side in pixels (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--metrics", default=BINARY_METRICS, help="metric keys (default: %(default)s)")
    parser.add_argument("--baseline", type=int, default=20, help="pairs to time py-sod-metrics on (0: skip)")
    args = parser.parse_args(argv)

    print(f"machine: {os.cpu_count()} CPU cores; {args.n} pairs of {args.size}x{args.size}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pred_dir, gt_dir = write_pairs(Path(tmp), args.n, args.size)
        print(f"wrote pairs in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        reference = None
        rows = []
        for workers in args.workers:
            start, cpu_start = time.perf_counter(), cpu_seconds()
            results = evaluate_folders(
                pred_dir, gt_dir, metrics=args.metrics, workers=workers, progress=False
            )
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            if reference is None:
                reference = results
            elif results != reference:
                print(f"numbers differ with {workers} workers: {results} vs {reference}", file=sys.stderr)
                return 1
            rows.append((workers, seconds, cpu))
        load = os.getloadavg()[0]
        for workers, seconds, cpu in rows:
            print(
                f"workers={workers}: {seconds:.1f} s, {args.n / seconds:.1f} images/s wall; "
                f"{1000 * cpu / args.n:.0f} CPU-ms/image ({args.metrics}; 1-min load after: {load:.2f})"
            )
        if args.baseline:
            per_image = time_py_sod_metrics(pred_dir, gt_dir, min(args.baseline, args.n))
            print(
                f"py-sod-metrics 1 core, sm/em/wfm/mae only: {per_image:.3f} s/image, {1 / per_image:.1f} images/s"
            )
        print(f"results: {reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
