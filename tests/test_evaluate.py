"""``evaluate``: folder pairing, reading, resizing, golden values, workers, and the CLI's errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import benchmark.cli
from benchmark.core.errors import BenchError
from benchmark.report.evaluate import evaluate_folders, resize_bilinear, resize_nearest

GOLDEN = Path(__file__).parent / "golden"
BINARY_KEYS = "sm,em,wfm,mae,iou,jaccard,dice,ber,auc,acc_img,sens,spec,prec,mcc,biou,hd95,auc_img"


@pytest.fixture
def cli(monkeypatch):
    """``benchmark.cli.main`` with only the evaluate command, so other commands cannot break these tests."""
    monkeypatch.setattr(benchmark.cli, "_COMMAND_MODULES", ("benchmark.report.evaluate",))
    return benchmark.cli.main


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    """A writable copy of the golden binary pairs: (pred_dir, gt_dir)."""
    shutil.copytree(GOLDEN / "binary", tmp_path / "binary")
    return tmp_path / "binary" / "pred", tmp_path / "binary" / "gt"


def run_json(cli, capsys, *args: str) -> tuple[int, dict | None, str]:
    code = cli(["evaluate", "--format", "json", "--quiet", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------------------------------------
# Values


def test_binary_folder_matches_golden():
    golden = json.loads((GOLDEN / "binary.json").read_text())
    results = evaluate_folders(
        GOLDEN / "binary" / "pred", GOLDEN / "binary" / "gt", metrics=BINARY_KEYS, progress=False
    )
    assert results["n_images"] == golden["n_images"] == 9
    for key, value in golden["dataset"].items():
        # The resized prediction is a float map, which the AUC histogram rounds to 16 bits
        # (documented); the per-image AUC ranks it exactly, but bilinear values that are ties in
        # exact arithmetic differ here and in torch by rounding (1e-16), which moves it by 1e-6.
        # Every other key is exact to rounding.
        tol = 1e-6 if key in ("auc", "auc_img") else 1e-9
        assert results[key] == pytest.approx(value, abs=tol), key


def test_multiclass_folder_matches_golden():
    golden = json.loads((GOLDEN / "multiclass.json").read_text())
    results = evaluate_folders(
        GOLDEN / "multiclass" / "pred",
        GOLDEN / "multiclass" / "gt",
        metrics=["acc", "miou", "class_iou"],
        num_classes=golden["num_classes"],
        progress=False,
    )
    assert results["n_images"] == golden["n_images"]
    assert results["acc"] == pytest.approx(golden["acc"], abs=1e-12)
    assert results["miou"] == pytest.approx(golden["miou"], abs=1e-12)
    assert results["class_iou"] == pytest.approx(golden["class_iou"], abs=1e-12)


def test_two_workers_give_the_same_numbers():
    kwargs = dict(metrics=BINARY_KEYS, progress=False)
    one = evaluate_folders(GOLDEN / "binary" / "pred", GOLDEN / "binary" / "gt", workers=1, **kwargs)
    two = evaluate_folders(GOLDEN / "binary" / "pred", GOLDEN / "binary" / "gt", workers=2, **kwargs)
    assert one == two


def test_resize_hand_worked():
    np.testing.assert_allclose(resize_bilinear(np.array([[0.0, 1.0]]), (1, 4)), [[0.0, 0.25, 0.75, 1.0]])
    np.testing.assert_allclose(resize_bilinear(np.array([[0.0], [1.0]]), (3, 1)), [[0.0], [0.5], [1.0]])
    np.testing.assert_array_equal(resize_nearest(np.array([[1, 2]]), (2, 4)), [[1, 1, 2, 2], [1, 1, 2, 2]])
    np.testing.assert_array_equal(resize_nearest(np.array([[1, 2, 3, 4]]), (1, 2)), [[1, 3]])


def test_jpeg_predictions_pair_with_png_masks(folders):
    pred_dir, gt_dir = folders
    pred = Image.open(pred_dir / "blob.png")
    (pred_dir / "blob.png").unlink()
    pred.save(pred_dir / "blob.jpg", quality=95)
    results = evaluate_folders(pred_dir, gt_dir, metrics="mae", progress=False)
    assert results["n_images"] == 9


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_json(cli, capsys):
    code, results, err = run_json(
        cli,
        capsys,
        "--pred",
        str(GOLDEN / "binary" / "pred"),
        "--gt",
        str(GOLDEN / "binary" / "gt"),
        "--metrics",
        "sm,iou",
    )
    assert code == 0, err
    assert set(results) == {"sm", "iou", "n_images"}
    assert 0 <= results["sm"] <= 1 and results["n_images"] == 9


def test_cli_table(cli, capsys):
    code = cli(
        [
            "evaluate",
            "--pred",
            str(GOLDEN / "multiclass" / "pred"),
            "--gt",
            str(GOLDEN / "multiclass" / "gt"),
            "--metrics",
            "acc,miou,class_iou",
            "--num-classes",
            "4",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert "mIoU" in out and "IoU class 3" in out and "n_images" in out


def test_unmatched_stem_fails_naming_the_file(cli, capsys, folders):
    pred_dir, gt_dir = folders
    shutil.copy(pred_dir / "blob.png", pred_dir / "orphan.png")
    code, _, err = run_json(cli, capsys, "--pred", str(pred_dir), "--gt", str(gt_dir))
    assert_one_line_error(code, err, "orphan.png", "--no-strict")


def test_no_strict_skips_and_counts(cli, capsys, folders):
    pred_dir, gt_dir = folders
    shutil.copy(pred_dir / "blob.png", pred_dir / "orphan.png")
    (pred_dir / "perfect.png").unlink()
    code, results, err = run_json(
        cli, capsys, "--pred", str(pred_dir), "--gt", str(gt_dir), "--metrics", "mae", "--no-strict"
    )
    assert code == 0
    assert results["n_images"] == 8 and results["n_skipped"] == 2
    assert sorted(Path(p).name for p in results["skipped"]) == ["orphan.png", "perfect.png"]
    assert "orphan.png" in err and "perfect.png" in err


def test_corrupt_file(cli, capsys, folders):
    pred_dir, gt_dir = folders
    (pred_dir / "blob.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, _, err = run_json(cli, capsys, "--pred", str(pred_dir), "--gt", str(gt_dir), "--metrics", "mae")
    assert_one_line_error(code, err, "blob.png", "corrupt")


def test_corrupt_file_in_a_worker(folders):
    pred_dir, gt_dir = folders
    (gt_dir / "perfect.png").write_bytes(b"garbage")
    with pytest.raises(BenchError, match="perfect.png"):
        evaluate_folders(pred_dir, gt_dir, metrics="mae", workers=2, progress=False)


def test_empty_folder(cli, capsys, tmp_path, folders):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_json(cli, capsys, "--pred", str(empty), "--gt", str(folders[1]))
    assert_one_line_error(code, err, str(empty), "no ")


def test_missing_folder(cli, capsys, tmp_path, folders):
    code, _, err = run_json(cli, capsys, "--pred", str(folders[0]), "--gt", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "nowhere")


def test_non_binary_gt(cli, capsys, folders):
    pred_dir, gt_dir = folders
    mask = np.asarray(Image.open(gt_dir / "blob.png")).copy()
    mask[0, 0] = 128
    Image.fromarray(mask).save(gt_dir / "blob.png")
    code, _, err = run_json(cli, capsys, "--pred", str(pred_dir), "--gt", str(gt_dir))
    assert_one_line_error(code, err, "blob.png", "0/255", "128")


def test_duplicate_stem(cli, capsys, folders):
    pred_dir, gt_dir = folders
    Image.open(pred_dir / "blob.png").save(pred_dir / "blob.jpg")
    code, _, err = run_json(cli, capsys, "--pred", str(pred_dir), "--gt", str(gt_dir))
    assert_one_line_error(code, err, "blob")


@pytest.mark.parametrize("role", ["pred", "gt"])
def test_class_out_of_range(cli, capsys, tmp_path, role):
    shutil.copytree(GOLDEN / "multiclass", tmp_path / "mc")
    path = tmp_path / "mc" / role / "img1.png"
    labels = np.asarray(Image.open(path)).copy()
    labels[3, 3] = 7
    Image.fromarray(labels).save(path)
    code, _, err = run_json(
        cli,
        capsys,
        "--pred",
        str(tmp_path / "mc" / "pred"),
        "--gt",
        str(tmp_path / "mc" / "gt"),
        "--metrics",
        "miou",
        "--num-classes",
        "4",
    )
    assert_one_line_error(code, err, "img1.png", "class 7", "0..3")


def test_multiclass_needs_num_classes(cli, capsys):
    code, _, err = run_json(
        cli,
        capsys,
        "--pred",
        str(GOLDEN / "multiclass" / "pred"),
        "--gt",
        str(GOLDEN / "multiclass" / "gt"),
        "--metrics",
        "miou",
    )
    assert_one_line_error(code, err, "--num-classes")


def test_unknown_metric(cli, capsys):
    code, _, err = run_json(
        cli,
        capsys,
        "--pred",
        str(GOLDEN / "binary" / "pred"),
        "--gt",
        str(GOLDEN / "binary" / "gt"),
        "--metrics",
        "sm,fm",
    )
    assert_one_line_error(code, err, "'fm'", "wfm")
