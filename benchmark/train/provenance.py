"""The provenance fields of a grid's records, each computed once per grid.

Every record, ok or failed, carries:

- ``data``: :func:`benchmark.data.provenance.data_provenance` of its domain (kind, folder, per-split
  file count and fingerprint), listed once per (domain, data root) per grid;
- ``checkpoint``: ``{"path", "sha256", "bytes"}`` of the weights the run started from, or ``None``
  when they were random: no ``--checkpoint`` given, or a method registered ``pretrained=False``
  (from scratch), which reads no checkpoint even when one is given. The file is hashed once per grid
  and hashed again only if its (path, size, mtime) changes;
- ``method_pretrained``: the method's own declaration, copied so that tables, which read records
  alone, can tell "random by design" (from scratch) from "random for want of a checkpoint".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.provenance import data_provenance
from benchmark.model.checkpoints import checkpoint_provenance
from methods import METHODS


@dataclass
class GridProvenance:
    """Per-grid cache of what the records say about their inputs; ask :meth:`of` per run."""

    data_root: Path
    checkpoint: Path | None
    progress: bool = False
    _data: dict[tuple[str, str], dict] = field(default_factory=dict, repr=False)
    _weights: dict[tuple[str, int, int], dict] = field(default_factory=dict, repr=False)

    def data(self, domain: str) -> dict:
        key = (domain, str(self.data_root))
        if key not in self._data:
            self._data[key] = data_provenance(domain, self.data_root)
        return self._data[key]

    def weights(self) -> dict | None:
        if self.checkpoint is None:
            return None
        st = self.checkpoint.stat()
        key = (str(self.checkpoint.absolute()), st.st_size, st.st_mtime_ns)
        if key not in self._weights:
            self._weights[key] = checkpoint_provenance(self.checkpoint, progress=self.progress)
        return self._weights[key]

    def of(self, method: str, domain: str) -> dict:
        """The ``data``, ``checkpoint`` and ``method_pretrained`` fields of one run's record."""
        pretrained = METHODS.get(method).pretrained
        return {"data": self.data(domain), "checkpoint": self.weights() if pretrained else None,
                "method_pretrained": pretrained}
