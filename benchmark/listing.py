"""``sam-peft-bench list methods|backbones|domains|metrics``: what the registries hold."""

from __future__ import annotations

import argparse

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
        from benchmark.model.backbones import BACKBONES

        return [(k, BACKBONES.get(k).image_size, BACKBONES.get(k).description) for k in BACKBONES]
    if what == "domains":
        from benchmark.data.domains import DOMAINS

        return [(k, DOMAINS.get(k).task, DOMAINS.get(k).archive) for k in DOMAINS]
    from metrics import METRICS

    return [(k, "higher" if METRICS.get(k).higher_is_better else "lower") for k in METRICS]


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
