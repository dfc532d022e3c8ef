"""Training and running: mixed precision (``amp``), the losses, the one-run engine, DDP helpers
(``dist``) and the resumable grid (``runner``) that writes one record per run.

May import: ``benchmark.core``, ``benchmark.model``, ``benchmark.data``, ``metrics``.
"""
