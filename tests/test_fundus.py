"""SAM2LoRA's retinal fundus data: the eleven readers and their encodings, the splits, the pooled
domains, the synthetic layouts, ``data check`` and a smoke run."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy.io import savemat

from benchmark import cli
from benchmark.core.errors import BenchError
from benchmark.data import fundus, fundus_masks
from benchmark.data.checks import check_domain, validate_or_raise
from benchmark.data.datasets import (
    SYNTHETIC_MARKER,
    SegmentationDataset,
    is_synthetic,
    list_samples,
    read_mask,
    resolve_domain_root,
)
from benchmark.data.domains import DOMAINS
from benchmark.data.download import archive_url, download_domain
from benchmark.data.fundus import FUNDUS_DATASETS, list_dataset, train_test_split
from benchmark.data.fundus_masks import MaskError, decode_mask
from benchmark.data.synth import split_counts, synth_domain
from benchmark.report.layouts import LAYOUTS

N = 4  # --n: fundus_files(4) = 4 images per dataset
FUNDUS = ("fundus_vessel", "fundus_od")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fundus")
    for key in FUNDUS:
        synth_domain(key, root, n=N, seed=0)
    return root


def _fresh(tmp_path: Path, key: str) -> Path:
    synth_domain(key, tmp_path, n=N, seed=0)
    return tmp_path / "Fundus"


def _grey(path: Path, arr, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.asarray(arr, np.uint8), mode="L")
    (im.convert(mode) if mode != "L" else im).save(path)
    return path


def _image(path: Path, h: int, w: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (120, 40, 20)).save(path)
    return path


# ------------------------------------------------------------------------------------ the facts

SPLITS = {  # key: test_size (their train_test_split) or the official folders (docs/FIDELITY.md#sam2lora-data)
    "chasedb1": 0.27, "drive": ("training", "test"), "fives": ("train", "test"), "hrf": 0.27, "stare": 0.25,
    "drishtigs": ("Training", "Test"), "g1020": 0.25, "grape": 0.25, "origa": 0.25, "papiladb": 0.25,
    "refuge2": ("train", "test"),
}


@pytest.mark.parametrize("key", list(SPLITS))
def test_each_dataset_splits_as_theirs_and_cites_its_loader(key):
    d = FUNDUS_DATASETS[key]
    want = SPLITS[key]
    if isinstance(want, float):
        assert (d.test_size, dict(d.split_dirs)) == (want, {})
    else:
        assert d.test_size is None and (d.split_dirs["train"], d.split_dirs["test"]) == want
    assert d.cite.startswith("dataloader/") and d.source and d.encoding in fundus_masks.DECODERS


def test_the_two_domains_pool_their_datasets_and_train_as_theirs():
    vessel, od = DOMAINS.get("fundus_vessel"), DOMAINS.get("fundus_od")
    assert list(vessel.tests) == ["chasedb1", "drive", "fives", "hrf", "stare"]
    assert list(od.tests) == ["drishtigs", "g1020", "grape", "origa", "papiladb", "refuge2"]
    assert [d.key for d in fundus.datasets_of("vessel")] == list(vessel.tests)
    assert [d.key for d in fundus.datasets_of("od")] == list(od.tests)
    assert od.test_labels["papiladb"] == "PAPILA" and vessel.test_labels["chasedb1"] == "CHASEDB1"
    for d in (vessel, od):
        assert (d.layout, d.task, d.archive, d.archive_url, d.loss, d.lr, d.val_metric) == (
            "fundus", "binary", "Fundus", None, "composite", 1e-4, "dice")
        assert {"dice", "auc_img", "hd95"} <= set(d.test_metrics) and d.table == "sam2lora"
    # 120,000 micro-batches of 2 (train_script.ps1) over 687 / ~2541 pooled training images
    assert (vessel.epochs, od.epochs) == (round(240_000 / 687), round(240_000 / 2541))
    layout = LAYOUTS.get("sam2lora")
    assert layout.methods == ("sam2lora",) and len(layout.columns) == 3 * 11
    assert layout.columns[:3] == (("chasedb1", "dice"), ("chasedb1", "auc_img"), ("chasedb1", "hd95"))


def test_domain_rejects_an_unknown_dataset_or_ground_truth():
    od = DOMAINS.get("fundus_od")
    with pytest.raises(ValueError, match="not a fundus dataset"):
        replace(od, tests={**od.tests, "x": "nope"}, test_labels={**od.test_labels, "x": "X"})
    with pytest.raises(ValueError, match="no test ground truth"):
        replace(DOMAINS.get("fundus_vessel"), test_gt={"drive": "third"})
    with pytest.raises(ValueError, match="no test ground truth"):
        replace(od, test_gt={"g1020": "union"})


# ------------------------------------------------------------------------------------ splitting


@pytest.mark.parametrize("n", [2, 3, 20, 28, 45, 101])
@pytest.mark.parametrize("test_size", [0.1, 0.25, 0.27])
def test_train_test_split_is_scikit_learns(n, test_size):
    sk = pytest.importorskip("sklearn.model_selection")
    items = [f"im{i:03d}" for i in range(n)]
    assert list(train_test_split(items, test_size)) == [list(x) for x in sk.train_test_split(items, test_size=test_size,
                                                                                        random_state=0)]
    assert train_test_split(items, test_size) == train_test_split(items, test_size)  # deterministic


@pytest.mark.parametrize(("key", "count", "n_test"), [
    # published full-dataset counts: G1020 1020 (its name), ORIGA 650, PAPILA 488 images
    ("g1020", 1020, 255), ("origa", 650, 163), ("papiladb", 488, 122),
    # GRAPE's count with ROI json is not established here: any of 629..632 gives their 158
    ("grape", 632, 158), ("grape", 629, 158),
    # vessel datasets: CHASEDB1 28, HRF 45, STARE 20 labelled images
    ("chasedb1", 28, 8), ("hrf", 45, 13), ("stare", 20, 5),
])
def test_ratio_splits_give_the_published_test_sizes(tmp_path, key, count, n_test):
    """Layouts of the full size made of empty files (listing only looks for the files)."""
    entry = FUNDUS_DATASETS[key]
    droot = tmp_path / entry.folder
    for i in range(count):
        stem = f"img{i:04d}"
        (droot / entry.images.rpartition("/")[0]).mkdir(parents=True, exist_ok=True)
        (droot / entry.images.rpartition("/")[0] / f"{stem}.{entry.images.rpartition('.')[2]}").touch()
        for t in (*entry.masks, *entry.requires):
            f = droot / t.format(stem=stem, split="", id2=stem[:2])
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()
    train, problems = list_dataset(entry, droot, "train")
    test, _ = list_dataset(entry, droot, "test")
    assert problems == [] and (len(train), len(test)) == (count - n_test, n_test)
    assert {s.image for s in train}.isdisjoint({s.image for s in test})
    rest, val = fundus.carve_val(train, fundus.sample_key)
    assert len(val) == -(-len(train) // 10) and len(rest) + len(val) == len(train)


@pytest.mark.parametrize(("key", "train", "test"), [("drishtigs", 50, 51), ("refuge2", 400, 400)])
def test_official_splits_read_their_folders(tmp_path, key, train, test):
    entry = FUNDUS_DATASETS[key]
    droot = tmp_path / entry.folder
    for split, count in (("train", train), ("test", test)):
        folder = entry.split_dirs[split]
        for i in range(count):
            stem = f"{split}{i:03d}"
            where = entry.images.format(split=folder).replace("**/", "").rpartition("/")[0]
            img = droot / where / f"{stem}.{entry.images.rpartition('.')[2]}"
            img.parent.mkdir(parents=True, exist_ok=True)
            img.touch()
            for t in (*entry.masks, *entry.requires):
                f = droot / t.split("|")[-1].format(stem=stem, split=folder, id2=stem[:2])
                f.parent.mkdir(parents=True, exist_ok=True)
                f.touch()
    got = {s: list_dataset(entry, droot, s)[0] for s in ("train", "test")}
    assert (len(got["train"]), len(got["test"])) == (train, test)
    assert all(s.image.stem.startswith("test") for s in got["test"])


def test_file_lists_are_sorted_case_insensitively_and_suffixes_match_any_case(tmp_path):
    for name in ("b.jpg", "A.JPG", "c.Jpg", "skip.png"):
        _image(tmp_path / "images" / name, 4, 4)
    got = fundus.glob_images(tmp_path, "images/*.jpg")
    assert [p.name for p in got] == ["A.JPG", "b.jpg", "c.Jpg"]


# ------------------------------------------------------------------------------- the encodings


def test_threshold_binarises_at_mid_range_strictly_and_unites_graders(tmp_path):
    a = np.array([[10, 60, 200], [10, 105, 10]])  # (max + min) / 2 = 105: only 200 is foreground
    b = np.array([[0, 0, 0], [255, 0, 0]])
    img = _image(tmp_path / "im.jpg", 2, 3)
    f1, f2 = _grey(tmp_path / "a.png", a), _grey(tmp_path / "b.gif", b)
    one = decode_mask("chasedb1", img, (f1,))
    assert one.tolist() == [[False, False, True], [False, False, False]]
    both = decode_mask("chasedb1", img, (f1, f2))
    assert both.tolist() == [[False, False, True], [True, False, False]]
    flat = _grey(tmp_path / "flat.png", np.full((2, 3), 255))  # a constant map has no foreground (theirs)
    assert not decode_mask("chasedb1", img, (flat,)).any()


def test_stare_reads_colour_and_grey_ppm_labels_and_unites_them(tmp_path):
    img = _image(tmp_path / "stare-images" / "im0001.ppm", 3, 3)
    ah = _grey(tmp_path / "labels-ah" / "im0001.ah.ppm", np.eye(3) * 255, mode="RGB")
    vk = _grey(tmp_path / "labels-vk" / "im0001.vk.ppm", np.fliplr(np.eye(3)) * 255)
    assert Image.open(ah).mode == "RGB" and Image.open(vk).mode == "L"
    m = decode_mask("stare", img, (ah, vk))
    assert m.tolist() == (np.eye(3, dtype=bool) | np.fliplr(np.eye(3, dtype=bool))).tolist()


def test_drishti_soft_map_is_binarised_at_mid_range(tmp_path):
    soft = np.array([[0, 40, 127], [128, 200, 254]])  # (254 + 0) / 2 = 127
    m = decode_mask("drishtigs", _image(tmp_path / "i.png", 2, 3), (_grey(tmp_path / "s.png", soft),))
    assert m.tolist() == [[False, False, False], [True, True, True]]


def _labelme(path: Path, shapes: list[tuple[str, list]]) -> Path:
    path.write_text(json.dumps({"shapes": [{"label": lbl, "points": pts, "shape_type": "polygon"}
                                           for lbl, pts in shapes]}))
    return path


@pytest.mark.parametrize(("key", "disc", "cup"), [("g1020", "disc", "cup"), ("grape", "OD", "OC")])
def test_labelme_draws_the_disc_polygon_only(tmp_path, key, disc, cup):
    img = _image(tmp_path / "i.jpg", 20, 30)
    square = [[5, 4], [15, 4], [15, 12], [5, 12]]
    f = _labelme(tmp_path / "i.json", [(cup, [[0, 0], [29, 0], [29, 19]]), (disc, square)])
    canvas = Image.new("L", (30, 20), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in square], outline=1, fill=1)
    assert decode_mask(key, img, (f,)).tolist() == (np.asarray(canvas) > 0).tolist()
    assert decode_mask(key, img, (f,)).sum() == 11 * 9  # the outline is part of it
    with pytest.raises(MaskError, match=f"no polygon labelled '{disc}'"):
        decode_mask(key, img, (_labelme(tmp_path / "c.json", [(cup, square)]),))


def test_origa_mat_disc_is_rim_or_cup_cropped_to_the_image(tmp_path):
    img = _image(tmp_path / "001.jpg", 4, 6)
    label = np.zeros((5, 10), np.uint8)  # 4 columns wider, one row taller than the image
    label[1, 2:8] = 1
    label[2, 4] = 2
    label[4, :] = 1  # below the image: cut
    savemat(tmp_path / "001.mat", {"mask": label})
    m = decode_mask("origa", img, (tmp_path / "001.mat",))
    want = np.zeros((4, 6), bool)
    want[1, 0:6] = True
    want[2, 2] = True
    assert m.tolist() == want.tolist()
    label[0, 0] = 3
    savemat(tmp_path / "bad.mat", {"mask": label})
    with pytest.raises(MaskError, match="0, 1 \\(rim\\), 2 \\(cup\\)"):
        decode_mask("origa", img, (tmp_path / "bad.mat",))
    savemat(tmp_path / "nomask.mat", {"other": label})
    with pytest.raises(MaskError, match="no 'mask'"):
        decode_mask("origa", img, (tmp_path / "nomask.mat",))


def test_contour_fill_is_skimages_polygon():
    draw = pytest.importorskip("skimage.draw")
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(3, 12))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(3, 12, k)
        xs, ys = 20 + r * np.cos(angles), 15 + r * np.sin(angles)
        want = np.zeros((30, 40), bool)
        rr, cc = draw.polygon(ys, xs, shape=(30, 40))
        want[rr, cc] = True
        assert np.array_equal(fundus_masks.fill_polygon(xs, ys, (30, 40)), want)


def test_papila_unites_the_experts_disc_contours(tmp_path):
    img = _image(tmp_path / "RET001OD.jpg", 12, 12)
    np.savetxt(tmp_path / "e1.txt", [[1, 1], [5, 1], [5, 5], [1, 5]])  # x y per line
    np.savetxt(tmp_path / "e2.txt", [[4, 6], [10, 6], [10, 10], [4, 10]])
    m = decode_mask("papiladb", img, (tmp_path / "e1.txt", tmp_path / "e2.txt"))
    assert m.sum() == 4 * 4 + 6 * 4 and m[1:5, 1:5].all() and m[6:10, 4:10].all()
    assert not m[0].any() and not m[:, 0].any()
    (tmp_path / "bad.txt").write_text("1 2\n")
    with pytest.raises(MaskError, match="at least 3 points"):
        decode_mask("papiladb", img, (tmp_path / "bad.txt",))


def test_refuge_disc_is_cup_or_rim(tmp_path):
    img = _image(tmp_path / "g0001.jpg", 1, 3)
    m = decode_mask("refuge2", img, (_grey(tmp_path / "g0001.bmp", [[0, 128, 255]]),))
    assert m.tolist() == [[True, True, False]]
    with pytest.raises(MaskError, match="64"):
        decode_mask("refuge2", img, (_grey(tmp_path / "x.png", [[0, 64, 255]]),))


def test_refuge_prefers_png_over_bmp(tmp_path):
    entry = FUNDUS_DATASETS["refuge2"]
    droot = tmp_path / "REFUGE2"
    for split in ("train", "test"):
        _image(droot / split / "images" / "a.jpg", 1, 3)
        _grey(droot / split / "mask" / "a.bmp", [[0, 255, 255]])
    _grey(droot / "train" / "mask" / "a.png", [[255, 255, 0]])
    (train,), _ = list_dataset(entry, droot, "train")
    (test,), _ = list_dataset(entry, droot, "test")
    assert (train.masks[0].suffix, test.masks[0].suffix) == (".png", ".bmp")


# ---------------------------------------------------------------------- synthetic layouts, pooling


@pytest.mark.parametrize("key", FUNDUS)
def test_synth_writes_every_dataset_in_its_formats_and_checks_clean(data_root, key):
    d = DOMAINS.get(key)
    summaries, problems = check_domain(d, data_root)
    assert problems == []
    assert {s.split: s.count for s in summaries} == split_counts(d, N)
    assert all(0.0 < s.fg_ratio < 0.3 for s in summaries)
    assert is_synthetic(d, data_root) and resolve_domain_root(d, data_root) == data_root / "Fundus"
    assert resolve_domain_root(d, data_root / "Fundus") == data_root / "Fundus"  # handed Fundus itself
    formats = {}
    for split in d.splits:
        for s in list_samples(d, data_root, split):
            formats.setdefault(s.dataset, set()).update(p.suffix for p in (s.image, *s.masks))
    want = {"chasedb1": {".jpg", ".png"}, "drive": {".tif", ".gif"}, "fives": {".png"}, "hrf": {".jpg", ".JPG", ".tif"},
            "stare": {".ppm"}, "drishtigs": {".png"}, "g1020": {".jpg", ".json"}, "grape": {".jpg", ".json"},
            "origa": {".jpg", ".mat"}, "papiladb": {".jpg", ".txt"}, "refuge2": {".jpg", ".png", ".bmp"}}
    assert formats == {k: want[k] for k in d.tests.values()}


def test_pooled_train_val_and_tests_through_the_dataset(data_root):
    d = DOMAINS.get("fundus_od")
    train = SegmentationDataset(d, data_root, "train", size=32, train=True)
    val = SegmentationDataset(d, data_root, "val", size=32, train=False)
    assert {s.dataset for s in train.samples} == {s.dataset for s in val.samples} == set(d.tests.values())
    assert {s.image for s in train.samples}.isdisjoint({s.image for s in val.samples})
    names = [s.name for s in train.samples + val.samples]
    assert len(set(names)) == len(names)
    for test_set in d.tests:
        ds = SegmentationDataset(d, data_root, test_set, size=32, train=False)
        assert {s.dataset for s in ds.samples} == {test_set}
        assert {s.image for s in ds.samples}.isdisjoint({s.image for s in train.samples})
        item = ds[0]
        assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
        assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    parts = [list_dataset(FUNDUS_DATASETS[k], data_root / "Fundus" / FUNDUS_DATASETS[k].folder, "train")[0]
             for k in d.tests.values()]
    assert len(train) + len(val) == sum(map(len, parts)) and len(val) == len(d.tests)  # one each


def test_dataset_mask_is_the_decoded_ground_truth(data_root):
    d = DOMAINS.get("fundus_vessel")
    ds = SegmentationDataset(d, data_root, "chasedb1", size=16, train=False)
    s = ds.samples[0]
    gt = read_mask(s, d)
    assert set(np.unique(gt).tolist()) == {0, 255} and len(s.masks) == 2
    want = np.asarray(Image.fromarray(gt).resize((16, 16), Image.NEAREST)) > 128
    assert torch.equal(ds[0]["mask"][0], torch.from_numpy(want).float())


def test_drive_test_ground_truth_is_the_first_grader_or_their_union(data_root):
    first = DOMAINS.get("fundus_vessel")
    union = replace(first, test_gt={"drive": "union"})
    a, b = (list_samples(d, data_root, "drive") for d in (first, union))
    assert [s.masks[0].parent.name for s in a] == ["1st_manual"] * len(a)
    assert [[m.parent.name for m in s.masks] for s in b] == [["1st_manual", "2nd_manual"]] * len(b)
    ma, mb = read_mask(a[0], first) > 0, read_mask(b[0], union) > 0
    assert (mb >= ma).all() and mb.sum() > ma.sum()
    train = [s for split in ("train", "val") for s in list_samples(union, data_root, split) if s.dataset == "drive"]
    assert train and all(len(s.masks) == 1 for s in train)  # the variant is the test split's only


def test_synth_is_deterministic_and_keeps_both_domains(tmp_path):
    a, b = _fresh(tmp_path / "a", "fundus_od"), _fresh(tmp_path / "b", "fundus_od")
    digest = {p.relative_to(a): p.read_bytes() for p in sorted(a.rglob("*")) if p.is_file()}
    assert digest == {p.relative_to(b): p.read_bytes() for p in sorted(b.rglob("*")) if p.is_file()}
    synth_domain("fundus_vessel", tmp_path / "a", n=N)
    assert is_synthetic("fundus_od", tmp_path / "a") and is_synthetic("fundus_vessel", tmp_path / "a")
    assert (a / "G1020" / SYNTHETIC_MARKER).exists() and (a / "DRIVE" / SYNTHETIC_MARKER).exists()


def test_synth_never_overwrites_a_real_dataset(tmp_path):
    (tmp_path / "Fundus" / "STARE" / "stare-images").mkdir(parents=True)
    with pytest.raises(BenchError, match="STARE exists and is not synthetic"):
        synth_domain("fundus_vessel", tmp_path)
    assert not (tmp_path / "Fundus" / "DRIVE").exists()  # refused before writing anything


# ------------------------------------------------------------------------------------- checking


def test_check_names_a_missing_dataset_and_where_it_is_obtained(tmp_path, capsys):
    base = _fresh(tmp_path, "fundus_vessel")
    shutil.rmtree(base / "STARE")
    _, problems = check_domain("fundus_vessel", tmp_path)
    (p,) = problems
    assert p.path == base / "STARE" and "STARE missing" in p.message
    assert FUNDUS_DATASETS["stare"].source in p.message and "stare-images/*.ppm" in p.message
    with pytest.raises(BenchError, match="STARE missing"):
        validate_or_raise("fundus_vessel", tmp_path)
    assert cli.main(["data", "check", "--domain", "fundus_vessel", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("PROBLEM") == 1 and "cecas.clemson.edu" in out


def test_check_on_an_empty_root_names_every_dataset(tmp_path):
    _, problems = check_domain("fundus_od", tmp_path)
    assert [p.path.name for p in problems] == [FUNDUS_DATASETS[k].folder for k in DOMAINS.get("fundus_od").tests.values()]
    with pytest.raises(BenchError, match="data check --domain fundus_od"):
        resolve_domain_root("fundus_od", tmp_path)


def test_check_names_a_missing_annotation_and_a_bad_one(tmp_path):
    base = _fresh(tmp_path, "fundus_vessel")
    second = sorted((base / "CHASEDB1" / "CHASEDB1").glob("*_2ndHO.png"))[0]
    second.unlink()
    gt = sorted((base / "HRF" / "manual1").glob("*.tif"))[0]
    gt.write_bytes(b"not a tif")
    problems = check_domain("fundus_vessel", tmp_path)[1]
    assert [p.path for p in problems] == [second, gt]
    assert "annotation of" in problems[0].message and "unreadable" in problems[1].message


def test_check_reports_a_ground_truth_of_the_wrong_size(tmp_path):
    base = _fresh(tmp_path, "fundus_od")
    mask = sorted((base / "REFUGE2" / "test" / "mask").iterdir())[0]
    _grey(mask, np.full((5, 7), 255))
    (p,) = check_domain("fundus_od", tmp_path)[1]
    assert p.path == mask and "size 5x7" in p.message


# ------------------------------------------------------------------------------ download and run


def test_download_says_in_one_line_that_there_is_no_archive(tmp_path, capsys):
    with pytest.raises(BenchError, match="no single public archive"):
        archive_url("fundus_od")
    with pytest.raises(BenchError, match="data check --domain fundus_vessel"):
        download_domain("fundus_vessel", tmp_path)
    assert cli.main(["data", "download", "--domain", "fundus_vessel,fundus_od", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("no single public archive" in line for line in err)
    synth_domain("fundus_od", tmp_path, n=N)
    assert cli.main(["data", "download", "--domain", "fundus_od", "--root", str(tmp_path)]) == 0
    assert "already present" in capsys.readouterr().err


def test_smoke_run_on_fundus_od_records_every_dataset(tmp_path, monkeypatch, mini_sam):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # fresh smoke data; the mini-SAM as built
    out = tmp_path / "runs"
    assert cli.main(["run", "--domains", "fundus_od", "--methods", "lora", "--seeds", "0", "--no-progress",
                     "--out", str(out), "--checkpoint", str(mini_sam)]) == 0
    rec = json.loads((out / "sam_tiny" / "fundus_od" / "lora" / "seed0.json").read_text())
    assert rec["status"] == "ok" and rec["preset"] == "smoke"
    d = DOMAINS.get("fundus_od")
    assert list(rec["metrics"]) == list(d.tests)
    for values in rec["metrics"].values():
        assert set(values) == set(d.test_metrics)
        assert 0.0 <= values["dice"] <= 1.0 and values["hd95"] >= 0.0
