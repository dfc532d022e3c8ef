"""Decoded samples kept per process (:data:`DECODED`), so a grid of short runs reads each file once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch


class DecodedCache:
    """Decoded, resized and normalised samples of this process, least recently used dropped first
    beyond ``budget`` bytes. A smoke grid reads the same few hundred small files in every run (11
    methods x 3 seeds per domain), and decoding them was a tenth of a run; at 1024x1024 a sample
    is 16 MiB, so the budget keeps a few dozen. Keys hold both files' size and mtime: a file
    rewritten in place (``data synth`` replacing a copy) is read again."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self._items: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @staticmethod
    def _nbytes(pair: tuple[torch.Tensor, torch.Tensor]) -> int:
        return sum(t.numel() * t.element_size() for t in pair)

    def get(self, key: tuple, load: Callable[[], tuple[torch.Tensor, torch.Tensor]]
            ) -> tuple[torch.Tensor, torch.Tensor]:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        pair = load()
        if self._nbytes(pair) <= self.budget:
            self._items[key] = pair
            self.used += self._nbytes(pair)
            while self.used > self.budget:
                self.used -= self._nbytes(self._items.popitem(last=False)[1])
        return pair


def file_keys(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """Each file's path, size and mtime: a cache key that changes when a file is rewritten."""
    return tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in paths)


DECODED = DecodedCache(budget=512 * 2**20)
