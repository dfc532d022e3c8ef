"""``bench train-step`` plumbing: a row names the levers it ran with, ``--profile`` lists the
step's most expensive operators, and a bad attention name stops before any method is built."""

from __future__ import annotations

import argparse

import pytest

from benchmark.core.errors import BenchError
from benchmark.perf.train_step import add_arguments, measure, render, run_all


def test_a_row_with_its_profile_and_its_table() -> None:
    row = measure("sam_tiny", "lora", image_size=None, batch=1, steps=1, warmup=0, precision="fp32",
                  device="cpu", attention="folded", profile=4)
    assert row["attention"] == "folded" and row["method"] == "lora" and row["step_ms"] > 0
    ops = row["profile"]
    assert len(ops) == 4 and all(op["calls"] >= 1 for op in ops)
    assert [op["self_ms"] for op in ops] == sorted((op["self_ms"] for op in ops), reverse=True)
    text = render([row], "markdown")
    assert "attention folded" in text and "lora: one step's most expensive operators" in text
    assert ops[0]["op"] in text
    assert "profile" not in measure("sam_tiny", "lora", image_size=None, batch=1, steps=1, warmup=0,
                                    precision="fp32", device="cpu")


def test_grouped_experts_are_a_named_lever() -> None:
    row = measure("sam_tiny", "conv_lora", image_size=None, batch=1, steps=1, warmup=0, precision="fp32",
                  device="cpu", moe_kernel="grouped")
    assert row["moe_kernel"] == "grouped" and "grouped experts" in render([row], "markdown")


def test_a_bad_attention_name_is_refused_once() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--backbone", "sam_tiny", "--methods", "lora,bitfit", "--device", "cpu", "--attention", "flash"])
    with pytest.raises(BenchError, match="option attention: 'flash' is not one of auto, sam, sdpa, folded"):
        run_all(args)
