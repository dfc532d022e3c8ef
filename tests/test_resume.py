"""Resume inside a run: a run stopped mid-training (SIGKILL, SIGTERM, a stop request at a step or
an epoch boundary) and rerun ends with the record an uninterrupted run writes, bit for bit on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.data.domains import DOMAINS
from benchmark.data.synth import synth_domain
from benchmark.train import engine
from benchmark.train.engine import TrainConfig, train_and_evaluate
from benchmark.train.resume import PREEMPTED_EXIT, Preempted, StateMismatch

REPO = Path(__file__).resolve().parents[1]
# 8 images, batch 2, effective batch 4: two optimiser steps per epoch, so a stop can fall inside one.
CFG = TrainConfig(epochs=4, lr=1e-3, batch_size=2, num_threads=1, save_best=False)
EQUAL = ("metrics", "val_history", "best_epoch")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth_domain("isic2017", root, n=8, seed=0)
    return root


def _run(data_root: Path, state: Path | None, method: str = "conv_lora", cfg: TrainConfig = CFG):
    return train_and_evaluate(method=method, backbone="sam_tiny", domain=DOMAINS.get("isic2017"), seed=3,
                              data_root=data_root, checkpoint=None, method_overrides={}, train_cfg=cfg,
                              device=__import__("torch").device("cpu"), state_path=state, progress=False)


def _stop_at(monkeypatch, calls: set[int]) -> None:
    """Make the k-th stop check (k in ``calls``, 1-based) answer yes, as a SIGTERM would."""
    count = {"n": 0}

    def fake() -> bool:
        count["n"] += 1
        return count["n"] in calls

    monkeypatch.setattr(engine, "stop_requested", fake)


@pytest.mark.parametrize("stop_call", [1, 2, 4])  # 1: inside epoch 1; 2: after epoch 1; 4: after epoch 2
def test_stopped_then_resumed_run_equals_an_uninterrupted_one(stop_call, data_root, tmp_path, monkeypatch) -> None:
    # Conv-LoRA: its noisy gating draws from the torch RNG in every training step, so a wrongly
    # restored RNG (or data order) changes the result.
    whole = _run(data_root, None)
    state = tmp_path / "seed3.state.pt"
    _stop_at(monkeypatch, {stop_call})
    with pytest.raises(Preempted):
        _run(data_root, state)
    assert state.is_file()
    monkeypatch.setattr(engine, "stop_requested", lambda: False)
    resumed = _run(data_root, state)
    assert resumed.resumed_from is not None
    for key in ("metrics", "val_history", "best_epoch"):
        assert getattr(resumed, key) == getattr(whole, key), key


def test_a_state_for_other_settings_is_refused_and_kept(data_root, tmp_path, monkeypatch) -> None:
    state = tmp_path / "seed3.state.pt"
    _stop_at(monkeypatch, {2})
    with pytest.raises(Preempted):
        _run(data_root, state, method="lora")
    monkeypatch.setattr(engine, "stop_requested", lambda: False)
    with pytest.raises(StateMismatch, match="written with other settings"):
        _run(data_root, state, method="lora", cfg=TrainConfig(epochs=5, lr=1e-3, batch_size=2, num_threads=1))
    assert state.is_file()


def _cli(out: Path, data_root: Path) -> list[str]:
    return [sys.executable, "-m", "benchmark", "run", "--methods", "conv_lora", "--domains", "isic2017",
            "--seeds", "3", "--data-root", str(data_root), "--out", str(out), "--no-progress",
            "--set", "epochs=25", "--set", "lr=1e-3"]


def _start_and_signal(out: Path, data_root: Path, sig: int) -> subprocess.Popen:
    """Start the grid; send ``sig`` once the run has written its first epoch's state."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli(out, data_root), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.rglob("*.state.pt")) and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait()
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_or_preempted_command_resumes_to_the_same_record(sig, data_root, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    whole_out, out = tmp_path / "whole", tmp_path / "cut"
    assert subprocess.run(_cli(whole_out, data_root), cwd=REPO, env=env, capture_output=True).returncode == 0
    proc = _start_and_signal(out, data_root, sig)
    err = proc.stderr.read()
    if sig == signal.SIGTERM:
        assert proc.returncode == PREEMPTED_EXIT, err
        assert "the state is saved, rerun the same command to resume" in err
    assert not list(out.rglob("seed*.json")), "the run must not have finished before the signal"
    assert list(out.rglob("*.state.pt"))
    assert subprocess.run(_cli(out, data_root), cwd=REPO, env=env, capture_output=True).returncode == 0
    whole = json.loads(next(whole_out.rglob("seed3.json")).read_text())
    cut = json.loads(next(out.rglob("seed3.json")).read_text())
    for key in EQUAL:
        assert cut[key] == whole[key], key
    # The rerun trained only what was left (less than the whole run), and cleaned up its state.
    assert cut["resumed_from"]["epoch"] > 1 and whole["resumed_from"] is None
    assert not list(out.rglob("*.state.pt"))


def test_the_best_state_is_stored_once_when_it_is_the_trainable_one(tmp_path) -> None:
    import torch

    from benchmark.train.resume import Progress, load_state, save_state

    model = torch.nn.Linear(2, 1)
    model.trainable_state_dict = lambda: {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    best = model.trainable_state_dict()
    cases = {"after the best epoch": (Progress(epoch=2, best_epoch=2), None),
             "an epoch later": (Progress(epoch=3, best_epoch=2), best),
             "inside the epoch after it": (Progress(epoch=2, batch=1, best_epoch=2), best)}
    for name, (progress, stored) in cases.items():
        path = tmp_path / f"{name}.pt"
        save_state(path, fingerprint={}, progress=progress, model=model, opt=opt, sched=sched, scaler=None,
                   best_state=best, epoch_generator_state=torch.zeros(1))
        raw = torch.load(path, weights_only=True)
        assert (raw["best_state"] is None) == (stored is None), name
        loaded = load_state(path, {})["best_state"]
        assert loaded.keys() == best.keys() and all(torch.equal(loaded[k], best[k]) for k in best), name


# SAM2LoRA's recipe (benchmark/train/runner.py, preset sam2lora): cosine restarts within the run,
# their augmentation drawn from the RNG, the lowest training loss kept, and a length in optimiser
# steps whose last epoch is cut short (7 steps = 3 epochs of 2 and one step).
RECIPE = TrainConfig(max_steps=7, lr=1e-3, batch_size=2, num_threads=1, save_best=False, patience=None,
                     schedule="cosine_restarts", restart_steps=3, augment="sam2lora", select="train_loss",
                     loss="sam2lora")


@pytest.mark.parametrize("stop_call", [1, 4])  # 1: inside epoch 1; 4: after epoch 2
def test_resumed_sam2lora_recipe_equals_an_uninterrupted_run(stop_call, data_root, tmp_path, monkeypatch) -> None:
    whole = _run(data_root, None, method="sam2lora", cfg=RECIPE)
    assert len(whole.val_history) == 4
    state = tmp_path / "seed3.state.pt"
    _stop_at(monkeypatch, {stop_call})
    with pytest.raises(Preempted):
        _run(data_root, state, method="sam2lora", cfg=RECIPE)
    monkeypatch.setattr(engine, "stop_requested", lambda: False)
    resumed = _run(data_root, state, method="sam2lora", cfg=RECIPE)
    assert resumed.resumed_from is not None
    for key in EQUAL:
        assert getattr(resumed, key) == getattr(whole, key), key
