"""One Markdown page for a runs folder: params, Tables 1 and 2 beside the paper, verdicts, run costs.

:func:`build_report` is a pure function of the records (same records, same bytes); the command
writes the page atomically (a temp file in the target folder, then a rename).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.core.io import write_text_atomic
from benchmark.report.aggregate import method_order
from benchmark.report.compare import compare_records, regression_lines, render_verdicts, summary
from benchmark.report.figures import write_figures
from benchmark.report.labels import method_label
from benchmark.report.layouts import table_of
from benchmark.report.prompt_table import render_prompt_runs
from benchmark.report.provenance import (
    NOT_COMPARABLE,
    NOT_COMPARABLE_TITLE,
    data_kind,
    nonofficial_summary,
    provenance_notes,
    unknown_summary,
    weights_kind,
)
from benchmark.report.records import load_runs, ok_records
from benchmark.report.render import render_grid, render_params, render_table
from benchmark.report.tables import (
    BOLD_NOTE,
    STD_NOTE,
    paper_params_rows,
    runs_params,
    runs_table,
    table_records,
)

SMOKE_BANNER = (
    "> **PIPELINE CHECK, NOT A REPRODUCTION.** {which} come from the `smoke` preset: synthetic data\n"
    "> and a miniature SAM (64x64, 0.1M parameters) pretrained on synthetic scenes. These numbers show\n"
    "> that training, evaluation and reporting run end to end and that fine-tuning learns; they say\n"
    "> nothing about the methods on real data, and their verdicts against the paper are meaningless."
)


def _smoke_banner(records: Sequence[dict]) -> str:
    smoke = sum(r.get("preset") == "smoke" for r in records)
    if not smoke:
        return ""
    which = "All records" if smoke == len(records) else f"{smoke} of the {len(records)} records"
    return SMOKE_BANNER.format(which=which)


NOT_COMPARABLE_BANNER = (
    f"> **{NOT_COMPARABLE_TITLE}.** {{summary}}.\n"
    "> The verdicts below say nothing about how the methods fare against the paper (each record's\n"
    "> `data` and `checkpoint` say what it ran on)."
)


def _not_comparable_banner(records: Sequence[dict]) -> str:
    summary = nonofficial_summary(records)
    return NOT_COMPARABLE_BANNER.format(summary=summary) if summary else ""


def _verdict_label(records: Sequence[dict]) -> str:
    """The suffix of a verdict heading: says when the records it judges are not comparable."""
    return " (NOT COMPARABLE)" if nonofficial_summary(records) else ""


def _counts(records: Sequence[dict], field: str) -> str:
    return _tally(str(r.get(field)) for r in records)


def _tally(values) -> str:
    counts = Counter(values)
    return ", ".join(f"{k} ({n})" for k, n in sorted(counts.items()))


def _num(x: object, digits: int) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else ""


def cost_table(records: Sequence[dict]) -> str:
    """Every run (failed ones included): where the time and memory went."""
    order = {k: i for i, k in enumerate(method_order({r["method"] for r in records}))}
    rows = sorted(records, key=lambda r: (order[r["method"]], str(r.get("domain")), str(r.get("seed"))))
    header = [
        "Method",
        "Domain",
        "Seed",
        "Status",
        "Train (s)",
        "Eval (s)",
        "Peak memory (MB)",
        "Trainable params",
    ]
    body = [
        [
            method_label(r["method"]),
            str(r.get("domain", "")),
            str(r.get("seed", "")),
            r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error') or ''}".strip(),
            _num(r.get("train_seconds"), 1),
            _num(r.get("eval_seconds"), 1),
            _num(r.get("peak_memory_mb"), 0),
            f"{r['trainable_params']:,}" if isinstance(r.get("trainable_params"), int) else "",
        ]
        for r in rows
    ]
    total = sum(r.get("train_seconds") or 0 for r in records)
    return render_grid(header, body, "markdown", notes=[f"Total training time: {total / 3600:.2f} h."])


def build_report(
    records: Sequence[dict],
    *,
    runs_dir: str = "",
    backbone: str | None = None,
    tolerance_sd: float = 2.0,
    tolerance_abs: float = 1.0,
    figures: Sequence[tuple[str, str]] = (),
) -> str:
    """The report page for ``records`` (all statuses; tables use the ok ones); ``figures``:
    (title, file relative to the page) pairs embedded after the tables."""
    ok = ok_records(records)
    parts = ["# sam-peft-bench report", ""]
    for banner in (_smoke_banner(records), _not_comparable_banner(ok)):
        if banner:
            parts += [banner, ""]
    unknown, not_comparable = unknown_summary(records), nonofficial_summary(ok)
    parts += [
        f"- Runs folder: `{runs_dir}`" if runs_dir else "- Runs folder: (given records)",
        f"- Backbone: `{backbone}`",
        f"- Records: {len(records)} ({len(ok)} ok, {len(records) - len(ok)} failed)",
        f"- Presets: {_counts(records, 'preset')}",
        f"- Data: {_tally(map(data_kind, records))}; weights: {_tally(map(weights_kind, records))}",
        *([f"- Provenance unknown: {unknown}."] if unknown else []),
        f"- Git commits: {_counts(records, 'git_commit')}",
        "",
        f"{STD_NOTE} {BOLD_NOTE} Published numbers: Zhong et al., ICLR 2024, arXiv 2401.17868 (`results/paper/`).",
        "",
        "## Trainable parameters",
        "",
        render_params(runs_params(ok), "markdown", paper=paper_params_rows()),
    ]
    verdicts = compare_records(ok, tolerance_sd=tolerance_sd, tolerance_abs=tolerance_abs)
    for number, title in (("1", "Table 1: binary segmentation"), ("2", "Table 2: Trans10K-v2")):
        table = runs_table(number, ok)
        parts += [f"## {title}", "", render_table(table, "markdown")]
        mine = [v for v in verdicts if table_of(v.test_set) == number]
        parts += [f"### {title}, beside the paper{_verdict_label(table_records(number, ok))}", ""]
        parts += [render_verdicts(mine, "table") if mine else "No cell of ours matches a published one.\n"]
    if table_records("sam2lora", ok):
        from benchmark.report.prompt_compare import compare_prompt_records

        mine = compare_prompt_records(table_records("sam2lora", ok), tolerance_sd=tolerance_sd,
                                      tolerance_abs=tolerance_abs)
        verdicts += mine
        parts += ["## SAM2LoRA: retinal fundus by prompt mode", "",
                  render_prompt_runs("sam2lora", ok, "markdown", notes=provenance_notes(table_records("sam2lora", ok))),
                  "The published numbers: `sam-peft-bench table --table sam2lora --source paper`.", "",
                  f"### SAM2LoRA, beside the paper{_verdict_label(table_records('sam2lora', ok))}", "",
                  render_verdicts(mine, "table") if mine else "No cell of ours matches a published one.\n"]
    parts += [
        f"## Verdicts against the paper{_verdict_label(ok)}",
        "",
        *([f"{not_comparable}: {NOT_COMPARABLE}.", ""] if not_comparable else []),
        f"Tolerances: regressed when worse by more than {tolerance_abs:g} points AND more than "
        f"{tolerance_sd:g} sd (the published sd where printed, else ours; BER lower is better).",
        "",
        summary(verdicts) + ".",
        "",
    ]
    lines = regression_lines(verdicts)
    parts += [f"- {line}" for line in lines] + ([""] if lines else [])
    if figures:
        parts += ["## Figures", ""]
        for title, name in figures:
            parts += [f"### {title}", "", f"![{title}]({name})", ""]
    parts += ["## Cost of each run", "", cost_table(records)]
    return "\n".join(parts).rstrip("\n") + "\n"


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="one Markdown page: params, tables beside the paper, verdicts, costs"
    )
    p.add_argument("--runs", metavar="DIR", required=True)
    p.add_argument("--out", metavar="FILE", required=True, help="Markdown file to write (atomically)")
    p.add_argument("--backbone", help="records' backbone; needed when the records hold several")
    p.add_argument("--preset", help="the records' preset (smoke or paper); needed when they hold several")
    p.add_argument("--tolerance-sd", type=float, default=2.0)
    p.add_argument("--tolerance-abs", type=float, default=1.0)
    p.set_defaults(func=_run)


def _run(args) -> int:
    backbone, records = load_runs(args.runs, backbone=args.backbone, preset=args.preset)
    out = Path(args.out)
    # Beside the page, named after it, so two reports in one folder keep their own figures.
    figures = write_figures(records, args.runs, out.parent, backbone=backbone, stem=out.stem)
    text = build_report(
        records,
        runs_dir=args.runs,
        backbone=backbone,
        tolerance_sd=args.tolerance_sd,
        tolerance_abs=args.tolerance_abs,
        figures=figures,
    )
    try:
        write_text_atomic(args.out, text)
    except OSError as exc:
        raise BenchError(f"cannot write {args.out}: {exc}") from None
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
