"""A plain name -> value registry that fails loudly on bad or duplicate names and unknown keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Generic, TypeVar

from benchmark.core.errors import BenchError

T = TypeVar("T")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class Registry(Generic[T]):
    """Maps lowercase snake keys to values; ``kind`` names the registry in error messages."""

    def __init__(self, kind: str, *, pattern: str | None = None) -> None:
        self.kind = kind
        self._key = re.compile(pattern) if pattern else _KEY  # tables are numbered: "1", "2"
        self._items: dict[str, T] = {}

    def register(self, key: str, value: T) -> T:
        if not self._key.match(key):
            raise ValueError(f"invalid {self.kind} key {key!r}: use lowercase snake_case")
        if key in self._items:
            raise ValueError(f"duplicate {self.kind} key {key!r}")
        self._items[key] = value
        return value

    def get(self, key: str) -> T:
        try:
            return self._items[key]
        except KeyError:
            raise BenchError(f"unknown {self.kind} {key!r}; valid: {', '.join(self.keys())}") from None

    def parse_list(self, text: str) -> list[str]:
        """``"a,b"`` or ``"all"`` -> validated keys, in the given (or registry) order."""
        if text.strip() == "all":
            return self.keys()
        keys = [k.strip() for k in text.split(",") if k.strip()]
        if not keys:
            raise BenchError(f"no {self.kind} given; valid: {', '.join(self.keys())}")
        for k in keys:
            self.get(k)
        return keys

    def keys(self) -> list[str]:
        return list(self._items)

    def values(self) -> list[T]:
        return list(self._items.values())

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
