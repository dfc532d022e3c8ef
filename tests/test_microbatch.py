"""Micro-batching keeps the maths: with a per-image-mean loss, batch 4 x accumulation 1, 2 x 2 and
1 x 4 take the same optimiser step (float rounding apart). SGD with lr 1 makes the step the mean
gradient itself, so a wrong scale of the accumulated gradient would show."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.data.domains import DOMAINS
from benchmark.data.synth import synth_domain
from benchmark.model.factory import build_model
from benchmark.train.engine import TrainConfig, train_and_evaluate


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth_domain("isic2017", root, n=4, seed=0)
    return root


def _one_step(data_root: Path, out: Path, batch: int) -> dict[str, torch.Tensor]:
    # 4 images, effective batch 4: one optimiser step of the mean gradient over the 4 images.
    cfg = TrainConfig(epochs=1, lr=1.0, batch_size=batch, effective_batch=4, optimizer="sgd", grad_clip=1e9,
                      hflip=False, max_train_images=4, num_threads=1, loss="structure")
    train_and_evaluate(method="lora", backbone="sam_tiny", domain=DOMAINS.get("isic2017"), seed=0,
                       data_root=data_root, checkpoint=None, method_overrides={}, train_cfg=cfg,
                       device=torch.device("cpu"), best_path=out, progress=False)
    return torch.load(out, weights_only=True)


def test_batch_4_2x2_and_1x4_take_the_same_step(data_root, tmp_path) -> None:
    steps = {b: _one_step(data_root, tmp_path / f"b{b}.pt", b) for b in (4, 2, 1)}
    torch.manual_seed(0)
    init = build_model("sam_tiny", "lora")[0].trainable_state_dict()
    for b in (2, 1):
        assert steps[b].keys() == steps[4].keys()
        for name, value in steps[4].items():
            update, other = value - init[name], steps[b][name] - init[name]
            # The encoder's kernels round differently at batch 1, 2 and 4 (oneDNN): tolerance, not bits.
            torch.testing.assert_close(other, update, rtol=1e-4, atol=1e-6, msg=f"batch {b}: {name}")
    assert any(not torch.equal(steps[4][n], init[n]) for n in init)  # the step moved the weights
