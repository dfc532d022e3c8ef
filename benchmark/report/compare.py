"""Regression check: our aggregated cells against the paper's or another runs folder's.

For every (method, test set, metric) present on both sides, on the paper's x100 scale:

- ``diff = ours - theirs`` (means; the paper's mean as printed, ours unrounded);
- ``sd`` = their std where known (the paper prints one for BitFit..Conv-LoRA in Table 1; a runs
  folder has one with two or more seeds), else our std, else unknown; ``z = diff / sd`` (empty when
  sd is unknown or zero);
- ``worse`` = ``-diff`` for higher-is-better metrics, ``diff`` for lower-is-better ones (BER);
- verdict ``regressed`` when ``worse > tolerance_abs`` and, where sd is known,
  ``worse > tolerance_sd * sd``; ``improved`` by the same test on ``-worse``; else ``ok``.
  Both thresholds must be exceeded, so a noisy cell (large sd) or a tiny difference passes.

Exit code 1 when any cell regressed (each named on stderr), 0 otherwise. Against the paper, records
that are not comparable with the published numbers (synthetic or custom data, random weights where
the method starts from a checkpoint: ``benchmark/report/provenance.py``) are refused with exit 2
unless ``--allow-nonofficial``, and then every verdict output says so.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from benchmark.core.errors import BenchError
from benchmark.report.aggregate import aggregate, method_order, paper_aggregate
from benchmark.report.labels import method_label
from benchmark.report.layouts import LAYOUTS, column_labels, decimals, higher_is_better, table_of
from benchmark.report.prompt_table import mode_order
from benchmark.report.provenance import ALLOW_FLAG, NOT_COMPARABLE, nonofficial_summary, provenance_notes
from benchmark.report.render import render_grid, signed

VERDICTS = ("ok", "improved", "regressed")


@dataclass(frozen=True)
class CellVerdict:
    method: str
    test_set: str
    metric: str
    ours: float
    ours_std: float | None
    n: int
    theirs: float
    theirs_std: float | None
    diff: float
    sd: float | None
    z: float | None
    verdict: str
    prompt: str | None = None  # a table by prompt mode (SAM2LoRA's): the mode (benchmark/report/prompt_compare.py)

    @property
    def dataset(self) -> str:
        ds = column_labels((self.test_set, self.metric))[0]
        if self.prompt is None:
            return ds
        from benchmark.report.prompt_compare import prompt_label

        return f"{ds} [{prompt_label(self.prompt)}]"

    @property
    def name(self) -> str:
        return f"{method_label(self.method)} / {self.dataset} / {column_labels((self.test_set, self.metric))[1]}"


def _opt(x: object) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def judge(
    diff: float, sd: float | None, *, lower_is_better: bool, tolerance_sd: float, tolerance_abs: float
) -> str:
    """ok / improved / regressed for one cell (module docstring)."""
    worse = diff if lower_is_better else -diff

    def beyond(delta: float) -> bool:
        return delta > tolerance_abs and (sd is None or delta > tolerance_sd * sd)

    if beyond(worse):
        return "regressed"
    if beyond(-worse):
        return "improved"
    return "ok"


def compare_cells(
    ours: pd.DataFrame, theirs: pd.DataFrame, *, tolerance_sd: float = 2.0, tolerance_abs: float = 1.0
) -> list[CellVerdict]:
    """Verdicts for the cells present in both frames (:func:`benchmark.report.tables.aggregate`'s shape).

    Optional columns: ``prompt`` in both frames (a table by prompt mode) joins the key and is
    carried by each verdict; ``tolerance`` in ``theirs`` (the published value's own uncertainty)
    widens ``tolerance_abs`` for that cell."""
    if tolerance_sd < 0 or tolerance_abs < 0:
        raise BenchError("tolerances must be >= 0")
    by_prompt = "prompt" in ours.columns and "prompt" in theirs.columns
    key = ["method", "test_set", "metric", *(["prompt"] if by_prompt else [])]
    both = ours.merge(theirs, on=key, suffixes=("_ours", "_theirs"))
    extra = both["tolerance"] if "tolerance" in both.columns else pd.Series(0.0, index=both.index)
    out = []
    for r, widen in zip(both.itertuples(), extra, strict=True):
        theirs_std, ours_std = _opt(r.std_theirs), _opt(r.std_ours)
        sd = theirs_std if theirs_std is not None else ours_std
        diff = float(r.mean_ours) - float(r.mean_theirs)
        z = diff / sd if sd else None
        lower = not higher_is_better(r.metric)  # the metric's own direction
        verdict = judge(
            diff, sd, lower_is_better=lower, tolerance_sd=tolerance_sd, tolerance_abs=tolerance_abs + float(widen)
        )
        out.append(
            CellVerdict(
                r.method,
                r.test_set,
                r.metric,
                float(r.mean_ours),
                ours_std,
                int(r.n_ours),
                float(r.mean_theirs),
                theirs_std,
                diff,
                sd,
                z,
                verdict,
                r.prompt if by_prompt else None,
            )
        )
    order = {k: i for i, k in enumerate(method_order({v.method for v in out}))}

    def position(v: CellVerdict) -> tuple:
        """Table, method, then the layout's column order; by prompt: dataset, mode, metric."""
        layout = LAYOUTS.get(table_of(v.test_set)).columns
        sets = list(dict.fromkeys(ts for ts, _ in layout))
        col = (v.test_set, v.metric)
        return (
            table_of(v.test_set),
            order[v.method],
            sets.index(v.test_set) if v.test_set in sets else len(sets),
            (-1, "") if v.prompt is None else mode_order(v.prompt),
            layout.index(col) if col in layout else len(layout),
            col,
        )

    return sorted(out, key=position)


def compare_records(
    records: Sequence[dict],
    against: Sequence[dict] | None = None,
    *,
    tolerance_sd: float = 2.0,
    tolerance_abs: float = 1.0,
) -> list[CellVerdict]:
    """Our records against ``against`` (another folder's records) or, when None, the paper."""
    theirs = paper_aggregate() if against is None else aggregate(against)
    return compare_cells(aggregate(records), theirs, tolerance_sd=tolerance_sd, tolerance_abs=tolerance_abs)


def _fmt(x: float | None, digits: int) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def render_verdicts(verdicts: Sequence[CellVerdict], fmt: str, *, theirs: str = "paper") -> str:
    """``table`` (Markdown), or any grid format of :func:`benchmark.report.tables.render_grid`, or json."""
    if fmt == "json":
        items = []
        for v in verdicts:
            metric = column_labels((v.test_set, v.metric))[1]
            item = {k: round(x, 4) if isinstance(x, float) else x for k, x in asdict(v).items()}
            items.append(
                {**item, "method_label": method_label(v.method), "dataset": v.dataset, "metric_label": metric}
            )
        return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    header = ["Method", "Dataset", "Metric", "Ours", "n", theirs.capitalize(), "Δ", "sd", "z", "Verdict"]
    body = []
    for v in verdicts:
        d_mean, d_std = decimals(table_of(v.test_set), v.metric)
        _, metric, arrow = column_labels((v.test_set, v.metric))
        ours = _fmt(v.ours, d_mean) + (f" ± {v.ours_std:.{d_std}f}" if v.ours_std is not None else "")
        other = _fmt(v.theirs, d_mean) + (f" ± {v.theirs_std:.{d_std}f}" if v.theirs_std is not None else "")
        verdict = {"regressed": "**regressed**", "improved": "improved"}.get(v.verdict, v.verdict)
        body.append(
            [
                method_label(v.method),
                v.dataset,
                f"{metric} {arrow}",
                ours,
                str(v.n),
                other,
                signed(v.diff, d_mean),
                _fmt(v.sd, d_std),
                "" if v.z is None else f"{v.z:+.2f}",
                verdict,
            ]
        )
    return render_grid(header, body, "markdown" if fmt == "table" else fmt)


def summary(verdicts: Sequence[CellVerdict]) -> str:
    counts = {k: sum(v.verdict == k for v in verdicts) for k in VERDICTS}
    return f"{len(verdicts)} cells compared: {counts['ok']} ok, {counts['improved']} improved, {counts['regressed']} regressed"


def regression_lines(verdicts: Sequence[CellVerdict]) -> list[str]:
    lines = []
    for v in verdicts:
        if v.verdict == "regressed":
            d = decimals(table_of(v.test_set), v.metric)[0]
            z = "" if v.z is None else f", z {v.z:+.2f}"
            lines.append(
                f"regressed: {v.name}: ours {v.ours:.{d}f} vs {v.theirs:.{d}f} (diff {signed(v.diff, d)}{z})"
            )
    return lines


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="regression check of run records against the paper or another runs folder",
        description=(
            "Per cell present on both sides: diff = ours - theirs (x100), z = diff / sd (their std, else ours), "
            "verdict regressed when worse by more than BOTH --tolerance-abs and --tolerance-sd x sd (sd where "
            "known; BER lower is better). Exit 1 when any cell regressed. Against the paper, records on synthetic "
            "or custom data, or with random weights where the method starts from a checkpoint, exit 2 unless "
            f"{ALLOW_FLAG}."
        ),
    )
    p.add_argument("--runs", metavar="DIR", required=True)
    p.add_argument(
        "--against", default="paper", metavar="paper|DIR2", help="'paper' (default) or a runs folder"
    )
    p.add_argument("--tolerance-sd", type=float, default=2.0)
    p.add_argument("--tolerance-abs", type=float, default=1.0, help="x100 scale (points)")
    p.add_argument("--backbone", help="records' backbone (both folders); needed when they hold several")
    p.add_argument("--preset", help="the records' preset (smoke or paper); needed when they hold several")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument(ALLOW_FLAG, action="store_true", dest="allow_nonofficial",
                   help="compare with the paper even records that are not comparable with it (marked so)")
    p.set_defaults(func=_run)


def check_comparable(records: Sequence[dict], *, allow: bool) -> list[str]:
    """The notes a comparison with the paper carries; ``BenchError`` (exit 2) when a record is not
    comparable and ``allow`` is off."""
    problem = nonofficial_summary(records)
    if problem and not allow:
        raise BenchError(f"{problem}: {NOT_COMPARABLE} (pass {ALLOW_FLAG} to compare anyway)")
    return provenance_notes(records)


def _run(args) -> int:
    from benchmark.report.records import load_runs, ok_records

    _, ours = load_runs(args.runs, backbone=args.backbone, preset=args.preset)
    against, notes = None, []
    if args.against == "paper":
        notes = check_comparable(ok_records(ours), allow=args.allow_nonofficial)
    else:
        _, other = load_runs(args.against, backbone=args.backbone, preset=args.preset)
        against = ok_records(other)
    from benchmark.report.prompt_compare import by_prompt_records, compare_prompt_records

    prompted = by_prompt_records(ok_records(ours))
    plain = [r for r in ok_records(ours) if r not in prompted]
    tolerances = {"tolerance_sd": args.tolerance_sd, "tolerance_abs": args.tolerance_abs}
    verdicts = compare_records(plain, against, **tolerances) if plain else []
    if prompted:
        verdicts += compare_prompt_records(prompted, None if against is None else by_prompt_records(against),
                                           **tolerances)
    if not verdicts:
        raise BenchError(f"no cell is present in both {args.runs} and {args.against}: nothing to compare")
    theirs = "paper" if against is None else "theirs"
    if args.format == "table":  # a JSON consumer gets the notes on stderr: its list keeps its shape
        print("".join(f"> {note}\n\n" for note in notes), end="")
    print(render_verdicts(verdicts, args.format, theirs=theirs), end="")
    if against is None and any(r.get("preset") == "smoke" for r in ours):
        print(
            "note: smoke-preset records (synthetic data, tiny SAM): verdicts against the paper are meaningless",
            file=sys.stderr,
        )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(summary(verdicts), file=sys.stderr)
    lines = regression_lines(verdicts)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0
