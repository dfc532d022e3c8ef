"""Which prompts a run trains and evaluates with, and a batch's prompts for one mode.

Settings (``TrainConfig``): ``prompt`` (training; ``none`` by default), ``box_jitter`` (training
boxes) and ``eval_prompts`` (every test set is evaluated once per mode; the record's ``metrics``
hold the first mode, ``metrics_by_prompt[mode][test set]`` all of them). The samplers and the mode
syntax are :mod:`benchmark.data.prompts`; the decoding :mod:`benchmark.model.prompted`.

Which decoder path a mode takes (a choice): a run that trains without prompts evaluates ``none``
with the prompt-free head it trained (the Conv-LoRA tables, unchanged) and its prompted modes
through SAM's decoder; a run that trains with prompts takes SAM's decoder in every mode, ``none``
included, as SAM2LoRA's test mode 0 does. Validation (choosing the best epoch) uses the training
mode with test-time sampling, seeded per image and not per epoch, so epochs compare on the same
prompts. Prompts are drawn from the batch's ground truth at the model's input grid, after the
training flip, in the main process: seeded per (run seed, image name, mode, purpose, epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from benchmark.core.errors import BenchError
from benchmark.data.domains import Domain
from benchmark.data.prompts import PromptMode, eval_modes, parse_mode, prompt_rng, sample_prompt
from benchmark.model.prompted import Prompts

PromptsOf = Callable[[dict], Prompts | None]


@dataclass(frozen=True)
class PromptPlan:
    """A run's prompt modes: ``train`` (one), ``evals`` (in order, the first is the record's
    ``metrics``), and the training box jitter."""

    train: PromptMode
    evals: tuple[PromptMode, ...]
    box_jitter: float = 0.0

    @property
    def by_mode(self) -> bool:
        """Whether the run touches prompts at all (then its record has ``metrics_by_prompt``)."""
        return self.train.prompted or any(m.prompted for m in self.evals)

    def batch(self, batch: dict, mode: PromptMode, *, seed: int, purpose: str, epoch: int = 0) -> Prompts | None:
        """``batch``'s prompts for ``mode``; None where the prompt-free head decodes (module doc)."""
        if not mode.prompted and not self.train.prompted:
            return None
        masks = (batch["mask"][:, 0] > 0.5).cpu().numpy()
        drawn = [
            sample_prompt(mask, mode, prompt_rng(seed, name, mode, purpose, epoch), test=purpose != "train",
                          jitter=self.box_jitter)
            for mask, name in zip(masks, batch["name"], strict=True)
        ]
        return Prompts(tuple(p.points for p in drawn), tuple(p.box for p in drawn))

    def training(self, batch: dict, *, seed: int, epoch: int) -> Prompts | None:
        return self.batch(batch, self.train, seed=seed, purpose="train", epoch=epoch)

    def validation(self, *, seed: int) -> PromptsOf:
        return partial(self.batch, mode=self.train, seed=seed, purpose="val")

    def tests(self, *, seed: int) -> dict[str, PromptsOf]:
        """Mode key -> the prompts of a test batch, in ``evals`` order."""
        return {m.key: partial(self.batch, mode=m, seed=seed, purpose="test") for m in self.evals}


def prompt_plan(*, prompt: str, eval_prompts: tuple[str, ...], box_jitter: float, domain: Domain) -> PromptPlan:
    """The plan of a run's settings; ``BenchError`` (one line) when a multi-class domain is asked
    for prompts: a prompt selects one object, and the class tokens have no prompted output."""
    plan = PromptPlan(parse_mode(prompt), eval_modes(eval_prompts), box_jitter)
    if plan.by_mode and domain.task == "multiclass":
        raise BenchError(f"prompts are for binary domains; {domain.key} is multi-class "
                         f"(leave prompt and eval_prompts at none for it)")
    return plan
