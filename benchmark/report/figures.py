"""Figures for people (matplotlib, Agg, no screen): accuracy against cost, the qualitative grid, and
Conv-LoRA's expert usage. Each is a pure function of records or saved prediction files; each writes
one PNG atomically and returns the data it plotted, so a test can check the picture's numbers.

- ``cost``: per domain, the headline metric (first test set, first test metric; the table's x100
  scale) against trainable parameters (log x), our mean over seeds beside the published points
  (``results/paper``, the row's #Params), each labelled with the method's display label.
- ``qualitative``: the paper's figure: for the first images of each domain's first test set, the
  RGB input, the ground truth and the saved predictions (``run --save-predictions N``) of chosen
  methods, all at the protocol's size (:mod:`benchmark.data.predictions`).
- ``experts``: per domain, the share of samples each encoder layer routes to each Conv-LoRA scale
  during testing (the records' ``expert_usage``, summed over seeds and test sets).

``sam-peft-bench figure cost|qualitative|experts --runs DIR --out FILE.png``; ``report`` writes the
ones its records allow beside report.md and embeds them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.errors import BenchError
from benchmark.core.io import atomic_path
from benchmark.data.domains import DOMAINS
from benchmark.data.predictions import GT_FOLDER, IMAGE_FOLDER, PREDICTIONS_FOLDER
from benchmark.report.aggregate import _paper_keys, method_order
from benchmark.report.labels import METHOD_LABELS, METRIC_LABELS, method_label
from benchmark.report.layouts import dataset_label, higher_is_better
from benchmark.report.paper import load_paper
from benchmark.report.provenance import data_kind
from benchmark.report.records import load_runs, ok_records

DEFAULT_QUALITATIVE_METHODS = ("vpt", "lora", "conv_lora")
DPI = 110


def _figure(width: float, height: float):
    # A bare Figure (no pyplot): no global state and no backend choice; savefig renders with Agg.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out


def _domains_in_order(keys) -> list[str]:
    keys = set(keys)
    return [d for d in DOMAINS if d in keys]


def _grid_shape(n: int) -> tuple[int, int]:
    cols = min(n, math.ceil(math.sqrt(n)) if n > 2 else n)
    return (n + cols - 1) // cols, cols


def _method_colours(keys) -> dict[str, tuple]:
    """A fixed colour per method in the tables' row order, so a method keeps its colour everywhere."""
    from matplotlib import colormaps

    palette = list(colormaps["tab10"].colors) + list(colormaps["Dark2"].colors)
    order = method_order(keys)
    return {k: palette[i % len(palette)] for i, k in enumerate(order)}


def provenance_note(records: Sequence[dict]) -> str:
    """What the records ran on, for a figure's title: backbone, preset and data kind."""
    parts = []
    for field, fmt in (("backbone", "{}"), ("preset", "{} preset")):
        values = sorted({str(r.get(field)) for r in records})
        parts.append(fmt.format("/".join(values)))
    kinds = sorted({data_kind(r) for r in records})
    parts.append(f"{'/'.join(kinds)} data")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------- cost


def headline(domain_key: str) -> tuple[str, str]:
    """(test set, metric) a domain is summarised by: its first test set and first scalar metric."""
    domain = DOMAINS.get(domain_key)
    metric = next(m for m in domain.test_metrics if m != "class_iou")
    return next(iter(domain.tests)), metric


def cost_points(records: Sequence[dict], domain_key: str) -> list[dict]:
    """One point per method and source ("ours": mean over seeds; "paper": the published cell)."""
    test_set, metric = headline(domain_key)
    mine: dict[str, list[tuple[float, float]]] = {}
    for r in ok_records(list(records)):
        value = (r.get("metrics") or {}).get(test_set, {}).get(metric)
        if r.get("domain") == domain_key and isinstance(value, (int, float)) and isinstance(
                r.get("trainable_params"), int):
            mine.setdefault(r["method"], []).append((float(r["trainable_params"]), 100.0 * value))
    points = [
        {"method": m, "source": "ours", "params": float(np.mean([p for p, _ in mine[m]])),
         "value": float(np.mean([v for _, v in mine[m]])), "n": len(mine[m])}
        for m in method_order(mine)
    ]
    paper = load_paper()
    keys = _paper_keys(paper)  # registry keys of the same rows, in the same order
    for row, key in zip(paper.itertuples(), keys.itertuples(), strict=True):
        if (key.test_set, key.metric) == (test_set, metric) and key.method in METHOD_LABELS and row.params_m:
            points.append({"method": key.method, "source": "paper", "params": float(row.params_m) * 1e6,
                           "value": float(row.mean_value), "n": None})
    return points


def plot_cost(records: Sequence[dict], out: str | Path, *, domains: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """Accuracy against trainable parameters, one panel per domain; returns {domain: points}."""
    ok = ok_records(list(records))
    keys = _domains_in_order(domains if domains is not None else {r.get("domain") for r in ok})
    data = {d: cost_points(ok, d) for d in keys}
    data = {d: pts for d, pts in data.items() if any(p["source"] == "ours" for p in pts)}
    if not data:
        raise BenchError("no ok record with a headline metric and trainable params: nothing to plot")
    rows, cols = _grid_shape(len(data))
    fig = _figure(4.6 * cols + 1.8, 3.9 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    colours = _method_colours({p["method"] for pts in data.values() for p in pts})
    # One colour per method (the same in every panel); the source is the marker: ours filled
    # circles, published hollow squares, so a method's gap to the paper reads along one colour.
    for ax, (domain_key, points) in zip(axes, data.items(), strict=False):
        test_set, metric = headline(domain_key)
        for p in points:
            ours = p["source"] == "ours"
            if p["params"] <= 0:  # a reference row that trains nothing (zero-shot): no place on a log axis
                ax.axhline(p["value"], color=colours[p["method"]], linestyle="--", linewidth=1.2, zorder=2)
                continue
            ax.scatter([p["params"]], [p["value"]], s=42 if ours else 48, marker="o" if ours else "s",
                       color=colours[p["method"]] if ours else "none", edgecolors=colours[p["method"]],
                       linewidths=1.4, zorder=3)
        ax.set_xscale("log")
        better = "higher" if higher_is_better(metric) else "lower"
        ax.set_title(f"{domain_key}: {dataset_label(test_set)}", fontsize=10)
        ax.set_xlabel("trainable parameters (log scale)")
        ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} (x100, {better} is better)")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(data):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    untrained = {p["method"] for pts in data.values() for p in pts if p["params"] <= 0}
    handles = [Line2D([], [], color=c, linestyle="--", label=f"{method_label(m)}: 0 trainable")
               if m in untrained else Line2D([], [], marker="o", linestyle="", color=c, label=method_label(m))
               for m, c in colours.items()]
    handles += [Line2D([], [], marker="o", linestyle="", color="black", label="ours (mean over seeds)"),
                Line2D([], [], marker="s", linestyle="", markerfacecolor="none", color="black",
                       label="published (SAM ViT-H)")]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"Accuracy against trainable parameters ({provenance_note(ok)})", fontsize=11)
    _save(fig, out)
    return data


# --------------------------------------------------------------------------------- qualitative


def _seed_dirs(method_dir: Path) -> list[Path]:
    dirs = [p for p in method_dir.glob("seed*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[4:]))


def qualitative_layout(pred_root: Path, *, methods: Sequence[str], per_domain: int) -> list[dict]:
    """Rows of the grid: per domain with saved inputs, the first ``per_domain`` images of its first
    test set that has them, each with its image, GT and each method's prediction (lowest seed; None
    where not saved)."""
    rows = []
    for domain_key in _domains_in_order(p.name for p in pred_root.iterdir() if p.is_dir()):
        droot = pred_root / domain_key
        for test_set in DOMAINS.get(domain_key).tests:
            images = sorted((droot / IMAGE_FOLDER / test_set).glob("*.png"))[:per_domain]
            if images:
                break
        for image in images:
            preds = {}
            for m in methods:
                found = [s / test_set / image.name for s in _seed_dirs(droot / m)]
                found = [p for p in found if p.is_file()]
                preds[m] = found[0] if found else None
            rows.append({"domain": domain_key, "test_set": test_set, "stem": image.stem, "image": image,
                         "gt": droot / GT_FOLDER / test_set / image.name, "predictions": preds})
    return rows


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _show_mask(ax, arr: np.ndarray, domain_key: str) -> None:
    if DOMAINS.get(domain_key).task == "multiclass":
        shown = np.ma.masked_equal(arr, 255)  # ignore pixels stay white
        ax.imshow(shown, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
    else:
        ax.imshow(arr, cmap="gray", vmin=0, vmax=255, interpolation="nearest")


def plot_qualitative(pred_root: str | Path, out: str | Path, *, methods: Sequence[str] = DEFAULT_QUALITATIVE_METHODS,
                     per_domain: int = 2, note: str = "") -> list[dict]:
    """The qualitative grid from a ``predictions/<backbone>`` folder; returns its rows."""
    pred_root = Path(pred_root)
    if not pred_root.is_dir():
        raise BenchError(f"no saved predictions under {pred_root} (run with --save-predictions N)")
    rows = qualitative_layout(pred_root, methods=methods, per_domain=per_domain)
    if not rows:
        raise BenchError(f"no saved test images under {pred_root}/*/{IMAGE_FOLDER} (run with --save-predictions N)")
    titles = ["image", "ground truth", *(method_label(m) for m in methods)]
    fig = _figure(1.7 * len(titles), 1.75 * len(rows) + 0.5)
    axes = fig.subplots(len(rows), len(titles), squeeze=False)
    for r, row in enumerate(rows):
        axes[r, 0].imshow(_read(row["image"]))
        _show_mask(axes[r, 1], _read(row["gt"]), row["domain"])
        for c, m in enumerate(methods, start=2):
            path = row["predictions"][m]
            if path is None:
                axes[r, c].text(0.5, 0.5, "not saved", ha="center", va="center", fontsize=8, color="grey")
            else:
                _show_mask(axes[r, c], _read(path), row["domain"])
        axes[r, 0].set_ylabel(f"{dataset_label(row['test_set'])}\n{row['stem']}", fontsize=7)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    suffix = f" ({note})" if note else ""
    fig.suptitle(f"Test predictions at the protocol's input size{suffix}\n"
                 "binary: probability, black 0 to white 1; multi-class: one colour per class", fontsize=9)
    _save(fig, out)
    return rows


# ------------------------------------------------------------------------------------- experts


def expert_usage(records: Sequence[dict]) -> dict[str, dict]:
    """Per domain: routed counts (layers x experts) summed over seeds and test sets, the share of
    each layer's samples per expert, the experts' scales and the number of runs."""
    out: dict[str, dict] = {}
    for r in ok_records(list(records)):
        usage = r.get("expert_usage")
        if not usage:
            continue
        counts = np.sum([np.asarray(c, dtype=np.int64) for c in usage.values()], axis=0)
        entry = out.setdefault(r["domain"], {"counts": np.zeros_like(counts), "runs": 0,
                                             "scales": ((r.get("config") or {}).get("method") or {}).get("scales")})
        if entry["counts"].shape != counts.shape:
            raise BenchError(f"{r.get('_path', r['method'])}: expert_usage of shape {counts.shape}, "
                             f"others of {entry['counts'].shape}")
        entry["counts"] = entry["counts"] + counts
        entry["runs"] += 1
    for entry in out.values():
        totals = entry["counts"].sum(axis=1, keepdims=True)
        entry["share"] = entry["counts"] / np.maximum(totals, 1)
    return {d: out[d] for d in _domains_in_order(out)}


def plot_experts(records: Sequence[dict], out: str | Path) -> dict[str, dict]:
    """Heatmaps of the share of samples per (layer, scale), one per domain; returns :func:`expert_usage`."""
    data = expert_usage(records)
    if not data:
        raise BenchError("no ok record holds expert_usage (Conv-LoRA runs record it during testing)")
    rows, cols = _grid_shape(len(data))
    fig = _figure(4.2 * cols + 0.8, 3.6 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for ax, (domain_key, entry) in zip(axes, data.items(), strict=False):
        share = entry["share"]
        image = ax.imshow(share, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        scales = entry["scales"] or list(range(1, share.shape[1] + 1))
        ax.set_xticks(range(share.shape[1]), [f"x{s}" for s in scales], fontsize=8)
        ax.set_yticks(range(share.shape[0]), [str(i + 1) for i in range(share.shape[0])], fontsize=7)
        ax.set_xlabel("expert (upsampling scale)")
        ax.set_ylabel("encoder block")
        ax.set_title(f"{domain_key} ({entry['runs']} run{'s' if entry['runs'] > 1 else ''})", fontsize=10)
    for ax in axes[len(data):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[: len(data)]), label="share of the block's samples", shrink=0.8)
    routed = [r for r in ok_records(list(records)) if r.get("expert_usage")]
    fig.suptitle(f"Conv-LoRA: which scale each block chooses on the test sets ({provenance_note(routed)})",
                 fontsize=10)
    _save(fig, out)
    return data


# ----------------------------------------------------------------------------------- commands

FIGURES = ("cost", "qualitative", "experts")
FIGURE_TITLES = {
    "cost": "Accuracy against trainable parameters",
    "qualitative": "Qualitative results",
    "experts": "Conv-LoRA expert usage per block",
}


def render_figure(kind: str, records: Sequence[dict], runs_dir: str | Path, out: str | Path, *,
                  backbone: str | None, methods: Sequence[str] = DEFAULT_QUALITATIVE_METHODS,
                  per_domain: int = 2):
    if kind == "cost":
        return plot_cost(records, out)
    if kind == "experts":
        return plot_experts(records, out)
    if kind == "qualitative":
        root = Path(runs_dir) / PREDICTIONS_FOLDER / str(backbone)
        return plot_qualitative(root, out, methods=methods, per_domain=per_domain,
                                note=provenance_note(ok_records(list(records))))
    raise BenchError(f"unknown figure {kind!r}; valid: {', '.join(FIGURES)}")


def write_figures(records: Sequence[dict], runs_dir: str | Path, folder: str | Path, *,
                  backbone: str | None, stem: str = "figure") -> list[tuple[str, str]]:
    """Every figure the records allow, as ``<stem>_<kind>.png`` in ``folder``; returns
    (title, file name) pairs for embedding. A figure with nothing to show is left out."""
    written = []
    for kind in FIGURES:
        name = f"{stem}_{kind}.png"
        try:
            render_figure(kind, records, runs_dir, Path(folder) / name, backbone=backbone)
        except BenchError:
            continue  # e.g. no saved predictions or no Conv-LoRA run: nothing to draw
        written.append((FIGURE_TITLES[kind], name))
    return written


def _run(args: argparse.Namespace) -> int:
    backbone, records = load_runs(args.runs, backbone=args.backbone, preset=args.preset)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    render_figure(args.kind, records, args.runs, args.out, backbone=backbone, methods=methods,
                  per_domain=args.per_domain)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("figure", help="one figure as PNG: cost, qualitative or experts")
    p.add_argument("kind", choices=FIGURES)
    p.add_argument("--runs", metavar="DIR", required=True)
    p.add_argument("--out", metavar="FILE.png", required=True)
    p.add_argument("--backbone", help="records' backbone; needed when the records hold several")
    p.add_argument("--preset", help="the records' preset; needed when they hold several")
    p.add_argument("--methods", default=",".join(DEFAULT_QUALITATIVE_METHODS),
                   help="qualitative: methods shown (default: %(default)s)")
    p.add_argument("--per-domain", type=int, default=2, metavar="K", help="qualitative: images per domain")
    p.set_defaults(func=_run)
