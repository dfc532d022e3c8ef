"""The data side: domains and their recipes (``domains``), readers and datasets for the official
layouts (``datasets``), the checks of a domain's files (``checks``), the eleven retinal fundus datasets of SAM2LoRA, one entry each, and
their readers (``fundus``), synthetic data in every layout (``synth``; drawn by ``painters``, the
fundus datasets written by ``synth_fundus``), what a copy is and its fingerprints (``provenance``:
official, synthetic or custom), downloads, the ``data`` command, and the on-disk layout and
encoding of saved test predictions (``predictions``).

May import: ``benchmark.core`` and ``metrics`` (a validation metric's direction). Nothing here knows
about models or training.
"""
