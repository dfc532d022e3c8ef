"""``bench gpu-check`` as a user without a GPU runs it: the same plan on the CPU, and a clear refusal."""

from __future__ import annotations

import pytest
import torch

from benchmark.cli import main
from benchmark.model.factory import supports
from methods import METHODS


def test_gpu_check_on_cpu_runs_every_method_in_bf16_and_fp16(tmp_path, capsys) -> None:
    code = main(["bench", "gpu-check", "--device", "cpu", "--backbone", "sam_tiny", "--no-progress",
                 "--work", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ") and not line.startswith("| method")}
    assert sorted(rows) == sorted(m for m in METHODS.keys() if supports(m, "sam_tiny") and METHODS.get(m).trains)
    for method, (binary, trans10k, fp16, ms, gib) in rows.items():
        assert binary == "ok" and trans10k == "ok", method
        assert fp16 == ("ok" if method in ("lora", "conv_lora") else "-"), method
        assert float(ms) > 0 and float(gib) > 0
    # The runs are real: records and a checkpoint the upstream-class builder wrote.
    assert (tmp_path / "random_checkpoint.pth").stat().st_size > 0
    records = list((tmp_path / "runs-bf16").rglob("seed0.json"))
    assert len(records) == 2 * len(rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_check_without_cuda_says_so_in_one_line(capsys) -> None:
    assert main(["bench", "gpu-check", "--backbone", "sam_tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no CUDA device here") and "--device cpu" in err[0]
