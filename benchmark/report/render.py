"""Tables as text: Markdown, LaTeX (booktabs), CSV and JSON, for the paper's tables, the #Params
column and the side-by-side comparison. Pure functions of the built tables."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence

from benchmark.core.errors import BenchError
from benchmark.report.aggregate import method_order
from benchmark.report.cells import Cell, ParamsRow, Row, Table
from benchmark.report.labels import METRIC_LATEX, method_label
from benchmark.report.layouts import Column, column_labels, decimals

FORMATS = ("markdown", "latex", "csv", "json")


def signed(x: float, digits: int) -> str:
    text = f"{x:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text


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


