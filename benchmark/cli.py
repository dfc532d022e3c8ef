"""``sam-peft-bench`` (= ``python -m benchmark``): a thin argparse front over ordinary functions.

Each command module defines ``add_commands(subparsers)``; a parser sets ``func`` to a callable
taking the parsed namespace and returning an exit code. A ``BenchError`` becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.core.errors import BenchError

_COMMAND_MODULES = (
    "benchmark.listing",
    "benchmark.params",
    "benchmark.report.evaluate",
    "benchmark.data.cli",
    "benchmark.model.checkpoints",
    "benchmark.train.runner",
    "benchmark.train.pretrain",
    "benchmark.report.tables",
    "benchmark.report.compare",
    "benchmark.report.report",
    "benchmark.report.figures",
    "benchmark.perf.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sam-peft-bench",
        description="Parameter-efficient fine-tuning of Segment Anything: reproduce, compare, check.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
