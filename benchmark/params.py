"""``sam-peft-bench params``: trainable and total parameters per method, beside the paper's column.

Counting happens on the ``meta`` device: no weights, no memory, seconds even for ViT-H.
"""

from __future__ import annotations

import argparse
import csv
import io
import json

from tabulate import tabulate

from benchmark.core.errors import BenchError
from benchmark.model.backbones import BACKBONES, count_parameters
from benchmark.model.factory import build_model
from benchmark.report.labels import METHOD_LABELS, method_label
from methods import METHODS


def count_methods(backbone: str, methods: list[str], *, num_classes: int = 1) -> list[dict]:
    """``[{"method", "trainable", "total"}]``: total counts every parameter of the adapted model."""
    BACKBONES.get(backbone)
    rows = []
    for key in methods:
        try:
            model, _ = build_model(backbone, key, num_classes=num_classes, device="meta")
        except BenchError as exc:  # a method defined for another backbone family
            if len(methods) == 1:
                raise
            rows.append({"method": key, "trainable": None, "total": None, "error": str(exc)})
            continue
        trainable, total = count_parameters(model)
        rows.append({"method": key, "trainable": trainable, "total": total})
    return rows


def format_params(value_m: float | None, ratio: float | None) -> str:
    """The paper's cell: ``"4.02 / 0.63%"``; 100% is printed without decimals, as the paper does."""
    if ratio is None:
        return ""
    ratio_text = "100%" if round(ratio, 2) == 100 else f"{ratio:.2f}%"
    return f"{'*' if value_m is None else f'{value_m:.2f}'} / {ratio_text}"


def render_params(rows: list[dict], *, fmt: str, backbone: str) -> str:
    from benchmark.report.paper import paper_params

    published = paper_params() if backbone == "sam_vit_h" else {}
    if fmt == "json":
        return json.dumps(rows, indent=2)
    table = []
    for r in rows:
        if r.get("error"):
            table.append({"method": r["method"], "label": method_label(r["method"]),
                          "trainable": "", "total": "", "ours": "n/a", "paper": "", "match": r["error"]})
            continue
        ours_m, ratio = r["trainable"] / 1e6, 100 * r["trainable"] / r["total"]
        paper = published.get(r["method"])
        table.append({
            "method": r["method"],
            "label": method_label(r["method"]),
            "trainable": r["trainable"],
            "total": r["total"],
            "ours": format_params(ours_m, ratio),
            "paper": format_params(*paper) if paper else "",
            "match": ("yes" if format_params(ours_m, ratio) == format_params(*paper) else "no") if paper else "",
        })
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(table[0]) if table else ["method"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        return buf.getvalue().rstrip("\n")
    headers = {
        "method": "key", "label": "method", "trainable": "trainable", "total": "total",
        "ours": "#Params (M) / Ratio (%)", "paper": "paper", "match": "match",
    }
    title = f"#Params on {backbone} (trainable / total of the adapted model)"
    return title + "\n" + tabulate(table, headers=headers, tablefmt="github", intfmt=",")


def _cmd_params(args: argparse.Namespace) -> int:
    methods = METHODS.parse_list(args.methods) if args.methods else [k for k in METHOD_LABELS if k in METHODS] + [
        k for k in METHODS if k not in METHOD_LABELS
    ]
    rows = count_methods(args.backbone, methods, num_classes=args.num_classes)
    print(render_params(rows, fmt=args.format, backbone=args.backbone))
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("params", help="count trainable/total parameters per method (no weights needed)")
    p.add_argument("--backbone", default="sam_vit_h")
    p.add_argument("--methods", default=None, help="comma-separated method keys or 'all' (default: all)")
    p.add_argument("--num-classes", type=int, default=1, help="1 = binary head; 12 = Trans10K's multi-class head")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_params)
