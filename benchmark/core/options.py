"""The one option parser: ``--set key=value`` strings -> typed, range-checked config dataclasses.

Training settings and every method's options are frozen dataclasses whose fields say their type
(``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``, optionally ``| None``) and, through
:func:`option`, what values they allow. One code path reads and checks them all, so a bad value
stops a grid before any run, with one line naming the option, the value and what is allowed::

    @dataclass(frozen=True)
    class LoRAConfig:
        rank: int = option(3, min=1, help="bottleneck rank r")

A config may add cross-field rules in ``__post_init__`` (raising :class:`BenchError`); they run
on every construction, defaults included.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from benchmark.core.errors import BenchError

C = TypeVar("C")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def option(default: Any, *, min: float | None = None, max: float | None = None, gt: float | None = None,
           lt: float | None = None, choices: Sequence[str] | None = None, pattern: str | None = None,
           help: str = "") -> Any:
    """A dataclass field with its allowed range: ``min``/``max`` inclusive, ``gt``/``lt`` strict,
    ``choices`` for strings, ``pattern`` a regular expression a string must match whole (``help``
    then says the form in words). Numbers are also required to be finite. Ranges apply to every
    element of a tuple."""
    rules = {"min": min, "max": max, "gt": gt, "lt": lt, "choices": tuple(choices) if choices else None,
             "pattern": pattern, "help": help}
    return dataclasses.field(default=default, metadata={k: v for k, v in rules.items() if v is not None})


def _unwrap_optional(typ: Any) -> tuple[Any, bool]:
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(typ)) == 2:
            return args[0], True
    return typ, False


def allowed(typ: Any, meta: Mapping[str, Any]) -> str:
    """What a field accepts, in words: ``an integer >= 1``, ``one of fp32, bf16``, ..."""
    base, optional = _unwrap_optional(typ)
    if meta.get("choices"):
        text = "one of " + ", ".join(meta["choices"])
    elif meta.get("pattern"):
        text = meta.get("help") or f"a string matching {meta['pattern']}"
        if typing.get_origin(base) is tuple:
            text = f"a comma-separated list of {text}"
    elif base is bool:
        text = "true or false"
    else:
        inner = typing.get_args(base)[0] if typing.get_origin(base) is tuple else base
        noun = {int: "an integer", float: "a finite number", str: "a string"}.get(inner, getattr(inner, "__name__", "?"))
        bounds = [f"{op} {meta[k]:g}" for k, op in (("min", ">="), ("gt", ">"), ("max", "<="), ("lt", "<")) if k in meta]
        text = noun + (" " + " and ".join(bounds) if bounds else "")
        if typing.get_origin(base) is tuple:
            text = f"a comma-separated list of {text.replace('an integer', 'integers').replace('a finite number', 'numbers')}"
    return text + (" (or none)" if optional else "")


def _scalar(text: str, typ: Any) -> Any:
    if typ is bool:
        low = text.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(text)
    if typ is int:
        value = float(text)  # accept "3" and "3.0"; refuse "3.5"
        if not value.is_integer():
            raise ValueError(text)
        return int(value)
    return typ(text)


def _check(value: Any, meta: Mapping[str, Any]) -> bool:
    items = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and not value:
        return False
    for v in items:
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)):
            if not math.isfinite(v):
                return False
            if ("min" in meta and v < meta["min"]) or ("max" in meta and v > meta["max"]):
                return False
            if ("gt" in meta and v <= meta["gt"]) or ("lt" in meta and v >= meta["lt"]):
                return False
        if isinstance(v, str) and meta.get("choices") and v not in meta["choices"]:
            return False
        if isinstance(v, str) and meta.get("pattern") and not re.fullmatch(meta["pattern"], v):
            return False
    return True


def parse_value(text: str, typ: Any, meta: Mapping[str, Any], name: str) -> Any:
    """``text`` read as ``typ`` and checked against ``meta``; a one-line BenchError otherwise."""
    base, optional = _unwrap_optional(typ)
    try:
        if optional and text.strip().lower() == "none":
            return None
        if typing.get_origin(base) is tuple:
            inner = typing.get_args(base)[0]
            value: Any = tuple(_scalar(t.strip(), inner) for t in text.split(",") if t.strip())
        else:
            value = _scalar(text.strip(), base)
    except (TypeError, ValueError, OverflowError):
        value = _INVALID
    if value is _INVALID or not _check(value, meta):
        raise BenchError(f"option {name}: {text!r} is not allowed; expected {allowed(typ, meta)}")
    return value


_INVALID = object()


def check_config(cfg: Any, owner: str | None = None) -> None:
    """Check every field of ``cfg`` (defaults too) against its declared range."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is not None and not _check(value, f.metadata):
            name = f"{owner}.{f.name}" if owner else f.name
            raise BenchError(f"option {name}: {value!r} is not allowed; expected {allowed(hints[f.name], f.metadata)}")


def apply_overrides(cfg: C, overrides: Mapping[str, str], *, owner: str | None = None) -> C:
    """``cfg`` with ``overrides`` (field -> text) parsed, checked and applied. ``owner`` prefixes
    option names in messages (``conv_lora.rank``); unknown names list the valid ones."""
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        where = f"method {owner}" if owner else "train settings"
        raise BenchError(f"{where}: unknown option {unknown[0]!r}; valid: {', '.join(fields) or '(none)'}")
    values = {
        k: parse_value(v, hints[k], fields[k].metadata, f"{owner}.{k}" if owner else k) for k, v in overrides.items()
    }
    new = dataclasses.replace(cfg, **values)  # runs the config's own cross-field checks
    check_config(new, owner)
    return new


def describe(cfg_cls: type) -> list[tuple[str, Any, str]]:
    """(name, default, allowed values) of every field, for listings."""
    hints = typing.get_type_hints(cfg_cls)
    return [(f.name, f.default, allowed(hints[f.name], f.metadata)) for f in dataclasses.fields(cfg_cls)]
