"""Checking a domain's files before a run: every file a split references decodes, masks hold only
allowed values and match their image's size (``sam-peft-bench data check``; a run calls
:func:`validate_or_raise` first, so bad data stops it in one line naming the first problem).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.errors import BenchError
from benchmark.data.datasets import (
    FOREGROUND_THRESHOLD,
    IGNORE_INDEX,
    Problem,
    Sample,
    mask_array,
    resolve_domain_root,
    scan_split,
    summarise_problems,
)
from benchmark.data.domains import Domain, get_domain
from benchmark.data.fundus_masks import decode_mask


@dataclass(frozen=True)
class SplitSummary:
    split: str
    count: int  # files without problems; the other fields summarise these
    listed: int  # files the split references
    min_hw: tuple[int, int]  # smallest height and width seen (taken separately)
    max_hw: tuple[int, int]
    fg_ratio: float  # mean over images of the foreground fraction (multiclass: not bg, not ignore)
    classes: tuple[int, ...] = ()  # multiclass: class ids seen (ignore excluded)

    def __str__(self) -> str:
        n = f"{self.count}" if self.count == self.listed else f"{self.count}/{self.listed} ok"
        if not self.count:
            return f"{self.split:<14} n={n}"
        text = (f"{self.split:<14} n={n:<6} size {self.min_hw[0]}x{self.min_hw[1]}"
                f"..{self.max_hw[0]}x{self.max_hw[1]} (HxW)  fg {self.fg_ratio:.3f}")
        if self.classes:
            text += f"  classes {','.join(map(str, self.classes))}"
        return text


@dataclass(frozen=True)
class _FileInfo:
    hw: tuple[int, int]
    fg: float
    classes: frozenset[int]


def _decode(path: Path, *, reduced: bool) -> tuple[Image.Image | None, tuple[int, int], str]:
    """Fully decode ``path``; JPEGs at reduced scale when only validity and size matter."""
    if not path.is_file():
        return None, (0, 0), "file not found"
    try:
        im = Image.open(path)
        hw = (im.height, im.width)
        if reduced and im.format == "JPEG":
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return None, (0, 0), f"cannot decode ({type(exc).__name__}: {exc})"
    return im, hw, ""


def _check_decoded(sample: Sample) -> tuple[_FileInfo | None, list[Problem]]:
    """A fundus sample: the image decodes, its ground truth decodes by its encoding to the image's size."""
    img, img_hw, err = _decode(sample.image, reduced=True)
    if img is None:
        return None, [Problem(sample.image, f"image {err}")]
    img.close()
    try:
        m = decode_mask(sample.dataset, sample.image, sample.masks, img_hw)
    except Exception as exc:  # MaskError, PIL's OSError/SyntaxError/ValueError, scipy's errors...
        return None, [Problem(sample.mask, f"ground truth unreadable ({type(exc).__name__}: {exc})")]
    if m.shape != img_hw:
        return None, [Problem(sample.mask, f"ground truth size {m.shape[0]}x{m.shape[1]} != image size "
                                           f"{img_hw[0]}x{img_hw[1]} (HxW) of {sample.image.name}")]
    return _FileInfo(img_hw, float(m.mean()), frozenset()), []


def check_sample(domain: Domain, sample: Sample) -> tuple[_FileInfo | None, list[Problem]]:
    if sample.dataset:
        return _check_decoded(sample)
    problems = []
    img, img_hw, err = _decode(sample.image, reduced=True)
    if err:
        problems.append(Problem(sample.image, f"image {err}"))
    m, mask_hw, err = _decode(sample.mask, reduced=False)
    if err:
        problems.append(Problem(sample.mask, f"mask {err}"))
    if img is None or m is None:
        return None, problems
    img.close()
    if img_hw != mask_hw:
        problems.append(Problem(sample.mask, f"mask size {mask_hw[0]}x{mask_hw[1]} != image size "
                                             f"{img_hw[0]}x{img_hw[1]} (HxW) of {sample.image.name}"))
    arr = mask_array(m, domain)
    m.close()
    values = np.unique(arr)
    if domain.task == "binary":
        bad = values[(values != 0) & (values != 255)]
        fg = float((arr > FOREGROUND_THRESHOLD).mean())
        classes: frozenset[int] = frozenset()
        allowed = "{0,255}"
    else:
        bad = values[(values >= domain.num_classes) & (values != IGNORE_INDEX)]
        fg = float(((arr != 0) & (arr != IGNORE_INDEX)).mean())
        classes = frozenset(int(v) for v in values if v != IGNORE_INDEX)
        allowed = f"0..{domain.num_classes - 1} or {IGNORE_INDEX} (ignore)"
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        problems.append(Problem(sample.mask, f"mask values outside {allowed}: {shown}"))
    if problems:
        return None, problems
    return _FileInfo(img_hw, fg, classes), []


def _summarise_split(split: str, listed: int, infos: Iterable[_FileInfo]) -> SplitSummary:
    infos = list(infos)
    if not infos:
        return SplitSummary(split, 0, listed, (0, 0), (0, 0), 0.0)
    hs, ws = [i.hw[0] for i in infos], [i.hw[1] for i in infos]
    classes = frozenset().union(*(i.classes for i in infos))
    return SplitSummary(split, len(infos), listed, (min(hs), min(ws)), (max(hs), max(ws)),
                        float(np.mean([i.fg for i in infos])), tuple(sorted(classes)))


def check_domain(domain: str | Domain, root: str | Path, *, workers: int = 4
                 ) -> tuple[list[SplitSummary], list[Problem]]:
    """Decode and validate every file every split references under the data root ``root``.

    Returns one summary per split (over the files without problems) and every problem found. A
    missing domain folder is one problem, not an exception; a fundus domain gets one problem per
    missing dataset, naming its folder and where it is obtained.
    """
    domain = get_domain(domain)
    try:
        droot = resolve_domain_root(domain, root)
    except BenchError as exc:
        if domain.layout != "fundus":
            return [], [Problem(Path(root) / domain.archive, str(exc))]
        droot = Path(root) / domain.archive  # go on: every missing dataset is named with its source
    summaries, problems = [], []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PIL decodes without the GIL
        for split in domain.splits:
            samples, listing = scan_split(domain, droot, split)
            problems += [p for p in listing if p not in problems]  # pooled splits list a dataset twice
            infos = []
            for info, probs in pool.map(lambda s: check_sample(domain, s), samples):
                problems += probs
                if info is not None:
                    infos.append(info)
            summaries.append(_summarise_split(split, len(samples), infos))
    return summaries, problems


def validate_or_raise(domain: str | Domain, root: str | Path) -> list[SplitSummary]:
    """``check_domain``, raising a one-line ``BenchError`` (first problem + count of the others)."""
    domain = get_domain(domain)
    summaries, problems = check_domain(domain, root)
    if problems:
        raise BenchError(f"{domain.key} data invalid: {summarise_problems(problems)}")
    return summaries
