"""Readers for the unpacked official archives and the fundus datasets' own layouts (``fundus``):
locate a domain, list a split, load samples. Checking every file of a domain: ``checks``.

Preprocessing follows the official pipeline (docs/FIDELITY.md#backbone-and-head): the RGB image is
resized to a ``size`` x ``size`` square (PIL bilinear, no aspect-preserving padding; PIL filters when
it shrinks, as torchvision's ``Resize`` does on PIL images) and normalised with SAM's ImageNet
mean/std on the 0..255 scale; the ground truth is resized to the same square with nearest neighbour.

Masks (:func:`read_mask` is the one way to a sample's ground truth):
- fundus layout: decoded by the dataset's own encoding (``benchmark.data.fundus``) to 0/255.
- binary domains: read as 8-bit grey (``convert("L")``, so palette and RGB masks work too);
  foreground = value > 128 on the 0..255 scale, the official evaluation's rule. The checker accepts
  only {0, 255}: a {0, 1} mask would read as empty under that rule, so it is reported, not guessed.
- multiclass (Trans10K): the raw class ids (palette indices for "P" images, the first channel of an
  RGB image), 0 = background, 255 = ignore.

Augmentation: random horizontal flip of image and mask together when ``train=True``, drawn from the
global torch RNG (``torch.rand``), so ``torch.manual_seed`` reproduces it; DataLoader workers get
their own seeds derived from it by torch. An ``augment`` callable (``benchmark.data.augment``,
e.g. SAM2LoRA's) replaces the flip; it gets the cached tensors and returns new ones.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from benchmark.core.errors import BenchError
from benchmark.data import fundus
from benchmark.data.cache import DECODED, file_keys
from benchmark.data.domains import Domain, get_domain
from benchmark.data.fundus_masks import decode_mask

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
IGNORE_INDEX = 255
FOREGROUND_THRESHOLD = 128  # binary GT: foreground = value > 128 on the 0..255 scale
SYNTHETIC_MARKER = ".synthetic"  # written by ``data synth`` beside the unpacked layout
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_MASK_SUFFIX = "_mask"  # Trans10K: <id>.jpg pairs with <id>_mask.png


@dataclass(frozen=True)
class Sample:
    name: str  # image file stem (fundus: "<dataset>_<stem>", unique across the pooled datasets)
    image: Path
    mask: Path  # the ground-truth file (fundus: the first of ``masks``)
    dataset: str = ""  # fundus: the dataset key whose encoding decodes ``masks``
    masks: tuple[Path, ...] = ()  # fundus: every file the ground truth is made of (graders, experts)


@dataclass(frozen=True)
class Problem:
    """One defect in the data, naming the file (or folder) it concerns."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# ---------------------------------------------------------------------------------------- locating


def _root_candidates(domain: Domain, data_root: Path) -> list[Path]:
    cands = [data_root / domain.archive / domain.archive, data_root / domain.archive]
    if data_root.name == domain.archive:  # handed the domain folder itself
        cands.append(data_root)
    return cands


def _marker(domain: Domain) -> str:
    return domain.train if domain.layout == "csv" else f"{domain.train}/images"


def resolve_domain_root(domain: str | Domain, data_root: str | Path) -> Path:
    """The folder holding the domain's CSVs (or split folders) under ``data_root``.

    Looks in ``<data_root>/<archive>/<archive>`` (as the official zip unpacks), then
    ``<data_root>/<archive>``; raises ``BenchError`` naming the paths it looked for. Fundus: the
    ``Fundus`` folder holding at least one of the domain's datasets (``data check`` names the rest).
    """
    domain = get_domain(domain)
    data_root = Path(data_root)
    if domain.layout == "fundus":
        return _fundus_root(domain, data_root)
    marker = _marker(domain)
    cands = _root_candidates(domain, data_root)
    for cand in cands:
        if (cand / marker).exists():
            return cand
    looked = " or ".join(str(c / marker) for c in dict.fromkeys(cands))
    raise BenchError(
        f"{domain.key} data not found: no {looked}; fetch it with `sam-peft-bench data download "
        f"--domain {domain.key} --root {data_root}` (or `data synth` for a synthetic stand-in)"
    )


def _fundus_root(domain: Domain, data_root: Path) -> Path:
    root = fundus.fundus_root(data_root)
    if root is None or not any((root / fundus.FUNDUS_DATASETS[d].folder).is_dir() for d in domain.tests.values()):
        folders = ", ".join(fundus.FUNDUS_DATASETS[d].folder for d in domain.tests.values())
        raise BenchError(
            f"{domain.key} data not found: none of {folders} under {data_root / fundus.FUNDUS_FOLDER}; "
            f"these datasets have no single public archive: `sam-peft-bench data check --domain {domain.key} "
            f"--root {data_root}` names each missing one and where it is obtained (or `data synth` for a stand-in)"
        )
    return root


def is_synthetic(domain: str | Domain, data_root: str | Path) -> bool:
    """Whether the copy under ``data_root`` was written by ``data synth`` (fundus: every dataset).

    The marker sits in ``<archive>/``, the parent of the layout; looking beside the folder that
    :func:`resolve_domain_root` would pick also catches a synthetic copy handed by a deeper path.
    """
    domain, data_root = get_domain(domain), Path(data_root)
    if domain.layout == "fundus":
        root = fundus.fundus_root(data_root) or data_root / fundus.FUNDUS_FOLDER
        return all((root / fundus.FUNDUS_DATASETS[d].top / SYNTHETIC_MARKER).exists() for d in domain.tests.values())
    if (data_root / domain.archive / SYNTHETIC_MARKER).exists():
        return True
    found = next((c for c in _root_candidates(domain, data_root) if (c / _marker(domain)).exists()), None)
    return found is not None and (found.parent / SYNTHETIC_MARKER).exists()


# ----------------------------------------------------------------------------------------- listing


def scan_split(domain: str | Domain, root: Path, split: str) -> tuple[list[Sample], list[Problem]]:
    """The samples of ``split`` under a resolved domain ``root``, and any listing problems."""
    domain = get_domain(domain)
    if domain.layout == "fundus":
        return _scan_fundus(domain, root, split)
    source = root / domain.split_source(split)
    if domain.layout == "csv":
        return _scan_csv(source)
    return _scan_folders(source)


def _scan_fundus(domain: Domain, root: Path, split: str) -> tuple[list[Sample], list[Problem]]:
    """A fundus split: a test set is one dataset's test part; ``train`` and ``val`` pool every
    dataset's train part, each split by ``fundus.carve_val`` (a dataset that is missing is one
    problem naming its folder and source)."""
    domain.split_source(split)  # an unknown split fails here, naming the valid ones
    pooled = split in ("train", "val")
    test_sets = list(domain.tests) if pooled else [split]
    samples, problems = [], []
    for test_set in test_sets:
        key = domain.tests[test_set]
        entry = fundus.FUNDUS_DATASETS[key]
        droot = root / entry.folder
        if not droot.is_dir():
            problems.append(Problem(droot, fundus.missing_message(entry, domain.test_labels[test_set])))
            continue
        found, missing = fundus.list_dataset(entry, droot, "train" if pooled else "test",
                                             variant=domain.test_gt.get(test_set))
        problems += [Problem(path, msg) for path, msg in missing]
        if pooled:
            found = fundus.carve_val(found, fundus.sample_key)[0 if split == "train" else 1]
        samples += [Sample(f"{key}_{f.image.stem}", f.image, f.masks[0], key, f.masks) for f in found]
    return samples, problems


def _scan_csv(path: Path) -> tuple[list[Sample], list[Problem]]:
    if not path.is_file():
        return [], [Problem(path, "split CSV not found")]
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [], [Problem(path, f"cannot read CSV: {exc}")]
    if not rows:
        return [], [Problem(path, "CSV has no rows")]
    if not {"image", "label"} <= set(rows[0]):
        return [], [Problem(path, f"CSV needs columns image,label; has {','.join(map(str, rows[0]))}")]
    samples, problems = [], []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        if not row["image"] or not row["label"]:
            problems.append(Problem(path, f"line {i}: empty image or label"))
            continue
        image = path.parent / row["image"]
        samples.append(Sample(image.stem, image, path.parent / row["label"]))
    return samples, problems


def _scan_folders(split_dir: Path) -> tuple[list[Sample], list[Problem]]:
    img_dir, mask_dir = split_dir / "images", split_dir / "masks_12"
    problems = [Problem(d, "folder not found") for d in (img_dir, mask_dir) if not d.is_dir()]
    if problems:
        return [], problems
    images = {p.stem: p for p in img_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES}
    masks = {p.stem.removesuffix(_MASK_SUFFIX): p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
    samples = [Sample(k, images[k], masks[k]) for k in sorted(images) if k in masks]
    problems += [Problem(images[k], "no matching mask in masks_12") for k in sorted(images.keys() - masks.keys())]
    problems += [Problem(masks[k], "no matching image in images") for k in sorted(masks.keys() - images.keys())]
    if not images:
        problems.append(Problem(img_dir, "no images"))
    return samples, problems


def list_samples(domain: str | Domain, data_root: str | Path, split: str) -> list[Sample]:
    """The samples of ``split``; ``BenchError`` if the split cannot be listed cleanly."""
    domain = get_domain(domain)
    samples, problems = scan_split(domain, resolve_domain_root(domain, data_root), split)
    if problems:
        raise BenchError(summarise_problems(problems))
    return samples


# ----------------------------------------------------------------------------------------- loading


def load_image(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def mask_array(im: Image.Image, domain: Domain) -> np.ndarray:
    """``(H, W)`` uint8: grey 0..255 for binary domains, raw class ids for multiclass."""
    if domain.task == "binary":
        return np.asarray(im.convert("L"))
    arr = np.asarray(im)
    if arr.ndim == 3:  # an RGB(A) label map stores the id in every channel
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = arr.astype(np.int64)
        arr = np.where((arr < 0) | (arr > 255), IGNORE_INDEX, arr).astype(np.uint8)
    return arr


def load_mask(path: Path, domain: Domain) -> np.ndarray:
    with Image.open(path) as im:
        return mask_array(im, domain)


def read_mask(sample: Sample, domain: Domain, hw: tuple[int, int] | None = None) -> np.ndarray:
    """A sample's ground truth as :func:`mask_array` gives it: binary 0/255 (a fundus dataset's
    encoding decoded; ``hw`` its image's size if known), multiclass class ids."""
    if sample.dataset:
        return np.where(decode_mask(sample.dataset, sample.image, sample.masks, hw), 255, 0).astype(np.uint8)
    return load_mask(sample.mask, domain)


class SegmentationDataset(Dataset):
    """A split of a domain as ``{"image", "mask", "name", "index", "flipped"}`` items.

    ``image``: float32 ``(3, size, size)``, normalised. ``mask``: binary float32 ``(1, size, size)``
    in {0, 1}; multiclass int64 ``(size, size)`` class ids, 255 = ignore. ``name``: the image's stem;
    ``index``: its position in the split; ``flipped``: whether the official flip flipped it (False
    under ``augment``, whose output the feature cache cannot name). ``split``: "train", "val" or a
    test-set key of the domain. ``augment``: (image, mask) -> new (image, mask), applied instead of the flip.
    """

    def __init__(self, domain: str | Domain, root: str | Path, split: str, *, size: int, train: bool,
                 augment: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> None:
        self.domain = get_domain(domain)
        self.split, self.size, self.train, self.augment = split, int(size), bool(train), augment
        if self.size < 1:
            raise BenchError(f"image size must be positive, got {size}")
        self.samples = list_samples(self.domain, root, split)
        self._mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
        self._std = torch.tensor(PIXEL_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, s: Sample) -> tuple[torch.Tensor, torch.Tensor]:
        """The sample at ``size``: normalised image (3, S, S) and mask, before augmentation."""
        square = (self.size, self.size)
        img = load_image(s.image)
        m = read_mask(s, self.domain, (img.height, img.width))
        img = img.resize(square, Image.BILINEAR)
        image = torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1)
        image = ((image - self._mean) / self._std).contiguous()
        m = np.array(Image.fromarray(m).resize(square, Image.NEAREST))
        if self.domain.task == "binary":
            mask = torch.from_numpy(m > FOREGROUND_THRESHOLD).float().unsqueeze(0)
        else:
            mask = torch.from_numpy(m.astype(np.int64))
        return image, mask

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        files = (s.image, *(s.masks or (s.mask,)))
        key = (self.domain.key, self.size, s.dataset, *file_keys(files))
        image, mask = DECODED.get(key, lambda: self._load(s))
        flipped = False
        if self.augment is not None:
            image, mask = self.augment(image, mask)
        elif self.train and torch.rand(()) < 0.5:
            image, mask, flipped = image.flip(-1), mask.flip(-1), True
        else:
            image, mask = image.clone(), mask.clone()  # the cached tensors stay as decoded
        # index and flipped name the encoder input for the feature cache (benchmark.model.feature_cache)
        return {"image": image.contiguous(), "mask": mask.contiguous(), "name": s.name, "index": index,
                "flipped": flipped}


def summarise_problems(problems: list[Problem]) -> str:
    """The first problem on one line, and how many others there are."""
    first = str(problems[0]).replace("\n", " ")
    rest = len(problems) - 1
    return first + (f" (and {rest} other problem{'s' if rest > 1 else ''})" if rest else "")
