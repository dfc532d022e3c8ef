"""The miniature pretrained SAM: its scenes and prompts, a deterministic cache keyed by the recipe,
and learning at smoke scale (a broken training path fails here)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.data.scenes import paint_scene
from benchmark.data.synth import synth_domain
from benchmark.model.checkpoints import verify_checkpoint
from benchmark.train.pretrain import (
    PRETRAIN_VERSION,
    MiniSAMRecipe,
    checkpoint_path,
    ensure_mini_sam,
    recipe_for,
    sample_prompts,
)
from benchmark.train.runner import PRESETS, run_grid

TINY = MiniSAMRecipe(scenes=12, steps=3, batch_size=4, warmup_steps=1)  # seconds, not minutes


def test_scenes_are_deterministic_and_varied() -> None:
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    scenes = [paint_scene(a, 64) for _ in range(100)]
    for img, lab in scenes[:10]:
        img2, lab2 = paint_scene(b, 64)
        assert np.array_equal(img, img2) and np.array_equal(lab, lab2)
    img, lab = scenes[0]
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and lab.shape == (64, 64) and lab.dtype == np.uint8
    counts = [len(np.unique(lab[lab > 0])) for _, lab in scenes]
    assert min(counts) >= 1 and max(counts) >= 3  # one to four objects, some occluded
    fractions = [float((lab > 0).mean()) for _, lab in scenes]
    assert 0.05 < np.mean(fractions) < 0.5 and min(fractions) < 0.02  # thin curves alone are tiny


def test_prompts_point_into_their_target_and_negatives_outside() -> None:
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(np.stack([paint_scene(rng, 64)[1] for _ in range(64)]))
    coords, kinds, targets = sample_prompts(labels, rng)
    assert coords.shape == (64, 3, 2) and kinds.shape == (64, 3) and targets.shape == (64, 1, 64, 64)
    assert (kinds[:, 0] == 1).all() and (kinds == 0).any() and (kinds[:, 1] == -1).any()
    for i in range(64):
        target = targets[i, 0]
        assert target.any() and set(labels[i][target.bool()].unique().tolist()) == {int(labels[i][target.bool()][0])}
        for (x, y), kind in zip(coords[i].long().tolist(), kinds[i].tolist(), strict=True):
            if kind >= 0:
                assert target[y, x] == kind


def test_pretraining_is_deterministic_cached_and_loads_strictly(tmp_path, monkeypatch) -> None:
    a = ensure_mini_sam(recipe=TINY, cache=tmp_path / "a", progress=False)
    monkeypatch.setattr(os, "getpid", lambda: 4242)  # as another process (temporary names hold the pid)
    b = ensure_mini_sam(recipe=TINY, cache=tmp_path / "b", progress=False)
    monkeypatch.undo()
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    stamp = a.stat().st_mtime_ns
    assert ensure_mini_sam(recipe=TINY, cache=tmp_path / "a", progress=False) == a
    assert a.stat().st_mtime_ns == stamp  # found in the cache, not rebuilt
    verify_checkpoint(a, "sam_tiny")  # a plain segment-anything state dict, strict keys and shapes
    assert not list((tmp_path / "a").glob(".*.tmp"))
    other = ensure_mini_sam(recipe=replace(TINY, seed=1), cache=tmp_path / "a", progress=False)
    assert other.read_bytes() != a.read_bytes()


def test_the_cache_key_follows_every_recipe_field() -> None:
    variants = [TINY, replace(TINY, seed=1), replace(TINY, steps=4), replace(TINY, lr=1e-3),
                replace(TINY, scenes=13), replace(TINY, threads=2)]
    paths = [checkpoint_path(r, Path("/c")) for r in variants]
    assert len(set(paths)) == len(variants)
    assert paths[0].name.startswith(f"mini-sam_tiny-{PRETRAIN_VERSION}-seed0-")
    assert paths[1].name.startswith(f"mini-sam_tiny-{PRETRAIN_VERSION}-seed1-")
    assert checkpoint_path(TINY, Path("/c")) == paths[0]  # stable for one recipe
    with pytest.raises(BenchError, match="no miniature pretraining recipe"):
        recipe_for("sam_vit_b")


def test_smoke_fine_tuning_from_the_mini_sam_learns(mini_sam, tmp_path) -> None:
    """The smoke recipe on synthetic ISIC and leaf: LoRA clearly beats the model before fine-tuning,
    and on leaf (where "foreground" differs most from pretraining) it beats decoder-only too,
    which needs gradients to reach the encoder's adapters. Margins are a third of those measured."""
    root = tmp_path / "data"
    for key in ("isic2017", "leaf"):
        synth_domain(key, root, n=PRESETS["smoke"].synth_n, seed=0)
    recs = run_grid(methods=["zero_shot", "decoder_only", "lora"], domains=["isic2017", "leaf"], seeds=[0],
                    out=tmp_path / "runs", data_root=root, progress=False)
    assert all(r["status"] == "ok" for r in recs), [r["error"] for r in recs]
    assert {r["config"]["checkpoint"] for r in recs} == {str(mini_sam)}
    score = {(r["method"], r["domain"]): r["metrics"][r["domain"]]["dice"] for r in recs}
    assert score["lora", "isic2017"] >= 0.85
    assert score["lora", "isic2017"] >= score["zero_shot", "isic2017"] + 0.15
    assert score["lora", "leaf"] >= score["zero_shot", "leaf"] + 0.2
    assert score["lora", "leaf"] >= score["decoder_only", "leaf"] + 0.15
    zero = next(r for r in recs if r["method"] == "zero_shot")
    assert zero["trainable_params"] == 0 and zero["val_history"] == []
