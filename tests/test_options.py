"""The one option parser: every bad setting stops the grid before any run, in one line."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.core.options import apply_overrides, option


@pytest.mark.parametrize(("setting", "expected"), [
    ("epochs=-1", "option epochs: '-1' is not allowed; expected an integer >= 1 (or none)"),
    ("epochs=0", "option epochs: '0' is not allowed; expected an integer >= 1 (or none)"),
    ("epochs=2.5", "option epochs: '2.5' is not allowed"),
    ("rank=0", "option lora.rank: '0' is not allowed; expected an integer >= 1"),
    ("lr=nan", "option lr: 'nan' is not allowed; expected a finite number > 0 (or none)"),
    ("lr=-1e-4", "option lr: '-1e-4' is not allowed"),
    ("conv_lora.scales=0", "option conv_lora.scales: '0' is not allowed; expected a comma-separated list of integers >= 1"),
    ("conv_lora.top_k=9", "option conv_lora.top_k: 9 is not allowed; expected at most the number of experts (8)"),
    ("precision=bf17", "option precision: 'bf17' is not allowed; expected one of auto, fp32, bf16, fp16"),
    ("patience=0", "option patience: '0' is not allowed"),
    ("optimizer=adam", "option optimizer: 'adam' is not allowed; expected one of adamw, sgd"),
    ("eval_protocol=mine", "option eval_protocol: 'mine' is not allowed; expected one of official, original"),
    ("hflip=maybe", "option hflip: 'maybe' is not allowed; expected true or false"),
    ("lora.targets=qkv,attn", "option lora.targets: 'qkv,attn' is not allowed; expected one of qkv, proj, fc1, fc2"),
])
def test_a_bad_setting_exits_2_in_one_line_and_writes_nothing(setting, expected, tmp_path, capsys) -> None:
    out = tmp_path / "runs"
    code = main(["run", "--methods", "lora,conv_lora", "--domains", "isic2017", "--set", setting,
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and expected in err[0], err
    assert not out.exists() or not any(out.rglob("*"))


@pytest.mark.parametrize("argv", [["--seeds", "-1"], ["--seeds", "x"], ["--shard", "3/2"]])
def test_bad_seeds_and_shards_exit_2(argv, tmp_path, capsys) -> None:
    out = tmp_path / "runs"
    try:
        code = main(["run", "--methods", "lora", "--domains", "isic2017", "--out", str(out), *argv])
    except SystemExit as exc:  # argparse's own exit for a bad --seeds
        code = exc.code
    assert code == 2
    assert not out.exists()


@dataclass(frozen=True)
class _Toy:
    n: int = option(2, min=1, max=4)
    frac: float = option(0.5, gt=0, lt=1)
    names: tuple[str, ...] = option(("a",), choices=("a", "b"))
    cap: int | None = option(None, min=1)
    flag: bool = False


def test_parser_reads_types_and_checks_ranges() -> None:
    cfg = apply_overrides(_Toy(), {"n": "4", "frac": "0.25", "names": "a, b", "cap": "none", "flag": "yes"})
    assert cfg == _Toy(n=4, frac=0.25, names=("a", "b"), cap=None, flag=True)
    assert apply_overrides(_Toy(), {"cap": "3"}).cap == 3
    for key, text in [("n", "5"), ("n", "0"), ("frac", "1"), ("frac", "inf"), ("names", "c"), ("names", ""),
                      ("cap", "0"), ("flag", "2")]:
        with pytest.raises(BenchError, match=f"option {key}: '{text}' is not allowed"):
            apply_overrides(_Toy(), {key: text})
    with pytest.raises(BenchError, match="unknown option 'm'; valid: n, frac, names, cap, flag"):
        apply_overrides(_Toy(), {"m": "1"})
