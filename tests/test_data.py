"""Domains, synthetic stand-ins, the data checker and the Dataset."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark import cli
from benchmark.core.errors import BenchError
from benchmark.core.registry import Registry
from benchmark.data import synth
from benchmark.data.checks import check_domain, validate_or_raise
from benchmark.data.datasets import (
    PIXEL_MEAN,
    PIXEL_STD,
    SegmentationDataset,
    list_samples,
    resolve_domain_root,
)
from benchmark.data.domains import DOMAINS, Domain, register_domain
from benchmark.data.synth import split_counts, synth_domain
from benchmark.report.layouts import LAYOUTS

N = 4


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Every domain synthesised once, read-only for the tests that use it."""
    root = tmp_path_factory.mktemp("data")
    for key in DOMAINS:
        synth_domain(key, root, n=N, seed=0)
    return root


def _fresh(tmp_path: Path, key: str) -> tuple[Path, Path]:
    """A private synthetic copy of one domain: (data root, resolved domain folder)."""
    synth_domain(key, tmp_path, n=N, seed=0)
    return tmp_path, resolve_domain_root(key, tmp_path)


# -------------------------------------------------------------------------------------- domains

EXPECTED = {  # key: (archive, test sets, val metric, higher better, test metrics, loss, epochs, lr)
    "polyp": ("polyp", {"kvasir": "test_Kvasir.csv", "cvc_clinicdb": "test_CVC-ClinicDB.csv"},
              "sm", True, ("sm", "em", "wfm", "mae"), "structure", 30, 1e-4),
    "isic2017": ("isic2017", {"isic2017": "test.csv"}, "iou", True, ("jaccard", "dice"), "structure", 30, 1e-4),
    "camo": ("camo_sem_seg", {"camo": "test_CAMO.csv"}, "sm", True, ("sm", "em", "wfm", "mae"),
             "structure", 20, 1e-4),
    "sbu": ("SBU-shadow", {"sbu": "test.csv"}, "ber", False, ("ber",), "balanced_bce", 10, 1e-4),
    "leaf": ("leaf_disease_segmentation", {"leaf": "test.csv"}, "iou", True, ("iou", "dice"), "structure", 30, 3e-4),
    "road": ("road_segmentation", {"road": "test.csv"}, "iou", True, ("iou", "dice"), "structure", 20, 3e-4),
    "trans10k": ("tiny_trans10kcls12", {"trans10k": "test"}, "miou", True, ("acc", "miou", "class_iou"),
                 "mask2former", 30, 1e-4),
}


def test_registry_holds_exactly_the_nine_domains():
    """Conv-LoRA's seven, then SAM2LoRA's two fundus tasks (their entries: tests/test_fundus.py)."""
    assert DOMAINS.keys() == [*EXPECTED, "fundus_vessel", "fundus_od"]


@pytest.mark.parametrize("key", list(EXPECTED))
def test_domain_entry_matches_reference(key):
    d = DOMAINS.get(key)
    archive, tests, val_metric, higher, test_metrics, loss, epochs, lr = EXPECTED[key]
    assert (d.archive, dict(d.tests), d.val_metric, d.val_higher_is_better) == (archive, tests, val_metric, higher)
    assert (d.test_metrics, d.loss, d.epochs, d.lr) == (test_metrics, loss, epochs, lr)
    assert set(d.test_labels) == set(d.tests) and all(d.test_labels.values())
    assert d.table in LAYOUTS
    assert d.splits == ("train", "val", *tests)
    if key == "trans10k":
        assert (d.layout, d.task, d.num_classes, d.val) == ("trans10k", "multiclass", 12, "validation")
        assert d.class_names[0] == "bg" and len(d.class_names) == 12
        assert d.archive_url.endswith("unit-tests/tiny_trans10kcls12.zip")
    else:
        assert (d.layout, d.task, d.num_classes, d.train, d.val) == ("csv", "binary", 2, "train.csv", "val.csv")
    assert d.painter in synth.PAINTERS


def test_domain_rejects_bad_fields_and_is_immutable():
    d = DOMAINS.get("road")
    with pytest.raises(ValueError, match="num_classes"):
        replace(d, num_classes=3)
    with pytest.raises(ValueError, match="test set"):
        replace(d, tests={"val": "x.csv"})
    with pytest.raises(TypeError):
        d.tests["x"] = "y.csv"  # type: ignore[index]
    with pytest.raises(BenchError, match="no split 'nope'"):
        d.split_source("nope")


def test_a_new_domain_is_one_entry(tmp_path):
    """Synth, check and load a toy domain that exists only as one Domain in a throwaway registry."""
    reg: Registry[Domain] = Registry("domain")
    toy = register_domain(Domain(
        key="toy", archive="toy_archive", archive_url="toy_archive.zip", layout="csv",
        train="train.csv", val="val.csv", tests={"toy_a": "test_A.csv", "toy_b": "test_B.csv"},
        task="binary", num_classes=2, val_metric="iou",
        test_metrics=("iou",), loss="structure", epochs=1, lr=1e-4, painter="blobs",
        test_labels={"toy_a": "Toy A", "toy_b": "Toy B"}, table="1",
    ), reg)
    assert reg.keys() == ["toy"] and "toy" not in DOMAINS
    synth_domain(toy, tmp_path, n=3)
    assert (tmp_path / "toy_archive" / "toy_archive" / "test_B.csv").is_file()
    summaries, problems = check_domain(toy, tmp_path)
    assert problems == []
    assert [s.count for s in summaries] == [3, 2, 2, 2]
    item = SegmentationDataset(toy, tmp_path, "toy_b", size=16, train=False)[0]
    assert item["mask"].shape == (1, 16, 16)


# ------------------------------------------------------------------------------------ synthesis


@pytest.mark.parametrize("key", list(EXPECTED))
def test_synth_writes_the_official_layout_and_checks_clean(data_root, key):
    d = DOMAINS.get(key)
    droot = data_root / d.archive / d.archive
    assert resolve_domain_root(d, data_root) == droot
    summaries, problems = check_domain(d, data_root)
    assert problems == []
    assert {s.split: s.count for s in summaries} == split_counts(d, N)
    for s in summaries:
        assert 0.0 < s.fg_ratio < 0.9
        assert s.min_hw[0] >= synth.MIN_SIDE and s.max_hw[1] <= synth.MAX_SIDE
    for split in d.splits:
        if d.layout == "csv":
            with (droot / d.split_source(split)).open() as f:
                assert next(csv.reader(f)) == ["image", "label"]
        for s in list_samples(d, data_root, split):
            with Image.open(s.image) as im, Image.open(s.mask) as m:
                assert (im.format, m.format, im.mode) == ("JPEG", "PNG", "RGB")
                assert im.size == m.size and im.width != im.height
                values = set(np.unique(np.asarray(m)).tolist())
            if d.task == "binary":
                assert values == {0, 255}
            else:
                assert s.mask.name == f"{s.name}_mask.png" and s.mask.parent.name == "masks_12"
                assert 0 in values and values <= set(range(d.num_classes))


def test_synth_trans10k_uses_the_foreground_classes(data_root):
    summaries, _ = check_domain("trans10k", data_root)
    seen = set().union(*(s.classes for s in summaries))
    assert seen <= set(range(12)) and len(seen) >= 6


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_synth_is_deterministic_per_seed(tmp_path):
    a, b, c = (synth_domain("sbu", tmp_path / name, n=3, seed=seed) for name, seed in
               (("a", 7), ("b", 7), ("c", 8)))
    assert _digest(a) == _digest(b) != _digest(c)


def test_synth_replaces_synthetic_data_but_never_real_data(tmp_path):
    synth_domain("leaf", tmp_path, n=2, seed=0)
    synth_domain("leaf", tmp_path, n=4, seed=0)
    assert len(list_samples("leaf", tmp_path, "train")) == 4
    real = tmp_path / "real"
    (real / "road_segmentation" / "road_segmentation").mkdir(parents=True)
    with pytest.raises(BenchError, match="not synthetic"):
        synth_domain("road", real)


def test_interrupted_synth_leaves_no_folder_that_looks_complete(tmp_path, monkeypatch):
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(synth, "_write_pair", failing)
    with pytest.raises(KeyboardInterrupt):
        synth_domain("polyp", tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BenchError, match="not found"):
        resolve_domain_root("polyp", tmp_path)


# -------------------------------------------------------------------------------------- locating


def test_resolve_accepts_flat_and_nested_layouts(tmp_path):
    root, droot = _fresh(tmp_path, "camo")
    assert resolve_domain_root("camo", root) == droot
    assert resolve_domain_root("camo", root / "camo_sem_seg") == droot  # the archive folder itself
    for p in list(droot.iterdir()):  # flatten: DATA/camo_sem_seg/*.csv
        p.rename(droot.parent / p.name)
    droot.rmdir()
    assert resolve_domain_root("camo", root) == root / "camo_sem_seg"
    assert check_domain("camo", root)[1] == []


def test_resolve_accepts_unnested_trans10k(tmp_path):
    root, droot = _fresh(tmp_path, "trans10k")
    for p in list(droot.iterdir()):
        p.rename(droot.parent / p.name)
    droot.rmdir()
    assert resolve_domain_root("trans10k", root) == root / "tiny_trans10kcls12"
    assert len(SegmentationDataset("trans10k", root, "trans10k", size=8, train=False)) == 2


def test_missing_domain_names_the_path_it_looked_for(tmp_path):
    with pytest.raises(BenchError) as err:
        resolve_domain_root("sbu", tmp_path)
    assert str(tmp_path / "SBU-shadow" / "SBU-shadow" / "train.csv") in str(err.value)
    assert "\n" not in str(err.value)


# -------------------------------------------------------------------------------------- checking


def _corrupt(droot: Path, kind: str) -> Path:
    """Damage one file of the polyp train split; returns the damaged (or missing) file."""
    with (droot / "train.csv").open() as f:
        rows = list(csv.DictReader(f))
    image, mask = droot / rows[1]["image"], droot / rows[1]["label"]
    if kind == "truncated_image":
        data = image.read_bytes()
        image.write_bytes(data[: len(data) // 2])
        return image
    if kind == "missing_mask":
        mask.unlink()
        return mask
    arr = np.asarray(Image.open(mask)).copy()
    if kind == "wrong_size_mask":
        Image.fromarray(arr).resize((arr.shape[1] + 3, arr.shape[0]), Image.NEAREST).save(mask)
    elif kind == "stray_value":
        arr[0, 0] = 128
        Image.fromarray(arr).save(mask)
    elif kind == "zero_one_mask":
        Image.fromarray((arr > 0).astype(np.uint8)).save(mask)
    return mask


KINDS = ["truncated_image", "missing_mask", "wrong_size_mask", "stray_value", "zero_one_mask"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_defect_is_reported_with_its_file(tmp_path, kind):
    root, droot = _fresh(tmp_path, "polyp")
    bad = _corrupt(droot, kind)
    _, problems = check_domain("polyp", root)
    assert [p.path for p in problems] == [bad]
    word = {"truncated_image": "decode", "missing_mask": "not found", "wrong_size_mask": "size",
            "stray_value": "128", "zero_one_mask": "outside {0,255}: 1"}[kind]
    assert word in problems[0].message
    with pytest.raises(BenchError) as err:
        validate_or_raise("polyp", root)
    assert bad.name in str(err.value) and "\n" not in str(err.value)


def test_all_problems_are_listed_and_the_error_counts_the_rest(tmp_path):
    root, droot = _fresh(tmp_path, "polyp")
    (droot / "test_Kvasir.csv").unlink()
    truncated = _corrupt(droot, "truncated_image")
    summaries, problems = check_domain("polyp", root)
    assert {p.path for p in problems} == {droot / "test_Kvasir.csv", truncated}
    assert (summaries[0].count, summaries[0].listed) == (N - 1, N) and "n=3/4 ok" in str(summaries[0])
    with pytest.raises(BenchError, match=r"and 1 other problem\)$"):
        validate_or_raise("polyp", root)


def test_trans10k_checker_allows_ignore_but_not_unknown_classes(tmp_path):
    root, droot = _fresh(tmp_path, "trans10k")
    masks = sorted((droot / "test" / "masks_12").iterdir())
    arr = np.asarray(Image.open(masks[0])).copy()
    arr[:2] = 255
    Image.fromarray(arr).save(masks[0])
    assert check_domain("trans10k", root)[1] == []
    arr[-1, -1] = 12
    Image.fromarray(arr).save(masks[0])
    (problem,) = check_domain("trans10k", root)[1]
    assert problem.path == masks[0] and "12" in problem.message
    orphan = droot / "train" / "images" / "99999.jpg"
    Image.new("RGB", (50, 60)).save(orphan)
    assert orphan in {p.path for p in check_domain("trans10k", root)[1]}


# --------------------------------------------------------------------------------------- dataset


@pytest.mark.parametrize("key", list(EXPECTED))
def test_dataset_items_have_the_right_shapes_and_ranges(data_root, key):
    d = DOMAINS.get(key)
    ds = SegmentationDataset(d, data_root, d.splits[-1], size=32, train=False)
    assert len(ds) == max(2, N // 2)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert -2.2 < item["image"].min() and item["image"].max() < 2.7  # ImageNet-normalised 0..255
    assert item["name"] == ds.samples[0].image.stem
    if d.task == "binary":
        assert item["mask"].shape == (1, 32, 32) and item["mask"].dtype == torch.float32
        assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    else:
        assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64
        assert item["mask"].min() >= 0 and item["mask"].max() < d.num_classes


def _plant(sample, image: np.ndarray, mask: np.ndarray) -> None:
    Image.fromarray(image).save(sample.image, quality=100)
    Image.fromarray(mask).save(sample.mask)


def test_normalisation_and_nearest_mask_resize(tmp_path):
    root, _ = _fresh(tmp_path, "isic2017")
    s = list_samples("isic2017", root, "val")[0]
    mask = np.zeros((40, 60), np.uint8)
    mask[:, :30] = 255  # left half foreground
    mask[0, 0] = 255
    _plant(s, np.full((40, 60, 3), (200, 100, 50), np.uint8), mask)
    item = SegmentationDataset("isic2017", root, "val", size=20, train=False)[0]
    expected = [(v - m) / sd for v, m, sd in zip((200, 100, 50), PIXEL_MEAN, PIXEL_STD, strict=True)]
    assert torch.allclose(item["image"].mean(dim=(1, 2)), torch.tensor(expected), atol=0.03)
    assert item["mask"][0, :, :10].eq(1).all() and item["mask"][0, :, 10:].eq(0).all()


def test_trans10k_sample_with_ignore_value_loads(tmp_path):
    root, _ = _fresh(tmp_path, "trans10k")
    s = list_samples("trans10k", root, "trans10k")[0]
    mask = np.zeros((64, 96), np.uint8)
    mask[:, 48:] = 7
    mask[:16] = 255
    _plant(s, np.zeros((64, 96, 3), np.uint8), mask)
    m = SegmentationDataset("trans10k", root, "trans10k", size=16, train=False)[0]["mask"]
    assert m.dtype == torch.int64 and set(m.unique().tolist()) == {0, 7, 255}
    assert m[:4].eq(255).all() and m[4:, :8].eq(0).all() and m[4:, 8:].eq(7).all()


def test_train_flip_moves_image_and_mask_together_and_reproduces(tmp_path):
    root, _ = _fresh(tmp_path, "road")
    s = list_samples("road", root, "train")[0]
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :12] = 255
    mask = np.zeros((32, 48), np.uint8)
    mask[:, :12] = 255
    _plant(s, image, mask)
    plain = SegmentationDataset("road", root, "train", size=16, train=False)[0]
    ds = SegmentationDataset("road", root, "train", size=16, train=True)

    def draws(seed: int) -> list[bool]:
        torch.manual_seed(seed)
        out = []
        for _ in range(16):
            item = ds[0]
            flipped = torch.equal(item["image"], plain["image"].flip(-1))
            assert flipped or torch.equal(item["image"], plain["image"])
            assert torch.equal(item["mask"], plain["mask"].flip(-1) if flipped else plain["mask"])
            out.append(flipped)
        return out

    first = draws(3)
    assert any(first) and not all(first)
    assert draws(3) == first
    plain_ds = SegmentationDataset("road", root, "train", size=16, train=False)
    assert all(torch.equal(plain_ds[0]["image"], plain["image"]) for _ in range(8))


def test_dataset_rejects_unknown_split(data_root):
    with pytest.raises(BenchError, match="valid: train, val, kvasir, cvc_clinicdb"):
        SegmentationDataset("polyp", data_root, "test", size=8, train=False)


# ------------------------------------------------------------------------------------------- CLI


def test_cli_synth_then_check(tmp_path, capsys):
    assert cli.main(["data", "synth", "--domain", "sbu,trans10k", "--out", str(tmp_path), "--n", "3"]) == 0
    assert cli.main(["data", "check", "--domain", "sbu,trans10k", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sbu [synthetic]" in out and "trans10k" in out and "n=3" in out


def test_cli_check_reports_every_problem_and_fails(tmp_path, capsys):
    root, droot = _fresh(tmp_path, "polyp")
    bad = [_corrupt(droot, "missing_mask"), _corrupt(droot, "truncated_image")]
    assert cli.main(["data", "check", "--domain", "polyp", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert all(str(p) in captured.out for p in bad) and "Traceback" not in captured.err
    assert cli.main(["data", "check", "--domain", "all", "--root", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert out.count("not found") == len(EXPECTED)  # one per archive domain
    assert out.count(" missing (expected ") == 11  # one per fundus dataset, naming where it is obtained


def test_cli_unknown_domain_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["data", "check", "--domain", "nope", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown domain 'nope'") and err.count("\n") == 1


def test_decoded_samples_are_reused_and_a_rewritten_file_is_read_again(tmp_path) -> None:
    synth_domain("polyp", tmp_path, n=2, seed=0)
    ds = SegmentationDataset("polyp", tmp_path, "train", size=32, train=False)
    first = ds[0]["image"]
    first += 1.0  # a caller changing its copy leaves the cached sample as decoded
    assert torch.equal(ds[0]["image"], SegmentationDataset("polyp", tmp_path, "train", size=32, train=False)[0]["image"])
    assert not torch.equal(ds[0]["image"], first)
    before = ds[0]["image"]
    synth_domain("polyp", tmp_path, n=2, seed=1)  # replaces the files in place: new content, same paths
    after = SegmentationDataset("polyp", tmp_path, "train", size=32, train=False)[0]["image"]
    assert not torch.equal(before, after)


def test_decoded_cache_drops_the_least_recently_used_beyond_its_budget() -> None:
    from benchmark.data.cache import DecodedCache

    cache, loads = DecodedCache(budget=2 * 8), []

    def load(key: str):
        loads.append(key)
        return torch.zeros(1), torch.zeros(1)  # 8 bytes a pair

    for key in ("a", "b", "a", "c", "a", "b"):
        cache.get((key,), lambda key=key: load(key))
    assert loads == ["a", "b", "c", "b"]  # "b" was least recently used when "c" came
    assert cache.used == 16


def test_domain_lists_take_table_groups_in_registry_order_once() -> None:
    # Tables 1 and 2 of the Conv-LoRA paper: six binary domains and Trans10K (docs/FIDELITY.md#conv-lora-published-numbers)
    assert DOMAINS.parse_list("table:1,table:2") == ["polyp", "isic2017", "camo", "sbu", "leaf", "road", "trans10k"]
    assert DOMAINS.parse_list("road,table:sam2lora,fundus_od") == ["road", "fundus_vessel", "fundus_od"]
    with pytest.raises(BenchError, match="unknown domain group 'table:9'; valid: table:1, table:2, table:sam2lora"):
        DOMAINS.parse_list("table:9")
