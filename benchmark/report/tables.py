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

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from benchmark.core.errors import BenchError
from benchmark.report.labels import (
    DATASET_LABELS,
    EXTRA_METHOD_LABELS,
    METHOD_LABELS,
    METRIC_LABELS,
    METRIC_LATEX,
    REFERENCE_LABELS,
    TABLE_COLUMNS,
    TABLE_METHODS,
    TABLE_REFERENCES,
    TRANS10K_CLASSES,
    method_label,
)
from benchmark.report.paper import load_paper

LOWER_IS_BETTER = frozenset({"ber", "mae"})
FORMATS = ("markdown", "latex", "csv", "json")
TABLES = ("1", "2", "params")
Column = tuple[str, str]  # (test-set key, metric key)

STD_NOTE = "Ours: x100, mean ± sample std (ddof=1) over seeds; a cell from one seed shows no std."
PAPER_NOTE = "Published (Zhong et al., ICLR 2024, arXiv 2401.17868): x100, mean ± std of 3 runs as printed."
BOLD_NOTE = "Bold: best method per column (BER: lowest)."
UNDERLINE_NOTE = "Underlined: a reference model better than every method."
SMOKE_NOTE = ("SMOKE PRESET: pipeline-check numbers (synthetic data, a miniature SAM pretrained on synthetic "
              "scenes), not a reproduction.")


@dataclass(frozen=True)
class Cell:
    """One printed cell; ``value`` is the mean as printed (what marks compare), ``raw`` unrounded."""

    value: float
    mean_text: str
    std_text: str = ""
    n: int | None = None
    raw: float | None = None
    mark: str = ""  # "", "bold" or "underline"

    @property
    def text(self) -> str:
        return f"{self.mean_text} ± {self.std_text}" if self.std_text else self.mean_text


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    params: str  # the "#Params (M) / Ratio (%)" cell, "" when unknown
    cells: dict[Column, Cell] = field(default_factory=dict)
    reference: bool = False


@dataclass(frozen=True)
class Table:
    number: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParamsRow:
    key: str
    label: str
    params_m: str  # as printed; "*" where the paper prints it, "" when unknown
    ratio_pct: str


# ---- labels, order, precision -------------------------------------------------------------------


def method_order(keys: Iterable[str]) -> list[str]:
    """References, then the registry's methods in the paper's order, then other keys sorted."""
    known = list(REFERENCE_LABELS) + list(METHOD_LABELS) + list(EXTRA_METHOD_LABELS)
    keys = set(keys)
    return [k for k in known if k in keys] + sorted(keys - set(known))


def table_of(test_set: str) -> str:
    return "2" if test_set == "trans10k" else "1"


def decimals(table: str, metric: str) -> tuple[int, int]:
    """(mean, std) decimals as the paper prints them on the x100 scale."""
    if table == "2":
        return 2, 2
    return (2, 3) if metric in LOWER_IS_BETTER else (1, 2)


def column_labels(col: Column) -> tuple[str, str, str]:
    """(dataset label, metric label, direction arrow) of a column."""
    test_set, metric = col
    arrow = "↓" if metric in LOWER_IS_BETTER else "↑"
    return DATASET_LABELS.get(test_set, test_set), METRIC_LABELS.get(metric, metric), arrow


def signed(x: float, digits: int) -> str:
    text = f"{x:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text


# ---- aggregation ----------------------------------------------------------------------------------


def record_values(record: dict) -> Iterator[tuple[str, str, float]]:
    """(test set, metric, value x100) of one record; ``class_iou`` becomes one metric per class."""
    for test_set, metrics in (record.get("metrics") or {}).items():
        for metric, value in (metrics or {}).items():
            if metric == "class_iou" and isinstance(value, list):
                if len(value) != len(TRANS10K_CLASSES):
                    where = record.get("_path", record.get("method"))
                    raise BenchError(
                        f"{where}: class_iou has {len(value)} values, expected {len(TRANS10K_CLASSES)}"
                    )
                for name, v in zip(TRANS10K_CLASSES, value, strict=True):
                    if isinstance(v, (int, float)) and v == v:
                        yield test_set, name, 100.0 * v
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                yield test_set, metric, 100.0 * value


def aggregate(records: Sequence[dict]) -> pd.DataFrame:
    """Per (method, test_set, metric): n seeds, mean and sample std (ddof=1; NaN for one seed), x100."""
    rows = [
        (r["method"], ts, m, r.get("seed"), v)
        for r in records
        if r.get("status") == "ok"
        for ts, m, v in record_values(r)
    ]
    df = pd.DataFrame(rows, columns=["method", "test_set", "metric", "seed", "value"])
    if df.empty:
        return pd.DataFrame(columns=["method", "test_set", "metric", "n", "mean", "std"])
    out = (
        df.groupby(["method", "test_set", "metric"], sort=True)["value"]
        .agg(n="size", mean="mean", std=lambda s: s.std(ddof=1))
        .reset_index()
    )
    return out


def _paper_keys(df: pd.DataFrame) -> pd.DataFrame:
    """Registry keys (method, test_set, metric) of published rows, from the paper's labels."""
    key_of = {v: k for k, v in {**METHOD_LABELS, **REFERENCE_LABELS}.items()}
    ds_of = {v: k for k, v in DATASET_LABELS.items()}
    metric_of = {v: k for k, v in METRIC_LABELS.items()}
    return pd.DataFrame(
        {
            "method": [key_of.get(s, s) for s in df["method"]],
            "test_set": [ds_of.get(s, s) for s in df["dataset"]],
            "metric": [metric_of.get(s, s) for s in df["metric"]],
        }
    )


def paper_aggregate() -> pd.DataFrame:
    """The published cells in :func:`aggregate`'s shape (registry keys; n = 3 where a std is printed)."""
    df = load_paper()
    out = _paper_keys(df)
    out["n"] = [3 if s else None for s in df["std"]]
    out["mean"] = df["mean_value"].to_numpy()
    out["std"] = df["std_value"].to_numpy()
    return out


def _span(texts: list[str]) -> str:
    unique = list(dict.fromkeys(texts))
    return "" if not unique else unique[0] if len(unique) == 1 else f"{unique[0]}–{unique[-1]}"


def params_of(records: Sequence[dict]) -> tuple[str, str]:
    """(#Params M, ratio %) texts, two decimals; a range "a–b" where records disagree."""
    pairs = sorted(
        (r["trainable_params"], r["total_params"])
        for r in records
        if isinstance(r.get("trainable_params"), int)
        and isinstance(r.get("total_params"), int)
        and r["total_params"] > 0
    )
    params = _span([f"{t / 1e6:.2f}" for t, _ in pairs])
    ratios = _span([f"{r:.2f}" for r in sorted(t / n * 100 for t, n in pairs)])
    return params, ratios


# ---- building tables ------------------------------------------------------------------------------


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
    cols = tuple(columns or TABLE_COLUMNS[number])
    shown = TABLE_METHODS.get(number, ()) if methods is None else methods
    ok = [r for r in records if r.get("status") == "ok"]
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
        mine = [
            r for r in ok if r["method"] == key and any(table_of(ts) == number for ts in r.get("metrics", {}))
        ]
        p, ratio = params_of(mine)
        rows.append(Row(key, method_label(key), f"{p} / {ratio}%" if p else "", cells))
    notes = [STD_NOTE, BOLD_NOTE]
    if any(r.get("preset") == "smoke" for r in records):
        notes.insert(0, SMOKE_NOTE)
    return mark_best(Table(number, cols, tuple(rows), tuple(notes)))


def paper_table(number: str, *, columns: Sequence[Column] | None = None) -> Table:
    """The published table ``number``, strings as printed."""
    cols = tuple(columns or TABLE_COLUMNS[number])
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
        sign = -1.0 if col[1] in LOWER_IS_BETTER else 1.0
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
    df = df[(df["table"] == "1") | df["method"].isin([REFERENCE_LABELS[k] for k in TABLE_REFERENCES["2"]])]
    key_of = {v: k for k, v in {**METHOD_LABELS, **REFERENCE_LABELS}.items()}
    return [
        ParamsRow(key_of.get(r.method, r.method), r.method, r.params_m or "*", r.ratio_pct)
        for r in df.itertuples()
    ]


# ---- rendering ------------------------------------------------------------------------------------

_TEX = {
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "–": "--",
}


def tex(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in text)


def _md_cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    return {"bold": f"**{cell.text}**", "underline": f"<u>{cell.text}</u>"}.get(cell.mark, cell.text)


def _tex_cell(cell: Cell | None) -> str:
    if cell is None:
        return ""
    text = tex(cell.text)
    return {"bold": f"\\textbf{{{text}}}", "underline": f"\\underline{{{text}}}"}.get(cell.mark, text)


def _long_rows(table: Table) -> Iterator[tuple[Row, Column, Cell]]:
    for row in table.rows:
        for col in table.columns:
            if col in row.cells:
                yield row, col, row.cells[col]


def render_table(table: Table, fmt: str) -> str:
    """Text of a Table 1/2 in ``fmt``: markdown, latex (booktabs), csv or json (long form)."""
    if fmt == "markdown":
        header = ["Method", "#Params (M) / Ratio (%)"] + [" ".join(column_labels(c)) for c in table.columns]
        body = [[r.label, r.params] + [_md_cell(r.cells.get(c)) for c in table.columns] for r in table.rows]
        return _markdown(header, body, table.notes)
    if fmt == "latex":
        return _latex_table(table)
    if fmt == "csv":
        body = [
            [
                r.label,
                *column_labels(c)[:2],
                cell.mean_text,
                cell.std_text,
                "" if cell.n is None else str(cell.n),
            ]
            for r, c, cell in _long_rows(table)
        ]
        return _csv(["method", "dataset", "metric", "mean", "std", "n"], body)
    if fmt == "json":
        items = [
            {
                "method": r.label,
                "dataset": column_labels(c)[0],
                "metric": column_labels(c)[1],
                "mean": float(cell.mean_text),
                "std": float(cell.std_text) if cell.std_text else None,
                "n": cell.n,
            }
            for r, c, cell in _long_rows(table)
        ]
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    raise BenchError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")


def _latex_table(table: Table) -> str:
    groups: list[tuple[str, int]] = []
    for col in table.columns:
        ds = column_labels(col)[0]
        if groups and groups[-1][0] == ds:
            groups[-1] = (ds, groups[-1][1] + 1)
        else:
            groups.append((ds, 1))
    top = ["Method", tex("#Params (M) / Ratio (%)")] + [
        f"\\multicolumn{{{k}}}{{c}}{{{tex(ds)}}}" for ds, k in groups
    ]
    rules, start = [], 3
    for _, k in groups:
        rules.append(f"\\cmidrule(lr){{{start}-{start + k - 1}}}")
        start += k
    sub = ["", ""] + [
        f"{METRIC_LATEX.get(c[1]) or tex(column_labels(c)[1])} {tex(column_labels(c)[2])}"
        for c in table.columns
    ]
    lines = [
        f"\\begin{{tabular}}{{ll{'c' * len(table.columns)}}}",
        "\\toprule",
        " & ".join(top) + " \\\\",
        " ".join(rules),
        " & ".join(sub) + " \\\\",
        "\\midrule",
    ]
    for r in table.rows:
        lines.append(
            " & ".join([tex(r.label), tex(r.params)] + [_tex_cell(r.cells.get(c)) for c in table.columns])
            + " \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}"] + [f"% {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def _markdown(header: list[str], body: list[list[str]], notes: Sequence[str] = ()) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    if notes:
        lines += [""] + list(notes)
    return "\n".join(lines) + "\n"


def _csv(header: list[str], body: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def render_grid(header: list[str], body: list[list[str]], fmt: str, *, notes: Sequence[str] = ()) -> str:
    """A plain grid (no column groups, no marks) as markdown, latex or csv."""
    if fmt == "markdown":
        return _markdown(header, body, notes)
    if fmt == "csv":
        return _csv(header, body)
    if fmt == "latex":
        lines = [
            f"\\begin{{tabular}}{{{'l' * len(header)}}}",
            "\\toprule",
            " & ".join(map(tex, header)) + " \\\\",
            "\\midrule",
        ]
        lines += [" & ".join(map(tex, row)) + " \\\\" for row in body]
        lines += ["\\bottomrule", "\\end{tabular}"] + [f"% {n}" for n in notes]
        return "\n".join(lines) + "\n"
    raise BenchError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")


def _num(text: str) -> float | str | None:
    try:
        return float(text)
    except ValueError:
        return text or None  # "*" -> None is handled by the caller; ranges stay strings


def render_params(rows: Sequence[ParamsRow], fmt: str, *, paper: Sequence[ParamsRow] | None = None) -> str:
    """The #Params (M) / Ratio (%) column; with ``paper``, ours and published side by side."""
    if paper is None:
        if fmt == "json":
            items = [
                {
                    "method": r.label,
                    "params_m": None if r.params_m == "*" else _num(r.params_m),
                    "ratio_pct": _num(r.ratio_pct),
                }
                for r in rows
            ]
            return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
        return render_grid(
            ["Method", "#Params (M)", "Ratio (%)"], [[r.label, r.params_m, r.ratio_pct] for r in rows], fmt
        )
    ours = {r.key: r for r in rows}
    theirs = {r.key: r for r in paper}
    empty = ParamsRow("", "", "", "")
    keys = method_order(set(ours) | set(theirs))
    if fmt == "json":
        items = []
        for k in keys:
            o, p = ours.get(k, empty), theirs.get(k, empty)
            items.append(
                {
                    "method": method_label(k),
                    "ours_params_m": _num(o.params_m),
                    "ours_ratio_pct": _num(o.ratio_pct),
                    "paper_params_m": None if p.params_m == "*" else _num(p.params_m),
                    "paper_ratio_pct": _num(p.ratio_pct),
                }
            )
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    header = ["Method", "#Params (M) ours", "#Params (M) paper", "Ratio (%) ours", "Ratio (%) paper"]
    body = []
    for k in keys:
        o, p = ours.get(k, empty), theirs.get(k, empty)
        body.append([method_label(k), o.params_m, p.params_m, o.ratio_pct, p.ratio_pct])
    return render_grid(header, body, fmt)


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


def render_side_by_side(items: Sequence[dict], number: str, fmt: str, *, notes: Sequence[str] = ()) -> str:
    if fmt == "json":
        rows = []
        for it in items:
            o, p = it["ours"], it["paper"]
            ds, metric, _ = column_labels(it["column"])
            rows.append(
                {
                    "method": method_label(it["method"]),
                    "dataset": ds,
                    "metric": metric,
                    "ours_mean": float(o.mean_text) if o else None,
                    "ours_std": float(o.std_text) if o and o.std_text else None,
                    "n": o.n if o else None,
                    "paper_mean": float(p.mean_text) if p else None,
                    "paper_std": float(p.std_text) if p and p.std_text else None,
                    "diff": None
                    if it["diff"] is None
                    else round(it["diff"], decimals(number, it["column"][1])[0]),
                }
            )
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    header = ["Method", "Dataset", "Metric", "Ours", "n", "Paper", "Δ (ours − paper)"]
    body = []
    for it in items:
        o, p = it["ours"], it["paper"]
        ds, metric, arrow = column_labels(it["column"])
        d = "" if it["diff"] is None else signed(it["diff"], decimals(number, it["column"][1])[0])
        body.append(
            [
                method_label(it["method"]),
                ds,
                f"{metric} {arrow}",
                o.text if o else "",
                str(o.n) if o else "",
                p.text if p else "",
                d,
            ]
        )
    return render_grid(header, body, fmt, notes=notes)


def table_text(*, table: str, source: str, fmt: str, records: Sequence[dict] = (), side: bool = False) -> str:
    """The whole output of ``sam-peft-bench table``: a pure function of the records and the paper."""
    if table not in TABLES:
        raise BenchError(f"unknown table {table!r}; valid: {', '.join(TABLES)}")
    if side and source != "runs":
        raise BenchError("--side-by-side compares runs with the paper: use it with --source runs")
    if table == "params":
        if source == "paper":
            return render_params(paper_params_rows(), fmt)
        return render_params(runs_params(records), fmt, paper=paper_params_rows() if side else None)
    if source == "paper":
        return render_table(paper_table(table), fmt)
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
    return 0
