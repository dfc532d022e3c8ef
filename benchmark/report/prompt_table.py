"""Tables whose rows are datasets x prompt modes (SAM2LoRA's): ours from run records.

A pure function of records. A record's per-mode metrics are ``metrics_by_prompt[mode][test set]``;
a record without them was evaluated prompt-free only, so its ``metrics`` are mode ``none``. Values
are as SAM2LoRA's results print them: fractions (Dice, AUC) and pixels of the input grid (HD95),
mean ± sample std (ddof=1) over seeds, a cell from one seed without std. Rows: per method, the
layout's test sets in its order, then the prompt modes in SAM2LoRA's order (others after, sorted).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np

from benchmark.data.prompts import PAPER_MODES, parse_mode
from benchmark.report.aggregate import method_order
from benchmark.report.labels import METRIC_LABELS, method_label
from benchmark.report.layouts import LAYOUTS, dataset_label, domain_of
from benchmark.report.render import render_grid

PROMPT_STD_NOTE = ("Ours: mean ± sample std (ddof=1) over seeds; fractions, HD95 in pixels of the model's input "
                   "grid; a cell from one seed shows no std.")
LABELS = {"auc_img": "AUC", "hd95": "HD95"}  # as SAM2LoRA's table heads them
PIXEL_METRICS = ("hd95",)  # printed in pixels with two decimals; the rest are fractions, four


def prompt_values(record: dict) -> Iterator[tuple[str, str, str, float]]:
    """(mode, test set, metric, value) of one ok record, every mode it was evaluated in."""
    by_mode = record.get("metrics_by_prompt") or {"none": record.get("metrics") or {}}
    for mode, sets in by_mode.items():
        for test_set, metrics in (sets or {}).items():
            for metric, value in (metrics or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                    yield mode, test_set, metric, float(value)


def mode_order(mode: str) -> tuple[int, str]:
    """A prompt mode's place in a table: SAM2LoRA's order, then the rest by name."""
    return (PAPER_MODES.index(mode), "") if mode in PAPER_MODES else (len(PAPER_MODES), mode)


def prompt_cells(table: str, records: Sequence[dict]) -> list[dict]:
    """One item per (method, test set, mode) with a value: its metrics' n, mean and std, in row order."""
    layout = LAYOUTS.get(table)
    order = list(dict.fromkeys(ts for ts, _ in layout.columns))
    wanted = {m for _, m in layout.columns}
    values: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        for mode, ts, metric, v in prompt_values(r):
            if ts in order and metric in wanted:
                values.setdefault((r["method"], ts, mode), {}).setdefault(metric, []).append(v)
    rank = {k: i for i, k in enumerate(method_order({k[0] for k in values}))}
    items = []
    for method, ts, mode in sorted(values, key=lambda k: (rank[k[0]], order.index(k[1]), mode_order(k[2]))):
        stats = {}
        for metric, vs in values[(method, ts, mode)].items():
            stats[metric] = {"n": len(vs), "mean": float(np.mean(vs)),
                             "std": float(np.std(vs, ddof=1)) if len(vs) > 1 else None}
        items.append({"method": method, "domain": domain_of(ts).key, "test_set": ts, "prompt": mode, "metrics": stats})
    return items


def _cell(stat: dict | None, metric: str) -> str:
    if stat is None:
        return ""
    d = 2 if metric in PIXEL_METRICS else 4
    return f"{stat['mean']:.{d}f}" + ("" if stat["std"] is None else f" ± {stat['std']:.{d}f}")


def render_prompt_runs(table: str, records: Sequence[dict], fmt: str, *, notes: Sequence[str] = ()) -> str:
    """Ours in ``table``'s layout by prompt mode (datasets x modes; the layout's metrics as columns)."""
    metrics = list(dict.fromkeys(m for _, m in LAYOUTS.get(table).columns))
    items = prompt_cells(table, records)
    if fmt == "json":
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    header = ["Method", "Task", "Dataset", "Prompt", "n",
              *((LABELS.get(m) or METRIC_LABELS.get(m, m)) + (" (px)" if m in PIXEL_METRICS else "") for m in metrics)]
    body = []
    for it in items:
        n = max(s["n"] for s in it["metrics"].values())
        body.append([method_label(it["method"]), it["domain"], dataset_label(it["test_set"]),
                     parse_mode(it["prompt"]).label, str(n), *(_cell(it["metrics"].get(m), m) for m in metrics)])
    return render_grid(header, body, fmt, notes=(*notes, PROMPT_STD_NOTE))
