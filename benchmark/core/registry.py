"""A plain name -> value registry that fails loudly on bad or duplicate names and unknown keys."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from benchmark.core.errors import BenchError

T = TypeVar("T")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class Registry(Generic[T]):
    """Maps lowercase snake keys to values; ``kind`` names the registry in error messages.

    ``groups``: the group names of an entry (e.g. a domain's ``table:1``); a list may name a group
    for all its members, in registry order.
    """

    def __init__(self, kind: str, *, pattern: str | None = None,
                 groups: Callable[[T], Iterable[str]] | None = None) -> None:
        self.kind = kind
        self._key = re.compile(pattern) if pattern else _KEY  # tables are numbered: "1", "2"
        self._items: dict[str, T] = {}
        self._groups = groups

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
        """``"a,b"``, ``"all"`` or group names -> validated keys, in the given (or registry) order,
        each once."""
        if text.strip() == "all":
            return self.keys()
        keys: list[str] = []
        for token in (t.strip() for t in text.split(",") if t.strip()):
            members = self.group(token) if ":" in token else [token]
            keys += [k for k in members if k not in keys]
        if not keys:
            raise BenchError(f"no {self.kind} given; valid: {', '.join(self.keys())}")
        for k in keys:
            self.get(k)
        return keys

    def group(self, name: str) -> list[str]:
        """The keys whose entries belong to group ``name``, in registry order."""
        names = {g for v in self._items.values() for g in (self._groups(v) if self._groups else ())}
        if name not in names:
            raise BenchError(f"unknown {self.kind} group {name!r}; valid: {', '.join(sorted(names)) or 'none'}")
        return [k for k, v in self._items.items() if name in self._groups(v)]

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
