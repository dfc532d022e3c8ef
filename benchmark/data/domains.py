"""The benchmark domains, one frozen entry each: the seven of the Conv-LoRA paper and SAM2LoRA's two
retinal fundus tasks.

A domain states where its data lives (the official archive and its layout), which splits it has,
what task it is, how the official run script trains and validates on it, and which metrics its test
sets report. Adding a domain is one ``register_domain(Domain(...))`` call: the readers, the checker,
the synthetic generator and the downloader work from these fields alone.

Layouts (what unpacking the official zip gives, see docs/FIDELITY.md#data-archives):
- ``"csv"``: ``<archive>/<archive>/*.csv`` with columns ``image,label``, paths relative to that folder;
  ``train``, ``val`` and the test-set values name CSV files.
- ``"trans10k"``: ``<archive>/<archive>/<split>/images/<id>.jpg`` and ``.../masks_12/<id>_mask.png``;
  ``train``, ``val`` and the test-set values name split folders.
- ``"fundus"``: one folder per dataset under ``<archive>`` (``Fundus/``), each in its own public
  layout (``benchmark.data.fundus``); the test-set values name datasets of ``FUNDUS_DATASETS``, and
  ``train``/``val`` pool the train/validation parts of all of them. There is no single public
  archive (``archive_url`` None): ``data check`` names what is missing and where it is obtained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from benchmark.core.errors import BenchError
from benchmark.core.registry import Registry
from benchmark.data.fundus import FUNDUS_DATASETS

Layout = Literal["csv", "trans10k", "fundus"]
Task = Literal["binary", "multiclass"]


@dataclass(frozen=True)
class Domain:
    """One benchmark domain: data source, splits, task, training recipe and metrics."""

    key: str
    archive: str  # zip name without ".zip"; also the folder it unpacks to
    archive_url: str | None  # relative to the download base URL (``semantic_segmentation/``); None: no single archive
    layout: Layout
    train: str  # CSV file or split folder
    val: str
    tests: Mapping[str, str] = field(hash=False)  # test-set key (record key) -> CSV file or split folder
    task: Task
    num_classes: int  # label values including background: 2 for binary, 12 for Trans10K
    val_metric: str  # its direction is the metric's own (``val_higher_is_better``)
    test_metrics: tuple[str, ...]
    loss: str
    epochs: int
    lr: float
    painter: str  # synthetic stand-in style, a key of ``benchmark.data.synth.PAINTERS``
    test_labels: Mapping[str, str] = field(hash=False)  # test-set key -> the paper's column-group label
    table: str  # the registered table layout (``benchmark.report.layouts``) its columns belong to
    class_names: tuple[str, ...] = ()  # multiclass: name per label value (0 = background)
    description: str = ""
    # test set -> a named ground-truth variant its reader offers (fundus: DRIVE "first" or "union");
    # a test set not named here reads its default. Pick one with ``dataclasses.replace``.
    test_gt: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tests", MappingProxyType(dict(self.tests)))
        object.__setattr__(self, "test_labels", MappingProxyType(dict(self.test_labels)))
        object.__setattr__(self, "test_gt", MappingProxyType(dict(self.test_gt)))
        if set(self.test_labels) != set(self.tests):
            raise ValueError(f"domain {self.key!r}: test_labels must label exactly its test sets {list(self.tests)}")
        if self.task == "multiclass" and len(self.class_names) != self.num_classes:
            raise ValueError(f"domain {self.key!r}: class_names must name its {self.num_classes} classes")
        if set(self.test_gt) - set(self.tests):
            raise ValueError(f"domain {self.key!r}: test_gt names test sets it does not have")
        if self.layout == "fundus":
            self._check_fundus()
        if self.layout not in ("csv", "trans10k", "fundus"):
            raise ValueError(f"domain {self.key!r}: unknown layout {self.layout!r}")
        if self.task not in ("binary", "multiclass"):
            raise ValueError(f"domain {self.key!r}: unknown task {self.task!r}")
        if self.task == "binary" and self.num_classes != 2:
            raise ValueError(f"domain {self.key!r}: a binary domain has num_classes=2")
        if self.task == "multiclass" and not 2 < self.num_classes <= 255:
            raise ValueError(f"domain {self.key!r}: multiclass needs 3..255 classes (255 = ignore)")
        if not self.tests:
            raise ValueError(f"domain {self.key!r}: needs at least one test set")
        if {"train", "val"} & set(self.tests):
            raise ValueError(f"domain {self.key!r}: a test set may not be called 'train' or 'val'")

    def _check_fundus(self) -> None:
        for test_set, dataset in self.tests.items():
            if dataset not in FUNDUS_DATASETS:
                raise ValueError(f"domain {self.key!r}: {dataset!r} is not a fundus dataset; "
                                 f"valid: {', '.join(FUNDUS_DATASETS)}")
            variant = self.test_gt.get(test_set)
            if variant is not None and variant not in FUNDUS_DATASETS[dataset].test_variants:
                raise ValueError(f"domain {self.key!r}: {dataset} has no test ground truth {variant!r}")

    @property
    def val_higher_is_better(self) -> bool:
        """The validation metric's own direction (metrics own theirs)."""
        from metrics import METRICS

        return METRICS.get(self.val_metric).higher_is_better

    @property
    def splits(self) -> tuple[str, ...]:
        """``("train", "val", *test-set keys)``: every name ``split_source`` accepts."""
        return ("train", "val", *self.tests)

    def split_source(self, split: str) -> str:
        """The CSV file (csv), split folder (trans10k) or dataset key (fundus test sets) of ``split``."""
        if split == "train":
            return self.train
        if split == "val":
            return self.val
        if split in self.tests:
            return self.tests[split]
        raise BenchError(f"domain {self.key!r} has no split {split!r}; valid: {', '.join(self.splits)}")


DOMAINS: Registry[Domain] = Registry("domain", groups=lambda d: (f"table:{d.table}",) if d.table else ())  # --domains table:1,table:2


def register_domain(domain: Domain, registry: Registry[Domain] | None = None) -> Domain:
    """Register ``domain`` under its own key (in ``DOMAINS`` unless another registry is given)."""
    return (DOMAINS if registry is None else registry).register(domain.key, domain)


def get_domain(domain: str | Domain) -> Domain:
    """A registered domain by key; a ``Domain`` passes through (so unregistered ones work in tests)."""
    return domain if isinstance(domain, Domain) else DOMAINS.get(domain)


# Trans10K-v2 categories, index = class id in the masks_12 label maps (0 = background).
TRANS10K_CLASSES: tuple[str, ...] = (
    "bg", "shelf", "jar", "freezer", "window", "door",
    "eyeglass", "cup", "wall", "bowl", "bottle", "box",
)
_SOD = ("sm", "em", "wfm", "mae")  # salient/camouflaged-object metrics (py-sod-metrics definitions)

register_domain(Domain(
    key="polyp", archive="polyp", archive_url="polyp.zip", layout="csv",
    # Official split: train on Kvasir + CVC-ClinicDB train parts; the two test sets are reported apart.
    train="train.csv", val="val.csv",
    tests={"kvasir": "test_Kvasir.csv", "cvc_clinicdb": "test_CVC-ClinicDB.csv"},
    task="binary", num_classes=2, val_metric="sm", test_metrics=_SOD,
    loss="structure", epochs=30, lr=1e-4, painter="polyp",
    test_labels={"kvasir": "Kvasir", "cvc_clinicdb": "CVC-612"}, table="1",
    description="polyp segmentation in colonoscopy (Kvasir, CVC-ClinicDB)",
))
register_domain(Domain(
    key="isic2017", archive="isic2017", archive_url="isic2017.zip", layout="csv",
    train="train.csv", val="val.csv", tests={"isic2017": "test.csv"},
    task="binary", num_classes=2, val_metric="iou",
    test_metrics=("jaccard", "dice"), loss="structure", epochs=30, lr=1e-4, painter="skin_lesion",
    test_labels={"isic2017": "ISIC 2017"}, table="1",
    description="skin lesion segmentation in dermoscopy (ISIC 2017)",
))
register_domain(Domain(
    key="camo", archive="camo_sem_seg", archive_url="camo_sem_seg.zip", layout="csv",
    train="train.csv", val="val.csv", tests={"camo": "test_CAMO.csv"},
    task="binary", num_classes=2, val_metric="sm", test_metrics=_SOD,
    loss="structure", epochs=20, lr=1e-4, painter="camouflage",
    test_labels={"camo": "CAMO"}, table="1",
    description="camouflaged object segmentation (CAMO)",
))
register_domain(Domain(
    key="sbu", archive="SBU-shadow", archive_url="SBU-shadow.zip", layout="csv",
    train="train.csv", val="val.csv", tests={"sbu": "test.csv"},
    task="binary", num_classes=2, val_metric="ber", test_metrics=("ber",),
    loss="balanced_bce", epochs=10, lr=1e-4, painter="shadow",
    test_labels={"sbu": "SBU"}, table="1",
    description="shadow detection (SBU)",
))
register_domain(Domain(
    key="leaf", archive="leaf_disease_segmentation", archive_url="leaf_disease_segmentation.zip",
    layout="csv", train="train.csv", val="val.csv", tests={"leaf": "test.csv"},
    task="binary", num_classes=2, val_metric="iou",
    test_metrics=("iou", "dice"), loss="structure", epochs=30, lr=3e-4, painter="leaf_disease",
    test_labels={"leaf": "Leaf"}, table="1",
    description="leaf disease segmentation",
))
register_domain(Domain(
    key="road", archive="road_segmentation", archive_url="road_segmentation.zip", layout="csv",
    train="train.csv", val="val.csv", tests={"road": "test.csv"},
    task="binary", num_classes=2, val_metric="iou",
    test_metrics=("iou", "dice"), loss="structure", epochs=20, lr=3e-4, painter="road",
    test_labels={"road": "Road"}, table="1",
    description="road segmentation in aerial images (Massachusetts roads)",
))
register_domain(Domain(
    # Only the public tiny sample (unit-tests/) is downloadable; it sits beside, not inside, the
    # semantic_segmentation/ folder, hence the "../". Epochs and lr are not published for Trans10K:
    # we choose 30 epochs at 1e-4, the recipe of the other structure-loss domains trained at 1e-4.
    key="trans10k", archive="tiny_trans10kcls12", archive_url="../unit-tests/tiny_trans10kcls12.zip",
    layout="trans10k", train="train", val="validation", tests={"trans10k": "test"},
    task="multiclass", num_classes=12, val_metric="miou",
    test_metrics=("acc", "miou", "class_iou"), loss="mask2former", epochs=30, lr=1e-4,
    painter="transparent_objects",
    test_labels={"trans10k": "Trans10K"}, table="2",
    class_names=TRANS10K_CLASSES,
    description="transparent object segmentation, 11 classes + background (Trans10K-v2)",
))


# SAM2LoRA (GitHub sayanmndl21/SAM2LoRA @ 4dd3cde): one model per task trained on the pooled train
# splits and tested per dataset (retina_datasets.py:223-382, test.py:114-143); the per-dataset facts
# are in ``benchmark.data.fundus.FUNDUS_DATASETS``. Their recipe (train_script.ps1:11-17): lr 1e-4,
# 120,000 micro-batches of 2 images, i.e. steps, not epochs. As passes over the pooled train split
# (their full train splits: vessel 20 + 20 + 600 + 32 + 15 = 687 images, optic disc 50 + 765 + ~473
# + 487 + 366 + 400 = ~2541, GRAPE's count known only to within 629-632 images in all) that is
# 240,000 / 687 = 349 epochs for vessels and 240,000 / 2541 = 94 for the optic disc; we keep the
# number of passes (so with our validation tenth held out each run sees 10% fewer images).
# Validation metric Dice: ours, they validate nothing (the lowest training loss is kept).
_FUNDUS_METRICS = ("dice", "iou", "auc_img", "hd95", "sens", "spec", "prec", "mcc", "biou", "acc_img")
register_domain(Domain(
    key="fundus_vessel", archive="Fundus", archive_url=None, layout="fundus", train="train", val="val",
    tests={"chasedb1": "chasedb1", "drive": "drive", "fives": "fives", "hrf": "hrf", "stare": "stare"},
    task="binary", num_classes=2, val_metric="dice", test_metrics=_FUNDUS_METRICS,
    loss="composite", epochs=349, lr=1e-4, painter="fundus",
    test_labels={"chasedb1": "CHASEDB1", "drive": "DRIVE", "fives": "FIVES", "hrf": "HRF", "stare": "STARE"},
    table="sam2lora",
    description="retinal vessel segmentation (SAM2LoRA: CHASEDB1, DRIVE, FIVES, HRF, STARE)",
))
register_domain(Domain(
    key="fundus_od", archive="Fundus", archive_url=None, layout="fundus", train="train", val="val",
    tests={"drishtigs": "drishtigs", "g1020": "g1020", "grape": "grape", "origa": "origa",
           "papiladb": "papiladb", "refuge2": "refuge2"},
    task="binary", num_classes=2, val_metric="dice", test_metrics=_FUNDUS_METRICS,
    loss="composite", epochs=94, lr=1e-4, painter="fundus",
    test_labels={"drishtigs": "DRISHTI-GS", "g1020": "G1020", "grape": "GRAPE", "origa": "ORIGA",
                 "papiladb": "PAPILA", "refuge2": "REFUGE2"},
    table="sam2lora",
    description="optic disc segmentation (SAM2LoRA: DRISHTI-GS, G1020, GRAPE, ORIGA, PAPILA, REFUGE2)",
))
