"""Prompted runs end to end on the tiny SAM: per-mode metrics in the record, the first mode as
``metrics``, the prompt-free path unchanged, and multi-class refused before any compute."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.data.domains import DOMAINS
from benchmark.data.synth import synth_domain
from benchmark.train.engine import TrainConfig, train_and_evaluate
from benchmark.train.runner import run_grid

BASE = TrainConfig(epochs=1, batch_size=2, effective_batch=2, max_train_images=2, num_threads=1, save_best=False)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth_domain("polyp", root, n=4, seed=0)
    return root


def _run(data_root: Path, cfg: TrainConfig):
    return train_and_evaluate(method="lora", backbone="sam_tiny", domain=DOMAINS.get("polyp"), seed=0,
                              data_root=data_root, checkpoint=None, method_overrides={}, train_cfg=cfg,
                              device=torch.device("cpu"), progress=False)


def test_eval_modes_add_per_mode_metrics_and_leave_the_prompt_free_run_as_it_was(data_root) -> None:
    plain = _run(data_root, BASE)
    modes = _run(data_root, replace(BASE, eval_prompts=("none", "points:1", "box")))
    assert plain.metrics_by_prompt is None
    assert list(modes.metrics_by_prompt) == ["none", "points:1", "box"]
    for test_set in DOMAINS.get("polyp").tests:
        assert set(modes.metrics_by_prompt["box"]) == set(plain.metrics)
        # Trained prompt-free: "none" is the prompt-free head, bit for bit the plain run's numbers.
        assert modes.metrics[test_set] == modes.metrics_by_prompt["none"][test_set] == plain.metrics[test_set]
        assert modes.metrics_by_prompt["box"][test_set] != modes.metrics_by_prompt["none"][test_set]


def test_prompted_training_records_every_mode_and_the_first_as_metrics(data_root, tmp_path, mini_sam) -> None:
    sets = ["epochs=1", "max_train_images=2", "max_eval_images=2", "prompt=points:2", "box_jitter=0.02",
            "eval_prompts=box,none"]
    run_grid(methods=["decoder_only"], domains=["polyp"], seeds=[0], out=tmp_path, data_root=data_root,
             sets=sets, progress=False)
    record = json.loads((tmp_path / "sam_tiny" / "polyp" / "decoder_only" / "seed0.json").read_text())
    assert record["status"] == "ok", record.get("error")
    assert list(record["metrics_by_prompt"]) == ["box", "none"]
    assert record["metrics"] == {ts: record["metrics_by_prompt"]["box"][ts] for ts in record["metrics"]}
    assert record["config"]["train"]["prompt"] == "points:2"
    assert record["config"]["train"]["eval_prompts"] == ["box", "none"]


def test_prompts_on_a_multiclass_domain_are_refused_before_any_compute(tmp_path) -> None:
    with pytest.raises(BenchError, match="prompts are for binary domains; trans10k"):
        run_grid(methods=["lora"], domains=["trans10k"], seeds=[0], out=tmp_path / "out",
                 sets=["eval_prompts=none,box"], data_root=tmp_path / "nowhere", progress=False)
    assert not (tmp_path / "out").exists()
