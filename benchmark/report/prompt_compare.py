"""``compare`` for tables by prompt mode (SAM2LoRA's): ours per (method, test set, mode, metric)
against SAM2LoRA's published cells or another runs folder's, with :func:`compare.judge`'s verdicts.

Scale: fractions (Dice, AUC, ...) x100 as every other comparison; HD95 in pixels as printed. The
published side has no std, so ``sd`` is ours where we have two or more seeds. Its own uncertainty
widens the absolute tolerance: half a unit of the last printed digit for the optic-disc table, the
reading's +-0.01 for the vessel chart (docs/FIDELITY.md#sam2lora-published-numbers). The chart's
cells are means over the six prompt modes: ours is each record's mean over the same six modes
(mode ``mean``; a record lacking one of them has none), then mean and std over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.data.domains import DOMAINS
from benchmark.data.prompts import PAPER_MODES, parse_mode
from benchmark.report.compare import CellVerdict, compare_cells
from benchmark.report.layouts import LAYOUTS
from benchmark.report.prompt_table import PIXEL_METRICS, prompt_values

MEAN = "mean"  # the six published modes averaged per record: the vessel chart's cells


def prompt_label(prompt: str) -> str:
    return "mean of 6 modes" if prompt == MEAN else parse_mode(prompt).label


def _scale(metric: str) -> float:
    return 1.0 if metric in PIXEL_METRICS else 100.0


def by_prompt_records(records: Sequence[dict]) -> list[dict]:
    """The records whose domain's table is laid out by prompt mode."""
    tables = {d: DOMAINS.get(d).table for d in {r.get("domain") for r in records} if d in DOMAINS}
    return [r for r in records if r.get("domain") in tables and LAYOUTS.get(tables[r["domain"]]).by_prompt]


def prompt_frame(records: Sequence[dict]) -> pd.DataFrame:
    """Our cells: method, test_set, prompt, metric, n, mean, std (ddof=1; None from one seed)."""
    values: dict[tuple[str, str, str, str], list[float]] = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        per_record: dict[tuple[str, str, str], float] = {}
        for mode, ts, metric, v in prompt_values(r):
            per_record[(ts, mode, metric)] = v * _scale(metric)
        for (ts, mode, metric), v in per_record.items():
            values.setdefault((r["method"], ts, mode, metric), []).append(v)
        for ts, metric in {(ts, metric) for ts, _, metric in per_record}:
            modes = [per_record.get((ts, m, metric)) for m in PAPER_MODES]
            if all(v is not None for v in modes):
                values.setdefault((r["method"], ts, MEAN, metric), []).append(float(np.mean(modes)))
    rows = [{"method": m, "test_set": ts, "prompt": p, "metric": k, "n": len(vs), "mean": float(np.mean(vs)),
             "std": float(np.std(vs, ddof=1)) if len(vs) > 1 else None}
            for (m, ts, p, k), vs in values.items()]
    return pd.DataFrame(rows, columns=["method", "test_set", "prompt", "metric", "n", "mean", "std"])


def _paper_mode(row) -> str:
    k, box = int(row.pos_points), row.box == "1"
    return f"points:{k}+box" if k and box else f"points:{k}" if k else "box" if box else "none"


def paper_prompt_frame() -> pd.DataFrame:
    """SAM2LoRA's published cells in :func:`prompt_frame`'s shape (method ``sam2lora``), with each
    value's ``tolerance`` (its printed half unit or the chart's reading, on the compared scale)."""
    from benchmark.report.paper import load_sam2lora_paper

    rows = []
    for domain in ("fundus_od", "fundus_vessel"):
        for r in load_sam2lora_paper(domain).itertuples():
            s = _scale(r.metric)
            rows.append({"method": "sam2lora", "test_set": r.dataset,
                         "prompt": _paper_mode(r) if domain == "fundus_od" else MEAN, "metric": r.metric,
                         "n": None, "mean": r.mean_value * s, "std": None, "tolerance": r.tolerance * s})
    return pd.DataFrame(rows)


def compare_prompt_records(records: Sequence[dict], against: Sequence[dict] | None = None, *,
                           tolerance_sd: float = 2.0, tolerance_abs: float = 1.0) -> list[CellVerdict]:
    """Verdicts for the (method, test set, mode, metric) cells on both sides, in table order."""
    theirs = paper_prompt_frame() if against is None else prompt_frame(against)
    return compare_cells(prompt_frame(records), theirs, tolerance_sd=tolerance_sd, tolerance_abs=tolerance_abs)
