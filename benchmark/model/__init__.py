"""The model side: SAM and SAM2 backbones and the interface methods use (``backbones``), the
prompt-free segmentation head (``head``), checkpoints, and building an adapted model (``factory``).

May import: ``benchmark.core``, ``methods`` (to apply one), segment-anything and sam2.
"""
