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

# Each command and the module that defines it: a command imports its own module only (torch,
# segment-anything and sam2 take seconds to import; ``table``, ``compare`` and ``report`` need
# none of them). Help and unknown commands import them all. tests/test_cli.py checks the map.
COMMANDS = {
    "list": "benchmark.listing",
    "params": "benchmark.params",
    "evaluate": "benchmark.report.evaluate",
    "data": "benchmark.data.cli",
    "checkpoint": "benchmark.model.checkpoints",
    "run": "benchmark.train.runner",
    "pretrain-mini": "benchmark.train.pretrain",
    "table": "benchmark.report.tables",
    "compare": "benchmark.report.compare",
    "report": "benchmark.report.report",
    "figure": "benchmark.report.figures",
    "bench": "benchmark.perf.cli",
}
_COMMAND_MODULES = tuple(COMMANDS.values())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``command`` alone when it is known, else of every command (help, typos)."""
    parser = argparse.ArgumentParser(
        prog="sam-peft-bench",
        description="Parameter-efficient fine-tuning of Segment Anything: reproduce, compare, check.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    own = COMMANDS.get(command or "")
    for name in (own,) if own in _COMMAND_MODULES else _COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
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
