"""Resume inside a run: the training state, written atomically beside the run's record, and the
preemption signals that ask a run to write it and stop.

The state is written at the end of every epoch and, when SIGTERM or SIGUSR1 arrives (what SLURM
sends before it preempts or times out a job), after the optimiser step in progress. It holds the
trainable parameters, optimiser, lr schedule and GradScaler, where the loop stands (epoch, batches
done, the running loss), the best metric, best epoch and best trainable state, the validation
history, the patience counter, every RNG state (python, numpy, torch CPU and CUDA) and the data
order (the loader's generator as it was when the epoch began). A rerun of the same command loads
it, replays the epoch's order up to where it stopped, restores the RNG states and continues: on
the CPU the finished record equals an uninterrupted run's bit for bit. The file is removed once
the run's record is written. A stopped run exits with :data:`PREEMPTED_EXIT` (75, EX_TEMPFAIL:
"try again"), so a job script can requeue itself.
"""

from __future__ import annotations

import random
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.core.io import save_torch_atomic
from benchmark.train import dist

PREEMPTED_EXIT = 75
STATE_SUFFIX = ".state.pt"
_stop = {"requested": False, "signal": None}


class Preempted(Exception):
    """A run stopped on request after writing its state; rerunning the command resumes it."""


class StateMismatch(BenchError):
    """A resume state that cannot be used: it stops the grid (its file is kept), it is not a failed run."""


def install_signal_handlers() -> None:
    """SIGTERM and SIGUSR1 ask the running training loop to write its state and stop."""

    def request(signum, frame) -> None:
        _stop["requested"], _stop["signal"] = True, signal.Signals(signum).name

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, request)


def stop_requested() -> bool:
    """Whether a stop was asked for (on any rank, under DDP: every rank must stop at one step)."""
    flag = _stop["requested"]
    if dist.world_size() > 1:
        t = torch.tensor([float(flag)], device=dist.collective_device())
        torch.distributed.all_reduce(t)
        flag = bool(t.item())
    return flag


def clear_stop() -> None:
    _stop["requested"], _stop["signal"] = False, None


def state_path_for(record_path: Path) -> Path:
    """``.../seed0.json`` -> ``.../seed0.state.pt``."""
    return record_path.with_name(record_path.stem + STATE_SUFFIX)


def rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain values (so the file loads with ``weights_only``)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(mt), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Progress:
    """Where the training loop stands; ``epoch`` is 0-based, ``batch`` counts the batches of that
    epoch already trained. ``done``: training finished (last epoch or early stop), test next."""

    epoch: int = 0
    batch: int = 0
    running: float = 0.0
    n_batches: int = 0
    best_score: float | None = None
    best_epoch: int = -1
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    done: bool = False


def save_state(path: Path, *, fingerprint: dict, progress: Progress, model, opt, sched, scaler,
               best_state: dict | None, epoch_generator_state: torch.Tensor) -> None:
    """Write the state atomically (rank 0 only under DDP). The best state is written only when it
    differs from the trainable one: after an improving epoch they are equal, and for from_scratch
    at ViT-H each copy is 2.6 GB."""
    if not dist.is_main():
        return
    # At an epoch's end (batch 0 of the next) right after the best epoch, nothing has trained since.
    best_is_trainable = best_state is not None and progress.batch == 0 and progress.best_epoch == progress.epoch
    save_torch_atomic({
        "fingerprint": fingerprint,
        "progress": asdict(progress),
        "trainable": model.trainable_state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "best_state": None if best_is_trainable else best_state,
        "best_is_trainable": best_is_trainable,
        "epoch_generator": epoch_generator_state,
        "rng": rng_state(),
    }, path)


def load_state(path: Path, fingerprint: dict) -> dict | None:
    """The saved state of this run, or None when there is none. A state written for other settings
    is refused in one line (resuming it would mix two runs); a corrupt one too."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: say which, do not guess
        raise StateMismatch(f"resume state {path} is unreadable ({type(exc).__name__}); delete it to start the run over") from None
    if state.get("fingerprint") != fingerprint:
        raise StateMismatch(f"resume state {path} was written with other settings; rerun with those settings "
                         "or delete it to start the run over")
    state["progress"] = Progress(**state["progress"])
    if state.get("best_is_trainable"):
        state["best_state"] = {k: v.clone() for k, v in state["trainable"].items()}
    return state
