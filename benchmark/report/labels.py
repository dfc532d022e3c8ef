"""The paper's display labels, in one place; only tables and reports use them.

Registry keys (``conv_lora``, ``cvc_clinicdb``, ``sm``) are what code and records speak; these
maps turn them into the strings the Conv-LoRA paper prints (arXiv 2401.17868, Tables 1 and 2).
"""

# PEFT methods (registry key -> row label), in the paper's Table 1 row order.
METHOD_LABELS: dict[str, str] = {
    "from_scratch": "SAM trained from scratch",
    "decoder_only": "decoder-only",
    "bitfit": "BitFit",
    "adapter": "Adapter",
    "vpt": "VPT",
    "lst": "LST",
    "sam_adapter": "SAM-Adapter",
    "ssf": "SSF",
    "lora": "LoRA",
    "conv_lora": "Conv-LoRA",
}

# Methods this suite adds beyond Conv-LoRA's Table 1 (rows after the paper's, no published values).
EXTRA_METHOD_LABELS: dict[str, str] = {
    "sam2lora": "SAM2LoRA",
    "zero_shot": "zero-shot (no fine-tuning)",  # a reference row: the pretrained model as loaded
}


def method_label(key: str) -> str:
    """The display label of a method or reference row; an unknown key is its own label."""
    return METHOD_LABELS.get(key) or EXTRA_METHOD_LABELS.get(key) or REFERENCE_LABELS.get(key) or key


# Published reference rows that are not PEFT methods: they exist only on the paper's side.
REFERENCE_LABELS: dict[str, str] = {
    "domain_specific": "Domain Specific",
    "translab": "TransLab",
    "trans2seg": "Trans2Seg",
}

# Test sets (record key -> column-group label). Polyp has two test sets; every other domain one,
# keyed like the domain itself.
DATASET_LABELS: dict[str, str] = {
    "kvasir": "Kvasir",
    "cvc_clinicdb": "CVC-612",
    "isic2017": "ISIC 2017",
    "camo": "CAMO",
    "sbu": "SBU",
    "leaf": "Leaf",
    "road": "Road",
    "trans10k": "Trans10K",
}

# Metric keys -> column labels.
METRIC_LABELS: dict[str, str] = {
    "sm": "S_alpha",
    "em": "E_phi",
    "wfm": "F_beta_w",
    "mae": "MAE",
    "ber": "BER",
    "jaccard": "Jac",
    "iou": "IoU",
    "dice": "Dice",
    "acc": "Acc",
    "miou": "mIoU",
    "auc": "AUC",
}

# Trans10K-v2 categories, index = class id in the masks_12 label maps (0 = background).
TRANS10K_CLASSES: tuple[str, ...] = (
    "bg", "shelf", "jar", "freezer", "window", "door",
    "eyeglass", "cup", "wall", "bowl", "bottle", "box",
)

# The paper's table layouts, used by ``benchmark.report.tables``. A column is (test-set key, metric key)
# in printed order; Table 2's category columns use the class name as metric key (a record's
# ``class_iou`` list, by index in TRANS10K_CLASSES), and a class name is its own label.
TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "1": (
        ("kvasir", "sm"), ("kvasir", "em"),
        ("cvc_clinicdb", "sm"), ("cvc_clinicdb", "em"),
        ("isic2017", "jaccard"), ("isic2017", "dice"),
        ("camo", "sm"), ("camo", "em"), ("camo", "wfm"),
        ("sbu", "ber"),
        ("leaf", "iou"), ("leaf", "dice"),
        ("road", "iou"), ("road", "dice"),
    ),
    "2": (("trans10k", "acc"), ("trans10k", "miou")) + tuple(("trans10k", c) for c in TRANS10K_CLASSES),
}

# Rows each published table prints: reference models first, then methods, in printed order.
TABLE_REFERENCES: dict[str, tuple[str, ...]] = {"1": ("domain_specific",), "2": ("translab", "trans2seg")}
TABLE_METHODS: dict[str, tuple[str, ...]] = {
    "1": tuple(METHOD_LABELS),
    "2": ("decoder_only", "vpt", "lora", "conv_lora"),
}

# Metric labels in LaTeX (math where the paper typesets a symbol); others use METRIC_LABELS.
METRIC_LATEX: dict[str, str] = {
    "sm": r"$S_{\alpha}$",
    "em": r"$E_{\phi}$",
    "wfm": r"$F_{\beta}^{\omega}$",
}
