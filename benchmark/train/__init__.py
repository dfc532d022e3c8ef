"""Training and running: mixed precision (``amp``), the losses, the one-run engine, DDP helpers
(``dist``), the resumable grid (``runner``) that writes one record per run, and the provenance
each record carries (``provenance``: data and checkpoint, computed once per grid).

May import: ``benchmark.core``, ``benchmark.model``, ``benchmark.data``, ``metrics``.
"""
