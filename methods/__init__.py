"""PEFT methods: one file each, registered by key with a frozen config dataclass of the paper's defaults.

Adding a method is one file in this folder::

    @dataclass(frozen=True)
    class MyConfig:
        rank: int = 4

    @register_method("my_method", MyConfig)
    def apply_my_method(model: SegmentationModel, cfg: MyConfig) -> None:
        ...  # wrap/freeze through model.view; new modules are trainable, the rest stays as set

Every module in this package is imported when the package is, so the file alone registers it.
``apply`` receives a :class:`~benchmark.model.head.SegmentationModel` whose trainable part is the
decoder-only set; it adds or unfreezes its own parameters only.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.core.options import apply_overrides
from benchmark.core.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """A registered method and what it declares about itself (the one home of these facts).

    ``families``: backbone families it is defined for ("sam": segment-anything ViT, "sam2": Hiera).
    ``pretrained``: starts from the pretrained checkpoint (False: random init, no checkpoint read).
    ``trains_decoder``: the decoder-only part trains alongside (False: the method replaces it).
    ``unfreezes``: glob patterns of the model's own parameter names it makes trainable beyond
    the decoder-only part (BitFit the encoder biases; from scratch everything).
    ``adds_parameters``: it injects new trainable modules.
    ``trains``: False for a reference row that leaves nothing trainable (zero-shot): the engine
    evaluates it without an epoch, and training-step checks and timings leave it out.
    ``mask_output``: which of SAM's decoder outputs a prompted run keeps, as the index of its mask
    token and hypernetwork MLP: 0 SAM's single-mask output (the default), 1..3 the multimask
    outputs (SAM2LoRA: 1, multimask output 0). The prompt-free head ignores it.
    """

    key: str
    config_cls: type
    apply: Callable[[Any, Any], None]
    families: tuple[str, ...] = ("sam", "sam2")
    pretrained: bool = True
    trains_decoder: bool = True
    unfreezes: tuple[str, ...] = ()
    adds_parameters: bool = True
    trains: bool = True
    mask_output: int = 0

    @property
    def doc(self) -> str:
        module = importlib.import_module(self.apply.__module__)
        return (module.__doc__ or "").strip().splitlines()[0]


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(key: str, config_cls: type, *, families: tuple[str, ...] = ("sam", "sam2"),
                    pretrained: bool = True, trains_decoder: bool = True, unfreezes: tuple[str, ...] = (),
                    adds_parameters: bool = True, trains: bool = True, mask_output: int = 0) -> Callable:
    """Decorator registering ``apply(model, cfg)`` under ``key`` with its declarations
    (:class:`MethodSpec`); rejects duplicate or bad keys. Building a method on a backbone family it
    does not declare is refused before any model is built."""
    if not (dataclasses.is_dataclass(config_cls) and config_cls.__dataclass_params__.frozen):
        raise TypeError(f"method {key!r}: config {config_cls.__name__} must be a frozen dataclass")
    unknown = set(families) - {"sam", "sam2"}
    if not families or unknown:
        raise TypeError(f"method {key!r}: families must be among 'sam', 'sam2', got {families}")
    if mask_output not in (0, 1, 2, 3):
        raise TypeError(f"method {key!r}: mask_output must be one of SAM's outputs 0..3, got {mask_output}")

    def wrap(fn: Callable) -> Callable:
        METHODS.register(key, MethodSpec(key, config_cls, fn, tuple(families), pretrained, trains_decoder,
                                          tuple(unfreezes), adds_parameters, trains, mask_output))
        return fn

    return wrap


def make_config(key: str, overrides: dict[str, str] | None = None) -> Any:
    """The method's default config with ``overrides`` (strings, as from ``--set k=v``) parsed,
    range-checked and applied (:mod:`benchmark.core.options`)."""
    spec = METHODS.get(key)
    return apply_overrides(spec.config_cls(), overrides or {}, owner=key)


def config_fields(key: str) -> dict[str, Any]:
    return dataclasses.asdict(METHODS.get(key).config_cls())


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "layers":
            importlib.import_module(f"{__name__}.{info.name}")


_import_all()
