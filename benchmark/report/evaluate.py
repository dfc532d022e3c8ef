"""``sam-peft-bench evaluate``: score a folder of predictions against a folder of ground truths.

Files pair by stem: predictions ``.png``/``.jpg``/``.jpeg``, ground truths ``.png``. Binary metrics
read grayscale 0..255 probability maps against 0/255 masks; multi-class metrics read label maps
0..N-1 (255 = ignore in the ground truth). A prediction of another size than its ground truth is
resized to it (bilinear for probabilities, nearest for labels). Images are scored in fixed chunks,
in worker processes when ``workers > 1``; each chunk fills its own ``MetricSuite`` and the chunks'
sufficient statistics are merged in order, so the numbers do not depend on the worker count.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tabulate import tabulate
from tqdm import tqdm

from benchmark.core.errors import BenchError
from benchmark.report.labels import METRIC_LABELS
from metrics import METRICS, MetricSuite
from metrics.confusion import IGNORE_INDEX

PRED_SUFFIXES = (".png", ".jpg", ".jpeg")
GT_SUFFIXES = (".png",)
# Images per task: small enough for a live progress bar and balanced workers, large enough that
# shipping a suite back (the AUC histograms are 1 MiB) costs nothing next to the scoring.
CHUNK = 8


@dataclass(frozen=True)
class Pair:
    """A prediction file and the ground-truth file of the same stem."""

    stem: str
    pred: Path
    gt: Path


# ---------------------------------------------------------------------------------------------
# Pairing


def list_images(folder: Path, suffixes: Sequence[str], role: str) -> dict[str, Path]:
    """Stem -> file for the images in ``folder`` (not recursive); other files are ignored."""
    if not folder.is_dir():
        raise BenchError(f"{role} folder {folder} does not exist or is not a folder")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        if path.stem in files:
            raise BenchError(f"{path}: same stem as {files[path.stem].name}; keep one {role} file per stem")
        files[path.stem] = path
    if not files:
        raise BenchError(f"{role} folder {folder} holds no {'/'.join(suffixes)} images")
    return files


def pair_files(pred_dir: Path, gt_dir: Path, *, strict: bool) -> tuple[list[Pair], list[Path]]:
    """Pairs sorted by stem, and the files without a partner (an error when ``strict``)."""
    preds = list_images(pred_dir, PRED_SUFFIXES, "prediction")
    gts = list_images(gt_dir, GT_SUFFIXES, "ground-truth")
    unmatched = sorted(
        [preds[s] for s in preds.keys() - gts.keys()] + [gts[s] for s in gts.keys() - preds.keys()]
    )
    if unmatched and strict:
        first = unmatched[0]
        partner = (
            f"ground truth {first.stem}.png in {gt_dir}"
            if first.stem in preds
            else f"prediction in {pred_dir}"
        )
        raise BenchError(
            f"{first}: no {partner} ({len(unmatched)} unmatched file(s) in all; --no-strict skips them)"
        )
    pairs = [Pair(s, preds[s], gts[s]) for s in sorted(preds.keys() & gts.keys())]
    if not pairs:
        raise BenchError(f"no prediction in {pred_dir} has a ground truth of the same stem in {gt_dir}")
    return pairs, unmatched


# ---------------------------------------------------------------------------------------------
# Reading and resizing


def read_image(path: Path, *, labels: bool) -> np.ndarray:
    """One 8-bit single-channel image as uint8 ``(H, W)``.

    Label maps are read raw (a palette image gives its indices); grayscale maps are converted
    to luminance, which is exact for gray RGB files and turns a 1-bit or palette mask into 0/255.
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if labels:
                if mode not in ("L", "P"):
                    raise BenchError(
                        f"{path}: label maps must be 8-bit single-channel (L or P) images, got mode {mode}"
                    )
                return np.asarray(img)
            if mode not in ("L", "P", "1", "LA", "RGB", "RGBA"):
                raise BenchError(f"{path}: expected an 8-bit grayscale image, got mode {mode}")
            return np.asarray(img if mode == "L" else img.convert("L"))
    except BenchError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports unknown formats as UnidentifiedImageError (an OSError) and truncated data
        # as OSError or SyntaxError; the message names the file either way.
        raise BenchError(f"{path}: unreadable or corrupt image ({exc})") from None


def _bilinear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(src.astype(np.intp), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def resize_bilinear(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map to ``shape`` with half-pixel centres and no antialiasing
    (OpenCV ``INTER_LINEAR``, torch ``interpolate(mode="bilinear", align_corners=False)``)."""
    r0, r1, wr = _bilinear_axis(image.shape[0], shape[0])
    c0, c1, wc = _bilinear_axis(image.shape[1], shape[1])
    rows = image[r0] * (1 - wr)[:, None] + image[r1] * wr[:, None]
    return rows[:, c0] * (1 - wc) + rows[:, c1] * wc


def resize_nearest(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map: source index floor(i * in / out), as OpenCV
    ``INTER_NEAREST`` and torch ``mode="nearest"``."""
    rows = np.minimum((np.arange(shape[0]) * (image.shape[0] / shape[0])).astype(np.intp), image.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * (image.shape[1] / shape[1])).astype(np.intp), image.shape[1] - 1)
    return image[rows[:, None], cols[None, :]]


def load_binary(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities in [0, 1] (float64) and the boolean mask; the GT must be 0/255 only."""
    gt = read_image(pair.gt, labels=False)
    counts = np.bincount(gt.ravel(), minlength=256)
    if counts[1:255].any():
        value = int(np.flatnonzero(counts[1:255])[0]) + 1
        raise BenchError(f"{pair.gt}: ground truth is not a binary 0/255 mask (holds value {value})")
    pred = read_image(pair.pred, labels=False) / 255.0
    if pred.shape != gt.shape:
        pred = np.clip(resize_bilinear(pred, gt.shape), 0.0, 1.0)
    return pred, gt == 255


def _check_classes(path: Path, labels: np.ndarray, num_classes: int, allow_ignore: bool) -> None:
    counts = np.bincount(labels.ravel(), minlength=256)
    bad = np.flatnonzero(counts[num_classes:])
    bad = bad[bad + num_classes != IGNORE_INDEX] if allow_ignore else bad
    if bad.size:
        ignore = f" or {IGNORE_INDEX} = ignore" if allow_ignore else ""
        raise BenchError(f"{path}: class {int(bad[0]) + num_classes} outside 0..{num_classes - 1}{ignore}")


def load_labels(pair: Pair, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and GT label maps (uint8); classes checked against ``num_classes``."""
    gt = read_image(pair.gt, labels=True)
    _check_classes(pair.gt, gt, num_classes, allow_ignore=True)
    pred = read_image(pair.pred, labels=True)
    _check_classes(pair.pred, pred, num_classes, allow_ignore=False)
    if pred.shape != gt.shape:
        pred = resize_nearest(pred, gt.shape)
    return pred, gt


# ---------------------------------------------------------------------------------------------
# Scoring


def score_chunk(job: tuple[list[Pair], tuple[str, ...], int | None]) -> MetricSuite:
    """Fill one suite with a chunk of pairs (runs in a worker process when workers > 1)."""
    pairs, keys, num_classes = job
    suite = MetricSuite(keys, num_classes=num_classes)
    for pair in pairs:
        if suite.task == "multiclass":
            suite.update(*load_labels(pair, num_classes))
        else:
            suite.update(*load_binary(pair))
    return suite


def _scored_chunks(jobs: list, workers: int) -> Iterator[MetricSuite]:
    if workers == 1 or len(jobs) == 1:
        yield from map(score_chunk, jobs)
        return
    # fork starts workers without re-importing numpy/scipy/py-sod-metrics (~2 s each with spawn).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(min(workers, len(jobs))) as pool:
        # imap keeps chunk order, so merging is deterministic whatever the worker count.
        yield from pool.imap(score_chunk, jobs)


def evaluate_folders(
    pred_dir: str | Path,
    gt_dir: str | Path,
    *,
    metrics: Sequence[str] | str,
    num_classes: int | None = None,
    workers: int = 1,
    strict: bool = True,
    progress: bool = True,
) -> dict:
    """Score every prediction in ``pred_dir`` against the same-stem ground truth in ``gt_dir``.

    Returns ``{key: value, ..., "n_images": N}`` with values as fractions (``class_iou`` a list);
    with ``strict=False`` also ``"n_skipped"`` and ``"skipped"`` (unmatched files, listed on
    stderr). Any bad input raises ``BenchError`` naming the file.
    """
    suite = MetricSuite(metrics, num_classes=num_classes)
    if workers < 1:
        raise BenchError(f"--workers must be >= 1, got {workers}")
    pairs, unmatched = pair_files(Path(pred_dir), Path(gt_dir), strict=strict)
    for path in unmatched:
        print(f"skipped (no partner of the same stem): {path}", file=sys.stderr)
    jobs = [(pairs[i : i + CHUNK], suite.keys, num_classes) for i in range(0, len(pairs), CHUNK)]
    bar = tqdm(total=len(pairs), unit="img", file=sys.stderr, disable=not progress, delay=1.0)
    with bar:
        for start, chunk_suite in zip(
            range(0, len(pairs), CHUNK), _scored_chunks(jobs, workers), strict=True
        ):
            suite.merge(chunk_suite)
            bar.update(min(CHUNK, len(pairs) - start))
    results: dict = dict(suite.compute())
    results["n_images"] = len(pairs)
    if not strict:
        results["n_skipped"] = len(unmatched)
        results["skipped"] = [str(path) for path in unmatched]
    return results


# ---------------------------------------------------------------------------------------------
# CLI


def format_table(results: dict) -> str:
    """Metric | value rows (fractions, 4 decimals); ``class_iou`` as one row per class."""
    rows: list[tuple[str, str]] = []
    for key, value in results.items():
        if key == "skipped":
            continue
        if key == "class_iou":
            rows += [(f"IoU class {c}", f"{v:.4f}") for c, v in enumerate(value)]
        elif key in METRICS:
            rows.append((METRIC_LABELS.get(key, key), f"{value:.4f}"))
        else:
            rows.append((key, str(value)))
    return tabulate(rows, headers=["metric", "value"], disable_numparse=True)


def _run(args: argparse.Namespace) -> int:
    results = evaluate_folders(
        args.pred,
        args.gt,
        metrics=METRICS.parse_list(args.metrics),
        num_classes=args.num_classes,
        workers=args.workers,
        strict=args.strict,
        progress=not args.quiet,
    )
    print(json.dumps(results, indent=2) if args.format == "json" else format_table(results))
    return 0


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a folder of predictions against ground truths",
        description="Score the predictions in --pred against the same-stem ground truths in --gt; "
        "print each metric as a fraction in [0, 1] (data on stdout, progress and skips on stderr).",
    )
    parser.add_argument("--pred", required=True, type=Path, metavar="DIR", help="prediction maps (.png/.jpg)")
    parser.add_argument("--gt", required=True, type=Path, metavar="DIR", help="ground-truth masks (.png)")
    parser.add_argument(
        "--metrics",
        default="sm,em,wfm,mae,iou,dice,ber",
        help=f"comma list of metric keys (default: %(default)s); valid: {', '.join(METRICS.keys())}",
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, metavar="N", help="classes incl. background (multi-class)"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--workers", type=int, default=1, metavar="K", help="worker processes (default: 1)")
    parser.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fail on files without a same-stem partner (default); --no-strict lists and skips them",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)
