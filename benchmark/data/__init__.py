"""The data side: domains and their recipes (``domains``), readers and datasets for the official
layouts (``datasets``), synthetic data in those layouts (``synth``), what a copy is and its
fingerprints (``provenance``: official, synthetic or custom), downloads, and the ``data`` command.

May import: ``benchmark.core``. Nothing here knows about models or training.
"""
