"""Provenance in run records (data kind and fingerprints, checkpoint hash) and the rule that keeps
synthetic, custom and random-weight runs from being compared with the published numbers as if real."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from benchmark.data.provenance import data_provenance
from benchmark.data.synth import synth_domain

NOT_COMPARABLE_ERROR = (
    "error: 3 of 3 records use synthetic data and random weights: not comparable with the published "
    "numbers (pass --allow-nonofficial to compare anyway)\n"
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synth_domain("sbu", root, n=4, seed=0)
    return root


def _csv_paths(csv_file: Path) -> list[str]:
    with csv_file.open(newline="") as f:
        return sorted(v for row in csv.DictReader(f) for v in (row["image"], row["label"]))


# ---- data -------------------------------------------------------------------------------------------


def test_synthetic_data_kind_counts_and_fingerprint(data_root, tmp_path) -> None:
    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    droot = root / "SBU-shadow" / "SBU-shadow"
    prov = data_provenance("sbu", root)
    assert prov["kind"] == "synthetic" and prov["root"] == str(droot)
    assert {s: v["files"] for s, v in prov["splits"].items()} == {"train": 8, "val": 4, "sbu": 4}
    expected = hashlib.sha256("".join(f"{p}\n" for p in _csv_paths(droot / "train.csv")).encode()).hexdigest()
    assert prov["splits"]["train"]["sha256"] == expected

    # One more training pair: the train fingerprint moves, the other splits' do not.
    first = next(csv.DictReader((droot / "train.csv").open()))
    for column, new in (("image", "train/images/extra.jpg"), ("label", "train/masks/extra.png")):
        shutil.copy(droot / first[column], droot / new)
    with (droot / "train.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["train/images/extra.jpg", "train/masks/extra.png"])
    grown = data_provenance("sbu", root)
    assert grown["splits"]["train"]["files"] == 10
    assert grown["splits"]["train"]["sha256"] != prov["splits"]["train"]["sha256"]
    assert grown["splits"]["val"] == prov["splits"]["val"] and grown["splits"]["sbu"] == prov["splits"]["sbu"]


def test_official_and_custom_kinds(data_root, tmp_path) -> None:
    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    assert data_provenance("sbu", root / "SBU-shadow")["kind"] == "synthetic"  # a deeper path still knows
    (root / "SBU-shadow" / ".synthetic").unlink()
    assert data_provenance("sbu", root)["kind"] == "official"
    droot = root / "SBU-shadow" / "SBU-shadow"
    elsewhere = tmp_path / "mine.jpg"
    shutil.copy(next(droot.rglob("*.jpg")), elsewhere)
    with (droot / "val.csv").open("a", newline="") as f:  # the official archives are self-contained
        csv.writer(f).writerow([str(elsewhere), next(iter(_csv_paths(droot / "val.csv")))])
    assert data_provenance("sbu", root)["kind"] == "custom"


# ---- records written by the grid ----------------------------------------------------------------------


def test_records_carry_checkpoint_and_data_provenance(data_root, tmp_path, monkeypatch, run_cli) -> None:
    import torch

    import benchmark.model.checkpoints as checkpoints
    from benchmark.model.backbones import build_sam
    from benchmark.train.runner import run_grid

    ckpt = tmp_path / "tiny.pth"
    torch.save(build_sam("sam_tiny").state_dict(), ckpt)
    hashed = []
    real = checkpoints.sha256_file
    monkeypatch.setattr(checkpoints, "sha256_file", lambda p, **kw: hashed.append(p) or real(p, **kw))
    recs = run_grid(methods=["decoder_only", "from_scratch"], domains=["sbu"], seeds=[0, 1], out=tmp_path / "runs",
                    checkpoint=ckpt, data_root=data_root, sets=["epochs=1", "max_train_images=2"], progress=False)
    assert [r["status"] for r in recs] == ["ok"] * 4
    assert len(hashed) == 1  # once per grid, not once per run
    want = {"path": str(ckpt.absolute()), "sha256": hashlib.sha256(ckpt.read_bytes()).hexdigest(),
            "bytes": ckpt.stat().st_size}
    by_method = {r["method"]: r for r in recs}
    assert by_method["decoder_only"]["checkpoint"] == want and by_method["decoder_only"]["method_pretrained"]
    assert by_method["from_scratch"]["checkpoint"] is None  # random by design: reads no checkpoint
    assert by_method["from_scratch"]["method_pretrained"] is False
    assert all(r["data"] == data_provenance("sbu", data_root) for r in recs)
    on_disk = json.loads((tmp_path / "runs/sam_tiny/sbu/decoder_only/seed0.json").read_text())
    assert on_disk["checkpoint"] == want and on_disk["data"]["kind"] == "synthetic"
    code, _, err = run_cli("compare", "--runs", tmp_path / "runs")
    assert code == 2 and err.splitlines()[-1].startswith("error: 4 of 4 records use synthetic data: not comparable")


def test_failed_record_carries_provenance(data_root, tmp_path, mini_sam) -> None:
    from benchmark.train.runner import run_grid

    root = tmp_path / "data"
    shutil.copytree(data_root, root)
    victim = next((root / "SBU-shadow").rglob("*.jpg"))
    victim.write_bytes(victim.read_bytes()[:40])  # fails the run before any compute
    (rec,) = run_grid(methods=["decoder_only"], domains=["sbu"], seeds=[0], out=tmp_path / "runs",
                      data_root=root, sets=["epochs=1"], progress=False)
    assert rec["status"] == "failed"
    # without --checkpoint the smoke preset starts from the miniature pretrained SAM, and says so
    assert rec["checkpoint"]["path"] == str(mini_sam) and rec["method_pretrained"] is True
    assert rec["checkpoint"]["bytes"] == mini_sam.stat().st_size
    assert rec["data"]["kind"] == "synthetic" and rec["data"]["splits"]["train"]["files"] == 8


# ---- table, compare, report ------------------------------------------------------------------------


def record(method="lora", seed=1, *, kind="synthetic", checkpoint=None, pretrained=True, ber=0.0274,
           preset="paper", provenance=True):
    rec = {"method": method, "backbone": "sam_vit_h", "domain": "sbu", "seed": seed, "status": "ok",
           "error": None, "preset": preset, "metrics": {"sbu": {"ber": ber}},
           "trainable_params": 3_997_056, "total_params": 641_582_128, "train_seconds": 1.0}
    if provenance:
        rec |= {"data": {"kind": kind, "root": "/data/SBU-shadow/SBU-shadow", "splits": {}},
                "checkpoint": checkpoint, "method_pretrained": pretrained}
    return rec


CKPT = {"path": "/weights/sam_vit_h_4b8939.pth", "sha256": "0" * 64, "bytes": 1}


def write_runs(folder: Path, recs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(recs):
        (folder / f"{i}.json").write_text(json.dumps(r))
    return folder


def test_compare_refuses_synthetic_random_weight_records_in_one_line(run_cli, tmp_path) -> None:
    runs = write_runs(tmp_path, [record(seed=s) for s in (1, 2, 3)])
    code, out, err = run_cli("compare", "--runs", runs, "--against", "paper")
    assert (code, out, err) == (2, "", NOT_COMPARABLE_ERROR)

    code, out, err = run_cli("compare", "--runs", runs, "--allow-nonofficial")
    assert code == 0
    note = "NOT COMPARABLE WITH THE PUBLISHED NUMBERS: 3 of 3 records use synthetic data and random weights."
    assert out.startswith(f"> {note}\n\n| Method |")
    assert f"note: {note}\n" in err
    code, out, err = run_cli("compare", "--runs", runs, "--allow-nonofficial", "--format", "json")
    assert len(json.loads(out)) == 1 and f"note: {note}\n" in err


def test_the_rule_names_each_shortfall_and_spares_from_scratch(run_cli, tmp_path) -> None:
    recs = [record(seed=1, kind="official", checkpoint=CKPT), record(seed=2, kind="custom", checkpoint=CKPT),
            record(seed=3, kind="official"), record("from_scratch", 1, kind="official", pretrained=False, ber=0.1)]
    code, _, err = run_cli("compare", "--runs", write_runs(tmp_path / "mixed", recs))
    assert (code, err) == (2, "error: 2 of 4 records use custom data (1) or random weights (1): not comparable "
                              "with the published numbers (pass --allow-nonofficial to compare anyway)\n")
    fine = [record(seed=1, kind="official", checkpoint=CKPT), recs[-1]]
    code, out, err = run_cli("compare", "--runs", write_runs(tmp_path / "fine", fine))
    assert code in (0, 1) and "NOT COMPARABLE" not in out + err and "Provenance" not in out + err


def test_records_without_provenance_are_unknown_not_refused(run_cli, tmp_path) -> None:
    runs = write_runs(tmp_path / "runs", [record(seed=s, provenance=False) for s in (1, 2, 3)])
    code, out, err = run_cli("compare", "--runs", runs)
    unknown = ("Provenance unknown: 3 of 3 records carry no provenance (written before runs recorded their data "
               "and weights): whether they are comparable with the published numbers is unknown.")
    assert code == 0 and out.startswith(f"> {unknown}\n\n") and f"note: {unknown}\n" in err
    code, out, _ = run_cli("table", "--runs", runs)
    assert code == 0 and f"\n{unknown}\n" in out
    code, _, _ = run_cli("report", "--runs", runs, "--out", tmp_path / "r.md")
    page = (tmp_path / "r.md").read_text()
    assert code == 0 and f"- Data: unknown (3); weights: unknown (3)\n- {unknown}\n" in page
    assert "## Verdicts against the paper\n" in page


def test_table_and_report_say_not_comparable(run_cli, tmp_path) -> None:
    recs = [record(seed=s, preset="smoke") for s in (1, 2, 3)]
    recs.append({**record(seed=4, preset="smoke"), "status": "failed", "metrics": {}})
    runs = write_runs(tmp_path / "runs", recs)
    note = "NOT COMPARABLE WITH THE PUBLISHED NUMBERS: 3 of 3 records use synthetic data and random weights."
    code, out, _ = run_cli("table", "--runs", runs)
    assert code == 0 and f"\n{note}\n" in out and "SMOKE PRESET" in out
    code, out, err = run_cli("table", "--runs", runs, "--format", "csv")
    assert code == 0 and "NOT COMPARABLE" not in out and err == f"note: {note}\n"

    code, _, _ = run_cli("report", "--runs", runs, "--out", tmp_path / "report.md")
    page = (tmp_path / "report.md").read_text()
    assert code == 0
    assert page.startswith("# sam-peft-bench report\n\n> **PIPELINE CHECK, NOT A REPRODUCTION.**")
    assert ("\n\n> **NOT COMPARABLE WITH THE PUBLISHED NUMBERS.** 3 of 3 records use synthetic data and random "
            "weights.\n> The verdicts below") in page
    assert "- Data: synthetic (4); weights: random (4)\n" in page
    assert "### Table 1: binary segmentation, beside the paper (NOT COMPARABLE)\n" in page
    assert ("## Verdicts against the paper (NOT COMPARABLE)\n\n3 of 3 records use synthetic data and random "
            "weights: not comparable with the published numbers.\n") in page
    assert "### Table 2: Trans10K-v2, beside the paper\n" in page  # no records there: nothing to label
