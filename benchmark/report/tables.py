"""The paper's Tables 1 and 2 and its #Params column, from run records or from the published numbers.

Everything here is a pure function: records (and ``results/paper/``) in, text out.

Conventions (also printed under every Markdown/LaTeX table):
- Values are x100, as the paper prints them. Ours: mean over seeds ± the *sample* std (ddof=1);
  a cell with one seed has no std. One decimal in Table 1 (BER two; std two, BER std three, as
  printed), two in Table 2 (std two).
- Marks, inferred from the paper's Table 1 (its underlines fall exactly on the Domain Specific
  values that beat every method): **bold** = best among the method rows (every row that is not a
  published reference model; BER: lowest), ties all bold, only where at least two methods have a
  value; underlined = a reference row's value strictly better than that best. Marks compare the
  values as printed. Tables from runs have no reference rows, so they carry bold only.
- Missing methods, seeds or metrics are empty cells. Rows: the paper's rows in its order, then any
  other method keys found in the records (sorted), labelled with the key itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from benchmark.core.errors import BenchError
from benchmark.report.aggregate import _paper_keys, aggregate, method_order, params_of
from benchmark.report.cells import Cell, ParamsRow, Row, Table
from benchmark.report.labels import METHOD_LABELS, REFERENCE_LABELS, method_label
from benchmark.report.layouts import LAYOUTS, Column, decimals, higher_is_better, table_of
from benchmark.report.paper import load_paper
from benchmark.report.prompt_table import render_prompt_runs
from benchmark.report.provenance import provenance_notes
from benchmark.report.render import (
    FORMATS,
    render_grid,
    render_params,
    render_side_by_side,
    render_table,
)

TABLES = (*LAYOUTS.keys(), "params")

STD_NOTE = "Ours: x100, mean ± sample std (ddof=1) over seeds; a cell from one seed shows no std."
PAPER_NOTE = "Published (Zhong et al., ICLR 2024, arXiv 2401.17868): x100, mean ± std of 3 runs as printed."
BOLD_NOTE = "Bold: best method per column (BER: lowest)."
UNDERLINE_NOTE = "Underlined: a reference model better than every method."
SMOKE_NOTE = ("SMOKE PRESET: pipeline-check numbers (synthetic data, a miniature SAM pretrained on synthetic "
              "scenes), not a reproduction.")


# ---- building tables ------------------------------------------------------------------------------


def table_records(number: str, records: Sequence[dict]) -> list[dict]:
    """The ok records with a value in table ``number``: the ones its cells and notes speak for."""
    shown = {ts for ts, _ in LAYOUTS.get(number).columns}  # the layout's own test sets
    return [r for r in records if r.get("status") == "ok" and shown & set(r.get("metrics") or {})]


def runs_table(
    number: str,
    records: Sequence[dict],
    *,
    columns: Sequence[Column] | None = None,
    methods: Sequence[str] | None = None,
) -> Table:
    """Our table ``number`` ("1" or "2") from ok records.

    Rows: ``methods`` (default: the paper's methods of that table) even when empty, plus every
    method with a value in the records. ``columns`` defaults to the paper's layout.
    """
    layout = LAYOUTS.get(number)
    cols = tuple(columns or layout.columns)
    shown = layout.methods if methods is None else methods
    ok = [r for r in records if r.get("status") == "ok"]
    used = table_records(number, ok)
    agg = aggregate(ok)
    agg = (
        agg[[(ts, m) in cols for ts, m in zip(agg["test_set"], agg["metric"], strict=True)]]
        if len(agg)
        else agg
    )
    keys = method_order(set(shown) | set(agg["method"]))
    rows = []
    for key in keys:
        cells = {}
        for a in agg[agg["method"] == key].itertuples():
            mean_d, std_d = decimals(number, a.metric)
            std_text = "" if pd.isna(a.std) else f"{a.std:.{std_d}f}"
            mean_text = f"{a.mean:.{mean_d}f}"
            cells[(a.test_set, a.metric)] = Cell(
                float(mean_text), mean_text, std_text, int(a.n), float(a.mean)
            )
        mine = [r for r in used if r["method"] == key]
        p, ratio = params_of(mine)
        rows.append(Row(key, method_label(key), f"{p} / {ratio}%" if p else "", cells))
    notes = [*provenance_notes(used), STD_NOTE, BOLD_NOTE]
    if any(r.get("preset") == "smoke" for r in records):
        notes.insert(0, SMOKE_NOTE)
    return mark_best(Table(number, cols, tuple(rows), tuple(notes)))


def paper_table(number: str, *, columns: Sequence[Column] | None = None) -> Table:
    """The published table ``number``, strings as printed."""
    cols = tuple(columns or LAYOUTS.get(number).columns)
    df = load_paper(number)
    rows: dict[str, Row] = {}
    for printed, key, test_set, metric in zip(df.itertuples(), *_paper_keys(df).T.to_numpy(), strict=True):
        if key not in rows:
            params = f"{printed.params_m or '*'} / {printed.ratio_pct}%"
            rows[key] = Row(key, printed.method, params, {}, key in REFERENCE_LABELS)
        if (test_set, metric) in cols:
            value = float(printed.mean_value)
            rows[key].cells[(test_set, metric)] = Cell(value, printed.mean, printed.std, None, value)
    notes = (PAPER_NOTE, BOLD_NOTE, UNDERLINE_NOTE)
    return mark_best(Table(number, cols, tuple(rows.values()), notes))


def mark_best(table: Table) -> Table:
    """Bold the best method per column, underline reference values better than it (module doc)."""
    marks: dict[tuple[str, Column], str] = {}
    for col in table.columns:
        sign = 1.0 if higher_is_better(col[1]) else -1.0
        methods = [sign * r.cells[col].value for r in table.rows if not r.reference and col in r.cells]
        if not methods:
            continue
        best = max(methods)
        for r in table.rows:
            if col not in r.cells:
                continue
            v = sign * r.cells[col].value
            if r.reference and v > best:
                marks[(r.key, col)] = "underline"
            elif not r.reference and len(methods) >= 2 and v == best:
                marks[(r.key, col)] = "bold"
    rows = tuple(
        replace(r, cells={c: replace(cell, mark=marks.get((r.key, c), "")) for c, cell in r.cells.items()})
        for r in table.rows
    )
    return replace(table, rows=rows)


def runs_params(records: Sequence[dict]) -> list[ParamsRow]:
    """Ours per method: from the Table 1 (binary) records where a method has any, else all its records."""
    ok = [r for r in records if r.get("status") == "ok"]
    out = []
    for key in method_order(set(METHOD_LABELS) | {r["method"] for r in ok}):
        mine = [r for r in ok if r["method"] == key]
        binary = [r for r in mine if any(table_of(ts) == "1" for ts in r.get("metrics", {}))]
        out.append(ParamsRow(key, method_label(key), *params_of(binary or mine)))
    return out


def paper_params_rows() -> list[ParamsRow]:
    """The published #Params column: every row of Table 1, then Table 2's reference models."""
    df = load_paper().drop_duplicates(["table", "method"])
    df = df[(df["table"] == "1") | df["method"].isin([REFERENCE_LABELS[k] for k in LAYOUTS.get("2").references])]
    key_of = {v: k for k, v in {**METHOD_LABELS, **REFERENCE_LABELS}.items()}
    return [
        ParamsRow(key_of.get(r.method, r.method), r.method, r.params_m or "*", r.ratio_pct)
        for r in df.itertuples()
    ]


def side_by_side(ours: Table, paper: Table) -> list[dict]:
    """Per method cell present on either side: ours, published and ours - published (x100)."""
    mine = {r.key: r for r in ours.rows}
    pub = {r.key: r for r in paper.rows if not r.reference}
    out = []
    for key in method_order(set(mine) | set(pub)):
        for col in ours.columns:
            o = mine[key].cells.get(col) if key in mine else None
            p = pub[key].cells.get(col) if key in pub else None
            if o is None and p is None:
                continue
            diff = o.raw - p.value if o is not None and p is not None else None
            out.append({"method": key, "column": col, "ours": o, "paper": p, "diff": diff})
    return out


SAM2LORA_NOTE = ("Published (Mandal et al., arXiv 2510.10288; the authors' results notebook, cell 32): "
                 "rank 64, per-image means as printed; HD95 in pixels of the 1024 grid.")
SAM2LORA_CHART_NOTE = ("Vessel rows READ FROM A BAR CHART (+-0.01), Dice and AUC averaged over the prompt modes; "
                       "no table was published.")


def render_sam2lora_paper(fmt: str) -> str:
    """SAM2LoRA's published numbers: optic disc, datasets x prompt modes (Dice, AUC, HD95), as
    printed; then the vessel chart readings. Values are the source's strings, never recomputed."""
    from benchmark.report.layouts import dataset_label
    from benchmark.report.paper import load_sam2lora_paper

    keys = ("dice", "auc_img", "hd95")
    od = load_sam2lora_paper("fundus_od")
    rows = []
    for (ds, prompt), grp in od.groupby(["dataset", "prompt"], sort=False):
        values = dict(zip(grp["metric"], grp["mean"], strict=True))
        rows.append(["optic disc", dataset_label(ds), prompt, grp["n_test"].iloc[0], *(values[k] for k in keys)])
    vessel = load_sam2lora_paper("fundus_vessel")
    for (ds, prompt), grp in vessel.groupby(["dataset", "prompt"], sort=False):
        values = dict(zip(grp["metric"], grp["mean"], strict=True))
        rows.append(["vessel (chart)", dataset_label(ds), prompt, "", *(values.get(k, "") for k in keys)])
    header = ["Task", "Dataset", "Prompt", "n", "Dice", "AUC", "HD95 (px)"]
    if fmt == "json":
        items = [dict(zip(header, r, strict=True)) for r in rows]
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    return render_grid(header, rows, fmt, notes=(SAM2LORA_NOTE, SAM2LORA_CHART_NOTE))


def table_text(*, table: str, source: str, fmt: str, records: Sequence[dict] = (), side: bool = False) -> str:
    """The whole output of ``sam-peft-bench table``: a pure function of the records and the paper."""
    if table != "params" and table not in LAYOUTS:
        raise BenchError(f"unknown table {table!r}; valid: {', '.join((*LAYOUTS.keys(), 'params'))}")
    if side and source != "runs":
        raise BenchError("--side-by-side compares runs with the paper: use it with --source runs")
    if table == "params":
        if source == "paper":
            return render_params(paper_params_rows(), fmt)
        return render_params(runs_params(records), fmt, paper=paper_params_rows() if side else None)
    if source == "paper":
        if LAYOUTS.get(table).paper == "sam2lora":
            return render_sam2lora_paper(fmt)
        return render_table(paper_table(table), fmt)
    if LAYOUTS.get(table).by_prompt:
        if side:
            raise BenchError(f"--side-by-side is not offered for table {table}: print --source runs and --source paper")
        notes = [*provenance_notes(table_records(table, records)),
                 *([SMOKE_NOTE] if any(r.get("preset") == "smoke" for r in records) else [])]
        return render_prompt_runs(table, records, fmt, notes=notes)
    ours = runs_table(table, records)
    if not side:
        return render_table(ours, fmt)
    notes = [n for n in ours.notes if n != BOLD_NOTE] + [PAPER_NOTE]
    return render_side_by_side(side_by_side(ours, paper_table(table)), table, fmt, notes=notes)


# ---- command --------------------------------------------------------------------------------------


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "table",
        help="the paper's Table 1, Table 2 or #Params column, from run records or as published",
        description=(
            "Render a table in the paper's layout. Values x100; ours are mean ± sample std (ddof=1) over "
            "seeds. Bold: best method per column (BER lowest); underlined: a published reference model "
            "better than every method."
        ),
    )
    p.add_argument("--table", choices=TABLES, default="1")
    p.add_argument(
        "--source",
        choices=("runs", "paper"),
        default=None,
        help="default: runs when --runs is given, else paper",
    )
    p.add_argument("--runs", metavar="DIR", help="folder of run records (searched recursively)")
    p.add_argument("--backbone", help="records' backbone; needed when the records hold several")
    p.add_argument("--preset", help="the records' preset (smoke or paper); needed when they hold several")
    p.add_argument("--format", choices=FORMATS, default="markdown")
    p.add_argument("--side-by-side", action="store_true", help="ours, published and the difference per cell")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from benchmark.report.records import load_runs

    source = args.source or ("runs" if args.runs else "paper")
    records: list[dict] = []
    if source == "runs":
        if not args.runs:
            raise BenchError("--source runs needs --runs DIR")
        _, records = load_runs(args.runs, backbone=args.backbone, preset=args.preset)
    print(
        table_text(table=args.table, source=source, fmt=args.format, records=records, side=args.side_by_side),
        end="",
    )
    if args.format in ("csv", "json") and source == "runs" and args.table != "params":
        for note in provenance_notes(table_records(args.table, records)):  # these formats carry no notes
            print(f"note: {note}", file=sys.stderr)
    return 0
