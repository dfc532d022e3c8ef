"""The registry listings and the params command as a user calls them."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.data.domains import DOMAINS
from methods import METHODS
from metrics import METRICS


@pytest.mark.parametrize(("what", "keys"), [
    ("methods", lambda: METHODS.keys()),
    ("backbones", lambda: ["sam_vit_b", "sam_vit_l", "sam_vit_h", "sam_tiny", "sam2_hiera_t"]),
    ("domains", lambda: DOMAINS.keys()),
    ("metrics", lambda: METRICS.keys()),
])
def test_list_shows_every_registered_key(what, keys, capsys) -> None:
    assert main(["list", what]) == 0
    out = capsys.readouterr().out
    for key in keys():
        assert key in out


def test_params_json_and_table_at_vit_h(capsys) -> None:
    assert main(["params", "--backbone", "sam_vit_h", "--methods", "lora,conv_lora", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["trainable"]) for r in rows] == [("lora", 3_997_056), ("conv_lora", 4_020_096)]
    assert all(r["total"] > r["trainable"] for r in rows)
    assert main(["params", "--backbone", "sam_vit_h", "--methods", "conv_lora,ssf"]) == 0
    out = capsys.readouterr().out
    assert "4.02 / 0.63%" in out and "4.41 / 0.69%" in out and "4.42 / 0.69%" in out  # ours and the paper's


def test_params_lists_methods_another_family_cannot_take(capsys) -> None:
    assert main(["params", "--backbone", "sam2_hiera_t", "--methods", "lora,vpt", "--format", "json"]) == 0
    rows = {r["method"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["lora"]["trainable"] > 0
    assert "SAM backbones only" in rows["vpt"]["error"]
    assert main(["params", "--backbone", "sam2_hiera_t", "--methods", "vpt"]) == 2
