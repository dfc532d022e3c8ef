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
