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


def test_each_command_is_defined_by_the_module_the_cli_imports_for_it() -> None:
    """The CLI imports only the invoked command's module (``COMMANDS``); every module must define
    exactly the commands the map gives it, so a command never goes missing."""
    import argparse
    import importlib

    from benchmark.cli import COMMANDS, build_parser

    for command, module in COMMANDS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).add_commands(sub)
        assert set(sub.choices) == {c for c, m in COMMANDS.items() if m == module}, module
        assert command in build_parser(command)._subparsers._group_actions[0].choices
    every = build_parser("no-such-command")._subparsers._group_actions[0].choices
    assert list(every) == list(COMMANDS)


def test_a_light_command_does_not_import_torch() -> None:
    """``table --source paper`` starts in a fraction of the time: it imports no model code."""
    import subprocess
    import sys

    code = ("import sys; from benchmark.cli import main; rc = main(['table', '--table', '1', '--source', 'paper']); "
            "sys.exit(rc if rc else 3 if 'torch' in sys.modules or 'segment_anything' in sys.modules else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "Kvasir" in proc.stdout or "kvasir" in proc.stdout.lower()
