"""The transcription of the paper's Tables 1 and 2 (results/paper/) and its loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.report.labels import METHOD_LABELS, METRIC_LABELS
from benchmark.report.paper import load_paper, paper_params
from benchmark.report.tables import paper_table

SEED = Path(__file__).resolve().parents[1] / "results" / "paper" / "source_tables.txt"

TABLE1_METHODS = [
    "Domain Specific",
    "SAM trained from scratch",
    "decoder-only",
    "BitFit",
    "Adapter",
    "VPT",
    "LST",
    "SAM-Adapter",
    "SSF",
    "LoRA",
    "Conv-LoRA",
]
TABLE2_METHODS = ["TransLab", "Trans2Seg", "decoder-only", "VPT", "LoRA", "Conv-LoRA"]
TABLE1_COLUMNS = [
    ("Kvasir", "S_alpha"),
    ("Kvasir", "E_phi"),
    ("CVC-612", "S_alpha"),
    ("CVC-612", "E_phi"),
    ("ISIC 2017", "Jac"),
    ("ISIC 2017", "Dice"),
    ("CAMO", "S_alpha"),
    ("CAMO", "E_phi"),
    ("CAMO", "F_beta_w"),
    ("SBU", "BER"),
    ("Leaf", "IoU"),
    ("Leaf", "Dice"),
    ("Road", "IoU"),
    ("Road", "Dice"),
]
TABLE2_COLUMNS = [
    ("Trans10K", m)
    for m in (
        "Acc",
        "mIoU",
        "bg",
        "shelf",
        "jar",
        "freezer",
        "window",
        "door",
        "eyeglass",
        "cup",
        "wall",
        "bowl",
        "bottle",
        "box",
    )
]


@pytest.mark.parametrize(
    ("table", "methods", "columns"),
    [("1", TABLE1_METHODS, TABLE1_COLUMNS), ("2", TABLE2_METHODS, TABLE2_COLUMNS)],
)
def test_every_method_and_column_once_in_printed_order(table, methods, columns):
    df = load_paper(table)
    assert len(df) == len(methods) * len(columns)
    expected = [(m, d, c) for m in methods for d, c in columns]
    assert list(zip(df["method"], df["dataset"], df["metric"], strict=True)) == expected


def test_std_printed_exactly_for_the_peft_rows_of_table_1():
    df = load_paper()
    with_std = set(df.loc[df["std"] != "", "method"])
    assert with_std == {"BitFit", "Adapter", "VPT", "LST", "SAM-Adapter", "SSF", "LoRA", "Conv-LoRA"}
    assert set(df.loc[df["std"] != "", "table"]) == {"1"}


@pytest.mark.parametrize(
    ("table", "method", "dataset", "metric", "mean", "std"),
    [  # typed by hand from the paper
        ("1", "Conv-LoRA", "Kvasir", "S_alpha", "92.0", "0.15"),
        ("1", "BitFit", "SBU", "BER", "3.16", "0.128"),
        ("1", "BitFit", "CVC-612", "S_alpha", "89.0", "0.40"),
        ("1", "LST", "CAMO", "F_beta_w", "77.1", "0.02"),
        ("1", "decoder-only", "SBU", "BER", "14.58", ""),
        ("1", "Domain Specific", "Road", "Dice", "73.0", ""),
        ("1", "VPT", "Road", "IoU", "60.2", "1.87"),
        ("2", "Trans2Seg", "Trans10K", "mIoU", "72.15", ""),
        ("2", "Conv-LoRA", "Trans10K", "freezer", "51.70", ""),
        ("2", "TransLab", "Trans10K", "bottle", "77.50", ""),
    ],
)
def test_spot_values_as_printed(table, method, dataset, metric, mean, std):
    df = load_paper(table)
    row = df[(df["method"] == method) & (df["dataset"] == dataset) & (df["metric"] == metric)]
    assert len(row) == 1
    assert (row["mean"].item(), row["std"].item()) == (mean, std)


def test_params_column_as_printed():
    df = load_paper().drop_duplicates(["table", "method"])
    got = {
        (t, m): (p, r)
        for t, m, p, r in zip(df["table"], df["method"], df["params_m"], df["ratio_pct"], strict=True)
    }
    assert got[("1", "Domain Specific")] == ("", "100")
    assert got[("1", "SAM trained from scratch")] == ("641.09", "100")
    assert got[("1", "LST")] == ("11.49", "1.77")
    assert got[("2", "TransLab")] == ("42.19", "100")
    assert got[("2", "Trans2Seg")] == ("56.20", "100")
    assert got[("2", "decoder-only")] == got[("1", "decoder-only")] == ("3.51", "0.55")


def test_paper_params_keyed_by_registry_key():
    params = paper_params()
    assert set(params) == set(METHOD_LABELS)
    assert params["conv_lora"] == (4.02, 0.63)
    assert params["lora"] == (4.00, 0.62)
    assert params["from_scratch"] == (641.09, 100.0)
    assert params["decoder_only"] == (3.51, 0.55)


def test_unknown_table_is_an_error():
    from benchmark.core.errors import BenchError

    with pytest.raises(BenchError, match="no table '3'"):
        load_paper("3")


def test_mark_rule_reproduces_table_1_underlines():
    """Underlined in print = the Domain Specific values that beat every method."""
    computed = {
        (r.label, c) for r in paper_table("1").rows for c, cell in r.cells.items() if cell.mark == "underline"
    }
    assert computed == {
        ("Domain Specific", ("cvc_clinicdb", "sm")),
        ("Domain Specific", ("cvc_clinicdb", "em")),
        ("Domain Specific", ("isic2017", "jaccard")),
        ("Domain Specific", ("isic2017", "dice")),
    }
    df = load_paper("1")
    assert set(df.loc[df["printed_mark"] == "underline", "method"]) == {"Domain Specific"}
    assert (df["printed_mark"] == "underline").sum() == 4


def test_table_2_underlines_differ_from_the_rule_exactly_where_documented():
    df = load_paper("2")
    printed = {(m, x) for m, x, k in zip(df["method"], df["metric"], df["printed_mark"], strict=True) if k}
    computed = {
        (r.label, METRIC_LABELS.get(c[1], c[1]))
        for r in paper_table("2").rows
        for c, cell in r.cells.items()
        if cell.mark == "underline"
    }
    assert computed - printed == {
        ("TransLab", "mIoU"),
        ("TransLab", "shelf"),
        ("TransLab", "jar"),
        ("TransLab", "box"),
    }
    assert printed - computed == {("Trans2Seg", "freezer")}


def test_every_value_matches_the_seed_document():
    text = SEED.read_text(encoding="utf-8")
    df = load_paper()
    for table, methods, start in (
        ("1", TABLE1_METHODS, "Domain Specific\t"),
        ("2", TABLE2_METHODS, "TransLab\t"),
    ):
        lines = [ln for ln in text[text.index(start) :].splitlines() if ln.split("\t")[0] in methods][
            : len(methods)
        ]
        assert [ln.split("\t")[0] for ln in lines] == methods
        for line in lines:
            method, params, *cells = line.split("\t")
            got = df[(df["table"] == table) & (df["method"] == method)]
            printed = []
            for cell in cells:
                clean = re.sub(r"</?u>", "", cell)
                mean, _, std = (s.strip() for s in clean.partition("\\pm"))
                printed.append((mean, std, "underline" if "<u>" in cell else ""))
            assert list(zip(got["mean"], got["std"], got["printed_mark"], strict=True)) == printed
            p, r = (s.strip() for s in params.split("/"))
            assert set(got["params_m"]) == {"" if p == "*" else p}
            assert set(got["ratio_pct"]) == {r.rstrip("%")}
