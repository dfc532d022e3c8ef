"""``sam-peft-bench list methods|backbones|domains|metrics``: what the registries hold."""

from __future__ import annotations

import argparse
import importlib

from tabulate import tabulate


def list_rows(what: str) -> list[tuple[str, str]]:
    """(key, one-line description) for every entry of the ``what`` registry."""
    if what == "methods":
        from methods import METHODS, config_fields

        return [
            (k, " ".join(f"{n}={v}" for n, v in config_fields(k).items()) or "-", METHODS.get(k).doc)
            for k in METHODS
        ]
    if what == "backbones":
        from benchmark.backbones import BACKBONES

        return [(k, BACKBONES.get(k).image_size, BACKBONES.get(k).description) for k in BACKBONES]
    if what == "domains":
        domains = importlib.import_module("benchmark.domains").DOMAINS
        return [(k, getattr(domains.get(k), "task", ""), getattr(domains.get(k), "archive", "")) for k in domains]
    metrics = importlib.import_module("metrics")
    registry = metrics.METRICS
    return [(k, "higher" if getattr(registry.get(k), "higher_is_better", True) else "lower") for k in registry]


_HEADERS = {
    "methods": ("method", "defaults", "description"),
    "backbones": ("backbone", "input", "description"),
    "domains": ("domain", "task", "archive"),
    "metrics": ("metric", "better"),
}


def _cmd_list(args: argparse.Namespace) -> int:
    print(tabulate(list_rows(args.what), headers=_HEADERS[args.what], tablefmt="simple"))
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("list", help="list registered methods, backbones, domains or metrics")
    p.add_argument("what", choices=tuple(_HEADERS))
    p.set_defaults(func=_cmd_list)
