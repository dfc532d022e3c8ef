"""The eleven retinal fundus datasets of SAM2LoRA, one entry each, read as the authors' code reads them.

Source: GitHub sayanmndl21/SAM2LoRA at commit 4dd3cde (Mandal et al., arXiv 2510.10288): the
loaders in ``dataloader/`` (cited per entry as file:line), ``dictionaries.py:6-22`` (where each
dataset lives), ``dataloader/retina_datasets.py:240-381`` (which datasets a task pools) and
``test.py:114-143`` (one test set per dataset, keyed by the lowercase name). ``FUNDUS_DATASETS``
holds every per-dataset fact; the readers below work from its fields alone. The facts with their
sources, and our choices: docs/FIDELITY.md#sam2lora-data.

Layout: each dataset in its own folder under one ``Fundus`` folder, as their
``datasets/eye_dataset/Fundus/<folder>`` (dictionaries.py:7-21); a data root may be the folder
holding ``Fundus`` or ``Fundus`` itself. Inside, the files are where their loaders look for them:
``images`` is a glob relative to the dataset folder, ``masks`` and ``requires`` are file templates
with the fields ``{split}`` (the official split folder), ``{stem}`` (the image name without its
extension) and ``{id2}`` (its first two characters, DRIVE); ``a|b`` means ``a``, else ``b``.

Masks: each dataset's ``encoding`` names its decoder in ``fundus_masks``.

Splits: official folders where the dataset has them (``split_dirs``: DRIVE 20/20, FIVES 600/200,
DRISHTI-GS 50/51, REFUGE2 400/400, its ``val`` folder unused as in theirs: refuge2.py:46-51 and
train.py:145 ask for ``train`` only); otherwise ``train_test_split(files, test_size=test_size,
random_state=0)`` over the dataset's complete samples, which :func:`train_test_split` reproduces
index for index (scikit-learn's ShuffleSplit: ``ceil(test_size * n)`` test items, the first ones of
``RandomState(0).permutation(n)``).

Deviations from their loaders (each also said where it lives):
- File lists are sorted (case-insensitively, then by exact name) before splitting. Theirs are in
  ``glob`` order, which depends on the platform; their scripts ran on Windows
  (``train_script.ps1``), where NTFS lists a folder in case-insensitive name order, so the sorted
  list is probably theirs too, but this is not established.
- Image suffixes match case-insensitively, as Windows' glob does (HRF has ``.JPG`` and ``.jpg``;
  hrf.py:44-46 globs ``*.jpg`` and adds a placeholder folder).
- An image without its annotation files is reported by ``data check`` and left out; theirs are
  left out silently (e.g. chasedb.py:47). A labelme file without the polygon, a ``.mat`` without
  ``mask``, an unreadable contour or an unknown value in a label map is a reported problem; their
  code raises when the sample is read and skips it (datautils.py:145-146, test.py:180-184).
- PAPILA contour points outside the image are clipped by the fill (``skimage.draw.polygon``
  without ``shape`` raises IndexError there).
- DRIVE's test ground truth is the first grader by default (the standard protocol); their union
  of both graders (drive.py:50-59, 72-77) is the variant ``union`` (``Domain.test_gt``).
- A validation split is ours (their code has none: the kept checkpoint has the lowest training
  loss, train.py:235-242): :data:`VAL_FRACTION` of each dataset's train split (:func:`carve_val`).
- Images go through the suite's common preprocessing (``datasets.SegmentationDataset``: PIL
  bilinear to the square); theirs resize with OpenCV, nearest neighbour for most datasets
  (e.g. chasedb.py:68, stare.py:70, refuge2.py:91) and bilinear for DRIVE and FIVES
  (drive.py:82, fives.py:63). Ground truths are resized with nearest neighbour in both.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np

FUNDUS_FOLDER = "Fundus"  # dictionaries.py:7-21: datasets/eye_dataset/Fundus/<folder>
RANDOM_STATE = 0  # train.py:153,167 and test.py:127,142 pass random_state=0
# Ours (their code has no validation set): a tenth of each dataset's train split, at least one image,
# so that every dataset weighs on the checkpoint choice in proportion to its size while 90% of their
# training images still train.
VAL_FRACTION = 0.1

Encoding = Literal["threshold", "labelme", "origa_mat", "contour", "refuge"]


@dataclass(frozen=True)
class FundusDataset:
    """One dataset: where its files are, how its ground truth is encoded, how it splits, its source."""

    key: str  # test-set key: their test.py key, the lowercase dictionaries.py name
    task: Literal["vessel", "od"]
    folder: str  # under ``Fundus/`` (dictionaries.py)
    images: str  # glob relative to ``folder``; ``{split}`` = the official split folder
    masks: tuple[str, ...]  # files the ground truth is made of (templates, module doc)
    encoding: Encoding
    cite: str  # their loader: file and lines
    source: str  # where the dataset is obtained (one line)
    requires: tuple[str, ...] = ()  # further files their listing demands but the OD mask does not read
    label: str = ""  # labelme: the polygon's label
    test_size: float | None = None  # ratio split; None = official ``split_dirs``
    split_dirs: Mapping[str, str] = field(default_factory=dict, hash=False)  # "train"/"test" -> folder
    test_variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # first = default

    def __post_init__(self) -> None:
        object.__setattr__(self, "split_dirs", MappingProxyType(dict(self.split_dirs)))
        object.__setattr__(self, "test_variants", MappingProxyType(dict(self.test_variants)))
        if (self.test_size is None) == (not self.split_dirs):
            raise ValueError(f"fundus dataset {self.key!r}: give test_size or split_dirs, not both")
        if self.split_dirs and set(self.split_dirs) != {"train", "test"}:
            raise ValueError(f"fundus dataset {self.key!r}: split_dirs names 'train' and 'test'")
        if self.encoding == "labelme" and not self.label:
            raise ValueError(f"fundus dataset {self.key!r}: a labelme encoding needs its label")

    @property
    def top(self) -> str:
        """The folder directly under ``Fundus/`` (CHASEDB1 nests one more level)."""
        return self.folder.split("/")[0]

    def mask_templates(self, split: str, variant: str | None = None) -> tuple[str, ...]:
        """The ground-truth files of a sample of the dataset's ``split`` ("train" or "test"); a
        ``variant`` picks one of the test split's ``test_variants`` (the train split has one)."""
        if split != "test" or (variant is None and not self.test_variants):
            return self.masks
        name = variant or next(iter(self.test_variants))
        if name not in self.test_variants:
            raise ValueError(f"{self.key}: no test ground truth {name!r}; valid: {', '.join(self.test_variants) or '-'}")
        return self.test_variants[name]


_VESSEL = "threshold"
FUNDUS_DATASETS: Mapping[str, FundusDataset] = MappingProxyType({d.key: d for d in (
    # ---- vessel (retina_datasets.py:240-301) ----
    FundusDataset(
        key="chasedb1", task="vessel", folder="CHASEDB1/CHASEDB1", images="*.jpg",
        masks=("{stem}_1stHO.png", "{stem}_2ndHO.png"), encoding=_VESSEL, test_size=0.27,
        cite="dataloader/chasedb.py:42-57 (files, split), 59-67 (both graders binarised, then united)",
        source="Kingston University, CHASE_DB1 (researchdata.kingston.ac.uk/96); unzip into CHASEDB1/CHASEDB1/",
    ),
    FundusDataset(
        key="drive", task="vessel", folder="DRIVE", images="{split}/images/*.tif",
        masks=("{split}/1st_manual/{id2}_manual1.gif",), encoding=_VESSEL,
        split_dirs={"train": "training", "test": "test"},
        test_variants={"first": ("{split}/1st_manual/{id2}_manual1.gif",),
                       "union": ("{split}/1st_manual/{id2}_manual1.gif", "{split}/2nd_manual/{id2}_manual2.gif")},
        cite="dataloader/drive.py:41-61 (files; test adds 2nd_manual), 63-81 (graders binarised, then united)",
        source="DRIVE, drive.grand-challenge.org (registration): training/ and test/ with 1st_manual, 2nd_manual",
    ),
    FundusDataset(
        key="fives", task="vessel", folder="FIVES", images="{split}/Original/*.png",
        masks=("{split}/Ground truth/{stem}.png",), encoding=_VESSEL,
        split_dirs={"train": "train", "test": "test"},
        cite="dataloader/fives.py:40-66",
        source="FIVES, figshare (doi 10.6084/m9.figshare.19688169): train/ and test/ with Original, Ground truth",
    ),
    FundusDataset(
        key="hrf", task="vessel", folder="HRF", images="images/*.jpg",
        masks=("manual1/{stem}.tif",), encoding=_VESSEL, test_size=0.27,
        cite="dataloader/hrf.py:41-59 (files, split), 61-66",
        source="HRF, www5.cs.fau.de/research/data/fundus-images (images/, manual1/)",
    ),
    FundusDataset(
        key="stare", task="vessel", folder="STARE", images="stare-images/*.ppm",
        masks=("labels-ah/{stem}.ah.ppm", "labels-vk/{stem}.vk.ppm"), encoding=_VESSEL, test_size=0.25,
        cite="dataloader/stare.py:41-61 (files, split), 63-69 (both experts binarised, then united)",
        source="STARE, cecas.clemson.edu/~ahoover/stare/probing (stare-images, labels-ah, labels-vk; gunzip the .ppm.gz)",
    ),
    # ---- optic disc (retina_datasets.py:302-381; IDRiD is never used: test.py:131) ----
    FundusDataset(
        key="drishtigs", task="od", folder="DRISHTI-GS", images="{split}/Images/**/*.png",
        masks=("{split}/GT/{stem}/SoftMap/{stem}_ODsegSoftmap.png",),
        requires=("{split}/GT/{stem}/SoftMap/{stem}_cupsegSoftmap.png",), encoding="threshold",
        split_dirs={"train": "Training", "test": "Test"},
        cite="dataloader/drishtigs.py:45-62 (files: both soft maps required), 64-69 (OD soft map binarised)",
        source="Drishti-GS1, cvit.iiit.ac.in/projects/mip/drishti-gs (Training/, Test/ each with Images/ and GT/)",
    ),
    FundusDataset(
        key="g1020", task="od", folder="G1020", images="Images/*.jpg",
        masks=("Images/{stem}.json",), encoding="labelme", label="disc", test_size=0.25,
        cite="dataloader/g1020.py:46-59 (files, split), 61-69 (polygon fill); label: dataloader/datautils.py:331-336",
        source="G1020 (Bajwa et al., arXiv 2006.09158), e.g. its Kaggle copy: Images/ with <name>.jpg and <name>.json",
    ),
    FundusDataset(
        key="grape", task="od", folder="GRAPE", images="ROI images/*.jpg",
        masks=("json/{stem}.json",), encoding="labelme", label="OD", test_size=0.25,
        cite="dataloader/grape.py:47-62 (files, split), 64-73 (polygon fill), 102-113 (label 'OD')",
        source="GRAPE (Huang et al., Sci. Data 2023), figshare: 'ROI images/' and 'json/'",
    ),
    FundusDataset(
        key="origa", task="od", folder="ORIGA", images="Images/*.jpg",
        masks=("Semi-automatic-annotations/{stem}.mat",), encoding="origa_mat", test_size=0.25,
        cite="dataloader/origa.py:47-60 (files, split), 62-79 (crop, disc = rim or cup)",
        source="ORIGA (Zhang et al., 2010): no official host; public copies hold Images/ and Semi-automatic-annotations/",
    ),
    FundusDataset(
        key="papiladb", task="od", folder="PapilaDB", images="FundusImages/*.jpg",
        masks=("ExpertsSegmentations/Contours/{stem}_disc_exp1.txt",
               "ExpertsSegmentations/Contours/{stem}_disc_exp2.txt"),
        requires=("ExpertsSegmentations/Contours/{stem}_cup_exp1.txt",
                  "ExpertsSegmentations/Contours/{stem}_cup_exp2.txt"),
        encoding="contour", test_size=0.25,
        cite="dataloader/papiladb.py:55-74 (files: four contours required, split), 12-17 and 76-88 (disc experts united)",
        source="PAPILA (Kovalyk et al., Sci. Data 2022), figshare (doi 10.6084/m9.figshare.14798004): FundusImages/, ExpertsSegmentations/",
    ),
    FundusDataset(
        key="refuge2", task="od", folder="REFUGE2", images="{split}/images/*.jpg",
        masks=("{split}/mask/{stem}.png|{split}/mask/{stem}.bmp",), encoding="refuge",
        split_dirs={"train": "train", "test": "test"},
        cite="dataloader/refuge2.py:45-66 (files: .png else .bmp), 68-74 (disc = 0 or 128)",
        source="REFUGE2, refuge.grand-challenge.org (registration): train/, val/, test/ with images/ and mask/",
    ),
)})


def datasets_of(task: str) -> list[FundusDataset]:
    """The datasets a task pools, in their order (retina_datasets.py:301, 381)."""
    return [d for d in FUNDUS_DATASETS.values() if d.task == task]


# ------------------------------------------------------------------------------------------ splitting


def train_test_split(items: list, test_size: float, random_state: int = RANDOM_STATE) -> tuple[list, list]:
    """scikit-learn's ``train_test_split(items, test_size=x, random_state=s)`` (no stratify), as
    (train, test) in its order: ``ceil(x * n)`` test items, taken first from
    ``np.random.RandomState(s).permutation(n)``, the rest train (sklearn ShuffleSplit)."""
    n = len(items)
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(f"cannot split {n} items with test_size={test_size}")
    perm = np.random.RandomState(random_state).permutation(n)
    return [items[i] for i in perm[n_test:]], [items[i] for i in perm[:n_test]]


def carve_val(train: list, key: Callable | None = None) -> tuple[list, list]:
    """(train, val): :data:`VAL_FRACTION` of a dataset's train split held out by the same rule over
    its list sorted by ``key``; a train split of one image keeps it and has no validation image."""
    if len(train) < 2:
        return list(train), []
    return train_test_split(sorted(train, key=key), VAL_FRACTION)


# ------------------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class FundusSample:
    """One image and the files its ground truth is made of."""

    dataset: str
    image: Path
    masks: tuple[Path, ...]


def sort_key(path: Path) -> tuple[str, str]:
    """Case-insensitive name order, ties by exact name (module doc: probably their Windows order)."""
    return (str(path).upper(), str(path))


def sample_key(sample: FundusSample) -> tuple[str, str]:
    return sort_key(sample.image)


def glob_images(base: Path, pattern: str) -> list[Path]:
    """Files under ``base`` matching ``pattern`` (``dir/*.ext`` or ``dir/**/*.ext``), the file name
    matched case-insensitively as Windows' glob does; sorted (:func:`sort_key`)."""
    folder, _, name = pattern.rpartition("/")
    recursive = folder.endswith("**")
    folder = folder.removesuffix("**").rstrip("/")
    where = base / folder if folder else base
    if not where.is_dir():
        return []
    found = where.rglob("*") if recursive else where.iterdir()
    return sorted((p for p in found if p.is_file() and fnmatch.fnmatchcase(p.name.lower(), name.lower())),
                  key=sort_key)


def _resolve(base: Path, template: str, fields: Mapping[str, str]) -> tuple[Path | None, Path]:
    """(the existing file of ``template``, else None; the path reported when none exists)."""
    options = [base / alt.format(**fields) for alt in template.split("|")]
    return next((p for p in options if p.is_file()), None), options[0]


def list_dataset(entry: FundusDataset, droot: Path, split: str, *, variant: str | None = None
                 ) -> tuple[list[FundusSample], list[tuple[Path, str]]]:
    """The complete samples of one dataset's ``split`` ("train" or "test") under its folder
    ``droot``, and (path, message) for every image whose files are missing."""
    if entry.split_dirs:
        split_folder = entry.split_dirs[split]
        images = glob_images(droot, entry.images.format(split=split_folder))
    else:
        split_folder = ""
        images = glob_images(droot, entry.images)
    pattern = entry.images.format(split=split_folder)
    if not images:
        return [], [(droot / pattern.rpartition("/")[0], f"no images matching {pattern}")]
    samples, problems = [], []
    masks = entry.mask_templates("test" if split == "test" else "train", variant)
    for image in images:
        fields = {"split": split_folder, "stem": image.stem, "id2": image.name[:2]}
        resolved = [_resolve(droot, t, fields) for t in (*masks, *entry.requires)]
        missing = [shown for found, shown in resolved if found is None]
        if missing:
            problems += [(m, f"annotation of {image.name} not found") for m in missing]
            continue
        samples.append(FundusSample(entry.key, image, tuple(found for found, _ in resolved[: len(masks)])))
    if entry.test_size is not None:
        train, test = train_test_split(samples, entry.test_size) if len(samples) > 1 else (samples, [])
        samples = train if split == "train" else test
    return samples, problems


# ------------------------------------------------------------------------------------- the data root


def fundus_root(data_root: Path) -> Path | None:
    """The ``Fundus`` folder under ``data_root`` (or ``data_root`` itself when it holds dataset
    folders); None when neither holds any of the eleven."""
    for cand in (data_root / FUNDUS_FOLDER, data_root):
        if any((cand / d.folder).is_dir() for d in FUNDUS_DATASETS.values()):
            return cand
    return None


def missing_message(entry: FundusDataset, label: str) -> str:
    """What a missing dataset's problem says: what was expected and where it is obtained."""
    dirs = ",".join(entry.split_dirs.values())
    pattern = entry.images.format(split=f"{{{dirs}}}")
    return f"{label} missing (expected {entry.folder}/{pattern}); obtain it from {entry.source}"
