"""zero-shot: the pretrained SAM evaluated as loaded, nothing trained (a reference row, not a PEFT method).

Not a row of the Conv-LoRA paper: it answers "how far does fine-tuning move the model?", the
floor every method should clear. With the smoke preset it is the miniature pretrained SAM
(``benchmark.train.pretrain``) before any adaptation to the domain.
Trainable: nothing. The prompt-free head's mask token is SAM's first mask token and its class
head (Trans10K) stays at its random initialisation, so the multi-class row is near chance by
construction. The engine trains no epoch when nothing is trainable and evaluates at once.
Injected: nothing. Deviations: not applicable.
"""

from __future__ import annotations

from dataclasses import dataclass

from methods import register_method


@dataclass(frozen=True)
class ZeroShotConfig:
    """No options."""


@register_method("zero_shot", ZeroShotConfig, trains=False, trains_decoder=False, adds_parameters=False)
def apply_zero_shot(model, cfg: ZeroShotConfig) -> None:
    """Freeze every parameter, including the decoder-only part and our own tokens."""
    for p in model.parameters():
        p.requires_grad_(False)
