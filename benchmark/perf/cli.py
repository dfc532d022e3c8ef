"""``sam-peft-bench bench ...``: benchmark scripts behind one command (figures go to docs/BENCHMARKS.md)."""

from __future__ import annotations

import argparse


def _cmd_train_step(args: argparse.Namespace) -> int:
    from benchmark.perf.train_step import render, run_all

    rows = run_all(args)
    print(render(rows, args.format))
    return 1 if any("error" in r for r in rows) else 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from benchmark.perf.layers import render, run_all

    rows = run_all(args)
    print(render(rows, args.format))
    return 1 if any("error" in r for r in rows) else 0


def _cmd_epochs(args: argparse.Namespace) -> int:
    from benchmark.perf.epochs import render, run_all

    print(render(run_all(args), args.format))
    return 0


def add_commands(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="speed and memory benchmarks")
    sub = bench.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    from benchmark.perf.train_step import add_arguments

    p = sub.add_parser("train-step", help="step time and peak memory of one training step per method")
    add_arguments(p)
    p.set_defaults(func=_cmd_train_step)
    from benchmark.perf import layers

    p = sub.add_parser("layers", help="fwd+bwd time and memory of one layer, before and after (Conv-LoRA, attention)")
    layers.add_arguments(p)
    p.set_defaults(func=_cmd_layers)
    from benchmark.perf import gpu_check

    p = sub.add_parser("gpu-check", help="every method trains and evaluates in bf16 and fp16 here; cost per step")
    gpu_check.add_arguments(p)
    from benchmark.perf import epochs

    p = sub.add_parser("epochs", help="time per epoch of a real run, with and without the decoder-only feature cache")
    epochs.add_arguments(p)
    p.set_defaults(func=_cmd_epochs)
