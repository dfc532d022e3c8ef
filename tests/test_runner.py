"""The grid runner and the training engine on the smoke preset: records, resume, failures, shards,
determinism and DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.data.domains import DOMAINS
from benchmark.data.synth import synth_domain
from benchmark.train.engine import TrainConfig, train_and_evaluate
from benchmark.train.runner import grid, run_grid, shard_of
from methods import METHODS, register_method

REPO = Path(__file__).resolve().parents[1]
FAST = ["epochs=1", "max_train_images=4"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, mini_sam) -> Path:
    """Synthetic data; requesting the mini-SAM first keeps its one-time build out of the timed tests."""
    root = tmp_path_factory.mktemp("data")
    for key in ("polyp", "sbu", "trans10k"):
        synth_domain(key, root, n=4, seed=0)
    return root


def _records(out: Path) -> dict[str, dict]:
    return {str(p.relative_to(out)): json.loads(p.read_text()) for p in sorted(out.rglob("seed*.json"))}


def test_smoke_run_writes_ok_records_with_every_metric_key(data_root, tmp_path) -> None:
    out = tmp_path / "runs"
    done = run_grid(methods=["decoder_only", "conv_lora"], domains=["polyp", "trans10k"], seeds=[0], out=out,
                    data_root=data_root, sets=FAST, progress=False)
    assert len(done) == 4
    recs = _records(out)
    assert len(recs) == 4
    for rec in recs.values():
        assert rec["status"] == "ok", rec["error"]
        domain = DOMAINS.get(rec["domain"])
        assert set(rec["metrics"]) == set(domain.tests)
        for values in rec["metrics"].values():
            assert set(values) == set(domain.test_metrics)
        for key in ("trainable_params", "total_params", "train_seconds", "eval_seconds", "peak_memory_mb",
                    "config", "versions", "git_commit", "val_history", "seed", "backbone"):
            assert key in rec
        assert rec["trainable_params"] < rec["total_params"]
        assert rec["config"]["train"]["epochs"] == 1
    polyp = recs["sam_tiny/polyp/conv_lora/seed0.json"]["metrics"]
    assert set(polyp) == {"kvasir", "cvc_clinicdb"}
    assert 0.0 <= polyp["kvasir"]["sm"] <= 1.0
    assert len(recs["sam_tiny/trans10k/decoder_only/seed0.json"]["metrics"]["trans10k"]["class_iou"]) == 12
    assert not list(out.rglob("*.tmp"))


def test_same_seed_gives_identical_records(data_root, tmp_path) -> None:
    kw = dict(methods=["conv_lora"], domains=["sbu"], seeds=[3], data_root=data_root, sets=FAST, progress=False)
    a = run_grid(out=tmp_path / "a", **kw)[0]
    b = run_grid(out=tmp_path / "b", **kw)[0]
    assert a["metrics"] == b["metrics"]
    assert a["val_history"] == b["val_history"]
    c = run_grid(out=tmp_path / "c", **{**kw, "seeds": [4]})[0]
    assert c["val_history"] != a["val_history"]


def test_resume_skips_ok_records_and_force_reruns(data_root, tmp_path) -> None:
    out = tmp_path / "runs"
    kw = dict(methods=["decoder_only"], domains=["sbu"], seeds=[0, 1], out=out, data_root=data_root,
              sets=FAST, progress=False)
    assert len(run_grid(**kw)) == 2
    first = out / "sam_tiny/sbu/decoder_only/seed0.json"
    stamp = first.stat().st_mtime_ns
    assert run_grid(**kw) == []
    assert first.stat().st_mtime_ns == stamp
    # A failed record is retried.
    rec = json.loads(first.read_text())
    first.write_text(json.dumps({**rec, "status": "failed", "error": "x"}))
    again = run_grid(**kw)
    assert [(r["seed"], r["status"]) for r in again] == [(0, "ok")]
    assert len(run_grid(**kw, force=True)) == 2


@dataclass(frozen=True)
class _NaNConfig:
    """Test-only method: poisons the image embedding so the loss becomes NaN."""


def test_nan_loss_is_recorded_as_failed_and_grid_goes_on(data_root, tmp_path, capsys) -> None:
    @register_method("nan_bomb", _NaNConfig)
    def apply_nan(model, cfg):
        model.sam.image_encoder.neck.register_forward_hook(lambda m, a, out: out * float("nan"))

    try:
        out = tmp_path / "runs"
        code = main(["run", "--methods", "nan_bomb,decoder_only", "--domains", "sbu", "--seeds", "0",
                     "--data-root", str(data_root), "--out", str(out), "--no-progress",
                     *sum((["--set", s] for s in FAST), [])])
    finally:
        METHODS._items.pop("nan_bomb", None)
    assert code == 1
    recs = _records(out)
    bad = recs["sam_tiny/sbu/nan_bomb/seed0.json"]
    assert bad["status"] == "failed" and "loss became nan" in bad["error"]
    assert recs["sam_tiny/sbu/decoder_only/seed0.json"]["status"] == "ok"
    assert "failed: nan_bomb/sbu/seed0: loss became nan" in capsys.readouterr().err


def test_bad_data_file_fails_its_runs_before_compute(data_root, tmp_path) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    victim = next((root / "SBU-shadow").rglob("*.jpg"))
    victim.write_bytes(victim.read_bytes()[:40])
    recs = run_grid(methods=["decoder_only"], domains=["sbu"], seeds=[0], out=tmp_path / "runs",
                    data_root=root, sets=FAST, progress=False)
    assert recs[0]["status"] == "failed"
    assert victim.name in recs[0]["error"]
    assert "train_seconds" not in recs[0]


def test_shards_cover_the_grid_exactly_once() -> None:
    keys = grid(METHODS.keys(), DOMAINS.keys(), [0, 1, 2], "sam_vit_h")
    for n in (1, 2, 3, 7):
        parts = [shard_of(keys, k, n) for k in range(1, n + 1)]
        flat = [k for p in parts for k in p]
        assert sorted(flat, key=repr) == sorted(keys, key=repr)
        assert len(flat) == len(set(flat)) == len(METHODS) * len(DOMAINS) * 3


def test_two_shards_write_the_whole_grid(data_root, tmp_path) -> None:
    out = tmp_path / "runs"
    kw = dict(methods=["decoder_only", "lora"], domains=["sbu"], seeds=[0, 1], out=out, data_root=data_root,
              sets=FAST, progress=False)
    a = run_grid(**kw, shard="1/2")
    b = run_grid(**kw, shard="2/2")
    assert len(a) == len(b) == 2
    assert len(_records(out)) == 4
    assert {(r["method"], r["seed"]) for r in a}.isdisjoint({(r["method"], r["seed"]) for r in b})


def test_grid_level_bad_input_fails_at_once(data_root, tmp_path, capsys) -> None:
    base = ["run", "--domains", "sbu", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main([*base, "--methods", "lora,nope", "--data-root", str(data_root)]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main([*base, "--methods", "lora", "--data-root", str(tmp_path / "missing")]) == 2
    assert "data root not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*base, "--methods", "lora", "--data-root", str(tmp_path / "empty")]) == 2
    assert "SBU-shadow" in capsys.readouterr().err
    assert main([*base, "--methods", "lora", "--preset", "paper", "--data-root", str(data_root)]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err
    assert main([*base, "--methods", "lora", "--checkpoint", str(tmp_path / "no.pth"),
                 "--data-root", str(data_root)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert main([*base, "--methods", "lora", "--checkpoint", str(bad), "--data-root", str(data_root)]) == 2
    assert f"checkpoint {bad} is truncated or corrupt" in capsys.readouterr().err
    assert main([*base, "--methods", "lora", "--set", "rnk=3", "--data-root", str(data_root)]) == 2
    assert "rnk" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_killed_grid_resumes_without_redoing_or_partial_files(data_root, tmp_path) -> None:
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "benchmark", "run", "--methods", "decoder_only,lora", "--domains", "sbu",
           "--seeds", "0", "1", "--data-root", str(data_root), "--out", str(out), "--no-progress",
           *sum((["--set", s] for s in FAST), [])]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.rglob("seed*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.rglob("seed*.json")}
    assert 1 <= len(finished) < 4
    assert subprocess.run(cmd, cwd=REPO, env=env, capture_output=True).returncode == 0
    recs = list(out.rglob("seed*.json"))
    assert len(recs) == 4
    assert all(json.loads(p.read_text())["status"] == "ok" for p in recs)
    for p, stamp in finished.items():
        assert p.stat().st_mtime_ns == stamp, f"{p} was redone"
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".json"]


def _ddp_worker(rank: int, port: int, data_root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    from benchmark.train import dist

    device = dist.init_from_env(torch.device("cpu"))
    _first_step(Path(data_root), Path(out), device)
    torch.distributed.destroy_process_group()


def _first_step(data_root: Path, out: Path, device) -> None:
    # 4 images, effective batch 4: one optimiser step. SGD(lr=1) makes the update the mean gradient
    # itself (AdamW's first step is ~lr * sign(g) and would hide a wrong scale).
    cfg = TrainConfig(epochs=1, lr=1.0, batch_size=1, optimizer="sgd", grad_clip=1e9, hflip=False,
                      max_train_images=4, num_threads=1)
    train_and_evaluate(method="lora", backbone="sam_tiny", domain=DOMAINS.get("sbu"), seed=0, data_root=data_root,
                       checkpoint=None, method_overrides={}, train_cfg=cfg, device=device, best_path=out,
                       progress=False)


def test_ddp_two_processes_match_single_process_first_step(data_root, tmp_path) -> None:
    single = tmp_path / "single.pt"
    _first_step(data_root, single, torch.device("cpu"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ddp = tmp_path / "ddp.pt"
    torch.multiprocessing.spawn(_ddp_worker, args=(port, str(data_root), str(ddp)), nprocs=2, join=True)
    a, b = torch.load(single, weights_only=True), torch.load(ddp, weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=1e-4), name
    # The step did move the weights (the comparison is not between two untouched models).
    from benchmark.model.factory import build_model

    torch.manual_seed(0)
    model, _ = build_model("sam_tiny", "lora")
    init = model.trainable_state_dict()
    assert any(not torch.allclose(init[n], a[n]) for n in a)


def test_unknown_preset_and_bad_shard(data_root, tmp_path) -> None:
    with pytest.raises(BenchError, match="unknown preset"):
        run_grid(methods=["lora"], domains=["sbu"], seeds=[0], out=tmp_path, preset="nope", data_root=data_root)
    with pytest.raises(BenchError, match="K/N"):
        run_grid(methods=["lora"], domains=["sbu"], seeds=[0], out=tmp_path, shard="3", data_root=data_root)


def test_original_resolution_protocol_scores_at_each_gt_size(data_root, tmp_path) -> None:
    kw = dict(methods=["decoder_only"], domains=["sbu"], seeds=[0], data_root=data_root, progress=False)
    official = run_grid(out=tmp_path / "a", sets=FAST, **kw)[0]
    original = run_grid(out=tmp_path / "b", sets=[*FAST, "eval_protocol=original"], **kw)[0]
    assert official["status"] == original["status"] == "ok"
    assert original["config"]["train"]["eval_protocol"] == "original"
    # Same model (same seed), different protocol: the numbers differ because the sizes differ.
    assert official["val_history"] == original["val_history"]
    assert official["metrics"]["sbu"]["ber"] != original["metrics"]["sbu"]["ber"]


def test_stale_temporary_from_a_killed_writer_is_removed(tmp_path) -> None:
    from benchmark.core.io import remove_stale_temporaries

    folder = tmp_path / "sam_tiny" / "sbu" / "lora"
    folder.mkdir(parents=True)
    dead = folder / ".seed0.json.999999999.tmp"
    alive = folder / f".seed1.json.{os.getpid()}.tmp"
    dead.write_text("{")
    alive.write_text("{")
    remove_stale_temporaries(tmp_path)
    assert not dead.exists() and alive.exists()


def test_loss_override_must_suit_the_domains(data_root, tmp_path, capsys) -> None:
    code = main(["run", "--methods", "lora", "--domains", "sbu,trans10k", "--set", "loss=composite",
                 "--data-root", str(data_root), "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2
    assert "loss composite is for binary domains; trans10k is not" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_an_unexpected_error_is_recorded_and_the_grid_goes_on(data_root, tmp_path) -> None:
    @register_method("type_error", _NaNConfig)
    def apply_broken(model, cfg):
        model.sam.image_encoder.neck.register_forward_hook(lambda m, a, out: out + "x")

    try:
        recs = run_grid(methods=["type_error", "decoder_only"], domains=["sbu"], seeds=[0], out=tmp_path,
                        data_root=data_root, sets=FAST, progress=False)
    finally:
        METHODS._items.pop("type_error", None)
    assert [r["status"] for r in recs] == ["failed", "ok"]
    assert recs[0]["error"].startswith("TypeError")
