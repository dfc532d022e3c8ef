"""The paper's display labels, in one place; only tables and reports use them.

Registry keys (``conv_lora``, ``sm``) are what code and records speak; these maps turn methods,
reference models and metrics into the strings the Conv-LoRA paper prints (arXiv 2401.17868,
Tables 1 and 2). Test sets are labelled by their domain (``Domain.test_labels``), table layouts
live in ``benchmark.report.layouts``.
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

# Metric labels in LaTeX (math where the paper typesets a symbol); others use METRIC_LABELS.
METRIC_LATEX: dict[str, str] = {
    "sm": r"$S_{\alpha}$",
    "em": r"$E_{\phi}$",
    "wfm": r"$F_{\beta}^{\omega}$",
}
