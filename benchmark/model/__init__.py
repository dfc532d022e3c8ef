"""The model side: SAM and SAM2 backbones and the interface methods use (``backbones``), the
prompt-free segmentation head (``head``), checkpoints, and building an adapted model (``factory``);
how it runs fast, each lever an option that keeps the maths: the encoder's attention kernel
(``attention``), the frozen encoder's feature cache (``feature_cache``), activation
checkpointing (``checkpointing``) and ``torch.compile`` (``compiling``).

May import: ``benchmark.core``, ``methods`` (to apply one), segment-anything and sam2.
"""
