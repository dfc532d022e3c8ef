"""Evaluation of a model on a loader with the domain's metrics, and the memory high-water mark.

Predictions are sigmoid probabilities (binary) or Mask2Former semantic maps (multi-class) at the
model's input size, scored against the ground truth resized to it (the official protocol), or
logits resized to each image's original size (``original``, a common protocol elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from benchmark.data.datasets import FOREGROUND_THRESHOLD, read_mask
from benchmark.data.domains import Domain
from benchmark.model.feature_cache import cached
from benchmark.train import dist
from benchmark.train.amp import autocast
from benchmark.train.losses import semantic_map
from metrics import MetricSuite


def predictions(out, domain: Domain) -> list[np.ndarray]:
    """Per image: binary probabilities (H, W) float32, or class maps (H, W) int64."""
    if domain.task == "multiclass":
        return list(semantic_map(out.logits, out.class_logits).cpu().numpy())
    return list(torch.sigmoid(out.logits.float())[:, 0].cpu().numpy())


def targets(batch: dict, domain: Domain) -> list[np.ndarray]:
    if domain.task == "multiclass":
        return list(batch["mask"].cpu().numpy())
    return list((batch["mask"][:, 0] > 0.5).cpu().numpy())


def _at_original_size(out, index: int, sample, domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """One image's prediction with its logits resized (bilinear) to the original GT, and that GT."""
    gt = read_mask(sample, domain)
    size = gt.shape
    logits = F.interpolate(out.logits[index : index + 1].float(), size=size, mode="bilinear", align_corners=False)
    if domain.task == "multiclass":
        pred = semantic_map(logits, out.class_logits[index : index + 1])[0].cpu().numpy()
        return pred, gt.astype(np.int64)
    return torch.sigmoid(logits)[0, 0].cpu().numpy(), gt > FOREGROUND_THRESHOLD


@torch.no_grad()
def evaluate(model, loader, domain: Domain, keys: tuple[str, ...], device, precision: str, desc: str,
             protocol: str = "official", progress: bool = True, sink=None, cache=None) -> dict:
    """Metric values over a loader.

    ``official``: the model's output at its input size against the GT resized to it (nearest), as
    the official evaluation. ``original``: logits resized to each image's original size against
    its original GT (a common protocol elsewhere; not the paper's). ``sink(batch, predictions,
    targets)``, if given, sees every batch at the official protocol's size (saved predictions).
    ``cache``: a :class:`~benchmark.model.feature_cache.FeatureCache` to serve a frozen encoder from.
    """
    return evaluate_modes(model, loader, domain, keys, device, precision, desc, None, protocol=protocol,
                          progress=progress, sink=sink, cache=cache)[""]


@torch.no_grad()
def evaluate_modes(model, loader, domain: Domain, keys: tuple[str, ...], device, precision: str, desc: str,
                   modes: Mapping[str, Callable[[dict], Any]] | None, *, protocol: str = "official",
                   progress: bool = True, sink=None, cache=None) -> dict[str, dict]:
    """:func:`evaluate` once per prompt mode: ``modes`` maps a mode key to the prompts of a batch
    (``benchmark.train.prompting``); each batch is encoded once and decoded once per mode. Returns
    {mode: metrics}; the ``sink`` sees the first mode. ``modes=None``: the plain forward, as {"": metrics}."""
    model.eval()
    names = list(modes) if modes is not None else [""]
    suites = {m: MetricSuite(list(keys), num_classes=domain.num_classes if domain.task == "multiclass" else None)
              for m in names}
    ctx, _ = autocast(device, precision)
    seen = 0
    split = getattr(loader.dataset, "split", desc)  # the feature cache's key
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and dist.is_main()), dynamic_ncols=True)
    for batch in bar:
        images = batch["image"].to(device)
        with ctx, cached(cache, split, batch):  # one encoder call per batch: the cache serves it
            if modes is None:
                outs = {"": model(images)}
            else:
                features = model.encode(images)
                outs = {m: model.decode(features, of(batch), size=images.shape[-2:]) for m, of in modes.items()}
        for m, out in outs.items():
            if sink is not None and m == names[0]:
                sink(batch, predictions(out, domain), targets(batch, domain))
            if protocol == "original":
                for i in range(len(images)):
                    suites[m].update(*_at_original_size(out, i, loader.dataset.samples[seen + i], domain))
            else:
                for pred, gt in zip(predictions(out, domain), targets(batch, domain), strict=True):
                    suites[m].update(pred, gt)
        seen += len(images)
    return {m: _plain(suite.compute()) for m, suite in suites.items()}


def _plain(values: dict) -> dict:
    return {k: (float(v) if not isinstance(v, list) else [float(x) for x in v]) for k, v in values.items()}


def peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    # ru_maxrss is in KiB on Linux; it is the process's high-water mark, not this run's alone.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_process_max_rss"
