"""``torch.compile`` as an option: the image encoder or the whole model, compiled in place.

``compile="encoder"`` compiles the image encoder, ``"model"`` the whole segmentation model, with
``nn.Module.compile`` (in place: parameters, state-dict keys, hooks and checkpoints unchanged).
Compilation happens on the first call of each new situation (training, evaluation under
``no_grad``, a batch of another size) and is paid for in the run's time; :func:`compile_seconds`
reads how long TorchDynamo spent compiling (its ``_compile.compile_inner`` metric, which
includes the backend's code generation), which a run records as ``compile_seconds``.

The compiled code computes the same maths with fused kernels and other summation orders, so
results agree to float rounding, not bit for bit: hence off by default (tests/test_compiling.py
checks logits and gradients against the eager model; the inductor case needs a C++ compiler and
about a minute on the CPU, so it runs only with ``SAM_PEFT_BENCH_INDUCTOR=1``).

With the feature cache (a frozen encoder's outputs served from memory) the cache's lookup is
excluded from compilation (``torch.compiler.disable``): ``"encoder"`` then compiles nothing that
runs more than once per image, and ``"model"`` compiles the decoder around a graph break.
Conv-LoRA's routing step (``MoEConv.forward``) is excluded as well (``torch.compiler.disable``):
its shapes depend on which samples go to which expert, and traced whole it failed to compile under
inductor or differed from eager; eager there and compiled around it, Conv-LoRA agrees with eager
like LoRA (tests/test_compiling.py). Activation checkpointing is traced as torch's checkpoint
operator. Random numbers: inductor is set to draw them through eager's
generator (``fallback_random``), so Conv-LoRA's noisy gating sees the noise an eager run sees;
with inductor's own generator the gradients differed (tests/test_compiling.py).
"""

from __future__ import annotations

from torch import nn

COMPILE = ("off", "encoder", "model")


def set_compile(model: nn.Module, mode: str, *, backend: str = "inductor") -> None:
    """Compile the image encoder (``"encoder"``) or the whole model (``"model"``) in place."""
    if mode not in COMPILE:
        raise ValueError(f"compile must be one of {', '.join(COMPILE)}, got {mode!r}")
    if mode != "off":
        # Inductor draws random numbers with its own generator unless told to call eager's: Conv-LoRA's
        # gating noise would differ from the eager run's (measured: other gradients on sam_tiny).
        import torch._inductor.config as inductor_config

        inductor_config.fallback_random = True
    if mode == "encoder":
        model.sam.image_encoder.compile(backend=backend)
    elif mode == "model":
        model.compile(backend=backend)


def compile_seconds() -> float:
    """Seconds TorchDynamo has spent compiling in this process since its last reset (0 if it
    cannot say); ``torch._dynamo.reset()`` clears the metric."""
    try:
        from torch._dynamo.utils import compilation_time_metrics
    except ImportError:  # the metric is torch's internal bookkeeping; a missing one is not an error
        return 0.0
    return float(sum(compilation_time_metrics.get("_compile.compile_inner", [])))
